//! Typed XML bodies of every request and response, with bounded parsing.
//!
//! Each body of §5 of the protocol notes is a plain struct with `Serialize` *and* `Deserialize`,
//! so the client parses exactly what the local server emits. Fields are declared in the order
//! the service writes its elements, because [`to_xml`] writes them in declaration order.
//!
//! Parsing is bounded and hostile-safe:
//! - a body over its size cap is refused before a single byte is parsed;
//! - any `<!DOCTYPE`/`<!ENTITY` declaration is refused (quick-xml expands only the five
//!   predefined entities anyway, so an XML bomb cannot expand; refusing the declaration up front
//!   makes that explicit);
//! - the root element must be the one expected, so an `<Error>` or an HTML page is not silently
//!   read as an empty listing;
//! - truncated or malformed XML is an [`ErrorKind::MalformedResponse`], never a panic.
//!
//! The error body (§6.1) keeps every child element, so it is read with quick-xml's event reader
//! rather than serde: see [`parse_error_body`] and [`error_to_xml`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use quick_xml::events::Event;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

pub use crate::error::ServiceError;
use crate::timestamp::{days_from_civil, Civil, SECONDS_PER_DAY};
use crate::{Error, ErrorKind, Result};

/// The largest response body [`from_xml`] parses (listings of 1,000 entries with 1 KiB keys fit
/// comfortably; anything bigger is not an OSS answer).
pub const MAX_XML_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The largest error body (or decoded `x-oss-err` header) [`parse_error_body`] parses. Real
/// error bodies are well under 1 KiB.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The XML declaration the service puts before every body.
pub const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// The value of `EncodingType` (and of the `encoding-type` query parameter) that asks for
/// percent-encoded keys.
pub const ENCODING_TYPE_URL: &str = "url";

/// A body type with a fixed root element.
pub trait XmlBody: Serialize + DeserializeOwned {
    /// The root element's name, e.g. `ListPartsResult`.
    const ROOT: &'static str;
}

/// `POST /<key>?uploads` response (§5.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "InitiateMultipartUploadResult", rename_all = "PascalCase")]
pub struct InitiateMultipartUploadResult {
    /// `Bucket`.
    #[serde(default)]
    pub bucket: String,
    /// `Key`, percent-encoded when `encoding_type` is `url`.
    #[serde(default)]
    pub key: String,
    /// `UploadId` (required: oss2 refuses a body without it).
    pub upload_id: String,
    /// `EncodingType`, present only when `encoding-type=url` was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
}

impl XmlBody for InitiateMultipartUploadResult {
    const ROOT: &'static str = "InitiateMultipartUploadResult";
}

/// `POST /<key>?uploadId=ID` request body (§5.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "CompleteMultipartUpload")]
pub struct CompleteMultipartUpload {
    /// The parts, in strictly ascending part-number order.
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletePart>,
}

impl XmlBody for CompleteMultipartUpload {
    const ROOT: &'static str = "CompleteMultipartUpload";
}

/// One `<Part>` of a [`CompleteMultipartUpload`] body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CompletePart {
    /// `PartNumber`, 1..=10000.
    pub part_number: u32,
    /// `ETag` exactly as UploadPart returned it, quotes included.
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// `POST /<key>?uploadId=ID` response without a callback (§5.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "CompleteMultipartUploadResult", rename_all = "PascalCase")]
pub struct CompleteMultipartUploadResult {
    /// `EncodingType`, present only when requested; it comes first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
    /// `Location`, the object's URL.
    #[serde(default)]
    pub location: String,
    /// `Bucket`.
    #[serde(default)]
    pub bucket: String,
    /// `Key`, percent-encoded when `encoding_type` is `url`.
    #[serde(default)]
    pub key: String,
    /// `ETag` of the object (opaque for multipart objects), with its quotes.
    #[serde(rename = "ETag", default)]
    pub etag: String,
}

impl XmlBody for CompleteMultipartUploadResult {
    const ROOT: &'static str = "CompleteMultipartUploadResult";
}

/// `GET /<key>?uploadId=ID` response (§5.6).
///
/// oss2 requires `IsTruncated`, `NextPartNumberMarker` and, per part, `PartNumber`, `ETag`,
/// `Size` and `LastModified`, so they are always written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "ListPartsResult", rename_all = "PascalCase")]
pub struct ListPartsResult {
    /// `EncodingType`, present only when requested; it comes first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
    /// `Bucket`.
    #[serde(default)]
    pub bucket: String,
    /// `Key`, percent-encoded when `encoding_type` is `url`.
    #[serde(default)]
    pub key: String,
    /// `UploadId`.
    #[serde(default)]
    pub upload_id: String,
    /// `StorageClass` (older responses omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// `PartNumberMarker`: parts listed have a greater number.
    #[serde(default, deserialize_with = "lenient_u32")]
    pub part_number_marker: u32,
    /// `NextPartNumberMarker`: the marker for the next page.
    #[serde(default, deserialize_with = "lenient_u32")]
    pub next_part_number_marker: u32,
    /// `MaxParts`.
    #[serde(default, deserialize_with = "lenient_u32")]
    pub max_parts: u32,
    /// `IsTruncated`: whether another page follows.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub is_truncated: bool,
    /// The `<Part>` elements, in ascending part-number order.
    #[serde(rename = "Part", default)]
    pub parts: Vec<ListedPart>,
}

impl XmlBody for ListPartsResult {
    const ROOT: &'static str = "ListPartsResult";
}

/// One `<Part>` of a [`ListPartsResult`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListedPart {
    /// `PartNumber`.
    pub part_number: u32,
    /// `LastModified`, ISO 8601 with `.000Z` (see [`format_iso8601_millis`]).
    #[serde(default)]
    pub last_modified: String,
    /// `ETag` with its quotes.
    #[serde(rename = "ETag", default)]
    pub etag: String,
    /// `HashCrc64ecma`, the part's CRC-64 (older responses omit it).
    #[serde(
        default,
        deserialize_with = "lenient_opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub hash_crc64ecma: Option<u64>,
    /// `Size` in bytes.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub size: u64,
}

/// `GET /?uploads` response (§5.7).
///
/// oss2 requires `IsTruncated`, `NextKeyMarker`, `NextUploadIdMarker` and, per upload, `Key`,
/// `UploadId` and `Initiated`, so they are always written, even when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "ListMultipartUploadsResult", rename_all = "PascalCase")]
pub struct ListMultipartUploadsResult {
    /// `EncodingType`, present only when requested; it comes first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
    /// `Bucket`.
    #[serde(default)]
    pub bucket: String,
    /// `KeyMarker` as requested.
    #[serde(default)]
    pub key_marker: String,
    /// `UploadIdMarker` as requested.
    #[serde(default)]
    pub upload_id_marker: String,
    /// `NextKeyMarker`: the `key-marker` of the next page.
    #[serde(default)]
    pub next_key_marker: String,
    /// `NextUploadIdMarker`: the `upload-id-marker` of the next page.
    #[serde(default)]
    pub next_upload_id_marker: String,
    /// `Delimiter` as requested.
    #[serde(default)]
    pub delimiter: String,
    /// `Prefix` as requested.
    #[serde(default)]
    pub prefix: String,
    /// `MaxUploads`.
    #[serde(default, deserialize_with = "lenient_u32")]
    pub max_uploads: u32,
    /// `IsTruncated`.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub is_truncated: bool,
    /// The `<Upload>` elements, ordered by key then upload id.
    #[serde(rename = "Upload", default)]
    pub uploads: Vec<ListedUpload>,
    /// The `<CommonPrefixes>` elements (only with a delimiter).
    #[serde(rename = "CommonPrefixes", default)]
    pub common_prefixes: Vec<CommonPrefix>,
}

