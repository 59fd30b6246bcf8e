//! An in-memory [`MultipartTarget`] that records every call and can script any fault.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;

use crate::crc64;
use crate::error::ServiceError;
use crate::limits::{MAX_PART_NUMBER, MAX_PUT_OBJECT_SIZE, MIN_PART_SIZE};
use crate::target::{MultipartTarget, ObjectHead, ObjectOptions, ObjectReceipt, PartReceipt};
use crate::{Error, Operation, Result};

/// One call a [`MemoryTarget`] received, in arrival order (failed calls included).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Call {
    /// Which operation.
    pub operation: Operation,
    /// The object key.
    pub key: String,
    /// The upload id, for multipart operations after Initiate.
    pub upload_id: Option<String>,
    /// The part number, for UploadPart.
    pub part_number: Option<u32>,
    /// The body's length, for PutObject and UploadPart.
    pub size: Option<u64>,
    /// The object options, for PutObject, Initiate and Complete.
    pub options: Option<ObjectOptions>,
    /// The part numbers listed, for Complete.
    pub parts: Vec<u32>,
}

impl Call {
    fn new(operation: Operation, key: &str) -> Self {
        Self {
            operation,
            key: key.to_owned(),
            upload_id: None,
            part_number: None,
            size: None,
            options: None,
            parts: Vec::new(),
        }
    }
}

/// An object stored by a [`MemoryTarget`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredObject {
    /// The object's bytes.
    pub body: Bytes,
    /// Its ETag (derived from the CRC: `"<16 hex>"`, or `"<16 hex>-<parts>"` for multipart).
    pub etag: String,
    /// Its CRC-64.
    pub crc64: u64,
    /// The options it was written with (Initiate's, for multipart objects).
    pub options: ObjectOptions,
    /// The sizes of the parts it was completed from, in order; empty for PutObject.
    pub part_sizes: Vec<u64>,
}

/// A scripted fault for [`MemoryTarget::inject`]: fail, delay, or report a wrong CRC-64 for calls
/// of one operation, optionally narrowed to one call, one part, a seeded fraction of calls, or a
/// number of times.
///
/// ```
/// use osspipe::Operation;
/// use osspipe::upload::{Fault, MemoryTarget};
///
/// let target = MemoryTarget::new();
/// // The 3rd UploadPart call fails with a 503, once.
/// target.inject(
///     Fault::fail(Operation::UploadPart, || MemoryTarget::service_error(503, "ServiceUnavailable"))
///         .on_call(3),
/// );
/// ```
#[derive(Clone)]
pub struct Fault {
    operation: Operation,
    action: FaultAction,
    on_call: Option<u32>,
    on_part: Option<u32>,
    probability: Option<(f64, fastrand::Rng)>,
    remaining: Option<u32>,
}

