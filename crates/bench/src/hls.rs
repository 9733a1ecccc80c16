//! HLS viewers that behave like players.
//!
//! - **Classic** ([`run_classic`]): loads the playlist, starts three segments from the end (as
//!   hls.js and Safari do), reloads the playlist every half target duration and fetches each
//!   new segment once, in order, on one keep-alive connection. Works for any live HLS media
//!   playlist (sluice's TS or fMP4 variant, nginx-rtmp's files served by nginx).
//! - **LL-HLS** ([`run_ll`]): loads the playlist, starts at the independent part at or before
//!   `PART-HOLD-BACK` behind the live edge, then on one connection holds a blocking reload
//!   (`_HLS_msn`/`_HLS_part` of the next part) and on a second fetches each new part, or the
//!   preload hint directly as hls.js does (the server holds that request until the part
//!   exists).
//!
//! **Stalls**: a [`Playhead`] starts when the first unit (segment or part) has arrived, advances
//! in real time, and stalls when the next unit has not fully arrived by the time playback
//! reaches it (the wait is added to the playhead's delay). Units needed after the publisher
//! stopped are not counted (the stream ending is not a stall).
//!
//! **Latency** (wall clock, same machine as the server): a unit's media start is its
//! segment's `EXT-X-PROGRAM-DATE-TIME` plus the parts before it. Without PDT (nginx-rtmp), the
//! first video frame of a TS segment is demuxed and matched to the publisher's send of that
//! frame (the same frame table the FLV viewers use), once per segment for all viewers; when
//! neither works, latency is left out ("n/a"). Two figures: **playback latency** (wall clock
//! minus the playhead's media time, what a player shows as "live latency") sampled when each
//! unit starts playing, and **arrival latency** (a unit's last byte read minus its media
//! start: for a 200 ms part that is its duration plus the server's and network's delay).

use crate::frames::{frame_key, is_coded_video, FrameTable};
use crate::hist::Histogram;
use crate::http::{resolve, Conn, Response};
use crate::m3u8::Playlist;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// Maps `Instant`s to wall-clock ms (one anchor for the whole run).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    inst: Instant,
    wall_ms: f64,
}

impl Clock {
    /// Anchored now.
    pub fn new() -> Clock {
        Clock {
            inst: Instant::now(),
            wall_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        }
    }

