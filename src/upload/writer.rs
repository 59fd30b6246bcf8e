//! [`ObjectWriter`]: the `AsyncWrite` state machine.

use std::collections::BTreeMap;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::mem;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::io::AsyncWrite;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use crate::crc64::{self, Crc64};
use crate::limits::{MAX_KEY_BYTES, MAX_PART_NUMBER, MAX_PART_SIZE, MIN_PART_SIZE};
use crate::target::{MultipartTarget, ObjectOptions, ObjectReceipt, PartReceipt};
use crate::{Error, ErrorKind, Operation, Result};

use super::plan::PartSizePlan;
use super::pool::{self, BufferPool};
use super::progress::Progress;
use super::{
    ABORT_TIMEOUT, DEFAULT_ATTEMPTS, DEFAULT_FIRST_PART_SIZE, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_MEMORY, DEFAULT_RETRY_BACKOFF, FIRST_BUFFER_CAPACITY, MAX_RETRY_BACKOFF,
    PROGRESS_STEP,
};

/// CRC and copy in blocks of this size, so the bytes the CRC just read are still in cache when
/// they are copied (one pass over memory, not two).
const COPY_BLOCK: usize = 64 * 1024;

/// The largest single read of [`ObjectWriter::copy_from`].
const READ_FROM_BYTES: usize = 1024 * 1024;

/// Idle part buffers kept for reuse: in steady state one part fills while the others are in
/// flight, so one or two spares are enough.
const POOL_BUFFERS: usize = 2;

/// What a finished object looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadOutcome {
    /// The object key.
    pub key: String,
    /// The object's ETag as the target returned it.
    pub etag: String,
    /// The object's size in bytes (including the parts of a resumed upload).
    pub size: u64,
    /// How many parts it was completed from (0 for a PutObject).
    pub parts: u32,
    /// The object's CRC-64, computed here (and checked against the server's when it sent one).
    pub crc64: u64,
    /// The multipart upload's id; `None` for a small stream sent as one PutObject.
    pub upload_id: Option<String>,
    /// The body of an upload callback's answer, if a callback was configured.
    pub callback_body: Option<Bytes>,
}

/// Configures an [`ObjectWriter`]; from [`ObjectWriter::builder`].
///
/// Setters cannot fail; [`build`](Self::build) checks everything at once.
#[derive(Debug, Clone)]
pub struct ObjectWriterBuilder {
    target: Arc<dyn MultipartTarget>,
    key: String,
    part_size: Option<u64>,
    plan: Option<PartSizePlan>,
    max_in_flight: usize,
    max_memory: u64,
    size_hint: Option<u64>,
    options: ObjectOptions,
    keep_parts_on_drop: bool,
    resume: Option<String>,
    deadline: Option<Duration>,
    attempts: u32,
    retry_backoff: Duration,
}

impl ObjectWriterBuilder {
    /// The first part's size (default [`DEFAULT_FIRST_PART_SIZE`](super::DEFAULT_FIRST_PART_SIZE));
    /// later parts grow by the [`PartSizePlan`].
    pub fn part_size(mut self, bytes: u64) -> Self {
        self.part_size = Some(bytes);
        self
    }

    /// Uses this plan as is, instead of one built from `part_size`, `max_memory` and `size_hint`
    /// (which must then be left unset). [`PartSizePlan::unchecked`] plans allow tiny parts for
    /// tests against [`MemoryTarget`](super::MemoryTarget).
    pub fn plan(mut self, plan: PartSizePlan) -> Self {
        self.plan = Some(plan);
        self
    }

    /// The most parts uploaded at once (default
    /// [`DEFAULT_MAX_IN_FLIGHT`](super::DEFAULT_MAX_IN_FLIGHT)); fewer when parts are so large
    /// that more would not fit in `max_memory`.
    pub fn max_in_flight(mut self, parts: usize) -> Self {
        self.max_in_flight = parts;
        self
    }

    /// The memory budget for part buffers (default
    /// [`DEFAULT_MAX_MEMORY`](super::DEFAULT_MAX_MEMORY)). It caps the part size at half of it,
    /// and so bounds the largest stream (see [`PartSizePlan::ceiling`]).
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.max_memory = bytes;
        self
    }

    /// The stream's expected size, if known roughly: the first part grows so that the stream
    /// fits in evenly sized parts ([`PartSizePlan::with_size_hint`]). A longer stream still
    /// works, up to the plan's ceiling.
    pub fn size_hint(mut self, bytes: u64) -> Self {
        self.size_hint = Some(bytes);
        self
    }

    /// Headers and settings for the object (sent with PutObject, or Initiate and Complete).
    pub fn options(mut self, options: ObjectOptions) -> Self {
        self.options = options;
        self
    }

    /// When the writer is dropped before a successful shutdown, keep the uploaded parts (and log
    /// the upload id) instead of aborting the upload, so that a later writer can
    /// [`resume`](Self::resume) it. Default: abort.
    pub fn keep_parts_on_drop(mut self, keep: bool) -> Self {
        self.keep_parts_on_drop = keep;
        self
    }

    /// Continues the multipart upload `upload_id` (left by a writer that crashed or was dropped
    /// with [`keep_parts_on_drop`](Self::keep_parts_on_drop)): its parts are listed before the
    /// first byte is accepted, and the stream goes on at the part after the last one. Use the
    /// same part-size settings as the first writer.
    pub fn resume(mut self, upload_id: impl Into<String>) -> Self {
        self.resume = Some(upload_id.into());
        self
    }

    /// The whole upload, from `build` to the end of shutdown, must finish within `deadline`;
    /// after it the writer fails with [`ErrorKind::Timeout`] and aborts the upload.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// How many times the writer sends each request when the target reports a retryable error
    /// (default [`DEFAULT_ATTEMPTS`](super::DEFAULT_ATTEMPTS); 1 leaves retrying to the target).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// The base of the backoff between the writer's attempts (default
    /// [`DEFAULT_RETRY_BACKOFF`](super::DEFAULT_RETRY_BACKOFF)).
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Checks the settings and makes the writer. Nothing is sent until the first part fills (or
    /// the stream ends, or, when resuming, the first write).
    ///
    /// # Errors
    /// [`ErrorKind::Config`], naming the broken rule, when: the key is empty or longer than 1023
    /// bytes; `max_in_flight` or `attempts` is 0; the part size is outside OSS's 100 KB - 5 GB;
    /// `max_memory` cannot hold two parts of the largest part size; a plan is given together
    /// with `part_size` or `size_hint`; the size hint exceeds what the plan can hold; or the
    /// deadline is zero.
    pub fn build(self) -> Result<ObjectWriter> {
        if self.key.is_empty() || self.key.len() > MAX_KEY_BYTES {
            return Err(config(format!(
                "the object key must be 1..={MAX_KEY_BYTES} bytes, not {}",
                self.key.len()
            )));
        }
        if self.max_in_flight == 0 {
            return Err(config("max_in_flight must be at least 1".into()));
        }
        if self.attempts == 0 {
            return Err(config("attempts must be at least 1".into()));
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(config("the deadline must be longer than zero".into()));
        }
        let plan = match self.plan {
            Some(plan) => {
                if self.part_size.is_some() || self.size_hint.is_some() {
                    return Err(config(
                        "set either a plan or part_size/size_hint, not both".into(),
                    ));
                }
                plan
            }
            None => {
                let first = self.part_size.unwrap_or(DEFAULT_FIRST_PART_SIZE);
                if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&first) {
                    return Err(config(format!(
                        "part_size must be {MIN_PART_SIZE}..={MAX_PART_SIZE} bytes (OSS's part size limits), not {first}"
                    )));
                }
                let plan = PartSizePlan::for_memory(first, self.max_memory)?;
                match self.size_hint {
                    Some(hint) => {
                        let plan = plan.with_size_hint(hint);
                        if hint > plan.ceiling() {
                            return Err(config(format!(
                                "size_hint ({hint} bytes) exceeds the {} bytes that max_memory ({}) allows in {MAX_PART_NUMBER} parts; raise max_memory",
                                plan.ceiling(),
                                self.max_memory
                            )));
                        }
                        plan
                    }
                    None => plan,
                }
            }
        };
        if plan.max_part_size() > self.max_memory / 2 {
            return Err(config(format!(
                "max_memory ({}) must hold at least two parts of the largest part size ({})",
                self.max_memory,
                plan.max_part_size()
            )));
        }
        let (progress, _) = watch::channel(Progress::default());
        let common = Arc::new(Common {
            target: self.target,
            key: self.key,
            options: self.options,
            attempts: self.attempts,
            backoff: self.retry_backoff,
            deadline: self.deadline.map(|d| (Instant::now() + d, d)),
            progress,
            retries: AtomicU64::new(0),
        });
        let state = match self.resume {
            Some(upload_id) => {
                let listing = {
                    let common = common.clone();
                    async move {
                        let parts = common
                            .within_deadline(common.with_attempts("ListParts", || {
                                common.target.list_parts(&common.key, &upload_id)
                            }))
                            .await
                            .map_err(|e| {
                                context(e, Operation::ListParts, None)
                                    .with_upload_id(upload_id.as_str())
                            })?;
                        Ok((upload_id, parts))
                    }
                    .boxed()
                };
                State::Resuming(listing)
            }
            None => State::Writing,
        };
        Ok(ObjectWriter {
            common,
            plan,
            max_in_flight: self.max_in_flight,
            max_memory: self.max_memory,
            keep_parts_on_drop: self.keep_parts_on_drop,
            deadline_sleep: None,
            state,
            upload: None,
            current: BytesMut::new(),
            current_crc: Crc64::new(),
            part_number: 1,
            in_flight: JoinSet::new(),
            in_flight_bytes: 0,
            receipts: BTreeMap::new(),
            pool: BufferPool::new(POOL_BUFFERS),
            accepted: 0,
            durable: 0,
            resumed_bytes: 0,
            resumed_parts: 0,
            resumed_short_tail: None,
            parts_sent: 0,
            peak_buffered: 0,
            abort_failure: None,
            published_at: 0,
            object_crc: 0,
            outcome: None,
        })
    }
}