#[derive(Clone)]
enum FaultAction {
    Fail {
        make: Arc<dyn Fn() -> Error + Send + Sync>,
        after_effect: bool,
    },
    Delay(Duration),
    WrongCrc,
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match &self.action {
            FaultAction::Fail { after_effect, .. } => format!("fail(after_effect: {after_effect})"),
            FaultAction::Delay(delay) => format!("delay({delay:?})"),
            FaultAction::WrongCrc => "wrong_crc".to_owned(),
        };
        f.debug_struct("Fault")
            .field("operation", &self.operation)
            .field("action", &action)
            .field("on_call", &self.on_call)
            .field("on_part", &self.on_part)
            .field("probability", &self.probability.as_ref().map(|(p, _)| p))
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl Fault {
    fn with_action(operation: Operation, action: FaultAction) -> Self {
        Self {
            operation,
            action,
            on_call: None,
            on_part: None,
            probability: None,
            remaining: None,
        }
    }

    /// Calls of `operation` fail with the error `make` builds (before taking effect).
    pub fn fail(operation: Operation, make: impl Fn() -> Error + Send + Sync + 'static) -> Self {
        Self::with_action(
            operation,
            FaultAction::Fail {
                make: Arc::new(make),
                after_effect: false,
            },
        )
    }

    /// Calls of `operation` wait `delay` before doing anything.
    pub fn delay(operation: Operation, delay: Duration) -> Self {
        Self::with_action(operation, FaultAction::Delay(delay))
    }

    /// Calls of `operation` succeed but report a CRC-64 off by one (PutObject, UploadPart,
    /// Complete), as a server that stored corrupted bytes would.
    pub fn wrong_crc(operation: Operation) -> Self {
        Self::with_action(operation, FaultAction::WrongCrc)
    }

    /// Only the `n`th call (1-based, counting every call of the operation) is affected.
    pub fn on_call(mut self, n: u32) -> Self {
        self.on_call = Some(n);
        self
    }

    /// Only calls for part `part_number` are affected (UploadPart).
    pub fn on_part(mut self, part_number: u32) -> Self {
        self.on_part = Some(part_number);
        self
    }

    /// Each matching call is affected with `probability` (0.0-1.0), drawn from an RNG seeded with
    /// `seed` so that a failing run can be replayed.
    pub fn with_probability(mut self, probability: f64, seed: u64) -> Self {
        self.probability = Some((probability, fastrand::Rng::with_seed(seed)));
        self
    }

    /// The fault fires at most `n` times.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// A failing call takes effect first and then reports the error, as when a response is lost
    /// on its way back (the part is stored, the object is completed, ...).
    pub fn after_effect(mut self) -> Self {
        if let FaultAction::Fail { after_effect, .. } = &mut self.action {
            *after_effect = true;
        }
        self
    }
}

/// Holds calls of one operation until the test lets them through; from [`MemoryTarget::gate`].
///
/// Each call waits for a permit from [`release`](Self::release); [`open`](Self::open) lets every
/// call through for good.
#[derive(Debug, Clone)]
pub struct Gate {
    semaphore: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    passed: Arc<AtomicUsize>,
}

impl Gate {
    fn new() -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(0)),
            waiting: Arc::new(AtomicUsize::new(0)),
            passed: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Lets `calls` more calls through.
    pub fn release(&self, calls: usize) {
        self.semaphore.add_permits(calls);
    }

    /// Lets every waiting and future call through.
    pub fn open(&self) {
        self.semaphore.close();
    }

    /// How many calls are waiting at the gate now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// How many calls have passed the gate.
    pub fn passed(&self) -> usize {
        self.passed.load(Ordering::SeqCst)
    }

    async fn pass(&self) {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let guard = Waiting(&self.waiting);
        if let Ok(permit) = self.semaphore.acquire().await {
            permit.forget();
        }
        drop(guard);
        self.passed.fetch_add(1, Ordering::SeqCst);
    }
}

/// A [`MultipartTarget`] in memory, for tests and fuzzing.
///
/// It behaves like OSS where the writer can tell: upload ids, parts replaced by re-upload,
/// Complete checking part order, ETags and the minimum part size, `NoSuchUpload` after Complete or
/// Abort, `x-oss-forbid-overwrite`. It records every [`Call`], keeps completed objects (read them
/// back with [`object`](Self::object)), tracks the peak of part bytes in flight, and scripts
/// faults ([`inject`](Self::inject), [`gate`](Self::gate)). Bodies are copied on arrival, as a
/// server would, so the writer can reuse its buffers. It never retries.
pub struct MemoryTarget {
    store: Mutex<Store>,
    faults: Mutex<Vec<Fault>>,
    gates: Mutex<HashMap<Operation, Gate>>,
    min_part_size: u64,
}

#[derive(Default)]
struct Store {
    calls: Vec<Call>,
    objects: HashMap<String, StoredObject>,
    uploads: BTreeMap<String, StoredUpload>,
    uploads_started: u64,
    parts_in_flight: usize,
    bytes_in_flight: u64,
    peak_parts_in_flight: usize,
    peak_bytes_in_flight: u64,
}

struct StoredUpload {
    key: String,
    options: ObjectOptions,
    parts: BTreeMap<u32, (PartReceipt, Bytes)>,
}

