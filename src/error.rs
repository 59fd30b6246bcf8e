//! The crate's one public error type.
//!
//! [`Error`] is opaque: callers ask it questions ([`Error::kind`], [`Error::is_retryable`],
//! [`Error::status`], [`Error::oss_code`], [`Error::request_id`], [`Error::upload_id`]) instead of
//! matching on variants, so new failure modes can be added without breaking anyone.
//! What OSS said (its `Code`, `Message`, `RequestId`, `HostId`, `EC`) is kept in a
//! [`ServiceError`] reachable with [`Error::service_error`].

use std::fmt;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in broad classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// OSS (or the local server) answered with an error status and code.
    Service,
    /// The connection could not be made or broke (refused, reset, DNS, TLS).
    Network,
    /// A connect, idle or overall deadline passed.
    Timeout,
    /// A CRC-64 computed here differs from the one the server reported.
    CrcMismatch,
    /// An argument broke one of OSS's rules (bucket name, key, part number, size); nothing was
    /// sent.
    InvalidInput,
    /// The client configuration is incomplete or contradictory.
    Config,
    /// Credentials could not be obtained or refreshed.
    Credentials,
    /// The server's answer could not be understood (bad XML, missing header, huge body).
    MalformedResponse,
    /// A local I/O error (reading a file, writing to disk).
    Io,
    /// The stream is longer than the part-size plan can hold within 10,000 parts.
    TooLarge,
    /// The writer was used after it failed, was aborted or was shut down.
    Closed,
}

/// The OSS operation an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `PUT /<key>`
    PutObject,
    /// `GET /<key>`
    GetObject,
    /// `HEAD /<key>`
    HeadObject,
    /// `DELETE /<key>`
    DeleteObject,
    /// `POST /<key>?uploads`
    InitiateMultipartUpload,
    /// `PUT /<key>?partNumber=N&uploadId=ID`
    UploadPart,
    /// `POST /<key>?uploadId=ID`
    CompleteMultipartUpload,
    /// `DELETE /<key>?uploadId=ID`
    AbortMultipartUpload,
    /// `GET /<key>?uploadId=ID`
    ListParts,
    /// `GET /?uploads`
    ListMultipartUploads,
    /// `GET /?list-type=2`
    ListObjects,
    /// `PUT /` on a bucket
    PutBucket,
}

impl Operation {
    /// The operation's name as OSS documents it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::PutObject => "PutObject",
            Operation::GetObject => "GetObject",
            Operation::HeadObject => "HeadObject",
            Operation::DeleteObject => "DeleteObject",
            Operation::InitiateMultipartUpload => "InitiateMultipartUpload",
            Operation::UploadPart => "UploadPart",
            Operation::CompleteMultipartUpload => "CompleteMultipartUpload",
            Operation::AbortMultipartUpload => "AbortMultipartUpload",
            Operation::ListParts => "ListParts",
            Operation::ListMultipartUploads => "ListMultipartUploads",
            Operation::ListObjects => "ListObjects",
            Operation::PutBucket => "PutBucket",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What OSS said in an error response (§6.1 of the protocol notes).
///
/// Its `Debug` leaves out the echoed `StringToSign`, `StringToSignBytes` and `CanonicalRequest`
/// (they cover the STS token); [`ServiceError::field`] still returns them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ServiceError {
    /// The HTTP status.
    pub status: u16,
    /// `Code`, e.g. `NoSuchUpload`. Empty when the server sent no code.
    pub code: String,
    /// `Message`.
    pub message: String,
    /// `RequestId` (or the `x-oss-request-id` header).
    pub request_id: String,
    /// `HostId`.
    pub host_id: String,
    /// `EC`, the fine-grained error code (or the `x-oss-ec` header).
    pub ec: String,
    /// Every other child element of `<Error>` (e.g. `ArgumentName`, `UploadId`, `StringToSign`).
    pub fields: Vec<(String, String)>,
}

/// HTTP statuses that are always worth another attempt (§6.3): the service is overloaded, timed
/// out or failed on its side; the request itself may be fine.
const RETRYABLE_STATUSES: &[u16] = &[408, 429, 500, 502, 503, 504];

/// OSS codes that are worth another attempt whatever their status. `RequestTimeTooSkewed` is
/// fixed by re-signing with a fresh time, which every attempt does.
const RETRYABLE_CODES: &[&str] = &[
    "RequestTimeTooSkewed",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
];

