//! Client and server sessions wired to each other in memory: handshake, connect, publish and
//! play flows, media round-tripped bit-exact under random chunk sizes and input piece sizes.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_amf0::Value;
use sluice_rtmp::handshake::{HandshakeKind, Schema};
use sluice_rtmp::{
    ClientConfig, ClientEvent, ClientMode, ClientSession, ServerConfig, ServerEvent, ServerSession,
    SharedMessage, MAX_HEADER_LEN,
};

/// Feeds `data` to a session in pieces of `piece` bytes.
fn feed_server(s: &mut ServerSession, data: &[u8], piece: usize) {
    for p in data.chunks(piece.max(1)) {
        s.handle_input(p).expect("server input");
    }
}

fn feed_client(c: &mut ClientSession, data: &[u8], piece: usize) {
    for p in data.chunks(piece.max(1)) {
        c.handle_input(p).expect("client input");
    }
}

struct Pair {
    client: ClientSession,
    server: ServerSession,
    server_events: Vec<ServerEvent>,
    client_events: Vec<ClientEvent>,
    piece: usize,
    accept: bool,
}

impl Pair {
    fn new(client: ClientConfig, server: ServerConfig, piece: usize) -> Self {
        let mut client = ClientSession::new(client);
        client.start();
        Pair {
            client,
            server: ServerSession::new(server),
            server_events: Vec::new(),
            client_events: Vec::new(),
            piece,
            accept: true,
        }
    }

    /// Exchanges output until both sides are quiet.
    fn pump(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            if let Some(out) = self.client.take_output() {
                feed_server(&mut self.server, &out, self.piece);
                moved = true;
            }
            while let Some(ev) = self.server.poll_event() {
                if self.accept {
                    match &ev {
                        ServerEvent::Publish { stream_id, .. } => {
                            self.server.accept_publish(*stream_id)
                        }
                        ServerEvent::Play { stream_id, .. } => self.server.accept_play(*stream_id),
                        _ => {}
                    }
                }
                self.server_events.push(ev);
            }
            if let Some(out) = self.server.take_output() {
                feed_client(&mut self.client, &out, self.piece);
                moved = true;
            }
            while let Some(ev) = self.client.poll_event() {
                self.client_events.push(ev);
            }
            if !moved {
                return;
            }
        }
        panic!("sessions never went quiet");
    }
}

fn media_bodies(n: usize, seed: u8, max: usize) -> Vec<(u8, u32, Bytes)> {
    (0..n)
        .map(|i| {
            let len = (i * 7919 + seed as usize * 31) % max;
            let body: Vec<u8> = (0..len)
                .map(|j| (j as u8).wrapping_mul(seed).wrapping_add(i as u8))
                .collect();
            let ty = if i % 3 == 0 { 8 } else { 9 };
            (ty, i as u32 * 40, Bytes::from(body))
        })
        .collect()
}

#[test]
fn digest_handshake_and_publish_flow() {
    let mut p = Pair::new(
        ClientConfig {
            app: "live?token=x".into(),
            tc_url: "rtmp://h/live?token=x".into(),
            stream: "cam1?k=v".into(),
            ..ClientConfig::default()
        },
        ServerConfig::default(),
        1,
    );
    p.pump();
    assert_eq!(
        p.server.handshake_kind(),
        HandshakeKind::Digest(Schema::Schema0)
    );
    assert_eq!(
        p.client.handshake_kind(),
        HandshakeKind::Digest(Schema::Schema0)
    );
    match &p.server_events[0] {
        ServerEvent::Connect {
            app,
            tc_url,
            enhanced,
            ..
        } => {
            assert_eq!(app, "live?token=x");
            assert_eq!(tc_url.as_deref(), Some("rtmp://h/live?token=x"));
            assert_eq!(enhanced.fourcc_list.as_deref().map(|l| l.len()), Some(4));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(
        p.server_events[1],
        ServerEvent::Publish {
            stream_id: 1,
            name: "cam1?k=v".into(),
            kind: "live".into()
        }
    );
    match &p.client_events[0] {
        ClientEvent::Connected { properties } => {
            assert_eq!(
                properties.get("fmsVer").and_then(Value::as_str),
                Some("FMS/3,5,3,888")
            );
            // Enhanced RTMP: the list is echoed.
            assert_eq!(
                properties
                    .get("fourCcList")
                    .and_then(Value::as_array)
                    .map(|a| a.len()),
                Some(4)
            );
        }
        e => panic!("{e:?}"),
    }
    assert!(p
        .client_events
        .contains(&ClientEvent::PublishStarted { stream_id: 1 }));
    assert_eq!(p.client.out_chunk_size(), 4096);
    assert_eq!(p.server.out_chunk_size(), 60_000);

    let media = media_bodies(30, 3, 20_000);
    for (ty, ts, body) in &media {
        p.client.send_media(*ty, *ts, body.clone()).unwrap();
    }
    p.pump();
    let got: Vec<_> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Media {
                msg_type,
                timestamp,
                body,
                stream_id: 1,
            } => Some((*msg_type, *timestamp, body.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(got, media);

    p.client.close();
    p.pump();
    assert!(p
        .server_events
        .contains(&ServerEvent::Unpublish { stream_id: 1 }));
}

#[test]
fn play_flow_with_shared_messages_and_end() {
    let mut p = Pair::new(
        ClientConfig {
            mode: ClientMode::Play,
            ..ClientConfig::default()
        },
        ServerConfig {
            out_chunk_size: 1000,
            ..ServerConfig::default()
        },
        777,
    );
    p.pump();
    assert!(p
        .server_events
        .iter()
        .any(|e| matches!(e, ServerEvent::Play { stream_id: 1, start, .. } if *start == -2.0)));
    assert!(p
        .client_events
        .contains(&ClientEvent::PlayStarted { stream_id: 1 }));
    assert_eq!(p.server.buffer_length(1), Some(1000));
    // Fan-out path: build once, write per viewer.
    let media = media_bodies(20, 5, 5000);
    let mut wire = Vec::new();
    let mut h = [0u8; MAX_HEADER_LEN];
    for (ty, ts, body) in &media {
        let sm = SharedMessage::new(6, *ty, body.clone(), p.server.out_chunk_size());
        let n = sm.write_header(&mut h, *ts, 1);
        wire.extend_from_slice(&h[..n]);
        for piece in sm.continuation() {
            wire.extend_from_slice(piece);
        }
    }
    feed_client(&mut p.client, &wire, 333);
    // Copying path.
    p.server.send_media(1, 9, 5000, b"tail");
    p.server.end_play(1);
    p.pump();
    let got: Vec<_> = p
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Media {
                msg_type,
                timestamp,
                body,
            } if *msg_type != 18 => Some((*msg_type, *timestamp, body.clone())),
            _ => None,
        })
        .collect();
    let mut want = media.clone();
    want.push((9, 5000, Bytes::from_static(b"tail")));
    assert_eq!(got, want);
    assert!(p
        .client_events
        .contains(&ClientEvent::StreamEof { stream_id: 1 }));
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Status { code, .. } if code == "NetStream.Play.Stop")));
}