#[derive(Default)]
struct Directives {
    error: Option<Error>,
    after_effect: bool,
    wrong_crc: bool,
}

impl Directives {
    fn fail_before(&mut self) -> Result<()> {
        match self.error.take_if(|_| !self.after_effect) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn fail_after(&mut self) -> Result<()> {
        match self.error.take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn crc(&self, crc: u64) -> u64 {
        if self.wrong_crc {
            crc.wrapping_add(1)
        } else {
            crc
        }
    }
}

impl fmt::Debug for MemoryTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let store = self.lock();
        f.debug_struct("MemoryTarget")
            .field("calls", &store.calls.len())
            .field("objects", &store.objects.len())
            .field("uploads", &store.uploads.len())
            .field("min_part_size", &self.min_part_size)
            .finish()
    }
}

impl Default for MemoryTarget {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts a part as in flight from the moment the call starts until it returns or is dropped.
struct InFlight<'a> {
    target: &'a MemoryTarget,
    size: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut store = self.target.lock();
        store.parts_in_flight -= 1;
        store.bytes_in_flight -= self.size;
    }
}

impl MemoryTarget {
    /// An empty target that enforces OSS's 100 KB minimum for every part but the last.
    pub fn new() -> Self {
        Self::with_min_part_size(MIN_PART_SIZE)
    }

    /// An empty target whose Complete requires every part but the last to be at least
    /// `min_part_size` bytes (use small values with [`PartSizePlan::unchecked`](super::PartSizePlan::unchecked)).
    pub fn with_min_part_size(min_part_size: u64) -> Self {
        Self {
            store: Mutex::new(Store::default()),
            faults: Mutex::new(Vec::new()),
            gates: Mutex::new(HashMap::new()),
            min_part_size,
        }
    }

    /// An OSS-style service error with `status` and `code` (message "injected fault"), for
    /// [`Fault::fail`].
    pub fn service_error(status: u16, code: &str) -> Error {
        Error::service(ServiceError {
            status,
            code: code.to_owned(),
            message: "injected fault".to_owned(),
            request_id: "MEMORY".to_owned(),
            ..ServiceError::default()
        })
    }

    /// Adds a scripted fault; faults apply in the order they were added.
    pub fn inject(&self, fault: Fault) {
        lock(&self.faults).push(fault);
    }

    /// Removes every scripted fault (gates stay).
    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// The gate for `operation`: from now on every call of it waits for a permit.
    pub fn gate(&self, operation: Operation) -> Gate {
        lock(&self.gates)
            .entry(operation)
            .or_insert_with(Gate::new)
            .clone()
    }

    /// A stored object.
    pub fn object(&self, key: &str) -> Option<StoredObject> {
        self.lock().objects.get(key).cloned()
    }

    /// Stores an object directly, as if another client had written it.
    pub fn insert_object(&self, key: &str, body: Bytes) {
        let crc = crc64::checksum(&body);
        self.lock().objects.insert(
            key.to_owned(),
            StoredObject {
                body,
                etag: format!("\"{crc:016X}\""),
                crc64: crc,
                options: ObjectOptions::default(),
                part_sizes: Vec::new(),
            },
        );
    }

    /// Multipart uploads in progress, as `(key, upload_id)`.
    pub fn uploads(&self) -> Vec<(String, String)> {
        self.lock()
            .uploads
            .iter()
            .map(|(id, upload)| (upload.key.clone(), id.clone()))
            .collect()
    }

