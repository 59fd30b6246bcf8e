//! The V4 signature: `OSS4-HMAC-SHA256` (`oss-protocol.md` §4).
//!
//! ```text
//! CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n
//!                    AdditionalHeaders \n HashedPayload
//! StringToSign     = "OSS4-HMAC-SHA256" \n datetime \n scope \n hex(sha256(CanonicalRequest))
//! scope            = yyyymmdd/region/product/aliyun_v4_request
//! Signature        = hex(HMAC-SHA256(signing_key, StringToSign))
//! ```

use super::SignableRequest;

/// The algorithm name: the `Authorization` scheme and the first line of the string to sign.
pub const ALGORITHM: &str = "OSS4-HMAC-SHA256";

/// The last element of every V4 scope.
pub const TERMINATOR: &str = "aliyun_v4_request";

/// The CanonicalURI: `uri_encode("/bucket/key", keep_slash = true)`, `/bucket/` for
/// bucket-level requests, `/` without a bucket.
pub fn canonical_uri(bucket: Option<&str>, key: Option<&str>) -> String {
    let _ = (bucket, key);
    todo!()
}

/// The CanonicalQueryString: every pair given, names and values `uri_encode`d (`/` as `%2F`),
/// sorted by encoded name then value, a value-less pair as its bare name, joined with `&`.
///
/// A verifier of a presigned URL must leave `x-oss-signature` out of `query` first.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let _ = query;
    todo!()
}

/// Normalises a list of additional header names: lower-cased, without the names that are
/// signed anyway (`content-type`, `content-md5`, `x-oss-*`), only those present in `headers`,
/// sorted and deduplicated. This is the list that goes in `AdditionalHeaders=`.
pub fn additional_headers<S: AsRef<str>>(names: &[S], headers: &http::HeaderMap) -> Vec<String> {
    let _ = (names, headers);
    todo!()
}

/// The canonical request. `additional_headers` is normalised with [`additional_headers`] first;
/// `payload_hash` is the `x-oss-content-sha256` value (`UNSIGNED-PAYLOAD`).
pub fn canonical_request<S: AsRef<str>>(
    req: &SignableRequest<'_>,
    additional_headers: &[S],
    payload_hash: &str,
) -> String {
    let _ = (req, additional_headers, payload_hash);
    todo!()
}

/// The scope `date8/region/product/aliyun_v4_request`.
pub fn scope(date8: &str, region: &str, product: &str) -> String {
    format!("{date8}/{region}/{product}/{TERMINATOR}")
}

/// `OSS4-HMAC-SHA256 \n datetime \n scope \n hex(sha256(canonical_request))`.
pub fn string_to_sign(datetime: &str, scope: &str, canonical_request: &str) -> String {
    let _ = (datetime, scope, canonical_request);
    todo!()
}

/// The signing key: HMAC-SHA256 chained over `"aliyun_v4" + secret`, the date, the region, the
/// product and `aliyun_v4_request`.
pub fn signing_key(secret: &str, date8: &str, region: &str, product: &str) -> [u8; 32] {
    let _ = (secret, date8, region, product);
    todo!()
}

/// `lowercase_hex(HMAC-SHA256(signing_key, string_to_sign))`.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    let _ = (signing_key, string_to_sign);
    todo!()
}

/// A parsed V4 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id from `Credential=`.
    pub access_key_id: String,
    /// The `yyyymmdd` date of the scope.
    pub date: String,
    /// The region of the scope.
    pub region: String,
    /// The product of the scope (`oss`).
    pub product: String,
    /// The `AdditionalHeaders=` names, empty when absent.
    pub additional_headers: Vec<String>,
    /// The lowercase hex signature.
    pub signature: String,
}

impl Authorization {
    /// The header value in the Py-v2 / Go-v2 form: no spaces, `AdditionalHeaders` (if any)
    /// before `Signature`.
    pub fn to_header_value(&self) -> String {
        todo!()
    }
}

/// Parses a V4 `Authorization` value. Accepts the Py-v2 / Go-v2 form (`,` separators) and the
/// oss2 form (`, ` separators, `AdditionalHeaders` after `Signature`): the parts may come in any
/// order with whitespace around them. The scope must end in `aliyun_v4_request`.
pub fn parse_authorization(value: &str) -> Option<Authorization> {
    let _ = value;
    todo!()
}
