//! Chunk codec throughput: decoding a stream of media messages, encoding them per connection,
//! and building the shared fan-out form.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice_rtmp::chunk::{encode_message, ChunkDecoder, SharedMessage, MAX_HEADER_LEN};
use sluice_rtmp::Limits;
use std::hint::black_box;

/// A second of 25 fps video at ~2 Mbit/s (one 60 KB keyframe, 24 × 8 KB) plus audio frames.
fn media() -> Vec<(u8, u32, Bytes)> {
    let mut v = Vec::new();
    for i in 0..25u32 {
        let len = if i == 0 { 60_000 } else { 8_000 };
        v.push((9, i * 40, Bytes::from(vec![i as u8; len])));
        v.push((8, i * 40, Bytes::from(vec![0xaf; 400])));
    }
    v
}

fn bench(c: &mut Criterion) {
    let msgs = media();
    let payload_bytes: usize = msgs.iter().map(|m| m.2.len()).sum();
    for cs in [128u32, 4096, 60_000] {
        let mut wire = BytesMut::new();
        for (ty, ts, body) in &msgs {
            encode_message(
                &mut wire,
                if *ty == 9 { 6 } else { 7 },
                *ty,
                1,
                *ts,
                body,
                cs,
            );
        }
        let wire = wire.freeze();
        let mut g = c.benchmark_group(format!("chunk_cs{cs}"));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function("decode", |b| {
            b.iter_batched(
                || {
                    let mut d = ChunkDecoder::new(Limits::default());
                    d.set_chunk_size(cs).unwrap();
                    d
                },
                |mut d| {
                    // Socket-sized reads.
                    for mut piece in wire.chunks(16 * 1024) {
                        while let Some(m) = d.decode(&mut piece).unwrap() {
                            black_box(m);
                        }
                    }
                },
                BatchSize::SmallInput,
            )
        });
        g.throughput(Throughput::Bytes(payload_bytes as u64));
        g.bench_function("encode", |b| {
            let mut out = BytesMut::with_capacity(wire.len());
            b.iter(|| {
                out.clear();
                for (ty, ts, body) in &msgs {
                    encode_message(&mut out, 6, *ty, 1, *ts, body, cs);
                }
                black_box(out.len())
            })
        });
        g.bench_function("shared_build_and_header", |b| {
            b.iter(|| {
                let mut h = [0u8; MAX_HEADER_LEN];
                for (ty, ts, body) in &msgs {
                    let sm = SharedMessage::new(6, *ty, body.clone(), cs);
                    black_box(sm.write_header(&mut h, *ts, 1));
                    black_box(sm.continuation().len());
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
