//! The demuxer: a byte stream of transport packets in, [`Frame`]s in FLV tag body form out.
//!
//! Layers, bottom up:
//! 1. **Sync**: packets are 188 bytes from a `0x47`. When the byte where a packet should start
//!    is not `0x47`, sync is lost (counted once); the demuxer then scans for a `0x47` that is
//!    followed by another one 188 bytes later, dropping the bytes before it. The decision only
//!    depends on the bytes, never on how they were cut into pushes.
//! 2. **Packets**: transport-error packets and null packets are dropped; continuity counters are
//!    checked per PID (a repeated counter is the allowed duplicate and is dropped; a gap is
//!    counted and damages the PES in progress, which is then dropped); a
//!    `discontinuity_indicator` resets the counter and is counted; the PCR is recorded.
//! 3. **PSI**: PAT and PMT sections, reassembled across packets (capped at 1024 bytes), CRC
//!    checked. The first program of the PAT is followed. A PMT that changes the program's
//!    streams yields [`DemuxEvent::Program`].
//! 4. **PES**: reassembled per PID, capped at [`DemuxerConfig::max_pes_bytes`]; a bounded PES
//!    ends when its length is reached, an unbounded one (video) at the next
//!    `payload_unit_start`. A declared length over the cap, or an unbounded PES that grows past
//!    it, is dropped without allocating past the cap, and counted.
//! 5. **Elementary streams** ([`crate::es`]): the first H.264/H.265 stream and the first AAC
//!    (ADTS) or Opus (private PES with the `Opus` registration descriptor) stream of the
//!    program become frames. Other streams (MP3, AC-3, data) are ignored.
//!
//! Timestamps: PTS/DTS are unwrapped (33-bit wrap) on one monotonic timeline shared by all
//! streams, and given in milliseconds relative to the first PTS/DTS the demuxer sees, so the
//! first frame is at (about) 0. A stream whose first timestamp is earlier than that (audio
//! muxed after video with an earlier PTS) gets small negative times.

use std::collections::VecDeque;

use bytes::{Buf, BytesMut};

use sluice_media::{Codec, NalCodec};

use crate::es::{AudioEs, OpusEs, VideoEs};
use crate::packet::{
    AdaptationField, PacketHeader, Pcr, NULL_PID, PACKET_SIZE, PAT_PID, SYNC_BYTE,
};
use crate::pes::PesHeader;
use crate::psi::{parse_pat, parse_pmt, stream_type, Pmt, PmtStream, MAX_SECTION};
use crate::timestamp::Unwrapper;

/// Limits of a [`TsDemuxer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemuxerConfig {
    /// Largest PES packet kept, in bytes. A PES declaring more, or an unbounded one growing
    /// past it, is dropped ([`DemuxStats::pes_oversized`]). Default 4 MiB: a 4K intra frame at
    /// broadcast bitrates fits, a hostile stream cannot make the demuxer hold more than this
    /// per stream.
    pub max_pes_bytes: usize,
}

impl Default for DemuxerConfig {
    fn default() -> Self {
        DemuxerConfig {
            max_pes_bytes: 4 << 20,
        }
    }
}

/// Counters of everything the demuxer tolerated. None of these stop it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemuxStats {
    /// Transport packets processed.
    pub packets: u64,
    /// Times the sync byte was not where a packet should start.
    pub sync_losses: u64,
    /// Bytes skipped while looking for sync.
    pub bytes_skipped: u64,
    /// Packets with `transport_error_indicator` set (dropped).
    pub transport_errors: u64,
    /// Continuity-counter gaps (lost packets).
    pub continuity_errors: u64,
    /// Packets with `discontinuity_indicator` set.
    pub discontinuities: u64,
    /// PSI sections dropped for a bad CRC or malformed contents.
    pub psi_errors: u64,
    /// PES packets dropped for exceeding [`DemuxerConfig::max_pes_bytes`].
    pub pes_oversized: u64,
    /// PES packets dropped for a bad header, lost packets or a premature end.
    pub pes_dropped: u64,
    /// Scrambled packets (dropped: no descrambling).
    pub scrambled: u64,
    /// Access units the splitter dropped for size.
    pub access_units_dropped: u64,
    /// Video frames dropped because no decoder configuration (SPS/PPS) had been seen yet.
    pub video_frames_before_config: u64,
    /// In-band parameter sets that did not make a decoder configuration record.
    pub bad_parameter_sets: u64,
    /// ADTS sync losses and unsupported ADTS frames.
    pub adts_errors: u64,
    /// AAC frames dropped because no PTS had been seen yet.
    pub audio_frames_without_pts: u64,
    /// Video frames emitted.
    pub video_frames: u64,
    /// Audio frames emitted.
    pub audio_frames: u64,
    /// The last PCR seen on the program's PCR PID.
    pub last_pcr: Option<Pcr>,
}

