//! One function per OSS operation: read the request, ask the store, write OSS's answer.
//!
//! Bodies stream: PutObject and UploadPart hash each chunk (MD5 when needed, CRC-64 always) and
//! hand it to the store's blob writer as it arrives, so a 100 MiB part is never held twice.

use std::ops::Bound;
use std::time::{Duration, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode, Version};
use md5::{Digest, Md5};

use super::errors::OssError;
use super::faults::BodyFault;
use super::request::Route;
use super::service::{
    empty_response, stream_response, xml_response, BodyError, BodyReader, ResponseBody,
};
use super::store::{
    self, new_upload_id, CompleteOptions, ObjectMeta, ObjectType, ObjectVersion, PartMeta,
    PartSelection, StoreError, StoredHeaders, UploadMeta,
};
use super::{EtagMode, Shared};
use crate::crc64::Crc64;
use crate::error::Operation;
use crate::limits::{
    MAX_LIST_PAGE, MAX_PART_NUMBER, MAX_PART_SIZE, MAX_PUT_OBJECT_SIZE, MIN_PART_NUMBER,
};
use crate::xml::{self, url_encode_listing};

/// Why a handler did not produce a response.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Answer with this error.
    Oss(OssError),
    /// Drop the connection without an answer (the client went away, or a fault asked for it).
    Disconnect,
}

impl From<OssError> for Failure {
    fn from(e: OssError) -> Self {
        Failure::Oss(e)
    }
}

impl From<BodyError> for Failure {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::Timeout => Failure::Oss(OssError::request_timeout()),
            BodyError::Client | BodyError::Reset => Failure::Disconnect,
        }
    }
}

type HandlerResult = Result<Response<ResponseBody>, Failure>;

/// The largest body accepted by the operations whose body is XML or empty (Complete lists up to
/// 10,000 parts, well under this).
const MAX_SMALL_BODY_BYTES: usize = xml::MAX_XML_BODY_BYTES;
/// `max-keys` of ListObjects when absent.
const DEFAULT_MAX_KEYS: u32 = 100;
/// Storage classes OSS accepts in `x-oss-storage-class`.
const STORAGE_CLASSES: &[&str] = &[
    "Standard",
    "IA",
    "Archive",
    "ColdArchive",
    "DeepColdArchive",
];
/// Values of `x-oss-object-acl`.
const OBJECT_ACLS: &[&str] = &["default", "private", "public-read", "public-read-write"];
/// Values of `x-oss-server-side-encryption`.
const SSE_ALGORITHMS: &[&str] = &["AES256", "KMS", "SM4"];
/// At most this many tags per object.
const MAX_TAGS: usize = 10;
/// Standard headers stored at Put/Initiate and returned as they were sent.
const ECHOED_HEADERS: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// Everything a handler needs about the request, besides its body.
pub(crate) struct Cx<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) route: &'a Route,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) host: &'a str,
    pub(crate) version: Version,
    /// A fault for the response body (GetObject).
    pub(crate) response_fault: Option<BodyFault>,
}

impl Cx<'_> {
    fn bucket(&self) -> &str {
        &self.route.bucket
    }

    fn key(&self) -> &str {
        self.route.key.as_deref().unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.route.query.get(name)
    }

    fn upload_id(&self) -> &str {
        self.query("uploadId").unwrap_or_default()
    }

    /// `encoding-type`: absent, or `url` (anything else is refused, EC 0017-00000235).
    fn url_encoding(&self) -> Result<bool, OssError> {
        match self.query("encoding-type") {
            None => Ok(false),
            Some(v) if v == xml::ENCODING_TYPE_URL => Ok(true),
            Some(v) => Err(OssError::invalid_encoding_type(v)),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::Oss(OssError::internal(e))
}

fn store_error(e: StoreError, cx: &Cx<'_>, no_such_upload_ec: &'static str) -> Failure {
    Failure::Oss(match e {
        StoreError::NoSuchBucket => OssError::no_such_bucket(cx.bucket()),
        StoreError::NoSuchUpload => OssError::no_such_upload(cx.upload_id(), no_such_upload_ec),
        StoreError::InvalidPart { part_number, etag } => {
            OssError::invalid_part(&etag, part_number, cx.upload_id())
        }
        StoreError::EntityTooSmall {
            part_number,
            size,
            etag,
        } => OssError::entity_too_small(part_number, size, &etag),
        StoreError::FileAlreadyExists => OssError::file_already_exists(""),
        StoreError::Io(e) => OssError::internal(e),
    })
}

fn encode_if(url: bool, value: &str) -> String {
    if url {
        url_encode_listing(value)
    } else {
        value.to_owned()
    }
}

fn http_date(unix_seconds: u64) -> String {
    crate::sign::format_rfc1123(UNIX_EPOCH + Duration::from_secs(unix_seconds))
}

fn iso_date(unix_seconds: u64) -> String {
    xml::format_iso8601_millis(UNIX_EPOCH + Duration::from_secs(unix_seconds))
}

fn set(response: &mut Response<ResponseBody>, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        response.headers_mut().insert(name, value);
    }
}