/// OSS codes that never succeed on another attempt, even if their status alone would say so.
/// These describe the request (bad argument, wrong key, upload gone), not the service.
const PERMANENT_CODES: &[&str] = &[
    "InvalidArgument",
    "AccessDenied",
    "NoSuchUpload",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidPart",
    "InvalidPartOrder",
    "EntityTooSmall",
    "EntityTooLarge",
    "MalformedXML",
    "InvalidDigest",
    "InvalidObjectName",
    "InvalidBucketName",
    "NoSuchBucket",
    "NoSuchKey",
    "FileAlreadyExists",
];

/// Error fields that echo what was signed, and so may carry an STS token.
const SIGNED_ECHO_FIELDS: &[&str] = &["StringToSign", "StringToSignBytes", "CanonicalRequest"];

impl fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<(&str, String)> = self
            .fields
            .iter()
            .map(|(name, value)| {
                let shown = if SIGNED_ECHO_FIELDS.contains(&name.as_str()) {
                    format!("<{} bytes omitted>", value.len())
                } else {
                    value.clone()
                };
                (name.as_str(), shown)
            })
            .collect();
        f.debug_struct("ServiceError")
            .field("status", &self.status)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("request_id", &self.request_id)
            .field("host_id", &self.host_id)
            .field("ec", &self.ec)
            .field("fields", &fields)
            .finish()
    }
}

impl ServiceError {
    /// Replaces every occurrence of `secret` in the message and the fields with `<redacted>`,
    /// both as text and as the upper-case space-separated hex of `StringToSignBytes`.
    pub fn redact(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let hex = secret
            .bytes()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ");
        let scrub = |text: &mut String| {
            if text.contains(secret) || text.contains(&hex) {
                *text = text
                    .replace(secret, "<redacted>")
                    .replace(&hex, "<redacted>");
            }
        };
        scrub(&mut self.message);
        for (_, value) in &mut self.fields {
            scrub(value);
        }
    }

    /// Whether the retry table (§6.3) says another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        if RETRYABLE_CODES.contains(&self.code.as_str()) {
            return true;
        }
        if PERMANENT_CODES.contains(&self.code.as_str()) {
            return false;
        }
        self.status >= 500 || RETRYABLE_STATUSES.contains(&self.status)
    }

    /// The value of an extra element such as `UploadId` or `StringToSign`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The error of every fallible call in this crate.