impl XmlBody for ListMultipartUploadsResult {
    const ROOT: &'static str = "ListMultipartUploadsResult";
}

/// One `<Upload>` of a [`ListMultipartUploadsResult`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListedUpload {
    /// `Key`, percent-encoded when the listing's `EncodingType` is `url`.
    #[serde(default)]
    pub key: String,
    /// `UploadId`.
    #[serde(default)]
    pub upload_id: String,
    /// `StorageClass` (older responses omit it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// `Initiated`, ISO 8601 with `.000Z`.
    #[serde(default)]
    pub initiated: String,
}

/// One `<CommonPrefixes><Prefix>…</Prefix></CommonPrefixes>` element.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CommonPrefix {
    /// `Prefix`.
    #[serde(default)]
    pub prefix: String,
}

/// `GET /?list-type=2` (ListObjectsV2) response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "ListBucketResult", rename_all = "PascalCase")]
pub struct ListBucketResult {
    /// `Name`: the bucket.
    #[serde(default)]
    pub name: String,
    /// `Prefix` as requested.
    #[serde(default)]
    pub prefix: String,
    /// `ContinuationToken` as requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
    /// `StartAfter` as requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_after: Option<String>,
    /// `MaxKeys`.
    #[serde(default, deserialize_with = "lenient_u32")]
    pub max_keys: u32,
    /// `Delimiter` as requested.
    #[serde(default)]
    pub delimiter: String,
    /// `EncodingType`, present only when requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_type: Option<String>,
    /// `IsTruncated`.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub is_truncated: bool,
    /// `NextContinuationToken`, present when truncated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_continuation_token: Option<String>,
    /// `KeyCount`: objects plus common prefixes on this page.
    #[serde(default, deserialize_with = "lenient_u32")]
    pub key_count: u32,
    /// The `<Contents>` elements.
    #[serde(rename = "Contents", default)]
    pub contents: Vec<ListedObject>,
    /// The `<CommonPrefixes>` elements (only with a delimiter).
    #[serde(rename = "CommonPrefixes", default)]
    pub common_prefixes: Vec<CommonPrefix>,
}

impl XmlBody for ListBucketResult {
    const ROOT: &'static str = "ListBucketResult";
}

/// One `<Contents>` of a [`ListBucketResult`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListedObject {
    /// `Key`, percent-encoded when the listing's `EncodingType` is `url`.
    #[serde(default)]
    pub key: String,
    /// `LastModified`, ISO 8601 with `.000Z`.
    #[serde(default)]
    pub last_modified: String,
    /// `ETag` with its quotes.
    #[serde(rename = "ETag", default)]
    pub etag: String,
    /// `Type`: `Normal`, `Multipart`, `Appendable` or `Symlink`.
    #[serde(rename = "Type", default)]
    pub object_type: String,
    /// `Size` in bytes.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub size: u64,
    /// `StorageClass`.
    #[serde(default)]
    pub storage_class: String,
}

// ----- lenient scalars -------------------------------------------------------------------------
// Old service versions emit some numeric elements empty (`<NextPartNumberMarker></...>`); an
// empty element reads as 0 / false instead of failing the whole listing. Garbage still fails.

fn lenient_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?
        .unwrap_or_default()
        .trim()
        .to_owned())
}

fn lenient_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let text = lenient_text(deserializer)?;
    if text.is_empty() {
        return Ok(0);
    }
    text.parse().map_err(serde::de::Error::custom)
}

fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let text = lenient_text(deserializer)?;
    if text.is_empty() {
        return Ok(0);
    }
    text.parse().map_err(serde::de::Error::custom)
}

fn lenient_opt_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    let text = lenient_text(deserializer)?;
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    match lenient_text(deserializer)?.as_str() {
        "" | "false" | "False" | "FALSE" | "0" => Ok(false),
        "true" | "True" | "TRUE" | "1" => Ok(true),
        other => Err(serde::de::Error::custom(format!(
            "expected true or false, got {other:?}"
        ))),
    }
}

// ----- encoding-type=url -----------------------------------------------------------------------

/// The bytes `encoding-type=url` leaves alone: RFC 3986 unreserved. Everything else, `/`, space
/// and `+` included, is percent-encoded, which every SDK's decoder reads back correctly.
const LISTING_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a key, prefix or marker for an `encoding-type=url` response (server side).
pub fn url_encode_listing(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, LISTING_ENCODE_SET).to_string()
}

/// Decodes a value from an `encoding-type=url` response: a plain percent-decode (`+` stays `+`).
///
/// # Errors
/// [`ErrorKind::MalformedResponse`] when the decoded bytes are not UTF-8.
pub fn url_decode_listing(value: &str) -> Result<String> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|e| {
            Error::new(
                ErrorKind::MalformedResponse,
                format!("url-encoded value {value:?} does not decode to utf-8"),
            )
            .with_source(e)
        })
}

fn is_url_encoded(encoding_type: &Option<String>) -> bool {
    encoding_type
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(ENCODING_TYPE_URL))
}

fn decode_in_place(value: &mut String) -> Result<()> {
    *value = url_decode_listing(value)?;
    Ok(())
}

/// `decode_url_encoding` for the results whose only encoded value is `Key`: the same method on
/// each, written once.
macro_rules! impl_decode_key {
    ($($result:ty),+ $(,)?) => {$(
        impl $result {
            /// Decodes `Key` if the response says `EncodingType` is `url`, and clears
            /// `encoding_type`.
            ///
            /// # Errors
            /// [`ErrorKind::MalformedResponse`] when a value does not decode to UTF-8.
            pub fn decode_url_encoding(&mut self) -> Result<()> {
                if is_url_encoded(&self.encoding_type) {
                    decode_in_place(&mut self.key)?;
                    self.encoding_type = None;
                }
                Ok(())
            }
        }
    )+};
}

impl_decode_key!(
    InitiateMultipartUploadResult,
    CompleteMultipartUploadResult,
    ListPartsResult,
);