#[test]
fn rejected_publish_reports_status_and_drops_media() {
    let mut p = Pair::new(ClientConfig::default(), ServerConfig::default(), 4096);
    p.accept = false;
    p.pump();
    p.server
        .reject_publish(1, "NetStream.Publish.BadName", "taken");
    p.pump();
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, ClientEvent::Status { code, level, .. } if code == "NetStream.Publish.BadName" && level == "error")));
    assert!(p.client.send_media(9, 0, Bytes::from_static(b"x")).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn publish_round_trip_random_sizes(
        client_cs in 1u32..70_000,
        piece in 1usize..9000,
        seed in any::<u8>(),
        start_ts in prop_oneof![Just(0u32), Just(0xFF_FF00u32), Just(u32::MAX - 500)],
    ) {
        let mut p = Pair::new(ClientConfig { chunk_size: client_cs, ..ClientConfig::default() }, ServerConfig::default(), piece);
        p.pump();
        let media: Vec<_> = media_bodies(12, seed, 9000)
            .into_iter()
            .map(|(t, ts, b)| (t, ts.wrapping_add(start_ts), b))
            .collect();
        for (ty, ts, body) in &media {
            p.client.send_media(*ty, *ts, body.clone()).unwrap();
        }
        p.pump();
        let got: Vec<_> = p.server_events.iter().filter_map(|e| match e {
            ServerEvent::Media { msg_type, timestamp, body, .. } => Some((*msg_type, *timestamp, body.clone())),
            _ => None,
        }).collect();
        prop_assert_eq!(got, media);
    }

    #[test]
    fn play_round_trip_random_sizes(
        server_cs in 1u32..70_000,
        piece in 1usize..9000,
        seed in any::<u8>(),
        start_ts in prop_oneof![Just(0u32), Just(0xFF_FF00u32)],
    ) {
        let mut p = Pair::new(
            ClientConfig { mode: ClientMode::Play, ..ClientConfig::default() },
            ServerConfig { out_chunk_size: server_cs, ..ServerConfig::default() },
            piece,
        );
        p.pump();
        let media: Vec<_> = media_bodies(12, seed, 9000)
            .into_iter()
            .map(|(t, ts, b)| (t, ts.wrapping_add(start_ts), b))
            .collect();
        let mut wire = Vec::new();
        let mut h = [0u8; MAX_HEADER_LEN];
        for (ty, ts, body) in &media {
            let sm = SharedMessage::new(if *ty == 8 { 7 } else { 6 }, *ty, body.clone(), p.server.out_chunk_size());
            let n = sm.write_header(&mut h, *ts, 1);
            wire.extend_from_slice(&h[..n]);
            let pieces = if sm.needs_extended(*ts) { sm.extended_continuation(*ts) } else { sm.continuation().to_vec() };
            for piece in pieces {
                wire.extend_from_slice(&piece);
            }
        }
        feed_client(&mut p.client, &wire, piece);
        p.pump();
        let got: Vec<_> = p.client_events.iter().filter_map(|e| match e {
            ClientEvent::Media { msg_type, timestamp, body } if *msg_type != 18 => Some((*msg_type, *timestamp, body.clone())),
            _ => None,
        }).collect();
        prop_assert_eq!(got, media);
    }
}
