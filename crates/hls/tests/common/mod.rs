//! Test driver: frames through a `Cutter` into a `Window`, as the server glue will do.

#![allow(dead_code)]

use bytes::Bytes;
use sluice_hls::{Cut, Cutter, FrameKind, Window, WindowConfig};

pub const PDT0: u64 = 1_700_000_000_000;

pub struct Driver {
    pub cutter: Cutter,
    pub window: Window,
    buf: Vec<Bytes>,
    independent: bool,
    pub dropped: usize,
}

impl Driver {
    pub fn new(config: WindowConfig, has_video: bool) -> Driver {
        Driver {
            cutter: Cutter::new(&config, has_video),
            window: Window::new(config).unwrap(),
            buf: Vec::new(),
            independent: true,
            dropped: 0,
        }
    }

    /// Frames of the current part, not yet pushed to the window.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, dts_ms: u64, kind: FrameKind, payload: Bytes) {
        match self.cutter.push(dts_ms, kind) {
            Cut::Drop => {
                self.dropped += 1;
                return;
            }
            Cut::Continue => {}
            Cut::Part {
                ended_ms,
                independent,
            } => {
                let chunks = std::mem::take(&mut self.buf);
                self.window
                    .push_part(ended_ms as u32, self.independent, chunks)
                    .unwrap();
                self.independent = independent;
            }
            Cut::Segment { ended_ms } => {
                let start = self.cutter.segment_start_ms().unwrap();
                if let Some(d) = ended_ms {
                    let chunks = std::mem::take(&mut self.buf);
                    self.window
                        .push_part(d as u32, self.independent, chunks)
                        .unwrap();
                    self.window.close_segment(start).unwrap();
                }
                self.window
                    .open_segment(start, PDT0 + start, false)
                    .unwrap();
                self.independent = true;
            }
        }
        self.buf.push(payload);
    }
}

/// Video at `fps` with a keyframe every `gop` frames, plus AAC at 48 kHz if `audio`, merged
/// in dts order (video first on ties), for `secs` seconds: (dts ms, kind).
pub fn av_frames(fps: f64, gop: u64, audio: bool, secs: f64) -> Vec<(u64, FrameKind)> {
    let mut v = Vec::new();
    let mut i = 0u64;
    loop {
        let t = i as f64 * 1000.0 / fps;
        if t >= secs * 1000.0 {
            break;
        }
        // (`is_multiple_of` is newer than the workspace's rust-version.)
        let kind = match i % gop {
            0 => FrameKind::Keyframe,
            _ => FrameKind::Video,
        };
        v.push((t.round() as u64, kind));
        i += 1;
    }
    if audio {
        let mut j = 0u64;
        loop {
            let t = j as f64 * 1024.0 * 1000.0 / 48_000.0;
            if t >= secs * 1000.0 {
                break;
            }
            v.push((t.round() as u64, FrameKind::Audio));
            j += 1;
        }
    }
    v.sort_by_key(|&(t, k)| (t, k == FrameKind::Audio));
    v
}