impl ListMultipartUploadsResult {
    /// Decodes every key, prefix, delimiter and key marker if the response says `EncodingType`
    /// is `url`, and clears `encoding_type`.
    ///
    /// # Errors
    /// [`ErrorKind::MalformedResponse`] when a value does not decode to UTF-8.
    pub fn decode_url_encoding(&mut self) -> Result<()> {
        if is_url_encoded(&self.encoding_type) {
            decode_in_place(&mut self.key_marker)?;
            decode_in_place(&mut self.next_key_marker)?;
            decode_in_place(&mut self.delimiter)?;
            decode_in_place(&mut self.prefix)?;
            for upload in &mut self.uploads {
                decode_in_place(&mut upload.key)?;
            }
            for prefix in &mut self.common_prefixes {
                decode_in_place(&mut prefix.prefix)?;
            }
            self.encoding_type = None;
        }
        Ok(())
    }
}

impl ListBucketResult {
    /// Decodes every key, prefix, delimiter and `StartAfter` if the response says `EncodingType`
    /// is `url`, and clears `encoding_type`. Continuation tokens are opaque and left alone.
    ///
    /// # Errors
    /// [`ErrorKind::MalformedResponse`] when a value does not decode to UTF-8.
    pub fn decode_url_encoding(&mut self) -> Result<()> {
        if is_url_encoded(&self.encoding_type) {
            decode_in_place(&mut self.prefix)?;
            decode_in_place(&mut self.delimiter)?;
            if let Some(start_after) = &mut self.start_after {
                decode_in_place(start_after)?;
            }
            for object in &mut self.contents {
                decode_in_place(&mut object.key)?;
            }
            for prefix in &mut self.common_prefixes {
                decode_in_place(&mut prefix.prefix)?;
            }
            self.encoding_type = None;
        }
        Ok(())
    }
}

// ----- writing ---------------------------------------------------------------------------------

/// Serializes a body with the XML declaration, two-space indentation (as the service does) and
/// explicit start/end tags for empty elements (`<KeyMarker></KeyMarker>`, as in §5.7).
///
/// Quotes in text stay literal (ETags are written `"…"`, like the service); `<`, `>` and `&`
/// are escaped.
pub fn to_xml<T: XmlBody>(value: &T) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(XML_DECLARATION);
    out.push('\n');
    let mut serializer = quick_xml::se::Serializer::new(&mut out);
    serializer
        .indent(' ', 2)
        .expand_empty_elements(true)
        .set_quote_level(quick_xml::se::QuoteLevel::Partial);
    // Serializing these plain structs of strings and integers into a String cannot fail: the
    // element names are fixed valid XML names and there are no maps or unsupported types.
    value
        .serialize(serializer)
        .expect("xml bodies are plain structs that always serialize");
    out
}

/// Escapes text content for an element (`<`, `>`, `&`).
fn escape_text(text: &str) -> String {
    quick_xml::escape::partial_escape(text).into_owned()
}

/// The error body of §6.1 for `error`, in the service's element order: `Code`, `Message`,
/// `RequestId`, `HostId`, then the extra `fields` (except `RecommendDoc`), then `EC`, then
/// `RecommendDoc` if it is among the fields. Empty `HostId`/`EC` are left out.
pub fn error_to_xml(error: &ServiceError) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(XML_DECLARATION);
    out.push_str("\n<Error>\n");
    let mut element = |name: &str, value: &str| {
        out.push_str("  <");
        out.push_str(name);
        out.push('>');
        out.push_str(&escape_text(value));
        out.push_str("</");
        out.push_str(name);
        out.push_str(">\n");
    };
    element("Code", &error.code);
    element("Message", &error.message);
    element("RequestId", &error.request_id);
    if !error.host_id.is_empty() {
        element("HostId", &error.host_id);
    }
    for (name, value) in &error.fields {
        if name != "RecommendDoc" && is_xml_name(name) {
            element(name, value);
        }
    }
    if !error.ec.is_empty() {
        element("EC", &error.ec);
    }
    if let Some(doc) = error.field("RecommendDoc") {
        element("RecommendDoc", doc);
    }
    out.push_str("</Error>\n");
    out
}

/// The value of the `x-oss-err` header for a HEAD error: Base64 of [`error_to_xml`].
pub fn encode_oss_err(error: &ServiceError) -> String {
    base64::engine::general_purpose::STANDARD.encode(error_to_xml(error))
}

/// Whether `name` can be written as an element name without breaking the document (fields come
/// from parsed bodies, so this is only a guard against garbage being echoed back).
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

// ----- reading ---------------------------------------------------------------------------------

fn malformed(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::MalformedResponse, message)
}

/// Refuses what must never reach the parser: oversized bodies and DTD declarations.
fn check_untrusted(body: &[u8], limit: usize) -> Result<&str> {
    if body.len() > limit {
        return Err(malformed(format!(
            "xml body of {} bytes exceeds the {limit}-byte limit",
            body.len()
        )));
    }
    let text =
        std::str::from_utf8(body).map_err(|e| malformed("xml body is not utf-8").with_source(e))?;
    // `<!` opens a comment, a CDATA section or a declaration; only the first two are allowed.
    let mut rest = text;
    while let Some(at) = rest.find("<!") {
        let tail = &rest[at + 2..];
        if !(tail.starts_with("--") || tail.starts_with("[CDATA[")) {
            return Err(malformed(
                "xml body contains a DOCTYPE or ENTITY declaration, which is refused",
            ));
        }
        rest = tail;
    }
    Ok(text)
}

/// The name of the first element, or `None` if there is none or the prologue is broken.
fn root_name(text: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                return Some(String::from_utf8_lossy(e.local_name().as_ref()).into_owned())
            }
            Ok(Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Parses a body of type `T` of at most [`MAX_XML_BODY_BYTES`].
///
/// # Errors
/// [`ErrorKind::MalformedResponse`] when the body is too large, is not UTF-8, has a DTD, has
/// another root element, is truncated, or does not match `T`.
pub fn from_xml<T: XmlBody>(body: &[u8]) -> Result<T> {
    from_xml_with_limit(body, MAX_XML_BODY_BYTES)
}

/// [`from_xml`] with a caller-chosen size cap.
///
/// # Errors
/// As [`from_xml`].
pub fn from_xml_with_limit<T: XmlBody>(body: &[u8], limit: usize) -> Result<T> {
    let text = check_untrusted(body, limit)?;
    match root_name(text) {
        Some(name) if name == T::ROOT => {}
        Some(name) => {
            return Err(malformed(format!(
                "expected a <{}> xml body, got <{name}>",
                T::ROOT
            )))
        }
        None => return Err(malformed(format!("expected a <{}> xml body", T::ROOT))),
    }
    quick_xml::de::from_str(text).map_err(|e| {
        malformed(format!("could not parse the <{}> xml body", T::ROOT)).with_source(e)
    })
}

/// The error body's children, or `None` if the body is not a well-formed `<Error>` document.
fn parse_error_children(text: &str) -> Option<Vec<(String, String)>> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(true);
    let mut depth = 0usize;
    let mut children = Vec::new();
    let mut current: Option<(String, String)> = None;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                match depth {
                    0 if name != "Error" => return None,
                    1 => current = Some((name, String::new())),
                    _ => {}
                }
                depth += 1;
            }
            Event::Empty(e) => match depth {
                0 => return None,
                1 => children.push((
                    String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    String::new(),
                )),
                _ => {}
            },
            Event::Text(e) => {
                if let Some((_, value)) = &mut current {
                    value.push_str(&e.unescape().ok()?);
                }
            }
            Event::CData(e) => {
                if let Some((_, value)) = &mut current {
                    value.push_str(std::str::from_utf8(&e).ok()?);
                }
            }
            Event::End(_) => {
                depth = depth.checked_sub(1)?;
                match depth {
                    0 => return Some(children),
                    1 => children.push(current.take()?),
                    _ => {}
                }
            }
            // A document that ends before `</Error>` is truncated.
            Event::Eof => return None,
            Event::DocType(_) => return None,
            _ => {}
        }
    }
}

