//! The OSS client: one bucket-independent HTTP client and its operations.
//!
//! [`Client`] is cheap to clone (an `Arc`) and reuses connections. Every operation goes through
//! one private path that validates the arguments, signs each attempt afresh, classifies the
//! answer and retries under the [`crate::retry::RetryPolicy`]; every error carries the
//! operation, bucket, key, upload id and part number it belongs to.
//!
//! [`Bucket`] is a handle on one bucket that implements [`MultipartTarget`], which is what the
//! streaming writer needs.
//!
//! ```no_run
//! # async fn run() -> osspipe::Result<()> {
//! use bytes::Bytes;
//! use osspipe::client::Client;
//! use osspipe::target::ObjectOptions;
//! use osspipe::Credentials;
//!
//! let client = Client::builder()
//!     .with_endpoint("http://127.0.0.1:9000")
//!     .with_region("cn-hangzhou")
//!     .with_credentials(Credentials::new("id", "secret"))
//!     .build()?;
//! let options = ObjectOptions::default();
//! let upload_id = client.initiate_multipart_upload("bucket", "big.bin", &options).await?;
//! let part = client
//!     .upload_part("bucket", "big.bin", &upload_id, 1, Bytes::from_static(b"data"))
//!     .await?;
//! client
//!     .complete_multipart_upload("bucket", "big.bin", &upload_id, &[part], &options)
//!     .await?;
//! # Ok(()) }
//! ```

mod transport;

use std::ops::{Bound, RangeBounds};
use std::pin::Pin;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use md5::Digest as _;

use self::transport::{OssRequest, ResponseMode, TimedBody, CRC64_HEADER};
use crate::config::{ClientBuilder, Config};
use crate::crc64;
use crate::sign::{self, SignableRequest, SigningParams};
use crate::target::{MultipartTarget, ObjectHead, ObjectOptions, ObjectReceipt, PartReceipt};
use crate::xml::{self, ListedObject, ListedPart, ListedUpload};
use crate::{limits, Error, ErrorKind, Operation, Result};

/// The MIME type of objects whose key has no known extension.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// TCP keepalive probes on idle pooled connections, so a connection a NAT or load balancer
/// silently dropped is noticed before a part is sent on it.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);

/// Page size of the list operations (OSS's maximum).
const LIST_PAGE_SIZE: u32 = limits::MAX_LIST_PAGE;

