//! The streaming writer: an [`AsyncWrite`](tokio::io::AsyncWrite) that turns a byte stream of
//! unknown size into an OSS object.
//!
//! [`ObjectWriter`] cuts the stream into parts following a [`PartSizePlan`], sends each part as
//! soon as it fills (several at once, within a memory budget), and on shutdown completes the
//! multipart upload and checks the object's CRC-64. A stream that ends before its first part
//! fills becomes a single PutObject. The writer speaks only the
//! [`MultipartTarget`](crate::target::MultipartTarget) trait, so it runs unchanged against OSS,
//! the local server, or the in-memory [`MemoryTarget`] used by tests.
//!
//! ```
//! use std::sync::Arc;
//! use osspipe::upload::{MemoryTarget, ObjectWriter};
//! use tokio::io::AsyncWriteExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let target = Arc::new(MemoryTarget::new());
//! let mut writer = ObjectWriter::builder(target.clone(), "logs/today.txt").build()?;
//! writer.write_all(b"hello oss\n").await?;
//! writer.shutdown().await?;
//! let outcome = writer.outcome().expect("shut down");
//! assert_eq!(outcome.size, 10);
//! assert_eq!(outcome.upload_id, None); // small streams become one PutObject
//! assert_eq!(&target.object("logs/today.txt").unwrap().body[..], b"hello oss\n");
//! # Ok(())
//! # }
//! ```
//!
//! # Memory
//!
//! The writer holds, at any moment,
//!
//! ```text
//! buffered = capacity(part being filled) + Σ capacity(parts in flight) + Σ capacity(idle pooled buffers)
//!          ≤ max_memory
//! ```
//!
//! Part `n` is at most `max_memory / 2` (the plan's cap), so one part can fill while another is in
//! flight, and at most `min(max_in_flight, max_memory / part_size(n) - 1)` parts are in flight.
//! A `write` larger than the budget is accepted only in part (the rest waits for a part to be
//! acknowledged). Bytes handed over with [`ObjectWriter::write_bytes`] that become whole parts
//! without copying are counted at their part size. Part buffers of 64 KiB and more start on a
//! page boundary (copies into them run at full speed whatever the source's alignment), which
//! costs each up to 4 KiB of allocation that the formula does not count.

mod memory;
mod plan;
mod pool;
mod progress;
mod writer;

pub use memory::{Call, Fault, Gate, MemoryTarget, StoredObject};
pub use plan::PartSizePlan;
pub use progress::Progress;
pub use writer::{ObjectWriter, ObjectWriterBuilder, UploadOutcome};

use std::time::Duration;

/// The default size of the first part: 8 MiB. Small streams stay in one PutObject below it.
pub const DEFAULT_FIRST_PART_SIZE: u64 = 8 * 1024 * 1024;

/// The default memory budget of one writer: 256 MiB. With the default plan it holds a stream of
/// just over 1 TiB (the plan's cap is 128 MiB, half of it).
pub const DEFAULT_MAX_MEMORY: u64 = 256 * 1024 * 1024;

/// The default number of parts uploaded at once (fewer when large parts would break the memory
/// budget).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4;

/// The default number of parts between doublings of the part size: parts 1-500 use the first
/// size, 501-1000 twice that, and so on up to the cap.
pub const DEFAULT_GROWTH_INTERVAL: u32 = 500;

/// How many times the writer itself sends a request (each part, Initiate, PutObject, Complete)
/// when the target reports a retryable error. This is on top of the target's own retries (the OSS
/// client retries every request), so it stays small.
pub const DEFAULT_ATTEMPTS: u32 = 3;

/// The base of the writer's exponential backoff between attempts (full jitter: the wait is
/// uniform in `0..=base × 2^(attempt-1)`, capped at [`MAX_RETRY_BACKOFF`]).
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// The longest wait between two attempts.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(10);

/// How long aborting an upload (after a failure, or when a writer is dropped) may take before the
/// writer gives up and logs the command that cleans it up.
pub const ABORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Progress subscribers are told at least every this many accepted bytes (and at every part
/// event), so a progress bar moves without waking on every small write.
pub const PROGRESS_STEP: u64 = 1024 * 1024;

/// The first allocation of part 1's buffer. Part 1 grows gradually (doubling) because a stream
/// that ends inside it is a small PutObject and should not cost a whole part of memory; later
/// parts are allocated at their full planned size (or reused from the pool).
pub const FIRST_BUFFER_CAPACITY: u64 = 64 * 1024;

/// A size hint rounds the first part size up to a multiple of this (for checked plans).
pub const SIZE_HINT_ALIGNMENT: u64 = 1024 * 1024;
