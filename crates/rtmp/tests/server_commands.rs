//! The server session's answers to hand-made command sequences: what each command gets back,
//! Enhanced RTMP negotiation, pings, acknowledgements, and the limits a session enforces.

use bytes::BytesMut;
use sluice_amf0::{decode_all, Value};
use sluice_rtmp::chunk::{encode_message, ChunkDecoder, Message};
use sluice_rtmp::fuzzing::handshake_prefix;
use sluice_rtmp::message::{msg_type, UserControl};
use sluice_rtmp::{Command, Limits, RtmpError, ServerConfig, ServerEvent, ServerSession};

/// A scripted client: plain handshake, then hand-built messages; decodes what the server says.
struct Peer {
    server: ServerSession,
    skipped_handshake: bool,
    dec: ChunkDecoder,
    inbox: Vec<Message>,
    events: Vec<ServerEvent>,
}

impl Peer {
    fn new(config: ServerConfig) -> Self {
        let mut server = ServerSession::new(config);
        server.handle_input(&handshake_prefix()).unwrap();
        let mut p = Peer {
            server,
            skipped_handshake: false,
            dec: ChunkDecoder::new(Limits::default()),
            inbox: Vec::new(),
            events: Vec::new(),
        };
        p.drain();
        p
    }

    fn drain(&mut self) {
        while let Some(e) = self.server.poll_event() {
            self.events.push(e);
        }
        let Some(out) = self.server.take_output() else {
            return;
        };
        let mut data = &out[..];
        if !self.skipped_handshake {
            data = &data[1 + 2 * 1536..];
            self.skipped_handshake = true;
        }
        while let Some(m) = self.dec.decode(&mut data).unwrap() {
            if m.msg_type == msg_type::SET_CHUNK_SIZE {
                self.dec
                    .set_chunk_size(u32::from_be_bytes(m.payload[..4].try_into().unwrap()))
                    .unwrap();
            }
            self.inbox.push(m);
        }
    }

    fn send_raw(&mut self, cs: u32, ty: u8, sid: u32, payload: &[u8]) -> Result<(), RtmpError> {
        let mut b = BytesMut::new();
        encode_message(&mut b, cs, ty, sid, 0, payload, 128);
        let r = self.server.handle_input(&b);
        self.drain();
        r
    }

    fn cmd(
        &mut self,
        sid: u32,
        name: &str,
        txn: f64,
        obj: Value,
        args: Vec<Value>,
    ) -> Result<(), RtmpError> {
        let c = Command::new(name, txn, obj, args);
        self.send_raw(3, msg_type::COMMAND_AMF0, sid, &c.encode())
    }

    fn connect(&mut self, extra: Vec<(&str, Value)>) {
        let mut props = vec![
            ("app", Value::string("live")),
            ("tcUrl", Value::string("rtmp://h/live")),
        ];
        props.extend(extra);
        self.cmd(0, "connect", 1.0, Value::object(props), vec![])
            .unwrap();
    }

    /// Commands the server sent since the last call.
    fn replies(&mut self) -> Vec<Command> {
        let msgs = std::mem::take(&mut self.inbox);
        msgs.iter()
            .filter(|m| m.msg_type == msg_type::COMMAND_AMF0)
            .map(|m| Command::parse(m.msg_type, &m.payload, &Default::default()).unwrap())
            .collect()
    }
}