fn config(message: String) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// The upload id, shared by every part task: Initiate starts lazily when the first part is sent,
/// and each part waits for it.
type UploadId = Shared<BoxFuture<'static, Result<Arc<str>, Arc<Error>>>>;

/// What every task of one writer needs; tasks hold an `Arc` of it so that nothing borrows the
/// writer.
struct Common {
    target: Arc<dyn MultipartTarget>,
    key: String,
    options: ObjectOptions,
    attempts: u32,
    backoff: Duration,
    /// The instant and the configured duration (for the message).
    deadline: Option<(Instant, Duration)>,
    progress: watch::Sender<Progress>,
    retries: AtomicU64,
}

impl Common {
    /// Runs `op` up to `attempts` times while it fails with a retryable error, with full-jitter
    /// exponential backoff between attempts.
    async fn with_attempts<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Err(error) if error.is_retryable() && attempt < self.attempts => {
                    let delay = self.retry_delay(attempt);
                    attempt += 1;
                    tracing::warn!(
                        key = %self.key,
                        "retrying {what} (attempt {attempt} of {}) in {delay:?} after: {error}",
                        self.attempts
                    );
                    self.count_retry();
                    tokio::time::sleep(delay).await;
                }
                result => return result,
            }
        }
    }

    fn retry_delay(&self, attempt: u32) -> Duration {
        let exponential = self
            .backoff
            .saturating_mul(1 << (attempt - 1).min(20))
            .min(MAX_RETRY_BACKOFF);
        let nanos = u64::try_from(exponential.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    fn count_retry(&self) {
        let retries = self.retries.fetch_add(1, Ordering::Relaxed) + 1;
        self.progress
            .send_modify(|p| p.retries = p.retries.max(retries));
    }

    async fn within_deadline<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        match self.deadline {
            None => future.await,
            Some((at, _)) => tokio::time::timeout_at(at, future)
                .await
                .unwrap_or_else(|_| Err(self.deadline_error())),
        }
    }

    fn deadline_error(&self) -> Error {
        let after = self.deadline.map_or(Duration::ZERO, |(_, d)| d);
        Error::new(
            ErrorKind::Timeout,
            format!("the upload did not finish within its deadline of {after:?}"),
        )
        .with_key(&self.key)
    }

    /// The command that removes an abandoned upload's parts.
    fn cleanup_command(&self, upload_id: &str) -> String {
        let bucket = self.target.bucket().unwrap_or("BUCKET");
        format!(
            "osspipe abort oss://{bucket}/{} --upload-id {upload_id}",
            self.key
        )
    }
}

/// A failed read of [`ObjectWriter::copy_from`]'s reader.
fn read_error(error: io::Error) -> Error {
    Error::new(ErrorKind::Io, "reading the input failed").with_source(error)
}

/// Names the operation (and part) on an error from the target that did not.
fn context(mut error: Error, operation: Operation, part_number: Option<u32>) -> Error {
    if error.operation().is_none() {
        error = error.with_operation(operation);
    }
    if let (Some(part_number), None) = (part_number, error.part_number()) {
        error = error.with_part_number(part_number);
    }
    error
}

/// A part task's result: it returns the part's bytes so their buffer can be reused.
struct PartDone {
    body: Bytes,
    /// Bytes counted against the budget while the part was in flight.
    charge: u64,
    /// Whether `body` is the writer's own buffer (not a caller's `Bytes`), worth reclaiming.
    reusable: bool,
    result: Result<PartReceipt>,
}

async fn upload_part(
    common: Arc<Common>,
    upload: UploadId,
    part_number: u32,
    body: Bytes,
    crc: u64,
    charge: u64,
    reusable: bool,
) -> PartDone {
    let result = common
        .within_deadline(async {
            let upload_id = upload.await.map_err(|e| e.duplicate())?;
            let (common, body, upload_id) = (&common, &body, &upload_id);
            common
                .with_attempts(&format!("UploadPart (part {part_number})"), || async move {
                    let receipt = common
                        .target
                        .upload_part_with_crc(
                            &common.key,
                            upload_id,
                            part_number,
                            body.clone(),
                            crc,
                        )
                        .await
                        .map_err(|e| context(e, Operation::UploadPart, Some(part_number)))?;
                    check_part(common, upload_id, part_number, body, crc, receipt)
                })
                .await
        })
        .await;
    PartDone {
        body,
        charge,
        reusable,
        result,
    }
}

/// The target checks the server's CRC; this checks the target, so a target that stores
/// something else (or a fake told to) cannot slip a wrong part into the object.
fn check_part(
    common: &Common,
    upload_id: &str,
    part_number: u32,
    body: &Bytes,
    crc: u64,
    receipt: PartReceipt,
) -> Result<PartReceipt> {
    let context = |error: Error| {
        error
            .with_operation(Operation::UploadPart)
            .with_key(&common.key)
            .with_upload_id(upload_id)
            .with_part_number(part_number)
    };
    if receipt.crc64 != crc {
        return Err(context(Error::new(
            ErrorKind::CrcMismatch,
            format!(
                "the part's crc-64 reported by the server ({}) differs from the one computed here ({crc})",
                receipt.crc64
            ),
        )));
    }
    if receipt.part_number != part_number || receipt.size != body.len() as u64 {
        return Err(context(Error::new(
            ErrorKind::MalformedResponse,
            format!(
                "the target acknowledged part {} of {} bytes for part {part_number} of {} bytes",
                receipt.part_number,
                receipt.size,
                body.len()
            ),
        )));
    }
    Ok(receipt)
}

