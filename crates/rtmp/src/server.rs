//! The server side of an RTMP connection, sans-IO.
//!
//! Feed socket bytes to [`ServerSession::handle_input`], drain [`ServerSession::poll_event`]
//! and write [`ServerSession::take_output`] in one write. The session answers the protocol by
//! itself (handshake, connect, createStream, pings, acknowledgements, …) and leaves decisions
//! to the caller: a `Publish` or `Play` event waits for `accept_*`/`reject_*`.
//!
//! Replies, and the peers that need them:
//! - `connect` → WindowAckSize, SetPeerBandwidth, SetChunkSize, then `_result` with `fmsVer`,
//!   `capabilities`, `NetConnection.Connect.Success`, and the Enhanced RTMP echo (`fourCcList`,
//!   `videoFourCcInfoMap`/`audioFourCcInfoMap` `{"*": CanForward}`, `capsEx`) for clients that
//!   sent those (OBS 30+, ffmpeg 6.1+ with `-rtmp_enhanced_codecs`). Sent together so
//!   Nagle/delayed ACK cannot stall the client.
//! - `releaseStream`, `FCPublish` (ffmpeg, OBS, FMLE), `getStreamLength`, `_checkbw` → `_result`.
//! - unknown commands with a transaction id → `_error` (`NetConnection.Call.Failed`); the
//!   session stays up. `receiveAudio`/`receiveVideo`/`FCSubscribe` without a reply are ignored.
//! - `pause` → `NetStream.Pause.Notify`/`Unpause.Notify` and a `Pause` event.
//!
//! Cost: one chunk decoder (see [`crate::chunk`]), an output buffer that holds one batch of
//! replies, a small map of message streams.

use crate::chunk::Message;
use crate::command::{status_info, Command};
use crate::connection::{split_aggregate, Connection, Control};
use crate::handshake::{HandshakeKind, ServerHandshake};
use crate::message::{csid, msg_type, UserControl};
use crate::{Limits, RtmpError};
use bytes::Bytes;
use sluice_amf0::Value;
use std::collections::{BTreeMap, VecDeque};

/// Server session settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Input limits.
    pub limits: Limits,
    /// Chunk size we send with, announced by SetChunkSize right after `connect`. Default 60000
    /// (large chunks mean fewer headers and fewer write pieces per frame).
    pub out_chunk_size: u32,
    /// Window Acknowledgement Size we announce, and the window we acknowledge at until the peer
    /// announces its own. Default 2 500 000.
    pub window_ack_size: u32,
    /// Set Peer Bandwidth we announce (limit type dynamic). Default 2 500 000.
    pub peer_bandwidth: u32,
    /// Enhanced RTMP `capsEx` bits we support; the reply carries `client capsEx & caps_ex`.
    /// Default 0 (no Reconnect, Multitrack, ModEx or nano offsets promised).
    pub caps_ex: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            out_chunk_size: 60_000,
            window_ack_size: 2_500_000,
            peer_bandwidth: 2_500_000,
            caps_ex: 0,
        }
    }
}

/// What an Enhanced RTMP client said about itself in `connect` (all `None` for legacy ones).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnhancedRtmp {
    /// `fourCcList`, e.g. `["hvc1", "avc1", "av01"]`; `["*"]` means any.
    pub fourcc_list: Option<Vec<String>>,
    /// `videoFourCcInfoMap`: FourCC or `*` → CanDecode 1 | CanEncode 2 | CanForward 4.
    pub video_fourcc_info_map: Option<Vec<(String, u32)>>,
    /// `audioFourCcInfoMap`, same shape.
    pub audio_fourcc_info_map: Option<Vec<(String, u32)>>,
    /// `capsEx`: Reconnect 1 | Multitrack 2 | ModEx 4 | TimestampNanoOffset 8.
    pub caps_ex: Option<u32>,
    /// `videoFunction` bits.
    pub video_function: Option<u32>,
}

