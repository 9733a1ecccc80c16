//! Whether a request can be answered now (RFC 8216bis §6.2.5.2, blocking playlist reload,
//! and §6.2.6, preload hints).
//!
//! | decision | playlist request | segment / part / init request |
//! |---|---|---|
//! | [`Decision::Ready`] | render and send | look it up and send (a miss is a 404) |
//! | [`Decision::Wait`] | hold until the window changes, then ask again; on the server's timeout (e.g. 3 target durations) 503 | same (the preload hint) |
//! | [`Decision::TooFar`] | 400: more than two segments, or the advance part limit, ahead | 404: not in the playlist and not the next part |
//! | [`Decision::Gone`] | — | 404 (or 410): evicted |

use crate::naming::Resource;
use crate::query::HlsQuery;
use crate::window::WindowState;

/// The answer to "can this request be served now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Answer now.
    Ready,
    /// Hold the request until the window changes, then decide again.
    Wait,
    /// Refuse: asks for something too far ahead (400 for a playlist, 404 for a file).
    TooFar,
    /// Refuse: the segment was evicted (404/410).
    Gone,
}

impl WindowState {
    /// The advance part limit: how many parts past the last one a `_HLS_part` may ask for
    /// (three seconds' worth of parts when the part target is under a second, else 3).
    pub fn advance_part_limit(&self) -> u64 {
        if self.part_target_ms < 1000 {
            3000u64.div_ceil(self.part_target_ms.max(1))
        } else {
            3
        }
    }

    /// Whether any complete segment is held (a playlist has something to list).
    pub fn has_complete(&self) -> bool {
        self.next_complete > self.first_msn
    }

    /// Decides a playlist request. Without `_HLS_msn`: ready once a complete segment exists.
    /// `_HLS_msn=M` alone waits for segment M to be complete; with `_HLS_part=P`, for part
    /// P of M or any later part. More than two segments past the last complete one, or
    /// more than the advance part limit past the last part, is too far. An old M is ready
    /// (the playlist holds M "or later"). O(1).
    pub fn playlist(&self, q: &HlsQuery) -> Decision {
        let Some(m) = q.msn else {
            return if self.has_complete() {
                Decision::Ready
            } else {
                Decision::Wait
            };
        };
        // Last complete is next_complete - 1, so "M > last + 2" is "M > next_complete + 1".
        if m > self.next_complete.saturating_add(1) {
            return Decision::TooFar;
        }
        let Some(p) = q.part else {
            return if m < self.next_complete {
                Decision::Ready
            } else {
                Decision::Wait
            };
        };
        let p = u64::from(p);
        let limit = self.advance_part_limit();
        let open = u64::from(self.open_parts);
        if m.saturating_add(1) < self.next_complete {
            // A later complete segment exists, so a later part does.
            Decision::Ready
        } else if m < self.next_complete {
            // M is the newest complete segment: its part P, or the open segment's first.
            if p < u64::from(self.last_complete_parts) || open > 0 {
                Decision::Ready
            } else if p >= u64::from(self.last_complete_parts) + limit {
                Decision::TooFar
            } else {
                Decision::Wait
            }
        } else if m == self.next_complete {
            if p < open {
                Decision::Ready
            } else if p >= open + limit {
                Decision::TooFar
            } else {
                Decision::Wait
            }
        } else if p >= limit {
            // M is the segment after the open one.
            Decision::TooFar
        } else {
            Decision::Wait
        }
    }

