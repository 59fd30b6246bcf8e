//! The one private path every request takes: validate, then for each attempt get credentials,
//! build the URL, sign afresh, send, classify, and retry under the policy.
//!
//! A stalled request is caught by an *idle* timeout rather than a total one: the body is fed to
//! the connection in slices and every slice taken (and every response chunk received) counts as
//! progress, so a large part on a slow link is fine while a connection that stops moving fails
//! the attempt with [`ErrorKind::Timeout`], which is retried. reqwest's own `read_timeout` is not
//! used because it runs from the start of the request, upload included.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, Method};
use tokio::time::Instant;

use super::Client;
use crate::crc64::{self, Crc64};
use crate::error::ServiceError;
use crate::sign::{self, SigningParams};
use crate::{limits, xml, Error, ErrorKind, Operation, Result};

/// Request bodies are handed to the connection in slices of this size (zero-copy
/// [`Bytes::slice`]s); each slice taken is progress for the idle timeout.
const BODY_SLICE_BYTES: usize = 64 * 1024;

/// The most of an error body that is read; real ones are under 1 KiB.
const MAX_ERROR_READ_BYTES: usize = xml::MAX_ERROR_BODY_BYTES;

/// The response header carrying OSS's CRC-64 of what it stored.
pub(crate) const CRC64_HEADER: &str = "x-oss-hash-crc64ecma";

/// What to do with a successful response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseMode {
    /// Read the whole body (at most this many bytes) inside the attempt.
    Buffered(usize),
    /// Hand the response back with its body unread (GetObject).
    Streaming,
}

/// One OSS request, kept whole so every attempt can rebuild and re-sign it.
#[derive(Debug)]
pub(crate) struct OssRequest<'a> {
    pub(crate) operation: Operation,
    pub(crate) method: Method,
    pub(crate) bucket: &'a str,
    pub(crate) key: Option<&'a str>,
    /// Decoded query pairs; an empty value is a value-less sub-resource (`uploads`).
    pub(crate) query: Vec<(String, String)>,
    /// Headers besides the signer's own (`Content-Type`, `Content-MD5`, `x-oss-*`, `Range`).
    pub(crate) headers: HeaderMap,
    /// The body; a retry re-sends the same `Bytes` without copying.
    pub(crate) body: Bytes,
    pub(crate) upload_id: Option<&'a str>,
    pub(crate) part_number: Option<u32>,
    /// If set, the response's `x-oss-hash-crc64ecma` must equal it (PutObject, UploadPart).
    pub(crate) expected_crc64: Option<u64>,
    pub(crate) mode: ResponseMode,
}

impl<'a> OssRequest<'a> {
    pub(crate) fn new(
        operation: Operation,
        method: Method,
        bucket: &'a str,
        key: Option<&'a str>,
    ) -> Self {
        Self {
            operation,
            method,
            bucket,
            key,
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            upload_id: None,
            part_number: None,
            expected_crc64: None,
            mode: ResponseMode::Buffered(xml::MAX_XML_BODY_BYTES),
        }
    }

    pub(crate) fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_owned(), value.into()));
        self
    }

    /// Adds the operation, bucket, key, upload id and part number to an error.
    pub(crate) fn context(&self, error: Error) -> Error {
        let mut error = error
            .with_operation(self.operation)
            .with_bucket(self.bucket);
        if let Some(key) = self.key {
            error = error.with_key(key);
        }
        if let Some(upload_id) = self.upload_id {
            error = error.with_upload_id(upload_id);
        }
        if let Some(part_number) = self.part_number {
            error = error.with_part_number(part_number);
        }
        error
    }

    /// "UploadPart part 17" or "PutObject", for log lines.
    fn describe(&self) -> String {
        match self.part_number {
            Some(part) => format!("{} part {part}", self.operation),
            None => self.operation.to_string(),
        }
    }
}

/// A successful response.
#[derive(Debug)]
pub(crate) struct OssResponse {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: HeaderMap,
    /// The body in [`ResponseMode::Buffered`]; empty when streaming.
    pub(crate) body: Bytes,
    /// The unread response in [`ResponseMode::Streaming`].
    pub(crate) streaming: Option<reqwest::Response>,
}

/// When the request last made progress.
#[derive(Debug)]
struct Progress {
    last: Mutex<Instant>,
}

