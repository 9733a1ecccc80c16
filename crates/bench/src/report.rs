//! Turns viewer results, publisher stats and server samples into the report: JSON for
//! machines, a few lines for people.

use crate::hist::Histogram;
use crate::procstat::Sample;
use crate::publisher::PublishStats;
use crate::viewer::ViewerResult;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// p50 / p99 / max in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Quantiles {
    /// Samples behind the figures.
    pub samples: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

impl Quantiles {
    fn of(h: &Histogram) -> Quantiles {
        Quantiles {
            samples: h.len(),
            p50_ms: ms(h.quantile(0.5)),
            p99_ms: ms(h.quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// Figures for one kind of viewer (normal, slow, stalled).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Group {
    /// `normal`, `slow` or `stalled`.
    pub kind: String,
    /// Viewers started.
    pub viewers: usize,
    /// Accepted by the server.
    pub connected: usize,
    /// Not accepted (connect error, HTTP status, RTMP error, timeout).
    pub failed: usize,
    /// How viewers ended, with counts (`end of test` and `… (after unpublish)` are normal ends).
    pub ended: BTreeMap<String, usize>,
    /// Time to first video frame, from starting to connect.
    pub ttff: Quantiles,
    /// End-to-end latency of video frames sent after each viewer connected.
    pub latency: Quantiles,
    /// The same for audio frames.
    pub audio_latency: Quantiles,
    /// Fewest coded video frames a connected viewer received.
    pub frames_min: u64,
    /// Median of the same.
    pub frames_median: u64,
    /// Lowest ratio of frames received to frames sent from its first frame on.
    pub ratio_min: f64,
    /// Median of the same.
    pub ratio_median: f64,
    /// Viewers that received frames that could not be matched to a send.
    pub unmatched_frames: u64,
    /// Bytes read by this group.
    pub bytes: u64,
    /// HLS figures, for HLS modes.
    pub hls: Option<HlsGroup>,
    /// Reconnect storm figures (when the run had one).
    pub reconnect: Option<ReconnectGroup>,
}

/// What a reconnect storm cost the viewers that took part.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconnectGroup {
    /// Viewers that dropped and reconnected.
    pub viewers: usize,
    /// Of them, live again (received a frame sent after their new connection was accepted).
    pub live_again: usize,
    /// From the drop to the first live frame.
    pub recover: Quantiles,
    /// Viewers not live again within 2 s of their drop (never live again included).
    pub over_2s: usize,
    /// Video frames the new connections did not deliver, summed over the viewers.
    pub missed_frames: u64,
}

/// HLS figures of a group of viewers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HlsGroup {
    /// Requests by kind (`playlist`, `init`, `segment`, `part`, `hint`).
    pub requests: BTreeMap<String, u64>,
    /// Responses other than 200 by status (`0`: no answer).
    pub errors: BTreeMap<String, u64>,
    /// Segments or parts received, all viewers.
    pub units: u64,
    /// Playhead stalls, all viewers.
    pub stalls: u64,
    /// Time stalled, all viewers, ms.
    pub stall_ms: f64,
    /// Viewers with at least one stall.
    pub viewers_stalled: usize,
    /// Units that left the playlist before being fetched.
    pub skipped: u64,
    /// Units whose media start was unknown (no PDT, no frame matched): no latency for them.
    pub no_origin: u64,
    /// Wall clock minus playhead media time (what a player shows as live latency).
    pub playback_latency: Quantiles,
    /// A unit's last byte minus its media start.
    pub arrival_latency: Quantiles,
    /// Distinct segments fetched by the group.
    pub distinct_segments: usize,
    /// Distinct parts fetched by the group.
    pub distinct_parts: usize,
    /// TCP connections opened, all viewers.
    pub connects: u64,
}

/// Server process figures from `/proc`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerStats {
    /// Process id sampled.
    pub pid: u32,
    /// RSS with the publisher running, before the first viewer.
    pub rss_baseline_kib: u64,
    /// Highest RSS from the first viewer to the end.
    pub rss_peak_kib: u64,
    /// (peak - baseline) / viewers connected.
    pub rss_per_viewer_kib: f64,
    /// CPU seconds used from the first viewer to the end.
    pub cpu_s: f64,
    /// `cpu_s` per GB (1e9 bytes) delivered to viewers.
    pub cpu_s_per_gb: f64,
    /// Every sample (`t_s` on the same clock as the two fields below).
    pub samples: Vec<Sample>,
    /// Sample clock when the first viewer was started.
    pub window_start_s: f64,
    /// Sample clock when the last viewer was due to start (`viewers / rate` after the first).
    pub ramp_end_s: f64,
    /// RSS before the first publisher connected.
    pub rss_before_publish_kib: u64,
    /// (baseline - before publishing) / publishers: what one publisher costs.
    pub rss_per_publisher_kib: f64,
    /// Bytes the publishers sent during the window (estimated from their steady rate).
    pub ingested_bytes: u64,
    /// `cpu_s` per GB ingested (meaningful when there are no viewers: ingest scenarios).
    pub cpu_s_per_ingest_gb: f64,
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Settings echoed back.
    pub settings: BTreeMap<String, String>,
    /// Seconds from the first viewer to the end of the drain.
    pub window_s: f64,
    /// Coded video frames the publisher sent.
    pub frames_sent: u64,
    /// Publisher figures.
    pub publisher: PublishStats,
    /// Per viewer kind.
    pub groups: Vec<Group>,
    /// Bytes read by all viewers.
    pub delivered_bytes: u64,
    /// Delivered throughput over the window.
    pub delivered_mbit_s: f64,
    /// Server RSS/CPU, when `--server-pid` was given.
    pub server: Option<ServerStats>,
    /// Server request counters, when `--metrics-url` was given.
    pub origin: Option<crate::metrics::OriginStats>,
}