/// Runs the operation the request was routed to.
pub(crate) async fn dispatch(cx: &Cx<'_>, body: &mut BodyReader) -> HandlerResult {
    if cx.route.operation == Operation::PutBucket {
        return put_bucket(cx, body).await;
    }
    cx.shared
        .store
        .ensure_bucket(cx.bucket())
        .await
        .map_err(|e| store_error(e, cx, ""))?;
    match cx.route.operation {
        Operation::PutObject => put_object(cx, body).await,
        Operation::GetObject => get_object(cx, false).await,
        Operation::HeadObject => get_object(cx, true).await,
        Operation::DeleteObject => delete_object(cx).await,
        Operation::InitiateMultipartUpload => initiate(cx, body).await,
        Operation::UploadPart => upload_part(cx, body).await,
        Operation::CompleteMultipartUpload => complete(cx, body).await,
        Operation::AbortMultipartUpload => abort(cx, body).await,
        Operation::ListParts => list_parts(cx).await,
        Operation::ListMultipartUploads => list_uploads(cx).await,
        Operation::ListObjects => list_objects(cx).await,
        other => Err(OssError::not_implemented(other.as_str()).into()),
    }
}

// ----- request headers ---------------------------------------------------------------------

/// `x-oss-forbid-overwrite`: absent or `false` allows, `true` forbids, anything else is refused.
fn forbid_overwrite(cx: &Cx<'_>) -> Result<bool, OssError> {
    match cx.header("x-oss-forbid-overwrite") {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(OssError::invalid_forbid_overwrite(v)),
    }
}

/// `Content-MD5`: the header as sent and its 16 bytes; malformed values are refused up front.
fn expected_md5(cx: &Cx<'_>) -> Result<Option<(String, [u8; 16])>, OssError> {
    use base64::Engine as _;
    let Some(raw) = cx.headers.get("content-md5") else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(raw.as_bytes()).into_owned();
    let digest = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        .ok_or_else(|| OssError::invalid_digest(&text, true))?;
    Ok(Some((text, digest)))
}

fn check_md5(
    expected: &Option<(String, [u8; 16])>,
    actual: Option<&[u8; 16]>,
) -> Result<(), OssError> {
    match (expected, actual) {
        (Some((text, want)), Some(got)) if want != got => {
            Err(OssError::invalid_digest(text, false))
        }
        _ => Ok(()),
    }
}

/// The declared body length. A request must say how long its body is: `Content-Length`,
/// chunked transfer encoding, or HTTP/2 framing.
fn declared_length(cx: &Cx<'_>) -> Result<Option<u64>, OssError> {
    if let Some(length) = cx.header("content-length") {
        return length
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| OssError::missing_content_length());
    }
    let chunked = cx
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked || cx.version >= Version::HTTP_2 {
        Ok(None)
    } else {
        Err(OssError::missing_content_length())
    }
}

fn check_choice(
    cx: &Cx<'_>,
    name: &str,
    allowed: &[&str],
    message: &str,
) -> Result<Option<String>, OssError> {
    match cx.header(name) {
        None => Ok(None),
        Some(v) if allowed.contains(&v) => Ok(Some(v.to_owned())),
        Some(v) => Err(OssError::invalid_argument(message, name, v)),
    }
}

/// The headers PutObject and Initiate store with the object.
fn stored_headers(cx: &Cx<'_>) -> Result<StoredHeaders, OssError> {
    let content_type = cx
        .header("content-type")
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            mime_guess::from_path(cx.key())
                .first_raw()
                .unwrap_or("application/octet-stream")
                .to_owned()
        });
    let storage_class = check_choice(
        cx,
        "x-oss-storage-class",
        STORAGE_CLASSES,
        "Invalid storage class.",
    )?
    .unwrap_or_else(|| "Standard".to_owned());
    let acl = check_choice(
        cx,
        "x-oss-object-acl",
        OBJECT_ACLS,
        "no such object access control exists",
    )?;
    if let Some(sse) = cx.header("x-oss-server-side-encryption") {
        if !SSE_ALGORITHMS.contains(&sse) {
            return Err(OssError::invalid_encryption_algorithm());
        }
    }
    let tagging = cx.header("x-oss-tagging").map(str::to_owned);
    if let Some(tags) = &tagging {
        if tags.split('&').filter(|t| !t.is_empty()).count() > MAX_TAGS {
            return Err(OssError::invalid_argument(
                "Object tags cannot be greater than 10",
                "x-oss-tagging",
                tags,
            ));
        }
    }
    let mut echo = Vec::new();
    for (name, value) in cx.headers {
        let name = name.as_str();
        let keep = ECHOED_HEADERS.contains(&name)
            || name.starts_with("x-oss-meta-")
            || name.starts_with("x-oss-server-side-");
        if keep {
            if let Ok(value) = value.to_str() {
                echo.push((name.to_owned(), value.to_owned()));
            }
        }
    }
    Ok(StoredHeaders {
        content_type,
        storage_class,
        acl,
        tagging,
        echo,
    })
}

fn echo_encryption(response: &mut Response<ResponseBody>, headers: &StoredHeaders) {
    for (name, value) in &headers.echo {
        if name.starts_with("x-oss-server-side-") {
            set(response, name, value);
        }
    }
}

// ----- bodies ------------------------------------------------------------------------------