impl Progress {
    fn new() -> Self {
        Self {
            last: Mutex::new(Instant::now()),
        }
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once `idle` has passed with no progress.
    async fn stalled(&self, idle: Duration) {
        loop {
            let deadline = self.last() + idle;
            tokio::time::sleep_until(deadline).await;
            if self.last() + idle <= Instant::now() {
                return;
            }
        }
    }
}

/// The request body as slices of one `Bytes`, marking progress as the connection takes them.
struct ProgressBody {
    body: Bytes,
    offset: usize,
    progress: std::sync::Arc<Progress>,
}

impl Stream for ProgressBody {
    type Item = std::result::Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Being asked for the next slice means the previous one was written.
        self.progress.touch();
        if self.offset >= self.body.len() {
            return Poll::Ready(None);
        }
        let end = (self.offset + BODY_SLICE_BYTES).min(self.body.len());
        let slice = self.body.slice(self.offset..end);
        self.offset = end;
        Poll::Ready(Some(Ok(slice)))
    }
}

fn idle_timeout_error(idle: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("no progress for {} ms (idle timeout)", idle.as_millis()),
    )
}

/// Maps a reqwest failure to [`ErrorKind::Timeout`] or [`ErrorKind::Network`].
fn transport_error(error: reqwest::Error) -> Error {
    let (kind, message) = if error.is_timeout() {
        (ErrorKind::Timeout, "request timed out")
    } else if error.is_connect() {
        (ErrorKind::Network, "could not connect")
    } else if error.is_body() || error.is_decode() {
        (
            ErrorKind::Network,
            "connection broke while transferring the body",
        )
    } else {
        (ErrorKind::Network, "request failed")
    };
    Error::new(kind, message).with_source(error)
}

/// Reads a response body, at most `limit` bytes, marking progress per chunk.
async fn read_body(
    response: &mut reqwest::Response,
    limit: usize,
    progress: &Progress,
) -> Result<Bytes> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        progress.touch();
        if body.len() + chunk.len() > limit {
            return Err(Error::new(
                ErrorKind::MalformedResponse,
                format!("response body exceeds the {limit}-byte limit"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads the error body (bounded, best effort: a broken body still yields the status).
async fn read_error(mut response: reqwest::Response, progress: &Progress) -> ServiceError {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut body = BytesMut::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        progress.touch();
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ERROR_READ_BYTES {
            break;
        }
    }
    xml::parse_error_body(status, &body, &headers)
}

/// Checks `x-oss-hash-crc64ecma` against what was sent. An absent header skips the check (as
/// the SDKs do); a present one that differs is a retryable [`ErrorKind::CrcMismatch`].
pub(crate) fn check_crc64(headers: &HeaderMap, expected: u64) -> Result<()> {
    let Some(value) = headers.get(CRC64_HEADER) else {
        return Ok(());
    };
    let reported = value
        .to_str()
        .ok()
        .and_then(crc64::parse_header)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::MalformedResponse,
                format!("{CRC64_HEADER} is not a decimal u64: {value:?}"),
            )
        })?;
    if reported != expected {
        return Err(Error::new(
            ErrorKind::CrcMismatch,
            format!("crc-64 mismatch: sent {expected}, server stored {reported}"),
        ));
    }
    Ok(())
}

/// Refuses keys with a `.` or `..` path segment. OSS accepts them, but every URL parser
/// (reqwest's included, even for `%2E`) resolves dot segments, so the request would name
/// another key, or none.
fn validate_key_for_url(key: &str) -> Result<()> {
    if key
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err(Error::invalid_input(format!(
            "object key must not contain '.' or '..' path segments, which URLs cannot carry \
             (refused by osspipe, not by OSS): got {key:?}"
        )));
    }
    Ok(())
}

/// The short cause of a retry for the log line: "503 SlowDown", "timeout".
fn retry_cause(error: &Error) -> String {
    match error.service_error() {
        Some(service) if !service.code.is_empty() => format!("{} {}", service.status, service.code),
        Some(service) => service.status.to_string(),
        None => match error.kind() {
            ErrorKind::Timeout => "timeout".to_owned(),
            ErrorKind::CrcMismatch => "crc-64 mismatch".to_owned(),
            _ => error.to_string(),
        },
    }
}

