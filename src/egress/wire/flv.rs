//! FLV framing of a viewer's batch, for HTTP-FLV (chunked) and WebSocket-FLV (binary messages).

use sluice_flv::tag::{file_header, previous_tag_size, write_tag_header, TAG_HEADER_LEN};

use crate::egress::batch::Batch;

/// How the FLV bytes are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// HTTP/1.1 chunked body: one chunk per batch.
    Chunked,
    /// HTTP/1.0 or raw: the bytes as they are, end of stream by closing.
    Raw,
    /// WebSocket: one binary message per batch.
    WebSocket,
}

/// Frames the batch's frames as FLV tags, with the FLV file header first when `flv_header` is
/// given (audio, video flags), and wraps the whole in the carrier's framing.
pub fn encode(batch: &mut Batch, carrier: Carrier, flv_header: Option<(bool, bool)>) {
    batch.clear_framing();
    let mut payload_len = 0usize;
    if flv_header.is_some() {
        payload_len += 13;
    }
    for d in &batch.frames {
        payload_len += TAG_HEADER_LEN + d.frame.body.len() + 4;
    }
    match carrier {
        Carrier::Chunked => {
            let mut line = [0u8; 18];
            let n = hex_line(payload_len, &mut line);
            batch.header(&line[..n]);
        }
        Carrier::WebSocket => {
            let mut h = [0u8; 10];
            let n = ws_binary_header(payload_len, &mut h);
            batch.header(&h[..n]);
        }
        Carrier::Raw => {}
    }
    if let Some((audio, video)) = flv_header {
        batch.header(&file_header(audio, video));
    }
    for i in 0..batch.frames.len() {
        let (tag_type, size, ts) = {
            let d = &batch.frames[i];
            (d.frame.flv_tag_type(), d.frame.body.len() as u32, d.ts)
        };
        let mut h = [0u8; TAG_HEADER_LEN];
        write_tag_header(&mut h, tag_type, size, ts);
        batch.header(&h);
        batch.body(i, 0, size as usize);
        batch.header(&previous_tag_size(size));
    }
    if carrier == Carrier::Chunked {
        batch.header(b"\r\n");
    }
}

/// `{len:x}\r\n` without formatting machinery.
fn hex_line(mut n: usize, out: &mut [u8; 18]) -> usize {
    let mut digits = [0u8; 16];
    let mut k = 0;
    loop {
        digits[k] = b"0123456789abcdef"[n & 15];
        k += 1;
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    for i in 0..k {
        out[i] = digits[k - 1 - i];
    }
    out[k] = b'\r';
    out[k + 1] = b'\n';
    k + 2
}

/// A server-to-client (unmasked) WebSocket binary frame header, FIN set.
pub fn ws_binary_header(len: usize, out: &mut [u8; 10]) -> usize {
    out[0] = 0x82;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if len <= 0xffff {
        out[1] = 126;
        out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex() {
        let mut b = [0u8; 18];
        let n = hex_line(0x1a2f, &mut b);
        assert_eq!(&b[..n], b"1a2f\r\n");
        let n = hex_line(0, &mut b);
        assert_eq!(&b[..n], b"0\r\n");
    }

    #[test]
    fn ws_headers() {
        let mut b = [0u8; 10];
        let n = ws_binary_header(5, &mut b);
        assert_eq!(&b[..n], &[0x82, 5]);
        let n = ws_binary_header(300, &mut b);
        assert_eq!(&b[..n], &[0x82, 126, 1, 44]);
        assert_eq!(ws_binary_header(70_000, &mut b), 10);
    }
}