fn median<T: Copy + PartialOrd>(v: &mut [T]) -> Option<T> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied()
}

/// Figures for the viewers of one kind; `frames_sent[k]` is what the publisher of viewer
/// `results[k]`'s stream sent.
pub fn group(kind: &str, results: &[&ViewerResult], frames_sent: &[u64]) -> Group {
    let mut g = Group {
        kind: kind.to_owned(),
        viewers: results.len(),
        ..Group::default()
    };
    let mut ttff = Histogram::new();
    let mut lat = Histogram::new();
    let mut audio_lat = Histogram::new();
    let mut frames = Vec::new();
    let mut ratios = Vec::new();
    let mut hls: Option<HlsGroup> = None;
    let (mut arrival, mut fetched) = (Histogram::new(), std::collections::BTreeSet::new());
    let mut recover = Histogram::new();
    for (r, &frames_sent) in results.iter().zip(frames_sent) {
        if let Some(rec) = r.recovery {
            let x = g.reconnect.get_or_insert_with(ReconnectGroup::default);
            x.viewers += 1;
            x.missed_frames += rec.missed;
            match rec.live_again {
                Some(d) => {
                    x.live_again += 1;
                    recover.record(d);
                    x.over_2s += usize::from(d > Duration::from_secs(2));
                }
                None => x.over_2s += 1,
            }
        }
        if let Some(st) = &r.hls {
            let h = hls.get_or_insert_with(HlsGroup::default);
            for (k, v) in &st.requests {
                *h.requests.entry((*k).to_owned()).or_default() += v;
            }
            for (k, v) in &st.errors {
                *h.errors.entry(k.to_string()).or_default() += v;
            }
            h.units += st.units;
            h.stalls += st.stalls;
            h.stall_ms += st.stall_ms;
            h.viewers_stalled += usize::from(st.stalls > 0);
            h.skipped += st.skipped;
            h.no_origin += st.no_origin;
            h.connects += st.connects;
            arrival.merge(&st.arrival_latency);
            fetched.extend(st.fetched.iter().copied());
        }
        *g.ended.entry(r.end.clone()).or_default() += 1;
        g.bytes += r.bytes;
        g.unmatched_frames += r.frames - r.matched;
        if !r.connected {
            g.failed += 1;
            continue;
        }
        g.connected += 1;
        if let Some(t) = r.ttff {
            ttff.record(t);
        }
        lat.merge(&r.latency);
        audio_lat.merge(&r.audio_latency);
        frames.push(r.frames);
        if r.hls.is_some() {
            continue;
        }
        let from = r.first_seq.unwrap_or(r.sent_at_connect);
        let expected = frames_sent.saturating_sub(from);
        ratios.push(if expected == 0 {
            1.0
        } else {
            r.frames as f64 / expected as f64
        });
    }
    if let Some(x) = &mut g.reconnect {
        x.recover = Quantiles::of(&recover);
    }
    g.ttff = Quantiles::of(&ttff);
    g.latency = Quantiles::of(&lat);
    g.audio_latency = Quantiles::of(&audio_lat);
    g.frames_min = frames.iter().copied().min().unwrap_or(0);
    g.frames_median = median(&mut frames).unwrap_or(0);
    g.ratio_min = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    if !g.ratio_min.is_finite() {
        g.ratio_min = 0.0;
    }
    g.ratio_median = median(&mut ratios).unwrap_or(0.0);
    if let Some(mut h) = hls {
        h.playback_latency = g.latency.clone();
        h.arrival_latency = Quantiles::of(&arrival);
        h.distinct_segments = fetched.iter().filter(|(_, p)| *p < 0).count();
        h.distinct_parts = fetched.iter().filter(|(_, p)| *p >= 0).count();
        g.hls = Some(h);
    }
    g
}

