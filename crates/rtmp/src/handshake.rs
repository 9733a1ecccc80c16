//! The RTMP handshake: C0/C1/C2 and S0/S1/S2, plain and digest ("complex").
//!
//! Plain: C1/S1 are time + 4 zero bytes + 1528 random bytes, and each side echoes the other's
//! packet as C2/S2. Digest (Flash Player 9+ / FMS 3+): a 32-byte HMAC-SHA256 sits inside C1/S1
//! at an offset derived from four bytes of the packet, in one of two layouts ("schemas"):
//!
//! | schema | offset bytes | digest offset                     |
//! |--------|--------------|-----------------------------------|
//! | 0      | 8..12        | (sum of the 4 bytes % 728) + 12   |
//! | 1      | 772..776     | (sum of the 4 bytes % 728) + 776  |
//!
//! The digest covers the packet minus the digest itself, keyed with the first 30 bytes of the
//! Flash Player key (client packets) or the first 36 bytes of the FMS key (server packets).
//! S2/C2 end with `HMAC(HMAC(full key, peer digest), first 1504 bytes)`.
//!
//! Who checks what: ffmpeg as a *player* validates a digest S1 and its S2 (it fails with
//! "Server response validating failed"/"Signature mismatch" otherwise), and skips both when S1's
//! version is zero; Flash players require the digest form. So the server answers a digest C1
//! with a digest S1/S2 in the client's schema, and a plain C1 (version 0, or a digest that
//! validates in neither schema) with the plain echo, as SRS does. C2 is not checked: many
//! encoders send garbage there.
//!
//! Cost: three 1536-byte buffers per connection while handshaking, freed afterwards; a few HMACs.

use crate::RtmpError;
use bytes::{BufMut, BytesMut};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Size of C1, C2, S1 and S2.
pub const PACKET_SIZE: usize = 1536;
/// The only RTMP version (C0/S0).
pub const RTMP_VERSION: u8 = 3;
const DIGEST_LEN: usize = 32;

/// The FMS key: the first 36 bytes sign S1, all 68 derive the S2 key.
const FMS_KEY: [u8; 68] = fms_key();
/// The Flash Player key: the first 30 bytes sign C1, all 62 derive the C2 key.
const FP_KEY: [u8; 62] = fp_key();
const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57,
    0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];

const fn fms_key() -> [u8; 68] {
    concat_key::<68>(b"Genuine Adobe Flash Media Server 001")
}
const fn fp_key() -> [u8; 62] {
    concat_key::<62>(b"Genuine Adobe Flash Player 001")
}
const fn concat_key<const N: usize>(head: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < head.len() {
        out[i] = head[i];
        i += 1;
    }
    let mut j = 0;
    while j < 32 {
        out[i + j] = KEY_TAIL[j];
        j += 1;
    }
    out
}

/// Our version field in a digest S1 (non-zero marks the digest form; ffmpeg validates S1 when
/// its first byte is ≥ 3).
const SERVER_VERSION: [u8; 4] = [0x0D, 0x0E, 0x0A, 0x0D];
/// Our version field in a digest C1 (Flash Player 9-ish, like librtmp).
const CLIENT_VERSION: [u8; 4] = [0x09, 0x00, 0x7C, 0x02];

/// Where the digest sits in a C1/S1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Offset derived from bytes 8..12 (what ffmpeg and librtmp send).
    Schema0,
    /// Offset derived from bytes 772..776 (Flash Player 10+).
    Schema1,
}

/// Which handshake a session completed; useful in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// The plain echo handshake.
    Plain,
    /// The digest handshake in the given schema.
    Digest(Schema),
}

