//! The client side of an RTMP connection, sans-IO: for the load tool and for relays (an edge
//! pulling from its origin, or pushing to another server).
//!
//! Flow: [`ClientSession::start`] gives C0C1 (digest form); after S0S1S2 the session sends C2
//! and `connect` together; on `_result` it announces its chunk size (default 4096), sends
//! `releaseStream`/`FCPublish` (publish) and `createStream`, then `publish` or `play` +
//! SetBufferLength. `onStatus` `NetStream.Publish.Start`/`NetStream.Play.Start` become
//! [`ClientEvent::PublishStarted`]/[`ClientEvent::PlayStarted`].
//!
//! Cost: like the server session; `send_media` copies the payload into the output buffer.

use crate::chunk::Message;
use crate::command::Command;
use crate::connection::{split_aggregate, Connection, Control};
use crate::handshake::{ClientHandshake, HandshakeKind};
use crate::message::{csid, msg_type, UserControl};
use crate::{Limits, RtmpError};
use bytes::Bytes;
use sluice_amf0::Value;
use std::collections::VecDeque;

/// Whether the client publishes or plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    /// Send media with [`ClientSession::send_media`].
    Publish,
    /// Receive media as [`ClientEvent::Media`].
    Play,
}

/// Client session settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `app` for `connect` (may carry a `?query`).
    pub app: String,
    /// `tcUrl` for `connect`, e.g. `rtmp://host/live`.
    pub tc_url: String,
    /// Stream name for `publish`/`play` (may carry a `?query`).
    pub stream: String,
    /// Publish or play.
    pub mode: ClientMode,
    /// Chunk size we send with, announced after `connect`. Default 4096.
    pub chunk_size: u32,
    /// Input limits.
    pub limits: Limits,
    /// `flashVer` for `connect`.
    pub flash_ver: String,
    /// Enhanced RTMP `fourCcList` sent in `connect` (empty: not sent). Default
    /// `["hvc1", "avc1", "av01", "mp4a"]`.
    pub fourcc_list: Vec<String>,
    /// Window we acknowledge at until the server announces one. Default 2 500 000.
    pub window_ack_size: u32,
    /// Buffer length announced with SetBufferLength when playing. Default 1000 ms.
    pub buffer_ms: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            app: "live".into(),
            tc_url: "rtmp://127.0.0.1/live".into(),
            stream: "test".into(),
            mode: ClientMode::Publish,
            chunk_size: 4096,
            limits: Limits::default(),
            flash_ver: "FMLE/3.0 (compatible; sluice)".into(),
            fourcc_list: ["hvc1", "avc1", "av01", "mp4a"].map(String::from).to_vec(),
            window_ack_size: 2_500_000,
            buffer_ms: 1000,
        }
    }
}

/// What the client session reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `connect` succeeded; `properties` is the server's first `_result` object (fmsVer,
    /// Enhanced RTMP echo, …).
    Connected {
        /// The server's properties object.
        properties: Value,
    },
    /// `NetStream.Publish.Start` arrived; `send_media` may be used.
    PublishStarted {
        /// Message stream id.
        stream_id: u32,
    },
    /// `NetStream.Play.Start` arrived; media follows.
    PlayStarted {
        /// Message stream id.
        stream_id: u32,
    },
    /// Any `onStatus` (including the two above).
    Status {
        /// `code`, e.g. `NetStream.Play.UnpublishNotify`.
        code: String,
        /// `level`: `status`, `warning` or `error`.
        level: String,
        /// `description`.
        description: String,
    },
    /// A media or data message received while playing.
    Media {
        /// Message type id (8, 9, 18, 15).
        msg_type: u8,
        /// Timestamp in ms.
        timestamp: u32,
        /// The message body, shared.
        body: Bytes,
    },
    /// User Control StreamEOF: the server ended the stream.
    StreamEof {
        /// Message stream id.
        stream_id: u32,
    },
    /// The server answered one of our commands with `_error`.
    CommandError {
        /// Which of our commands (`connect`, `createStream`, …).
        command: String,
        /// The info object's `code`, if any.
        code: String,
        /// The info object's `description`, if any.
        description: String,
    },
}