///
/// Its `Display` is one short line; the cause, if any, is in [`std::error::Error::source`].
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    service: Option<ServiceError>,
    operation: Option<Operation>,
    bucket: Option<String>,
    key: Option<String>,
    upload_id: Option<String>,
    part_number: Option<u32>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a short lowercase message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                service: None,
                operation: None,
                bucket: None,
                key: None,
                upload_id: None,
                part_number: None,
                source: None,
            }),
        }
    }

    /// An error for what OSS answered.
    pub fn service(service: ServiceError) -> Self {
        let mut error = Self::new(ErrorKind::Service, String::new());
        error.inner.service = Some(service);
        error
    }

    /// An [`ErrorKind::InvalidInput`] error naming the rule that was broken.
    pub fn invalid_input(rule: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, rule)
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    /// Records the operation that failed.
    pub fn with_operation(mut self, operation: Operation) -> Self {
        self.inner.operation = Some(operation);
        self
    }

    /// Records the bucket the request was for.
    pub fn with_bucket(mut self, bucket: impl Into<String>) -> Self {
        self.inner.bucket = Some(bucket.into());
        self
    }

    /// Records the object key the request was for.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.inner.key = Some(key.into());
        self
    }

    /// Records the multipart upload id.
    pub fn with_upload_id(mut self, upload_id: impl Into<String>) -> Self {
        self.inner.upload_id = Some(upload_id.into());
        self
    }

    /// Records the part number.
    pub fn with_part_number(mut self, part_number: u32) -> Self {
        self.inner.part_number = Some(part_number);
        self
    }

    /// The broad class of the failure.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Whether the same request may succeed if sent again (§6.3): 5xx, 408, 429,
    /// `RequestTimeTooSkewed`, connection errors, timeouts and CRC mismatches are; validation,
    /// permission and missing-upload errors are not.
    pub fn is_retryable(&self) -> bool {
        match self.inner.kind {
            ErrorKind::Service => self
                .inner
                .service
                .as_ref()
                .is_some_and(ServiceError::is_retryable),
            ErrorKind::Network | ErrorKind::Timeout | ErrorKind::CrcMismatch => true,
            _ => false,
        }
    }

    /// The HTTP status, for service errors.
    pub fn status(&self) -> Option<u16> {
        self.inner.service.as_ref().map(|s| s.status)
    }

    /// OSS's `Code`, e.g. `NoSuchUpload`.
    pub fn oss_code(&self) -> Option<&str> {
        self.inner
            .service
            .as_ref()
            .map(|s| s.code.as_str())
            .filter(|c| !c.is_empty())
    }

    /// OSS's `RequestId`, to quote to support.
    pub fn request_id(&self) -> Option<&str> {
        self.inner
            .service
            .as_ref()
            .map(|s| s.request_id.as_str())
            .filter(|c| !c.is_empty())
    }

    /// Everything OSS said, for service errors.
    pub fn service_error(&self) -> Option<&ServiceError> {
        self.inner.service.as_ref()
    }

    /// The operation that failed.
    pub fn operation(&self) -> Option<Operation> {
        self.inner.operation
    }

    /// The bucket the failed request was for.
    pub fn bucket(&self) -> Option<&str> {
        self.inner.bucket.as_deref()
    }

    /// The object key the failed request was for.
    pub fn key(&self) -> Option<&str> {
        self.inner.key.as_deref()
    }

    /// The multipart upload id, where there is one.
    pub fn upload_id(&self) -> Option<&str> {
        self.inner.upload_id.as_deref()
    }

    /// The part number, for UploadPart failures.
    pub fn part_number(&self) -> Option<u32> {
        self.inner.part_number
    }

    /// Recovers this crate's error from an [`std::io::Error`] produced by
    /// `From<Error> for io::Error` (the writer's errors travel through `AsyncWrite` that way);
    /// any other I/O error becomes an [`ErrorKind::Io`] error.
    pub fn from_io(error: std::io::Error) -> Self {
        if error.get_ref().is_some_and(|e| e.is::<Error>()) {
            let inner = error.into_inner().expect("checked above");
            return *inner.downcast::<Error>().expect("checked above");
        }
        Self::new(ErrorKind::Io, "i/o error").with_source(error)
    }

    /// A copy for handing the same latched failure to several callers. The source chain is
    /// flattened into text, since arbitrary sources cannot be cloned.
    pub fn duplicate(&self) -> Self {
        let inner = &self.inner;
        Self {
            inner: Box::new(Inner {
                kind: inner.kind,
                message: inner.message.clone(),
                service: inner.service.clone(),
                operation: inner.operation,
                bucket: inner.bucket.clone(),
                key: inner.key.clone(),
                upload_id: inner.upload_id.clone(),
                part_number: inner.part_number,
                source: inner
                    .source
                    .as_ref()
                    .map(|s| Box::new(SourceText(error_chain(s.as_ref()))) as _),
            }),
        }
    }
}

/// A source that survived [`Error::duplicate`] as text.
#[derive(Debug)]
struct SourceText(String);

