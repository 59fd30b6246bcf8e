//! Immutable byte blobs: the pieces objects and parts are made of.
//!
//! A blob is written once by a [`BlobWriter`] as the request body streams in, then shared
//! (`Arc<Blob>`) by whoever owns it: an upload's part, then, after Complete, the object it became
//! a piece of. Complete never copies bytes; it hands the part blobs to the object.
//!
//! - Memory blobs are lists of page-aligned 1 MiB blocks that the body chunks are copied into
//!   (with streaming stores, which skip the cache). Blocks come from a [`BlockPool`] and return
//!   to it when the last reference (object, part, or a GET still streaming) goes, so a server
//!   that stores and deletes objects over and over keeps touching the same pages: fresh pages
//!   cost a page fault and a zeroing each. Keeping hyper's chunks instead (no copy) was slower:
//!   every chunk held on to hyper's read buffer, so hyper received each read into a fresh
//!   allocation (memory that is not cached, and after a delete whatever glibc hands back)
//!   instead of reusing one cached buffer; on the bench machine the server used 0.39-0.46 CPU
//!   s/GiB that way and 0.25-0.36 copying.
//! - File blobs are files under `<bucket>/blobs/`; writes are batched (~1 MiB) and handed to the
//!   blocking pool one batch at a time, pipelined with receiving the next batch.
//!
//! A blob that its owner gives up (object overwritten or deleted, part replaced, upload
//! aborted) is marked *discarded*; its file is deleted when the last `Arc` goes, so a GET that is
//! still streaming an overwritten object finishes reading it.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::task::JoinHandle;

/// File writes are batched to about this size before going to the blocking pool.
const WRITE_BATCH_BYTES: usize = 1024 * 1024;
/// The block size of memory blobs.
const BLOCK_BYTES: usize = 1024 * 1024;
/// A last block filled less than this is copied out to an exact-size buffer (and the block goes
/// back to the pool), so a small object does not pin a whole block.
const PARTIAL_BLOCK_COPY_BYTES: usize = BLOCK_BYTES / 2;
/// Free blocks the pool keeps at most (4 GiB, and never more than were once in use at the
/// same time); more go back to the allocator. Benchmarks store and delete multi-GiB objects
/// over and over: a smaller pool leaves the rest of each object to fresh pages.
const POOL_MAX_BLOCKS: usize = 4096;
/// Blocks start on a page boundary: copying into a destination 16 bytes past one (what malloc
/// gives) runs at a quarter of the speed from some source alignments on the bench machine.
const BLOCK_ALIGN: usize = 4096;

/// Copies into blocks at least this long bypass the CPU cache (see [`copy_streaming`]).
const STREAMING_COPY_MIN_BYTES: usize = 16 * 1024;