/// A body received into a blob.
struct Received {
    blob: store::Blob,
    md5: Option<[u8; 16]>,
    crc64: u64,
    len: u64,
}

/// Streams the body into a new blob, hashing as it goes, and checks it against `expected`
/// (`Content-MD5`). MD5 is computed only when the ETag needs it or the client sent one.
async fn receive(
    cx: &Cx<'_>,
    body: &mut BodyReader,
    limit: u64,
    too_large: fn() -> OssError,
    expected: &Option<(String, [u8; 16])>,
) -> Result<Received, Failure> {
    let want_md5 = cx.shared.etag_mode == EtagMode::Md5 || expected.is_some();
    let mut writer = cx
        .shared
        .store
        .new_blob(cx.bucket())
        .await
        .map_err(internal)?;
    let mut md5 = want_md5.then(Md5::new);
    let mut crc = Crc64::new();
    while let Some(chunk) = body.chunk().await? {
        if writer.len() + chunk.len() as u64 > limit {
            return Err(too_large().into());
        }
        // A chunk is at most the HTTP/1 read buffer (512 KiB), so it is still in the cache for
        // the hashes and the store.
        if let Some(md5) = md5.as_mut() {
            md5.update(&chunk);
        }
        crc.update(&chunk);
        writer.write(chunk).await.map_err(internal)?;
    }
    let len = writer.len();
    let blob = writer.finish().await.map_err(internal)?;
    let md5 = md5.map(|m| m.finalize().into());
    check_md5(expected, md5.as_ref())?;
    Ok(Received {
        blob,
        md5,
        crc64: crc.value(),
        len,
    })
}

/// Reads a small body (XML or empty) whole and checks its `Content-MD5`.
async fn small_body(cx: &Cx<'_>, body: &mut BodyReader) -> Result<Bytes, Failure> {
    let expected = expected_md5(cx)?;
    let mut buffer = BytesMut::new();
    while let Some(chunk) = body.chunk().await? {
        if buffer.len() + chunk.len() > MAX_SMALL_BODY_BYTES {
            return Err(OssError::malformed_xml().into());
        }
        buffer.extend_from_slice(&chunk);
    }
    let bytes = buffer.freeze();
    let digest: [u8; 16] = Md5::digest(&bytes).into();
    check_md5(&expected, Some(&digest))?;
    Ok(bytes)
}

/// The ETag of a body: its MD5 when computed, else (opaque mode) a cheap unique value of the
/// same shape.
fn body_etag(md5: Option<&[u8; 16]>, crc64: u64) -> String {
    match md5 {
        Some(md5) => format!("\"{}\"", hex::encode_upper(md5)),
        None => format!("\"{crc64:016X}{:016X}\"", fastrand::u64(..)),
    }
}

fn base64_md5(md5: &[u8; 16]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(md5)
}

// ----- buckets -----------------------------------------------------------------------------

async fn put_bucket(cx: &Cx<'_>, body: &mut BodyReader) -> HandlerResult {
    // The optional CreateBucketConfiguration (storage class, redundancy) is accepted and
    // ignored.
    small_body(cx, body).await?;
    cx.shared
        .store
        .create_bucket(cx.bucket())
        .await
        .map_err(internal)?;
    let mut response = empty_response(StatusCode::OK);
    set(&mut response, "location", &format!("/{}", cx.bucket()));
    Ok(response)
}

// ----- objects -----------------------------------------------------------------------------

async fn put_object(cx: &Cx<'_>, body: &mut BodyReader) -> HandlerResult {
    let forbid = forbid_overwrite(cx)?;
    let headers = stored_headers(cx)?;
    let expected = expected_md5(cx)?;
    if declared_length(cx)?.is_some_and(|len| len > MAX_PUT_OBJECT_SIZE) {
        return Err(OssError::inline_data_too_large().into());
    }
    let store = &cx.shared.store;
    // Fail before reading a large body; the store checks again when it commits.
    if forbid
        && store
            .object(cx.bucket(), cx.key())
            .map_err(|e| store_error(e, cx, ""))?
            .is_some()
    {
        return Err(OssError::file_already_exists("0026-00000002").into());
    }
    let received = receive(
        cx,
        body,
        MAX_PUT_OBJECT_SIZE,
        OssError::inline_data_too_large,
        &expected,
    )
    .await?;
    let meta = ObjectMeta {
        key: cx.key().to_owned(),
        size: received.len,
        etag: body_etag(received.md5.as_ref(), received.crc64),
        crc64: received.crc64,
        content_md5: received.md5.as_ref().map(base64_md5),
        object_type: ObjectType::Normal,
        last_modified: store::unix_now(),
        headers,
    };
    let version = store
        .put_object(cx.bucket(), meta, received.blob, forbid)
        .await
        .map_err(|e| match e {
            StoreError::FileAlreadyExists => OssError::file_already_exists("0026-00000002").into(),
            other => store_error(other, cx, ""),
        })?;
    let mut response = empty_response(StatusCode::OK);
    set(&mut response, "etag", &version.meta.etag);
    if let Some(md5) = &version.meta.content_md5 {
        set(&mut response, "content-md5", md5);
    }
    set(
        &mut response,
        "x-oss-hash-crc64ecma",
        &version.meta.crc64.to_string(),
    );
    echo_encryption(&mut response, &version.meta.headers);
    Ok(response)
}