impl fmt::Display for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceText {}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        if let Some(operation) = inner.operation {
            write!(f, "{operation}")?;
            if let Some(part) = inner.part_number {
                write!(f, " (part {part})")?;
            }
            match (&inner.bucket, &inner.key) {
                (Some(bucket), Some(key)) => write!(f, " of oss://{bucket}/{key}")?,
                (Some(bucket), None) => write!(f, " on oss://{bucket}")?,
                _ => {}
            }
            f.write_str(" failed: ")?;
        }
        match &inner.service {
            Some(service) => {
                write!(f, "{}", service.status)?;
                if !service.code.is_empty() {
                    write!(f, " {}", service.code)?;
                }
                if !service.message.is_empty() {
                    write!(f, ": {}", service.message)?;
                }
                if !service.request_id.is_empty() {
                    write!(f, " (request id {})", service.request_id)?;
                }
                if !inner.message.is_empty() {
                    write!(f, "; {}", inner.message)?;
                }
            }
            None => f.write_str(&inner.message)?,
        }
        if let (Some(id), None) = (&inner.upload_id, inner.operation) {
            write!(f, " (upload id {id})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let mut debug = f.debug_struct("Error");
        debug.field("kind", &inner.kind);
        if !inner.message.is_empty() {
            debug.field("message", &inner.message);
        }
        if let Some(service) = &inner.service {
            debug.field("service", service);
        }
        if let Some(operation) = inner.operation {
            debug.field("operation", &operation);
        }
        if let Some(bucket) = &inner.bucket {
            debug.field("bucket", bucket);
        }
        if let Some(key) = &inner.key {
            debug.field("key", key);
        }
        if let Some(upload_id) = &inner.upload_id {
            debug.field("upload_id", upload_id);
        }
        if let Some(part_number) = inner.part_number {
            debug.field("part_number", &part_number);
        }
        if let Some(source) = &inner.source {
            debug.field("source", source);
        }
        debug.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for std::io::Error {
    fn from(error: Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match error.kind() {
            ErrorKind::Network => Io::ConnectionAborted,
            ErrorKind::Timeout => Io::TimedOut,
            ErrorKind::InvalidInput | ErrorKind::Config => Io::InvalidInput,
            ErrorKind::CrcMismatch | ErrorKind::MalformedResponse => Io::InvalidData,
            ErrorKind::Credentials => Io::PermissionDenied,
            ErrorKind::Closed => Io::BrokenPipe,
            ErrorKind::Service => match error.status() {
                Some(401 | 403) => Io::PermissionDenied,
                Some(404) => Io::NotFound,
                Some(409) => Io::AlreadyExists,
                _ => Io::Other,
            },
            _ => Io::Other,
        };
        std::io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> Error {
        Error::service(ServiceError {
            status,
            code: code.into(),
            message: "m".into(),
            request_id: "RID".into(),
            ..ServiceError::default()
        })
    }

    #[test]
    fn retry_table() {
        assert!(service(503, "ServiceUnavailable").is_retryable());
        assert!(service(500, "InternalError").is_retryable());
        assert!(service(502, "").is_retryable());
        assert!(service(408, "").is_retryable());
        assert!(service(429, "").is_retryable());
        assert!(service(403, "RequestTimeTooSkewed").is_retryable());
        assert!(!service(400, "InvalidArgument").is_retryable());
        assert!(!service(403, "AccessDenied").is_retryable());
        assert!(!service(404, "NoSuchUpload").is_retryable());
        assert!(!service(403, "SignatureDoesNotMatch").is_retryable());
        assert!(!service(403, "InvalidAccessKeyId").is_retryable());
        assert!(!service(409, "FileAlreadyExists").is_retryable());
        assert!(Error::new(ErrorKind::Network, "reset").is_retryable());
        assert!(Error::new(ErrorKind::Timeout, "idle").is_retryable());
        assert!(Error::new(ErrorKind::CrcMismatch, "crc").is_retryable());
        assert!(!Error::invalid_input("bad").is_retryable());
    }

    #[test]
    fn display_is_one_line_with_context() {
        let error = service(404, "NoSuchUpload")
            .with_operation(Operation::UploadPart)
            .with_bucket("b")
            .with_key("k")
            .with_part_number(3)
            .with_upload_id("U");
        assert_eq!(
            error.to_string(),
            "UploadPart (part 3) of oss://b/k failed: 404 NoSuchUpload: m (request id RID)"
        );
        assert_eq!(error.upload_id(), Some("U"));
        assert_eq!(
            Error::invalid_input("part number must be 1..=10000").to_string(),
            "part number must be 1..=10000"
        );
    }

    #[test]
    fn echoed_strings_to_sign_are_redacted() {
        let mut service = ServiceError {
            status: 403,
            code: "SignatureDoesNotMatch".into(),
            fields: vec![
                (
                    "StringToSign".into(),
                    "PUT\nx-oss-security-token:TOK\n/b/k".into(),
                ),
                ("StringToSignBytes".into(), "54 4F 4B".into()),
                ("OSSAccessKeyId".into(), "ak".into()),
            ],
            ..ServiceError::default()
        };
        let debug = format!("{service:?}");
        assert!(!debug.contains("TOK"), "{debug}");
        assert!(debug.contains("OSSAccessKeyId") && debug.contains("ak"));
        service.redact("TOK");
        assert_eq!(
            service.field("StringToSign"),
            Some("PUT\nx-oss-security-token:<redacted>\n/b/k")
        );
        assert_eq!(service.field("StringToSignBytes"), Some("<redacted>"));
    }

    #[test]
    fn io_round_trip_keeps_the_error() {
        let io: std::io::Error = service(403, "AccessDenied").into();
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
        let back = Error::from_io(io);
        assert_eq!(back.oss_code(), Some("AccessDenied"));
        let other = Error::from_io(std::io::Error::other("disk"));
        assert_eq!(other.kind(), ErrorKind::Io);
    }
}
