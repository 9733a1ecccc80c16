//! Replays the committed fuzz corpora (`fuzz/corpus/rtmp_chunk/`,
//! `fuzz/corpus/rtmp_server_session/`) through the fuzz entry points on stable Rust, so a crash
//! the fuzzer once found stays fixed. `cargo test -p sluice-rtmp --test fuzz_corpus --
//! --ignored` regenerates the seed files from our own client.

use bytes::{Bytes, BytesMut};
use sluice_rtmp::chunk::encode_message;
use sluice_rtmp::{
    ClientConfig, ClientEvent, ClientMode, ClientSession, ServerConfig, ServerEvent, ServerSession,
};
use std::path::{Path, PathBuf};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name)
}

fn replay(name: &str, f: fn(&[u8])) {
    let dir = corpus(name);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        f(&data);
        n += 1;
    }
    assert!(n > 0, "empty corpus at {}", dir.display());
}

#[test]
fn rtmp_chunk_corpus() {
    replay("rtmp_chunk", sluice_rtmp::fuzzing::chunk);
}

#[test]
fn rtmp_server_session_corpus() {
    replay("rtmp_server_session", sluice_rtmp::fuzzing::server_session);
}

/// Everything a client of `mode` sends in a full session against our server, media included.
fn client_wire(mode: ClientMode) -> Vec<u8> {
    let mut c = ClientSession::new(ClientConfig {
        mode,
        chunk_size: 100,
        ..ClientConfig::default()
    });
    let mut s = ServerSession::new(ServerConfig::default());
    c.start();
    let mut wire = Vec::new();
    for round in 0..20 {
        if let Some(o) = c.take_output() {
            wire.extend_from_slice(&o);
            s.handle_input(&o).unwrap();
        }
        while let Some(e) = s.poll_event() {
            match e {
                ServerEvent::Publish { stream_id, .. } => s.accept_publish(stream_id),
                ServerEvent::Play { stream_id, .. } => s.accept_play(stream_id),
                _ => {}
            }
        }
        if let Some(o) = s.take_output() {
            c.handle_input(&o).unwrap();
        }
        while let Some(e) = c.poll_event() {
            if let ClientEvent::PublishStarted { .. } = e {
                c.send_media(9, 0, Bytes::from(vec![0x17, 0, 0, 0, 0, 1, 2, 3]))
                    .unwrap();
                c.send_media(
                    8,
                    0x00FF_FFFF,
                    Bytes::from([&[0xaf, 1][..], &[9; 300]].concat()),
                )
                .unwrap();
            }
        }
        if round == 19 {
            c.close();
            if let Some(o) = c.take_output() {
                wire.extend_from_slice(&o);
            }
        }
    }
    wire
}

#[test]
#[ignore = "writes seed files; run by hand after protocol changes"]
fn regenerate_seeds() {
    let write = |dir: &str, name: &str, data: &[u8]| {
        let d = corpus(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), data).unwrap();
    };
    for (name, mode) in [("publish", ClientMode::Publish), ("play", ClientMode::Play)] {
        let wire = client_wire(mode);
        let after_handshake = &wire[1 + 2 * 1536..];
        // Session: mode byte 0 = raw (digest handshake included), else handshake prepended.
        write(
            "rtmp_server_session",
            &format!("{name}_raw"),
            &[&[0u8][..], &wire].concat(),
        );
        write(
            "rtmp_server_session",
            &format!("{name}_cooked"),
            &[&[1u8][..], after_handshake].concat(),
        );
        write(
            "rtmp_server_session",
            &format!("{name}_cooked_small_pieces"),
            &[&[7u8][..], after_handshake].concat(),
        );
        write(
            "rtmp_chunk",
            &format!("{name}_commands"),
            &[&[13u8][..], after_handshake].concat(),
        );
    }
    // Chunk-level seeds: every header form, extended timestamps, a large csid.
    let mut b = BytesMut::new();
    encode_message(&mut b, 3, 20, 0, 0, b"\x02\x00\x07connect", 128);
    encode_message(&mut b, 64, 9, 1, 40, &[7u8; 300], 128);
    encode_message(&mut b, 65599, 8, 1, 0x0100_0000, &[9u8; 300], 128);
    b.extend_from_slice(&[
        0x44, 0, 0, 10, 0, 0, 2, 9, b'd', b'e', 0x84, 0, 0, 5, b'f', b'g', 0xC4, b'h', b'i',
    ]);
    write("rtmp_chunk", "header_forms", &[&[255u8][..], &b].concat());
    write(
        "rtmp_chunk",
        "header_forms_bytewise",
        &[&[1u8][..], &b].concat(),
    );
    let mut sc = BytesMut::new();
    encode_message(&mut sc, 2, 1, 0, 0, &4096u32.to_be_bytes(), 128);
    encode_message(&mut sc, 6, 9, 1, 0, &[1u8; 9000], 4096);
    write(
        "rtmp_chunk",
        "set_chunk_size",
        &[&[200u8][..], &sc].concat(),
    );
    write(
        "rtmp_chunk",
        "fmt1_no_prior",
        &[1, 0x45, 0, 0, 0, 0, 0, 1, 8],
    );
}