fn check_object_crc(
    common: &Common,
    operation: Operation,
    receipt: ObjectReceipt,
    crc: u64,
) -> Result<ObjectReceipt> {
    match receipt.crc64 {
        Some(server) if server != crc => Err(Error::new(
            ErrorKind::CrcMismatch,
            format!(
                "the object's crc-64 reported by the server ({server}) differs from the one computed here ({crc})"
            ),
        )
        .with_operation(operation)
        .with_key(&common.key)),
        _ => Ok(receipt),
    }
}

async fn put_object(common: Arc<Common>, body: Bytes, crc: u64) -> Result<ObjectReceipt> {
    let (common_ref, body) = (&common, &body);
    common
        .within_deadline(common.with_attempts("PutObject", || async move {
            let receipt = common_ref
                .target
                .put_object(&common_ref.key, body.clone(), &common_ref.options)
                .await
                .map_err(|e| context(e, Operation::PutObject, None))?;
            check_object_crc(common_ref, Operation::PutObject, receipt, crc)
        }))
        .await
}

/// Complete, and if its answer is lost (a retryable error, or `NoSuchUpload` because an earlier
/// attempt inside the target did complete it) ask HeadObject whether the object is there with the
/// expected size and CRC-64. A CRC-64 mismatch (from the target's check or ours) is an error.
async fn complete_upload(
    common: Arc<Common>,
    upload_id: Arc<str>,
    parts: Vec<PartReceipt>,
    size: u64,
    crc: u64,
) -> Result<ObjectReceipt> {
    let mut attempt = 1;
    loop {
        let error = match common
            .target
            .complete(&common.key, &upload_id, &parts, &common.options)
            .await
        {
            Ok(receipt) => {
                return check_object_crc(&common, Operation::CompleteMultipartUpload, receipt, crc)
            }
            Err(error) => context(error, Operation::CompleteMultipartUpload, None),
        };
        // An answer that arrived with a wrong CRC-64 was not lost: the object is suspect, and the
        // upload is gone, so there is nothing to send again.
        let lost = (error.is_retryable() && error.kind() != ErrorKind::CrcMismatch)
            || error.oss_code() == Some("NoSuchUpload");
        if !lost {
            return Err(error);
        }
        if let Ok(Some(head)) = common.target.head(&common.key).await {
            if head.size == size && head.crc64 == Some(crc) {
                tracing::info!(
                    key = %common.key,
                    "Complete's answer was lost ({error}); HeadObject shows the object complete"
                );
                // If the object was already there with these bytes and our Complete never
                // happened, this frees our parts; after a real Complete it answers NoSuchUpload.
                let _ = common.target.abort(&common.key, &upload_id).await;
                return Ok(ObjectReceipt {
                    etag: head.etag,
                    crc64: head.crc64,
                    callback_body: None,
                });
            }
        }
        if !error.is_retryable() || attempt >= common.attempts {
            return Err(error);
        }
        let delay = common.retry_delay(attempt);
        attempt += 1;
        tracing::warn!(
            key = %common.key,
            "retrying CompleteMultipartUpload (attempt {attempt} of {}) in {delay:?} after: {error}",
            common.attempts
        );
        common.count_retry();
        tokio::time::sleep(delay).await;
    }
}

/// Stops the part tasks, then aborts the upload (if one was started), within [`ABORT_TIMEOUT`].
fn abort_upload(
    common: Arc<Common>,
    upload: Option<UploadId>,
    mut in_flight: JoinSet<PartDone>,
) -> BoxFuture<'static, Option<Error>> {
    async move {
        // Stop the parts first: OSS does not delete parts still being uploaded when it aborts.
        in_flight.abort_all();
        while in_flight.join_next().await.is_some() {}
        let upload = upload?;
        let aborted = tokio::time::timeout(ABORT_TIMEOUT, async {
            let upload_id = upload.await.map_err(|e| e.duplicate())?;
            let result = common
                .with_attempts("AbortMultipartUpload", || {
                    common.target.abort(&common.key, &upload_id)
                })
                .await;
            match result {
                Err(error) if error.oss_code() == Some("NoSuchUpload") => Ok(upload_id),
                Err(error) => Err(error.with_upload_id(&*upload_id)),
                Ok(()) => Ok(upload_id),
            }
        })
        .await;
        match aborted {
            Ok(Ok(upload_id)) => {
                tracing::info!(key = %common.key, "aborted multipart upload {upload_id}");
                None
            }
            Ok(Err(error)) => {
                // Without an upload id, Initiate itself failed: there is nothing to abort.
                let upload_id = error.upload_id()?;
                tracing::warn!(
                    key = %common.key,
                    "could not abort multipart upload {upload_id} ({error}); clean it up with `{}`",
                    common.cleanup_command(upload_id)
                );
                Some(context(error, Operation::AbortMultipartUpload, None))
            }
            Err(_) => {
                let message = format!(
                    "aborting the multipart upload took longer than {ABORT_TIMEOUT:?}; list it with ListMultipartUploads and abort it"
                );
                tracing::warn!(key = %common.key, "{message}");
                Some(
                    Error::new(ErrorKind::Timeout, message)
                        .with_operation(Operation::AbortMultipartUpload)
                        .with_key(&common.key),
                )
            }
        }
    }
    .boxed()
}

/// Bytes the writer is given: a borrowed slice (always copied into the part buffer) or `Bytes`
/// (whole parts can be sliced off without copying).
trait Input {
    fn remaining(&self) -> usize;
    fn chunk(&self) -> &[u8];
    fn consume(&mut self, n: usize);
    fn can_split(&self) -> bool;
    fn split_part(&mut self, n: usize) -> Bytes;
}

struct SliceInput<'a>(&'a [u8]);

impl Input for SliceInput<'_> {
    fn remaining(&self) -> usize {
        self.0.len()
    }
    fn chunk(&self) -> &[u8] {
        self.0
    }
    fn consume(&mut self, n: usize) {
        self.0 = &self.0[n..];
    }
    fn can_split(&self) -> bool {
        false
    }
    fn split_part(&mut self, n: usize) -> Bytes {
        let part = Bytes::copy_from_slice(&self.0[..n]);
        self.consume(n);
        part
    }
}

impl Input for Bytes {
    fn remaining(&self) -> usize {
        self.len()
    }
    fn chunk(&self) -> &[u8] {
        self
    }
    fn consume(&mut self, n: usize) {
        self.advance(n);
    }
    fn can_split(&self) -> bool {
        true
    }
    fn split_part(&mut self, n: usize) -> Bytes {
        self.split_to(n)
    }
}