impl Client {
    /// Sends `request` under the retry policy. Every attempt gets fresh credentials, a fresh
    /// signature and a fresh idle timer; the body `Bytes` are re-sent without copying.
    pub(crate) async fn send(&self, request: &OssRequest<'_>) -> Result<OssResponse> {
        self.validate(request).map_err(|e| request.context(e))?;
        let policy = self.config().retry_policy();
        let mut state = policy.start();
        loop {
            let attempt = state.begin_attempt();
            let error = match self.attempt(request).await {
                Ok(response) => return Ok(response),
                Err(error) => error,
            };
            match state.next_delay(&error) {
                Some(delay) => {
                    tracing::warn!(
                        "retrying {} (attempt {} of {}) after {}",
                        request.describe(),
                        attempt + 1,
                        policy.max_attempts(),
                        retry_cause(&error)
                    );
                    tokio::time::sleep(delay).await;
                }
                None => return Err(request.context(error)),
            }
        }
    }

    /// Refuses what OSS would refuse, before anything is sent.
    fn validate(&self, request: &OssRequest<'_>) -> Result<()> {
        limits::validate_bucket_name(request.bucket)?;
        if let Some(key) = request.key {
            limits::validate_object_key(key)?;
            validate_key_for_url(key)?;
        }
        if let Some(part_number) = request.part_number {
            limits::validate_part_number(part_number)?;
        }
        Ok(())
    }

    /// The signing time: the local clock corrected by what a `RequestTimeTooSkewed` taught us.
    pub(crate) fn now(&self) -> SystemTime {
        let offset = self.inner.clock_offset_ms.load(Ordering::Relaxed);
        let now = SystemTime::now();
        if offset >= 0 {
            now + Duration::from_millis(offset.unsigned_abs())
        } else {
            now - Duration::from_millis(offset.unsigned_abs())
        }
    }

    /// On `RequestTimeTooSkewed`, remembers how far the server's `Date` is from our clock, so
    /// the retry (and every later request) signs with the server's idea of now. Without this,
    /// a machine whose clock is off by more than 15 minutes could never succeed.
    fn learn_clock_offset(&self, service: &ServiceError, headers: &HeaderMap) {
        if service.code != "RequestTimeTooSkewed" {
            return;
        }
        let Some(server_date) = headers
            .get(http::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(sign::parse_rfc1123)
        else {
            return;
        };
        let now = SystemTime::now();
        let offset_ms = match server_date.duration_since(now) {
            Ok(ahead) => i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
            Err(behind) => -i64::try_from(behind.duration().as_millis()).unwrap_or(i64::MAX),
        };
        tracing::warn!("the server's clock is {offset_ms} ms from ours; signing with its time");
        self.inner
            .clock_offset_ms
            .store(offset_ms, Ordering::Relaxed);
    }

    /// One attempt: credentials, URL, signature, send, classify.
    async fn attempt(&self, request: &OssRequest<'_>) -> Result<OssResponse> {
        let config = self.config();
        let credentials = config.credentials_provider().credentials().await?;
        let mut headers = request.headers.clone();
        if request.method == Method::PUT || request.method == Method::POST {
            headers.insert(
                http::header::CONTENT_LENGTH,
                HeaderValue::from(request.body.len()),
            );
        }
        let params = SigningParams::new(
            config.signature_version(),
            &credentials,
            config.region(),
            self.now(),
        );
        sign::sign_headers(
            &params,
            request.method.as_str(),
            Some(request.bucket),
            request.key,
            &request.query,
            &mut headers,
        )?;
        let url = config.url_with_query(request.bucket, request.key, &request.query);
        let progress = std::sync::Arc::new(Progress::new());
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), &url)
            .headers(headers);
        if !request.body.is_empty() {
            builder = builder.body(reqwest::Body::wrap_stream(ProgressBody {
                body: request.body.clone(),
                offset: 0,
                progress: progress.clone(),
            }));
        }
        let idle = config.idle_timeout();
        let exchange = async {
            let mut response = builder.send().await.map_err(transport_error)?;
            progress.touch();
            let status = response.status();
            // 203 is OSS's "stored, but the callback failed" (CallbackFailed): an error.
            if !status.is_success() || status == http::StatusCode::NON_AUTHORITATIVE_INFORMATION {
                let headers = response.headers().clone();
                let mut service = read_error(response, &progress).await;
                // OSS echoes its string to sign (V1) and canonical request (V4) on a signature
                // mismatch; both cover x-oss-security-token, so the echo carries the token.
                if let Some(token) = credentials.security_token() {
                    service.redact(token);
                }
                self.learn_clock_offset(&service, &headers);
                return Err(Error::service(service));
            }
            let headers = response.headers().clone();
            if let Some(expected) = request.expected_crc64 {
                check_crc64(&headers, expected)?;
            }
            match request.mode {
                ResponseMode::Buffered(limit) => {
                    let body = read_body(&mut response, limit, &progress).await?;
                    Ok(OssResponse {
                        status,
                        headers,
                        body,
                        streaming: None,
                    })
                }
                ResponseMode::Streaming => Ok(OssResponse {
                    status,
                    headers,
                    body: Bytes::new(),
                    streaming: Some(response),
                }),
            }
        };
        tokio::select! {
            result = exchange => result,
            () = progress.stalled(idle) => Err(idle_timeout_error(idle)),
        }
    }
}

