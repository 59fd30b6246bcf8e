//! Routing: from method, host, path and query to (bucket, key, operation).
//!
//! - Addressing (§1.2): the bucket comes from `Host` when it is `<bucket>.<endpoint>` for an
//!   endpoint that looks like OSS (`*.aliyuncs.com`), `localhost`, or the configured virtual
//!   host; otherwise (IP addresses, plain names) from the first path segment.
//! - The key is the rest of the path, percent-decoded exactly once (`%2F` is `/`, `+` stays
//!   `+`), and must be UTF-8.
//! - The query is split on `&`; `k`, `k=` and `k=<empty>` all mean "present, empty".

use http::Method;
use percent_encoding::percent_decode_str;

use super::errors::OssError;
use crate::error::Operation;
use crate::limits::{MAX_BUCKET_NAME_LEN, MAX_KEY_BYTES, MIN_BUCKET_NAME_LEN};

/// Decoded query parameters in wire order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pub(crate) pairs: Vec<(String, String)>,
}

fn decode_component(raw: &str) -> String {
    percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => (decode_component(name), decode_component(value)),
                None => (decode_component(pair), String::new()),
            })
            .collect();
        Self { pairs }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }
}

/// A routed request.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) bucket: String,
    pub(crate) key: Option<String>,
    pub(crate) query: Query,
    pub(crate) operation: Operation,
    /// The part number of an UploadPart, once checked (for fault rules).
    pub(crate) part_number: Option<u32>,
    /// Whether the bucket came from the `Host` header.
    pub(crate) virtual_hosted: bool,
}