    /// The parts of an upload in progress.
    pub fn parts(&self, upload_id: &str) -> Option<Vec<PartReceipt>> {
        self.lock().uploads.get(upload_id).map(|upload| {
            upload
                .parts
                .values()
                .map(|(receipt, _)| receipt.clone())
                .collect()
        })
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many calls of `operation` arrived.
    pub fn count(&self, operation: Operation) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|call| call.operation == operation)
            .count()
    }

    /// The most UploadPart calls that were in progress at once.
    pub fn peak_parts_in_flight(&self) -> usize {
        self.lock().peak_parts_in_flight
    }

    /// The most UploadPart body bytes that were in progress at once.
    pub fn peak_bytes_in_flight(&self) -> u64 {
        self.lock().peak_bytes_in_flight
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Records the call, waits at its gate and its delays, and says which faults apply.
    async fn enter(&self, call: Call) -> Directives {
        let operation = call.operation;
        let part_number = call.part_number;
        let call_number = {
            let mut store = self.lock();
            store.calls.push(call);
            store
                .calls
                .iter()
                .filter(|c| c.operation == operation)
                .count() as u32
        };
        let gate = lock(&self.gates).get(&operation).cloned();
        if let Some(gate) = gate {
            gate.pass().await;
        }
        let mut directives = Directives::default();
        let mut delay = Duration::ZERO;
        for fault in lock(&self.faults).iter_mut() {
            if fault.operation != operation
                || fault.on_call.is_some_and(|n| n != call_number)
                || fault.on_part.is_some_and(|n| Some(n) != part_number)
                || fault.remaining == Some(0)
            {
                continue;
            }
            if let Some((probability, rng)) = &mut fault.probability {
                if rng.f64() >= *probability {
                    continue;
                }
            }
            if let Some(remaining) = &mut fault.remaining {
                *remaining -= 1;
            }
            match &fault.action {
                FaultAction::Fail { make, after_effect } => {
                    if directives.error.is_none() {
                        directives.error = Some(make());
                        directives.after_effect = *after_effect;
                    }
                }
                FaultAction::Delay(d) => delay += *d,
                FaultAction::WrongCrc => directives.wrong_crc = true,
            }
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        directives
    }

    fn error(
        operation: Operation,
        key: &str,
        status: u16,
        code: &str,
        message: impl Into<String>,
    ) -> Error {
        Error::service(ServiceError {
            status,
            code: code.to_owned(),
            message: message.into(),
            request_id: "MEMORY".to_owned(),
            ..ServiceError::default()
        })
        .with_operation(operation)
        .with_key(key)
    }

    fn no_such_upload(operation: Operation, key: &str, upload_id: &str) -> Error {
        Self::error(
            operation,
            key,
            404,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
        .with_upload_id(upload_id)
    }

    fn upload<'a>(
        store: &'a mut Store,
        operation: Operation,
        key: &str,
        upload_id: &str,
    ) -> Result<&'a mut StoredUpload> {
        match store.uploads.get_mut(upload_id) {
            Some(upload) if upload.key == key => Ok(upload),
            _ => Err(Self::no_such_upload(operation, key, upload_id)),
        }
    }

    fn check_overwrite(
        store: &Store,
        operation: Operation,
        key: &str,
        forbid_overwrite: bool,
    ) -> Result<()> {
        if forbid_overwrite && store.objects.contains_key(key) {
            return Err(Self::error(
                operation,
                key,
                409,
                "FileAlreadyExists",
                "The object you specified already exists and can not be overwritten.",
            ));
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide every later assertion behind a poisoned lock.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl MultipartTarget for MemoryTarget {
    async fn put_object(
        &self,
        key: &str,
        body: Bytes,
        options: &ObjectOptions,
    ) -> Result<ObjectReceipt> {
        let operation = Operation::PutObject;
        let mut call = Call::new(operation, key);
        call.size = Some(body.len() as u64);
        call.options = Some(options.clone());
        let mut directives = self.enter(call).await;
        directives.fail_before()?;
        let crc = crc64::checksum(&body);
        let etag = format!("\"{crc:016X}\"");
        {
            let mut store = self.lock();
            if body.len() as u64 > MAX_PUT_OBJECT_SIZE {
                return Err(Self::error(
                    operation,
                    key,
                    400,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size.",
                ));
            }
            Self::check_overwrite(&store, operation, key, options.forbid_overwrite)?;
            store.objects.insert(
                key.to_owned(),
                StoredObject {
                    body: Bytes::copy_from_slice(&body),
                    etag: etag.clone(),
                    crc64: crc,
                    options: options.clone(),
                    part_sizes: Vec::new(),
                },
            );
        }
        directives.fail_after()?;
        Ok(ObjectReceipt {
            etag,
            crc64: Some(directives.crc(crc)),
            callback_body: None,
        })
    }

    async fn initiate(&self, key: &str, options: &ObjectOptions) -> Result<String> {
        let operation = Operation::InitiateMultipartUpload;
        let mut call = Call::new(operation, key);
        call.options = Some(options.clone());
        let mut directives = self.enter(call).await;
        directives.fail_before()?;
        let upload_id = {
            let mut store = self.lock();
            Self::check_overwrite(&store, operation, key, options.forbid_overwrite)?;
            store.uploads_started += 1;
            let upload_id = format!("{:032X}", store.uploads_started);
            store.uploads.insert(
                upload_id.clone(),
                StoredUpload {
                    key: key.to_owned(),
                    options: options.clone(),
                    parts: BTreeMap::new(),
                },
            );
            upload_id
        };
        directives.fail_after()?;
        Ok(upload_id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> Result<PartReceipt> {
        let operation = Operation::UploadPart;
        let size = body.len() as u64;
        let _in_flight = {
            let mut store = self.lock();
            store.parts_in_flight += 1;
            store.bytes_in_flight += size;
            store.peak_parts_in_flight = store.peak_parts_in_flight.max(store.parts_in_flight);
            store.peak_bytes_in_flight = store.peak_bytes_in_flight.max(store.bytes_in_flight);
            InFlight { target: self, size }
        };
        let mut call = Call::new(operation, key);
        call.upload_id = Some(upload_id.to_owned());
        call.part_number = Some(part_number);
        call.size = Some(size);
        let mut directives = self.enter(call).await;
        directives.fail_before()?;
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(Self::error(
                operation,
                key,
                400,
                "InvalidArgument",
                "Part number must be an integer between 1 and 10000, inclusive.",
            )
            .with_part_number(part_number));
        }
        let crc = crc64::checksum(&body);
        let receipt = PartReceipt {
            part_number,
            etag: format!("\"{crc:016X}\""),
            crc64: crc,
            size,
        };
        {
            let mut store = self.lock();
            let upload = Self::upload(&mut store, operation, key, upload_id)
                .map_err(|e| e.with_part_number(part_number))?;
            upload.parts.insert(
                part_number,
                (receipt.clone(), Bytes::copy_from_slice(&body)),
            );
        }
        directives.fail_after()?;
        Ok(PartReceipt {
            crc64: directives.crc(crc),
            ..receipt
        })
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartReceipt],
        options: &ObjectOptions,
    ) -> Result<ObjectReceipt> {
        let operation = Operation::CompleteMultipartUpload;
        let mut call = Call::new(operation, key);
        call.upload_id = Some(upload_id.to_owned());
        call.options = Some(options.clone());
        call.parts = parts.iter().map(|p| p.part_number).collect();
        let mut directives = self.enter(call).await;
        directives.fail_before()?;
        let receipt = {
            let mut store = self.lock();
            let upload = Self::upload(&mut store, operation, key, upload_id)?;
            if parts.is_empty() {
                return Err(Self::error(
                    operation,
                    key,
                    400,
                    "MalformedXML",
                    "a Complete with no parts (the writer puts empty objects instead)",
                ));
            }
            if parts
                .windows(2)
                .any(|w| w[0].part_number >= w[1].part_number)
            {
                return Err(Self::error(
                    operation,
                    key,
                    400,
                    "InvalidPartOrder",
                    "The list of parts was not in ascending order. Parts list must be specified in order by part number.",
                ));
            }
            let mut body = BytesMut::new();
            let mut crc = 0u64;
            let mut part_sizes = Vec::with_capacity(parts.len());
            for (index, part) in parts.iter().enumerate() {
                let stored = upload.parts.get(&part.part_number).filter(|(stored, _)| {
                    stored
                        .etag
                        .trim_matches('"')
                        .eq_ignore_ascii_case(part.etag.trim_matches('"'))
                });
                let Some((stored, bytes)) = stored else {
                    return Err(Self::error(
                        operation,
                        key,
                        400,
                        "InvalidPart",
                        "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.",
                    ));
                };
                if index + 1 < parts.len() && stored.size < self.min_part_size {
                    return Err(Self::error(
                        operation,
                        key,
                        400,
                        "EntityTooSmall",
                        "Your proposed upload is smaller than the minimum allowed size.",
                    ));
                }
                body.extend_from_slice(bytes);
                crc = crc64::combine(crc, stored.crc64, stored.size);
                part_sizes.push(stored.size);
            }
            let forbid = options.forbid_overwrite || upload.options.forbid_overwrite;
            let initiate_options = upload.options.clone();
            Self::check_overwrite(&store, operation, key, forbid)?;
            store.uploads.remove(upload_id);
            let etag = format!("\"{crc:016X}-{}\"", parts.len());
            store.objects.insert(
                key.to_owned(),
                StoredObject {
                    body: body.freeze(),
                    etag: etag.clone(),
                    crc64: crc,
                    options: initiate_options,
                    part_sizes,
                },
            );
            ObjectReceipt {
                etag,
                crc64: Some(directives.crc(crc)),
                callback_body: None,
            }
        };
        directives.fail_after()?;
        Ok(receipt)
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<()> {
        let operation = Operation::AbortMultipartUpload;
        let mut call = Call::new(operation, key);
        call.upload_id = Some(upload_id.to_owned());
        let mut directives = self.enter(call).await;
        directives.fail_before()?;
        {
            let mut store = self.lock();
            Self::upload(&mut store, operation, key, upload_id)?;
            store.uploads.remove(upload_id);
        }
        directives.fail_after()
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<PartReceipt>> {
        let operation = Operation::ListParts;
        let mut call = Call::new(operation, key);
        call.upload_id = Some(upload_id.to_owned());
        let mut directives = self.enter(call).await;
        directives.fail_before()?;
        let parts = {
            let mut store = self.lock();
            let upload = Self::upload(&mut store, operation, key, upload_id)?;
            upload
                .parts
                .values()
                .map(|(receipt, _)| receipt.clone())
                .collect()
        };
        directives.fail_after()?;
        Ok(parts)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>> {
        let mut directives = self.enter(Call::new(Operation::HeadObject, key)).await;
        directives.fail_before()?;
        let head = self.lock().objects.get(key).map(|object| ObjectHead {
            size: object.body.len() as u64,
            etag: object.etag.clone(),
            crc64: Some(directives.crc(object.crc64)),
            object_type: Some(
                if object.part_sizes.is_empty() {
                    "Normal"
                } else {
                    "Multipart"
                }
                .to_owned(),
            ),
        });
        directives.fail_after()?;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(target_parts: &[PartReceipt], n: u32) -> PartReceipt {
        target_parts[n as usize - 1].clone()
    }

    #[tokio::test]
    async fn multipart_round_trip_and_oss_checks() {
        let target = MemoryTarget::with_min_part_size(3);
        let options = ObjectOptions::default();
        let id = target.initiate("k", &options).await.unwrap();
        let p1 = target
            .upload_part("k", &id, 1, Bytes::from_static(b"abc"))
            .await
            .unwrap();
        let p2 = target
            .upload_part("k", &id, 2, Bytes::from_static(b"de"))
            .await
            .unwrap();
        assert_eq!(p1.crc64, crc64::checksum(b"abc"));
        let listed = target.list_parts("k", &id).await.unwrap();
        assert_eq!(listed, vec![p1.clone(), p2.clone()]);

        let error = target
            .complete("k", &id, &[part(&listed, 2), part(&listed, 1)], &options)
            .await
            .unwrap_err();
        assert_eq!(error.oss_code(), Some("InvalidPartOrder"));
        let error = target
            .complete("k", &id, &[part(&listed, 2), part(&listed, 2)], &options)
            .await
            .unwrap_err();
        assert_eq!(error.oss_code(), Some("InvalidPartOrder"));

        let receipt = target
            .complete("k", &id, &[p1, p2], &options)
            .await
            .unwrap();
        assert_eq!(receipt.crc64, Some(crc64::checksum(b"abcde")));
        let object = target.object("k").unwrap();
        assert_eq!(&object.body[..], b"abcde");
        assert_eq!(object.part_sizes, vec![3, 2]);
        let error = target.abort("k", &id).await.unwrap_err();
        assert_eq!(error.oss_code(), Some("NoSuchUpload"));
        assert!(target.uploads().is_empty());
        let head = target.head("k").await.unwrap().unwrap();
        assert_eq!(head.size, 5);
    }

    #[tokio::test]
    async fn too_small_parts_and_forbid_overwrite() {
        let target = MemoryTarget::with_min_part_size(3);
        let forbid = ObjectOptions {
            forbid_overwrite: true,
            ..ObjectOptions::default()
        };
        let id = target.initiate("k", &forbid).await.unwrap();
        let p1 = target
            .upload_part("k", &id, 1, Bytes::from_static(b"ab"))
            .await
            .unwrap();
        let p2 = target
            .upload_part("k", &id, 2, Bytes::from_static(b"cd"))
            .await
            .unwrap();
        let error = target
            .complete("k", &id, &[p1, p2], &ObjectOptions::default())
            .await
            .unwrap_err();
        assert_eq!(error.oss_code(), Some("EntityTooSmall"));
        target
            .put_object("k", Bytes::new(), &ObjectOptions::default())
            .await
            .unwrap();
        let error = target
            .put_object("k", Bytes::new(), &forbid)
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(409));
    }

    #[tokio::test]
    async fn faults_fire_as_scripted() {
        let target = MemoryTarget::new();
        target.inject(
            Fault::fail(Operation::PutObject, || {
                MemoryTarget::service_error(503, "SlowDown")
            })
            .on_call(2),
        );
        target.inject(
            Fault::fail(Operation::InitiateMultipartUpload, || {
                MemoryTarget::service_error(500, "InternalError")
            })
            .after_effect()
            .times(1),
        );
        target.inject(Fault::wrong_crc(Operation::HeadObject));
        let options = ObjectOptions::default();
        target
            .put_object("a", Bytes::from_static(b"x"), &options)
            .await
            .unwrap();
        let error = target
            .put_object("a", Bytes::from_static(b"x"), &options)
            .await
            .unwrap_err();
        assert_eq!(error.oss_code(), Some("SlowDown"));
        target
            .put_object("a", Bytes::from_static(b"x"), &options)
            .await
            .unwrap();
        // After effect: the upload exists although the caller saw an error.
        assert!(target.initiate("b", &options).await.is_err());
        assert_eq!(target.uploads().len(), 1);
        assert!(target.initiate("b", &options).await.is_ok());
        let head = target.head("a").await.unwrap().unwrap();
        assert_eq!(head.crc64, Some(crc64::checksum(b"x") + 1));
        assert_eq!(target.count(Operation::PutObject), 3);
    }

    #[tokio::test]
    async fn seeded_fraction_is_reproducible() {
        let run = || async {
            let target = MemoryTarget::new();
            target.inject(
                Fault::fail(Operation::HeadObject, || {
                    MemoryTarget::service_error(503, "x")
                })
                .with_probability(0.5, 7),
            );
            let mut outcomes = Vec::new();
            for _ in 0..32 {
                outcomes.push(target.head("k").await.is_ok());
            }
            outcomes
        };
        let first = run().await;
        assert_eq!(first, run().await);
        assert!(first.contains(&true) && first.contains(&false));
    }

    #[tokio::test]
    async fn gate_holds_calls_until_released() {
        let target = Arc::new(MemoryTarget::new());
        let gate = target.gate(Operation::HeadObject);
        let task = tokio::spawn({
            let target = target.clone();
            async move { target.head("k").await }
        });
        while gate.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(!task.is_finished());
        gate.release(1);
        assert!(task.await.unwrap().unwrap().is_none());
        assert_eq!(gate.passed(), 1);
        gate.open();
        assert!(target.head("k").await.unwrap().is_none());
    }
}