async fn delete_object(cx: &Cx<'_>) -> HandlerResult {
    cx.shared
        .store
        .delete_object(cx.bucket(), cx.key())
        .await
        .map_err(|e| store_error(e, cx, ""))?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// A `Range: bytes=...` request, resolved against the object size: `Ok(None)` means "serve the
/// whole object with 200".
fn resolve_range(cx: &Cx<'_>, size: u64) -> Result<Option<(u64, u64)>, OssError> {
    let Some(range) = cx.header("range") else {
        return Ok(None);
    };
    let standard = cx
        .header("x-oss-range-behavior")
        .is_some_and(|v| v.eq_ignore_ascii_case("standard"));
    // Only the first range of a list is served (§5.9).
    let first = range
        .trim()
        .strip_prefix("bytes=")
        .map(|spec| spec.split(',').next().unwrap_or_default().trim());
    let parsed = first.and_then(|spec| {
        let (a, b) = spec.split_once('-')?;
        let a = a.trim();
        let b = b.trim();
        match (a.is_empty(), b.is_empty()) {
            (false, _) => {
                let start: u64 = a.parse().ok()?;
                let end: Option<u64> = if b.is_empty() {
                    None
                } else {
                    Some(b.parse().ok()?)
                };
                if end.is_some_and(|end| end < start) {
                    return None;
                }
                Some((Some(start), end))
            }
            (true, false) => Some((None, Some(b.parse().ok()?))),
            (true, true) => None,
        }
    });
    // A malformed header is ignored whatever the behaviour.
    let Some((start, end)) = parsed else {
        return Ok(None);
    };
    let resolved = match (start, end) {
        (Some(start), end) => {
            if start >= size {
                None
            } else {
                match end {
                    None => Some((start, size - 1)),
                    Some(end) if end < size => Some((start, end)),
                    // OSS ignores a range running past the end unless asked to be standard,
                    // which clamps it.
                    Some(_) if standard => Some((start, size - 1)),
                    Some(_) => return Ok(None),
                }
            }
        }
        (None, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                None
            } else if suffix > size {
                if standard {
                    Some((0, size - 1))
                } else {
                    return Ok(None);
                }
            } else {
                Some((size - suffix, size - 1))
            }
        }
        (None, None) => None,
    };
    match resolved {
        Some(range) => Ok(Some(range)),
        None if standard => Err(OssError::invalid_range()),
        None => Ok(None),
    }
}