/// Bucket names: 3-63 of `[a-z0-9-]`, not starting or ending with `-` (§1.3).
pub(crate) fn is_valid_bucket_name(name: &str) -> bool {
    (MIN_BUCKET_NAME_LEN..=MAX_BUCKET_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Checks a decoded key against §1.3.
pub(crate) fn check_key(key: &str) -> Result<(), OssError> {
    if key.is_empty() {
        return Err(OssError::object_name_empty());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(OssError::object_name_too_long());
    }
    if key.starts_with('/') || key.starts_with('\\') {
        return Err(OssError::object_name_invalid());
    }
    Ok(())
}

/// The bucket named by a virtual-hosted `Host`, if the host is one.
pub(crate) fn virtual_host_bucket(host: &str, virtual_host: Option<&str>) -> Option<String> {
    // Strip the port (IPv6 literals are in brackets and never virtual-hosted).
    if host.starts_with('[') {
        return None;
    }
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    if name.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let (label, rest) = name.split_once('.')?;
    let rest = rest.to_ascii_lowercase();
    let is_endpoint = rest == "localhost"
        || rest.ends_with(".aliyuncs.com")
        || virtual_host.is_some_and(|v| v.eq_ignore_ascii_case(&rest));
    is_endpoint.then(|| label.to_owned())
}

/// Sub-resources this server does not implement; a request carrying one must not be mistaken
/// for a plain object or bucket request (GET `?acl` is not GetObject).
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "acl",
    "append",
    "bucketInfo",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "policy",
    "referer",
    "restore",
    "stat",
    "symlink",
    "tagging",
    "versioning",
    "versions",
    "website",
    "worm",
    "x-oss-process",
];

/// Routes a request. `host` is the `Host` header (or the URI authority).
pub(crate) fn route(
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
    host: &str,
    virtual_host: Option<&str>,
    has_copy_source: bool,
) -> Result<Route, OssError> {
    let query = Query::parse(raw_query);
    let path = path.strip_prefix('/').unwrap_or(path);
    let (bucket, raw_key, virtual_hosted) = match virtual_host_bucket(host, virtual_host) {
        Some(bucket) => (Some(bucket), path, true),
        None => match path.split_once('/') {
            Some((bucket, key)) => (Some(decode_component(bucket)), key, false),
            None if path.is_empty() => (None, "", false),
            None => (Some(decode_component(path)), "", false),
        },
    };
    let Some(bucket) = bucket else {
        return Err(OssError::not_implemented(
            "service-level requests (ListBuckets)",
        ));
    };
    if !is_valid_bucket_name(&bucket) {
        return Err(OssError::invalid_bucket_name(&bucket));
    }
    let key = if raw_key.is_empty() {
        None
    } else {
        let bytes: Vec<u8> = percent_decode_str(raw_key).collect();
        let key = String::from_utf8(bytes).map_err(|_| OssError::object_name_invalid())?;
        check_key(&key)?;
        Some(key)
    };
    if let Some(unsupported) = UNSUPPORTED_SUBRESOURCES.iter().find(|s| query.has(s)) {
        return Err(OssError::not_implemented(&format!(
            "the `{unsupported}` sub-resource"
        )));
    }
    let operation = match (&key, method) {
        (None, &Method::PUT) => Operation::PutBucket,
        (None, &Method::GET) if query.has("uploads") => Operation::ListMultipartUploads,
        (None, &Method::GET) if query.get("list-type") == Some("2") => Operation::ListObjects,
        (None, &Method::GET) => {
            return Err(OssError::not_implemented(
                "ListObjects (v1); send list-type=2",
            ))
        }
        (None, method) => return Err(OssError::method_not_allowed(method.as_str(), "Bucket")),
        (Some(_), _) if has_copy_source => {
            return Err(OssError::not_implemented("CopyObject and UploadPartCopy"))
        }
        (Some(_), &Method::PUT) if query.has("uploadId") => Operation::UploadPart,
        (Some(_), &Method::PUT) => Operation::PutObject,
        (Some(_), &Method::POST) if query.has("uploads") => Operation::InitiateMultipartUpload,
        (Some(_), &Method::POST) if query.has("uploadId") => Operation::CompleteMultipartUpload,
        (Some(_), &Method::GET) if query.has("uploadId") => Operation::ListParts,
        // GetObjectMeta (`?objectMeta`, HEAD in the SDKs) is answered as a reduced HEAD.
        (Some(_), &Method::GET) if query.has("objectMeta") => Operation::HeadObject,
        (Some(_), &Method::GET) => Operation::GetObject,
        (Some(_), &Method::HEAD) => Operation::HeadObject,
        (Some(_), &Method::DELETE) if query.has("uploadId") => Operation::AbortMultipartUpload,
        (Some(_), &Method::DELETE) => Operation::DeleteObject,
        (Some(_), method) => return Err(OssError::method_not_allowed(method.as_str(), "Object")),
    };
    Ok(Route {
        bucket,
        key,
        query,
        operation,
        part_number: None,
        virtual_hosted,
    })
}

/// UploadPart's `partNumber`: present and an integer in 1..=10000. Checked after the
/// signature, so an unsigned request learns nothing but `AccessDenied`.
pub(crate) fn parse_part_number(query: &Query) -> Result<u32, OssError> {
    let raw = match query.get("partNumber") {
        None | Some("") => return Err(OssError::missing_part_number()),
        Some(raw) => raw,
    };
    raw.parse::<u32>()
        .ok()
        .filter(|n| (crate::limits::MIN_PART_NUMBER..=crate::limits::MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| OssError::invalid_part_number(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: Method, path: &str, query: Option<&str>, host: &str) -> Route {
        route(&method, path, query, host, None, false).unwrap()
    }

    fn err(method: Method, path: &str, query: Option<&str>) -> OssError {
        route(&method, path, query, "127.0.0.1:9000", None, false)
            .and_then(|r| {
                if r.operation == Operation::UploadPart {
                    parse_part_number(&r.query)?;
                }
                Ok(r)
            })
            .unwrap_err()
    }

    #[test]
    fn path_style_keys_are_decoded_once() {
        let r = ok(Method::PUT, "/bucket/a%2Fb/c%2520d+e", None, "127.0.0.1:1");
        assert_eq!(r.bucket, "bucket");
        assert_eq!(r.key.as_deref(), Some("a/b/c%20d+e"));
        assert_eq!(r.operation, Operation::PutObject);
        assert!(!r.virtual_hosted);
        let r = ok(Method::GET, "/bucket/", Some("uploads"), "localhost:1");
        assert_eq!(r.operation, Operation::ListMultipartUploads);
        assert_eq!(r.key, None);
        let r = ok(Method::PUT, "/bucket", None, "localhost:1");
        assert_eq!(r.operation, Operation::PutBucket);
    }

    #[test]
    fn virtual_hosted_buckets_come_from_the_host() {
        let r = ok(
            Method::GET,
            "/docs/x.txt",
            None,
            "examplebucket.oss-cn-hangzhou.aliyuncs.com",
        );
        assert_eq!(r.bucket, "examplebucket");
        assert_eq!(r.key.as_deref(), Some("docs/x.txt"));
        assert!(r.virtual_hosted);
        let r = ok(Method::GET, "/k", None, "bkt.localhost:8080");
        assert_eq!(r.bucket, "bkt");
        // The bare endpoint is path-style.
        let r = ok(Method::GET, "/bkt/k", None, "oss-cn-hangzhou.aliyuncs.com");
        assert_eq!(r.bucket, "bkt");
        assert_eq!(
            virtual_host_bucket("b1.example.test:9", Some("example.test")),
            Some("b1".to_owned())
        );
        assert_eq!(virtual_host_bucket("10.0.0.1:9", None), None);
    }

    #[test]
    fn value_less_parameters_are_present() {
        for q in ["uploads", "uploads=", "uploads=&encoding-type=url"] {
            let r = ok(Method::POST, "/b1b/k", Some(q), "127.0.0.1");
            assert_eq!(r.operation, Operation::InitiateMultipartUpload, "{q}");
        }
        let r = ok(
            Method::PUT,
            "/b1b/k",
            Some("partNumber=7&uploadId=X"),
            "127.0.0.1",
        );
        assert_eq!(r.operation, Operation::UploadPart);
        assert_eq!(parse_part_number(&r.query).unwrap(), 7);
    }

    #[test]
    fn operations() {
        let cases = [
            (
                Method::POST,
                Some("uploadId=U"),
                Operation::CompleteMultipartUpload,
            ),
            (Method::GET, Some("uploadId=U"), Operation::ListParts),
            (
                Method::DELETE,
                Some("uploadId=U"),
                Operation::AbortMultipartUpload,
            ),
            (Method::DELETE, None, Operation::DeleteObject),
            (Method::HEAD, None, Operation::HeadObject),
            (
                Method::GET,
                Some("response-content-type=a"),
                Operation::GetObject,
            ),
        ];
        for (method, query, op) in cases {
            assert_eq!(ok(method, "/b1b/k", query, "127.0.0.1").operation, op);
        }
        assert_eq!(
            ok(Method::GET, "/b1b/", Some("list-type=2"), "127.0.0.1").operation,
            Operation::ListObjects
        );
    }

    #[test]
    fn bad_names_and_part_numbers() {
        assert_eq!(
            err(Method::GET, "/Bad_Bucket/k", None).code,
            "InvalidBucketName"
        );
        assert_eq!(err(Method::GET, "/ab/k", None).code, "InvalidBucketName");
        assert_eq!(err(Method::GET, "/-ab/k", None).code, "InvalidBucketName");
        let long = format!("/bkt/{}", "a".repeat(1024));
        assert_eq!(
            err(Method::PUT, &long, None).message,
            "The Length of Object name must be less than 1024"
        );
        assert!(route(
            &Method::PUT,
            &format!("/bkt/{}", "a".repeat(1023)),
            None,
            "h",
            None,
            false
        )
        .is_ok());
        assert_eq!(
            err(Method::PUT, "/bkt//abs", None).code,
            "InvalidObjectName"
        );
        assert_eq!(
            err(Method::PUT, "/bkt/%5Cabs", None).code,
            "InvalidObjectName"
        );
        assert_eq!(err(Method::PUT, "/bkt/%FF", None).code, "InvalidObjectName");
        for raw in ["0", "10001", "STR", "-1"] {
            let e = err(
                Method::PUT,
                "/bkt/k",
                Some(&format!("partNumber={raw}&uploadId=U")),
            );
            assert_eq!(e.code, "InvalidArgument");
            assert_eq!(e.ec, "0017-00000220");
            assert_eq!(e.fields[1], ("ArgumentValue", raw.to_owned()));
        }
        let e = err(Method::PUT, "/bkt/k", Some("uploadId=U"));
        assert_eq!(e.message, "Unexpected query string parameter");
        assert_eq!(
            err(Method::GET, "/bkt/k", Some("acl")).code,
            "NotImplemented"
        );
    }
}