    /// Wall-clock ms of `t`.
    pub fn wall(&self, t: Instant) -> f64 {
        if t >= self.inst {
            self.wall_ms + (t - self.inst).as_secs_f64() * 1000.0
        } else {
            self.wall_ms - (self.inst - t).as_secs_f64() * 1000.0
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// What an HLS viewer did, besides the common [`crate::viewer::ViewerResult`] fields.
#[derive(Debug, Clone, Default)]
pub struct HlsStats {
    /// Requests by kind (`playlist`, `init`, `segment`, `part`, `hint`).
    pub requests: BTreeMap<&'static str, u64>,
    /// Responses other than 200, by status (0: no answer).
    pub errors: BTreeMap<u16, u64>,
    /// Segments or parts received.
    pub units: u64,
    /// Times the playhead had to wait.
    pub stalls: u64,
    /// Total time waited, ms.
    pub stall_ms: f64,
    /// Units that left the playlist before this viewer fetched them.
    pub skipped: u64,
    /// Wall clock minus playhead media time, sampled as each unit starts playing.
    pub playback_latency: Histogram,
    /// Unit's last byte minus its media start.
    pub arrival_latency: Histogram,
    /// Units with no media start (no PDT, no frame matched).
    pub no_origin: u64,
    /// Units fetched: `(msn, part)`, part `-1` for a whole segment.
    pub fetched: BTreeSet<(u64, i64)>,
    /// TCP connections opened.
    pub connects: u64,
}

impl HlsStats {
    fn count(&mut self, kind: &'static str, r: &Result<Response, String>) {
        *self.requests.entry(kind).or_default() += 1;
        match r {
            Ok(r) if r.status == 200 => {}
            Ok(r) => *self.errors.entry(r.status).or_default() += 1,
            Err(_) => *self.errors.entry(0).or_default() += 1,
        }
    }
}

/// The player model behind the stall count (see the module docs). Times in wall-clock ms.
#[derive(Debug, Clone, Default)]
pub struct Playhead {
    /// `(wall time, media time)` playback started at.
    start: Option<(f64, f64)>,
    /// Time waited so far.
    waited: f64,
    /// Media time where the last unit received ends.
    buffered_to: f64,
    /// Stalls counted.
    pub stalls: u64,
    /// Time stalled, ms.
    pub stall_ms: f64,
}

impl Playhead {
    /// Starts playback at `now`, at media time `media`.
    pub fn start(&mut self, now: f64, media: f64) {
        self.start = Some((now, media));
        self.buffered_to = media;
    }

    /// Whether playback has started.
    pub fn started(&self) -> bool {
        self.start.is_some()
    }

    /// When playback reaches media time `m` (with the waits so far).
    pub fn due(&self, m: f64) -> Option<f64> {
        self.start.map(|(t0, m0)| t0 + (m - m0) + self.waited)
    }

    /// A unit `[m, m + dur)` fully arrived at `arrived`; units come in media order. Returns the
    /// wall time it starts playing (for the playback latency), or `None` if it is needed only
    /// after `cutoff` or lies wholly behind the playhead's start. A unit arriving after it is
    /// due is a stall of the difference.
    pub fn arrive(&mut self, m: f64, dur: f64, arrived: f64, cutoff: f64) -> Option<f64> {
        let (_, m0) = self.start?;
        if m + dur <= m0 {
            return None;
        }
        self.buffered_to = self.buffered_to.max(m + dur);
        let due = self.due(m.max(m0))?;
        if due >= cutoff {
            return None;
        }
        if arrived > due {
            self.stalls += 1;
            self.stall_ms += arrived - due;
            self.waited += arrived - due;
            return Some(arrived);
        }
        Some(due)
    }

    /// Counts `ms` more media as received (parts that arrived but whose place the tool had not
    /// yet read from a playlist when the run ended).
    pub fn extend(&mut self, ms: f64) {
        self.buffered_to += ms;
    }

    /// At the end of a run: if playback ran out of data before `cutoff` and nothing more
    /// arrived, that is one more stall (lasting until the cutoff).
    pub fn finish(&mut self, cutoff: f64) {
        if let Some(due) = self.due(self.buffered_to) {
            if due < cutoff {
                self.stalls += 1;
                self.stall_ms += cutoff - due;
            }
        }
    }
}

/// Shared by all HLS viewers of a run.
pub struct HlsShared {
    /// Wall clock anchor.
    pub clock: Clock,
    /// The publisher's frame table (for TS segments without PDT), if this process publishes.
    pub table: Option<Arc<FrameTable>>,
    /// Media start (wall ms) found by demuxing, per segment path: one demux per segment.
    origins: Mutex<HashMap<String, Option<f64>>>,
    /// Stalls and latency only count for units due before this (the publisher's stop).
    pub cutoff: Instant,
    /// Per-request timeout (blocking requests are held up to the server's limit).
    pub timeout: Duration,
}

impl HlsShared {
    /// Settings for a run.
    pub fn new(table: Option<Arc<FrameTable>>, cutoff: Instant, timeout: Duration) -> HlsShared {
        HlsShared {
            clock: Clock::new(),
            table,
            origins: Mutex::new(HashMap::new()),
            cutoff,
            timeout,
        }
    }

    /// The wall time the first video frame of a TS segment was sent by the publisher, from
    /// the first frame of it that can be matched (minus its DTS distance to the first).
    fn ts_origin(&self, path: &str, body: &[u8], arrived: Instant) -> Option<f64> {
        let table = self.table.as_ref()?;
        if let Ok(g) = self.origins.lock() {
            if let Some(v) = g.get(path) {
                return *v;
            }
        }
        let mut d = sluice_ts::TsDemuxer::new(sluice_ts::DemuxerConfig::default());
        let mut first_dts = None;
        let mut found = None;
        'outer: for chunk in body.chunks(188 * 64) {
            d.push(chunk);
            while let Some(ev) = d.poll() {
                let sluice_ts::DemuxEvent::Frame(f) = ev else {
                    continue;
                };
                if f.seq_header || f.flv_tag_type() != 9 || !is_coded_video(&f.body) {
                    continue;
                }
                let dts0 = *first_dts.get_or_insert(f.dts);
                let prefix = &f.body[..f.body.len().min(crate::frames::KEY_PREFIX)];
                if let Some(m) = table.lookup(frame_key(f.body.len() as u32, prefix), arrived) {
                    let sent = self.clock.wall(arrived) - m.latency.as_secs_f64() * 1000.0;
                    found = Some(sent - (f.dts - dts0) as f64);
                    break 'outer;
                }
            }
        }
        if let Ok(mut g) = self.origins.lock() {
            if g.len() > 4096 {
                g.clear();
            }
            g.insert(path.to_owned(), found);
        }
        found
    }
}

/// How a viewer ends: `Ok` when stopped by the tool.
pub type End = Result<(), String>;

fn wait_stop(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// Records a unit `[m, m + dur)` (media start `m`, wall ms, `None` when unknown) that arrived
/// at `arrived`; `play_from`, for the first unit, is where playback starts (else at `m`).
#[allow(clippy::too_many_arguments)]
fn record_unit(
    st: &mut HlsStats,
    ph: &mut Playhead,
    sh: &HlsShared,
    m: Option<f64>,
    media: f64,
    dur: f64,
    arrived: Instant,
    play_from: Option<f64>,
) -> Option<Instant> {
    st.units += 1;
    let arrived_w = sh.clock.wall(arrived);
    let cutoff = sh.clock.wall(sh.cutoff);
    let mut first_play = None;
    if !ph.started() {
        ph.start(arrived_w, play_from.unwrap_or(media).max(media));
        first_play = Some(arrived);
    }
    let plays = ph.arrive(media, dur, arrived_w, cutoff);
    match m {
        Some(m) => {
            if arrived < sh.cutoff {
                st.arrival_latency
                    .record(Duration::from_secs_f64(((arrived_w - m) / 1000.0).max(0.0)));
            }
            if let Some(p) = plays {
                // Media time at the start of this unit (or where playback started in it).
                let at = m + (ph.start.map_or(media, |s| s.1) - media).max(0.0);
                st.playback_latency
                    .record(Duration::from_secs_f64(((p - at) / 1000.0).max(0.0)));
            }
        }
        None => st.no_origin += 1,
    }
    first_play
}

/// Classic HLS: see the module docs. `first` is set to when playback started.
#[allow(clippy::too_many_arguments)]
pub async fn run_classic(
    authority: &str,
    path: &str,
    sh: &HlsShared,
    st: &mut HlsStats,
    connected: &mut bool,
    first: &mut Option<Instant>,
    bytes: &mut u64,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let mut conn = Conn::new(authority);
    let mut ph = Playhead::default();
    let mut next: Option<u64> = None;
    // Media time for playlists without PDT: EXTINF sums from the first segment fetched.
    let mut media_of: HashMap<u64, f64> = HashMap::new();
    let mut init_done = false;
    let mut target_ms = 2000.0;
    let result = loop {
        if wait_stop(stop) {
            break Ok(());
        }
        let polled = tokio::time::Instant::now();
        let r = conn.get(path, true, sh.timeout).await;
        st.count("playlist", &r);
        let r = match r {
            Ok(r) => r,
            Err(e) => break Err(e),
        };
        *bytes += r.bytes;
        if r.status != 200 {
            if !*connected {
                break Err(format!("http status {}", r.status));
            }
        } else {
            *connected = true;
            let pl = match Playlist::parse(&String::from_utf8_lossy(&r.body)) {
                Ok(p) => p,
                Err(e) => break Err(e),
            };
            if pl.target_ms > 0.0 {
                target_ms = pl.target_ms;
            }
            if !init_done {
                if let Some(map) = &pl.map {
                    let r = conn.get(&resolve(path, map), false, sh.timeout).await;
                    st.count("init", &r);
                    *bytes += r.as_ref().map_or(0, |r| r.bytes);
                }
                init_done = true;
            }
            let complete: Vec<_> = pl.complete().collect();
            if next.is_none() && !complete.is_empty() {
                next = Some(complete[complete.len().saturating_sub(3)].msn);
            }
            if let (Some(n), Some(first_msn)) = (next, complete.first().map(|s| s.msn)) {
                if n < first_msn {
                    st.skipped += first_msn - n;
                    next = Some(first_msn);
                }
            }
            for seg in complete {
                let Some(n) = next else { break };
                if seg.msn < n {
                    continue;
                }
                if wait_stop(stop) {
                    break;
                }
                let Some(uri) = &seg.uri else { continue };
                let seg_path = resolve(path, uri);
                let keep = seg.pdt_ms.is_none() && sh.table.is_some();
                let r = conn.get(&seg_path, keep, sh.timeout).await;
                st.count("segment", &r);
                let r = match r {
                    Ok(r) => r,
                    Err(e) => return finish(st, &mut ph, sh, &conn, Err(e)),
                };
                *bytes += r.bytes;
                next = Some(seg.msn + 1);
                if r.status != 200 {
                    st.skipped += 1;
                    continue;
                }
                st.fetched.insert((seg.msn, -1));
                let media = match seg.pdt_ms {
                    Some(p) => p,
                    None => {
                        let m = media_of
                            .get(&seg.msn)
                            .copied()
                            .unwrap_or_else(|| media_of.values().copied().fold(0.0, f64::max));
                        media_of.insert(seg.msn + 1, m + seg.duration_ms);
                        m
                    }
                };
                let origin = seg
                    .pdt_ms
                    .or_else(|| sh.ts_origin(&seg_path, &r.body, r.done));
                if let Some(t) = record_unit(
                    st,
                    &mut ph,
                    sh,
                    origin,
                    media,
                    seg.duration_ms,
                    r.done,
                    None,
                ) {
                    first.get_or_insert(t);
                }
            }
            // Playhead media times without PDT are EXTINF sums; keep the map small.
            if media_of.len() > 64 {
                let keep_from = next.unwrap_or(0).saturating_sub(8);
                media_of.retain(|k, _| *k >= keep_from);
            }
            if pl.ended {
                break Err("playlist ended".into());
            }
        }
        let wait = Duration::from_secs_f64((target_ms / 2.0).max(100.0) / 1000.0);
        tokio::select! {
            _ = stop.changed() => break Ok(()),
            _ = tokio::time::sleep_until(polled + wait) => {}
        }
    };
    finish(st, &mut ph, sh, &conn, result)
}

fn finish(st: &mut HlsStats, ph: &mut Playhead, sh: &HlsShared, conn: &Conn, r: End) -> End {
    ph.finish(sh.clock.wall(sh.cutoff.min(Instant::now())));
    st.stalls += ph.stalls;
    st.stall_ms += ph.stall_ms;
    st.connects += conn.connects;
    r
}

/// LL-HLS: see the module docs.
#[allow(clippy::too_many_arguments)]
pub async fn run_ll(
    authority: &str,
    path: &str,
    sh: &HlsShared,
    st: &mut HlsStats,
    connected: &mut bool,
    first: &mut Option<Instant>,
    bytes: &mut u64,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let mut pconn = Conn::new(authority);
    let r = pconn.get(path, true, sh.timeout).await;
    st.count("playlist", &r);
    let r = r?;
    *bytes += r.bytes;
    if r.status != 200 {
        st.connects += pconn.connects;
        return Err(format!("http status {}", r.status));
    }
    *connected = true;
    let pl = Playlist::parse(&String::from_utf8_lossy(&r.body))?;
    let (tx, rx) = watch::channel(Arc::new(pl));
    let base = path.split('?').next().unwrap_or(path).to_owned();
    let sep = if path.contains('?') { '&' } else { '?' };
    let q_base = if sep == '&' {
        path.to_owned()
    } else {
        base.clone()
    };
    let mut pstop = stop.clone();
    let playlists = async move {
        let mut reqs = 0u64;
        let mut errs: BTreeMap<u16, u64> = BTreeMap::new();
        let mut b = 0u64;
        let res: End = loop {
            let cur = tx.borrow().clone();
            let url = match cur.next_part() {
                Some((m, p)) if cur.can_block_reload => {
                    format!("{q_base}{sep}_HLS_msn={m}&_HLS_part={p}")
                }
                _ => path.to_owned(),
            };
            let r = tokio::select! {
                _ = pstop.changed() => break Ok(()),
                r = pconn.get(&url, true, sh.timeout) => r,
            };
            reqs += 1;
            match r {
                Ok(r) => {
                    b += r.bytes;
                    if r.status == 200 {
                        match Playlist::parse(&String::from_utf8_lossy(&r.body)) {
                            Ok(p) => {
                                let _ = tx.send(Arc::new(p));
                            }
                            Err(e) => break Err(e),
                        }
                    } else {
                        *errs.entry(r.status).or_default() += 1;
                        // Too far ahead or refused: back off a part, then reload plainly.
                        tokio::select! {
                            _ = pstop.changed() => break Ok(()),
                            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        }
                        match pconn.get(path, true, sh.timeout).await {
                            Ok(r) if r.status == 200 => {
                                b += r.bytes;
                                if let Ok(p) = Playlist::parse(&String::from_utf8_lossy(&r.body)) {
                                    let _ = tx.send(Arc::new(p));
                                }
                            }
                            Ok(r) => *errs.entry(r.status).or_default() += 1,
                            Err(e) => break Err(e),
                        }
                        reqs += 1;
                    }
                }
                Err(e) => {
                    *errs.entry(0).or_default() += 1;
                    break Err(format!("playlist: {e}"));
                }
            }
        };
        (res, reqs, errs, b, pconn.connects)
    };
    let media = ll_media(authority, &base, sh, st, first, bytes, rx, stop.clone());
    let ((pres, preqs, perrs, pbytes, pconnects), mres) = tokio::join!(playlists, media);
    *st.requests.entry("playlist").or_default() += preqs;
    for (k, v) in perrs {
        *st.errors.entry(k).or_default() += v;
    }
    *bytes += pbytes;
    st.connects += pconnects;
    match (mres, pres) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => Err(e),
        _ => Ok(()),
    }
}

/// The media side of an LL viewer: parts in order, the preload hint fetched as soon as it is
/// the next part.
#[allow(clippy::too_many_arguments)]
async fn ll_media(
    authority: &str,
    path: &str,
    sh: &HlsShared,
    st: &mut HlsStats,
    first: &mut Option<Instant>,
    bytes: &mut u64,
    mut rx: watch::Receiver<Arc<Playlist>>,
    mut stop: watch::Receiver<bool>,
) -> End {
    let mut conn = Conn::new(authority);
    let mut ph = Playhead::default();
    let pl = rx.borrow_and_update().clone();
    if let Some(map) = &pl.map {
        let r = conn.get(&resolve(path, map), false, sh.timeout).await;
        st.count("init", &r);
        *bytes += r.as_ref().map_or(0, |r| r.bytes);
    }
    // Start: PART-HOLD-BACK behind the end of the last part listed, from the independent part
    // at or before that point.
    let hold = pl
        .part_hold_back_ms
        .or(pl.part_target_ms.map(|t| 3.0 * t))
        .unwrap_or(3000.0);
    let mut parts: Vec<(u64, usize, f64, f64, bool)> = Vec::new(); // msn, i, start, dur, indep
    for s in &pl.segments {
        let mut t = s.pdt_ms.unwrap_or(f64::NAN);
        for (i, p) in s.parts.iter().enumerate() {
            parts.push((s.msn, i, t, p.duration_ms, p.independent));
            t += p.duration_ms;
        }
    }
    let Some(last) = parts.last() else {
        return finish(
            st,
            &mut ph,
            sh,
            &conn,
            Err("LL-HLS playlist without parts".into()),
        );
    };
    let play_from = last.2 + last.3 - hold;
    let at = parts.iter().rposition(|p| p.2 <= play_from).unwrap_or(0);
    let from = parts[..=at].iter().rposition(|p| p.4).unwrap_or(at);
    // The next part to fetch: (msn, index).
    let mut next = (parts[from].0, parts[from].1);
    // Parts fetched from the hint before the playlist listed them: (msn, i, arrived).
    let mut pending: Vec<(u64, usize, Instant)> = Vec::new();
    let result: End = loop {
        if wait_stop(&stop) {
            break Ok(());
        }
        let pl = rx.borrow_and_update().clone();
        // Resolve parts that arrived from hints now that the playlist lists them.
        while let Some(&(m, i, arrived)) = pending.first() {
            let Some(s) = pl.segment(m) else {
                if pl.first_msn().is_some_and(|f| m < f) {
                    pending.remove(0);
                    continue;
                }
                break;
            };
            let Some(p) = s.parts.get(i) else { break };
            let start = pl.part_start_ms(m, i);
            let media = start.unwrap_or(f64::NAN);
            if let Some(t) = record_unit(
                st,
                &mut ph,
                sh,
                start,
                media,
                p.duration_ms,
                arrived,
                Some(play_from),
            ) {
                first.get_or_insert(t);
            }
            pending.remove(0);
        }
        let (m, i) = next;
        let seg = pl.segment(m);
        if seg.is_none() && pl.first_msn().is_some_and(|f| m < f) {
            st.skipped += 1;
            let f = pl.first_msn().unwrap_or(m);
            next = (f, 0);
            continue;
        }
        if let Some(part) = seg.and_then(|s| s.parts.get(i)) {
            let ppath = resolve(path, &part.uri);
            let r = conn.get(&ppath, false, sh.timeout).await;
            st.count("part", &r);
            let r = match r {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            *bytes += r.bytes;
            if r.status == 200 {
                st.fetched.insert((m, i as i64));
                if pending.is_empty() {
                    let start = pl.part_start_ms(m, i);
                    let media = start.unwrap_or(f64::NAN);
                    if let Some(t) = record_unit(
                        st,
                        &mut ph,
                        sh,
                        start,
                        media,
                        part.duration_ms,
                        r.done,
                        Some(play_from),
                    ) {
                        first.get_or_insert(t);
                    }
                } else {
                    pending.push((m, i, r.done));
                }
            } else {
                st.skipped += 1;
            }
            next = (m, i + 1);
            continue;
        }
        if let Some(s) = seg.filter(|s| s.uri.is_some()) {
            // Segment m is complete with fewer parts than i (or its parts are no longer
            // listed: this viewer fell behind): on to the next segment.
            if s.parts.is_empty() {
                st.skipped += 1;
            }
            next = (m + 1, 0);
            continue;
        }
        if pl.next_part() == Some((m, i)) {
            if let Some(hint) = &pl.preload_hint {
                let r = conn.get(&resolve(path, hint), false, sh.timeout).await;
                st.count("hint", &r);
                let r = match r {
                    Ok(r) => r,
                    Err(e) => break Err(e),
                };
                *bytes += r.bytes;
                if r.status == 200 {
                    st.fetched.insert((m, i as i64));
                    pending.push((m, i, r.done));
                    next = (m, i + 1);
                    continue;
                }
                // The hinted part was not made (the segment was cut first): wait for the
                // playlist to say what came instead.
            }
        }
        tokio::select! {
            _ = stop.changed() => break Ok(()),
            r = rx.changed() => if r.is_err() { break Ok(()) },
        }
        // A part fetched from a hint that turned out to be the next segment's first part:
        // the playlist will list it under m + 1; re-key pending entries it cannot place.
        let pl = rx.borrow().clone();
        if let Some(&(pm, pi, arrived)) = pending.first() {
            if pl
                .segment(pm)
                .is_some_and(|s| s.uri.is_some() && s.parts.len() <= pi)
            {
                pending.remove(0);
                pending.insert(0, (pm + 1, 0, arrived));
                if next == (pm, pi + 1) {
                    next = (pm + 1, 1);
                }
            }
        }
    };
    // Parts that arrived from hints but were not listed yet when the run ended still fill the
    // buffer (their length is not known: about a part target).
    let pl = rx.borrow().clone();
    let part_ms = pl.part_target_ms.unwrap_or(200.0);
    for &(m, i, _) in &pending {
        ph.extend(
            pl.segment(m)
                .and_then(|s| s.parts.get(i))
                .map_or(part_ms, |p| p.duration_ms),
        );
    }
    finish(st, &mut ph, sh, &conn, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playhead_counts_late_units_as_stalls() {
        let mut p = Playhead::default();
        p.start(1000.0, 0.0);
        // Units of 2 s; the second arrives early, the third 500 ms late.
        assert_eq!(p.arrive(0.0, 2000.0, 1000.0, 1e9), Some(1000.0));
        assert_eq!(p.arrive(2000.0, 2000.0, 2500.0, 1e9), Some(3000.0));
        assert_eq!(p.stalls, 0);
        assert_eq!(p.arrive(4000.0, 2000.0, 5500.0, 1e9), Some(5500.0));
        assert_eq!((p.stalls, p.stall_ms), (1, 500.0));
        // The wait shifts every later due time.
        assert_eq!(p.due(6000.0), Some(7500.0));
        assert_eq!(p.arrive(6000.0, 2000.0, 7400.0, 1e9), Some(7500.0));
        assert_eq!(p.stalls, 1);
        // Needed after the cutoff: not counted.
        assert_eq!(p.arrive(8000.0, 2000.0, 20000.0, 9000.0), None);
        assert_eq!(p.stalls, 1);
    }

    #[test]
    fn playhead_runs_dry_at_the_end() {
        let mut p = Playhead::default();
        p.start(0.0, 0.0);
        p.arrive(0.0, 1000.0, 0.0, 1e9);
        p.finish(800.0);
        assert_eq!(p.stalls, 0, "still playing the buffer at the cutoff");
        p.finish(1500.0);
        assert_eq!((p.stalls, p.stall_ms), (1, 500.0));
    }

    #[test]
    fn playhead_starting_inside_a_unit() {
        let mut p = Playhead::default();
        // Playback starts at media 600 inside the unit [0, 1000).
        p.start(100.0, 600.0);
        assert_eq!(p.arrive(0.0, 1000.0, 100.0, 1e9), Some(100.0));
        assert_eq!(p.due(1000.0), Some(500.0));
        assert_eq!(p.arrive(1000.0, 200.0, 450.0, 1e9), Some(500.0));
        assert_eq!(p.stalls, 0);
    }

    #[test]
    fn clock_maps_instants() {
        let c = Clock::new();
        let later = c.inst + Duration::from_millis(1500);
        assert!((c.wall(later) - c.wall(c.inst) - 1500.0).abs() < 1e-6);
    }
}