/// Pulls `<name>value</name>` out of text that is not well-formed XML, as the SDKs do.
fn extract_element(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    let raw = text[start..end].trim();
    Some(
        quick_xml::escape::unescape(raw)
            .map(|s| s.into_owned())
            .unwrap_or_else(|_| raw.to_owned()),
    )
}

/// A short single-line excerpt of a non-XML error body (an HTML page from a proxy, say).
fn body_excerpt(text: &str) -> String {
    const EXCERPT_CHARS: usize = 200;
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(EXCERPT_CHARS)
        .collect();
    line
}

fn fill_from_children(service: &mut ServiceError, children: Vec<(String, String)>) {
    for (name, value) in children {
        match name.as_str() {
            "Code" => service.code = value,
            "Message" => service.message = value,
            "RequestId" => service.request_id = value,
            "HostId" => service.host_id = value,
            "EC" => service.ec = value,
            _ => service.fields.push((name, value)),
        }
    }
}

/// Reads an error body (or the body carried in `x-oss-err`) into `service`; false if nothing
/// usable was found.
fn fill_from_body(service: &mut ServiceError, body: &[u8]) -> bool {
    let Ok(text) = check_untrusted(body, MAX_ERROR_BODY_BYTES) else {
        return false;
    };
    if text.trim().is_empty() {
        return false;
    }
    if let Some(children) = parse_error_children(text) {
        fill_from_children(service, children);
        return true;
    }
    // Not well-formed: fall back to pulling out the elements that matter (§6.1).
    match extract_element(text, "Code") {
        Some(code) => {
            service.code = code;
            service.message = extract_element(text, "Message").unwrap_or_default();
            service.request_id = extract_element(text, "RequestId").unwrap_or_default();
            service.ec = extract_element(text, "EC").unwrap_or_default();
        }
        None => service.message = body_excerpt(text),
    }
    true
}

/// Decodes the `x-oss-err` header of a HEAD error (Base64 of the error XML).
///
/// Returns `None` if the header is not Base64, too large or not an error document.
pub fn decode_oss_err(header: &str) -> Option<ServiceError> {
    // Base64 inflates by 4/3; refuse before decoding anything out of bounds.
    if header.len() > MAX_ERROR_BODY_BYTES * 4 / 3 + 4 {
        return None;
    }
    let xml = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .ok()?;
    let text = check_untrusted(&xml, MAX_ERROR_BODY_BYTES).ok()?;
    let children = parse_error_children(text)?;
    let mut service = ServiceError::default();
    fill_from_children(&mut service, children);
    Some(service)
}

