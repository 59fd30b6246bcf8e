//! Verifying signatures: V1 and V4, in the `Authorization` header or in a presigned URL
//! (§3.7, §4.7), with STS tokens. The strings are rebuilt with the very builders the client
//! signs with ([`crate::sign`]), so the two cannot drift apart silently.
//!
//! Order of checks: the access key id (`InvalidAccessKeyId`), the STS token, the request time
//! (`RequestTimeTooSkewed`, or `AccessDenied` for an expired presigned URL), then the
//! signature (`SignatureDoesNotMatch`, with the server's string to sign in the body).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use super::errors::OssError;
use crate::credentials::Credentials;
use crate::sign::{self, v1, v4, SignableRequest};

/// The key pairs (and STS tokens) the server accepts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keyring {
    by_access_key_id: HashMap<String, Credentials>,
}

impl Keyring {
    pub(crate) fn add(&mut self, credentials: Credentials) {
        self.by_access_key_id
            .insert(credentials.access_key_id().to_owned(), credentials);
    }

    fn lookup(&self, access_key_id: &str) -> Result<&Credentials, OssError> {
        self.by_access_key_id
            .get(access_key_id)
            .ok_or_else(|| OssError::invalid_access_key_id(access_key_id))
    }
}

/// What a signature covers, as routed.
pub(crate) struct AuthRequest<'a> {
    pub(crate) method: &'a str,
    pub(crate) bucket: &'a str,
    pub(crate) key: Option<&'a str>,
    pub(crate) query: &'a [(String, String)],
    pub(crate) headers: &'a HeaderMap,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn query_value<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Compares signatures without an early exit.
fn same_signature(expected: &str, provided: &str) -> bool {
    expected.len() == provided.len()
        && expected
            .bytes()
            .zip(provided.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn check_token(credentials: &Credentials, sent: Option<&str>) -> Result<(), OssError> {
    if let Some(expires_at) = credentials.expires_at() {
        if SystemTime::now() > expires_at {
            return Err(OssError::security_token_expired());
        }
    }
    match (credentials.security_token(), sent) {
        (None, None) => Ok(()),
        (Some(expected), Some(sent)) if same_signature(expected, sent) => Ok(()),
        _ => Err(OssError::invalid_security_token()),
    }
}

fn check_skew(request_time: SystemTime, now: SystemTime) -> Result<(), OssError> {
    let skew = match now.duration_since(request_time) {
        Ok(behind) => behind,
        Err(ahead) => ahead.duration(),
    };
    if skew > sign::MAX_CLOCK_SKEW {
        return Err(OssError::request_time_too_skewed());
    }
    Ok(())
}

fn invalid_date() -> OssError {
    OssError::access_denied("OSS authentication requires a valid Date.", "")
}

/// Checks the request's signature. `region` is the server's; `now` the server's clock.
pub(crate) fn authenticate(
    keyring: &Keyring,
    region: &str,
    request: &AuthRequest<'_>,
    now: SystemTime,
) -> Result<(), OssError> {
    if let Some(authorization) = header(request.headers, "authorization") {
        let authorization = authorization.trim();
        if let Some(rest) = authorization.strip_prefix(v4::ALGORITHM) {
            if rest.starts_with(' ') {
                return verify_v4_header(keyring, region, request, authorization, now);
            }
        }
        if authorization.starts_with("OSS ") {
            return verify_v1_header(keyring, request, authorization, now);
        }
        return Err(OssError::invalid_authorization(
            "Authorization header is invalid.",
        ));
    }
    if query_value(request.query, "x-oss-signature").is_some() {
        return verify_v4_presigned(keyring, region, request, now);
    }
    if query_value(request.query, "Signature").is_some()
        || query_value(request.query, "OSSAccessKeyId").is_some()
    {
        return verify_v1_presigned(keyring, request, now);
    }
    Err(OssError::anonymous())
}

fn signable<'a>(
    request: &'a AuthRequest<'a>,
    query: &'a [(String, String)],
) -> SignableRequest<'a> {
    SignableRequest {
        method: request.method,
        bucket: Some(request.bucket),
        key: request.key,
        query,
        headers: request.headers,
    }
}

fn verify_v1_header(
    keyring: &Keyring,
    request: &AuthRequest<'_>,
    authorization: &str,
    now: SystemTime,
) -> Result<(), OssError> {
    let (access_key_id, provided) = v1::parse_authorization(authorization)
        .ok_or_else(|| OssError::invalid_authorization("Authorization header is invalid."))?;
    let credentials = keyring.lookup(access_key_id)?;
    // Py-v2 1.4.1 sends the token as an unsigned `security-token` header (§3.4); tolerate it.
    let token = header(request.headers, "x-oss-security-token")
        .or_else(|| header(request.headers, "security-token"));
    check_token(credentials, token)?;
    let date = v1::date_to_sign(request.headers).ok_or_else(invalid_date)?;
    let request_time = sign::parse_rfc1123(date).ok_or_else(invalid_date)?;
    check_skew(request_time, now)?;
    let string_to_sign = v1::string_to_sign(&signable(request, request.query), date);
    check_v1_signature(credentials, access_key_id, provided, &string_to_sign)
}

