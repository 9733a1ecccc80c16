//! A media playlist reader for the HLS client modes: just the tags a player needs to follow a
//! live stream (classic and LL-HLS). Unknown tags are skipped; a playlist without
//! `#EXTM3U` is an error. Works for sluice's playlists and nginx-rtmp's.

/// One `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// URI as written (relative to the playlist).
    pub uri: String,
    /// `DURATION`, ms.
    pub duration_ms: f64,
    /// `INDEPENDENT=YES`.
    pub independent: bool,
}

/// One media segment: complete (with `EXTINF` and a URI) or the open one at the end (parts
/// only).
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// URI of the whole segment; `None` for the open segment.
    pub uri: Option<String>,
    /// `EXTINF` duration, ms (for the open segment: the sum of its parts).
    pub duration_ms: f64,
    /// `EXT-X-PROGRAM-DATE-TIME`, ms since the Unix epoch (carried over from the previous
    /// segment plus its duration when the tag is missing on this one).
    pub pdt_ms: Option<f64>,
    /// Parts listed for it (LL-HLS; empty otherwise or when they have been dropped).
    pub parts: Vec<Part>,
}

/// What a player reads from a media playlist.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Playlist {
    /// `EXT-X-TARGETDURATION`, ms.
    pub target_ms: f64,
    /// `EXT-X-PART-INF:PART-TARGET`, ms.
    pub part_target_ms: Option<f64>,
    /// `EXT-X-SERVER-CONTROL:PART-HOLD-BACK`, ms.
    pub part_hold_back_ms: Option<f64>,
    /// `CAN-BLOCK-RELOAD=YES`.
    pub can_block_reload: bool,
    /// `EXT-X-MAP` URI (fMP4 init segment).
    pub map: Option<String>,
    /// Complete segments, then the open one (if it has parts listed), in order.
    pub segments: Vec<Segment>,
    /// `EXT-X-PRELOAD-HINT:TYPE=PART` URI.
    pub preload_hint: Option<String>,
    /// `EXT-X-ENDLIST`.
    pub ended: bool,
}

fn attr<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], q[end + 1..].trim_start_matches(','))
        } else {
            match after.find(',') {
                Some(c) => (&after[..c], &after[c + 1..]),
                None => (after, ""),
            }
        };
        if key == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

fn secs_ms(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().map(|v| v * 1000.0)
}

/// Parses `2026-11-27T23:09:13.123Z` (or with a `+00:00`/`+hh:mm` offset) to ms since the epoch.
pub fn parse_datetime_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let (y, mo, da): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (clock, offset_min) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0i64)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let off = off[1..].replace(':', "");
        let h: i64 = off.get(..2)?.parse().ok()?;
        let m: i64 = off.get(2..4).unwrap_or("0").parse().ok()?;
        (c, sign * (h * 60 + m))
    } else {
        (time, 0)
    };
    let mut c = clock.split(':');
    let h: i64 = c.next()?.parse().ok()?;
    let mi: i64 = c.next()?.parse().ok()?;
    let sec: f64 = c.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 - offset_min * 60;
    Some(secs as f64 * 1000.0 + sec * 1000.0)
}

