//! The seeded test stream every runner uploads.
//!
//! The stream is cut into blocks of [`BLOCK`] bytes; block `b` is filled by four interleaved
//! xorshift64 generators seeded from `(seed, b)`. So any byte range can be produced on its own
//! (the limit runner prepares its parts that way; the pipe feeder and the reader stream it), the
//! data is the same whoever produces it, and it is neither zeros nor a short repeating pattern
//! that a compressor or a deduplicating store could shortcut. Four independent lanes keep the
//! CPU's pipelines full: the generator runs at several GiB/s on one core, and its cost is
//! measured on its own (`generator` in the results) so it can be told apart from the uploaders'.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// Bytes per generated block (a multiple of 32, the four lanes' stride).
pub const BLOCK: usize = 64 * 1024;

/// The default seed of every run.
pub const DEFAULT_SEED: u64 = 0x0551_9E0D_A7A5_EED5;

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn block_lanes(seed: u64, index: u64) -> [u64; 4] {
    let base = splitmix64(seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93));
    // xorshift64 must not start at 0; `| 1` keeps every lane away from it.
    [
        splitmix64(base) | 1,
        splitmix64(base ^ 1) | 1,
        splitmix64(base ^ 2) | 1,
        splitmix64(base ^ 3) | 1,
    ]
}

/// Produces the stream `seed` from any offset on, straight into the caller's buffer.
///
/// The bytes are written 32 at a time as they are generated, never copied from a cache with
/// `memcpy`: on this benchmark's AMD EPYC machine glibc 2.36's `memcpy` takes its `rep movsb`
/// path for 8 KiB copies and runs 3-5x slower for some relative alignments of source and
/// destination (see the README's benchmark notes), which made a cached-block generator cost
/// 0.5 CPU s/GiB instead of 0.1.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    /// The block the lanes are in, and the next byte of it they produce (a multiple of 32).
    index: u64,
    pos: usize,
    lanes: [u64; 4],
    /// The rest of a 32-byte chunk of which only a part was wanted.
    stage: [u8; 32],
    stage_used: usize,
    /// The stream offset of the next byte `fill` gives.
    offset: u64,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        let mut generator = Self {
            seed,
            index: 0,
            pos: 0,
            lanes: block_lanes(seed, 0),
            stage: [0; 32],
            stage_used: 32,
            offset: 0,
        };
        generator.seek(0);
        generator
    }

    fn seek(&mut self, offset: u64) {
        self.index = offset / BLOCK as u64;
        self.lanes = block_lanes(self.seed, self.index);
        self.pos = 0;
        self.stage_used = 32;
        let within = (offset % BLOCK as u64) as usize;
        for _ in 0..within / 32 {
            self.next_chunk();
        }
        if !within.is_multiple_of(32) {
            self.stage = self.next_chunk();
            self.stage_used = within % 32;
        }
        self.offset = offset;
    }

    #[inline(always)]
    fn next_chunk(&mut self) -> [u8; 32] {
        if self.pos == BLOCK {
            self.index += 1;
            self.lanes = block_lanes(self.seed, self.index);
            self.pos = 0;
        }
        self.pos += 32;
        let mut chunk = [0u8; 32];
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            let mut x = *lane;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *lane = x;
            chunk[i * 8..i * 8 + 8].copy_from_slice(&x.to_le_bytes());
        }
        chunk
    }

    /// Writes the next `out.len()` bytes of the stream into `out`.
    pub fn fill(&mut self, out: &mut [u8]) {
        let mut out = out;
        self.offset += out.len() as u64;
        if self.stage_used < 32 {
            let n = (32 - self.stage_used).min(out.len());
            out[..n].copy_from_slice(&self.stage[self.stage_used..self.stage_used + n]);
            self.stage_used += n;
            out = &mut out[n..];
        }
        let mut chunks = out.chunks_exact_mut(32);
        for chunk in &mut chunks {
            let bytes = self.next_chunk();
            chunk.copy_from_slice(&bytes);
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            self.stage = self.next_chunk();
            let n = tail.len();
            tail.copy_from_slice(&self.stage[..n]);
            self.stage_used = n;
        }
    }

    /// Writes the stream's bytes `offset..offset + out.len()` into `out`.
    pub fn read_at(&mut self, offset: u64, out: &mut [u8]) {
        if offset != self.offset {
            self.seek(offset);
        }
        self.fill(out);
    }
}

