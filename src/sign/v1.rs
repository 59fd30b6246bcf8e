//! The V1 signature: `Authorization: OSS <AccessKeyId>:<Signature>` (`oss-protocol.md` §3).
//!
//! ```text
//! StringToSign = VERB \n Content-MD5 \n Content-Type \n DATE \n
//!                CanonicalizedOSSHeaders CanonicalizedResource
//! Signature    = base64(HMAC-SHA1(secret, StringToSign))
//! ```

use super::SignableRequest;

/// The `Authorization` scheme prefix of a V1 header.
pub const SCHEME: &str = "OSS";

/// Whether a query parameter is a signed sub-resource in V1.
///
/// The set is the union of the official SDKs' lists (Py-v2, oss2, Go-v2) plus every parameter
/// whose name starts with `x-oss-` (Go-v2's rule). Names are case-sensitive, as in the SDKs.
pub fn is_signed_subresource(name: &str) -> bool {
    let _ = name;
    todo!()
}

/// The DATE line the V1 string to sign uses for header auth: the `x-oss-date` header if
/// present (ali-oss style), else `Date`. `None` if neither is present or readable.
pub fn date_to_sign(headers: &http::HeaderMap) -> Option<&str> {
    let _ = headers;
    todo!()
}

/// The CanonicalizedResource: `/bucket/key` with the RAW key (not URL-encoded), `/bucket/` for
/// bucket-level requests, `/` without a bucket; then `?` and the signed sub-resources sorted by
/// name and value, each `name` or `name=value` with the decoded value.
pub fn canonical_resource(
    bucket: Option<&str>,
    key: Option<&str>,
    query: &[(String, String)],
) -> String {
    let _ = (bucket, key, query);
    todo!()
}

/// The V1 string to sign. `date` is chosen by the caller: the `x-oss-date` or `Date` header for
/// header auth (see [`date_to_sign`]), the `Expires` value for a presigned URL.
pub fn string_to_sign(req: &SignableRequest<'_>, date: &str) -> String {
    let _ = (req, date);
    todo!()
}

/// `base64(HMAC-SHA1(secret, string_to_sign))`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let _ = (secret, string_to_sign);
    todo!()
}

/// The `Authorization` header value `OSS <access_key_id>:<signature>`.
pub fn authorization(access_key_id: &str, signature: &str) -> String {
    format!("{SCHEME} {access_key_id}:{signature}")
}

/// Splits `OSS <ak>:<signature>` into the access key id and the signature.
pub fn parse_authorization(value: &str) -> Option<(&str, &str)> {
    let _ = value;
    todo!()
}