/// One elementary stream of the program, as the demuxer follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EsInfo {
    /// The PID carrying it.
    pub pid: u16,
    /// The PMT stream type.
    pub stream_type: u8,
    /// The codec (`Codec::Other(stream_type)` when not decoded into frames).
    pub codec: Codec,
}

/// The program the demuxer follows, from its PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramInfo {
    /// The program number.
    pub program_number: u16,
    /// The PID of the program's PMT.
    pub pmt_pid: u16,
    /// The PID carrying the PCR.
    pub pcr_pid: u16,
    /// The video stream turned into frames (the first H.264/H.265 stream), if any.
    pub video: Option<EsInfo>,
    /// The audio stream turned into frames (the first AAC ADTS stream), if any.
    pub audio: Option<EsInfo>,
    /// Every stream of the PMT, in order, including ignored ones.
    pub streams: Vec<PmtStream>,
}

/// What [`TsDemuxer::poll`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemuxEvent {
    /// The program's streams, on the first PMT and whenever they change. Frames that follow
    /// belong to this program.
    Program(ProgramInfo),
    /// A frame, exactly as the FLV/RTMP ingest would produce it (sequence headers included).
    Frame(sluice_media::Frame),
}

/// Reassembly state of one PSI PID.
#[derive(Debug, Default)]
struct Section {
    data: Vec<u8>,
    active: bool,
}

/// Reassembly state of one PES PID.
#[derive(Debug, Default)]
struct PesBuf {
    /// A `Vec` rather than `BytesMut`: its growth can be held to the cap exactly.
    data: Vec<u8>,
    /// Collecting a PES (after a payload_unit_start).
    active: bool,
    /// The current PES is being dropped (oversized or damaged) until the next start.
    dropping: bool,
}

/// Two of these exist per demuxer, made once per PMT change: boxing the larger would save
/// nothing worth an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Es {
    Video(VideoEs),
    Audio(AudioEs),
    Opus(OpusEs),
}

#[derive(Debug)]
struct Stream {
    pid: u16,
    pes: PesBuf,
    es: Es,
}

/// A sans-IO MPEG-TS demuxer for one program.
///
/// [`push`](Self::push) bytes cut anywhere, then [`poll`](Self::poll) events until `None`;
/// [`finish`](Self::finish) at the end of the stream emits the last unbounded PES. Nothing on
/// the input is fatal: damage is dropped and counted in [`stats`](Self::stats).
///
/// Cost: input bytes are copied once into a small carry-over buffer only when a packet is cut
/// by the end of a push, once into the PES buffer of their stream (reused, at most
/// `max_pes_bytes`), and once into the frame body. One allocation per frame (its body) plus
/// the access-unit splitter's one per access unit. Events wait in a queue until polled: poll
/// after every push.
#[derive(Debug)]
pub struct TsDemuxer {
    config: DemuxerConfig,
    /// The start of a packet cut by the end of the last push (or bytes awaiting resync).
    carry: BytesMut,
    in_sync: bool,
    /// Last continuity counter per PID (`0xff` = none yet), indexed by PID.
    cc: Vec<u8>,
    pat: Section,
    pmt: Section,
    pmt_pid: Option<u16>,
    program: Option<ProgramInfo>,
    video: Option<Stream>,
    audio: Option<Stream>,
    clock: Unwrapper,
    origin: Option<i64>,
    stats: DemuxStats,
    events: VecDeque<DemuxEvent>,
}

