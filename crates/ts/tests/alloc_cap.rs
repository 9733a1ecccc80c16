//! `max_pes_bytes` bounds memory, measured: a counting global allocator records the peak of
//! live heap bytes while the demuxer reads a 24 MiB unbounded video PES and a run of audio PES
//! declaring 64 KiB each, with the cap at 1 MiB. (One test in this binary, so nothing else
//! allocates meanwhile.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use sluice_media::{AudioSpecificConfig, LengthSize};
use sluice_ts::{AudioTrack, DemuxerConfig, TsDemuxer, TsMuxer, TsTracks, VideoCodec, VideoTrack};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn memory_stays_under_the_cap() {
    let cap = 1 << 20;
    let mut m = TsMuxer::new(TsTracks {
        video: Some(VideoTrack {
            codec: VideoCodec::H264,
            parameter_sets: vec![],
            length_size: LengthSize::Four,
        }),
        audio: Some(AudioTrack {
            asc: AudioSpecificConfig::new(2, 48000, 2),
        }),
    });
    let mut ts = BytesMut::new();
    m.write_tables(&mut ts);
    // One 24 MiB slice NAL: an unbounded PES far over the cap.
    let big = 24 << 20;
    let mut au = Vec::with_capacity(big + 4);
    au.extend_from_slice(&(big as u32).to_be_bytes());
    au.push(0x65);
    au.resize(big + 4, 0x11);
    m.write_video(&mut ts, 0, 0, true, &au).unwrap();
    drop(au);
    // Audio PES patched to declare 65535 bytes: each ends early (the next one starts) and is
    // dropped, not waited for.
    let mut audio = BytesMut::new();
    for i in 0..50 {
        m.write_audio(&mut audio, i * 21, &[0x21; 500]).unwrap();
    }
    for p in audio.chunks_mut(188) {
        if p[1] & 0x40 != 0 {
            // payload_unit_start: the PES header follows the adaptation field.
            let start = 4 + if p[3] & 0x20 != 0 {
                1 + usize::from(p[4])
            } else {
                0
            };
            p[start + 4] = 0xff;
            p[start + 5] = 0xff;
        }
    }
    ts.extend_from_slice(&audio);
    m.write_video(&mut ts, 40, 0, false, &[0, 0, 0, 2, 0x41, 0x9a])
        .unwrap();
    drop(m);

    let mut d = TsDemuxer::new(DemuxerConfig { max_pes_bytes: cap });
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    for piece in ts.chunks(64 << 10) {
        d.push(piece);
        while d.poll().is_some() {}
    }
    d.finish();
    while d.poll().is_some() {}
    // Held: at most `cap` per PES buffer; while a buffer grows, the old one (half the size)
    // lives next to the new for the copy. The 24 MiB are never held.
    let grown = PEAK.load(Ordering::Relaxed) - base;
    let stats = *d.stats();
    assert!(stats.pes_oversized >= 1, "{stats:?}");
    assert!(
        grown < 2 * cap,
        "demuxer held {grown} bytes at peak with a {cap}-byte PES cap"
    );
    drop(d);
}