impl Report {
    /// The group of `kind`, if any viewer had it.
    pub fn group(&self, kind: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.kind == kind)
    }

    /// Viewers of `g` that ended before the end of the test, for reasons other than the
    /// publisher leaving.
    pub fn early_ends(g: &Group) -> usize {
        g.ended
            .iter()
            .filter(|(k, _)| {
                k.as_str() != crate::viewer::END_OF_TEST
                    && !k.ends_with(crate::viewer::AFTER_UNPUBLISH)
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// A short summary for people.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "window {:.1} s, publisher sent {} video frames ({} tags, max late {} ms), delivered {:.1} Mbit/s ({} bytes)",
            self.window_s, self.frames_sent, self.publisher.tags, self.publisher.max_late_ms,
            self.delivered_mbit_s, self.delivered_bytes
        );
        for g in &self.groups {
            if g.kind == "stalled" {
                let _ = writeln!(
                    s,
                    "{:8} viewers {} connected {} failed {} | bytes read {}",
                    g.kind, g.viewers, g.connected, g.failed, g.bytes
                );
            } else {
                let _ = writeln!(
                s,
                "{:8} viewers {} connected {} failed {} | TTFF p50 {} ms p99 {} ms | latency p50 {} ms p99 {} ms max {} ms ({} samples) | audio latency p50 {} ms p99 {} ms max {} ms | frames min {} median {} | received/sent min {:.3} median {:.3}",
                g.kind, g.viewers, g.connected, g.failed, g.ttff.p50_ms, g.ttff.p99_ms,
                g.latency.p50_ms, g.latency.p99_ms, g.latency.max_ms, g.latency.samples,
                g.audio_latency.p50_ms, g.audio_latency.p99_ms, g.audio_latency.max_ms,
                g.frames_min, g.frames_median, g.ratio_min, g.ratio_median
            );
            }
            if let Some(h) = &g.hls {
                let _ = writeln!(
                    s,
                    "{:8} hls: units {} (distinct segments {}, parts {}) | stalls {} ({:.0} ms, {} viewers) | skipped {} | arrival latency p50 {} ms p99 {} ms | no origin {} | requests {:?} | errors {:?} | connects {}",
                    "", h.units, h.distinct_segments, h.distinct_parts, h.stalls, h.stall_ms, h.viewers_stalled,
                    h.skipped, h.arrival_latency.p50_ms, h.arrival_latency.p99_ms, h.no_origin,
                    h.requests, h.errors, h.connects
                );
            }
            if let Some(x) = &g.reconnect {
                let _ = writeln!(
                    s,
                    "{:8} reconnect storm: {} viewers, {} live again | drop → live p50 {} ms p99 {} ms max {} ms | over 2 s {} | frames missed {}",
                    "", x.viewers, x.live_again, x.recover.p50_ms, x.recover.p99_ms, x.recover.max_ms, x.over_2s, x.missed_frames
                );
            }
            let ended: Vec<String> = g.ended.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let _ = writeln!(s, "{:8} ended: {}", "", ended.join(", "));
        }
        if let Some(sv) = &self.server {
            let _ = writeln!(
                s,
                "server pid {}: RSS baseline {} KiB peak {} KiB ({:.1} KiB/viewer) | CPU {:.2} s ({:.2} CPU-s/GB delivered)",
                sv.pid, sv.rss_baseline_kib, sv.rss_peak_kib, sv.rss_per_viewer_kib, sv.cpu_s, sv.cpu_s_per_gb
            );
            let _ = writeln!(
                s,
                "ingest: RSS before publishing {} KiB ({:.1} KiB/publisher) | {:.1} MB ingested in the window ({:.2} CPU-s/GB ingested = {:.3} cores per Gbit/s)",
                sv.rss_before_publish_kib, sv.rss_per_publisher_kib, sv.ingested_bytes as f64 / 1e6, sv.cpu_s_per_ingest_gb, sv.cpu_s_per_ingest_gb * 0.125
            );
        }
        if let Some(o) = &self.origin {
            let _ = writeln!(
                s,
                "server requests over the run: {:?} | held requests max {} mean {:.1}",
                o.requests, o.held_max, o.held_mean
            );
        }
        s
    }
}
