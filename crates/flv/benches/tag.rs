//! FLV tag read throughput (FlvReader over a whole fixture, and in 4 KiB network-sized pushes)
//! and tag-header write throughput (the per-frame prefix + trailer egress builds), in MB/s.
//!
//! Run: `cargo bench -p sluice-flv --bench tag`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice_flv::tag::{previous_tag_size, write_tag_header, TAG_HEADER_LEN};
use sluice_flv::{frame_from_tag, read_all, write_tag, FlvEvent, FlvReader};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/media/h264-720p30-high-B3-aac-10s.flv"
);

fn read(c: &mut Criterion) {
    let file = std::fs::read(FIXTURE).expect("fixture");
    let mut g = c.benchmark_group("flv_read");
    g.throughput(Throughput::Bytes(file.len() as u64));
    g.bench_function("read_all", |b| {
        b.iter(|| read_all(black_box(&file)).unwrap().1.len())
    });
    g.bench_function("reader_4k_pushes_and_frames", |b| {
        b.iter(|| {
            let mut r = FlvReader::default();
            let mut n = 0usize;
            for chunk in file.chunks(4096) {
                r.push(chunk);
                while let Some(ev) = r.poll().unwrap() {
                    if let FlvEvent::Tag(t) = ev {
                        let f = frame_from_tag(t.tag_type, i64::from(t.timestamp), t.body).unwrap();
                        n += usize::from(f.is_some());
                    }
                }
            }
            n
        })
    });
    g.finish();
}

fn write(c: &mut Criterion) {
    let file = std::fs::read(FIXTURE).expect("fixture");
    let (_, tags) = read_all(&file).unwrap();
    let mut g = c.benchmark_group("flv_write");
    // Header + trailer bytes produced per pass: what egress builds once per frame.
    let framing = (tags.len() * (TAG_HEADER_LEN + 4)) as u64;
    g.throughput(Throughput::Bytes(framing));
    g.bench_function("tag_header_and_trailer", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for t in &tags {
                let mut h = [0u8; TAG_HEADER_LEN];
                write_tag_header(
                    &mut h,
                    t.tag_type,
                    t.body.len() as u32,
                    black_box(t.timestamp),
                );
                let p = previous_tag_size(t.body.len() as u32);
                acc = acc.wrapping_add(u32::from(h[3]) + u32::from(p[3]));
            }
            acc
        })
    });
    // Whole tags copied into one buffer (file writing / tests), for comparison.
    g.throughput(Throughput::Bytes(file.len() as u64));
    let mut out = Vec::with_capacity(file.len());
    g.bench_function("write_tag_copying_bodies", |b| {
        b.iter(|| {
            out.clear();
            for t in &tags {
                write_tag(&mut out, black_box(t)).unwrap();
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, read, write);
criterion_main!(benches);
