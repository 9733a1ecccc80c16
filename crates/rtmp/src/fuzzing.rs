//! Entry points for cargo-fuzz targets (`fuzz/fuzz_targets/rtmp_*.rs`) and the stable corpus
//! replay test. They must not panic on any input.

use crate::chunk::ChunkDecoder;
use crate::{Limits, ServerConfig, ServerSession};

/// Runs the chunk decoder over arbitrary bytes. The first byte picks how the input is split
/// into pieces (so the fuzzer explores resumption at every offset); SetChunkSize messages are
/// applied as a session would.
pub fn chunk(data: &[u8]) {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(split).max(1);
    let mut dec = ChunkDecoder::new(Limits {
        max_total_pending_bytes: 1 << 20,
        ..Limits::default()
    });
    for mut p in rest.chunks(piece) {
        loop {
            match dec.decode(&mut p) {
                Ok(Some(m)) => {
                    if m.msg_type == 1 && m.payload.len() >= 4 {
                        let v = u32::from_be_bytes([
                            m.payload[0],
                            m.payload[1],
                            m.payload[2],
                            m.payload[3],
                        ]);
                        if dec.set_chunk_size(v).is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// A valid plain C0C1 followed by C2: prepended by [`server_session`] so that inputs reach the
/// chunk and command layers.
pub fn handshake_prefix() -> Vec<u8> {
    let mut v = vec![3u8];
    v.extend(std::iter::repeat_n(0u8, 2 * crate::handshake::PACKET_SIZE));
    v
}

/// Drives a server session: if the first byte is 0 the input is used raw (fuzzing the
/// handshake), otherwise a valid handshake is prepended. Accepts every publish and play, and
/// drains output and events as a server would.
pub fn server_session(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut s = ServerSession::new(ServerConfig::default());
    let input = if mode == 0 {
        rest.to_vec()
    } else {
        let mut v = handshake_prefix();
        v.extend_from_slice(rest);
        v
    };
    let piece = usize::from(mode).max(1) * 16;
    for p in input.chunks(piece) {
        if s.handle_input(p).is_err() {
            return;
        }
        while let Some(ev) = s.poll_event() {
            match ev {
                crate::ServerEvent::Publish { stream_id, .. } => s.accept_publish(stream_id),
                crate::ServerEvent::Play { stream_id, .. } => s.accept_play(stream_id),
                _ => {}
            }
        }
        let _ = s.take_output();
    }
}

/// Drives a playing client session (an edge pulling from an origin, src/relay/pull.rs) over
/// bytes from the "server": first byte 0 = raw (fuzzing the handshake), else a valid S0S1S2 is
/// prepended so inputs reach the chunk and command layers. Drains events and output.
pub fn client_session(data: &[u8]) {
    use crate::{ClientConfig, ClientMode, ClientSession};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut c = ClientSession::new(ClientConfig {
        mode: ClientMode::Play,
        ..ClientConfig::default()
    });
    c.start();
    let input = if mode == 0 {
        rest.to_vec()
    } else {
        let mut v = handshake_prefix();
        v.extend_from_slice(rest);
        v
    };
    let piece = usize::from(mode).max(1) * 16;
    for p in input.chunks(piece) {
        if c.handle_input(p).is_err() {
            return;
        }
        while c.poll_event().is_some() {}
        let _ = c.take_output();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_session_survives_simple_inputs() {
        super::client_session(&[]);
        super::client_session(&[0, 3, 1, 2, 3]);
        super::client_session(&[1; 5000]);
        let mut v = vec![7u8];
        v.extend((0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        super::client_session(&v);
    }
}