/// The writer's states.
///
/// ```text
///  Resuming ──parts listed──┐
///                           ▼
///  ───────────────────► Writing ──shutdown, no part sent yet──► Putting ─────────────┐
///                           │   (parts go out as they fill,                          │
///                           │    up to the in-flight limit)                          ▼
///                           └──shutdown: last part sent──► Draining ──► Completing ──► Done
///
///  any fatal error (or deadline, or too large) ──► Aborting ──► Failed (error latched)
/// ```
enum State {
    /// Listing the parts of the upload being resumed (its id, its parts).
    Resuming(BoxFuture<'static, Result<(String, Vec<PartReceipt>)>>),
    /// Accepting bytes.
    Writing,
    /// Shut down: waiting for the parts in flight.
    Draining,
    /// PutObject of a stream that ended before its first part filled.
    Putting(BoxFuture<'static, Result<ObjectReceipt>>),
    /// CompleteMultipartUpload (and, if its answer is lost, HeadObject).
    Completing(BoxFuture<'static, Result<ObjectReceipt>>),
    /// Stopping the parts and aborting the upload; the error is returned when that is done.
    Aborting {
        /// Resolves to the abort's own failure, if it failed.
        abort: BoxFuture<'static, Option<Error>>,
        error: Error,
    },
    /// The object is complete; the outcome is in the writer.
    Done,
    /// Failed: every call returns (a duplicate of) this error.
    Failed(Error),
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Resuming(_) => "Resuming",
            State::Writing => "Writing",
            State::Draining => "Draining",
            State::Putting(_) => "Putting",
            State::Completing(_) => "Completing",
            State::Aborting { .. } => "Aborting",
            State::Done => "Done",
            State::Failed(_) => "Failed",
        }
    }
}

/// Streams bytes into one object: an [`AsyncWrite`] that becomes a PutObject (small streams) or a
/// multipart upload whose parts are sent while writing goes on.
///
/// - Bytes are copied into the current part's buffer (computing its CRC-64 in the same pass);
///   [`write_bytes`](Self::write_bytes) takes `Bytes` and slices whole parts off them without
///   copying.
/// - A full part is sent at once (UploadPart, on a spawned task), up to `max_in_flight` at a time
///   and within `max_memory` (see the [module docs](super) for the formula); when the budget is
///   full, `poll_write` returns `Pending` until a part is acknowledged.
/// - `poll_flush` sends nothing early and waits for nothing (so `tokio::io::copy` does not
///   stall); [`sync_durable`](Self::sync_durable) is the durability point.
/// - `poll_shutdown` sends the last part, waits for all of them, checks they are exactly 1..=N,
///   completes the upload, and checks the object's CRC-64 (the part CRCs combined) against the
///   server's. Then [`outcome`](Self::outcome) describes the object; shutting down again returns
///   `Ok` with the same outcome.
/// - The first fatal error is latched (every later call returns it), the parts in flight are
///   stopped and the upload is aborted; the caller sees the original error, with the upload id.
///   Errors come out of `AsyncWrite` as [`io::Error`]; [`Error::from_io`] recovers them.
///
/// The writer spawns its part tasks on the current tokio runtime, so it must be polled inside
/// one.
///
/// # Cancel safety
///
/// Dropping the writer before a successful shutdown never completes the object. Unless
/// [`keep_parts_on_drop`](ObjectWriterBuilder::keep_parts_on_drop) is set, the parts in flight
/// are stopped and the upload is aborted in the background on the current tokio runtime (within
/// [`ABORT_TIMEOUT`](super::ABORT_TIMEOUT)); with no runtime, the upload id and the command that
/// cleans it up (`osspipe abort oss://bucket/key --upload-id ID`) are logged. With
/// `keep_parts_on_drop`, the parts in flight are left to finish and the upload id is logged (it
/// is also available from [`upload_id`](Self::upload_id)) for a later
/// [`resume`](ObjectWriterBuilder::resume). A small stream whose PutObject is in flight may or
/// may not have been stored, and an object whose Complete is in flight (the writer is dropped
/// during `shutdown`) may or may not have been completed: the abort that follows then finds no
/// upload.
///
/// Dropping a `write`/`flush`/`shutdown` future of `tokio::io::AsyncWriteExt` (e.g. in `select!`)
/// is safe: the writer's state lives in the writer, and calling again resumes. Dropping
/// [`write_bytes`](Self::write_bytes) may leave a prefix of its bytes accepted (see
/// [`progress`](Self::progress)`.bytes_accepted`).
pub struct ObjectWriter {
    common: Arc<Common>,
    plan: PartSizePlan,
    max_in_flight: usize,
    max_memory: u64,
    keep_parts_on_drop: bool,
    deadline_sleep: Option<Pin<Box<Sleep>>>,
    state: State,
    /// `None` until the first part is sent (then Initiate runs) or a resumed upload is listed.
    upload: Option<UploadId>,
    /// The part being filled, number `part_number`.
    current: BytesMut,
    current_crc: Crc64,
    part_number: u32,
    in_flight: JoinSet<PartDone>,
    in_flight_bytes: u64,
    receipts: BTreeMap<u32, PartReceipt>,
    pool: BufferPool,
    accepted: u64,
    durable: u64,
    resumed_bytes: u64,
    resumed_parts: u32,
    /// The size of a resumed upload's last part when it is below the minimum (it can then only
    /// stay the last part).
    resumed_short_tail: Option<u64>,
    parts_sent: u32,
    peak_buffered: u64,
    /// Why aborting the upload failed, for [`abort`](Self::abort) to report.
    abort_failure: Option<Error>,
    published_at: u64,
    object_crc: u64,
    outcome: Option<UploadOutcome>,
}

impl fmt::Debug for ObjectWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("key", &self.common.key)
            .field("state", &self.state.name())
            .field("upload_id", &self.upload_id())
            .field("part_number", &self.part_number)
            .field("bytes_accepted", &self.accepted)
            .field("parts_in_flight", &self.in_flight.len())
            .field("plan", &self.plan)
            .field("max_memory", &self.max_memory)
            .finish_non_exhaustive()
    }
}

impl ObjectWriter {
    /// A builder for a writer of object `key` into `target`.
    pub fn builder(
        target: Arc<dyn MultipartTarget>,
        key: impl Into<String>,
    ) -> ObjectWriterBuilder {
        ObjectWriterBuilder {
            target,
            key: key.into(),
            part_size: None,
            plan: None,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_memory: DEFAULT_MAX_MEMORY,
            size_hint: None,
            options: ObjectOptions::default(),
            keep_parts_on_drop: false,
            resume: None,
            deadline: None,
            attempts: DEFAULT_ATTEMPTS,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
        }
    }

    /// The object key.
    pub fn key(&self) -> &str {
        &self.common.key
    }

    /// The part-size plan in use.
    pub fn plan(&self) -> &PartSizePlan {
        &self.plan
    }

    /// The memory budget for part buffers.
    pub fn max_memory(&self) -> u64 {
        self.max_memory
    }

    /// The multipart upload's id, once Initiate has answered (or a resumed upload was listed).
    pub fn upload_id(&self) -> Option<&str> {
        match self.upload.as_ref()?.peek()? {
            Ok(upload_id) => Some(upload_id),
            Err(_) => None,
        }
    }

    /// The finished object, after a successful shutdown.
    pub fn outcome(&self) -> Option<&UploadOutcome> {
        self.outcome.as_ref()
    }

    /// What the writer has done so far (exact at the moment of the call).
    pub fn progress(&self) -> Progress {
        Progress {
            bytes_accepted: self.accepted,
            bytes_durable: self.durable,
            bytes_resumed: self.resumed_bytes,
            parts_sent: self.parts_sent,
            parts_acknowledged: self.receipts.len() as u32,
            parts_in_flight: self.in_flight.len() as u32,
            retries: self.common.retries.load(Ordering::Relaxed),
            buffered_bytes: self.buffered(),
            peak_buffered_bytes: self.peak_buffered,
            finished: matches!(self.state, State::Done),
        }
    }