impl Default for TsDemuxer {
    fn default() -> Self {
        Self::new(DemuxerConfig::default())
    }
}

impl TsDemuxer {
    /// A demuxer with the given limits. Allocates the 8 KiB continuity table.
    pub fn new(config: DemuxerConfig) -> Self {
        TsDemuxer {
            config,
            carry: BytesMut::new(),
            in_sync: true,
            cc: vec![0xff; 0x2000],
            pat: Section::default(),
            pmt: Section::default(),
            pmt_pid: None,
            program: None,
            video: None,
            audio: None,
            clock: Unwrapper::new(),
            origin: None,
            stats: DemuxStats::default(),
            events: VecDeque::new(),
        }
    }

    /// What was counted so far.
    pub fn stats(&self) -> &DemuxStats {
        &self.stats
    }

    /// The program being followed, once a PMT has been read.
    pub fn program(&self) -> Option<&ProgramInfo> {
        self.program.as_ref()
    }

    /// Bytes held between pushes (a cut packet, at most 2 × 188 while resynchronising) plus
    /// the PES packets being reassembled.
    pub fn buffered_bytes(&self) -> usize {
        self.carry.len()
            + self.video.as_ref().map_or(0, |s| s.pes.data.len())
            + self.audio.as_ref().map_or(0, |s| s.pes.data.len())
    }

