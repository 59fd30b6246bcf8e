//! A small pool of part buffers, so that steady state allocates nothing per part.
//!
//! Copying into memory this process has already touched is several times faster than filling
//! fresh pages (each first touch is a page fault), so an acknowledged part's buffer is reclaimed
//! (`Bytes::try_into_mut` succeeds once the target has dropped its handles) and reused for a
//! later part of the same size.

use bytes::BytesMut;

/// Idle part buffers, each counted against the writer's memory budget.
#[derive(Debug, Default)]
pub(super) struct BufferPool {
    buffers: Vec<BytesMut>,
    bytes: u64,
    max_buffers: usize,
}

impl BufferPool {
    pub(super) fn new(max_buffers: usize) -> Self {
        Self {
            buffers: Vec::new(),
            bytes: 0,
            max_buffers,
        }
    }

    /// The capacity of all idle buffers.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// An idle buffer of at least `capacity` bytes, emptied.
    pub(super) fn take(&mut self, capacity: u64) -> Option<BytesMut> {
        let index = self
            .buffers
            .iter()
            .position(|buffer| buffer.capacity() as u64 >= capacity)?;
        let buffer = self.buffers.swap_remove(index);
        self.bytes -= buffer.capacity() as u64;
        Some(buffer)
    }

    /// Keeps `buffer` for reuse if it can hold a part of `useful_capacity` bytes and the pool is
    /// not full; otherwise frees it. Parts only grow, so a smaller buffer is never useful again.
    pub(super) fn put(&mut self, mut buffer: BytesMut, useful_capacity: u64) {
        if (buffer.capacity() as u64) < useful_capacity.max(1)
            || self.buffers.len() >= self.max_buffers
        {
            return;
        }
        buffer.clear();
        self.bytes += buffer.capacity() as u64;
        self.buffers.push(buffer);
    }

    /// Frees idle buffers until they hold at most `limit` bytes.
    pub(super) fn shrink_to(&mut self, limit: u64) {
        while self.bytes > limit {
            match self.buffers.pop() {
                Some(buffer) => self.bytes -= buffer.capacity() as u64,
                None => break,
            }
        }
    }

    /// Frees every idle buffer.
    pub(super) fn clear(&mut self) {
        self.buffers.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_useful_buffers_within_its_limits() {
        let mut pool = BufferPool::new(2);
        pool.put(BytesMut::with_capacity(10), 20);
        assert_eq!(pool.bytes(), 0, "too small to be useful");
        let mut filled = BytesMut::with_capacity(32);
        filled.extend_from_slice(b"abc");
        pool.put(filled, 20);
        pool.put(BytesMut::with_capacity(64), 20);
        pool.put(BytesMut::with_capacity(64), 20);
        assert_eq!(pool.bytes(), 96, "third buffer dropped: the pool is full");
        let buffer = pool.take(40).unwrap();
        assert!(buffer.capacity() >= 64 && buffer.is_empty());
        assert_eq!(pool.bytes(), 32);
        assert!(pool.take(40).is_none());
        pool.shrink_to(0);
        assert_eq!(pool.bytes(), 0);
    }
}