/// Answers the conditional headers: `Some(response)` when the condition settles it.
fn check_conditions(
    cx: &Cx<'_>,
    meta: &ObjectMeta,
) -> Result<Option<Response<ResponseBody>>, OssError> {
    let etag_matches = |list: &str| {
        list.split(',').any(|candidate| {
            let candidate = candidate.trim();
            candidate == "*"
                || candidate
                    .trim_matches('"')
                    .eq_ignore_ascii_case(meta.etag.trim_matches('"'))
        })
    };
    let date = |name: &str| {
        cx.header(name)
            .and_then(crate::sign::parse_rfc1123)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    if let Some(list) = cx.header("if-match") {
        if !etag_matches(list) {
            return Err(OssError::precondition_failed("If-Match"));
        }
    }
    if let Some(since) = date("if-unmodified-since") {
        if meta.last_modified > since {
            return Err(OssError::precondition_failed("If-Unmodified-Since"));
        }
    }
    let not_modified = match cx.header("if-none-match") {
        Some(list) => etag_matches(list),
        None => date("if-modified-since").is_some_and(|since| meta.last_modified <= since),
    };
    if not_modified {
        let mut response = empty_response(StatusCode::NOT_MODIFIED);
        set(&mut response, "etag", &meta.etag);
        set(
            &mut response,
            "last-modified",
            &http_date(meta.last_modified),
        );
        return Ok(Some(response));
    }
    Ok(None)
}

async fn get_object(cx: &Cx<'_>, head: bool) -> HandlerResult {
    let version: std::sync::Arc<ObjectVersion> = cx
        .shared
        .store
        .object(cx.bucket(), cx.key())
        .map_err(|e| store_error(e, cx, ""))?
        .ok_or_else(|| OssError::no_such_key(cx.key()))?;
    let meta = &version.meta;
    if cx.route.query.has("objectMeta") {
        // GetObjectMeta: the basic metadata only (the SDKs' "does it exist" call).
        let mut response = empty_response(StatusCode::OK);
        set(&mut response, "content-length", &meta.size.to_string());
        set(&mut response, "etag", &meta.etag);
        set(
            &mut response,
            "last-modified",
            &http_date(meta.last_modified),
        );
        set(
            &mut response,
            "x-oss-hash-crc64ecma",
            &meta.crc64.to_string(),
        );
        return Ok(response);
    }
    if let Some(response) = check_conditions(cx, meta)? {
        return Ok(response);
    }
    let range = if head {
        None
    } else {
        resolve_range(cx, meta.size)?
    };
    let (start, end) = range.map_or((0, meta.size), |(a, b)| (a, b + 1));
    let mut response = if head {
        empty_response(StatusCode::OK)
    } else {
        let stream = store::stream_range(version.pieces.clone(), start, end);
        stream_response(
            if range.is_some() {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            },
            stream,
            cx.response_fault,
        )
    };
    set(&mut response, "content-length", &(end - start).to_string());
    if let Some((a, b)) = range {
        set(
            &mut response,
            "content-range",
            &format!("bytes {a}-{b}/{}", meta.size),
        );
    }
    set(&mut response, "accept-ranges", "bytes");
    set(&mut response, "content-type", &meta.headers.content_type);
    set(&mut response, "etag", &meta.etag);
    set(
        &mut response,
        "last-modified",
        &http_date(meta.last_modified),
    );
    set(
        &mut response,
        "x-oss-object-type",
        meta.object_type.as_str(),
    );
    set(
        &mut response,
        "x-oss-hash-crc64ecma",
        &meta.crc64.to_string(),
    );
    set(
        &mut response,
        "x-oss-storage-class",
        &meta.headers.storage_class,
    );
    if let Some(md5) = &meta.content_md5 {
        set(&mut response, "content-md5", md5);
    }
    if let Some(tags) = &meta.headers.tagging {
        let count = tags.split('&').filter(|t| !t.is_empty()).count();
        set(&mut response, "x-oss-tagging-count", &count.to_string());
    }
    for (name, value) in &meta.headers.echo {
        set(&mut response, name, value);
    }
    if !head {
        for (param, name) in [
            ("response-content-type", "content-type"),
            ("response-content-language", "content-language"),
            ("response-expires", "expires"),
            ("response-cache-control", "cache-control"),
            ("response-content-disposition", "content-disposition"),
            ("response-content-encoding", "content-encoding"),
        ] {
            if let Some(value) = cx.query(param) {
                set(&mut response, name, value);
            }
        }
    }
    Ok(response)
}

// ----- multipart ---------------------------------------------------------------------------

async fn initiate(cx: &Cx<'_>, body: &mut BodyReader) -> HandlerResult {
    let url = cx.url_encoding()?;
    let forbid = forbid_overwrite(cx)?;
    let headers = stored_headers(cx)?;
    small_body(cx, body).await?;
    let meta = UploadMeta {
        key: cx.key().to_owned(),
        upload_id: new_upload_id(),
        initiated: store::unix_now(),
        headers,
    };
    let upload_id = meta.upload_id.clone();
    cx.shared
        .store
        .initiate(cx.bucket(), meta, forbid)
        .await
        .map_err(|e| store_error(e, cx, ""))?;
    let result = xml::InitiateMultipartUploadResult {
        bucket: cx.bucket().to_owned(),
        key: encode_if(url, cx.key()),
        upload_id,
        encoding_type: url.then(|| xml::ENCODING_TYPE_URL.to_owned()),
    };
    Ok(xml_response(StatusCode::OK, xml::to_xml(&result)))
}

async fn upload_part(cx: &Cx<'_>, body: &mut BodyReader) -> HandlerResult {
    let part_number = cx
        .route
        .part_number
        .ok_or_else(OssError::missing_part_number)?;
    let store = &cx.shared.store;
    let upload = store
        .upload(cx.bucket(), cx.upload_id(), cx.key())
        .map_err(|e| store_error(e, cx, "0017-00000244"))?
        .ok_or_else(|| OssError::no_such_upload(cx.upload_id(), "0017-00000244"))?;
    let expected = expected_md5(cx)?;
    if declared_length(cx)?.is_some_and(|len| len > MAX_PART_SIZE) {
        return Err(OssError::entity_too_large().into());
    }
    let received = receive(
        cx,
        body,
        MAX_PART_SIZE,
        OssError::entity_too_large,
        &expected,
    )
    .await?;
    let meta = PartMeta {
        part_number,
        size: received.len,
        etag: body_etag(received.md5.as_ref(), received.crc64),
        crc64: received.crc64,
        last_modified: store::unix_now(),
    };
    let (etag, crc64) = (meta.etag.clone(), meta.crc64);
    store
        .put_part(cx.bucket(), cx.upload_id(), cx.key(), meta, received.blob)
        .await
        .map_err(|e| store_error(e, cx, "0042-00000104"))?;
    let mut response = empty_response(StatusCode::OK);
    set(&mut response, "etag", &etag);
    if let Some(md5) = &received.md5 {
        set(&mut response, "content-md5", &base64_md5(md5));
    }
    set(&mut response, "x-oss-hash-crc64ecma", &crc64.to_string());
    echo_encryption(&mut response, &upload.headers);
    Ok(response)
}

/// The parts of a Complete body, checked for range and order (§5.4, `oss-errors.md` §3.3).
fn parse_complete_body(bytes: &[u8]) -> Result<Vec<(u32, String)>, OssError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(OssError::malformed_xml());
    }
    let body: xml::CompleteMultipartUpload =
        xml::from_xml(bytes).map_err(|_| OssError::malformed_xml())?;
    let mut previous = 0u32;
    let mut parts = Vec::with_capacity(body.parts.len());
    for part in body.parts {
        if !(MIN_PART_NUMBER..=MAX_PART_NUMBER).contains(&part.part_number) {
            return Err(OssError::complete_part_number_out_of_range());
        }
        if part.part_number <= previous {
            return Err(OssError::invalid_part_order());
        }
        previous = part.part_number;
        parts.push((part.part_number, part.etag));
    }
    Ok(parts)
}

