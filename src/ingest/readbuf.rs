//! The ingest read buffer: starts small, doubles after reads that fill it, halves after a run of
//! small reads, never beyond its cap. A publisher that idles holds `min` bytes; a 20 Mbit/s one
//! gets large reads (fewer syscalls) without every connection paying for them.

use crate::session::memory::{Held, Owner};

/// Reads that fill less than a quarter of the buffer, in a row, before it halves.
const SHRINK_AFTER: u32 = 32;

/// An adaptive read buffer.
pub struct ReadBuf {
    buf: Vec<u8>,
    /// The buffer's share of `sluice_memory_bytes{owner="ingest_read_buffers"}`.
    held: Held,
    min: usize,
    max: usize,
    small_reads: u32,
}

impl ReadBuf {
    /// A buffer of `min` bytes that may grow to `max`.
    pub fn new(min: usize, max: usize) -> Self {
        let mut held = Held::new(Owner::IngestReadBuffers);
        held.set(min);
        ReadBuf {
            buf: vec![0; min],
            held,
            min,
            max: max.max(min),
            small_reads: 0,
        }
    }

    /// The space to read into.
    pub fn space(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = vec![0; self.min.max(1)];
            self.held.set(self.buf.capacity());
        }
        &mut self.buf
    }

    /// The first `n` bytes after a read of `n`; adapts the size for the next read.
    pub fn filled(&mut self, n: usize) -> &[u8] {
        let cap = self.buf.len();
        if n == cap && cap < self.max {
            self.small_reads = 0;
            let grown = (cap * 2).min(self.max);
            // Keep the bytes just read: they are returned below.
            self.buf.resize(grown, 0);
            self.held.set(self.buf.capacity());
        } else if n < cap / 4 && cap > self.min {
            self.small_reads += 1;
            if self.small_reads >= SHRINK_AFTER {
                self.small_reads = 0;
                let shrunk = (cap / 2).max(self.min);
                self.buf.truncate(shrunk.max(n));
                self.buf.shrink_to_fit();
                self.held.set(self.buf.capacity());
            }
        } else {
            self.small_reads = 0;
        }
        &self.buf[..n]
    }

    /// Frees the buffer (a connection that will only read a few control bytes from now on);
    /// the next read starts again at the minimum size.
    pub fn release(&mut self) {
        self.buf = Vec::new();
        self.held.set(0);
        self.small_reads = 0;
    }

    /// Current size.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_on_full_reads_and_shrinks_after_small_ones() {
        let mut b = ReadBuf::new(4096, 65536);
        for _ in 0..10 {
            let n = b.space().len();
            b.filled(n);
        }
        assert_eq!(b.capacity(), 65536, "capped");
        for _ in 0..SHRINK_AFTER * 8 {
            b.filled(10);
        }
        assert_eq!(b.capacity(), 4096, "back to the minimum");
        b.filled(100);
        assert_eq!(b.capacity(), 4096);
        b.release();
        assert_eq!(b.capacity(), 0);
        assert_eq!(
            b.space().len(),
            4096,
            "a read after release starts at the minimum again"
        );
    }
}
