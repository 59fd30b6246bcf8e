//! The V1 signature: `Authorization: OSS <AccessKeyId>:<Signature>` (`oss-protocol.md` §3).
//!
//! ```text
//! StringToSign = VERB \n Content-MD5 \n Content-Type \n DATE \n
//!                CanonicalizedOSSHeaders CanonicalizedResource
//! Signature    = base64(HMAC-SHA1(secret, StringToSign))
//! ```

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::header::{CONTENT_TYPE, DATE};
use http::HeaderMap;
use sha1::Sha1;

use super::{header_text, joined_header_value, SignableRequest, X_OSS_DATE};

/// The `Authorization` scheme prefix of a V1 header.
pub const SCHEME: &str = "OSS";

/// The signed sub-resources named by the official SDKs, byte-sorted for binary search: the
/// union of Py-v2's `SignerV1._subresource_key_set`, oss2's `ProviderAuth._subresource_key_set`
/// and the names some Py-v2 operations add (`cleanRestoredObject`, `seal`). Names starting with
/// `x-oss-` are left out because [`is_signed_subresource`] accepts that whole prefix.
const SUBRESOURCES: [&str; 77] = [
    "accessPoint",
    "accessPointPolicy",
    "acl",
    "append",
    "asyncFetch",
    "bucketArchiveDirectRead",
    "bucketInfo",
    "callback",
    "callback-var",
    "cleanRestoredObject",
    "cloudboxes",
    "cname",
    "comp",
    "continuation-token",
    "cors",
    "delete",
    "encryption",
    "endTime",
    "group",
    "httpsConfig",
    "inventory",
    "inventoryId",
    "lifecycle",
    "link",
    "live",
    "location",
    "logging",
    "metaQuery",
    "objectInfo",
    "objectMeta",
    "partNumber",
    "policy",
    "position",
    "publicAccessBlock",
    "qos",
    "qosInfo",
    "qosRequester",
    "redundancyTransition",
    "referer",
    "regionList",
    "replication",
    "replicationLocation",
    "replicationProgress",
    "requestPayment",
    "requesterQosInfo",
    "resourceGroup",
    "resourcePool",
    "resourcePoolBuckets",
    "resourcePoolInfo",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "seal",
    "security-token",
    "sequential",
    "startTime",
    "stat",
    "status",
    "style",
    "styleName",
    "symlink",
    "tagging",
    "transferAcceleration",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "vod",
    "website",
    "worm",
    "wormExtend",
    "wormId",
];

/// Whether a query parameter is a signed sub-resource in V1.
///
/// The set is the union of the official SDKs' lists (Py-v2, oss2, Go-v2) plus every parameter
/// whose name starts with `x-oss-` (Go-v2's rule). Names are case-sensitive, as in the SDKs.
/// Paging and listing parameters (`max-parts`, `prefix`, `encoding-type`, ...) are not signed.
pub fn is_signed_subresource(name: &str) -> bool {
    name.starts_with("x-oss-") || SUBRESOURCES.binary_search(&name).is_ok()
}

/// The DATE line the V1 string to sign uses for header auth: the `x-oss-date` header if
/// present (ali-oss style), else `Date`. `None` if neither is present or readable as text.
pub fn date_to_sign(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(X_OSS_DATE)
        .or_else(|| headers.get(DATE))
        .and_then(|value| value.to_str().ok())
}

/// The CanonicalizedResource: `/bucket/key` with the RAW key (not URL-encoded), `/bucket/` for
/// bucket-level requests, `/` without a bucket (a key without a bucket is ignored); then `?`
/// and the signed sub-resources sorted by name and value, each `name` or `name=value` with the
/// decoded value.
pub fn canonical_resource(
    bucket: Option<&str>,
    key: Option<&str>,
    query: &[(String, String)],
) -> String {
    let mut out = String::new();
    push_canonical_resource(&mut out, bucket, key, query);
    out
}

fn push_canonical_resource(
    out: &mut String,
    bucket: Option<&str>,
    key: Option<&str>,
    query: &[(String, String)],
) {
    out.push('/');
    if let Some(bucket) = bucket {
        out.push_str(bucket);
        out.push('/');
        if let Some(key) = key {
            out.push_str(key);
        }
    }
    let mut subresources: Vec<(&str, &str)> = query
        .iter()
        .filter(|(name, _)| is_signed_subresource(name))
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    if subresources.is_empty() {
        return;
    }
    // Py-v2 sorts by (name, value); oss2 by name only. They differ only for a repeated name,
    // which no operation sends.
    subresources.sort_unstable();
    for (index, (name, value)) in subresources.into_iter().enumerate() {
        out.push(if index == 0 { '?' } else { '&' });
        out.push_str(name);
        if !value.is_empty() {
            out.push('=');
            out.push_str(value);
        }
    }
}

/// The CanonicalizedOSSHeaders: every `x-oss-*` header as `name:value\n`, names lower-case
/// (`HeaderMap` already stores them so), sorted, values trimmed, repeated values joined with
/// `,`. Empty when there are none.
fn push_canonical_headers(out: &mut String, headers: &HeaderMap) {
    let mut names: Vec<&http::HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-oss-"))
        .collect();
    names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    for name in names {
        out.push_str(name.as_str());
        out.push(':');
        out.push_str(&joined_header_value(headers, name));
        out.push('\n');
    }
}

