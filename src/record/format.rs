//! One file format's encoder: frames (on the file's own timeline, ms from its start) in, bytes
//! out into a buffer the writer flushes at fragment boundaries. fMP4 reuses `sluice-fmp4`, TS
//! `sluice-ts`, FLV the tag framing of `sluice-flv`.

use bytes::{BufMut, BytesMut};
use sluice_flv::tag::{file_header, previous_tag_size, write_tag_header, TAG_HEADER_LEN};
use sluice_fmp4::{Muxer, TrackConfig};
use sluice_media::{Frame, Track};
use sluice_ts::{AudioTrack, TsMuxer, TsTracks, VideoTrack};

use crate::config::RecordFormat;

/// The decoder configuration a file is opened with.
#[derive(Clone, Default)]
pub struct Headers {
    pub metadata: Option<Frame>,
    pub video_seq: Option<Frame>,
    pub audio_seq: Option<Frame>,
}

/// An encoder for one open file.
pub enum Encoder {
    Fmp4(Muxer),
    Flv,
    Ts(TsMuxer),
}

impl Encoder {
    /// Starts a file: its header bytes go to `out`. Errors when the codecs cannot be written
    /// in this format.
    pub fn open(format: RecordFormat, h: &Headers, out: &mut BytesMut) -> Result<Encoder, String> {
        match format {
            RecordFormat::Fmp4 => {
                let mut tracks = Vec::new();
                if let Some(v) = &h.video_seq {
                    tracks
                        .push(TrackConfig::from_sequence_header(1, v).map_err(|e| e.to_string())?);
                }
                if let Some(a) = &h.audio_seq {
                    tracks
                        .push(TrackConfig::from_sequence_header(2, a).map_err(|e| e.to_string())?);
                }
                let m = Muxer::new(tracks).map_err(|e| e.to_string())?;
                out.put_slice(&m.init_segment().map_err(|e| e.to_string())?);
                Ok(Encoder::Fmp4(m))
            }
            RecordFormat::Flv => {
                out.put_slice(&file_header(h.audio_seq.is_some(), h.video_seq.is_some()));
                for f in [&h.metadata, &h.video_seq, &h.audio_seq]
                    .into_iter()
                    .flatten()
                {
                    flv_tag(out, f, 0);
                }
                Ok(Encoder::Flv)
            }
            RecordFormat::Ts => {
                let video = match &h.video_seq {
                    Some(v) => Some(VideoTrack::from_seq_header(v).map_err(|e| e.to_string())?),
                    None => None,
                };
                let audio = match &h.audio_seq {
                    Some(a) => Some(AudioTrack::from_seq_header(a).map_err(|e| e.to_string())?),
                    None => None,
                };
                let mut m = TsMuxer::new(TsTracks { video, audio });
                m.write_tables(out);
                Ok(Encoder::Ts(m))
            }
        }
    }

    /// Adds one media frame (`frame.dts` already on the file's timeline).
    pub fn frame(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), String> {
        match self {
            Encoder::Fmp4(m) => m.push(frame).map(|_| ()).map_err(|e| e.to_string()),
            Encoder::Flv => {
                flv_tag(out, frame, frame.dts.clamp(0, i64::from(u32::MAX)) as u32);
                Ok(())
            }
            Encoder::Ts(m) => {
                if frame.track == Track::Video && frame.keyframe {
                    m.write_tables(out);
                }
                m.write_frame(out, frame)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Moves what is complete before `before_ms` into `out` (fMP4: one `moof`+`mdat`); with
    /// `None`, everything, guessing the last samples' durations (a gap or the file's end).
    pub fn cut(&mut self, before_ms: Option<i64>, out: &mut BytesMut) -> Result<(), String> {
        if let Encoder::Fmp4(m) = self {
            let frag = match before_ms {
                Some(t) => m.fragment_before(t),
                None => m.flush(),
            }
            .map_err(|e| e.to_string())?;
            if let Some(f) = frag {
                f.write_to(out);
            }
        }
        Ok(())
    }
}

/// One FLV tag, header + body + PreviousTagSize, copied into `out`.
fn flv_tag(out: &mut BytesMut, f: &Frame, ts: u32) {
    let mut h = [0u8; TAG_HEADER_LEN];
    let size = f.body.len().min(0x00ff_ffff) as u32;
    write_tag_header(&mut h, f.flv_tag_type(), size, ts);
    out.put_slice(&h);
    out.put_slice(&f.body[..size as usize]);
    out.put_slice(&previous_tag_size(size));
}