async fn complete(cx: &Cx<'_>, body: &mut BodyReader) -> HandlerResult {
    let store = &cx.shared.store;
    if store
        .upload(cx.bucket(), cx.upload_id(), cx.key())
        .map_err(|e| store_error(e, cx, ""))?
        .is_none()
    {
        return Err(OssError::no_such_upload(cx.upload_id(), "").into());
    }
    let url = cx.url_encoding()?;
    let options = CompleteOptions {
        forbid_overwrite: forbid_overwrite(cx)?,
        acl: check_choice(
            cx,
            "x-oss-object-acl",
            OBJECT_ACLS,
            "no such object access control exists",
        )?,
    };
    let complete_all = cx
        .header("x-oss-complete-all")
        .is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    let bytes = small_body(cx, body).await?;
    let selection = if complete_all {
        if !bytes.is_empty() {
            return Err(OssError::complete_all_with_body().into());
        }
        PartSelection::All
    } else {
        PartSelection::Listed(parse_complete_body(&bytes)?)
    };
    let version = store
        .complete(cx.bucket(), cx.upload_id(), cx.key(), &selection, &options)
        .await
        .map_err(|e| match e {
            StoreError::FileAlreadyExists => OssError::file_already_exists("0042-00000214").into(),
            other => store_error(other, cx, ""),
        })?;
    let encoded_key = crate::sign::uri_encode(cx.key(), true);
    let location = if cx.route.virtual_hosted {
        format!("http://{}/{encoded_key}", cx.host)
    } else {
        format!("http://{}/{}/{encoded_key}", cx.host, cx.bucket())
    };
    let result = xml::CompleteMultipartUploadResult {
        encoding_type: url.then(|| xml::ENCODING_TYPE_URL.to_owned()),
        location,
        bucket: cx.bucket().to_owned(),
        key: encode_if(url, cx.key()),
        etag: version.meta.etag.clone(),
    };
    let mut response = xml_response(StatusCode::OK, xml::to_xml(&result));
    set(&mut response, "etag", &version.meta.etag);
    set(
        &mut response,
        "x-oss-hash-crc64ecma",
        &version.meta.crc64.to_string(),
    );
    echo_encryption(&mut response, &version.meta.headers);
    Ok(response)
}