    /// A channel that sees the progress: updated at every part event (sent, acknowledged,
    /// retried), at least every [`PROGRESS_STEP`](super::PROGRESS_STEP) accepted bytes, and at
    /// the end.
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.common.progress.subscribe()
    }

    /// Writes `bytes`, slicing whole parts off them without copying where it can (a part of
    /// `Bytes` costs one CRC pass and no copy); pieces smaller than a part are copied into the
    /// part buffer. Waits while the memory budget is full.
    ///
    /// # Errors
    /// The writer's latched error, or [`ErrorKind::Closed`] after shutdown.
    pub async fn write_bytes(&mut self, mut bytes: Bytes) -> Result<()> {
        poll_fn(|cx| loop {
            match ready!(self.poll_accept(cx, &mut bytes)) {
                Ok(_) if bytes.is_empty() => return Poll::Ready(Ok(())),
                Ok(_) => continue,
                Err(error) => return Poll::Ready(Err(error)),
            }
        })
        .await
    }

    /// Reads `reader` to its end straight into the part buffers and returns how many bytes it
    /// read. Unlike `tokio::io::copy(reader, writer)`, the bytes land in the part being filled
    /// with no intermediate buffer, which saves one copy of every byte (the reader's own copy
    /// into the part is the only one). Reads are at most 1 MiB and never larger than what the
    /// memory budget has room for; each read's bytes go through CRC-64 while still in cache.
    /// It does not shut the writer down: call [`shutdown`](tokio::io::AsyncWriteExt::shutdown)
    /// after it to complete the object.
    ///
    /// # Errors
    /// The writer's latched error, [`ErrorKind::Closed`] after shutdown began, or an
    /// [`ErrorKind::Io`] error when reading fails. A read error is not latched: the bytes read
    /// before it are accepted, and the caller decides whether to complete the object (a
    /// truncated stream) or to drop or [`abort`](Self::abort) the writer.
    ///
    /// # Cancel safety
    /// Cancel-safe: bytes already read are accepted (see
    /// [`progress`](Self::progress)`.bytes_accepted`); nothing is lost between reads.
    pub async fn copy_from<R>(&mut self, reader: &mut R) -> Result<u64>
    where
        R: tokio::io::AsyncRead + Unpin + ?Sized,
    {
        let mut total = 0u64;
        loop {
            let read = poll_fn(|cx| self.poll_read_from(cx, Pin::new(&mut *reader))).await?;
            if read == 0 {
                return Ok(total);
            }
            total += read as u64;
        }
    }

    /// A durability point: waits until every part sent so far is acknowledged, and returns how
    /// many bytes are durable. With `cut_tail`, the bytes buffered in the current part are first
    /// sent as a (short) part if they are at least the plan's minimum part size (100 KB for OSS),
    /// so that every byte accepted so far becomes durable; a shorter tail stays buffered (compare
    /// the result with [`progress`](Self::progress)`.bytes_accepted`). Cutting parts short lowers
    /// the plan's ceiling. After a successful shutdown it returns the object's size at once
    /// (every byte is durable).
    ///
    /// # Errors
    /// The writer's latched error, or [`ErrorKind::Closed`] while shutdown is in progress.
    pub async fn sync_durable(&mut self, cut_tail: bool) -> Result<u64> {
        poll_fn(|cx| self.poll_sync_durable(cx, cut_tail)).await
    }

    /// For a resumed writer: lists the upload's parts (if not done yet) and returns how many
    /// bytes the object already has, that is where the stream must continue. 0 for a new upload.
    ///
    /// # Errors
    /// ListParts' error (e.g. `NoSuchUpload`), or a listing that cannot be continued (a missing
    /// part, a part below the minimum size before the last).
    pub async fn resumed_size(&mut self) -> Result<u64> {
        poll_fn(|cx| match self.state {
            State::Resuming(_) | State::Aborting { .. } | State::Failed(_) => {
                self.poll_writable(cx).map_ok(|()| self.resumed_bytes)
            }
            _ => Poll::Ready(Ok(self.resumed_bytes)),
        })
        .await
    }

    /// Abandons the upload: stops the parts in flight and aborts the multipart upload, waiting
    /// for the abort (unlike dropping, which aborts in the background).
    ///
    /// # Errors
    /// The writer's error if it had already failed; else the abort's own failure (it carries
    /// the upload id, which is then left on the server: see `osspipe abort`), including a
    /// timeout after [`ABORT_TIMEOUT`](super::ABORT_TIMEOUT).
    pub async fn abort(mut self) -> Result<()> {
        let failed_before = matches!(self.state, State::Aborting { .. } | State::Failed(_));
        if matches!(self.state, State::Done) {
            return Ok(());
        }
        self.fail(Error::new(ErrorKind::Closed, "the upload was aborted"));
        let error = poll_fn(|cx| self.poll_failure(cx)).await;
        if failed_before {
            return Err(error);
        }
        match self.abort_failure.take() {
            Some(abort_failure) => Err(abort_failure),
            None => Ok(()),
        }
    }

    fn buffered(&self) -> u64 {
        self.current.capacity() as u64 + self.in_flight_bytes + self.pool.bytes()
    }

    fn note_memory(&mut self) {
        let buffered = self.buffered();
        debug_assert!(
            buffered <= self.max_memory,
            "buffered {buffered} > max_memory {}",
            self.max_memory
        );
        self.peak_buffered = self.peak_buffered.max(buffered);
    }

    /// Tells subscribers; between part events only every [`PROGRESS_STEP`] bytes.
    fn publish(&mut self, force: bool) {
        if !force && self.accepted - self.published_at < PROGRESS_STEP {
            return;
        }
        self.published_at = self.accepted;
        let snapshot = self.progress();
        self.common.progress.send_modify(|p| {
            let retries = p.retries.max(snapshot.retries);
            *p = snapshot;
            p.retries = retries;
        });
    }

    /// Parts allowed in flight while parts are `part_size` bytes: the budget must also hold the
    /// part being filled.
    fn in_flight_limit(&self, part_size: u64) -> usize {
        let by_memory = (self.max_memory / part_size.max(1)).saturating_sub(1);
        (self.max_in_flight as u64).min(by_memory).max(1) as usize
    }

    fn too_large_error(&self) -> Error {
        Error::new(
            ErrorKind::TooLarge,
            format!(
                "the stream is longer than the part-size plan allows ({} bytes accepted in {} parts, ceiling {} bytes); give a size hint or raise max_memory",
                self.accepted,
                self.plan.max_parts(),
                self.plan.ceiling()
            ),
        )
        .with_key(&self.common.key)
    }

    fn closed_error(&self) -> Error {
        Error::new(ErrorKind::Closed, "the writer was shut down").with_key(&self.common.key)
    }

    /// Latches `error`: stops the part tasks and starts aborting the upload. The first error wins.
    fn fail(&mut self, mut error: Error) {
        if matches!(self.state, State::Aborting { .. } | State::Failed(_)) {
            return;
        }
        if error.upload_id().is_none() {
            if let Some(upload_id) = self.upload_id() {
                error = error.with_upload_id(upload_id);
            }
        }
        if error.key().is_none() {
            error = error.with_key(&self.common.key);
        }
        tracing::warn!(key = %self.common.key, "upload failed: {error}");
        let abort = abort_upload(
            self.common.clone(),
            self.upload.clone(),
            mem::take(&mut self.in_flight),
        );
        self.in_flight_bytes = 0;
        self.current = BytesMut::new();
        self.pool.clear();
        self.state = State::Aborting { abort, error };
    }

    /// Latches `error` and reports the failure (see [`fail`](Self::fail) and
    /// [`poll_failure`](Self::poll_failure)).
    fn poll_fail<T>(&mut self, cx: &mut Context<'_>, error: Error) -> Poll<Result<T>> {
        self.fail(error);
        self.poll_failure(cx).map(Err)
    }

    /// Finishes aborting and returns the latched error (the original the first time, duplicates
    /// after).
    fn poll_failure(&mut self, cx: &mut Context<'_>) -> Poll<Error> {
        match &mut self.state {
            State::Aborting { abort, .. } => {
                self.abort_failure = ready!(abort.poll_unpin(cx));
                let State::Aborting { error, .. } = mem::replace(&mut self.state, State::Done)
                else {
                    unreachable!("matched above")
                };
                self.state = State::Failed(error.duplicate());
                self.publish(true);
                Poll::Ready(error)
            }
            State::Failed(error) => Poll::Ready(error.duplicate()),
            _ => Poll::Ready(self.closed_error()),
        }
    }

    /// Ready once bytes may be accepted (after a resumed upload is listed), or with the latched
    /// error, or `Closed` after shutdown began.
    fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            match &mut self.state {
                State::Writing => return Poll::Ready(Ok(())),
                State::Resuming(listing) => {
                    let listed = ready!(listing.poll_unpin(cx));
                    self.state = State::Writing;
                    if let Err(error) = listed.and_then(|(id, parts)| self.apply_resume(id, parts))
                    {
                        self.fail(error);
                    }
                }
                State::Aborting { .. } | State::Failed(_) => return self.poll_failure(cx).map(Err),
                _ => return Poll::Ready(Err(self.closed_error())),
            }
        }
    }

    fn apply_resume(&mut self, upload_id: String, parts: Vec<PartReceipt>) -> Result<()> {
        let cannot = |why: String| {
            Error::invalid_input(format!("the upload cannot be resumed: {why}"))
                .with_key(&self.common.key)
                .with_upload_id(upload_id.as_str())
        };
        for (index, part) in parts.iter().enumerate() {
            let expected = index as u32 + 1;
            if part.part_number != expected {
                return Err(cannot(format!("part {expected} is missing")));
            }
            if index + 1 < parts.len() && part.size < self.plan.min_part_size() {
                return Err(cannot(format!(
                    "part {expected} has {} bytes, below the minimum part size",
                    part.size
                )));
            }
        }
        let count = parts.len() as u32;
        if let Some(last) = parts.last() {
            if last.size < self.plan.min_part_size() {
                self.resumed_short_tail = Some(last.size);
            }
        }
        for part in parts {
            self.accepted += part.size;
            self.object_crc = crc64::combine(self.object_crc, part.crc64, part.size);
            self.receipts.insert(part.part_number, part);
        }
        let upload_id: Arc<str> = upload_id.into();
        self.upload = Some(futures::future::ready(Ok(upload_id)).boxed().shared());
        // Poll once so that `peek` (and so `upload_id()`) sees the ready value.
        if let Some(upload) = &self.upload {
            let _ = upload.clone().now_or_never();
        }
        self.durable = self.accepted;
        self.resumed_bytes = self.accepted;
        self.resumed_parts = count;
        self.parts_sent = count;
        self.part_number = count + 1;
        tracing::info!(
            key = %self.common.key,
            "resuming upload {} after part {count} ({} bytes)",
            self.upload_id().unwrap_or_default(),
            self.accepted
        );
        self.publish(true);
        Ok(())
    }

    /// Reaps finished part tasks and checks the deadline; `Ok(true)` if any part finished. Leaves
    /// the waker registered with the part tasks (and the deadline) when nothing is ready.
    fn poll_parts(&mut self, cx: &mut Context<'_>) -> Result<bool> {
        if let Some((at, _)) = self.common.deadline {
            let sleep = self
                .deadline_sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if sleep.as_mut().poll(cx).is_ready() {
                return Err(self.common.deadline_error());
            }
        }
        let mut progressed = false;
        while let Poll::Ready(Some(joined)) = self.in_flight.poll_join_next(cx) {
            progressed = true;
            let done = joined.map_err(|error| {
                Error::new(ErrorKind::Io, "a part upload task ended abnormally")
                    .with_operation(Operation::UploadPart)
                    .with_source(error)
            })?;
            self.in_flight_bytes -= done.charge;
            let receipt = done.result?;
            self.durable += receipt.size;
            self.receipts.insert(receipt.part_number, receipt);
            if done.reusable {
                if let Ok(buffer) = done.body.try_into_mut() {
                    let next = if self.current.capacity() == 0 {
                        self.part_number
                    } else {
                        self.part_number + 1
                    };
                    self.pool.put(buffer, self.plan.part_size(next));
                    let limit = self
                        .max_memory
                        .saturating_sub(self.current.capacity() as u64 + self.in_flight_bytes);
                    self.pool.shrink_to(limit);
                }
            }
        }
        if progressed {
            self.note_memory();
            self.publish(true);
        }
        Ok(progressed)
    }

    /// Sends `body` as part `part_number` on its own task (starting Initiate for the first one).
    fn send_part(&mut self, body: Bytes, crc: u64, charge: u64, reusable: bool) -> Result<()> {
        let part_number = self.part_number;
        if let Some(size) = self.resumed_short_tail {
            if part_number == self.resumed_parts + 1 {
                return Err(Error::invalid_input(format!(
                    "the resumed upload's last part ({} bytes) is below the minimum part size, so no part can follow it",
                    size
                ))
                .with_key(&self.common.key));
            }
        }
        let common = &self.common;
        let upload = self
            .upload
            .get_or_insert_with(|| start_upload(common.clone()))
            .clone();
        self.in_flight.spawn(upload_part(
            self.common.clone(),
            upload,
            part_number,
            body,
            crc,
            charge,
            reusable,
        ));
        self.in_flight_bytes += charge;
        self.part_number += 1;
        self.parts_sent += 1;
        self.note_memory();
        self.publish(true);
        Ok(())
    }

    fn send_current(&mut self) -> Result<()> {
        let buffer = mem::take(&mut self.current);
        let charge = buffer.capacity() as u64;
        let crc = mem::take(&mut self.current_crc).value();
        self.send_part(buffer.freeze(), crc, charge, true)
    }

    /// Makes room for at least one more byte in the part being filled; `false` when the memory
    /// budget is full (wait for a part to be acknowledged).
    fn reserve_current(&mut self, part_size: u64, wanted: usize) -> bool {
        let len = self.current.len();
        let capacity = self.current.capacity();
        if capacity > len {
            return true;
        }
        if self.part_number == 1 && self.upload.is_none() {
            // Part 1 of a new stream grows by doubling: the stream may end as a small PutObject.
            // Nothing is in flight yet, and part_size <= max_memory / 2.
            let grown = (capacity as u64 * 2)
                .max(len as u64 + wanted as u64)
                .max(FIRST_BUFFER_CAPACITY)
                .min(part_size);
            let mut buffer = pool::part_buffer(grown as usize);
            buffer.extend_from_slice(&self.current);
            // Both buffers exist during the copy.
            self.peak_buffered = self.peak_buffered.max(self.buffered() + grown);
            self.current = buffer;
            return true;
        }
        debug_assert_eq!(len, 0, "later parts are allocated whole");
        if let Some(buffer) = self.pool.take(part_size) {
            self.current = buffer;
            self.note_memory();
            return true;
        }
        let needed = self.in_flight_bytes + part_size;
        if needed > self.max_memory {
            return false;
        }
        self.pool.shrink_to(self.max_memory - needed);
        self.current = pool::part_buffer(part_size as usize);
        self.note_memory();
        true
    }

    /// Makes room for a zero-copy part of `part_size` (the part buffer is empty); `false` when
    /// the budget is full.
    fn reserve_zero_copy(&mut self, part_size: u64) -> bool {
        let needed = self.in_flight_bytes + part_size;
        if needed > self.max_memory {
            return false;
        }
        if self.current.capacity() > 0 {
            let buffer = mem::take(&mut self.current);
            self.pool.put(buffer, part_size);
        }
        self.pool.shrink_to(self.max_memory - needed);
        true
    }

    /// Sends the current part if it is full and a slot is free (never the plan's last part,
    /// which only shutdown may send).
    fn send_if_full(&mut self) -> Result<()> {
        let part_size = self.plan.part_size(self.part_number);
        if part_size > 0
            && self.current.len() as u64 >= part_size
            && self.part_number < self.plan.max_parts()
            && self.in_flight.len() < self.in_flight_limit(part_size)
        {
            self.send_current()?;
        }
        Ok(())
    }

    /// Accepts as much of `input` as the budget allows: `Ready(Ok(n))` with `n > 0` (or 0 for an
    /// empty input), or `Pending` when nothing fits, with the waker registered on the part tasks.
    fn poll_accept(&mut self, cx: &mut Context<'_>, input: &mut impl Input) -> Poll<Result<usize>> {
        ready!(self.poll_writable(cx))?;
        if let Err(error) = self.poll_parts(cx) {
            return self.poll_fail(cx, error);
        }
        let mut written = 0usize;
        loop {
            let part_size = self.plan.part_size(self.part_number);
            let len = self.current.len() as u64;
            let last_plan_part = self.part_number >= self.plan.max_parts();
            let sent = if len >= part_size {
                // The part is full.
                if !last_plan_part && self.in_flight.len() < self.in_flight_limit(part_size) {
                    self.send_current().map(|()| true)
                } else if input.remaining() == 0 {
                    break;
                } else if last_plan_part {
                    // The plan's last part can only be the object's last: refuse before sending
                    // a part the upload could never complete.
                    Err(self.too_large_error())
                } else {
                    Ok(false)
                }
            } else if input.remaining() == 0 {
                break;
            } else if len == 0
                && input.can_split()
                && input.remaining() as u64 >= part_size
                && !last_plan_part
            {
                // A whole part of the caller's `Bytes`: no copy.
                if self.in_flight.len() < self.in_flight_limit(part_size)
                    && self.reserve_zero_copy(part_size)
                {
                    let body = input.split_part(part_size as usize);
                    let crc = crc64::checksum(&body);
                    self.accepted += part_size;
                    written += part_size as usize;
                    self.send_part(body, crc, part_size, false).map(|()| true)
                } else {
                    Ok(false)
                }
            } else if self.reserve_current(part_size, input.remaining()) {
                let room = (part_size - len).min((self.current.capacity() - len as usize) as u64);
                let n = (room as usize).min(input.remaining());
                for block in input.chunk()[..n].chunks(COPY_BLOCK) {
                    self.current_crc.update(block);
                    self.current.extend_from_slice(block);
                }
                input.consume(n);
                self.accepted += n as u64;
                written += n;
                Ok(true)
            } else {
                Ok(false)
            };
            match sent {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    self.fail(error);
                    if written > 0 {
                        break;
                    }
                    return self.poll_failure(cx).map(Err);
                }
            }
            // Blocked on a free slot or on memory. Never wait once bytes were accepted.
            if written > 0 {
                break;
            }
            ready!(self.poll_blocked(cx))?;
        }
        self.publish(false);
        Poll::Ready(Ok(written))
    }

    /// Blocked on a free slot or on memory: `Ready(Ok(()))` once a part finished (try again),
    /// `Pending` with the waker registered on the parts in flight, or the latched failure.
    fn poll_blocked(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match self.poll_parts(cx) {
            Ok(true) => Poll::Ready(Ok(())),
            Ok(false) => {
                // A part in flight will wake us: with none, the budget always has room.
                debug_assert!(!self.in_flight.is_empty(), "pending with nothing in flight");
                Poll::Pending
            }
            Err(error) => self.poll_fail(cx, error),
        }
    }

    /// One read from `reader` into the part being filled: `Ready(Ok(n))` with the bytes read
    /// (0 at the end of the reader), or `Pending` while the reader or the budget is not ready.
    fn poll_read_from<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut reader: Pin<&mut R>,
    ) -> Poll<Result<usize>>
    where
        R: tokio::io::AsyncRead + ?Sized,
    {
        ready!(self.poll_writable(cx))?;
        if let Err(error) = self.poll_parts(cx) {
            return self.poll_fail(cx, error);
        }
        loop {
            let part_size = self.plan.part_size(self.part_number);
            let len = self.current.len() as u64;
            let last_plan_part = self.part_number >= self.plan.max_parts();
            let ready_to_read = if len >= part_size {
                if last_plan_part {
                    // The plan's last part is full: fine if the reader is at its end too.
                    let mut probe = [0u8; 1];
                    let mut probe = tokio::io::ReadBuf::new(&mut probe);
                    ready!(reader.as_mut().poll_read(cx, &mut probe)).map_err(read_error)?;
                    if probe.filled().is_empty() {
                        return Poll::Ready(Ok(0));
                    }
                    let error = self.too_large_error();
                    return self.poll_fail(cx, error);
                }
                if self.in_flight.len() < self.in_flight_limit(part_size) {
                    if let Err(error) = self.send_current() {
                        return self.poll_fail(cx, error);
                    }
                    continue;
                }
                false
            } else {
                self.reserve_current(part_size, READ_FROM_BYTES)
            };
            if ready_to_read {
                break;
            }
            ready!(self.poll_blocked(cx))?;
        }
        let start = self.current.len();
        let part_size = self.plan.part_size(self.part_number);
        let room = (part_size as usize - start)
            .min(self.current.capacity() - start)
            .min(READ_FROM_BYTES);
        // `Limit` keeps the read within the part and the buffer's capacity (no reallocation).
        let mut window = bytes::BufMut::limit(&mut self.current, room);
        let read =
            ready!(tokio_util::io::poll_read_buf(reader, cx, &mut window)).map_err(read_error)?;
        if read > 0 {
            self.current_crc.update(&self.current[start..]);
            self.accepted += read as u64;
            self.publish(false);
        }
        Poll::Ready(Ok(read))
    }

    fn poll_sync_durable(&mut self, cx: &mut Context<'_>, cut_tail: bool) -> Poll<Result<u64>> {
        if matches!(self.state, State::Done) {
            return Poll::Ready(Ok(self.durable));
        }
        ready!(self.poll_writable(cx))?;
        loop {
            let progressed = match self.poll_parts(cx) {
                Ok(progressed) => progressed,
                Err(error) => {
                    return self.poll_fail(cx, error);
                }
            };
            let part_size = self.plan.part_size(self.part_number);
            let len = self.current.len() as u64;
            let wants_send = self.part_number < self.plan.max_parts()
                && len > 0
                && (len >= part_size || (cut_tail && len >= self.plan.min_part_size()));
            if wants_send && self.in_flight.len() < self.in_flight_limit(part_size) {
                if let Err(error) = self.send_current() {
                    return self.poll_fail(cx, error);
                }
                continue;
            }
            if !wants_send && self.in_flight.is_empty() {
                self.publish(true);
                return Poll::Ready(Ok(self.durable));
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }

    /// Checks the parts and starts Complete (or, for an upload with no parts at all, puts an
    /// empty object and aborts the upload).
    fn start_completion(&mut self) -> Result<State> {
        let count = self.part_number - 1;
        if !self.receipts.keys().copied().eq(1..=count) {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                format!(
                    "the acknowledged parts are not exactly 1..={count}: {:?}",
                    self.receipts.keys().collect::<Vec<_>>()
                ),
            ));
        }
        let size: u64 = self.receipts.values().map(|part| part.size).sum();
        if size != self.accepted {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                format!(
                    "the acknowledged parts hold {size} bytes, not the {} accepted",
                    self.accepted
                ),
            ));
        }
        let crc = self
            .receipts
            .values()
            .fold(0, |crc, part| crc64::combine(crc, part.crc64, part.size));
        self.object_crc = crc;
        let Some(upload_id) = self.upload_id().map(Arc::<str>::from) else {
            return Err(Error::new(
                ErrorKind::Io,
                "parts were acknowledged without an upload id",
            ));
        };
        let common = self.common.clone();
        if count == 0 {
            // A resumed upload with no parts and no new bytes: OSS's answer to a zero-part
            // Complete is not documented, so put an empty object and drop the upload.
            return Ok(State::Putting(
                async move {
                    let receipt = put_object(common.clone(), Bytes::new(), 0).await?;
                    let _ = common.target.abort(&common.key, &upload_id).await;
                    Ok(receipt)
                }
                .boxed(),
            ));
        }
        let parts: Vec<PartReceipt> = self.receipts.values().cloned().collect();
        let completing = {
            let common = common.clone();
            async move {
                let inner = complete_upload(common.clone(), upload_id.clone(), parts, size, crc);
                common
                    .within_deadline(inner)
                    .await
                    .map_err(|e| e.with_upload_id(&*upload_id))
            }
        };
        Ok(State::Completing(completing.boxed()))
    }

    fn finish(&mut self, receipt: ObjectReceipt) {
        let upload_id = match self.state {
            State::Completing(_) => self.upload_id().map(str::to_owned),
            _ => None,
        };
        self.outcome = Some(UploadOutcome {
            key: self.common.key.clone(),
            etag: receipt.etag,
            size: self.accepted,
            parts: if upload_id.is_some() {
                self.receipts.len() as u32
            } else {
                0
            },
            crc64: self.object_crc,
            upload_id,
            callback_body: receipt.callback_body,
        });
        self.state = State::Done;
        self.durable = self.accepted;
        self.current = BytesMut::new();
        self.pool.clear();
        self.publish(true);
    }

    fn poll_flush_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match &mut self.state {
            State::Writing => {}
            State::Resuming(_) => match self.poll_writable(cx) {
                // Move the listing along, but never wait for it here.
                Poll::Pending if matches!(self.state, State::Resuming(_)) => {
                    return Poll::Ready(Ok(()))
                }
                // The listing failed and the failure is being latched.
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Ready(Ok(())) => {}
            },
            State::Aborting { .. } | State::Failed(_) => return self.poll_failure(cx).map(Err),
            _ => return Poll::Ready(Ok(())),
        }
        if let Err(error) = self.poll_parts(cx).and_then(|_| self.send_if_full()) {
            return self.poll_fail(cx, error);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            match &mut self.state {
                State::Resuming(_) => ready!(self.poll_writable(cx))?,
                State::Writing => {
                    if let Err(error) = self.poll_parts(cx) {
                        self.fail(error);
                        continue;
                    }
                    if self.upload.is_none() {
                        // The stream ended before its first part was sent: one PutObject.
                        let body = mem::take(&mut self.current).freeze();
                        let crc = mem::take(&mut self.current_crc).value();
                        self.object_crc = crc;
                        self.state =
                            State::Putting(put_object(self.common.clone(), body, crc).boxed());
                        continue;
                    }
                    if !self.current.is_empty() {
                        let part_size = self.plan.part_size(self.part_number);
                        if self.in_flight.len() < self.in_flight_limit(part_size) {
                            if let Err(error) = self.send_current() {
                                self.fail(error);
                            }
                            continue;
                        }
                        match self.poll_parts(cx) {
                            Ok(true) => continue,
                            Ok(false) => return Poll::Pending,
                            Err(error) => {
                                self.fail(error);
                                continue;
                            }
                        }
                    }
                    self.state = State::Draining;
                }
                State::Draining => {
                    if let Err(error) = self.poll_parts(cx) {
                        self.fail(error);
                        continue;
                    }
                    if !self.in_flight.is_empty() {
                        return Poll::Pending;
                    }
                    match self.start_completion() {
                        Ok(state) => self.state = state,
                        Err(error) => self.fail(error),
                    }
                }
                State::Putting(future) | State::Completing(future) => {
                    let result = ready!(future.poll_unpin(cx));
                    match result {
                        Ok(receipt) => self.finish(receipt),
                        Err(error) => self.fail(error),
                    }
                }
                State::Done => return Poll::Ready(Ok(())),
                State::Aborting { .. } | State::Failed(_) => return self.poll_failure(cx).map(Err),
            }
        }
    }
}