/// Copies `src` into `dst` with non-temporal stores where the CPU has them (SSE2, so every
/// x86-64): a stored body is not read again soon, and a normal copy would first read every
/// destination line into the cache only to overwrite it, evicting the body chunk that is
/// still being hashed. On the bench machine this halves the copy's cost (0.06 instead of
/// 0.13 CPU s/GiB into memory that is not cached).
fn copy_streaming(dst: &mut [std::mem::MaybeUninit<u8>], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy_streaming needs equal lengths");
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
        let len = src.len();
        let dst = dst.as_mut_ptr().cast::<u8>();
        let src = src.as_ptr();
        // Streaming stores need 16-byte aligned destinations: plain copies before and after.
        let head = dst.align_offset(16).min(len);
        let end = head + (len - head) / 64 * 64;
        // SAFETY: `dst` and `src` are valid for `len` bytes (equal lengths, checked above) and
        // do not overlap (one is borrowed mutably); every access below is within `0..len`,
        // the streaming stores go to 16-byte aligned addresses, and SSE2 is part of x86-64.
        unsafe {
            std::ptr::copy_nonoverlapping(src, dst, head);
            let mut at = head;
            while at < end {
                for lane in 0..4 {
                    let offset = at + 16 * lane;
                    let value = _mm_loadu_si128(src.add(offset).cast::<__m128i>());
                    _mm_stream_si128(dst.add(offset).cast::<__m128i>(), value);
                }
                at += 64;
            }
            // Streaming stores are weakly ordered: make them visible before the block is
            // handed to another thread.
            _mm_sfence();
            std::ptr::copy_nonoverlapping(src.add(end), dst.add(end), len - end);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (to, from) in dst.iter_mut().zip(src) {
        to.write(*from);
    }
}

/// A block of memory blobs: up to [`BLOCK_BYTES`] bytes from a page boundary.
#[derive(Debug)]
struct Block {
    /// Padding up to the page boundary, then the bytes.
    buf: Vec<u8>,
    start: usize,
}

impl Block {
    fn new() -> Self {
        let mut buf: Vec<u8> = Vec::with_capacity(BLOCK_BYTES + BLOCK_ALIGN);
        let start = buf.as_ptr().align_offset(BLOCK_ALIGN);
        buf.resize(start, 0);
        Self { buf, start }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    fn room(&self) -> usize {
        BLOCK_BYTES - self.len()
    }

    fn extend(&mut self, data: &[u8]) {
        assert!(data.len() <= self.room(), "a block never grows");
        if data.len() < STREAMING_COPY_MIN_BYTES {
            self.buf.extend_from_slice(data);
            return;
        }
        let spare = &mut self.buf.spare_capacity_mut()[..data.len()];
        copy_streaming(spare, data);
        // SAFETY: `copy_streaming` initialised the first `data.len()` bytes of the spare
        // capacity.
        unsafe { self.buf.set_len(self.buf.len() + data.len()) };
    }

    fn clear(&mut self) {
        self.buf.truncate(self.start);
    }
}

/// Free 1 MiB blocks for memory blobs.
#[derive(Debug, Default)]
pub(crate) struct BlockPool {
    free: std::sync::Mutex<Vec<Block>>,
}

impl BlockPool {
    fn take(&self) -> Block {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(Block::new)
    }

    fn give(&self, mut block: Block) {
        block.clear();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < POOL_MAX_BLOCKS {
            free.push(block);
        }
    }

    #[cfg(test)]
    fn free_blocks(&self) -> usize {
        self.free.lock().unwrap().len()
    }
}

/// A full block shared as `Bytes`; it returns to its pool when the last reference goes.
struct PooledBlock {
    /// `None` only while being dropped.
    block: Option<Block>,
    pool: std::sync::Weak<BlockPool>,
}

impl AsRef<[u8]> for PooledBlock {
    fn as_ref(&self) -> &[u8] {
        self.block.as_ref().map_or(&[], Block::bytes)
    }
}

impl Drop for PooledBlock {
    fn drop(&mut self) {
        if let (Some(pool), Some(block)) = (self.pool.upgrade(), self.block.take()) {
            pool.give(block);
        }
    }
}

/// A partly filled block as a chunk: sealed if it is well used, else copied out (the block goes
/// back to the pool at once).
fn finish_block(block: Block, pool: &Arc<BlockPool>) -> Bytes {
    if block.len() >= PARTIAL_BLOCK_COPY_BYTES {
        return seal(block, pool);
    }
    let copy = Bytes::copy_from_slice(block.bytes());
    pool.give(block);
    copy
}

fn seal(block: Block, pool: &Arc<BlockPool>) -> Bytes {
    Bytes::from_owner(PooledBlock {
        block: Some(block),
        pool: Arc::downgrade(pool),
    })
}
/// A GET of a file blob reads blocks of this size.
const READ_BLOCK_BYTES: usize = 1024 * 1024;
/// Blocks read ahead of the network for a GET of a file blob.
const READ_AHEAD_BLOCKS: usize = 4;

/// Where a blob's bytes are.
#[derive(Debug)]
pub(crate) enum BlobData {
    /// In memory, as a list of chunks.
    Memory(Vec<Bytes>),
    /// In a file of the directory store.
    File {
        /// The file name under `<bucket>/blobs/` (32 hex digits).
        id: String,
        /// The full path.
        path: PathBuf,
    },
}

/// A finished, immutable blob.
#[derive(Debug)]
pub(crate) struct Blob {
    len: u64,
    data: BlobData,
    discarded: AtomicBool,
}

impl Blob {
    pub(crate) fn memory(chunks: Vec<Bytes>) -> Self {
        let len = chunks.iter().map(|c| c.len() as u64).sum();
        Self {
            len,
            data: BlobData::Memory(chunks),
            discarded: AtomicBool::new(false),
        }
    }

    pub(crate) fn file(id: String, path: PathBuf, len: u64) -> Self {
        Self {
            len,
            data: BlobData::File { id, path },
            discarded: AtomicBool::new(false),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The file id for the directory store's records (`None` for memory blobs).
    pub(crate) fn file_id(&self) -> Option<&str> {
        match &self.data {
            BlobData::File { id, .. } => Some(id),
            BlobData::Memory(_) => None,
        }
    }

    /// Its owner gave it up: delete the file once nobody reads it any more.
    pub(crate) fn discard(&self) {
        self.discarded.store(true, Ordering::Release);
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        if let BlobData::File { path, .. } = &self.data {
            if self.discarded.load(Ordering::Acquire) {
                if let Err(e) = std::fs::remove_file(path) {
                    if e.kind() != io::ErrorKind::NotFound {
                        tracing::warn!("could not delete discarded blob {}: {e}", path.display());
                    }
                }
            }
        }
    }
}

/// Writes one blob as the body arrives. Dropping it unfinished deletes what was written.
pub(crate) struct BlobWriter {
    len: u64,
    inner: WriterInner,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("len", &self.len)
            .finish()
    }
}

enum WriterInner {
    Memory {
        pool: Arc<BlockPool>,
        chunks: Vec<Bytes>,
        /// The block being filled (none until the first byte).
        current: Option<Block>,
    },
    File {
        id: String,
        path: PathBuf,
        /// The file, when no batch is being written.
        file: Option<std::fs::File>,
        /// A batch being written on the blocking pool; it hands the file back.
        in_flight: Option<JoinHandle<io::Result<std::fs::File>>>,
        pending: Vec<Bytes>,
        pending_len: usize,
        finished: bool,
    },
}

impl BlobWriter {
    pub(crate) fn memory(pool: Arc<BlockPool>) -> Self {
        Self {
            len: 0,
            inner: WriterInner::Memory {
                pool,
                chunks: Vec::new(),
                current: None,
            },
        }
    }

    /// Creates the file (it must not exist yet).
    pub(crate) async fn file(id: String, path: PathBuf) -> io::Result<Self> {
        let create_path = path.clone();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(create_path)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Self {
            len: 0,
            inner: WriterInner::File {
                id,
                path,
                file: Some(file),
                in_flight: None,
                pending: Vec::new(),
                pending_len: 0,
                finished: false,
            },
        })
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends a chunk.
    pub(crate) async fn write(&mut self, chunk: Bytes) -> io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.len += chunk.len() as u64;
        match &mut self.inner {
            WriterInner::Memory {
                pool,
                chunks,
                current,
            } => {
                let mut rest = &chunk[..];
                while !rest.is_empty() {
                    let block = current.get_or_insert_with(|| pool.take());
                    let n = block.room().min(rest.len());
                    block.extend(&rest[..n]);
                    rest = &rest[n..];
                    if block.room() == 0 {
                        if let Some(full) = current.take() {
                            chunks.push(seal(full, pool));
                        }
                    }
                }
                Ok(())
            }
            WriterInner::File {
                pending,
                pending_len,
                ..
            } => {
                *pending_len += chunk.len();
                pending.push(chunk);
                if *pending_len >= WRITE_BATCH_BYTES {
                    self.flush_batch().await?;
                }
                Ok(())
            }
        }
    }

    /// Sends the pending chunks to the blocking pool, after the previous batch is done.
    async fn flush_batch(&mut self) -> io::Result<()> {
        let WriterInner::File {
            file,
            in_flight,
            pending,
            pending_len,
            ..
        } = &mut self.inner
        else {
            return Ok(());
        };
        if let Some(handle) = in_flight.take() {
            *file = Some(handle.await.map_err(io::Error::other)??);
        }
        if pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(pending);
        *pending_len = 0;
        let mut owned = file
            .take()
            .ok_or_else(|| io::Error::other("blob file lost after a failed write"))?;
        *in_flight = Some(tokio::task::spawn_blocking(move || {
            write_all_vectored(&mut owned, &batch)?;
            Ok(owned)
        }));
        Ok(())
    }

    /// Writes what is left and returns the blob.
    pub(crate) async fn finish(mut self) -> io::Result<Blob> {
        if let WriterInner::File { .. } = self.inner {
            self.flush_batch().await?;
            // Wait for the last batch too.
            self.flush_batch().await?;
        }
        let len = self.len;
        match &mut self.inner {
            WriterInner::Memory {
                pool,
                chunks,
                current,
            } => {
                if let Some(last) = current.take() {
                    chunks.push(finish_block(last, pool));
                }
                chunks.retain(|chunk| !chunk.is_empty());
                Ok(Blob::memory(std::mem::take(chunks)))
            }
            WriterInner::File {
                id, path, finished, ..
            } => {
                *finished = true;
                Ok(Blob::file(id.clone(), path.clone(), len))
            }
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        match &mut self.inner {
            WriterInner::File {
                path,
                finished: false,
                ..
            } => {
                // An unfinished blob is garbage (client went away, digest mismatch, ...). A
                // batch still being written goes to an unlinked inode, which is harmless.
                let _ = std::fs::remove_file(path);
            }
            WriterInner::Memory { pool, current, .. } => {
                if let Some(block) = current.take() {
                    pool.give(block);
                }
            }
            WriterInner::File { .. } => {}
        }
    }
}

/// Writes every chunk, in as few `writev` calls as the kernel allows.
fn write_all_vectored(file: &mut std::fs::File, chunks: &[Bytes]) -> io::Result<()> {
    let mut index = 0;
    let mut offset = 0;
    while index < chunks.len() {
        let mut slices = Vec::with_capacity(chunks.len() - index);
        slices.push(io::IoSlice::new(&chunks[index][offset..]));
        slices.extend(chunks[index + 1..].iter().map(|c| io::IoSlice::new(c)));
        let mut written = file.write_vectored(&slices)?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the disk took no bytes",
            ));
        }
        while index < chunks.len() && written >= chunks[index].len() - offset {
            written -= chunks[index].len() - offset;
            index += 1;
            offset = 0;
        }
        offset += written;
    }
    Ok(())
}

