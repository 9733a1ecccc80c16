//! The box writer: big-endian fields into one `BytesMut`, each box's 32-bit size written as a
//! placeholder and patched when the box closes. Used for the init segment and for the `moof` and
//! `mdat` header of a fragment, never for sample data.

use bytes::{BufMut, BytesMut};

use crate::Fmp4Error;

/// Writes ISO BMFF boxes into a growing buffer.
///
/// Nesting is expressed with closures ([`BoxWriter::boxed`], [`BoxWriter::full_box`]) so a box
/// cannot be left open. A box that outgrows its 32-bit size field is remembered and reported by
/// [`BoxWriter::finish`] rather than written wrong. Costs: the buffer's growth (reserve the
/// expected size with [`BoxWriter::with_capacity`]); no other allocation.
#[derive(Debug, Default)]
pub struct BoxWriter {
    buf: BytesMut,
    overflow: Option<u64>,
}

impl BoxWriter {
    /// A writer whose buffer starts with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        BoxWriter {
            buf: BytesMut::with_capacity(capacity),
            overflow: None,
        }
    }

    /// Writes a box of type `typ` whose body is what `body` writes.
    pub fn boxed(&mut self, typ: &[u8; 4], body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.buf.put_u32(0);
        self.buf.put_slice(typ);
        body(self);
        let size = (self.buf.len() - start) as u64;
        match u32::try_from(size) {
            Ok(s) => self.patch_u32(start, s),
            Err(_) => self.overflow = Some(size),
        }
    }

    /// Writes a full box: `version` (8 bits) and `flags` (low 24 bits) before the body.
    pub fn full_box(
        &mut self,
        typ: &[u8; 4],
        version: u8,
        flags: u32,
        body: impl FnOnce(&mut Self),
    ) {
        self.boxed(typ, |w| {
            w.u32(u32::from(version) << 24 | (flags & 0x00ff_ffff));
            body(w);
        });
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.put_u16(v);
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.put_u32(v);
    }

    /// Appends a big-endian `i32`.
    pub fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) {
        self.buf.put_u64(v);
    }

    /// Appends `v` (one copy; meant for headers and configuration records, not samples).
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.put_slice(v);
    }

    /// Appends `n` zero bytes (reserved fields).
    pub fn zeros(&mut self, n: usize) {
        self.buf.put_bytes(0, n);
    }

    /// The number of bytes written so far: the offset the next field lands at.
    pub fn position(&self) -> usize {
        self.buf.len()
    }

    /// Overwrites the 4 bytes at `pos` (a field written earlier as a placeholder). Out-of-range
    /// positions are ignored: callers pass positions this writer returned.
    pub fn patch_u32(&mut self, pos: usize, v: u32) {
        if let Some(dst) = self.buf.get_mut(pos..pos + 4) {
            dst.copy_from_slice(&v.to_be_bytes());
        }
    }

    /// The written bytes, or [`Fmp4Error::TooLarge`] if a box outgrew its 32-bit size.
    pub fn finish(self) -> Result<BytesMut, Fmp4Error> {
        match self.overflow {
            Some(size) => Err(Fmp4Error::TooLarge {
                what: "box size",
                value: size,
                max: u64::from(u32::MAX),
            }),
            None => Ok(self.buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_patched() {
        let mut w = BoxWriter::default();
        w.boxed(b"moov", |w| {
            w.full_box(b"mvhd", 1, 0x020001, |w| w.u32(7));
            w.boxed(b"free", |_| {});
        });
        let b = w.finish().unwrap();
        assert_eq!(
            &b[..],
            &[
                0, 0, 0, 32, b'm', b'o', b'o', b'v', //
                0, 0, 0, 16, b'm', b'v', b'h', b'd', 1, 2, 0, 1, 0, 0, 0, 7, //
                0, 0, 0, 8, b'f', b'r', b'e', b'e',
            ][..]
        );
    }
}
