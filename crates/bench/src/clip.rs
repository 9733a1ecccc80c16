//! The FLV clip the publisher loops: tags in file order with timestamps rebased to 0.

use crate::frames::{is_coded_audio, is_coded_video, FrameTable, KEY_PREFIX};
use bytes::{BufMut, Bytes, BytesMut};
use std::path::Path;

/// One tag to publish.
#[derive(Debug, Clone)]
pub struct ClipTag {
    /// RTMP message type: 8 audio, 9 video, 18 data.
    pub msg_type: u8,
    /// Timestamp in ms from the clip's first tag.
    pub ts: u32,
    /// Body as in the file (data tags get the `@setDataFrame` prefix publishers send).
    pub body: Bytes,
    /// Index among the clip's coded video frames, if it is one.
    pub frame: Option<usize>,
    /// Index among the clip's coded audio frames, if it is one.
    pub audio: Option<usize>,
    /// Sequence headers and metadata: sent on the first loop only.
    pub first_loop_only: bool,
}

/// A clip, ready to loop.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Tags in file order.
    pub tags: Vec<ClipTag>,
    /// Loop length in ms: last timestamp plus one video frame interval, so timestamps keep
    /// increasing evenly across loops.
    pub loop_ms: u32,
    /// Coded video frames per loop.
    pub video_frames: usize,
}

/// `@setDataFrame` as an AMF0 string, which RTMP publishers put before `onMetaData`.
const SET_DATA_FRAME: &[u8] = b"\x02\x00\x0d@setDataFrame";

impl Clip {
    /// Reads an FLV file.
    pub fn load(path: &Path) -> Result<Clip, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let (_, tags) =
            sluice_flv::read_all(&data).map_err(|e| format!("{}: {e}", path.display()))?;
        let first_ts = tags.iter().map(|t| t.timestamp).min().unwrap_or(0);
        let mut out = Vec::with_capacity(tags.len());
        let mut video_ts = Vec::new();
        let mut audio_frames = 0;
        let mut last_ts = 0;
        for t in tags {
            let ts = t.timestamp - first_ts;
            last_ts = last_ts.max(ts);
            let mut audio = None;
            let (body, frame, first_loop_only) = match t.tag_type {
                9 if is_coded_video(&t.body) => {
                    video_ts.push(ts);
                    (t.body, Some(video_ts.len() - 1), false)
                }
                8 => {
                    let seq = !is_coded_audio(&t.body);
                    if !seq {
                        audio = Some(audio_frames);
                        audio_frames += 1;
                    }
                    (t.body, None, seq)
                }
                18 => {
                    let mut b = BytesMut::with_capacity(SET_DATA_FRAME.len() + t.body.len());
                    b.put_slice(SET_DATA_FRAME);
                    b.put_slice(&t.body);
                    (b.freeze(), None, true)
                }
                _ => (t.body, None, true),
            };
            out.push(ClipTag {
                msg_type: t.tag_type,
                ts,
                body,
                frame,
                audio,
                first_loop_only,
            });
        }
        if video_ts.is_empty() {
            return Err(format!("{}: no coded video frames", path.display()));
        }
        let interval = if video_ts.len() > 1 {
            (video_ts[video_ts.len() - 1] - video_ts[0]) / (video_ts.len() as u32 - 1)
        } else {
            40
        };
        Ok(Clip {
            tags: out,
            loop_ms: last_ts + interval.max(1),
            video_frames: video_ts.len(),
        })
    }

    /// The matching table for this clip's coded video and audio frames.
    pub fn frame_table(&self) -> FrameTable {
        FrameTable::with_audio(
            self.tags.iter().filter(|t| t.frame.is_some()).map(key),
            self.tags.iter().filter(|t| t.audio.is_some()).map(key),
        )
    }
}

/// A tag's key material for the frame table: body length and first bytes.
fn key(t: &ClipTag) -> (u32, &[u8]) {
    (t.body.len() as u32, &t.body[..t.body.len().min(KEY_PREFIX)])
}