    /// Decides a file request. Segments: ready when complete, wait while open (a classic
    /// player never asks early; an LL one may fetch the segment of its last parts).
    /// Parts: ready when pushed, wait when it is the preload hint (the next part).
    /// Anything older than the window is gone; anything else ahead is too far. O(1).
    pub fn resource(&self, r: Resource) -> Decision {
        let (m, part) = match r {
            Resource::Playlist => return self.playlist(&HlsQuery::default()),
            Resource::Init(_) => return Decision::Ready,
            Resource::Segment(m) => (m, None),
            Resource::Part(m, p) => (m, Some(u64::from(p))),
        };
        if m < self.first_msn {
            return Decision::Gone;
        }
        if m < self.next_complete {
            return Decision::Ready;
        }
        if m > self.next_complete {
            return Decision::TooFar;
        }
        let open = u64::from(self.open_parts);
        match part {
            None => Decision::Wait,
            Some(p) if p < open => Decision::Ready,
            Some(p) if p == open => Decision::Wait,
            Some(_) => Decision::TooFar,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(first: u64, next: u64, open_parts: u32, last_parts: u32) -> WindowState {
        WindowState {
            first_msn: first,
            next_complete: next,
            open_parts,
            open: open_parts > 0,
            last_complete_parts: last_parts,
            part_target_ms: 200,
        }
    }

    fn q(msn: u64, part: Option<u32>) -> HlsQuery {
        HlsQuery {
            msn: Some(msn),
            part,
            skip: None,
        }
    }

    #[test]
    fn playlist_blocking() {
        use Decision::*;
        // Segments 3..=9 complete (10 parts each), segment 10 open with 4 parts.
        let s = state(3, 10, 4, 10);
        assert_eq!(s.advance_part_limit(), 15);
        assert_eq!(s.playlist(&HlsQuery::default()), Ready);
        assert_eq!(s.playlist(&q(0, None)), Ready);
        assert_eq!(s.playlist(&q(9, None)), Ready);
        assert_eq!(s.playlist(&q(10, None)), Wait);
        assert_eq!(s.playlist(&q(11, None)), Wait);
        assert_eq!(s.playlist(&q(12, None)), TooFar);
        assert_eq!(s.playlist(&q(u64::MAX, Some(0))), TooFar);
        assert_eq!(s.playlist(&q(9, Some(50))), Ready);
        assert_eq!(s.playlist(&q(10, Some(3))), Ready);
        assert_eq!(s.playlist(&q(10, Some(4))), Wait);
        assert_eq!(s.playlist(&q(10, Some(18))), Wait);
        assert_eq!(s.playlist(&q(10, Some(19))), TooFar);
        assert_eq!(s.playlist(&q(11, Some(0))), Wait);
        assert_eq!(s.playlist(&q(11, Some(15))), TooFar);
        // Just after a close: segment 10 complete with 10 parts, nothing open.
        let s = state(3, 11, 0, 10);
        assert_eq!(s.playlist(&q(10, Some(9))), Ready);
        assert_eq!(s.playlist(&q(10, Some(10))), Wait);
        assert_eq!(s.playlist(&q(11, Some(0))), Wait);
        // Nothing yet.
        let s = state(0, 0, 0, 0);
        assert_eq!(s.playlist(&HlsQuery::default()), Wait);
        assert_eq!(s.playlist(&q(0, Some(0))), Wait);
        assert_eq!(s.playlist(&q(1, None)), Wait);
        assert_eq!(s.playlist(&q(2, None)), TooFar);
    }

    #[test]
    fn resources() {
        use Decision::*;
        let s = state(3, 10, 4, 10);
        assert_eq!(s.resource(Resource::Segment(2)), Gone);
        assert_eq!(s.resource(Resource::Part(2, 0)), Gone);
        assert_eq!(s.resource(Resource::Segment(9)), Ready);
        assert_eq!(s.resource(Resource::Segment(10)), Wait);
        assert_eq!(s.resource(Resource::Segment(11)), TooFar);
        assert_eq!(s.resource(Resource::Part(10, 3)), Ready);
        assert_eq!(s.resource(Resource::Part(10, 4)), Wait);
        assert_eq!(s.resource(Resource::Part(10, 5)), TooFar);
        assert_eq!(s.resource(Resource::Part(11, 0)), TooFar);
        assert_eq!(s.resource(Resource::Init(0)), Ready);
        assert_eq!(s.resource(Resource::Playlist), Ready);
    }
}