impl EnhancedRtmp {
    fn from_command_object(o: &Value) -> Self {
        let map = |key: &str| {
            o.get(key).and_then(Value::properties).map(|p| {
                p.iter()
                    .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(0.0) as u32))
                    .collect()
            })
        };
        EnhancedRtmp {
            fourcc_list: o.get("fourCcList").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            }),
            video_fourcc_info_map: map("videoFourCcInfoMap"),
            audio_fourcc_info_map: map("audioFourCcInfoMap"),
            caps_ex: o.get("capsEx").and_then(Value::as_f64).map(|f| f as u32),
            video_function: o
                .get("videoFunction")
                .and_then(Value::as_f64)
                .map(|f| f as u32),
        }
    }
}

/// What the caller must know or decide.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The client connected; the session has already answered `_result`.
    Connect {
        /// `app` as sent, possibly with a query (`live?token=x`).
        app: String,
        /// `tcUrl`, if sent.
        tc_url: Option<String>,
        /// `objectEncoding` (0 = AMF0, 3 = AMF3), 0 if absent.
        object_encoding: f64,
        /// Enhanced RTMP capabilities the client announced.
        enhanced: EnhancedRtmp,
        /// The whole command object, for anything else (`flashVer`, `swfUrl`, `pageUrl`, …).
        command_object: Value,
    },
    /// The client wants to publish; answer with `accept_publish` or `reject_publish`.
    Publish {
        /// Message stream id.
        stream_id: u32,
        /// Stream name including any `?query`.
        name: String,
        /// Publishing type, usually `live`.
        kind: String,
    },
    /// The client wants to play; answer with `accept_play` or `reject_play`.
    Play {
        /// Message stream id.
        stream_id: u32,
        /// Stream name including any `?query`.
        name: String,
        /// Start argument (-2 live or recorded, -1 live only, ≥ 0 seconds into a recording).
        start: f64,
    },
    /// Audio (8), video (9), AMF0 data (18, incl. `@setDataFrame`) or AMF3 data (15) from a
    /// publishing stream. Aggregates (22) arrive split into their parts.
    Media {
        /// Message stream id.
        stream_id: u32,
        /// Message type id.
        msg_type: u8,
        /// Timestamp in ms.
        timestamp: u32,
        /// The message body (an FLV tag body), shared.
        body: Bytes,
    },
    /// A player paused or resumed (already acknowledged with Pause/Unpause.Notify).
    Pause {
        /// Message stream id.
        stream_id: u32,
        /// True to pause.
        paused: bool,
        /// Stream position in ms the client gave.
        ms: f64,
    },
    /// A publishing stream ended (FCUnpublish, closeStream or deleteStream).
    Unpublish {
        /// Message stream id.
        stream_id: u32,
    },
    /// A playing stream was closed (closeStream or deleteStream).
    CloseStream {
        /// Message stream id.
        stream_id: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum StreamState {
    Idle,
    PublishRequested(String),
    Publishing(String),
    PlayRequested,
    Playing,
}

#[derive(Debug)]
struct NetStream {
    state: StreamState,
    buffer_ms: Option<u32>,
}

/// The server side of one connection. Starts in the handshake.
pub struct ServerSession {
    config: ServerConfig,
    handshake: Option<ServerHandshake>,
    handshake_kind: HandshakeKind,
    conn: Connection,
    events: VecDeque<ServerEvent>,
    connected: bool,
    object_encoding: f64,
    streams: BTreeMap<u32, NetStream>,
    next_stream_id: u32,
}

impl ServerSession {
    /// A session waiting for C0C1.
    pub fn new(config: ServerConfig) -> Self {
        let conn = Connection::new(config.limits.clone(), config.window_ack_size);
        ServerSession {
            config,
            handshake: Some(ServerHandshake::new()),
            handshake_kind: HandshakeKind::Plain,
            conn,
            events: VecDeque::new(),
            connected: false,
            object_encoding: 0.0,
            streams: BTreeMap::new(),
            next_stream_id: 1,
        }
    }

    /// Consumes bytes read from the socket (any piece size, including 1 byte). `Err` is a fatal
    /// protocol error or limit; the caller closes the connection and logs the reason.
    pub fn handle_input(&mut self, mut data: &[u8]) -> Result<(), RtmpError> {
        self.conn.count_input(data.len());
        if let Some(hs) = &mut self.handshake {
            let used = hs.handle(data, &mut self.conn.out)?;
            data = &data[used..];
            self.handshake_kind = hs.kind();
            if !hs.is_done() {
                return Ok(());
            }
            self.handshake = None;
        }
        while let Some(m) = self.conn.decoder.decode(&mut data)? {
            self.handle_message(m)?;
        }
        self.conn.maybe_ack();
        Ok(())
    }

    /// The next event, if any. Drain after every `handle_input`.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Everything the session wants sent, as one buffer; `None` when there is nothing.
    pub fn take_output(&mut self) -> Option<Bytes> {
        self.conn.take_output()
    }

    /// Answers a `Publish`: StreamBegin + `onStatus NetStream.Publish.Start`. Media on the
    /// stream is delivered from now on (and was already, between the event and this call).
    pub fn accept_publish(&mut self, stream_id: u32) {
        let name = match self.streams.get_mut(&stream_id) {
            Some(s) => match std::mem::replace(&mut s.state, StreamState::Idle) {
                StreamState::PublishRequested(n) | StreamState::Publishing(n) => n,
                other => {
                    s.state = other;
                    return;
                }
            },
            None => return,
        };
        self.conn
            .send_user_control(UserControl::StreamBegin(stream_id));
        self.send_status(
            stream_id,
            "status",
            "NetStream.Publish.Start",
            &format!("{name} is now published."),
        );
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.state = StreamState::Publishing(name);
        }
    }

    /// Refuses a `Publish` with an error `onStatus` (e.g. `NetStream.Publish.BadName`).
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) {
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.state = StreamState::Idle;
        }
        self.send_status(stream_id, "error", code, description);
    }

    /// Answers a `Play`: StreamBegin, `NetStream.Play.Reset`, `NetStream.Play.Start`,
    /// `|RtmpSampleAccess`, `NetStream.Data.Start`. Then send media on this stream id.
    pub fn accept_play(&mut self, stream_id: u32) {
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.state = StreamState::Playing;
        }
        self.conn
            .send_user_control(UserControl::StreamBegin(stream_id));
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.Reset",
            "Playing and resetting stream.",
        );
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.Start",
            "Started playing stream.",
        );
        self.conn.send_data(
            csid::STREAM,
            stream_id,
            &[
                Value::string("|RtmpSampleAccess"),
                Value::Boolean(true),
                Value::Boolean(true),
            ],
        );
        self.conn.send_data(
            csid::STREAM,
            stream_id,
            &[
                Value::string("onStatus"),
                Value::object([("code", Value::string("NetStream.Data.Start"))]),
            ],
        );
    }

    /// Refuses a `Play` with an error `onStatus` (e.g. `NetStream.Play.StreamNotFound`).
    pub fn reject_play(&mut self, stream_id: u32, code: &str, description: &str) {
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.state = StreamState::Idle;
        }
        self.send_status(stream_id, "error", code, description);
    }

    /// Ends playback (the publisher left): StreamEOF, `NetStream.Play.UnpublishNotify`,
    /// `NetStream.Play.Stop`. ffmpeg ends its input on either status.
    pub fn end_play(&mut self, stream_id: u32) {
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.state = StreamState::Idle;
        }
        self.conn
            .send_user_control(UserControl::StreamEof(stream_id));
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.UnpublishNotify",
            "Stream was unpublished.",
        );
        self.send_status(
            stream_id,
            "status",
            "NetStream.Play.Stop",
            "Stopped playing stream.",
        );
    }

    /// Appends one media message for a player to the output (copies the payload; for fan-out,
    /// write a [`crate::SharedMessage`] built with [`ServerSession::out_chunk_size`] yourself,
    /// after writing whatever `take_output` returned).
    pub fn send_media(&mut self, stream_id: u32, msg_type: u8, timestamp: u32, payload: &[u8]) {
        let cs = match msg_type {
            msg_type::AUDIO => csid::AUDIO,
            msg_type::VIDEO => csid::VIDEO,
            _ => csid::DATA,
        };
        self.conn.send(cs, msg_type, stream_id, timestamp, payload);
    }

    /// Chunk size of everything we send (128 until `connect` is answered, then
    /// [`ServerConfig::out_chunk_size`]).
    pub fn out_chunk_size(&self) -> u32 {
        self.conn.out_chunk_size
    }

    /// Bytes received so far, handshake included (what Acknowledgements count).
    pub fn bytes_received(&self) -> u64 {
        self.conn.bytes_received()
    }

    /// The buffer length a player announced for `stream_id` with SetBufferLength.
    pub fn buffer_length(&self, stream_id: u32) -> Option<u32> {
        self.streams.get(&stream_id).and_then(|s| s.buffer_ms)
    }

    /// The bandwidth the peer announced with SetPeerBandwidth, if any.
    pub fn peer_bandwidth(&self) -> Option<u32> {
        self.conn.peer_bandwidth
    }

    /// Which handshake the client used.
    pub fn handshake_kind(&self) -> HandshakeKind {
        self.handshake_kind
    }

    /// True once `connect` was answered.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Bytes held in partially received messages.
    pub fn pending_bytes(&self) -> usize {
        self.conn.decoder.pending_bytes()
    }

    fn send_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.conn.send_command(
            csid::STREAM,
            stream_id,
            &[
                Value::string("onStatus"),
                Value::Number(0.0),
                Value::Null,
                status_info(level, code, description),
            ],
        );
    }

    fn handle_message(&mut self, m: Message) -> Result<(), RtmpError> {
        match self.conn.handle_control(&m)? {
            Control::Handled => return Ok(()),
            Control::User(UserControl::SetBufferLength { stream_id, ms }) => {
                if let Some(s) = self.streams.get_mut(&stream_id) {
                    s.buffer_ms = Some(ms);
                }
                return Ok(());
            }
            Control::User(_) => return Ok(()),
            Control::Other => {}
        }
        match m.msg_type {
            msg_type::AUDIO | msg_type::VIDEO | msg_type::DATA_AMF0 | msg_type::DATA_AMF3
                if self.is_publishing(m.stream_id) =>
            {
                self.events.push_back(ServerEvent::Media {
                    stream_id: m.stream_id,
                    msg_type: m.msg_type,
                    timestamp: m.timestamp,
                    body: m.payload,
                });
            }
            msg_type::AGGREGATE if self.is_publishing(m.stream_id) => {
                for (ty, timestamp, body) in split_aggregate(&m)? {
                    if matches!(ty, msg_type::AUDIO | msg_type::VIDEO | msg_type::DATA_AMF0) {
                        self.events.push_back(ServerEvent::Media {
                            stream_id: m.stream_id,
                            msg_type: ty,
                            timestamp,
                            body,
                        });
                    }
                }
            }
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                let cmd = Command::parse(m.msg_type, &m.payload, &self.conn.limits.amf0)?;
                self.handle_command(m.stream_id, cmd)?;
            }
            // Shared objects and unknown types: ignored.
            _ => {}
        }
        Ok(())
    }

    fn is_publishing(&self, stream_id: u32) -> bool {
        matches!(
            self.streams.get(&stream_id).map(|s| &s.state),
            Some(StreamState::PublishRequested(_) | StreamState::Publishing(_))
        )
    }

    fn reply(
        &mut self,
        cs: u32,
        stream_id: u32,
        name: &str,
        txn: f64,
        obj: Value,
        args: Vec<Value>,
    ) {
        let mut vs = vec![Value::string(name), Value::Number(txn), obj];
        vs.extend(args);
        self.conn.send_command(cs, stream_id, &vs);
    }

    fn handle_command(&mut self, msid: u32, cmd: Command) -> Result<(), RtmpError> {
        let txn = cmd.transaction_id;
        if cmd.name == "connect" {
            return self.handle_connect(cmd);
        }
        if !self.connected {
            return Err(RtmpError::Protocol("command before connect"));
        }
        match cmd.name.as_str() {
            "releaseStream" | "FCPublish" | "FCSubscribe" | "getStreamLength" | "_checkbw" => {
                if txn != 0.0 {
                    let arg = if cmd.name == "getStreamLength" {
                        Value::Number(0.0)
                    } else {
                        Value::Undefined
                    };
                    self.reply(csid::COMMAND, msid, "_result", txn, Value::Null, vec![arg]);
                }
            }
            "createStream" => {
                if self.streams.len() >= self.conn.limits.max_streams {
                    return Err(RtmpError::LimitExceeded {
                        limit: "max_streams",
                        value: self.streams.len() as u64 + 1,
                    });
                }
                let id = self.next_stream_id;
                self.next_stream_id = self.next_stream_id.saturating_add(1);
                self.streams.insert(
                    id,
                    NetStream {
                        state: StreamState::Idle,
                        buffer_ms: None,
                    },
                );
                self.reply(
                    csid::COMMAND,
                    0,
                    "_result",
                    txn,
                    Value::Null,
                    vec![Value::Number(f64::from(id))],
                );
            }
            "publish" => {
                let name = cmd.arg_str(0).unwrap_or_default().to_owned();
                let kind = cmd.arg_str(1).unwrap_or("live").to_owned();
                self.stream_mut(msid)?.state = StreamState::PublishRequested(name.clone());
                self.events.push_back(ServerEvent::Publish {
                    stream_id: msid,
                    name,
                    kind,
                });
            }
            "play" => {
                let name = cmd.arg_str(0).unwrap_or_default().to_owned();
                let start = cmd.arg_f64(1).unwrap_or(-2.0);
                self.stream_mut(msid)?.state = StreamState::PlayRequested;
                self.events.push_back(ServerEvent::Play {
                    stream_id: msid,
                    name,
                    start,
                });
            }
            "pause" => {
                let paused = cmd.args.first().and_then(Value::as_bool).unwrap_or(true);
                let ms = cmd.arg_f64(1).unwrap_or(0.0);
                let (code, desc) = if paused {
                    ("NetStream.Pause.Notify", "Paused stream.")
                } else {
                    ("NetStream.Unpause.Notify", "Unpaused stream.")
                };
                self.send_status(msid, "status", code, desc);
                self.events.push_back(ServerEvent::Pause {
                    stream_id: msid,
                    paused,
                    ms,
                });
            }
            "FCUnpublish" => {
                let name = cmd.arg_str(0).unwrap_or_default();
                let publishing: Vec<(u32, bool)> = self
                    .streams
                    .iter()
                    .filter_map(|(id, s)| match &s.state {
                        StreamState::PublishRequested(n) | StreamState::Publishing(n) => {
                            Some((*id, n == name))
                        }
                        _ => None,
                    })
                    .collect();
                // By name; if the name does not match (query stripped or not), the only one.
                let id = publishing
                    .iter()
                    .find(|(_, m)| *m)
                    .or(if publishing.len() == 1 {
                        publishing.first()
                    } else {
                        None
                    })
                    .map(|(id, _)| *id);
                if let Some(id) = id {
                    self.end_stream(id, false);
                }
                if txn != 0.0 {
                    self.reply(
                        csid::COMMAND,
                        msid,
                        "_result",
                        txn,
                        Value::Null,
                        vec![Value::Undefined],
                    );
                }
            }
            "deleteStream" => {
                let id = cmd.arg_f64(0).map(|f| f as u32).unwrap_or(msid);
                self.end_stream(id, true);
            }
            "closeStream" => self.end_stream(msid, false),
            "receiveAudio" | "receiveVideo" | "_result" | "_error" | "onStatus"
            | "_checkbwDone" => {}
            _ => {
                if txn != 0.0 {
                    let desc = format!("Method not found ({}).", cmd.name);
                    self.reply(
                        csid::COMMAND,
                        msid,
                        "_error",
                        txn,
                        Value::Null,
                        vec![status_info("error", "NetConnection.Call.Failed", &desc)],
                    );
                }
            }
        }
        Ok(())
    }

    /// The stream a `publish`/`play` names; an id the client never created is created on the
    /// fly (some clients reuse id 1 without `createStream`), within `max_streams`.
    fn stream_mut(&mut self, id: u32) -> Result<&mut NetStream, RtmpError> {
        if !self.streams.contains_key(&id) && self.streams.len() >= self.conn.limits.max_streams {
            return Err(RtmpError::LimitExceeded {
                limit: "max_streams",
                value: self.streams.len() as u64 + 1,
            });
        }
        Ok(self.streams.entry(id).or_insert(NetStream {
            state: StreamState::Idle,
            buffer_ms: None,
        }))
    }

    fn end_stream(&mut self, id: u32, delete: bool) {
        let state = match self.streams.get_mut(&id) {
            Some(s) => std::mem::replace(&mut s.state, StreamState::Idle),
            None => return,
        };
        match state {
            StreamState::PublishRequested(_) | StreamState::Publishing(_) => self
                .events
                .push_back(ServerEvent::Unpublish { stream_id: id }),
            StreamState::PlayRequested | StreamState::Playing => self
                .events
                .push_back(ServerEvent::CloseStream { stream_id: id }),
            StreamState::Idle => {}
        }
        if delete {
            self.streams.remove(&id);
        }
    }

    fn handle_connect(&mut self, cmd: Command) -> Result<(), RtmpError> {
        if self.connected {
            return Err(RtmpError::Protocol("second connect"));
        }
        let o = &cmd.command_object;
        let app = o
            .get("app")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let tc_url = o.get("tcUrl").and_then(Value::as_str).map(str::to_owned);
        self.object_encoding = o
            .get("objectEncoding")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let enhanced = EnhancedRtmp::from_command_object(o);

        self.conn.send_window_ack_size(self.config.window_ack_size);
        self.conn.send_peer_bandwidth(self.config.peer_bandwidth);
        self.conn.set_out_chunk_size(self.config.out_chunk_size);

        let mut props = vec![
            ("fmsVer".to_owned(), Value::string("FMS/3,5,3,888")),
            ("capabilities".to_owned(), Value::Number(127.0)),
            ("mode".to_owned(), Value::Number(1.0)),
        ];
        if let Some(list) = &enhanced.fourcc_list {
            props.push((
                "fourCcList".to_owned(),
                Value::StrictArray(list.iter().map(|s| Value::string(s.as_str())).collect()),
            ));
        }
        let forward_all = || Value::object([("*", Value::Number(4.0))]);
        if enhanced.video_fourcc_info_map.is_some() {
            props.push(("videoFourCcInfoMap".to_owned(), forward_all()));
        }
        if enhanced.audio_fourcc_info_map.is_some() {
            props.push(("audioFourCcInfoMap".to_owned(), forward_all()));
        }
        if let Some(c) = enhanced.caps_ex {
            props.push((
                "capsEx".to_owned(),
                Value::Number(f64::from(c & self.config.caps_ex)),
            ));
        }
        let info = Value::object([
            ("level", Value::string("status")),
            ("code", Value::string("NetConnection.Connect.Success")),
            ("description", Value::string("Connection succeeded.")),
            ("objectEncoding", Value::Number(self.object_encoding)),
        ]);
        self.reply(
            csid::COMMAND,
            0,
            "_result",
            cmd.transaction_id,
            Value::Object(props),
            vec![info],
        );
        self.connected = true;
        self.events.push_back(ServerEvent::Connect {
            app,
            tc_url,
            object_encoding: self.object_encoding,
            enhanced,
            command_object: cmd.command_object,
        });
        Ok(())
    }
}