async fn abort(cx: &Cx<'_>, body: &mut BodyReader) -> HandlerResult {
    small_body(cx, body).await?;
    cx.shared
        .store
        .abort(cx.bucket(), cx.upload_id(), cx.key())
        .await
        .map_err(|e| store_error(e, cx, "0042-00000002"))?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

/// A paging limit such as `max-parts`: absent → `default`, above 1000 → 1000, not a positive
/// integer → `InvalidArgument`.
fn page_limit(cx: &Cx<'_>, name: &str, default: u32) -> Result<u32, OssError> {
    match cx.query(name) {
        None | Some("") => Ok(default),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .map(|n| n.min(MAX_LIST_PAGE))
            .ok_or_else(|| {
                OssError::invalid_argument(
                    &format!("Argument {name} must be an integer between 1 and {MAX_LIST_PAGE}."),
                    name,
                    raw,
                )
            }),
    }
}

async fn list_parts(cx: &Cx<'_>) -> HandlerResult {
    let url = cx.url_encoding()?;
    let max_parts = page_limit(cx, "max-parts", MAX_LIST_PAGE)?;
    let marker: u32 = match cx.query("part-number-marker") {
        None | Some("") => 0,
        Some(raw) => raw.parse().map_err(|_| {
            OssError::invalid_argument(
                "Argument part-number-marker must be an integer.",
                "part-number-marker",
                raw,
            )
        })?,
    };
    let (upload, parts) = cx
        .shared
        .store
        .list_parts(cx.bucket(), cx.upload_id(), cx.key())
        .map_err(|e| store_error(e, cx, ""))?;
    let mut remaining = parts
        .into_iter()
        .filter(|p| p.part_number > marker)
        .peekable();
    let mut listed = Vec::new();
    while listed.len() < max_parts as usize {
        match remaining.next() {
            Some(part) => listed.push(part),
            None => break,
        }
    }
    let is_truncated = remaining.peek().is_some();
    let next_marker = listed.last().map_or(marker, |p| p.part_number);
    let result = xml::ListPartsResult {
        encoding_type: url.then(|| xml::ENCODING_TYPE_URL.to_owned()),
        bucket: cx.bucket().to_owned(),
        key: encode_if(url, &upload.key),
        upload_id: upload.upload_id,
        storage_class: Some(upload.headers.storage_class),
        part_number_marker: marker,
        next_part_number_marker: next_marker,
        max_parts,
        is_truncated,
        parts: listed
            .into_iter()
            .map(|p| xml::ListedPart {
                part_number: p.part_number,
                last_modified: iso_date(p.last_modified),
                etag: p.etag,
                hash_crc64ecma: Some(p.crc64),
                size: p.size,
            })
            .collect(),
    };
    Ok(xml_response(StatusCode::OK, xml::to_xml(&result)))
}

/// One entry of a listing page.
enum Entry<T> {
    Item(String, T),
    Prefix(String),
}

/// Pages sorted `(key, item)` pairs that come after the marker: keys outside `prefix` are
/// skipped, keys with `delimiter` after the prefix roll up into one common prefix (counted
/// once), and a common prefix equal to `marker` is skipped (the last page ended on it).
/// Returns the page and whether more follows.
fn page<T>(
    items: impl Iterator<Item = (String, T)>,
    prefix: &str,
    delimiter: &str,
    marker: &str,
    max: usize,
) -> (Vec<Entry<T>>, bool) {
    let mut out: Vec<Entry<T>> = Vec::new();
    for (key, item) in items {
        if !key.starts_with(prefix) {
            // Keys with the prefix form one run starting at the prefix itself; in sorted input
            // a key past the prefix that lacks it means the run is over.
            if key.as_str() > prefix {
                break;
            }
            continue;
        }
        let rolled = (!delimiter.is_empty())
            .then(|| {
                key[prefix.len()..]
                    .find(delimiter)
                    .map(|at| key[..prefix.len() + at + delimiter.len()].to_owned())
            })
            .flatten();
        if let Some(common) = rolled {
            // The previous page ended on this very prefix. (A marker inside the prefix's
            // range came from a page listed without the delimiter: report the prefix.)
            if common == marker {
                continue;
            }
            if matches!(out.last(), Some(Entry::Prefix(last)) if *last == common) {
                continue;
            }
            if out.len() == max {
                return (out, true);
            }
            out.push(Entry::Prefix(common));
        } else {
            if out.len() == max {
                return (out, true);
            }
            out.push(Entry::Item(key, item));
        }
    }
    (out, false)
}

async fn list_uploads(cx: &Cx<'_>) -> HandlerResult {
    let url = cx.url_encoding()?;
    let max_uploads = page_limit(cx, "max-uploads", MAX_LIST_PAGE)?;
    let prefix = cx.query("prefix").unwrap_or_default().to_owned();
    let delimiter = cx.query("delimiter").unwrap_or_default().to_owned();
    let key_marker = cx.query("key-marker").unwrap_or_default().to_owned();
    // The upload-id marker only means something with a key marker.
    let upload_id_marker = if key_marker.is_empty() {
        String::new()
    } else {
        cx.query("upload-id-marker").unwrap_or_default().to_owned()
    };
    let (entries, is_truncated) = cx
        .shared
        .store
        .with_bucket(cx.bucket(), |b| {
            let mut uploads: Vec<(String, UploadMeta)> = b
                .uploads
                .values()
                .map(|u| (u.meta.key.clone(), u.meta.clone()))
                .filter(|(key, meta)| {
                    key_marker.is_empty()
                        || key.as_str() > key_marker.as_str()
                        || (key == &key_marker
                            && !upload_id_marker.is_empty()
                            && meta.upload_id.as_str() > upload_id_marker.as_str())
                })
                .collect();
            uploads.sort_by(|a, b| (&a.0, &a.1.upload_id).cmp(&(&b.0, &b.1.upload_id)));
            page(
                uploads.into_iter(),
                &prefix,
                &delimiter,
                &key_marker,
                max_uploads as usize,
            )
        })
        .map_err(|e| store_error(e, cx, ""))?;
    let mut result = xml::ListMultipartUploadsResult {
        encoding_type: url.then(|| xml::ENCODING_TYPE_URL.to_owned()),
        bucket: cx.bucket().to_owned(),
        key_marker: encode_if(url, &key_marker),
        upload_id_marker: upload_id_marker.clone(),
        delimiter: encode_if(url, &delimiter),
        prefix: encode_if(url, &prefix),
        max_uploads,
        is_truncated,
        ..Default::default()
    };
    for entry in &entries {
        match entry {
            Entry::Item(key, meta) => {
                result.next_key_marker = encode_if(url, key);
                result.next_upload_id_marker = meta.upload_id.clone();
                result.uploads.push(xml::ListedUpload {
                    key: encode_if(url, key),
                    upload_id: meta.upload_id.clone(),
                    storage_class: Some(meta.headers.storage_class.clone()),
                    initiated: iso_date(meta.initiated),
                });
            }
            Entry::Prefix(common) => {
                result.next_key_marker = encode_if(url, common);
                result.next_upload_id_marker = String::new();
                result.common_prefixes.push(xml::CommonPrefix {
                    prefix: encode_if(url, common),
                });
            }
        }
    }
    Ok(xml_response(StatusCode::OK, xml::to_xml(&result)))
}

async fn list_objects(cx: &Cx<'_>) -> HandlerResult {
    let url = cx.url_encoding()?;
    let max_keys = match cx.query("max-keys") {
        Some("0") => 0,
        _ => page_limit(cx, "max-keys", DEFAULT_MAX_KEYS)?,
    };
    let prefix = cx.query("prefix").unwrap_or_default().to_owned();
    let delimiter = cx.query("delimiter").unwrap_or_default().to_owned();
    let start_after = cx.query("start-after").map(str::to_owned);
    let token = cx.query("continuation-token").map(str::to_owned);
    // The continuation token is the hex of the last key (or common prefix) of the last page.
    let token_key = match &token {
        Some(token) => Some(
            hex::decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    OssError::invalid_argument(
                        "The continuation token provided is incorrect",
                        "continuation-token",
                        token,
                    )
                })?,
        ),
        None => None,
    };
    let marker = match (&token_key, &start_after) {
        (Some(token), Some(after)) => token.max(after).clone(),
        (Some(token), None) => token.clone(),
        (None, Some(after)) => after.clone(),
        (None, None) => String::new(),
    };
    let (entries, is_truncated) = cx
        .shared
        .store
        .with_bucket(cx.bucket(), |b| {
            let lower = if marker.is_empty() {
                Bound::Unbounded
            } else {
                Bound::Excluded(marker.clone())
            };
            let items = b
                .objects
                .range::<String, _>((lower, Bound::Unbounded))
                .map(|(key, version)| (key.clone(), version.meta.clone()));
            page(items, &prefix, &delimiter, &marker, max_keys as usize)
        })
        .map_err(|e| store_error(e, cx, ""))?;
    let mut result = xml::ListBucketResult {
        name: cx.bucket().to_owned(),
        prefix: encode_if(url, &prefix),
        continuation_token: token.clone(),
        start_after: start_after.as_deref().map(|s| encode_if(url, s)),
        max_keys,
        delimiter: encode_if(url, &delimiter),
        encoding_type: url.then(|| xml::ENCODING_TYPE_URL.to_owned()),
        is_truncated,
        key_count: entries.len() as u32,
        ..Default::default()
    };
    let mut last = None;
    for entry in entries {
        match entry {
            Entry::Item(key, meta) => {
                result.contents.push(xml::ListedObject {
                    key: encode_if(url, &key),
                    last_modified: iso_date(meta.last_modified),
                    etag: meta.etag,
                    object_type: meta.object_type.as_str().to_owned(),
                    size: meta.size,
                    storage_class: meta.headers.storage_class,
                });
                last = Some(key);
            }
            Entry::Prefix(common) => {
                result.common_prefixes.push(xml::CommonPrefix {
                    prefix: encode_if(url, &common),
                });
                last = Some(common);
            }
        }
    }
    if is_truncated {
        result.next_continuation_token = last.map(|key| hex::encode(key.as_bytes()));
    }
    Ok(xml_response(StatusCode::OK, xml::to_xml(&result)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Vec<(String, ())> {
        list.iter().map(|k| ((*k).to_owned(), ())).collect()
    }

    fn show(entries: &[Entry<()>]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                Entry::Item(k, _) => k.clone(),
                Entry::Prefix(p) => format!("[{p}]"),
            })
            .collect()
    }

    #[test]
    fn paging_rolls_up_common_prefixes() {
        let all = keys(&["a/1", "a/2", "b", "c/x/1", "c/y", "d"]);
        let (page1, more) = page(all.clone().into_iter(), "", "/", "", 2);
        assert_eq!(show(&page1), ["[a/]", "b"]);
        assert!(more);
        let rest = all.clone().into_iter().filter(|(k, _)| k.as_str() > "b");
        let (page2, more) = page(rest, "", "/", "b", 10);
        assert_eq!(show(&page2), ["[c/]", "d"]);
        assert!(!more);
        // A marker equal to a common prefix skips it.
        let rest = all.clone().into_iter().filter(|(k, _)| k.as_str() > "a/");
        let (page3, _) = page(rest, "", "/", "a/", 1);
        assert_eq!(show(&page3), ["b"]);
        let (page4, more) = page(all.clone().into_iter(), "c/", "/", "", 10);
        assert_eq!(show(&page4), ["[c/x/]", "c/y"]);
        assert!(!more);
        let (page5, more) = page(all.into_iter(), "a", "", "", 2);
        assert_eq!(show(&page5), ["a/1", "a/2"]);
        assert!(!more, "b is outside the prefix");
    }

    #[test]
    fn complete_bodies() {
        let ok = br#"<?xml version='1.0' encoding='utf-8'?><CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&#34;A&#34;</ETag></Part><Part><PartNumber>5</PartNumber><ETag>"B"</ETag></Part></CompleteMultipartUpload>"#;
        assert_eq!(
            parse_complete_body(ok).unwrap(),
            [(1, "\"A\"".to_owned()), (5, "\"B\"".to_owned())]
        );
        let order = b"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>";
        assert_eq!(
            parse_complete_body(order).unwrap_err().code,
            "InvalidPartOrder"
        );
        let dup = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>";
        assert_eq!(
            parse_complete_body(dup).unwrap_err().code,
            "InvalidPartOrder"
        );
        let range = b"<CompleteMultipartUpload><Part><PartNumber>10001</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>";
        let e = parse_complete_body(range).unwrap_err();
        assert_eq!(e.code, "InvalidPartOrder");
        assert_eq!(
            e.message,
            "Part number must be an integer between 1 and 10000, inclusive."
        );
        for bad in [&b""[..], b"  ", b"<Complete", b"<Other/>"] {
            assert_eq!(parse_complete_body(bad).unwrap_err().code, "MalformedXML");
        }
    }
}