#[test]
fn connect_reply_order_and_enhanced_echo() {
    let mut p = Peer::new(ServerConfig {
        caps_ex: 0x02,
        ..ServerConfig::default()
    });
    p.connect(vec![
        ("objectEncoding", Value::Number(0.0)),
        (
            "fourCcList",
            Value::StrictArray(vec![Value::string("hvc1"), Value::string("av01")]),
        ),
        (
            "videoFourCcInfoMap",
            Value::object([("hvc1", Value::Number(7.0))]),
        ),
        ("capsEx", Value::Number(15.0)),
    ]);
    let types: Vec<u8> = p.inbox.iter().map(|m| m.msg_type).collect();
    assert_eq!(
        types,
        vec![5, 6, 1, 20],
        "WindowAckSize, SetPeerBandwidth, SetChunkSize, _result"
    );
    assert_eq!(&p.inbox[2].payload[..], &60_000u32.to_be_bytes());
    let r = p.replies();
    assert_eq!(r[0].name, "_result");
    assert_eq!(r[0].transaction_id, 1.0);
    let props = &r[0].command_object;
    assert_eq!(
        props
            .get("fourCcList")
            .and_then(Value::as_array)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        props
            .get("videoFourCcInfoMap")
            .and_then(|m| m.get("*"))
            .and_then(Value::as_f64),
        Some(4.0)
    );
    assert!(props.get("audioFourCcInfoMap").is_none());
    assert_eq!(props.get("capsEx").and_then(Value::as_f64), Some(2.0));
    assert_eq!(
        r[0].args[0].get("code").and_then(Value::as_str),
        Some("NetConnection.Connect.Success")
    );
    match &p.events[0] {
        ServerEvent::Connect { enhanced, .. } => {
            assert_eq!(
                enhanced.fourcc_list.as_deref(),
                Some(&["hvc1".to_owned(), "av01".to_owned()][..])
            );
            assert_eq!(
                enhanced.video_fourcc_info_map.as_deref(),
                Some(&[("hvc1".to_owned(), 7)][..])
            );
            assert_eq!(enhanced.caps_ex, Some(15));
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn legacy_connect_gets_no_enhanced_fields() {
    let mut p = Peer::new(ServerConfig::default());
    p.connect(vec![]);
    let r = p.replies();
    assert!(r[0].command_object.get("fourCcList").is_none());
    assert!(r[0].command_object.get("capsEx").is_none());
}

#[test]
fn amf3_command_connect() {
    let mut p = Peer::new(ServerConfig::default());
    let c = Command::new(
        "connect",
        1.0,
        Value::object([
            ("app", Value::string("a")),
            ("objectEncoding", Value::Number(3.0)),
        ]),
        vec![],
    );
    let mut body = vec![0u8];
    body.extend_from_slice(&c.encode());
    p.send_raw(3, msg_type::COMMAND_AMF3, 0, &body).unwrap();
    assert!(
        matches!(&p.events[0], ServerEvent::Connect { app, object_encoding, .. } if app == "a" && *object_encoding == 3.0)
    );
}

#[test]
fn command_replies() {
    let mut p = Peer::new(ServerConfig::default());
    p.connect(vec![]);
    p.replies();
    let s = || vec![Value::string("cam")];
    p.cmd(0, "releaseStream", 2.0, Value::Null, s()).unwrap();
    p.cmd(0, "FCPublish", 3.0, Value::Null, s()).unwrap();
    p.cmd(0, "createStream", 4.0, Value::Null, vec![]).unwrap();
    p.cmd(0, "createStream", 5.0, Value::Null, vec![]).unwrap();
    p.cmd(0, "getStreamLength", 6.0, Value::Null, s()).unwrap();
    p.cmd(0, "_checkbw", 7.0, Value::Null, vec![]).unwrap();
    p.cmd(0, "noSuchMethod", 8.0, Value::Null, vec![]).unwrap();
    p.cmd(0, "noSuchNotification", 0.0, Value::Null, vec![])
        .unwrap();
    p.cmd(
        1,
        "receiveAudio",
        0.0,
        Value::Null,
        vec![Value::Boolean(true)],
    )
    .unwrap();
    let r = p.replies();
    let summary: Vec<(&str, f64)> = r
        .iter()
        .map(|c| (c.name.as_str(), c.transaction_id))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("_result", 2.0),
            ("_result", 3.0),
            ("_result", 4.0),
            ("_result", 5.0),
            ("_result", 6.0),
            ("_result", 7.0),
            ("_error", 8.0)
        ]
    );
    assert_eq!(r[2].arg_f64(0), Some(1.0));
    assert_eq!(r[3].arg_f64(0), Some(2.0));
    assert_eq!(
        r[6].args[0].get("code").and_then(Value::as_str),
        Some("NetConnection.Call.Failed")
    );
}

#[test]
fn publish_media_and_unpublish_once() {
    let mut p = Peer::new(ServerConfig::default());
    p.connect(vec![]);
    p.cmd(0, "createStream", 2.0, Value::Null, vec![]).unwrap();
    // Media before publish is dropped.
    p.send_raw(6, msg_type::VIDEO, 1, b"early").unwrap();
    p.cmd(
        1,
        "publish",
        3.0,
        Value::Null,
        vec![Value::string("cam"), Value::string("live")],
    )
    .unwrap();
    p.server.accept_publish(1);
    p.drain();
    let status = p
        .replies()
        .into_iter()
        .find(|c| c.name == "onStatus")
        .unwrap();
    assert_eq!(
        status.args[0].get("code").and_then(Value::as_str),
        Some("NetStream.Publish.Start")
    );
    p.send_raw(6, msg_type::VIDEO, 1, b"frame").unwrap();
    let data = sluice_amf0::encode_all(&[
        Value::string("@setDataFrame"),
        Value::string("onMetaData"),
        Value::EcmaArray(vec![]),
    ]);
    p.send_raw(8, msg_type::DATA_AMF0, 1, &data).unwrap();
    // Aggregate: two sub-messages with FLV-style headers, timestamps rebased.
    let mut agg = Vec::new();
    for (ty, ts, body) in [(9u8, 1000u32, &b"a1"[..]), (8, 1020, b"b22")] {
        agg.push(ty);
        agg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        agg.extend_from_slice(&ts.to_be_bytes()[1..]);
        agg.push((ts >> 24) as u8);
        agg.extend_from_slice(&[0, 0, 0]);
        agg.extend_from_slice(body);
        agg.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    }
    let mut b = BytesMut::new();
    encode_message(&mut b, 6, msg_type::AGGREGATE, 1, 500, &agg, 128);
    p.server.handle_input(&b).unwrap();
    p.drain();
    p.cmd(
        0,
        "FCUnpublish",
        4.0,
        Value::Null,
        vec![Value::string("cam")],
    )
    .unwrap();
    p.cmd(
        0,
        "deleteStream",
        5.0,
        Value::Null,
        vec![Value::Number(1.0)],
    )
    .unwrap();
    let media: Vec<(u8, u32, Vec<u8>)> = p
        .events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Media {
                msg_type,
                timestamp,
                body,
                ..
            } => Some((*msg_type, *timestamp, body.to_vec())),
            _ => None,
        })
        .collect();
    assert_eq!(media[0], (9, 0, b"frame".to_vec()));
    assert_eq!(media[1].0, 18);
    assert_eq!(media[2], (9, 500, b"a1".to_vec()));
    assert_eq!(media[3], (8, 520, b"b22".to_vec()));
    assert_eq!(media.len(), 4);
    let unpublishes = p
        .events
        .iter()
        .filter(|e| matches!(e, ServerEvent::Unpublish { stream_id: 1 }))
        .count();
    assert_eq!(unpublishes, 1);
}