/// The first `len` bytes of stream `seed` as an [`AsyncRead`] that is always ready (so
/// `tokio::io::copy` never calls `poll_flush` on the writer because of it).
#[derive(Debug)]
pub struct GenReader {
    generator: Generator,
    offset: u64,
    len: u64,
}

impl GenReader {
    pub fn new(seed: u64, len: u64) -> Self {
        Self {
            generator: Generator::new(seed),
            offset: 0,
            len,
        }
    }
}

impl AsyncRead for GenReader {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let left = this.len - this.offset;
        let n = (buf.remaining() as u64).min(left) as usize;
        if n > 0 {
            let out = buf.initialize_unfilled_to(n);
            this.generator.fill(out);
            buf.advance(n);
            this.offset += n as u64;
        }
        Poll::Ready(Ok(()))
    }
}

/// Writes the first `len` bytes of stream `seed` to standard output.
pub fn write_stream(seed: u64, len: u64) -> anyhow::Result<()> {
    use std::io::Write;
    let mut generator = Generator::new(seed);
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        generator.fill(&mut buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// The CRC-64 of the first `len` bytes of stream `seed`.
pub fn stream_crc64(seed: u64, len: u64) -> u64 {
    let mut generator = Generator::new(seed);
    let mut crc = osspipe::crc64::Crc64::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0;
    while offset < len {
        let n = (buf.len() as u64).min(len - offset) as usize;
        generator.read_at(offset, &mut buf[..n]);
        crc.update(&buf[..n]);
        offset += n as u64;
    }
    crc.value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// The definition, written plainly: block `b` is the four lanes of `(seed, b)` interleaved.
    fn reference(seed: u64, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut index = 0;
        while out.len() < len {
            let mut lanes = block_lanes(seed, index);
            for _ in 0..BLOCK / 32 {
                for lane in lanes.iter_mut() {
                    *lane ^= *lane << 13;
                    *lane ^= *lane >> 7;
                    *lane ^= *lane << 17;
                    out.extend_from_slice(&lane.to_le_bytes());
                }
            }
            index += 1;
        }
        out.truncate(len);
        out
    }

    #[test]
    fn random_access_matches_the_definition() {
        let len = 3 * BLOCK + 1234;
        let whole = reference(7, len);
        let mut generator = Generator::new(7);
        for (start, n) in [
            (0usize, 5usize),
            (3, 70),
            (BLOCK - 7, 40),
            (2 * BLOCK + 31, BLOCK),
            (1, 1),
        ] {
            let mut out = vec![0u8; n];
            generator.read_at(start as u64, &mut out);
            assert_eq!(out[..], whole[start..start + n], "range {start}+{n}");
        }
    }

    #[test]
    fn any_split_gives_the_same_bytes() {
        let len = 3 * BLOCK + 1234;
        let mut whole = vec![0u8; len];
        Generator::new(7).read_at(0, &mut whole);
        let mut pieces = vec![0u8; len];
        let mut generator = Generator::new(7);
        let mut offset = 0;
        for size in [1usize, 8191, BLOCK, 3, BLOCK + 17, usize::MAX]
            .iter()
            .cycle()
        {
            if offset == len {
                break;
            }
            let n = (*size).min(len - offset);
            generator.read_at(offset as u64, &mut pieces[offset..offset + n]);
            offset += n;
        }
        assert_eq!(whole, pieces);
        // Not zeros, not a repeated block.
        assert!(whole.iter().filter(|&&b| b == 0).count() < len / 100);
        assert_ne!(whole[..BLOCK], whole[BLOCK..2 * BLOCK]);
        let mut other = vec![0u8; BLOCK];
        Generator::new(8).read_at(0, &mut other);
        assert_ne!(whole[..BLOCK], other[..]);
    }

    #[tokio::test]
    async fn reader_matches_generator_and_crc() {
        let len = 2 * BLOCK as u64 + 99;
        let mut read = Vec::new();
        GenReader::new(3, len).read_to_end(&mut read).await.unwrap();
        let mut expected = vec![0u8; len as usize];
        Generator::new(3).read_at(0, &mut expected);
        assert_eq!(read, expected);
        assert_eq!(stream_crc64(3, len), osspipe::crc64::checksum(&expected));
    }
}