/// Compares a V1 signature (header or presigned: the same HMAC over their own string to sign)
/// with the one the secret gives.
fn check_v1_signature(
    credentials: &Credentials,
    access_key_id: &str,
    provided: &str,
    string_to_sign: &str,
) -> Result<(), OssError> {
    let expected = v1::signature(credentials.access_key_secret(), string_to_sign);
    if same_signature(&expected, provided) {
        Ok(())
    } else {
        Err(OssError::signature_does_not_match(
            access_key_id,
            provided,
            string_to_sign,
            None,
            false,
        ))
    }
}

fn verify_v1_presigned(
    keyring: &Keyring,
    request: &AuthRequest<'_>,
    now: SystemTime,
) -> Result<(), OssError> {
    let missing = || {
        OssError::access_denied(
            "Query string authentication requires the Signature, Expires and OSSAccessKeyId \
             parameters.",
            "",
        )
    };
    let access_key_id = query_value(request.query, "OSSAccessKeyId").ok_or_else(missing)?;
    let expires = query_value(request.query, "Expires").ok_or_else(missing)?;
    let provided = query_value(request.query, "Signature").ok_or_else(missing)?;
    let credentials = keyring.lookup(access_key_id)?;
    check_token(credentials, query_value(request.query, "security-token"))?;
    let expires_at = expires
        .parse::<u64>()
        .map_err(|_| missing())
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))?;
    if now > expires_at {
        return Err(OssError::request_expired());
    }
    // The signature is appended after signing; everything else is as signed.
    let query: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|(name, _)| name != "Signature")
        .cloned()
        .collect();
    let string_to_sign = v1::string_to_sign(&signable(request, &query), expires);
    check_v1_signature(credentials, access_key_id, provided, &string_to_sign)
}