fn digest_offset(p: &[u8; PACKET_SIZE], schema: Schema) -> usize {
    let base = match schema {
        Schema::Schema0 => 8,
        Schema::Schema1 => 772,
    };
    let sum: usize = p[base..base + 4].iter().map(|&b| b as usize).sum();
    sum % 728 + base + 4
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn packet_digest(p: &[u8; PACKET_SIZE], off: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac(key, &[&p[..off], &p[off + DIGEST_LEN..]])
}

/// Finds a valid digest in a C1 (with the FP key) or S1 (with the FMS key); returns the schema
/// and the digest.
fn find_digest(p: &[u8; PACKET_SIZE], key: &[u8]) -> Option<(Schema, [u8; DIGEST_LEN])> {
    for schema in [Schema::Schema0, Schema::Schema1] {
        let off = digest_offset(p, schema);
        let d = packet_digest(p, off, key);
        if d[..] == p[off..off + DIGEST_LEN] {
            return Some((schema, d));
        }
    }
    None
}

/// Builds a digest C1/S1: version, random fill, digest at the schema's offset.
fn digest_packet(
    version: [u8; 4],
    schema: Schema,
    key: &[u8],
) -> ([u8; PACKET_SIZE], [u8; DIGEST_LEN]) {
    let mut p = [0u8; PACKET_SIZE];
    rand::thread_rng().fill_bytes(&mut p[8..]);
    p[4..8].copy_from_slice(&version);
    let off = digest_offset(&p, schema);
    let d = packet_digest(&p, off, key);
    p[off..off + DIGEST_LEN].copy_from_slice(&d);
    (p, d)
}

/// Builds S2/C2 answering a peer digest: random, then the keyed HMAC of the first 1504 bytes.
fn digest_response(peer_digest: &[u8; DIGEST_LEN], full_key: &[u8]) -> [u8; PACKET_SIZE] {
    let mut p = [0u8; PACKET_SIZE];
    rand::thread_rng().fill_bytes(&mut p);
    let key = hmac(full_key, &[peer_digest]);
    let sig = hmac(&key, &[&p[..PACKET_SIZE - DIGEST_LEN]]);
    p[PACKET_SIZE - DIGEST_LEN..].copy_from_slice(&sig);
    p
}

/// Checks a digest S2/C2 against the digest we sent in our S1/C1.
fn response_valid(p: &[u8; PACKET_SIZE], our_digest: &[u8; DIGEST_LEN], full_key: &[u8]) -> bool {
    let key = hmac(full_key, &[our_digest]);
    hmac(&key, &[&p[..PACKET_SIZE - DIGEST_LEN]])[..] == p[PACKET_SIZE - DIGEST_LEN..]
}

fn plain_packet() -> [u8; PACKET_SIZE] {
    let mut p = [0u8; PACKET_SIZE];
    rand::thread_rng().fill_bytes(&mut p[8..]);
    p
}

/// Collects a fixed number of bytes across calls.
struct Collect {
    buf: Vec<u8>,
    want: usize,
}

impl Collect {
    fn new(want: usize) -> Self {
        Collect {
            buf: Vec::with_capacity(want),
            want,
        }
    }
    /// Takes what it still needs from `data`; returns bytes consumed.
    fn feed(&mut self, data: &[u8]) -> usize {
        let n = (self.want - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        n
    }
    fn done(&self) -> bool {
        self.buf.len() == self.want
    }
}

enum ServerState {
    C0C1(Collect),
    C2(Collect),
    Done,
}

/// The server side: reads C0C1, writes S0S1S2 at once, then reads (and ignores) C2.
pub struct ServerHandshake {
    state: ServerState,
    kind: HandshakeKind,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    /// A handshake waiting for C0C1. Allocates a 1537-byte collection buffer.
    pub fn new() -> Self {
        ServerHandshake {
            state: ServerState::C0C1(Collect::new(1 + PACKET_SIZE)),
            kind: HandshakeKind::Plain,
        }
    }

    /// Consumes handshake bytes from `data` and appends S0S1S2 to `out` once C0C1 is complete.
    /// Returns how many bytes were consumed; bytes after C2 belong to the chunk stream.
    pub fn handle(&mut self, data: &[u8], out: &mut BytesMut) -> Result<usize, RtmpError> {
        let mut used = 0;
        loop {
            match &mut self.state {
                ServerState::C0C1(c) => {
                    // Check the version byte as soon as it arrives: an HTTP or TLS client is
                    // refused before we wait for 1536 more bytes.
                    used += c.feed(&data[used..]);
                    if let Some(&v) = c.buf.first() {
                        if v != RTMP_VERSION {
                            return Err(RtmpError::UnsupportedVersion(v));
                        }
                    }
                    if !c.done() {
                        return Ok(used);
                    }
                    let mut c1 = [0u8; PACKET_SIZE];
                    c1.copy_from_slice(&c.buf[1..]);
                    self.respond(&c1, out);
                    self.state = ServerState::C2(Collect::new(PACKET_SIZE));
                }
                ServerState::C2(c) => {
                    used += c.feed(&data[used..]);
                    if !c.done() {
                        return Ok(used);
                    }
                    self.state = ServerState::Done;
                }
                ServerState::Done => return Ok(used),
            }
        }
    }

    fn respond(&mut self, c1: &[u8; PACKET_SIZE], out: &mut BytesMut) {
        out.reserve(1 + 2 * PACKET_SIZE);
        out.put_u8(RTMP_VERSION);
        let digest = if c1[4..8] != [0, 0, 0, 0] {
            find_digest(c1, &FP_KEY[..30])
        } else {
            None
        };
        match digest {
            Some((schema, c1_digest)) => {
                self.kind = HandshakeKind::Digest(schema);
                let (s1, _) = digest_packet(SERVER_VERSION, schema, &FMS_KEY[..36]);
                out.put_slice(&s1);
                out.put_slice(&digest_response(&c1_digest, &FMS_KEY));
            }
            None => {
                self.kind = HandshakeKind::Plain;
                out.put_slice(&plain_packet());
                out.put_slice(c1);
            }
        }
    }

    /// True once C2 has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, ServerState::Done)
    }

    /// Which handshake the client used (meaningful once S1 was sent).
    pub fn kind(&self) -> HandshakeKind {
        self.kind
    }
}

enum ClientState {
    Start,
    S0S1S2(Collect),
    Done,
}

/// The client side: sends a digest C0C1 (schema 0, like ffmpeg), accepts a plain or digest
/// S1, and answers with the matching C2.
pub struct ClientHandshake {
    state: ClientState,
    c1: Box<[u8; PACKET_SIZE]>,
    c1_digest: [u8; DIGEST_LEN],
    kind: HandshakeKind,
    s2_valid: bool,
}

impl Default for ClientHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientHandshake {
    /// A client handshake; call [`ClientHandshake::start`] to get C0C1.
    pub fn new() -> Self {
        let (c1, c1_digest) = digest_packet(CLIENT_VERSION, Schema::Schema0, &FP_KEY[..30]);
        ClientHandshake {
            state: ClientState::Start,
            c1: Box::new(c1),
            c1_digest,
            kind: HandshakeKind::Plain,
            s2_valid: false,
        }
    }

    /// Appends C0C1 to `out`.
    pub fn start(&mut self, out: &mut BytesMut) {
        out.put_u8(RTMP_VERSION);
        out.put_slice(&self.c1[..]);
        self.state = ClientState::S0S1S2(Collect::new(1 + 2 * PACKET_SIZE));
    }

    /// Consumes S0S1S2 bytes; appends C2 when complete. Returns bytes consumed.
    pub fn handle(&mut self, data: &[u8], out: &mut BytesMut) -> Result<usize, RtmpError> {
        let ClientState::S0S1S2(c) = &mut self.state else {
            return match self.state {
                ClientState::Start => Err(RtmpError::Handshake("input before C0C1 was sent")),
                _ => Ok(0),
            };
        };
        let used = c.feed(data);
        if let Some(&v) = c.buf.first() {
            if v != RTMP_VERSION {
                return Err(RtmpError::UnsupportedVersion(v));
            }
        }
        if !c.done() {
            return Ok(used);
        }
        let mut s1 = [0u8; PACKET_SIZE];
        s1.copy_from_slice(&c.buf[1..1 + PACKET_SIZE]);
        let mut s2 = [0u8; PACKET_SIZE];
        s2.copy_from_slice(&c.buf[1 + PACKET_SIZE..]);
        let s1_digest = if s1[4..8] != [0, 0, 0, 0] {
            find_digest(&s1, &FMS_KEY[..36])
        } else {
            None
        };
        match s1_digest {
            Some((schema, d)) => {
                self.kind = HandshakeKind::Digest(schema);
                self.s2_valid = response_valid(&s2, &self.c1_digest, &FMS_KEY);
                out.put_slice(&digest_response(&d, &FP_KEY));
            }
            None => {
                self.kind = HandshakeKind::Plain;
                self.s2_valid = s2[8..] == self.c1[8..];
                out.put_slice(&s1);
            }
        }
        self.state = ClientState::Done;
        Ok(used)
    }

    /// True once C2 has been written.
    pub fn is_done(&self) -> bool {
        matches!(self.state, ClientState::Done)
    }

    /// Which handshake the server answered with.
    pub fn kind(&self) -> HandshakeKind {
        self.kind
    }

    /// Whether S2 matched our C1 (echo or digest). Informational: we do not fail on it, since
    /// some servers send a sloppy S2.
    pub fn s2_valid(&self) -> bool {
        self.s2_valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(client_c0c1: &[u8]) -> (ServerHandshake, BytesMut) {
        let mut s = ServerHandshake::new();
        let mut out = BytesMut::new();
        // Feed in odd pieces.
        for piece in client_c0c1.chunks(7) {
            assert_eq!(s.handle(piece, &mut out).unwrap(), piece.len());
        }
        (s, out)
    }

    #[test]
    fn digest_both_ways() {
        let mut c = ClientHandshake::new();
        let mut c0c1 = BytesMut::new();
        c.start(&mut c0c1);
        let (mut s, s012) = run(&c0c1);
        assert_eq!(s.kind(), HandshakeKind::Digest(Schema::Schema0));
        assert_eq!(s012.len(), 1 + 2 * PACKET_SIZE);
        let mut c2 = BytesMut::new();
        assert_eq!(c.handle(&s012, &mut c2).unwrap(), s012.len());
        assert!(c.is_done());
        assert_eq!(c.kind(), HandshakeKind::Digest(Schema::Schema0));
        assert!(c.s2_valid());
        // C2 plus trailing chunk bytes: the server consumes only C2.
        let mut input = c2.to_vec();
        input.extend_from_slice(&[1, 2, 3]);
        let mut out = BytesMut::new();
        assert_eq!(s.handle(&input, &mut out).unwrap(), PACKET_SIZE);
        assert!(s.is_done());
        // The C2 is a valid digest response to our S1 (checked like a Flash server would).
        let s1: [u8; PACKET_SIZE] = s012[1..1 + PACKET_SIZE].try_into().unwrap();
        let (_, s1_digest) = find_digest(&s1, &FMS_KEY[..36]).unwrap();
        let c2: [u8; PACKET_SIZE] = c2[..].try_into().unwrap();
        assert!(response_valid(&c2, &s1_digest, &FP_KEY));
    }

    #[test]
    fn schema1_client_gets_schema1_server() {
        let (c1, d) = digest_packet(CLIENT_VERSION, Schema::Schema1, &FP_KEY[..30]);
        let mut c0c1 = vec![3];
        c0c1.extend_from_slice(&c1);
        let (s, out) = run(&c0c1);
        assert_eq!(s.kind(), HandshakeKind::Digest(Schema::Schema1));
        let s1: [u8; PACKET_SIZE] = out[1..1 + PACKET_SIZE].try_into().unwrap();
        let (schema, _) = find_digest(&s1, &FMS_KEY[..36]).unwrap();
        assert_eq!(schema, Schema::Schema1);
        let s2: [u8; PACKET_SIZE] = out[1 + PACKET_SIZE..].try_into().unwrap();
        assert!(response_valid(&s2, &d, &FMS_KEY));
    }

    #[test]
    fn plain_client_gets_echo_and_plain_server_is_accepted() {
        let c1 = plain_packet();
        let mut c0c1 = vec![3];
        c0c1.extend_from_slice(&c1);
        let (s, out) = run(&c0c1);
        assert_eq!(s.kind(), HandshakeKind::Plain);
        assert_eq!(&out[1 + PACKET_SIZE..], &c1[..]);

        // Our client against a plain server: S2 echoes C1, C2 echoes S1.
        let mut c = ClientHandshake::new();
        let mut c0c1 = BytesMut::new();
        c.start(&mut c0c1);
        let s1 = plain_packet();
        let mut s012 = vec![3];
        s012.extend_from_slice(&s1);
        s012.extend_from_slice(&c0c1[1..]);
        let mut c2 = BytesMut::new();
        c.handle(&s012, &mut c2).unwrap();
        assert_eq!(c.kind(), HandshakeKind::Plain);
        assert!(c.s2_valid());
        assert_eq!(&c2[..], &s1[..]);
    }

    #[test]
    fn invalid_digest_falls_back_to_plain() {
        let mut c1 = plain_packet();
        c1[4..8].copy_from_slice(&CLIENT_VERSION);
        let mut c0c1 = vec![3];
        c0c1.extend_from_slice(&c1);
        let (s, _) = run(&c0c1);
        assert_eq!(s.kind(), HandshakeKind::Plain);
    }

    #[test]
    fn wrong_version_fails_on_first_byte() {
        let mut s = ServerHandshake::new();
        let e = s.handle(b"G", &mut BytesMut::new()).unwrap_err();
        assert_eq!(e, RtmpError::UnsupportedVersion(b'G'));
    }
}