/// Streams bytes `start..end` of the concatenation of `pieces`.
///
/// Memory pieces are sliced without copying. File pieces are read on the blocking pool in
/// [`READ_BLOCK_BYTES`] blocks, a few blocks ahead of the network; the reader holds the `Arc`s,
/// so the files outlive an overwrite or delete until the stream ends.
pub(crate) fn stream_range(
    pieces: Vec<Arc<Blob>>,
    start: u64,
    end: u64,
) -> BoxStream<'static, io::Result<Bytes>> {
    let mut segments = Vec::new();
    let mut offset = 0u64;
    for piece in pieces {
        let piece_start = offset;
        let piece_end = offset + piece.len();
        offset = piece_end;
        if piece_end <= start || piece_start >= end {
            continue;
        }
        let from = start.max(piece_start) - piece_start;
        let to = end.min(piece_end) - piece_start;
        segments.push((piece, from, to));
    }
    let all_memory = segments
        .iter()
        .all(|(piece, _, _)| matches!(piece.data, BlobData::Memory(_)));
    if all_memory {
        let mut out = Vec::new();
        for (piece, from, to) in &segments {
            if let BlobData::Memory(chunks) = &piece.data {
                slice_chunks(chunks, *from, *to, &mut out);
            }
        }
        return stream::iter(out.into_iter().map(Ok)).boxed();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(READ_AHEAD_BLOCKS);
    tokio::task::spawn_blocking(move || {
        for (piece, from, to) in &segments {
            if let Err(e) = read_segment(piece, *from, *to, &tx) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    });
    stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    })
    .boxed()
}