impl Playlist {
    /// Parses a media playlist.
    pub fn parse(text: &str) -> Result<Playlist, String> {
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some("#EXTM3U") {
            return Err("playlist: no #EXTM3U".into());
        }
        let mut p = Playlist::default();
        let mut msn = 0u64;
        let mut pending_pdt: Option<f64> = None;
        let mut pending_dur: Option<f64> = None;
        let mut parts: Vec<Part> = Vec::new();
        let mut last_end_pdt: Option<f64> = None;
        for l in lines {
            if let Some(v) = l.strip_prefix("#EXT-X-TARGETDURATION:") {
                p.target_ms = secs_ms(v).unwrap_or(0.0);
            } else if let Some(v) = l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                msn = v
                    .trim()
                    .parse()
                    .map_err(|_| "playlist: bad MEDIA-SEQUENCE")?;
            } else if let Some(v) = l.strip_prefix("#EXT-X-PART-INF:") {
                p.part_target_ms = attr(v, "PART-TARGET").and_then(secs_ms);
            } else if let Some(v) = l.strip_prefix("#EXT-X-SERVER-CONTROL:") {
                p.can_block_reload = attr(v, "CAN-BLOCK-RELOAD") == Some("YES");
                p.part_hold_back_ms = attr(v, "PART-HOLD-BACK").and_then(secs_ms);
            } else if let Some(v) = l.strip_prefix("#EXT-X-MAP:") {
                p.map = attr(v, "URI").map(str::to_owned);
            } else if let Some(v) = l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
                pending_pdt = parse_datetime_ms(v);
            } else if let Some(v) = l.strip_prefix("#EXT-X-PART:") {
                if let (Some(uri), Some(d)) = (attr(v, "URI"), attr(v, "DURATION")) {
                    parts.push(Part {
                        uri: uri.to_owned(),
                        duration_ms: secs_ms(d).unwrap_or(0.0),
                        independent: attr(v, "INDEPENDENT") == Some("YES"),
                    });
                }
            } else if let Some(v) = l.strip_prefix("#EXTINF:") {
                pending_dur = secs_ms(v.split(',').next().unwrap_or(""));
            } else if let Some(v) = l.strip_prefix("#EXT-X-PRELOAD-HINT:") {
                if attr(v, "TYPE") == Some("PART") {
                    p.preload_hint = attr(v, "URI").map(str::to_owned);
                }
            } else if let Some(v) = l.strip_prefix("#EXT-X-SKIP:") {
                let n: u64 = attr(v, "SKIPPED-SEGMENTS")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                msn += n;
            } else if l == "#EXT-X-ENDLIST" {
                p.ended = true;
            } else if !l.starts_with('#') {
                let duration_ms = pending_dur.take().unwrap_or(0.0);
                let pdt_ms = pending_pdt.take().or(last_end_pdt);
                last_end_pdt = pdt_ms.map(|t| t + duration_ms);
                p.segments.push(Segment {
                    msn,
                    uri: Some(l.to_owned()),
                    duration_ms,
                    pdt_ms,
                    parts: std::mem::take(&mut parts),
                });
                msn += 1;
            }
        }
        if !parts.is_empty() {
            let pdt_ms = pending_pdt.or(last_end_pdt);
            p.segments.push(Segment {
                msn,
                uri: None,
                duration_ms: parts.iter().map(|x| x.duration_ms).sum(),
                pdt_ms,
                parts,
            });
        }
        Ok(p)
    }

    /// Sequence number of the first segment listed.
    pub fn first_msn(&self) -> Option<u64> {
        self.segments.first().map(|s| s.msn)
    }

    /// The segment `msn`, if listed.
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.first_msn()?;
        self.segments
            .get(usize::try_from(msn.checked_sub(first)?).ok()?)
    }

    /// Complete segments (with a URI).
    pub fn complete(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().filter(|s| s.uri.is_some())
    }

    /// The next part the server will publish: `(msn, index)` after the last part listed, the
    /// position the preload hint stands for and a blocking reload asks for.
    pub fn next_part(&self) -> Option<(u64, usize)> {
        let last = self.segments.last()?;
        if last.uri.is_some() {
            Some((last.msn + 1, 0))
        } else {
            Some((last.msn, last.parts.len()))
        }
    }

    /// Where a part starts on the wall clock (PDT of its segment plus the parts before it).
    pub fn part_start_ms(&self, msn: u64, i: usize) -> Option<f64> {
        let s = self.segment(msn)?;
        Some(s.pdt_ms? + s.parts.iter().take(i).map(|p| p.duration_ms).sum::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=0.600
#EXT-X-PART-INF:PART-TARGET=0.200
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init1.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXT-X-PART:DURATION=1.000,URI=\"part100.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI=\"part100.1.m4s\"
#EXTINF:2.000,
seg100.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
#EXT-X-PART:DURATION=0.200,URI=\"part101.0.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part101.1.m4s\"
";

    #[test]
    fn ll_playlist() {
        let p = Playlist::parse(LL).unwrap();
        assert_eq!(p.target_ms, 2000.0);
        assert_eq!(p.part_target_ms, Some(200.0));
        assert_eq!(p.part_hold_back_ms, Some(600.0));
        assert!(p.can_block_reload);
        assert_eq!(p.map.as_deref(), Some("init1.mp4"));
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[0].uri.as_deref(), Some("seg100.m4s"));
        assert_eq!(p.segments[0].parts.len(), 2);
        assert!(p.segments[0].parts[0].independent && !p.segments[0].parts[1].independent);
        assert_eq!(p.segments[1].uri, None);
        assert_eq!(p.segments[1].msn, 101);
        assert_eq!(p.preload_hint.as_deref(), Some("part101.1.m4s"));
        assert_eq!(p.next_part(), Some((101, 1)));
        assert_eq!(p.part_start_ms(100, 1), Some(1_700_000_001_000.0));
        assert_eq!(p.part_start_ms(101, 0), Some(1_700_000_002_000.0));
        assert_eq!(p.complete().count(), 1);
    }

    #[test]
    fn nginx_rtmp_playlist_without_pdt() {
        let p = Playlist::parse(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-TARGETDURATION:3\n\
             #EXTINF:2.000,\nb-7.ts\n#EXTINF:2.480,\nb-8.ts\n",
        )
        .unwrap();
        assert_eq!(p.first_msn(), Some(7));
        assert_eq!(p.segment(8).unwrap().uri.as_deref(), Some("b-8.ts"));
        assert_eq!(p.segment(8).unwrap().duration_ms, 2480.0);
        assert_eq!(p.segment(8).unwrap().pdt_ms, None);
        assert_eq!(p.next_part(), Some((9, 0)));
        assert!(Playlist::parse("junk").is_err());
    }

    #[test]
    fn datetimes() {
        assert_eq!(
            parse_datetime_ms("2023-11-14T22:13:20.000Z"),
            Some(1_700_000_000_000.0)
        );
        assert_eq!(
            parse_datetime_ms("2023-11-14T23:13:20.5+01:00"),
            Some(1_700_000_000_500.0)
        );
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00Z"), Some(0.0));
    }
}