/// Checks a V4 scope against the server: date, region, product.
fn check_scope(
    date8: &str,
    datetime: &str,
    scope_region: &str,
    region: &str,
    product: &str,
) -> Result<(), OssError> {
    if !datetime.starts_with(date8) || date8.len() != 8 {
        return Err(OssError::invalid_authorization(
            "Invalid signing date in Authorization header.",
        ));
    }
    if scope_region != region {
        return Err(OssError::invalid_authorization(
            "Invalid signing region in Authorization header.",
        ));
    }
    if product != sign::DEFAULT_PRODUCT {
        return Err(OssError::invalid_authorization(
            "Invalid signing product in Authorization header.",
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn check_v4_signature(
    credentials: &Credentials,
    request: &AuthRequest<'_>,
    query: &[(String, String)],
    additional_headers: &[String],
    payload_hash: &str,
    datetime: &str,
    date8: &str,
    region: &str,
    provided: &str,
) -> Result<(), OssError> {
    let canonical_request =
        v4::canonical_request(&signable(request, query), additional_headers, payload_hash);
    let scope = v4::scope(date8, region, sign::DEFAULT_PRODUCT);
    let string_to_sign = v4::string_to_sign(datetime, &scope, &canonical_request);
    let key = v4::signing_key(
        credentials.access_key_secret(),
        date8,
        region,
        sign::DEFAULT_PRODUCT,
    );
    let expected = v4::signature(&key, &string_to_sign);
    if !same_signature(&expected, &provided.to_ascii_lowercase()) {
        return Err(OssError::signature_does_not_match(
            credentials.access_key_id(),
            provided,
            &string_to_sign,
            Some(&canonical_request),
            true,
        ));
    }
    Ok(())
}

fn verify_v4_header(
    keyring: &Keyring,
    region: &str,
    request: &AuthRequest<'_>,
    authorization: &str,
    now: SystemTime,
) -> Result<(), OssError> {
    let parsed = v4::parse_authorization(authorization)
        .ok_or_else(|| OssError::invalid_authorization("Authorization header is invalid."))?;
    let credentials = keyring.lookup(&parsed.access_key_id)?;
    check_token(credentials, header(request.headers, "x-oss-security-token"))?;
    let datetime = header(request.headers, "x-oss-date").ok_or_else(invalid_date)?;
    let request_time = sign::parse_iso8601_basic(datetime).ok_or_else(invalid_date)?;
    check_skew(request_time, now)?;
    check_scope(
        &parsed.date,
        datetime,
        &parsed.region,
        region,
        &parsed.product,
    )?;
    let payload_hash = header(request.headers, "x-oss-content-sha256").ok_or_else(|| {
        OssError::invalid_authorization(
            "Missing required header for this request: x-oss-content-sha256.",
        )
    })?;
    check_v4_signature(
        credentials,
        request,
        request.query,
        &parsed.additional_headers,
        payload_hash,
        datetime,
        &parsed.date,
        region,
        &parsed.signature,
    )
}

fn verify_v4_presigned(
    keyring: &Keyring,
    region: &str,
    request: &AuthRequest<'_>,
    now: SystemTime,
) -> Result<(), OssError> {
    let missing = |name: &str| {
        OssError::access_denied(
            &format!("Query string authentication requires the {name} parameter."),
            "",
        )
    };
    let version = query_value(request.query, "x-oss-signature-version")
        .ok_or_else(|| missing("x-oss-signature-version"))?;
    if version != v4::ALGORITHM {
        return Err(OssError::invalid_authorization(
            "Invalid x-oss-signature-version.",
        ));
    }
    let credential = query_value(request.query, "x-oss-credential")
        .ok_or_else(|| missing("x-oss-credential"))?;
    let datetime = query_value(request.query, "x-oss-date").ok_or_else(|| missing("x-oss-date"))?;
    let expires =
        query_value(request.query, "x-oss-expires").ok_or_else(|| missing("x-oss-expires"))?;
    let provided =
        query_value(request.query, "x-oss-signature").ok_or_else(|| missing("x-oss-signature"))?;
    // Credential = AK/date8/region/product/aliyun_v4_request (the AK may not contain '/').
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date8, scope_region, product, terminator] = parts[..] else {
        return Err(OssError::invalid_authorization("Invalid x-oss-credential."));
    };
    if terminator != v4::TERMINATOR {
        return Err(OssError::invalid_authorization("Invalid x-oss-credential."));
    }
    let credentials = keyring.lookup(access_key_id)?;
    check_token(
        credentials,
        query_value(request.query, "x-oss-security-token"),
    )?;
    let signed_at = sign::parse_iso8601_basic(datetime).ok_or_else(invalid_date)?;
    let expires_in: u64 = expires.parse().map_err(|_| {
        OssError::invalid_argument("Invalid x-oss-expires.", "x-oss-expires", expires)
    })?;
    if now + sign::MAX_CLOCK_SKEW < signed_at {
        return Err(OssError::request_time_too_skewed());
    }
    if now > signed_at + Duration::from_secs(expires_in) {
        return Err(OssError::request_expired());
    }
    check_scope(date8, datetime, scope_region, region, product)?;
    let additional: Vec<String> = query_value(request.query, "x-oss-additional-headers")
        .map(|list| {
            list.split(';')
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let query: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|(name, _)| name != "x-oss-signature")
        .cloned()
        .collect();
    check_v4_signature(
        credentials,
        request,
        &query,
        &additional,
        sign::UNSIGNED_PAYLOAD,
        datetime,
        date8,
        region,
        provided,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let plain = Credentials::new("a", "s");
        let sts = Credentials::new("b", "s").with_security_token("tok");
        assert!(check_token(&plain, None).is_ok());
        assert_eq!(
            check_token(&plain, Some("x")).unwrap_err().code,
            "InvalidSecurityToken"
        );
        assert!(check_token(&sts, Some("tok")).is_ok());
        assert_eq!(
            check_token(&sts, None).unwrap_err().code,
            "InvalidSecurityToken"
        );
        assert_eq!(
            check_token(&sts, Some("tok2")).unwrap_err().code,
            "InvalidSecurityToken"
        );
        let expired = sts.with_expiry(UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(
            check_token(&expired, Some("tok")).unwrap_err().code,
            "SecurityTokenExpired"
        );
    }

    #[test]
    fn skew_is_fifteen_minutes_either_way() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(check_skew(now - Duration::from_secs(900), now).is_ok());
        assert!(check_skew(now + Duration::from_secs(900), now).is_ok());
        assert_eq!(
            check_skew(now - Duration::from_secs(901), now)
                .unwrap_err()
                .code,
            "RequestTimeTooSkewed"
        );
        assert!(check_skew(now + Duration::from_secs(901), now).is_err());
    }

    #[test]
    fn anonymous_requests_are_denied() {
        let headers = HeaderMap::new();
        let request = AuthRequest {
            method: "GET",
            bucket: "bkt",
            key: Some("k"),
            query: &[],
            headers: &headers,
        };
        let error = authenticate(
            &Keyring::default(),
            "cn-hangzhou",
            &request,
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(error.code, "AccessDenied");
        assert_eq!(error.status, 403);
    }
}