/// A client of OSS or of an OSS-compatible server such as the local one.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    http: reqwest::Client,
    /// Server time minus local time in milliseconds, learnt from `RequestTimeTooSkewed`.
    clock_offset_ms: AtomicI64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What HeadObject (or GetObject) says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectMetadata {
    /// `Content-Length`: the object's size for HEAD, the body's size for a GET.
    pub content_length: u64,
    /// `ETag` as sent, quotes included.
    pub etag: String,
    /// `x-oss-hash-crc64ecma`: the whole object's CRC-64, even for a ranged GET.
    pub crc64: Option<u64>,
    /// `x-oss-object-type`: `Normal`, `Multipart`, `Appendable`, `Symlink`.
    pub object_type: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Last-Modified` (an HTTP date).
    pub last_modified: Option<String>,
    /// `x-oss-storage-class`.
    pub storage_class: Option<String>,
    /// User metadata from `x-oss-meta-*`, names lower-cased without the prefix.
    pub metadata: Vec<(String, String)>,
    /// Every response header, for anything not above.
    pub headers: HeaderMap,
}

/// A GetObject answer: the metadata and a streaming body.
#[derive(Debug)]
#[non_exhaustive]
pub struct GetObjectOutput {
    /// The response's metadata.
    pub metadata: ObjectMetadata,
    /// `Content-Range` of a ranged read (`bytes 0-99/1000`).
    pub content_range: Option<String>,
    /// The body.
    pub body: ObjectBody,
}

/// A streaming object body.
///
/// Each chunk must arrive within the client's idle timeout, or the stream yields an
/// [`ErrorKind::Timeout`] error and ends. When a whole object is read, its CRC-64 is checked
/// against `x-oss-hash-crc64ecma` at the end ([`ErrorKind::CrcMismatch`]). A failure while
/// streaming is not retried: the caller decides whether to read again (with a range).
#[derive(Debug)]
pub struct ObjectBody {
    inner: TimedBody,
}

impl ObjectBody {
    /// Reads the whole body into memory.
    ///
    /// # Errors
    /// A network failure, an idle timeout or a CRC-64 mismatch.
    pub async fn bytes(self) -> Result<Bytes> {
        let chunks: Vec<Bytes> = self.try_collect().await?;
        Ok(match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.into_iter().next().unwrap_or_default(),
            _ => Bytes::from(chunks.concat()),
        })
    }

    /// The body as an [`tokio::io::AsyncRead`]; errors become [`std::io::Error`]s that
    /// [`Error::from_io`] turns back into this crate's error.
    pub fn into_async_read(self) -> impl tokio::io::AsyncRead + Send + Unpin {
        tokio_util::io::StreamReader::new(self.map_err(std::io::Error::from))
    }
}

impl Stream for ObjectBody {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// Per-part settings of [`Client::upload_part_with_options`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartOptions {
    /// The CRC-64 of the part, if the caller already computed it (the writer does, in the same
    /// pass that copies the bytes); otherwise the client computes it.
    pub crc64: Option<u64>,
    /// Send `Content-MD5` (costs an MD5 pass; CRC-64 is checked anyway).
    pub content_md5: bool,
}

impl PartOptions {
    /// Uses a CRC-64 the caller already computed.
    pub fn with_crc64(mut self, crc64: u64) -> Self {
        self.crc64 = Some(crc64);
        self
    }

    /// Sends `Content-MD5`.
    pub fn with_content_md5(mut self, content_md5: bool) -> Self {
        self.content_md5 = content_md5;
        self
    }
}

/// Base64 of the MD5 of `body`, as `Content-MD5` wants it.
fn content_md5(body: &[u8]) -> HeaderValue {
    let digest = md5::Md5::digest(body);
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(digest))
        .expect("base64 is a valid header value")
}

/// The `Content-Type` for `key`: from its extension, else [`DEFAULT_CONTENT_TYPE`].
pub fn guess_content_type(key: &str) -> String {
    mime_guess::from_path(key)
        .first_raw()
        .unwrap_or(DEFAULT_CONTENT_TYPE)
        .to_owned()
}

/// Inserts `name: value`, refusing values that cannot be sent in a header.
fn insert(headers: &mut HeaderMap, name: &str, value: &str) -> Result<()> {
    let header_name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::invalid_input(format!("{name:?} is not a valid header name")))?;
    let header_value = HeaderValue::from_str(value).map_err(|_| {
        Error::invalid_input(format!(
            "the value of {name} must be visible ASCII or spaces: got {value:?}"
        ))
    })?;
    headers.insert(header_name, header_value);
    Ok(())
}

/// Which of the [`ObjectOptions`] an operation carries (§5.1, §5.2, §5.4, §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptionsFor {
    /// Everything.
    PutObject,
    /// Content headers, metadata, storage class, tagging, forbid-overwrite, SSE; no ACL and no
    /// callback (those go on Complete).
    Initiate,
    /// Forbid-overwrite, ACL, callback.
    Complete,
}

fn object_headers(key: &str, options: &ObjectOptions, target: OptionsFor) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    let mut optional = |name: &str, value: &Option<String>| match value {
        Some(value) => insert(&mut headers, name, value),
        None => Ok(()),
    };
    if target != OptionsFor::Complete {
        let content_type = options
            .content_type
            .clone()
            .unwrap_or_else(|| guess_content_type(key));
        optional("content-type", &Some(content_type))?;
        optional("cache-control", &options.cache_control)?;
        optional("content-disposition", &options.content_disposition)?;
        optional("content-encoding", &options.content_encoding)?;
        optional("expires", &options.expires)?;
        optional("x-oss-storage-class", &options.storage_class)?;
        optional("x-oss-tagging", &options.tagging)?;
        optional(
            "x-oss-server-side-encryption",
            &options.server_side_encryption,
        )?;
        optional(
            "x-oss-server-side-data-encryption",
            &options.server_side_data_encryption,
        )?;
        optional(
            "x-oss-server-side-encryption-key-id",
            &options.server_side_encryption_key_id,
        )?;
    }
    if target != OptionsFor::Initiate {
        optional("x-oss-object-acl", &options.acl)?;
        optional("x-oss-callback", &options.callback)?;
        optional("x-oss-callback-var", &options.callback_var)?;
    }
    if options.forbid_overwrite {
        headers.insert("x-oss-forbid-overwrite", HeaderValue::from_static("true"));
    }
    if target != OptionsFor::Complete {
        limits::validate_metadata(&options.metadata)?;
        for (name, value) in &options.metadata {
            insert(
                &mut headers,
                &format!("x-oss-meta-{}", name.to_ascii_lowercase()),
                value,
            )?;
        }
    }
    Ok(headers)
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn header_crc64(headers: &HeaderMap) -> Result<Option<u64>> {
    match headers.get(CRC64_HEADER) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(crc64::parse_header)
            .map(Some)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::MalformedResponse,
                    format!("{CRC64_HEADER} is not a decimal u64: {value:?}"),
                )
            }),
    }
}

fn required_etag(headers: &HeaderMap) -> Result<String> {
    header_str(headers, "etag").ok_or_else(|| {
        Error::new(
            ErrorKind::MalformedResponse,
            "the response has no ETag header",
        )
    })
}

fn metadata_from_headers(headers: &HeaderMap) -> Result<ObjectMetadata> {
    let content_length = match headers.get(http::header::CONTENT_LENGTH) {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::MalformedResponse,
                    format!("Content-Length is not a number: {value:?}"),
                )
            })?,
        None => 0,
    };
    let metadata = headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("x-oss-meta-")?;
            Some((name.to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    Ok(ObjectMetadata {
        content_length,
        etag: header_str(headers, "etag").unwrap_or_default(),
        crc64: header_crc64(headers)?,
        object_type: header_str(headers, "x-oss-object-type"),
        content_type: header_str(headers, "content-type"),
        last_modified: header_str(headers, "last-modified"),
        storage_class: header_str(headers, "x-oss-storage-class"),
        metadata,
        headers: headers.clone(),
    })
}

/// `bytes=a-b` for a range of offsets.
fn range_header(range: &impl RangeBounds<u64>) -> Result<Option<String>> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => Some(e),
        Bound::Excluded(&0) => {
            return Err(Error::invalid_input("a byte range must not be empty"));
        }
        Bound::Excluded(&e) => Some(e - 1),
        Bound::Unbounded => None,
    };
    Ok(match end {
        None if start == 0 => None,
        None => Some(format!("bytes={start}-")),
        Some(end) if end < start => {
            return Err(Error::invalid_input(format!(
                "a byte range must not be empty: got {start}..={end}"
            )))
        }
        Some(end) => Some(format!("bytes={start}-{end}")),
    })
}

impl Client {
    /// A builder: see [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Builds a client from validated settings.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the HTTP client cannot be created.
    pub fn from_config(config: Config) -> Result<Client> {
        // Redirects are not followed: a streamed body cannot be replayed to another host, and
        // OSS redirects only when the endpoint is wrong, which the error body explains.
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout())
            .pool_idle_timeout(config.pool_idle_timeout())
            .tcp_keepalive(TCP_KEEPALIVE)
            .user_agent(config.user_agent())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, "could not create the http client").with_source(e)
            })?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                http,
                clock_offset_ms: AtomicI64::new(0),
            }),
        })
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// A handle on one bucket, for the streaming writer ([`MultipartTarget`]). The name is
    /// checked when a request is made.
    pub fn bucket(&self, name: impl Into<String>) -> Bucket {
        Bucket {
            client: self.clone(),
            name: name.into(),
            part_content_md5: false,
        }
    }

    /// PutObject (§5.1): stores `body` as `key`, checking the CRC-64 OSS reports.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a bad bucket, key, metadata or a body over 5 GiB; the
    /// service's error (e.g. `FileAlreadyExists` with `forbid_overwrite`); a network failure or
    /// timeout; [`ErrorKind::CrcMismatch`] if retries never got the bytes through intact.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        options: &ObjectOptions,
    ) -> Result<ObjectReceipt> {
        let crc = crc64::checksum(&body);
        self.put_object_with_crc(bucket, key, body, crc, options)
            .await
    }

    /// [`Client::put_object`] with the body's CRC-64 already computed by the caller.
    ///
    /// # Errors
    /// As [`Client::put_object`].
    pub async fn put_object_with_crc(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        crc64: u64,
        options: &ObjectOptions,
    ) -> Result<ObjectReceipt> {
        let mut request = OssRequest::new(Operation::PutObject, Method::PUT, bucket, Some(key));
        let prepared = limits::validate_put_object_size(body.len() as u64)
            .and_then(|()| object_headers(key, options, OptionsFor::PutObject));
        request.headers = prepared.map_err(|e| request.context(e))?;
        if options.content_md5 {
            request.headers.insert("content-md5", content_md5(&body));
        }
        request.body = body;
        request.expected_crc64 = Some(crc64);
        let response = self.send(&request).await?;
        let receipt = (|| {
            Ok(ObjectReceipt {
                etag: required_etag(&response.headers)?,
                crc64: header_crc64(&response.headers)?,
                callback_body: options.callback.as_ref().map(|_| response.body.clone()),
            })
        })();
        receipt.map_err(|e| request.context(e))
    }

    /// GetObject (§5.9) of the whole object, streamed; the CRC-64 is checked at the end.
    ///
    /// # Errors
    /// The service's error (`NoSuchKey`), a network failure or timeout before the body starts.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<GetObjectOutput> {
        self.get_object_range(bucket, key, ..).await
    }

    /// GetObject of a byte range (`5..10`, `100..`, `..=99`), streamed.
    ///
    /// The request carries `x-oss-range-behavior: standard`, so an unsatisfiable range is a
    /// 416 `InvalidRange` error instead of OSS's default of silently sending the whole object.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty range; otherwise as [`Client::get_object`].
    pub async fn get_object_range(
        &self,
        bucket: &str,
        key: &str,
        range: impl RangeBounds<u64>,
    ) -> Result<GetObjectOutput> {
        let mut request = OssRequest::new(Operation::GetObject, Method::GET, bucket, Some(key));
        let range = range_header(&range).map_err(|e| request.context(e))?;
        if let Some(range) = &range {
            insert(&mut request.headers, "range", range).map_err(|e| request.context(e))?;
            request
                .headers
                .insert("x-oss-range-behavior", HeaderValue::from_static("standard"));
        }
        request.mode = ResponseMode::Streaming;
        let mut response = self.send(&request).await?;
        let metadata = metadata_from_headers(&response.headers).map_err(|e| request.context(e))?;
        let whole = response.status == http::StatusCode::OK;
        let streaming = response.streaming.take().ok_or_else(|| {
            request.context(Error::new(ErrorKind::MalformedResponse, "no response body"))
        })?;
        let expected_crc = if whole { metadata.crc64 } else { None };
        Ok(GetObjectOutput {
            content_range: header_str(&response.headers, "content-range"),
            body: ObjectBody {
                inner: TimedBody::new(streaming, self.config().idle_timeout(), expected_crc),
            },
            metadata,
        })
    }

    /// HeadObject (§5.8). Errors come without a body; their code is decoded from `x-oss-err`.
    ///
    /// # Errors
    /// The service's error (`NoSuchKey` for a missing object), a network failure or timeout.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMetadata> {
        let request = OssRequest::new(Operation::HeadObject, Method::HEAD, bucket, Some(key));
        let response = self.send(&request).await?;
        metadata_from_headers(&response.headers).map_err(|e| request.context(e))
    }

    /// DeleteObject. Deleting a missing object succeeds (OSS answers 204).
    ///
    /// # Errors
    /// The service's error, a network failure or timeout.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        let request = OssRequest::new(Operation::DeleteObject, Method::DELETE, bucket, Some(key));
        self.send(&request).await.map(drop)
    }

    /// InitiateMultipartUpload (§5.2): returns the upload id. The options' content headers,
    /// metadata, storage class, tagging, SSE and `x-oss-forbid-overwrite` are sent here; the
    /// ACL and callback go on Complete.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a bad bucket, key or metadata; the service's error; a
    /// network failure or timeout; [`ErrorKind::MalformedResponse`] for a body without
    /// `UploadId`.
    pub async fn initiate_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        options: &ObjectOptions,
    ) -> Result<String> {
        let mut request = OssRequest::new(
            Operation::InitiateMultipartUpload,
            Method::POST,
            bucket,
            Some(key),
        )
        .query("uploads", "")
        .query("encoding-type", xml::ENCODING_TYPE_URL);
        request.headers =
            object_headers(key, options, OptionsFor::Initiate).map_err(|e| request.context(e))?;
        let response = self.send(&request).await?;
        let result = xml::from_xml::<xml::InitiateMultipartUploadResult>(&response.body)
            .and_then(|mut r| r.decode_url_encoding().map(|()| r));
        match result {
            Ok(result) if !result.upload_id.is_empty() => Ok(result.upload_id),
            Ok(_) => Err(request.context(Error::new(
                ErrorKind::MalformedResponse,
                "InitiateMultipartUpload returned an empty UploadId",
            ))),
            Err(e) => Err(request.context(e)),
        }
    }

    /// UploadPart (§5.3): uploads `body` as part `part_number`, checking the CRC-64 OSS
    /// reports (a mismatch is retried). Re-uploading a part number replaces it.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a part number outside 1..=10000 or a part over 5 GiB;
    /// the service's error (`NoSuchUpload`); a network failure or timeout;
    /// [`ErrorKind::CrcMismatch`] if retries never got the bytes through intact.
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> Result<PartReceipt> {
        self.upload_part_with_options(
            bucket,
            key,
            upload_id,
            part_number,
            body,
            &PartOptions::default(),
        )
        .await
    }

    /// [`Client::upload_part`] with the part's CRC-64 already computed by the caller.
    ///
    /// # Errors
    /// As [`Client::upload_part`].
    pub async fn upload_part_with_crc(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
        crc64: u64,
    ) -> Result<PartReceipt> {
        let options = PartOptions::default().with_crc64(crc64);
        self.upload_part_with_options(bucket, key, upload_id, part_number, body, &options)
            .await
    }

    /// [`Client::upload_part`] with [`PartOptions`] (a precomputed CRC-64, `Content-MD5`).
    ///
    /// # Errors
    /// As [`Client::upload_part`].
    pub async fn upload_part_with_options(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
        options: &PartOptions,
    ) -> Result<PartReceipt> {
        let mut request = OssRequest::new(Operation::UploadPart, Method::PUT, bucket, Some(key))
            .query("partNumber", part_number.to_string())
            .query("uploadId", upload_id);
        request.upload_id = Some(upload_id);
        request.part_number = Some(part_number);
        let size = body.len() as u64;
        // The minimum size is OSS's business at Complete (the last part may be small); only the
        // maximum is certain here.
        limits::validate_part_size(size, true).map_err(|e| request.context(e))?;
        let crc = options.crc64.unwrap_or_else(|| crc64::checksum(&body));
        if options.content_md5 {
            request.headers.insert("content-md5", content_md5(&body));
        }
        request.body = body;
        request.expected_crc64 = Some(crc);
        let response = self.send(&request).await?;
        let etag = required_etag(&response.headers).map_err(|e| request.context(e))?;
        Ok(PartReceipt {
            part_number,
            etag,
            crc64: crc,
            size,
        })
    }

    /// CompleteMultipartUpload (§5.4) from an explicit part list, sent sorted by part number.
    /// The forbid-overwrite, ACL and callback options are sent. When OSS reports the object's
    /// CRC-64, it is checked against the parts' CRCs combined.
    ///
    /// With a callback, the callback server's answer is returned in
    /// [`ObjectReceipt::callback_body`]; a failed callback (203 `CallbackFailed`) is an error
    /// even though the object was stored.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an empty part list or a repeated part number; the
    /// service's error (`InvalidPart`, `EntityTooSmall`, `NoSuchUpload`: after a lost answer
    /// and a retry the upload may be complete, so check with [`Client::head_object`]);
    /// [`ErrorKind::CrcMismatch`] when the object's CRC-64 is not the parts' (not retried: the
    /// upload is gone).
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[PartReceipt],
        options: &ObjectOptions,
    ) -> Result<ObjectReceipt> {
        let mut request = self.complete_request(bucket, key, upload_id);
        let mut sorted: Vec<&PartReceipt> = parts.iter().collect();
        sorted.sort_by_key(|p| p.part_number);
        let checked = (|| {
            if sorted.is_empty() {
                return Err(Error::invalid_input(
                    "CompleteMultipartUpload needs at least one part (store empty data with \
                     PutObject)",
                ));
            }
            if let Some(pair) = sorted
                .windows(2)
                .find(|w| w[0].part_number == w[1].part_number)
            {
                return Err(Error::invalid_input(format!(
                    "each part number may be listed once: {} is listed twice",
                    pair[0].part_number
                )));
            }
            for part in &sorted {
                limits::validate_part_number(part.part_number)?;
            }
            object_headers(key, options, OptionsFor::Complete)
        })();
        request.headers = checked.map_err(|e| request.context(e))?;
        let body = xml::CompleteMultipartUpload {
            parts: sorted
                .iter()
                .map(|p| xml::CompletePart {
                    part_number: p.part_number,
                    etag: p.etag.clone(),
                })
                .collect(),
        };
        request.body = Bytes::from(xml::to_xml(&body));
        request
            .headers
            .insert("content-md5", content_md5(&request.body));
        let expected = sorted
            .iter()
            .fold(0, |acc, p| crc64::combine(acc, p.crc64, p.size));
        let receipt = self.finish_complete(&request, options).await?;
        if let Some(reported) = receipt.crc64 {
            if reported != expected {
                return Err(request.context(Error::new(
                    ErrorKind::CrcMismatch,
                    format!(
                        "crc-64 mismatch: the parts combine to {expected}, the object has \
                         {reported}"
                    ),
                )));
            }
        }
        Ok(receipt)
    }

    /// CompleteMultipartUpload with `x-oss-complete-all: yes` and no body: OSS completes with
    /// every uploaded part in part-number order. It cannot notice a missing part, so prefer
    /// [`Client::complete_multipart_upload`] when the parts are known.
    ///
    /// # Errors
    /// The service's error, a network failure or timeout.
    pub async fn complete_multipart_upload_all(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        options: &ObjectOptions,
    ) -> Result<ObjectReceipt> {
        let mut request = self.complete_request(bucket, key, upload_id);
        request.headers =
            object_headers(key, options, OptionsFor::Complete).map_err(|e| request.context(e))?;
        request
            .headers
            .insert("x-oss-complete-all", HeaderValue::from_static("yes"));
        self.finish_complete(&request, options).await
    }

    fn complete_request<'a>(
        &self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
    ) -> OssRequest<'a> {
        let mut request = OssRequest::new(
            Operation::CompleteMultipartUpload,
            Method::POST,
            bucket,
            Some(key),
        )
        .query("uploadId", upload_id)
        .query("encoding-type", xml::ENCODING_TYPE_URL);
        request.upload_id = Some(upload_id);
        request
    }

    async fn finish_complete(
        &self,
        request: &OssRequest<'_>,
        options: &ObjectOptions,
    ) -> Result<ObjectReceipt> {
        let response = self.send(request).await?;
        let receipt = (|| {
            let crc64 = header_crc64(&response.headers)?;
            if options.callback.is_some() {
                // The body is the callback server's answer, not XML.
                return Ok(ObjectReceipt {
                    etag: header_str(&response.headers, "etag").unwrap_or_default(),
                    crc64,
                    callback_body: Some(response.body.clone()),
                });
            }
            let mut result = xml::from_xml::<xml::CompleteMultipartUploadResult>(&response.body)?;
            result.decode_url_encoding()?;
            let etag = if result.etag.is_empty() {
                required_etag(&response.headers)?
            } else {
                result.etag
            };
            Ok(ObjectReceipt {
                etag,
                crc64,
                callback_body: None,
            })
        })();
        receipt.map_err(|e| request.context(e))
    }

    /// AbortMultipartUpload (§5.5). Aborting twice is `NoSuchUpload` (OSS does not make it
    /// idempotent).
    ///
    /// # Errors
    /// The service's error (`NoSuchUpload`), a network failure or timeout.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<()> {
        let mut request = OssRequest::new(
            Operation::AbortMultipartUpload,
            Method::DELETE,
            bucket,
            Some(key),
        )
        .query("uploadId", upload_id);
        request.upload_id = Some(upload_id);
        self.send(&request).await.map(drop)
    }

    /// ListParts (§5.6): every part uploaded so far, all pages, in part-number order.
    ///
    /// # Errors
    /// The service's error (`NoSuchUpload`), a network failure or timeout, or
    /// [`ErrorKind::MalformedResponse`] for a body that does not parse or pages that do not
    /// advance.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<ListedPart>> {
        let mut parts = Vec::new();
        let mut marker = 0u32;
        loop {
            let mut request = OssRequest::new(Operation::ListParts, Method::GET, bucket, Some(key))
                .query("uploadId", upload_id)
                .query("max-parts", LIST_PAGE_SIZE.to_string())
                .query("encoding-type", xml::ENCODING_TYPE_URL);
            if marker > 0 {
                request = request.query("part-number-marker", marker.to_string());
            }
            request.upload_id = Some(upload_id);
            let response = self.send(&request).await?;
            let page = xml::from_xml::<xml::ListPartsResult>(&response.body)
                .and_then(|mut p| p.decode_url_encoding().map(|()| p))
                .map_err(|e| request.context(e))?;
            parts.extend(page.parts);
            if !page.is_truncated {
                return Ok(parts);
            }
            if page.next_part_number_marker <= marker {
                return Err(request.context(Error::new(
                    ErrorKind::MalformedResponse,
                    format!(
                        "ListParts is truncated but its NextPartNumberMarker ({}) does not \
                         advance past {marker}",
                        page.next_part_number_marker
                    ),
                )));
            }
            marker = page.next_part_number_marker;
        }
    }

    /// ListMultipartUploads (§5.7): every upload in progress whose key starts with `prefix`,
    /// all pages, ordered by key then upload id.
    ///
    /// # Errors
    /// The service's error, a network failure or timeout, or
    /// [`ErrorKind::MalformedResponse`] for a body that does not parse or pages that do not
    /// advance.
    pub async fn list_multipart_uploads(
        &self,
        bucket: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<ListedUpload>> {
        let mut uploads = Vec::new();
        let mut key_marker = String::new();
        let mut upload_id_marker = String::new();
        loop {
            let mut request =
                OssRequest::new(Operation::ListMultipartUploads, Method::GET, bucket, None)
                    .query("uploads", "")
                    .query("max-uploads", LIST_PAGE_SIZE.to_string())
                    .query("encoding-type", xml::ENCODING_TYPE_URL);
            if let Some(prefix) = prefix {
                request = request.query("prefix", prefix);
            }
            if !key_marker.is_empty() {
                request = request.query("key-marker", key_marker.clone());
                if !upload_id_marker.is_empty() {
                    request = request.query("upload-id-marker", upload_id_marker.clone());
                }
            }
            let response = self.send(&request).await?;
            let page = xml::from_xml::<xml::ListMultipartUploadsResult>(&response.body)
                .and_then(|mut p| p.decode_url_encoding().map(|()| p))
                .map_err(|e| request.context(e))?;
            uploads.extend(page.uploads);
            if !page.is_truncated {
                return Ok(uploads);
            }
            if page.next_key_marker.is_empty()
                || (page.next_key_marker == key_marker
                    && page.next_upload_id_marker == upload_id_marker)
            {
                return Err(request.context(Error::new(
                    ErrorKind::MalformedResponse,
                    "ListMultipartUploads is truncated but its next markers do not advance",
                )));
            }
            key_marker = page.next_key_marker;
            upload_id_marker = page.next_upload_id_marker;
        }
    }

    /// ListObjectsV2 (`GET /?list-type=2`): every object whose key starts with `prefix`, all
    /// pages, in key order.
    ///
    /// # Errors
    /// The service's error, a network failure or timeout, or
    /// [`ErrorKind::MalformedResponse`] for a body that does not parse or a truncated page
    /// without a continuation token.
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<ListedObject>> {
        let mut objects = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = OssRequest::new(Operation::ListObjects, Method::GET, bucket, None)
                .query("list-type", "2")
                .query("max-keys", LIST_PAGE_SIZE.to_string())
                .query("encoding-type", xml::ENCODING_TYPE_URL);
            if let Some(prefix) = prefix {
                request = request.query("prefix", prefix);
            }
            if let Some(token) = &token {
                request = request.query("continuation-token", token.clone());
            }
            let response = self.send(&request).await?;
            let page = xml::from_xml::<xml::ListBucketResult>(&response.body)
                .and_then(|mut p| p.decode_url_encoding().map(|()| p))
                .map_err(|e| request.context(e))?;
            objects.extend(page.contents);
            if !page.is_truncated {
                return Ok(objects);
            }
            match page.next_continuation_token.filter(|t| !t.is_empty()) {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => {
                    return Err(request.context(Error::new(
                        ErrorKind::MalformedResponse,
                        "ListObjects is truncated but gives no new NextContinuationToken",
                    )))
                }
            }
        }
    }

    /// PutBucket: creates `bucket` with the default settings.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a bad name; the service's error
    /// (`BucketAlreadyExists`), a network failure or timeout.
    pub async fn put_bucket(&self, bucket: &str) -> Result<()> {
        let request = OssRequest::new(Operation::PutBucket, Method::PUT, bucket, None);
        self.send(&request).await.map(drop)
    }

    /// A presigned URL that lets anyone GET `key` for `expires_in` (V4: relative, at most 7
    /// days by OSS's rules; V1: an absolute `Expires`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a bad bucket or key; [`ErrorKind::Credentials`] when
    /// no credentials can be obtained.
    pub async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: Duration,
    ) -> Result<String> {
        self.presign(Method::GET, bucket, key, expires_in).await
    }

    /// A presigned URL for `method` on `key` (no signed headers: the eventual request must
    /// carry no `Content-Type`, `Content-MD5` or `x-oss-*` headers).
    ///
    /// # Errors
    /// As [`Client::presign_get`].
    pub async fn presign(
        &self,
        method: Method,
        bucket: &str,
        key: &str,
        expires_in: Duration,
    ) -> Result<String> {
        let context = |e: Error| {
            e.with_operation(Operation::GetObject)
                .with_bucket(bucket)
                .with_key(key)
        };
        limits::validate_bucket_name(bucket)
            .and_then(|()| limits::validate_object_key(key))
            .map_err(context)?;
        let config = self.config();
        let credentials = config
            .credentials_provider()
            .credentials()
            .await
            .map_err(context)?;
        let params = SigningParams::new(
            config.signature_version(),
            &credentials,
            config.region(),
            self.now(),
        );
        let headers = HeaderMap::new();
        let request = SignableRequest {
            method: method.as_str(),
            bucket: Some(bucket),
            key: Some(key),
            query: &[],
            headers: &headers,
        };
        let query = sign::presign_query(&params, &request, expires_in).map_err(context)?;
        Ok(config.url_with_query(bucket, Some(key), &query))
    }
}

/// One bucket of a [`Client`]: what the streaming writer writes to.
#[derive(Debug, Clone)]
pub struct Bucket {
    client: Client,
    name: String,
    part_content_md5: bool,
}

impl Bucket {
    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client behind the handle.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends `Content-MD5` with every part uploaded through [`MultipartTarget::upload_part`]
    /// (PutObject follows [`ObjectOptions::content_md5`]).
    pub fn with_part_content_md5(mut self, content_md5: bool) -> Self {
        self.part_content_md5 = content_md5;
        self
    }

    /// [`Client::upload_part_with_crc`] on this bucket: the writer's one-pass CRC is reused.
    ///
    /// # Errors
    /// As [`Client::upload_part`].
    pub async fn upload_part_with_crc(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
        crc64: u64,
    ) -> Result<PartReceipt> {
        let options = PartOptions::default()
            .with_crc64(crc64)
            .with_content_md5(self.part_content_md5);
        self.client
            .upload_part_with_options(&self.name, key, upload_id, part_number, body, &options)
            .await
    }
}

#[async_trait]
impl MultipartTarget for Bucket {
    async fn put_object(
        &self,
        key: &str,
        body: Bytes,
        options: &ObjectOptions,
    ) -> Result<ObjectReceipt> {
        self.client.put_object(&self.name, key, body, options).await
    }

    async fn initiate(&self, key: &str, options: &ObjectOptions) -> Result<String> {
        self.client
            .initiate_multipart_upload(&self.name, key, options)
            .await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> Result<PartReceipt> {
        let options = PartOptions::default().with_content_md5(self.part_content_md5);
        self.client
            .upload_part_with_options(&self.name, key, upload_id, part_number, body, &options)
            .await
    }

    async fn upload_part_with_crc(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
        crc64: u64,
    ) -> Result<PartReceipt> {
        Bucket::upload_part_with_crc(self, key, upload_id, part_number, body, crc64).await
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartReceipt],
        options: &ObjectOptions,
    ) -> Result<ObjectReceipt> {
        self.client
            .complete_multipart_upload(&self.name, key, upload_id, parts, options)
            .await
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<()> {
        self.client
            .abort_multipart_upload(&self.name, key, upload_id)
            .await
    }

    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<PartReceipt>> {
        let parts = self.client.list_parts(&self.name, key, upload_id).await?;
        parts
            .into_iter()
            .map(|part| {
                let crc64 = part.hash_crc64ecma.ok_or_else(|| {
                    Error::new(
                        ErrorKind::MalformedResponse,
                        format!(
                            "ListParts gave no HashCrc64ecma for part {}",
                            part.part_number
                        ),
                    )
                    .with_operation(Operation::ListParts)
                    .with_bucket(&self.name)
                    .with_key(key)
                    .with_upload_id(upload_id)
                })?;
                Ok(PartReceipt {
                    part_number: part.part_number,
                    etag: part.etag,
                    crc64,
                    size: part.size,
                })
            })
            .collect()
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectHead>> {
        match self.client.head_object(&self.name, key).await {
            Ok(metadata) => Ok(Some(ObjectHead {
                size: metadata.content_length,
                etag: metadata.etag,
                crc64: metadata.crc64,
                object_type: metadata.object_type,
            })),
            Err(error) if error.status() == Some(404) => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn bucket(&self) -> Option<&str> {
        Some(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_is_guessed_from_the_extension() {
        assert_eq!(guess_content_type("a/b.txt"), "text/plain");
        assert_eq!(guess_content_type("x.JSON"), "application/json");
        assert_eq!(guess_content_type("noext"), DEFAULT_CONTENT_TYPE);
        assert_eq!(guess_content_type("dir.d/file"), DEFAULT_CONTENT_TYPE);
    }

    #[test]
    fn options_go_to_the_right_operations() {
        let options = ObjectOptions {
            cache_control: Some("no-cache".into()),
            metadata: vec![("Project".into(), "Rust".into())],
            storage_class: Some("IA".into()),
            tagging: Some("a=b".into()),
            forbid_overwrite: true,
            server_side_encryption: Some("AES256".into()),
            acl: Some("private".into()),
            callback: Some("e30=".into()),
            ..ObjectOptions::default()
        };
        let put = object_headers("k.txt", &options, OptionsFor::PutObject).unwrap();
        assert_eq!(put["content-type"], "text/plain");
        assert_eq!(put["x-oss-meta-project"], "Rust");
        assert_eq!(put["x-oss-object-acl"], "private");
        assert_eq!(put["x-oss-forbid-overwrite"], "true");
        let initiate = object_headers("k.txt", &options, OptionsFor::Initiate).unwrap();
        assert_eq!(initiate["x-oss-storage-class"], "IA");
        assert_eq!(initiate["x-oss-server-side-encryption"], "AES256");
        assert_eq!(initiate["x-oss-forbid-overwrite"], "true");
        assert!(!initiate.contains_key("x-oss-object-acl"));
        assert!(!initiate.contains_key("x-oss-callback"));
        let complete = object_headers("k.txt", &options, OptionsFor::Complete).unwrap();
        assert_eq!(complete["x-oss-forbid-overwrite"], "true");
        assert_eq!(complete["x-oss-object-acl"], "private");
        assert_eq!(complete["x-oss-callback"], "e30=");
        assert!(!complete.contains_key("content-type"));
        assert!(!complete.contains_key("x-oss-meta-project"));
        assert!(!complete.contains_key("x-oss-storage-class"));
        let bad = ObjectOptions {
            cache_control: Some("a\nb".into()),
            ..ObjectOptions::default()
        };
        let error = object_headers("k", &bad, OptionsFor::PutObject).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert!(error.to_string().contains("cache-control"), "{error}");
    }

    #[test]
    fn ranges() {
        assert_eq!(range_header(&(..)).unwrap(), None);
        assert_eq!(range_header(&(0..)).unwrap(), None);
        assert_eq!(
            range_header(&(5..10)).unwrap().as_deref(),
            Some("bytes=5-9")
        );
        assert_eq!(
            range_header(&(5..=10)).unwrap().as_deref(),
            Some("bytes=5-10")
        );
        assert_eq!(
            range_header(&(100..)).unwrap().as_deref(),
            Some("bytes=100-")
        );
        assert_eq!(
            range_header(&(..=99)).unwrap().as_deref(),
            Some("bytes=0-99")
        );
        assert!(range_header(&(5..5)).is_err());
        assert!(range_header(&(..0)).is_err());
    }

    #[test]
    fn content_md5_is_base64() {
        assert_eq!(content_md5(b"hello oss\n"), "S0EUoYu/KkxURvmvzPmSPw==");
        assert_eq!(content_md5(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }
}