/// The client side of one connection.
pub struct ClientSession {
    config: ClientConfig,
    handshake: Option<ClientHandshake>,
    handshake_kind: HandshakeKind,
    conn: Connection,
    events: VecDeque<ClientEvent>,
    /// Outstanding transactions: (id, command name).
    pending: Vec<(f64, &'static str)>,
    next_txn: f64,
    stream_id: Option<u32>,
    started: bool,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl ClientSession {
    /// A session; call [`ClientSession::start`] for C0C1.
    pub fn new(config: ClientConfig) -> Self {
        let conn = Connection::new(config.limits.clone(), config.window_ack_size);
        ClientSession {
            config,
            handshake: Some(ClientHandshake::new()),
            handshake_kind: HandshakeKind::Plain,
            conn,
            events: VecDeque::new(),
            pending: Vec::new(),
            next_txn: 1.0,
            stream_id: None,
            started: false,
        }
    }

    /// Queues C0C1 for sending.
    pub fn start(&mut self) {
        if let Some(hs) = &mut self.handshake {
            hs.start(&mut self.conn.out);
        }
    }

    /// Consumes bytes from the server. `Err` is fatal.
    pub fn handle_input(&mut self, mut data: &[u8]) -> Result<(), RtmpError> {
        self.conn.count_input(data.len());
        if let Some(hs) = &mut self.handshake {
            let used = hs.handle(data, &mut self.conn.out)?;
            data = &data[used..];
            if !hs.is_done() {
                return Ok(());
            }
            self.handshake_kind = hs.kind();
            self.handshake = None;
            self.send_connect();
        }
        while let Some(m) = self.conn.decoder.decode(&mut data)? {
            self.handle_message(m)?;
        }
        self.conn.maybe_ack();
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Everything to send, as one buffer.
    pub fn take_output(&mut self) -> Option<Bytes> {
        self.conn.take_output()
    }

    /// Queues one media or data message (8 audio, 9 video, 18 data) on the published stream,
    /// chunked with our chunk size. Copies `body` into the output buffer. Errors before
    /// `PublishStarted`.
    pub fn send_media(
        &mut self,
        msg_type: u8,
        timestamp: u32,
        body: Bytes,
    ) -> Result<(), RtmpError> {
        let sid = match (self.config.mode, self.stream_id, self.started) {
            (ClientMode::Publish, Some(sid), true) => sid,
            _ => {
                return Err(RtmpError::Protocol(
                    "send_media before NetStream.Publish.Start",
                ))
            }
        };
        let cs = match msg_type {
            msg_type::AUDIO => csid::AUDIO,
            msg_type::VIDEO => csid::VIDEO,
            _ => csid::DATA,
        };
        self.conn.send(cs, msg_type, sid, timestamp, &body);
        Ok(())
    }

    /// Ends the stream politely: `FCUnpublish` (when publishing) and `deleteStream`.
    pub fn close(&mut self) {
        if let Some(sid) = self.stream_id.take() {
            if self.config.mode == ClientMode::Publish {
                let name = Value::string(self.config.stream.as_str());
                self.command(csid::COMMAND, 0, "FCUnpublish", vec![name]);
            }
            self.command(
                csid::COMMAND,
                0,
                "deleteStream",
                vec![Value::Number(f64::from(sid))],
            );
        }
        self.started = false;
    }

    /// The message stream id from `createStream`, once known.
    pub fn stream_id(&self) -> Option<u32> {
        self.stream_id
    }

    /// Which handshake the server answered with (Plain until it did).
    pub fn handshake_kind(&self) -> HandshakeKind {
        self.handshake_kind
    }

    /// Chunk size we send with.
    pub fn out_chunk_size(&self) -> u32 {
        self.conn.out_chunk_size
    }

    /// Sends a command with a fresh transaction id and remembers it.
    fn command(&mut self, cs: u32, msid: u32, name: &'static str, args: Vec<Value>) {
        let txn = self.next_txn;
        self.next_txn += 1.0;
        self.pending.push((txn, name));
        let mut vs = vec![Value::string(name), Value::Number(txn), Value::Null];
        vs.extend(args);
        self.conn.send_command(cs, msid, &vs);
    }

    fn send_connect(&mut self) {
        let c = &self.config;
        let mut props = vec![
            ("app".to_owned(), Value::string(c.app.as_str())),
            ("type".to_owned(), Value::string("nonprivate")),
            ("flashVer".to_owned(), Value::string(c.flash_ver.as_str())),
            ("tcUrl".to_owned(), Value::string(c.tc_url.as_str())),
        ];
        if c.mode == ClientMode::Play {
            props.push(("fpad".to_owned(), Value::Boolean(false)));
            props.push(("capabilities".to_owned(), Value::Number(15.0)));
            props.push(("audioCodecs".to_owned(), Value::Number(4071.0)));
            props.push(("videoCodecs".to_owned(), Value::Number(252.0)));
            props.push(("videoFunction".to_owned(), Value::Number(1.0)));
        }
        if !c.fourcc_list.is_empty() {
            let list = c
                .fourcc_list
                .iter()
                .map(|s| Value::string(s.as_str()))
                .collect();
            props.push(("fourCcList".to_owned(), Value::StrictArray(list)));
        }
        let txn = self.next_txn;
        self.next_txn += 1.0;
        self.pending.push((txn, "connect"));
        self.conn.send_command(
            csid::COMMAND,
            0,
            &[
                Value::string("connect"),
                Value::Number(txn),
                Value::Object(props),
            ],
        );
    }

    fn handle_message(&mut self, m: Message) -> Result<(), RtmpError> {
        match self.conn.handle_control(&m)? {
            Control::Handled => return Ok(()),
            Control::User(UserControl::StreamEof(stream_id)) => {
                self.events.push_back(ClientEvent::StreamEof { stream_id });
                return Ok(());
            }
            Control::User(_) => return Ok(()),
            Control::Other => {}
        }
        match m.msg_type {
            msg_type::AUDIO | msg_type::VIDEO | msg_type::DATA_AMF0 | msg_type::DATA_AMF3
                if self.config.mode == ClientMode::Play =>
            {
                self.events.push_back(ClientEvent::Media {
                    msg_type: m.msg_type,
                    timestamp: m.timestamp,
                    body: m.payload,
                });
            }
            msg_type::AGGREGATE if self.config.mode == ClientMode::Play => {
                for (msg_type, timestamp, body) in split_aggregate(&m)? {
                    self.events.push_back(ClientEvent::Media {
                        msg_type,
                        timestamp,
                        body,
                    });
                }
            }
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                let cmd = Command::parse(m.msg_type, &m.payload, &self.conn.limits.amf0)?;
                self.handle_command(cmd);
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_command(&mut self, cmd: Command) {
        match cmd.name.as_str() {
            "_result" | "_error" => {
                let Some(i) = self
                    .pending
                    .iter()
                    .position(|(t, _)| *t == cmd.transaction_id)
                else {
                    return;
                };
                let (_, name) = self.pending.swap_remove(i);
                if cmd.name == "_error" {
                    let info = cmd.args.first().cloned().unwrap_or(Value::Null);
                    self.events.push_back(ClientEvent::CommandError {
                        command: name.to_owned(),
                        code: text(&info, "code"),
                        description: text(&info, "description"),
                    });
                    return;
                }
                match name {
                    "connect" => self.on_connected(cmd.command_object),
                    "createStream" => {
                        let sid = cmd.arg_f64(0).unwrap_or(1.0) as u32;
                        self.stream_id = Some(sid);
                        let name = Value::string(self.config.stream.as_str());
                        match self.config.mode {
                            ClientMode::Publish => {
                                self.command(
                                    csid::STREAM,
                                    sid,
                                    "publish",
                                    vec![name, Value::string("live")],
                                );
                            }
                            ClientMode::Play => {
                                self.command(
                                    csid::STREAM,
                                    sid,
                                    "play",
                                    vec![name, Value::Number(-2.0)],
                                );
                                self.conn.send_user_control(UserControl::SetBufferLength {
                                    stream_id: sid,
                                    ms: self.config.buffer_ms,
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
            "onStatus" => {
                let info = cmd.args.first().cloned().unwrap_or(Value::Null);
                let code = text(&info, "code");
                if let Some(sid) = self.stream_id {
                    if code == "NetStream.Publish.Start" {
                        self.started = true;
                        self.events
                            .push_back(ClientEvent::PublishStarted { stream_id: sid });
                    } else if code == "NetStream.Play.Start" {
                        self.started = true;
                        self.events
                            .push_back(ClientEvent::PlayStarted { stream_id: sid });
                    }
                }
                self.events.push_back(ClientEvent::Status {
                    code,
                    level: text(&info, "level"),
                    description: text(&info, "description"),
                });
            }
            _ => {}
        }
    }

    fn on_connected(&mut self, properties: Value) {
        self.events.push_back(ClientEvent::Connected { properties });
        self.conn.set_out_chunk_size(self.config.chunk_size);
        if self.config.mode == ClientMode::Publish {
            let name = Value::string(self.config.stream.as_str());
            self.command(csid::COMMAND, 0, "releaseStream", vec![name.clone()]);
            self.command(csid::COMMAND, 0, "FCPublish", vec![name]);
        }
        self.command(csid::COMMAND, 0, "createStream", vec![]);
    }
}