/// Builds the [`ServiceError`] for an error response. Never fails: whatever can be learnt is
/// kept.
///
/// Sources, in order: the XML body (§6.1; elements are extracted by name if it is not
/// well-formed, and a non-XML body becomes the message); when the body is empty, the Base64
/// `x-oss-err` header (HEAD errors, §5.8); then `RequestId` falls back to `x-oss-request-id`
/// and `EC` to `x-oss-ec`.
pub fn parse_error_body(status: u16, body: &[u8], headers: &http::HeaderMap) -> ServiceError {
    let mut service = ServiceError {
        status,
        ..ServiceError::default()
    };
    if !fill_from_body(&mut service, body) {
        if let Some(decoded) = headers
            .get("x-oss-err")
            .and_then(|v| v.to_str().ok())
            .and_then(decode_oss_err)
        {
            service = ServiceError { status, ..decoded };
        }
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if service.request_id.is_empty() {
        service.request_id = header("x-oss-request-id").unwrap_or_default();
    }
    if service.ec.is_empty() {
        service.ec = header("x-oss-ec").unwrap_or_default();
    }
    service
}

// ----- timestamps ------------------------------------------------------------------------------

/// Formats `time` as OSS writes XML timestamps: `2025-01-15T08:29:00.000Z`.
///
/// The milliseconds are always `.000` because oss2's parser accepts nothing else (§5). Times
/// before 1970 are clamped to the epoch.
pub fn format_iso8601_millis(time: SystemTime) -> String {
    let c = Civil::from_system_time(time);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (the XML timestamp form); `None` if it is not one.
pub fn parse_iso8601(text: &str) -> Option<SystemTime> {
    let text = text.trim().strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: u32 = date_parts.next()?.parse().ok()?;
    let day: u32 = date_parts.next()?.parse().ok()?;
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let mut clock_parts = clock.splitn(3, ':');
    let hour: u64 = clock_parts.next()?.parse().ok()?;
    let minute: u64 = clock_parts.next()?.parse().ok()?;
    let second: u64 = clock_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || year < 1970 {
        return None;
    }
    let millis = match fraction {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<3}");
            padded[..3].parse::<u64>().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    let secs = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs) + Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIATE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult>
  <Bucket>examplebucket</Bucket>
  <Key>backups%2Fa%2Bb%3Dc.tar.gz</Key>
  <UploadId>0004B9894A22E5B1888A1E29F8236E2D</UploadId>
  <EncodingType>url</EncodingType>
</InitiateMultipartUploadResult>"#;

    const COMPLETE_REQUEST: &str = r#"<CompleteMultipartUpload>
  <Part><PartNumber>1</PartNumber><ETag>"95DF9BD1C2BFB07C102BF8F9AA224E65"</ETag></Part>
  <Part><PartNumber>2</PartNumber><ETag>"4E82FE33112FECC4F4DC88E61D43AE30"</ETag></Part>
</CompleteMultipartUpload>"#;

    const COMPLETE_RESULT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUploadResult>
  <EncodingType>url</EncodingType>
  <Location>http://examplebucket.oss-cn-hangzhou.aliyuncs.com/multipart.data</Location>
  <Bucket>examplebucket</Bucket>
  <Key>multipart.data</Key>
  <ETag>"B864DB6A936D376F9F8D3ED3BBE540DD"</ETag>
</CompleteMultipartUploadResult>"#;

    const LIST_PARTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult>
  <EncodingType>url</EncodingType>
  <Bucket>examplebucket</Bucket>
  <Key>%E6%95%B0%E6%8D%AE%2F%E6%8A%A5%E5%91%8A%202025.csv</Key>
  <UploadId>0004B9894A22E5B1888A1E29F8236E2D</UploadId>
  <StorageClass>Standard</StorageClass>
  <PartNumberMarker>5</PartNumberMarker>
  <NextPartNumberMarker>6</NextPartNumberMarker>
  <MaxParts>100</MaxParts>
  <IsTruncated>false</IsTruncated>
  <Part>
    <PartNumber>6</PartNumber>
    <LastModified>2025-01-15T08:29:00.000Z</LastModified>
    <ETag>"3349DC700140D7F86A0784842780C0B2"</ETag>
    <HashCrc64ecma>1000061281366431287</HashCrc64ecma>
    <Size>6291456</Size>
  </Part>
</ListPartsResult>"#;

    const LIST_UPLOADS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult>
  <EncodingType>url</EncodingType>
  <Bucket>examplebucket</Bucket>
  <KeyMarker></KeyMarker>
  <UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>backups%2Fa%2Bb%3Dc.tar.gz</NextKeyMarker>
  <NextUploadIdMarker>0004B9894A22E5B1888A1E29F8236E2D</NextUploadIdMarker>
  <Delimiter></Delimiter>
  <Prefix>backups%2F</Prefix>
  <MaxUploads>50</MaxUploads>
  <IsTruncated>false</IsTruncated>
  <Upload>
    <Key>backups%2Fa%2Bb%3Dc.tar.gz</Key>
    <UploadId>0004B9894A22E5B1888A1E29F8236E2D</UploadId>
    <Initiated>2025-01-15T08:00:00.000Z</Initiated>
  </Upload>
</ListMultipartUploadsResult>"#;

    /// The Go v2 SDK fixture of oss-errors.md §3.6, with a common prefix and a storage class.
    const LIST_UPLOADS_FIXTURE: &str = r#"<ListMultipartUploadsResult>
  <EncodingType>url</EncodingType>
  <Bucket>oss-example</Bucket>
  <KeyMarker></KeyMarker>
  <UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>oss.avi</NextKeyMarker>
  <NextUploadIdMarker>89F0105AA66942638E35300618DF****</NextUploadIdMarker>
  <Delimiter>/</Delimiter>
  <Prefix>pre</Prefix>
  <MaxUploads>1000</MaxUploads>
  <IsTruncated>false</IsTruncated>
  <Upload>
    <Key>demo%2Fgp-%0C%0A%0B</Key>
    <UploadId>0214A87687F040F1BA4D83AB17C9****</UploadId>
    <StorageClass>Standard</StorageClass>
    <Initiated>2023-11-22T05:45:57.000Z</Initiated>
  </Upload>
  <CommonPrefixes><Prefix>demo%2Fsub%2F</Prefix></CommonPrefixes>
</ListMultipartUploadsResult>"#;

    const LIST_OBJECTS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult>
  <Name>examplebucket</Name>
  <Prefix>a%2F</Prefix>
  <MaxKeys>3</MaxKeys>
  <Delimiter>%2F</Delimiter>
  <EncodingType>url</EncodingType>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>CgJiYw--</NextContinuationToken>
  <KeyCount>3</KeyCount>
  <Contents>
    <Key>a%2Fb%20c.txt</Key>
    <LastModified>2020-05-18T05:45:54.000Z</LastModified>
    <ETag>"35A27C2B9EAEEB6F48FD7FB5861D****"</ETag>
    <Type>Normal</Type>
    <Size>25</Size>
    <StorageClass>Standard</StorageClass>
  </Contents>
  <Contents>
    <Key>a%2Fd</Key>
    <LastModified>2020-05-18T05:45:55.000Z</LastModified>
    <ETag>"333D74B47CB1B0E275D2AB3CDDA02665-26"</ETag>
    <Type>Multipart</Type>
    <Size>7</Size>
    <StorageClass>IA</StorageClass>
  </Contents>
  <CommonPrefixes><Prefix>a%2Fsub%2F</Prefix></CommonPrefixes>
</ListBucketResult>"#;

    fn kind_of<T: std::fmt::Debug>(result: Result<T>) -> ErrorKind {
        result.expect_err("must fail").kind()
    }

    #[test]
    fn initiate_result_parses_and_decodes() {
        let mut result: InitiateMultipartUploadResult = from_xml(INITIATE.as_bytes()).unwrap();
        assert_eq!(result.upload_id, "0004B9894A22E5B1888A1E29F8236E2D");
        assert_eq!(result.encoding_type.as_deref(), Some("url"));
        result.decode_url_encoding().unwrap();
        assert_eq!(result.key, "backups/a+b=c.tar.gz");
        assert_eq!(result.encoding_type, None);
    }

    #[test]
    fn initiate_result_without_upload_id_is_malformed() {
        let body = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>\
                    </InitiateMultipartUploadResult>";
        assert_eq!(
            kind_of(from_xml::<InitiateMultipartUploadResult>(body.as_bytes())),
            ErrorKind::MalformedResponse
        );
    }

    #[test]
    fn complete_request_round_trips_with_literal_quotes() {
        let parsed: CompleteMultipartUpload = from_xml(COMPLETE_REQUEST.as_bytes()).unwrap();
        assert_eq!(parsed.parts.len(), 2);
        assert_eq!(parsed.parts[1].part_number, 2);
        assert_eq!(parsed.parts[1].etag, "\"4E82FE33112FECC4F4DC88E61D43AE30\"");
        let written = to_xml(&parsed);
        assert!(written.starts_with(XML_DECLARATION));
        assert!(
            written.contains(
                "<Part>\n    <PartNumber>1</PartNumber>\n    \
                 <ETag>\"95DF9BD1C2BFB07C102BF8F9AA224E65\"</ETag>\n  </Part>"
            ),
            "{written}"
        );
        assert_eq!(
            from_xml::<CompleteMultipartUpload>(written.as_bytes()).unwrap(),
            parsed
        );
    }

    #[test]
    fn complete_request_accepts_sdk_quirks() {
        // oss2: single-quoted declaration; Go v2: quotes escaped as &#34;; an empty list.
        let oss2 = "<?xml version='1.0' encoding='utf-8'?><CompleteMultipartUpload><Part>\
                    <PartNumber>3</PartNumber><ETag>&#34;AB&#34;</ETag></Part>\
                    </CompleteMultipartUpload>";
        let parsed: CompleteMultipartUpload = from_xml(oss2.as_bytes()).unwrap();
        assert_eq!(parsed.parts[0].etag, "\"AB\"");
        let empty: CompleteMultipartUpload = from_xml(b"<CompleteMultipartUpload />").unwrap();
        assert!(empty.parts.is_empty());
        let bad_number = "<CompleteMultipartUpload><Part><PartNumber>x</PartNumber>\
                          <ETag>e</ETag></Part></CompleteMultipartUpload>";
        assert_eq!(
            kind_of(from_xml::<CompleteMultipartUpload>(bad_number.as_bytes())),
            ErrorKind::MalformedResponse
        );
    }

    #[test]
    fn complete_result_parses() {
        let result: CompleteMultipartUploadResult = from_xml(COMPLETE_RESULT.as_bytes()).unwrap();
        assert_eq!(result.etag, "\"B864DB6A936D376F9F8D3ED3BBE540DD\"");
        assert_eq!(result.bucket, "examplebucket");
        assert_eq!(
            result.location,
            "http://examplebucket.oss-cn-hangzhou.aliyuncs.com/multipart.data"
        );
        // EncodingType comes first when written, as in §5.4.
        let written = to_xml(&result);
        let encoding = written.find("<EncodingType>").unwrap();
        assert!(encoding < written.find("<Location>").unwrap());
    }

    #[test]
    fn list_parts_parses_decodes_and_writes_in_order() {
        let mut result: ListPartsResult = from_xml(LIST_PARTS.as_bytes()).unwrap();
        assert_eq!(result.next_part_number_marker, 6);
        assert_eq!(result.part_number_marker, 5);
        assert_eq!(result.max_parts, 100);
        assert!(!result.is_truncated);
        assert_eq!(result.storage_class.as_deref(), Some("Standard"));
        let part = &result.parts[0];
        assert_eq!(part.part_number, 6);
        assert_eq!(part.hash_crc64ecma, Some(1000061281366431287));
        assert_eq!(part.size, 6291456);
        assert_eq!(part.last_modified, "2025-01-15T08:29:00.000Z");
        // Written back, it is the §5.6 document element for element.
        let written = to_xml(&result);
        let normalise = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(normalise(&written), normalise(LIST_PARTS));
        result.decode_url_encoding().unwrap();
        assert_eq!(result.key, "数据/报告 2025.csv");
    }

    #[test]
    fn list_parts_tolerates_old_and_empty_elements() {
        let body = "<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>U</UploadId>\
                    <NextPartNumberMarker></NextPartNumberMarker><IsTruncated>true</IsTruncated>\
                    <Part><PartNumber>1</PartNumber><LastModified>x</LastModified>\
                    <ETag>&quot;E&quot;</ETag><Size>5</Size></Part></ListPartsResult>";
        let result: ListPartsResult = from_xml(body.as_bytes()).unwrap();
        assert_eq!(result.next_part_number_marker, 0);
        assert!(result.is_truncated);
        assert_eq!(result.parts[0].hash_crc64ecma, None);
        assert_eq!(result.parts[0].etag, "\"E\"");
        let garbage = body.replace("<Size>5</Size>", "<Size>five</Size>");
        assert_eq!(
            kind_of(from_xml::<ListPartsResult>(garbage.as_bytes())),
            ErrorKind::MalformedResponse
        );
    }

    #[test]
    fn list_uploads_parses_and_writes_empty_elements() {
        let mut result: ListMultipartUploadsResult = from_xml(LIST_UPLOADS.as_bytes()).unwrap();
        assert_eq!(result.max_uploads, 50);
        assert_eq!(result.uploads.len(), 1);
        assert_eq!(result.uploads[0].initiated, "2025-01-15T08:00:00.000Z");
        let written = to_xml(&result);
        assert!(written.contains("<KeyMarker></KeyMarker>"), "{written}");
        let normalise = |s: &str| s.split_whitespace().collect::<String>();
        assert_eq!(normalise(&written), normalise(LIST_UPLOADS));
        result.decode_url_encoding().unwrap();
        assert_eq!(result.prefix, "backups/");
        assert_eq!(result.next_key_marker, "backups/a+b=c.tar.gz");
        assert_eq!(result.uploads[0].key, "backups/a+b=c.tar.gz");
    }

    #[test]
    fn list_uploads_fixture_with_prefixes_and_control_characters() {
        let mut result: ListMultipartUploadsResult =
            from_xml(LIST_UPLOADS_FIXTURE.as_bytes()).unwrap();
        result.decode_url_encoding().unwrap();
        assert_eq!(result.uploads[0].key, "demo/gp-\x0c\n\x0b");
        assert_eq!(result.uploads[0].storage_class.as_deref(), Some("Standard"));
        assert_eq!(result.common_prefixes[0].prefix, "demo/sub/");
        assert_eq!(result.delimiter, "/");
    }

    #[test]
    fn list_objects_parses_and_decodes() {
        let mut result: ListBucketResult = from_xml(LIST_OBJECTS.as_bytes()).unwrap();
        assert!(result.is_truncated);
        assert_eq!(result.key_count, 3);
        assert_eq!(result.next_continuation_token.as_deref(), Some("CgJiYw--"));
        assert_eq!(result.contents.len(), 2);
        assert_eq!(result.contents[1].object_type, "Multipart");
        assert_eq!(result.contents[1].storage_class, "IA");
        result.decode_url_encoding().unwrap();
        assert_eq!(result.contents[0].key, "a/b c.txt");
        assert_eq!(result.prefix, "a/");
        assert_eq!(result.delimiter, "/");
        assert_eq!(result.common_prefixes[0].prefix, "a/sub/");
        let again: ListBucketResult = from_xml(to_xml(&result).as_bytes()).unwrap();
        assert_eq!(again, result);
    }

    #[test]
    fn url_listing_encoding_round_trips() {
        for key in ["a b+c=d%e/f?g#h", "数据/报告 2025.csv", "x\u{1}\n~-_."] {
            let encoded = url_encode_listing(key);
            assert!(encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
            assert_eq!(url_decode_listing(&encoded).unwrap(), key);
        }
        assert_eq!(url_encode_listing("a b+c/"), "a%20b%2Bc%2F");
        // `+` is not a space.
        assert_eq!(url_decode_listing("a+b").unwrap(), "a+b");
        assert_eq!(
            url_decode_listing("%FF").unwrap_err().kind(),
            ErrorKind::MalformedResponse
        );
    }

    #[test]
    fn wrong_root_truncated_and_oversized_bodies_are_malformed() {
        let truncated = &LIST_PARTS[..LIST_PARTS.len() / 2];
        assert_eq!(
            kind_of(from_xml::<ListPartsResult>(truncated.as_bytes())),
            ErrorKind::MalformedResponse
        );
        // Cut just before the closing root tag, and mid-tag.
        let cut = LIST_PARTS.rfind("</ListPartsResult>").unwrap();
        for end in [cut, cut + 5, LIST_PARTS.len() - 1] {
            assert_eq!(
                kind_of(from_xml::<ListPartsResult>(&LIST_PARTS.as_bytes()[..end])),
                ErrorKind::MalformedResponse,
                "cut at {end}"
            );
        }
        let error = "<Error><Code>AccessDenied</Code></Error>";
        let err = from_xml::<ListPartsResult>(error.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a <ListPartsResult> xml body, got <Error>"
        );
        assert_eq!(
            kind_of(from_xml::<ListPartsResult>(b"<html>502</html>")),
            ErrorKind::MalformedResponse
        );
        assert_eq!(
            kind_of(from_xml::<ListPartsResult>(b"")),
            ErrorKind::MalformedResponse
        );
        assert_eq!(
            kind_of(from_xml::<ListPartsResult>(&[0xff, 0xfe, b'<'])),
            ErrorKind::MalformedResponse
        );
        let big = format!(
            "<ListPartsResult>{}</ListPartsResult>",
            "<Bucket>b</Bucket>".repeat(100)
        );
        let err = from_xml_with_limit::<ListPartsResult>(big.as_bytes(), 1024).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedResponse);
        assert!(
            err.to_string().contains("exceeds the 1024-byte limit"),
            "{err}"
        );
    }

    #[test]
    fn xml_bombs_and_external_entities_are_refused() {
        let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<ListPartsResult><Bucket>&lol3;</Bucket></ListPartsResult>"#;
        let err = from_xml::<ListPartsResult>(bomb.as_bytes()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MalformedResponse);
        assert!(err.to_string().contains("DOCTYPE"), "{err}");
        let xxe = r#"<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<Error><Code>&e;</Code></Error>"#;
        let service = parse_error_body(400, xxe.as_bytes(), &http::HeaderMap::new());
        assert!(!service.code.contains("root"));
        assert_eq!(service.code, "");
        // An undeclared entity is an error, not an expansion.
        let undeclared = "<ListPartsResult><Bucket>&lol;</Bucket></ListPartsResult>";
        assert_eq!(
            kind_of(from_xml::<ListPartsResult>(undeclared.as_bytes())),
            ErrorKind::MalformedResponse
        );
        // Comments and CDATA are fine.
        let benign = "<!-- hi --><ListPartsResult><Bucket><![CDATA[b<1>]]></Bucket>\
                      </ListPartsResult>";
        let parsed: ListPartsResult = from_xml(benign.as_bytes()).unwrap();
        assert_eq!(parsed.bucket, "b<1>");
    }

    #[test]
    fn deeply_nested_garbage_does_not_panic() {
        let deep = format!(
            "<ListPartsResult>{}{}</ListPartsResult>",
            "<a>".repeat(10_000),
            "</a>".repeat(10_000)
        );
        let _ = from_xml::<ListPartsResult>(deep.as_bytes());
        let deep_error = format!("<Error>{}</Error>", "<a>".repeat(10_000));
        let service = parse_error_body(500, deep_error.as_bytes(), &http::HeaderMap::new());
        assert_eq!(service.status, 500);
    }

    // ----- errors ------------------------------------------------------------------------------

    const INVALID_PART_NUMBER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
    <Code>InvalidArgument</Code>
    <Message>Part number must be an integer between 1 and 10000, inclusive.</Message>
    <RequestId>63*******53</RequestId>
    <HostId>****.oss-cn-chengdu.aliyuncs.com</HostId>
    <ArgumentName>PartNumber</ArgumentName>
    <ArgumentValue>10001</ArgumentValue>
</Error>"#;

    const NO_SUCH_UPLOAD: &str = r#"<Error>
    <Code>NoSuchUpload</Code>
    <Message>The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.</Message>
    <RequestId>63E37239D9A902383982A9EC</RequestId>
    <HostId>junchengtest.oss-cn-chengdu.aliyuncs.com</HostId>
    <UploadId>00358B75E5C546AF822369CE04A48A14</UploadId>
</Error>"#;

    const INVALID_PART: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>InvalidPart</Code>
  <Message>One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.</Message>
  <RequestId>5F09E53B25D95C3235741737</RequestId>
  <HostId>xking.oss-cn-hangzhou.aliyuncs.com</HostId>
  <ETag>undefined</ETag>
  <PartNumber>1</PartNumber>
  <UploadId>299AEA32DDE14A828E023EF962E947BA</UploadId>
</Error>"#;

    const SIGNATURE_MISMATCH: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>SignatureDoesNotMatch</Code>
  <Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message>
  <RequestId>646DCB189AE2D1333018****</RequestId>
  <HostId>bucket.oss-cn-hangzhou.aliyuncs.com</HostId>
  <OSSAccessKeyId>LTAI********</OSSAccessKeyId>
  <SignatureProvided>tPN3LTAI********</SignatureProvided>
  <StringToSign>PUT\n\n\nTue, 23 May 2023 15:24:55 GMT\n/bucket/?acl</StringToSign>
  <StringToSignBytes>50 55 54 0A 0A 0A 54 75 65 2C 20 32 33 20 4D 61 79 20 32 30 32 33 20 31 35 3A 32 34 3A 35 35 20 47 4D 54 0A 2F 64 69 6E 61 72 79 2F 3F 61 63 6C </StringToSignBytes>
  <EC>0002-00000040</EC>
</Error>"#;

    const INVALID_ACCESS_KEY: &str = r#"<Error>
  <Code>InvalidAccessKeyId</Code>
  <Message>The OSS Access Key Id you provided does not exist in our records.</Message>
  <RequestId>id-1234</RequestId>
  <HostId>oss-cn-hangzhou.aliyuncs.com</HostId>
  <OSSAccessKeyId>ak</OSSAccessKeyId>
  <EC>0002-00000902</EC>
  <RecommendDoc>https://api.aliyun.com/troubleshoot?q=0002-00000902</RecommendDoc>
</Error>"#;

    const NO_SUCH_BUCKET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
    <Code>NoSuchBucket</Code>
    <Message>The specified bucket does not exist.</Message>
    <RequestId>5C3D9175B6FC201293AD****</RequestId>
    <HostId>test.oss-cn-hangzhou.aliyuncs.com</HostId>
    <BucketName>test</BucketName>
    <EC>0015-00000101</EC>
</Error>"#;

    const NO_SUCH_KEY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>NoSuchKey</Code>
  <Message>The specified key does not exist.</Message>
  <RequestId>6556E3AED11E553933CCDEDF</RequestId>
  <HostId>demo-walker-6961.oss-cn-hangzhou.aliyuncs.com</HostId>
  <Key>walker2asdasdasd.txt</Key>
  <EC>0026-00000001</EC>
  <RecommendDoc>https://api.aliyun.com/troubleshoot?q=0026-00000001</RecommendDoc>
</Error>"#;

    fn parse(status: u16, body: &str) -> ServiceError {
        parse_error_body(status, body.as_bytes(), &http::HeaderMap::new())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn verbatim_error_bodies_keep_every_field() {
        let e = parse(400, INVALID_PART_NUMBER);
        assert_eq!(e.status, 400);
        assert_eq!(e.code, "InvalidArgument");
        assert_eq!(
            e.message,
            "Part number must be an integer between 1 and 10000, inclusive."
        );
        assert_eq!(e.request_id, "63*******53");
        assert_eq!(e.host_id, "****.oss-cn-chengdu.aliyuncs.com");
        assert_eq!(e.field("ArgumentName"), Some("PartNumber"));
        assert_eq!(e.field("ArgumentValue"), Some("10001"));
        assert_eq!(e.ec, "");

        let e = parse(404, NO_SUCH_UPLOAD);
        assert_eq!(e.code, "NoSuchUpload");
        assert_eq!(
            e.field("UploadId"),
            Some("00358B75E5C546AF822369CE04A48A14")
        );

        let e = parse(400, INVALID_PART);
        assert_eq!(
            e.fields,
            vec![
                ("ETag".to_owned(), "undefined".to_owned()),
                ("PartNumber".to_owned(), "1".to_owned()),
                (
                    "UploadId".to_owned(),
                    "299AEA32DDE14A828E023EF962E947BA".to_owned()
                ),
            ]
        );

        let e = parse(403, SIGNATURE_MISMATCH);
        assert_eq!(e.ec, "0002-00000040");
        assert_eq!(
            e.field("StringToSign"),
            Some(r"PUT\n\n\nTue, 23 May 2023 15:24:55 GMT\n/bucket/?acl")
        );
        assert_eq!(e.field("OSSAccessKeyId"), Some("LTAI********"));

        let e = parse(403, INVALID_ACCESS_KEY);
        assert_eq!(e.ec, "0002-00000902");
        assert_eq!(
            e.field("RecommendDoc"),
            Some("https://api.aliyun.com/troubleshoot?q=0002-00000902")
        );

        let e = parse(404, NO_SUCH_BUCKET);
        assert_eq!(e.field("BucketName"), Some("test"));
        assert_eq!(e.ec, "0015-00000101");
    }

    #[test]
    fn error_retry_classification_from_parsed_bodies() {
        let retryable = |status: u16, code: &str| {
            let body = format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
            Error::service(parse(status, &body)).is_retryable()
        };
        assert!(retryable(503, "ServiceUnavailable"));
        assert!(retryable(500, "InternalError"));
        assert!(retryable(429, "QpsLimitExceeded"));
        assert!(retryable(503, "TotalQpsLimitExceeded"));
        assert!(retryable(403, "RequestTimeTooSkewed"));
        assert!(retryable(400, "RequestTimeout"));
        assert!(!retryable(400, "InvalidArgument"));
        assert!(!retryable(403, "AccessDenied"));
        assert!(!retryable(403, "SignatureDoesNotMatch"));
        assert!(!retryable(404, "NoSuchUpload"));
        assert!(!retryable(409, "FileAlreadyExists"));
        assert!(!retryable(400, "EntityTooSmall"));
        assert!(!retryable(400, "InvalidDigest"));
    }

    #[test]
    fn header_fallbacks_fill_request_id_and_ec() {
        let body = "<Error><Code>InternalError</Code><Message>m</Message></Error>";
        let map = headers(&[("x-oss-request-id", "RID"), ("x-oss-ec", "0000-1")]);
        let e = parse_error_body(500, body.as_bytes(), &map);
        assert_eq!(e.request_id, "RID");
        assert_eq!(e.ec, "0000-1");
        // The body wins over the headers.
        let e = parse_error_body(404, NO_SUCH_KEY.as_bytes(), &map);
        assert_eq!(e.request_id, "6556E3AED11E553933CCDEDF");
        assert_eq!(e.ec, "0026-00000001");
    }

    #[test]
    fn head_errors_are_decoded_from_x_oss_err() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(NO_SUCH_KEY);
        let map = headers(&[
            ("x-oss-err", &encoded),
            ("x-oss-request-id", "6556E3AED11E553933CCDEDF"),
            ("x-oss-ec", "0026-00000001"),
        ]);
        let e = parse_error_body(404, b"", &map);
        assert_eq!(e.status, 404);
        assert_eq!(e.code, "NoSuchKey");
        assert_eq!(e.message, "The specified key does not exist.");
        assert_eq!(e.field("Key"), Some("walker2asdasdasd.txt"));
        assert_eq!(e.ec, "0026-00000001");
        // Garbage in x-oss-err: status and headers only.
        let map = headers(&[("x-oss-err", "!!notbase64"), ("x-oss-request-id", "R")]);
        let e = parse_error_body(404, b"", &map);
        assert_eq!((e.code.as_str(), e.request_id.as_str()), ("", "R"));
        // Nothing at all.
        let e = parse_error_body(412, b"", &http::HeaderMap::new());
        assert_eq!(
            e,
            ServiceError {
                status: 412,
                ..ServiceError::default()
            }
        );
    }

    #[test]
    fn malformed_error_bodies_fall_back_to_extraction() {
        let e = parse(
            500,
            "<Error><Code>InternalError</Code><Message>busy &amp; sad</Message>",
        );
        assert_eq!(e.code, "InternalError");
        assert_eq!(e.message, "busy & sad");
        let e = parse(502, "<html><body>\n  Bad   Gateway\n</body></html>");
        assert_eq!(e.code, "");
        assert_eq!(e.message, "<html><body> Bad Gateway </body></html>");
        let long = "x".repeat(100_000);
        let e = parse(500, &long);
        assert_eq!(e.message, "");
        let namespaced = "<Error xmlns=\"http://doc.oss-cn-hangzhou.aliyuncs.com\">\n<Code>\n\
                          AccessDenied\n</Code>\n</Error>";
        assert_eq!(parse(403, namespaced).code, "AccessDenied");
    }

    #[test]
    fn error_xml_round_trips_in_service_order() {
        let original = parse(404, NO_SUCH_KEY);
        let written = error_to_xml(&original);
        let order: Vec<usize> = [
            "<Code>",
            "<Message>",
            "<RequestId>",
            "<HostId>",
            "<Key>",
            "<EC>",
            "<RecommendDoc>",
        ]
        .iter()
        .map(|tag| written.find(tag).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{written}");
        assert_eq!(parse(404, &written), original);
        let encoded = encode_oss_err(&original);
        let mut decoded = decode_oss_err(&encoded).unwrap();
        decoded.status = 404;
        assert_eq!(decoded, original);
        let tricky = ServiceError {
            status: 400,
            code: "InvalidArgument".into(),
            message: "a < b & \"c\"".into(),
            fields: vec![("Bad Name".into(), "dropped".into())],
            ..ServiceError::default()
        };
        let back = parse(400, &error_to_xml(&tricky));
        assert_eq!(back.message, "a < b & \"c\"");
        assert!(back.fields.is_empty());
    }

    #[test]
    fn timestamps_always_have_zero_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_736_929_740_123);
        assert_eq!(format_iso8601_millis(t), "2025-01-15T08:29:00.000Z");
        assert_eq!(
            format_iso8601_millis(UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_iso8601_millis(leap), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            parse_iso8601("2025-01-15T08:29:00.000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_736_929_740))
        );
        assert_eq!(
            parse_iso8601("2025-01-15T08:29:00.5Z"),
            Some(UNIX_EPOCH + Duration::from_millis(1_736_929_740_500))
        );
        assert_eq!(parse_iso8601("2025-01-15T08:29:00"), None);
        assert_eq!(parse_iso8601("2025-13-15T08:29:00Z"), None);
        assert_eq!(parse_iso8601("garbage"), None);
        for secs in [0u64, 86_399, 951_782_400, 1_736_929_740, 4_102_444_800] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_iso8601(&format_iso8601_millis(t)), Some(t));
        }
    }
}