fn start_upload(common: Arc<Common>) -> UploadId {
    async move {
        let common = &common;
        common
            .within_deadline(common.with_attempts("InitiateMultipartUpload", || {
                common.target.initiate(&common.key, &common.options)
            }))
            .await
            .map_err(|e| context(e, Operation::InitiateMultipartUpload, None))
            .map(Arc::<str>::from)
            .map_err(Arc::new)
    }
    .boxed()
    .shared()
}

impl AsyncWrite for ObjectWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_accept(cx, &mut SliceInput(buf))
            .map_err(io::Error::from)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_inner(cx).map_err(io::Error::from)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_shutdown_inner(cx)
            .map_err(io::Error::from)
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        let upload_id = self.upload_id().map(str::to_owned);
        let abort = match mem::replace(&mut self.state, State::Done) {
            State::Done | State::Failed(_) => return,
            State::Aborting { abort, .. } => abort,
            _ => {
                let Some(upload) = self.upload.take() else {
                    // No multipart upload was started (or a resumed one was not listed yet):
                    // nothing to clean up.
                    return;
                };
                if self.keep_parts_on_drop {
                    // Let the parts in flight finish: more of the stream survives for a resume.
                    self.in_flight.detach_all();
                    match &upload_id {
                        Some(id) => tracing::warn!(
                            key = %self.common.key,
                            "writer dropped before shutdown; kept the parts of upload {id} (resume it, or clean it up with `{}`)",
                            self.common.cleanup_command(id)
                        ),
                        None => tracing::warn!(
                            key = %self.common.key,
                            "writer dropped before Initiate answered; an upload may be left: list it with ListMultipartUploads"
                        ),
                    }
                    return;
                }
                abort_upload(
                    self.common.clone(),
                    Some(upload),
                    mem::take(&mut self.in_flight),
                )
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                tracing::info!(
                    key = %self.common.key,
                    "writer dropped before shutdown; aborting upload {} in the background",
                    upload_id.as_deref().unwrap_or("(initiating)")
                );
                runtime.spawn(abort);
            }
            Err(_) => match &upload_id {
                Some(id) => tracing::warn!(
                    key = %self.common.key,
                    "writer dropped outside a tokio runtime; upload {id} is left: clean it up with `{}`",
                    self.common.cleanup_command(id)
                ),
                None => tracing::warn!(
                    key = %self.common.key,
                    "writer dropped outside a tokio runtime; an upload may be left: list it with ListMultipartUploads"
                ),
            },
        }
    }
}