fn slice_chunks(chunks: &[Bytes], from: u64, to: u64, out: &mut Vec<Bytes>) {
    let mut offset = 0u64;
    for chunk in chunks {
        let chunk_start = offset;
        let chunk_end = offset + chunk.len() as u64;
        offset = chunk_end;
        if chunk_end <= from || chunk_start >= to {
            continue;
        }
        let a = (from.max(chunk_start) - chunk_start) as usize;
        let b = (to.min(chunk_end) - chunk_start) as usize;
        out.push(chunk.slice(a..b));
    }
}

/// Reads `from..to` of one piece into the channel. Returns early (Ok) if the receiver is gone.
fn read_segment(
    piece: &Blob,
    from: u64,
    to: u64,
    tx: &tokio::sync::mpsc::Sender<io::Result<Bytes>>,
) -> io::Result<()> {
    match &piece.data {
        BlobData::Memory(chunks) => {
            let mut out = Vec::new();
            slice_chunks(chunks, from, to, &mut out);
            for chunk in out {
                if tx.blocking_send(Ok(chunk)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        }
        BlobData::File { path, .. } => {
            let mut file = std::fs::File::open(path)?;
            file.seek(SeekFrom::Start(from))?;
            let mut remaining = to - from;
            while remaining > 0 {
                let want = remaining.min(READ_BLOCK_BYTES as u64) as usize;
                let mut block = BytesMut::zeroed(want);
                let mut filled = 0;
                while filled < want {
                    let n = file.read(&mut block[filled..])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("blob {} is shorter than its record", path.display()),
                        ));
                    }
                    filled += n;
                }
                remaining -= want as u64;
                if tx.blocking_send(Ok(block.freeze())).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(stream: BoxStream<'static, io::Result<Bytes>>) -> Vec<u8> {
        let chunks: Vec<Bytes> = stream.map(|c| c.unwrap()).collect().await;
        chunks.concat()
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn memory_blobs_fill_pooled_blocks_and_give_them_back() {
        let pool = Arc::new(BlockPool::default());
        let bytes = data(2 * BLOCK_BYTES + 300_000);
        let mut writer = BlobWriter::memory(pool.clone());
        for chunk in bytes.chunks(100_000) {
            writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        let blob = writer.finish().await.unwrap();
        assert_eq!(blob.len(), bytes.len() as u64);
        if let BlobData::Memory(chunks) = &blob.data {
            let sizes: Vec<usize> = chunks.iter().map(Bytes::len).collect();
            assert_eq!(sizes, [BLOCK_BYTES, BLOCK_BYTES, 300_000]);
            assert!(chunks[..2]
                .iter()
                .all(|block| (block.as_ptr() as usize).is_multiple_of(BLOCK_ALIGN)));
        } else {
            panic!("a memory blob");
        }
        // The small tail was copied out: its block is free again.
        assert_eq!(pool.free_blocks(), 1);
        let reader = collect(stream_range(vec![Arc::new(blob)], 0, bytes.len() as u64));
        assert_eq!(reader.await, bytes);
        // The stream and the blob are gone: both full blocks are back.
        assert_eq!(pool.free_blocks(), 3);
        // And reused without a new allocation.
        let mut writer = BlobWriter::memory(pool.clone());
        for chunk in data(BLOCK_BYTES).chunks(100_000) {
            writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        assert_eq!(pool.free_blocks(), 2);
        drop(writer.finish().await.unwrap());
        assert_eq!(pool.free_blocks(), 3);
    }

    #[tokio::test]
    async fn big_chunks_are_copied_into_blocks_and_free_the_callers_buffer() {
        let pool = Arc::new(BlockPool::default());
        // Odd sizes, so the copies start at every kind of offset inside a block.
        let sizes = [1000, 600 * 1024 + 3, 17, 512 * 1024, 70_001];
        let mut expected = Vec::new();
        let mut writer = BlobWriter::memory(pool.clone());
        for (n, &size) in sizes.iter().enumerate() {
            let chunk: Vec<u8> = data(size + n).split_off(n);
            expected.extend_from_slice(&chunk);
            let chunk = Bytes::from(chunk);
            let callers_handle = chunk.clone();
            writer.write(chunk).await.unwrap();
            // The writer kept nothing of the caller's buffer.
            assert!(callers_handle.is_unique(), "chunk {n} is still referenced");
        }
        let blob = writer.finish().await.unwrap();
        let BlobData::Memory(chunks) = &blob.data else {
            panic!("a memory blob");
        };
        let sizes: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [BLOCK_BYTES, expected.len() - BLOCK_BYTES]);
        assert!((chunks[0].as_ptr() as usize).is_multiple_of(BLOCK_ALIGN));
        assert_eq!(chunks.concat(), expected);
    }

    #[test]
    fn streaming_copy_is_exact_at_every_alignment() {
        let src = data(70_000);
        let mut dst = vec![0u8; 70_000 + 64];
        for len in [0, 1, 15, 16, 17, 63, 64, 65, 127, 1000, 16_384 + 7, 69_000] {
            for src_offset in 0..3 {
                for dst_offset in 0..33 {
                    dst.fill(0xEE);
                    let from = &src[src_offset..src_offset + len];
                    let to = &mut dst[dst_offset..dst_offset + len];
                    // SAFETY: u8 and MaybeUninit<u8> have the same layout, and the bytes are
                    // initialised.
                    let to: &mut [std::mem::MaybeUninit<u8>] =
                        unsafe { &mut *(to as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
                    copy_streaming(to, from);
                    assert_eq!(
                        &dst[dst_offset..dst_offset + len],
                        from,
                        "{len} {src_offset} {dst_offset}"
                    );
                    assert!(dst[..dst_offset].iter().all(|&b| b == 0xEE), "wrote before");
                    assert!(
                        dst[dst_offset + len..].iter().all(|&b| b == 0xEE),
                        "wrote after"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn memory_ranges_slice_without_copying() {
        let pool = Arc::new(BlockPool::default());
        let bytes = data(300_000);
        let mut writer = BlobWriter::memory(pool);
        for chunk in bytes.chunks(1000) {
            writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        let blob = writer.finish().await.unwrap();
        assert_eq!(blob.len(), 300_000);
        let second = Blob::memory(vec![Bytes::from(data(10))]);
        let pieces = vec![Arc::new(blob), Arc::new(second)];
        let all = collect(stream_range(pieces.clone(), 0, 300_010)).await;
        let mut expected = bytes.clone();
        expected.extend(data(10));
        assert_eq!(all, expected);
        let middle = collect(stream_range(pieces, 299_990, 300_005)).await;
        assert_eq!(middle, expected[299_990..300_005]);
    }

    #[test]
    fn vectored_writes_keep_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v");
        let bytes = data(1_000_003);
        let chunks: Vec<Bytes> = bytes
            .chunks(65_537)
            .map(Bytes::copy_from_slice)
            .chain(std::iter::once(Bytes::new()))
            .collect();
        let mut file = std::fs::File::create(&path).unwrap();
        write_all_vectored(&mut file, &chunks).unwrap();
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    #[tokio::test]
    async fn file_blobs_round_trip_and_unfinished_ones_vanish() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = data(3 * 1024 * 1024 + 17);
        let path = dir.path().join("a");
        let mut writer = BlobWriter::file("a".into(), path.clone()).await.unwrap();
        for chunk in bytes.chunks(100_000) {
            writer.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        let blob = Arc::new(writer.finish().await.unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), bytes.len() as u64);
        let got = collect(stream_range(vec![blob.clone()], 5, bytes.len() as u64)).await;
        assert_eq!(got, bytes[5..]);

        // Discarded: the file goes with the last reference, not before.
        blob.discard();
        let reader = blob.clone();
        drop(blob);
        assert!(path.exists());
        drop(reader);
        assert!(!path.exists());

        let other = dir.path().join("b");
        let mut writer = BlobWriter::file("b".into(), other.clone()).await.unwrap();
        writer.write(Bytes::from(data(10))).await.unwrap();
        drop(writer);
        assert!(!other.exists());
    }
}