#[test]
fn play_pause_close() {
    let mut p = Peer::new(ServerConfig::default());
    p.connect(vec![]);
    p.cmd(0, "createStream", 2.0, Value::Null, vec![]).unwrap();
    p.cmd(
        1,
        "play",
        3.0,
        Value::Null,
        vec![Value::string("cam?t=1"), Value::Number(-1.0)],
    )
    .unwrap();
    assert!(p.events.contains(&ServerEvent::Play {
        stream_id: 1,
        name: "cam?t=1".into(),
        start: -1.0
    }));
    p.replies();
    p.server.accept_play(1);
    p.drain();
    let msgs = std::mem::take(&mut p.inbox);
    // StreamBegin, Play.Reset, Play.Start, |RtmpSampleAccess, Data.Start.
    assert_eq!(
        UserControl::parse(&msgs[0].payload).unwrap(),
        UserControl::StreamBegin(1)
    );
    let codes: Vec<String> = msgs[1..]
        .iter()
        .map(|m| {
            let v = decode_all(&m.payload, &Default::default()).unwrap();
            v.iter()
                .find_map(|x| x.get("code").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| v[0].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        codes,
        [
            "NetStream.Play.Reset",
            "NetStream.Play.Start",
            "|RtmpSampleAccess",
            "NetStream.Data.Start"
        ]
    );
    p.cmd(
        1,
        "pause",
        0.0,
        Value::Null,
        vec![Value::Boolean(true), Value::Number(1234.0)],
    )
    .unwrap();
    assert!(p.events.contains(&ServerEvent::Pause {
        stream_id: 1,
        paused: true,
        ms: 1234.0
    }));
    assert_eq!(
        p.replies()[0].args[0].get("code").and_then(Value::as_str),
        Some("NetStream.Pause.Notify")
    );
    p.cmd(1, "closeStream", 0.0, Value::Null, vec![]).unwrap();
    assert!(p
        .events
        .contains(&ServerEvent::CloseStream { stream_id: 1 }));
}

#[test]
fn ping_buffer_length_and_acknowledgements() {
    let mut p = Peer::new(ServerConfig::default());
    p.connect(vec![]);
    p.cmd(0, "createStream", 2.0, Value::Null, vec![]).unwrap();
    p.inbox.clear();
    p.send_raw(
        2,
        msg_type::USER_CONTROL,
        0,
        &UserControl::PingRequest(4242).to_bytes(),
    )
    .unwrap();
    assert_eq!(
        UserControl::parse(&p.inbox[0].payload).unwrap(),
        UserControl::PingResponse(4242)
    );
    p.send_raw(
        2,
        msg_type::USER_CONTROL,
        0,
        &UserControl::SetBufferLength {
            stream_id: 1,
            ms: 3000,
        }
        .to_bytes(),
    )
    .unwrap();
    assert_eq!(p.server.buffer_length(1), Some(3000));
    // The peer asks for acks every 5000 bytes.
    p.send_raw(2, msg_type::WINDOW_ACK_SIZE, 0, &5000u32.to_be_bytes())
        .unwrap();
    p.inbox.clear();
    for _ in 0..10 {
        p.send_raw(6, msg_type::VIDEO, 1, &[0u8; 1000]).unwrap();
    }
    let acks: Vec<u32> = p
        .inbox
        .iter()
        .filter(|m| m.msg_type == msg_type::ACK)
        .map(|m| u32::from_be_bytes(m.payload[..4].try_into().unwrap()))
        .collect();
    assert!(acks.len() >= 2, "{acks:?}");
    assert!(acks.windows(2).all(|w| w[1] - w[0] >= 5000));
}

#[test]
fn session_limits_name_the_limit() {
    let mut p = Peer::new(ServerConfig::default());
    assert_eq!(
        p.cmd(0, "createStream", 1.0, Value::Null, vec![]),
        Err(RtmpError::Protocol("command before connect"))
    );

    let mut p = Peer::new(ServerConfig::default());
    p.connect(vec![]);
    for i in 0..8 {
        p.cmd(0, "createStream", 2.0 + f64::from(i), Value::Null, vec![])
            .unwrap();
    }
    assert_eq!(
        p.cmd(0, "createStream", 20.0, Value::Null, vec![]),
        Err(RtmpError::LimitExceeded {
            limit: "max_streams",
            value: 9
        })
    );

    let mut p = Peer::new(ServerConfig::default());
    p.connect(vec![]);
    let big = Value::string("x".repeat(70_000));
    assert_eq!(
        p.cmd(0, "foo", 2.0, Value::Null, vec![big]),
        Err(RtmpError::LimitExceeded {
            limit: "max_metadata_size",
            value: 70_021
        })
    );

    let mut p = Peer::new(ServerConfig::default());
    let mut b = BytesMut::new();
    // A 9 MiB video message header.
    encode_message(&mut b, 6, 9, 1, 0, &[], 128);
    b[4..7].copy_from_slice(&(9u32 << 20).to_be_bytes()[1..]);
    assert_eq!(
        p.server.handle_input(&b),
        Err(RtmpError::LimitExceeded {
            limit: "max_message_size",
            value: 9 << 20
        })
    );

    let mut p = Peer::new(ServerConfig::default());
    assert_eq!(
        p.send_raw(2, msg_type::SET_CHUNK_SIZE, 0, &0u32.to_be_bytes()),
        Err(RtmpError::ZeroChunkSize)
    );
}