/// A streamed response body with an idle timeout per chunk and, for a whole object, a CRC-64
/// check at the end.
pub(crate) struct TimedBody {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    crc: Option<(Crc64, u64)>,
    done: bool,
}

impl TimedBody {
    pub(crate) fn new(
        response: reqwest::Response,
        idle: Duration,
        expected_crc: Option<u64>,
    ) -> Self {
        Self {
            inner: Box::pin(response.bytes_stream()),
            idle,
            sleep: Box::pin(tokio::time::sleep(idle)),
            crc: expected_crc.map(|expected| (Crc64::new(), expected)),
            done: false,
        }
    }
}

impl Stream for TimedBody {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let deadline = Instant::now() + self.idle;
                self.sleep.as_mut().reset(deadline);
                if let Some((crc, _)) = &mut self.crc {
                    crc.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                self.done = true;
                Poll::Ready(Some(Err(transport_error(error))))
            }
            Poll::Ready(None) => {
                self.done = true;
                match self.crc.take() {
                    Some((crc, expected)) if crc.value() != expected => {
                        Poll::Ready(Some(Err(Error::new(
                            ErrorKind::CrcMismatch,
                            format!(
                                "crc-64 mismatch: received {}, server reported {expected}",
                                crc.value()
                            ),
                        ))))
                    }
                    _ => Poll::Ready(None),
                }
            }
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.done = true;
                    Poll::Ready(Some(Err(idle_timeout_error(self.idle))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl std::fmt::Debug for TimedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedBody")
            .field("idle", &self.idle)
            .field("checks_crc", &self.crc.is_some())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_header_check() {
        let mut headers = HeaderMap::new();
        check_crc64(&headers, 5).unwrap();
        headers.insert(
            CRC64_HEADER,
            HeaderValue::from_static("17223430255209957478"),
        );
        check_crc64(&headers, crc64::checksum(b"hello oss\n")).unwrap();
        let error = check_crc64(&headers, 1).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::CrcMismatch);
        assert!(error.is_retryable());
        headers.insert(CRC64_HEADER, HeaderValue::from_static("abc"));
        assert_eq!(
            check_crc64(&headers, 1).unwrap_err().kind(),
            ErrorKind::MalformedResponse
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stalled_fires_only_after_idle_without_progress() {
        let progress = std::sync::Arc::new(Progress::new());
        let idle = Duration::from_secs(10);
        let toucher = {
            let progress = progress.clone();
            tokio::spawn(async move {
                for _ in 0..5 {
                    tokio::time::sleep(Duration::from_secs(6)).await;
                    progress.touch();
                }
            })
        };
        let start = Instant::now();
        progress.stalled(idle).await;
        // Five touches 6 s apart keep it alive until 30 s; it fires 10 s after the last.
        assert_eq!(start.elapsed(), Duration::from_secs(40));
        toucher.await.unwrap();
    }

    #[test]
    fn progress_body_slices_without_copying() {
        let body = Bytes::from(vec![7u8; BODY_SLICE_BYTES * 2 + 5]);
        let progress = std::sync::Arc::new(Progress::new());
        let stream = ProgressBody {
            body: body.clone(),
            offset: 0,
            progress,
        };
        let slices: Vec<Bytes> =
            futures::executor::block_on(stream.map(|s| s.unwrap()).collect::<Vec<_>>());
        assert_eq!(
            slices.iter().map(Bytes::len).collect::<Vec<_>>(),
            vec![BODY_SLICE_BYTES, BODY_SLICE_BYTES, 5]
        );
        // Same allocation: a slice points into the original buffer.
        assert_eq!(slices[1].as_ptr(), body[BODY_SLICE_BYTES..].as_ptr());
    }
}