    /// Feeds the next piece of the stream. All of it is consumed; events become available from
    /// [`poll`](Self::poll).
    pub fn push(&mut self, mut data: &[u8]) {
        // Complete a packet (or a resync window) left over from the last push.
        while !self.carry.is_empty() && !data.is_empty() {
            let want = if self.in_sync {
                PACKET_SIZE
            } else {
                PACKET_SIZE + 1
            };
            let n = want.saturating_sub(self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.carry.len() < want {
                return;
            }
            let mut carry = std::mem::take(&mut self.carry);
            let used = self.process(&carry);
            carry.advance(used);
            // What is left (a partial resync window) goes back; it is smaller than `want`.
            self.carry = carry;
        }
        let used = self.process(data);
        self.carry.extend_from_slice(&data[used..]);
    }

    /// Processes as many whole packets of `data` as possible; returns the bytes consumed.
    fn process(&mut self, data: &[u8]) -> usize {
        let mut pos = 0;
        loop {
            let rest = &data[pos..];
            if self.in_sync {
                if rest.len() < PACKET_SIZE {
                    return pos;
                }
                if rest[0] == SYNC_BYTE {
                    self.packet(&rest[..PACKET_SIZE]);
                    pos += PACKET_SIZE;
                    continue;
                }
                self.in_sync = false;
                self.stats.sync_losses += 1;
            }
            // Resync: a 0x47 with another 188 bytes on.
            match rest.iter().position(|&b| b == SYNC_BYTE) {
                None => {
                    self.stats.bytes_skipped += rest.len() as u64;
                    return data.len();
                }
                Some(i) => {
                    self.stats.bytes_skipped += i as u64;
                    pos += i;
                    match data.get(pos + PACKET_SIZE) {
                        None => return pos,
                        Some(&SYNC_BYTE) => self.in_sync = true,
                        Some(_) => {
                            self.stats.bytes_skipped += 1;
                            pos += 1;
                        }
                    }
                }
            }
        }
    }

    /// The next event, oldest first.
    pub fn poll(&mut self) -> Option<DemuxEvent> {
        self.events.pop_front()
    }

    /// Ends the stream: the PES packets still being collected are delivered (an unbounded video
    /// PES has no other end), and the bytes of a cut packet are dropped.
    pub fn finish(&mut self) {
        self.carry.clear();
        for is_video in [true, false] {
            self.end_pes(is_video);
        }
    }

    fn packet(&mut self, p: &[u8]) {
        self.stats.packets += 1;
        let Some(h) = PacketHeader::parse(p) else {
            return;
        };
        if h.transport_error {
            self.stats.transport_errors += 1;
            return;
        }
        if h.pid == NULL_PID {
            return;
        }
        let mut payload = &p[4..];
        let mut af = AdaptationField::default();
        if h.has_adaptation_field {
            match AdaptationField::parse(payload) {
                Some((a, len)) if len <= payload.len() => {
                    af = a;
                    payload = &payload[len..];
                }
                // An adaptation field longer than the packet: nothing usable.
                _ => return,
            }
        }
        if af.discontinuity {
            self.stats.discontinuities += 1;
        }
        if let Some(pcr) = af.pcr {
            if self.program.as_ref().is_some_and(|p| p.pcr_pid == h.pid) {
                self.stats.last_pcr = Some(pcr);
            }
        }
        if !h.has_payload {
            return;
        }
        // Continuity.
        let last = &mut self.cc[usize::from(h.pid)];
        let mut gap = false;
        if *last != 0xff && !af.discontinuity {
            if h.continuity_counter == *last {
                return; // the one allowed duplicate
            }
            gap = h.continuity_counter != (*last + 1) & 0x0f;
        }
        *last = h.continuity_counter;
        if gap {
            self.stats.continuity_errors += 1;
        }
        if h.scrambling != 0 {
            self.stats.scrambled += 1;
            return;
        }

        if h.pid == PAT_PID {
            if let Some(s) = section(&mut self.pat, h.payload_unit_start, payload, gap) {
                self.on_pat(&s);
            }
        } else if Some(h.pid) == self.pmt_pid {
            if let Some(s) = section(&mut self.pmt, h.payload_unit_start, payload, gap) {
                self.on_pmt(&s, h.pid);
            }
        } else if self.video.as_ref().is_some_and(|s| s.pid == h.pid) {
            self.pes_payload(true, h.payload_unit_start, payload, gap);
        } else if self.audio.as_ref().is_some_and(|s| s.pid == h.pid) {
            self.pes_payload(false, h.payload_unit_start, payload, gap);
        }
    }

    fn on_pat(&mut self, s: &[u8]) {
        let Ok(programs) = parse_pat(s) else {
            self.stats.psi_errors += 1;
            return;
        };
        let Some(first) = programs.first() else {
            return;
        };
        if self.pmt_pid != Some(first.pmt_pid) {
            self.pmt_pid = Some(first.pmt_pid);
            self.pmt = Section::default();
        }
    }

    fn on_pmt(&mut self, s: &[u8], pmt_pid: u16) {
        let pmt: Pmt = match parse_pmt(s) {
            Ok(p) => p,
            Err(_) => {
                self.stats.psi_errors += 1;
                return;
            }
        };
        let pick = |want: &dyn Fn(&PmtStream) -> Option<Codec>| {
            pmt.streams.iter().find_map(|s| {
                want(s).map(|codec| EsInfo {
                    pid: s.pid,
                    stream_type: s.stream_type,
                    codec,
                })
            })
        };
        let video = pick(&|s| match s.stream_type {
            stream_type::H264 => Some(Codec::H264),
            stream_type::H265 => Some(Codec::H265),
            _ => None,
        });
        let audio = pick(&|s| match s.stream_type {
            stream_type::AAC_ADTS => Some(Codec::Aac),
            stream_type::PRIVATE_PES if s.opus => Some(Codec::Opus),
            _ => None,
        });
        let opus_channels = pmt
            .streams
            .iter()
            .find(|s| audio.is_some_and(|a| a.pid == s.pid))
            .map_or(0, |s| s.opus_channels);
        let info = ProgramInfo {
            program_number: pmt.program_number,
            pmt_pid,
            pcr_pid: pmt.pcr_pid,
            video,
            audio,
            streams: pmt.streams,
        };
        if self.program.as_ref() == Some(&info) {
            return;
        }
        let old = self.program.take();
        let same = |a: Option<EsInfo>, b: Option<EsInfo>| a == b;
        if !same(old.as_ref().and_then(|p| p.video), video) {
            // Deliver what the old stream had, then start over.
            self.end_pes(true);
            self.video = video.map(|v| Stream {
                pid: v.pid,
                pes: PesBuf::default(),
                es: Es::Video(VideoEs::new(
                    if v.codec == Codec::H265 {
                        NalCodec::H265
                    } else {
                        NalCodec::H264
                    },
                    self.config.max_pes_bytes,
                )),
            });
        }
        if !same(old.as_ref().and_then(|p| p.audio), audio) {
            self.end_pes(false);
            self.audio = audio.map(|a| Stream {
                pid: a.pid,
                pes: PesBuf::default(),
                es: if a.codec == Codec::Opus {
                    Es::Opus(OpusEs::new(opus_channels))
                } else {
                    Es::Audio(AudioEs::default())
                },
            });
        }
        self.program = Some(info.clone());
        self.events.push_back(DemuxEvent::Program(info));
    }

    fn stream(&mut self, video: bool) -> Option<&mut Stream> {
        if video {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        }
    }

    fn pes_payload(&mut self, video: bool, start: bool, payload: &[u8], gap: bool) {
        let max = self.config.max_pes_bytes;
        let stats = &mut self.stats;
        let Some(st) = (if video {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        }) else {
            return;
        };
        if gap && st.pes.active && !st.pes.dropping {
            // Lost packets: the PES in progress is damaged.
            st.pes.dropping = true;
            st.pes.data.clear();
            stats.pes_dropped += 1;
        }
        if start {
            self.end_pes(video);
        }
        let stats = &mut self.stats;
        let Some(st) = (if video {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        }) else {
            return;
        };
        let pes = &mut st.pes;
        if start {
            pes.active = true;
            pes.dropping = false;
            pes.data.clear();
        }
        if !pes.active || pes.dropping {
            return; // joined mid-PES, or dropping until the next start
        }
        if pes.data.len() + payload.len() > max {
            pes.dropping = true;
            pes.data.clear();
            stats.pes_oversized += 1;
            return;
        }
        let need = pes.data.len() + payload.len();
        if need > pes.data.capacity() {
            // Double as usual, but never past the cap.
            let target = pes.data.capacity().saturating_mul(2).clamp(need, max);
            pes.data.reserve_exact(target - pes.data.len());
        }
        pes.data.extend_from_slice(payload);
        // A bounded PES ends when its length is reached; one declaring more than the cap is
        // dropped before it is collected.
        if pes.data.len() >= 6 {
            let declared = usize::from(u16::from_be_bytes([pes.data[4], pes.data[5]]));
            if declared > 0 {
                if 6 + declared > max {
                    pes.dropping = true;
                    pes.data.clear();
                    stats.pes_oversized += 1;
                } else if pes.data.len() >= 6 + declared {
                    pes.data.truncate(6 + declared);
                    self.end_pes(video);
                }
            }
        }
    }

    /// Ends the PES being collected on the stream: delivers it if it is whole.
    fn end_pes(&mut self, video: bool) {
        let Some(st) = self.stream(video) else {
            return;
        };
        let pes = &mut st.pes;
        if !pes.active {
            return;
        }
        pes.active = false;
        if pes.dropping {
            // Already counted when the drop started.
            pes.dropping = false;
            pes.data.clear();
            return;
        }
        let data = std::mem::take(&mut pes.data);
        let header = match PesHeader::parse(&data) {
            Ok(h) => h,
            Err(_) => {
                self.stats.pes_dropped += 1;
                return;
            }
        };
        if header.packet_length > 0 && data.len() < 6 + usize::from(header.packet_length) {
            self.stats.pes_dropped += 1;
            return;
        }
        let es = &data[header.data_offset.min(data.len())..];
        // DTS first, so that the first DTS becomes the origin.
        let dts = header
            .dts
            .filter(|_| header.pts.is_some())
            .map(|d| self.place(d));
        let pts = header.pts.map(|p| self.place(p));
        let dts = dts.or(pts);
        // `place` may have borrowed self; look the stream up again.
        let (events, stats) = (&mut self.events, &mut self.stats);
        let st = if video {
            self.video.as_mut()
        } else {
            self.audio.as_mut()
        };
        let Some(st) = st else {
            return;
        };
        match &mut st.es {
            Es::Video(v) => match (dts, pts) {
                (Some(d), Some(p)) => v.push_pes(es, d, p, events, stats),
                _ => stats.pes_dropped += 1,
            },
            Es::Audio(a) => a.push_pes(es, pts, events, stats),
            Es::Opus(o) => o.push_pes(es, pts, events, stats),
        }
        // Give the buffer back for reuse (the frames copied what they need).
        st.pes.data = data;
        st.pes.data.clear();
    }

    /// A 33-bit timestamp on the demuxer's timeline: unwrapped, relative to the first one.
    fn place(&mut self, ts: u64) -> i64 {
        let t = self.clock.unwrap(ts);
        let origin = *self.origin.get_or_insert(t);
        t - origin
    }
}

/// Feeds one packet's payload to a PSI section assembler; returns a complete section.
fn section(s: &mut Section, start: bool, payload: &[u8], gap: bool) -> Option<Vec<u8>> {
    if gap {
        s.active = false;
        s.data.clear();
    }
    if start {
        let pointer = usize::from(*payload.first()?);
        let rest = payload.get(1..)?;
        // Bytes before the pointer end a previous section; one that did not complete before
        // the next started is dropped (PAT/PMT fit one packet in practice).
        let head = rest.get(pointer..).unwrap_or(&[]);
        s.data.clear();
        s.data.extend_from_slice(head);
        s.active = true;
    } else if s.active {
        s.data.extend_from_slice(payload);
    } else {
        return None;
    }
    if s.data.len() > MAX_SECTION + PACKET_SIZE {
        s.active = false;
        s.data.clear();
        return None;
    }
    if s.data.first() == Some(&0xff) {
        s.active = false;
        return None;
    }
    if s.data.len() < 3 {
        return None;
    }
    let need = 3 + usize::from(u16::from_be_bytes([s.data[1], s.data[2]]) & 0x3ff);
    if s.data.len() < need {
        return None;
    }
    s.active = false;
    s.data.truncate(need);
    Some(std::mem::take(&mut s.data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mux::{AudioTrack, TsMuxer, TsTracks, VideoCodec, VideoTrack};
    use bytes::Bytes;
    use sluice_media::{AudioSpecificConfig, LengthSize};

    fn audio_ts(frames: i64) -> BytesMut {
        let mut m = TsMuxer::new(TsTracks {
            video: None,
            audio: Some(AudioTrack {
                asc: AudioSpecificConfig::new(2, 48000, 2),
            }),
        });
        let mut out = BytesMut::new();
        m.write_tables(&mut out);
        for i in 0..frames {
            m.write_audio(&mut out, i * 21, &[0x21, i as u8, 3])
                .unwrap();
        }
        out
    }

    fn run(d: &mut TsDemuxer, data: &[u8]) -> Vec<DemuxEvent> {
        d.push(data);
        d.finish();
        std::iter::from_fn(|| d.poll()).collect()
    }

    fn audio_frames(events: &[DemuxEvent]) -> usize {
        events
            .iter()
            .filter(|e| matches!(e, DemuxEvent::Frame(f) if !f.seq_header))
            .count()
    }

    #[test]
    fn program_then_config_then_frames() {
        let mut d = TsDemuxer::default();
        let events = run(&mut d, &audio_ts(5));
        let DemuxEvent::Program(p) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(p.audio.map(|a| (a.pid, a.codec)), Some((0x101, Codec::Aac)));
        assert_eq!(p.pcr_pid, 0x101);
        let DemuxEvent::Frame(sh) = &events[1] else {
            panic!()
        };
        assert!(sh.seq_header);
        assert_eq!(&sh.body[..], &[0xAF, 0, 0x11, 0x90]);
        assert_eq!(audio_frames(&events), 5);
        let DemuxEvent::Frame(last) = &events[6] else {
            panic!()
        };
        assert_eq!((last.dts, &last.body[..]), (84, &[0xAF, 1, 0x21, 4, 3][..]));
        assert_eq!(d.stats().last_pcr.map(|p| p.base), Some(84 * 90));
    }

    #[test]
    fn garbage_is_skipped_and_sync_regained() {
        let ts = audio_ts(8);
        let mut damaged = ts[..188 * 4].to_vec();
        // (Garbage that starts with 0x47 where a packet is due would pass for a packet and cost
        // the real one: sync is only doubted when the byte is wrong.)
        damaged.extend_from_slice(&[0, 0x47, 1, 0x47, 0x47, 9]);
        damaged.extend_from_slice(&ts[188 * 4..]);
        let mut d = TsDemuxer::default();
        let events = run(&mut d, &damaged);
        assert_eq!(d.stats().sync_losses, 1);
        assert_eq!(d.stats().bytes_skipped, 6);
        assert_eq!(audio_frames(&events), 8);
        // Byte by byte, the same.
        let mut d = TsDemuxer::default();
        for b in &damaged {
            d.push(std::slice::from_ref(b));
        }
        d.finish();
        let bytewise: Vec<_> = std::iter::from_fn(|| d.poll()).collect();
        assert_eq!(bytewise, events);
    }

    #[test]
    fn lost_packet_is_counted_and_its_pes_dropped() {
        let mut m = TsMuxer::new(TsTracks {
            video: Some(VideoTrack {
                codec: VideoCodec::H264,
                parameter_sets: vec![],
                length_size: LengthSize::Four,
            }),
            audio: None,
        });
        let mut ts = BytesMut::new();
        m.write_tables(&mut ts);
        let mut au = vec![0, 0, 2, 0, 0x41];
        au.resize(0x204, 7);
        for i in 0..3 {
            m.write_video(&mut ts, i * 40, 0, false, &au).unwrap();
        }
        // Remove the second packet of the first PES (packet 3 overall).
        let mut cut = ts[..188 * 3].to_vec();
        cut.extend_from_slice(&ts[188 * 4..]);
        let mut d = TsDemuxer::default();
        run(&mut d, &cut);
        let s = d.stats();
        assert_eq!((s.continuity_errors, s.pes_dropped), (1, 1));
        // Without parameter sets nothing is emitted, but the two whole PES reached the ES layer.
        assert_eq!(s.video_frames_before_config, 2);
    }

    #[test]
    fn oversized_declared_pes_is_dropped_before_collecting() {
        let mut ts = audio_ts(3);
        // Patch the first audio PES (packet 2) to declare 65535 bytes, over a 1 KiB cap.
        let p = &mut ts[188 * 2..188 * 3];
        let start = 4 + 1 + usize::from(p[4]);
        p[start + 4] = 0xff;
        p[start + 5] = 0xff;
        let mut d = TsDemuxer::new(DemuxerConfig {
            max_pes_bytes: 1024,
        });
        let events = run(&mut d, &ts);
        assert_eq!(d.stats().pes_oversized, 1);
        assert_eq!(audio_frames(&events), 2);
    }

    #[test]
    fn pmt_change_is_an_event() {
        let mut ts = audio_ts(1);
        let mut m = TsMuxer::new(TsTracks {
            video: Some(VideoTrack {
                codec: VideoCodec::H265,
                parameter_sets: vec![Bytes::from_static(&[0x40, 1])],
                length_size: LengthSize::Four,
            }),
            audio: Some(AudioTrack {
                asc: AudioSpecificConfig::new(2, 48000, 2),
            }),
        });
        // Continuity counters of a new muxer restart at 0, which the demuxer would take for
        // duplicates of the first muxer's tables: skip one round.
        m.write_tables(&mut BytesMut::new());
        m.write_tables(&mut ts);
        let mut d = TsDemuxer::default();
        let events = run(&mut d, &ts);
        let programs: Vec<&ProgramInfo> = events
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Program(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(programs.len(), 2);
        assert_eq!(programs[1].video.map(|v| v.codec), Some(Codec::H265));
        assert_eq!(programs[1].pcr_pid, 0x100);
    }
}