/// The V1 string to sign. `date` is chosen by the caller: the `x-oss-date` or `Date` header for
/// header auth (see [`date_to_sign`]), the `Expires` value for a presigned URL.
///
/// `Content-MD5` and `Content-Type` are used exactly as sent (empty when absent).
pub fn string_to_sign(req: &SignableRequest<'_>, date: &str) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(req.method);
    out.push('\n');
    if let Some(md5) = req.headers.get("content-md5") {
        out.push_str(&header_text(md5));
    }
    out.push('\n');
    if let Some(content_type) = req.headers.get(CONTENT_TYPE) {
        out.push_str(&header_text(content_type));
    }
    out.push('\n');
    out.push_str(date);
    out.push('\n');
    push_canonical_headers(&mut out, req.headers);
    push_canonical_resource(&mut out, req.bucket, req.key, req.query);
    out
}

/// `base64(HMAC-SHA1(secret, string_to_sign))`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization` header value `OSS <access_key_id>:<signature>`.
pub fn authorization(access_key_id: &str, signature: &str) -> String {
    format!("{SCHEME} {access_key_id}:{signature}")
}

/// Splits `OSS <ak>:<signature>` into the access key id and the signature. Both must be
/// non-empty; surrounding whitespace is ignored.
pub fn parse_authorization(value: &str) -> Option<(&str, &str)> {
    let rest = value.trim().strip_prefix(SCHEME)?;
    // At least one space after the scheme, so `OSS4-HMAC-SHA256 ...` is not mistaken for V1.
    let rest = rest.strip_prefix(' ')?.trim_start();
    let (access_key_id, signature) = rest.split_once(':')?;
    if access_key_id.is_empty()
        || signature.is_empty()
        || access_key_id.contains(char::is_whitespace)
        || signature.contains(char::is_whitespace)
    {
        return None;
    }
    Some((access_key_id, signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn subresource_table_is_sorted_and_complete() {
        assert!(SUBRESOURCES.windows(2).all(|w| w[0] < w[1]));
        for name in ["uploads", "uploadId", "partNumber", "security-token", "acl"] {
            assert!(is_signed_subresource(name), "{name}");
        }
        for name in ["x-oss-process", "x-oss-anything"] {
            assert!(is_signed_subresource(name), "{name}");
        }
        for name in [
            "encoding-type",
            "max-parts",
            "part-number-marker",
            "max-uploads",
            "prefix",
            "delimiter",
            "key-marker",
            "upload-id-marker",
            "UploadId",
            "",
        ] {
            assert!(!is_signed_subresource(name), "{name}");
        }
    }

    #[test]
    fn resource_shapes() {
        assert_eq!(canonical_resource(None, None, &[]), "/");
        assert_eq!(canonical_resource(None, Some("k"), &[]), "/");
        assert_eq!(canonical_resource(Some("b"), None, &[]), "/b/");
        assert_eq!(
            canonical_resource(Some("b"), Some("a b/c+d?e#f%20"), &[]),
            "/b/a b/c+d?e#f%20"
        );
        let query = pairs(&[
            ("uploadId", "U"),
            ("max-parts", "100"),
            ("encoding-type", "url"),
            ("part-number-marker", "5"),
        ]);
        assert_eq!(
            canonical_resource(Some("b"), Some("k"), &query),
            "/b/k?uploadId=U"
        );
        let query = pairs(&[("uploads", ""), ("acl", ""), ("response-expires", "a=b&c")]);
        assert_eq!(
            canonical_resource(Some("b"), None, &query),
            "/b/?acl&response-expires=a=b&c&uploads"
        );
    }

    #[test]
    fn date_prefers_x_oss_date() {
        let mut headers = HeaderMap::new();
        assert_eq!(date_to_sign(&headers), None);
        headers.insert(DATE, HeaderValue::from_static("D"));
        assert_eq!(date_to_sign(&headers), Some("D"));
        headers.insert(X_OSS_DATE, HeaderValue::from_static("X"));
        assert_eq!(date_to_sign(&headers), Some("X"));
    }

    #[test]
    fn parse_authorization_forms() {
        assert_eq!(
            parse_authorization("OSS LTAI-test-id:uAcclRtK9dUu7056qpaa4tcRCwc="),
            Some(("LTAI-test-id", "uAcclRtK9dUu7056qpaa4tcRCwc="))
        );
        assert_eq!(parse_authorization("  OSS  ak:sig "), Some(("ak", "sig")));
        for bad in [
            "",
            "OSS",
            "OSS ",
            "OSS ak",
            "OSS :sig",
            "OSS ak:",
            "OSSak:sig",
            "OSS4-HMAC-SHA256 Credential=a/b/c/d/e,Signature=f",
            "OSS a k:sig",
        ] {
            assert_eq!(parse_authorization(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn signature_is_base64_hmac_sha1() {
        // RFC 2202 test case 2.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            base64::engine::general_purpose::STANDARD
                .encode(hex::decode("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79").unwrap())
        );
    }
}
