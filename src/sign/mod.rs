//! Request signing (V1 and V4), shared by the client and the local server.
//!
//! Everything here is a pure function over data: the method, bucket, raw key, decoded query
//! pairs, an [`http::HeaderMap`], credentials and a time. The client calls [`sign_headers`] (or
//! [`presign_query`]) on every attempt; the local server rebuilds the same strings with the
//! builders in [`v1`] and [`v4`] to verify what it receives. Nothing here knows about reqwest
//! or hyper.
//!
//! The rules follow the official SDKs (see `oss-protocol.md` §3 and §4); the tests reproduce the
//! SDKs' signing vectors byte for byte.

pub mod v1;
pub mod v4;

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderName, AUTHORIZATION, DATE};
use http::{HeaderMap, HeaderValue};

use crate::credentials::Credentials;
use crate::error::{Error, ErrorKind, Result};
use crate::timestamp::{days_from_civil, days_in_month, unix_seconds, Civil, SECONDS_PER_DAY};

/// The value of `x-oss-content-sha256` (and the V4 hashed-payload line): the SDKs never hash
/// the body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The V4 product name of plain OSS (CloudBox uses `oss-cloudbox`).
pub const DEFAULT_PRODUCT: &str = "oss";

/// How far a request's date may be from the server's clock before OSS answers
/// `RequestTimeTooSkewed`.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// `x-oss-date`: the V4 timestamp (or, ali-oss style, the V1 date that replaces `Date`).
pub const X_OSS_DATE: &str = "x-oss-date";
/// `x-oss-content-sha256`: the V4 hashed-payload value.
pub const X_OSS_CONTENT_SHA256: &str = "x-oss-content-sha256";
/// `x-oss-security-token`: the STS token header (V1 and V4) and V4 presign parameter.
pub const X_OSS_SECURITY_TOKEN: &str = "x-oss-security-token";

/// Which signature algorithm to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignatureVersion {
    /// `OSS <AccessKeyId>:<Signature>`: HMAC-SHA1 over a string that signs the `Date`.
    V1,
    /// `OSS4-HMAC-SHA256`: HMAC-SHA256 with a key scoped to a day, region and product.
    #[default]
    V4,
}

/// The parts of a request that a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignableRequest<'a> {
    /// The upper-case HTTP method (`PUT`, `POST`, ...).
    pub method: &'a str,
    /// The bucket; `None` for service-level requests. The bucket is signed whatever the
    /// address style (virtual-hosted, path-style or CNAME).
    pub bucket: Option<&'a str>,
    /// The raw (decoded) UTF-8 object key; `None` for bucket-level requests.
    pub key: Option<&'a str>,
    /// Decoded `(name, value)` query pairs; an empty value is a value-less parameter such as
    /// `uploads`.
    pub query: &'a [(String, String)],
    /// The request headers as they will be sent.
    pub headers: &'a HeaderMap,
}

/// Who signs, for which region, and when: everything a signature needs besides the request.
#[derive(Debug, Clone, Copy)]
pub struct SigningParams<'a> {
    /// The signature algorithm.
    pub version: SignatureVersion,
    /// The access key (and STS token) to sign with.
    pub credentials: &'a Credentials,
    /// The bare region id (`cn-hangzhou`, no `oss-` prefix); V4 only.
    pub region: &'a str,
    /// The V4 product, [`DEFAULT_PRODUCT`] for OSS.
    pub product: &'a str,
    /// The signing time.
    pub now: SystemTime,
}

impl<'a> SigningParams<'a> {
    /// Parameters for plain OSS (product [`DEFAULT_PRODUCT`]).
    pub fn new(
        version: SignatureVersion,
        credentials: &'a Credentials,
        region: &'a str,
        now: SystemTime,
    ) -> Self {
        Self {
            version,
            credentials,
            region,
            product: DEFAULT_PRODUCT,
            now,
        }
    }

    /// V4 needs a region and a product for its scope; an empty one would only be rejected by
    /// the server with a puzzling `SignatureDoesNotMatch`.
    fn check_v4_scope(&self) -> Result<()> {
        if self.region.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                "v4 signing needs a region (for example cn-hangzhou)",
            ));
        }
        if self.product.is_empty() {
            return Err(Error::new(ErrorKind::Config, "v4 signing needs a product"));
        }
        Ok(())
    }
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes `input` the way OSS signs it: every UTF-8 byte except `A-Z a-z 0-9 - _ . ~`
/// becomes `%XX` with upper-case hex; `/` stays literal only when `keep_slash` is true.
pub fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    uri_encode_into(&mut out, input, keep_slash);
    out
}

/// [`uri_encode`] appending to `out`, so builders can encode without temporary strings.
pub(crate) fn uri_encode_into(out: &mut String, input: &str, keep_slash: bool) {
    for &byte in input.as_bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && byte == b'/')
        {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(UPPER_HEX[usize::from(byte >> 4)]));
            out.push(char::from(UPPER_HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// A header's value as text. Values are normally ASCII; bytes that are not UTF-8 (legal but
/// obsolete in HTTP) are replaced rather than failing, which can only make a signature not
/// match, never panic.
pub(crate) fn header_text(value: &HeaderValue) -> Cow<'_, str> {
    String::from_utf8_lossy(value.as_bytes())
}

/// All values of one header joined with `,` (Go-v2's rule for repeated headers), trimmed.
pub(crate) fn joined_header_value<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Cow<'h, str> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Cow::Borrowed("");
    };
    let first = trim_cow(header_text(first));
    let Some(second) = values.next() else {
        return first;
    };
    let mut joined = first.into_owned();
    for value in std::iter::once(second).chain(values) {
        joined.push(',');
        joined.push_str(header_text(value).trim());
    }
    Cow::Owned(joined)
}

fn trim_cow(text: Cow<'_, str>) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
    }
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Formats `t` as an RFC 1123 HTTP date with English names and a two-digit day:
/// `Wed, 15 Jan 2025 08:30:00 GMT`. Built by hand so no locale can change a name; times before
/// 1970 are clamped to the epoch.
pub fn format_rfc1123(t: SystemTime) -> String {
    let c = Civil::from_system_time(t);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[c.weekday],
        c.day,
        MONTHS[(c.month - 1) as usize],
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// Parses an HTTP date (RFC 1123; the obsolete RFC 850 and asctime forms are accepted too, as
/// HTTP requires of recipients). `None` if it is not a valid date.
pub fn parse_rfc1123(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s.trim()).ok()
}

/// Formats `t` as the V4 timestamp `yyyymmddTHHMMSSZ` (UTC), e.g. `20250115T083000Z`.
pub fn format_iso8601_basic(t: SystemTime) -> String {
    let c = Civil::from_system_time(t);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Parses the V4 timestamp `yyyymmddTHHMMSSZ` (exactly 16 characters, UTC, from 1970 on);
/// anything else is `None`.
pub fn parse_iso8601_basic(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = i64::from(number(0..4)?);
    let month = number(4..6)?;
    let day = number(6..8)?;
    let hour = number(9..11)?;
    let minute = number(11..13)?;
    let second = number(13..15)?;
    if year < 1970
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    let secs = days * SECONDS_PER_DAY
        + u64::from(hour) * 3600
        + u64::from(minute) * 60
        + u64::from(second);
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn credential_header(value: &str, what: &str) -> Result<HeaderValue> {
    // The message names the field, never its value: tokens are secrets.
    HeaderValue::from_str(value).map_err(|source| {
        Error::new(
            ErrorKind::Credentials,
            format!("the {what} cannot be sent in an http header"),
        )
        .with_source(source)
    })
}

fn computed_header(value: &str) -> HeaderValue {
    // Only called with strings built here from ASCII (dates, hex, base64, the access key id
    // already checked by `credential_header`), so this cannot fail.
    HeaderValue::from_str(value).expect("signer-built header values are visible ASCII")
}

/// Signs a request in place (client side). Call it afresh for every attempt.
///
/// It first removes the headers the signer owns (`Authorization`, `Date`, `x-oss-date`,
/// `x-oss-content-sha256`, `x-oss-security-token`), then sets:
/// - V1: `Date` (RFC 1123), `x-oss-security-token` for STS credentials, and
///   `Authorization: OSS <ak>:<signature>`;
/// - V4: `Date`, `x-oss-date`, `x-oss-content-sha256: UNSIGNED-PAYLOAD`,
///   `x-oss-security-token` for STS credentials, and
///   `Authorization: OSS4-HMAC-SHA256 Credential=...,Signature=...`.
///
/// Every other header present (`Content-Type`, `Content-MD5`, `x-oss-*`) is signed as it is.
///
/// # Errors
/// [`crate::ErrorKind::Credentials`] if the access key id or the security token cannot be
/// carried in an HTTP header (control characters); [`crate::ErrorKind::Config`] if V4 is asked
/// for with an empty region or product. On error `headers` may have lost the signer-owned
/// headers but holds no partial signature.
pub fn sign_headers(
    params: &SigningParams<'_>,
    method: &str,
    bucket: Option<&str>,
    key: Option<&str>,
    query: &[(String, String)],
    headers: &mut HeaderMap,
) -> Result<()> {
    if params.version == SignatureVersion::V4 {
        params.check_v4_scope()?;
    }
    let credentials = params.credentials;
    let access_key_id = credentials.access_key_id();
    // Validated up front so the Authorization value built from it is known to be valid.
    credential_header(access_key_id, "access key id")?;
    let token = credentials
        .security_token()
        .map(|token| credential_header(token, "security token"))
        .transpose()?;

    // A retry re-signs the same map: stale signer headers must not leak into the new string.
    headers.remove(AUTHORIZATION);
    headers.remove(DATE);
    headers.remove(X_OSS_DATE);
    headers.remove(X_OSS_CONTENT_SHA256);
    headers.remove(X_OSS_SECURITY_TOKEN);

    let date = format_rfc1123(params.now);
    headers.insert(DATE, computed_header(&date));
    if let Some(token) = token {
        headers.insert(X_OSS_SECURITY_TOKEN, token);
    }

    let authorization = match params.version {
        SignatureVersion::V1 => {
            let request = SignableRequest {
                method,
                bucket,
                key,
                query,
                headers,
            };
            let string_to_sign = v1::string_to_sign(&request, &date);
            let signature = v1::signature(credentials.access_key_secret(), &string_to_sign);
            v1::authorization(access_key_id, &signature)
        }
        SignatureVersion::V4 => {
            let datetime = format_iso8601_basic(params.now);
            headers.insert(X_OSS_DATE, computed_header(&datetime));
            headers.insert(X_OSS_CONTENT_SHA256, computed_header(UNSIGNED_PAYLOAD));
            let request = SignableRequest {
                method,
                bucket,
                key,
                query,
                headers,
            };
            let no_additional: &[&str] = &[];
            let canonical = v4::canonical_request(&request, no_additional, UNSIGNED_PAYLOAD);
            let date8 = &datetime[..8];
            let scope = v4::scope(date8, params.region, params.product);
            let string_to_sign = v4::string_to_sign(&datetime, &scope, &canonical);
            let key = v4::signing_key(
                credentials.access_key_secret(),
                date8,
                params.region,
                params.product,
            );
            v4::Authorization {
                access_key_id: access_key_id.to_owned(),
                date: date8.to_owned(),
                region: params.region.to_owned(),
                product: params.product.to_owned(),
                additional_headers: Vec::new(),
                signature: v4::signature(&key, &string_to_sign),
            }
            .to_header_value()
        }
    };
    // Region and product are free text; they are the only parts not checked above.
    let mut value = HeaderValue::from_str(&authorization).map_err(|source| {
        Error::new(
            ErrorKind::Config,
            "the region or product cannot be sent in an http header",
        )
        .with_source(source)
    })?;
    value.set_sensitive(true);
    headers.insert(AUTHORIZATION, value);
    Ok(())
}

/// The query parameters that turn `request` into a presigned URL valid for `expires_in`,
/// decoded, in the order to append them after the request's own query.
///
/// - V1: `OSSAccessKeyId`, `Expires` (absolute Unix seconds), `security-token` (STS only,
///   signed as a sub-resource), `Signature`.
/// - V4: `x-oss-signature-version`, `x-oss-date`, `x-oss-expires` (relative seconds),
///   `x-oss-credential`, `x-oss-security-token` (STS only), `x-oss-signature`.
///
/// The request's headers that are signed (`Content-Type`, `Content-MD5`, `x-oss-*`) must be
/// sent with the eventual request. The values are decoded: encode each name and value with
/// [`uri_encode`] (`keep_slash = false`) when building the URL.
///
/// # Errors
/// [`crate::ErrorKind::Config`] if V4 is asked for with an empty region or product.
pub fn presign_query(
    params: &SigningParams<'_>,
    request: &SignableRequest<'_>,
    expires_in: Duration,
) -> Result<Vec<(String, String)>> {
    let credentials = params.credentials;
    let token = credentials.security_token();
    match params.version {
        SignatureVersion::V1 => {
            let expires = unix_seconds(params.now)
                .saturating_add(expires_in.as_secs())
                .to_string();
            let mut signed_query = request.query.to_vec();
            if let Some(token) = token {
                // A sub-resource, so the V1 string to sign covers it.
                signed_query.push(("security-token".to_owned(), token.to_owned()));
            }
            let signed = SignableRequest {
                query: &signed_query,
                ..*request
            };
            let string_to_sign = v1::string_to_sign(&signed, &expires);
            let signature = v1::signature(credentials.access_key_secret(), &string_to_sign);
            let mut out = Vec::with_capacity(4);
            out.push((
                "OSSAccessKeyId".to_owned(),
                credentials.access_key_id().to_owned(),
            ));
            out.push(("Expires".to_owned(), expires));
            if let Some(token) = token {
                out.push(("security-token".to_owned(), token.to_owned()));
            }
            out.push(("Signature".to_owned(), signature));
            Ok(out)
        }
        SignatureVersion::V4 => {
            params.check_v4_scope()?;
            let datetime = format_iso8601_basic(params.now);
            let date8 = &datetime[..8];
            let scope = v4::scope(date8, params.region, params.product);
            let mut out = Vec::with_capacity(6);
            out.push((
                "x-oss-signature-version".to_owned(),
                v4::ALGORITHM.to_owned(),
            ));
            out.push((X_OSS_DATE.to_owned(), datetime.clone()));
            out.push(("x-oss-expires".to_owned(), expires_in.as_secs().to_string()));
            out.push((
                "x-oss-credential".to_owned(),
                format!("{}/{scope}", credentials.access_key_id()),
            ));
            if let Some(token) = token {
                out.push((X_OSS_SECURITY_TOKEN.to_owned(), token.to_owned()));
            }
            // Everything but x-oss-signature itself is in the canonical query.
            let mut signed_query = Vec::with_capacity(request.query.len() + out.len());
            signed_query.extend_from_slice(request.query);
            signed_query.extend_from_slice(&out);
            let signed = SignableRequest {
                query: &signed_query,
                ..*request
            };
            let no_additional: &[&str] = &[];
            let canonical = v4::canonical_request(&signed, no_additional, UNSIGNED_PAYLOAD);
            let string_to_sign = v4::string_to_sign(&datetime, &scope, &canonical);
            let key = v4::signing_key(
                credentials.access_key_secret(),
                date8,
                params.region,
                params.product,
            );
            out.push((
                v4::PRESIGN_SIGNATURE.to_owned(),
                v4::signature(&key, &string_to_sign),
            ));
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_encode_keys() {
        assert_eq!(
            uri_encode("docs/hello world.txt", true),
            "docs/hello%20world.txt"
        );
        assert_eq!(
            uri_encode("docs/hello world.txt", false),
            "docs%2Fhello%20world.txt"
        );
        assert_eq!(
            uri_encode("backups/a+b=c.tar.gz", true),
            "backups/a%2Bb%3Dc.tar.gz"
        );
        assert_eq!(uri_encode("100%/x", true), "100%25/x");
        assert_eq!(uri_encode("a?b#c", true), "a%3Fb%23c");
        assert_eq!(
            uri_encode("数据/报告 2025.csv", true),
            "%E6%95%B0%E6%8D%AE/%E6%8A%A5%E5%91%8A%202025.csv"
        );
        assert_eq!(uri_encode("AZaz09-_.~", false), "AZaz09-_.~");
        assert_eq!(uri_encode("!'()*|", false), "%21%27%28%29%2A%7C");
        assert_eq!(uri_encode("", false), "");
        assert_eq!(uri_encode("\u{0}\n\u{7f}", false), "%00%0A%7F");
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn format_known_dates() {
        // The vectors' signing time, 2025-01-15T08:30:00Z.
        assert_eq!(
            format_rfc1123(at(1_736_929_800)),
            "Wed, 15 Jan 2025 08:30:00 GMT"
        );
        assert_eq!(format_iso8601_basic(at(1_736_929_800)), "20250115T083000Z");
        assert_eq!(format_rfc1123(at(0)), "Thu, 01 Jan 1970 00:00:00 GMT");
        // A leap day and the Py-v2 unit-test time.
        assert_eq!(
            format_rfc1123(at(951_782_400)),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            format_rfc1123(at(1_702_743_657)),
            "Sat, 16 Dec 2023 16:20:57 GMT"
        );
        assert_eq!(format_iso8601_basic(at(1_702_743_657)), "20231216T162057Z");
        // Before the epoch clamps instead of panicking.
        assert_eq!(
            format_iso8601_basic(UNIX_EPOCH - Duration::from_secs(5)),
            "19700101T000000Z"
        );
    }

    #[test]
    fn dates_round_trip_and_agree_with_httpdate() {
        let mut secs = 0u64;
        // About every 3.7 days over 300 years, plus odd seconds, to cross every month and
        // leap-year rule.
        while secs < 253_402_300_799 {
            let t = at(secs);
            let rfc = format_rfc1123(t);
            assert_eq!(rfc, httpdate::fmt_http_date(t));
            assert_eq!(parse_rfc1123(&rfc), Some(t));
            let basic = format_iso8601_basic(t);
            assert_eq!(parse_iso8601_basic(&basic), Some(t), "{basic}");
            secs += 321_987;
        }
    }

    #[test]
    fn parse_rejects_malformed_dates() {
        for bad in [
            "",
            "20250115T083000",
            "20250115 083000Z",
            "2025011XT083000Z",
            "20251315T083000Z",
            "20250230T083000Z",
            "20250115T243000Z",
            "20250115T086000Z",
            "20250115T083060Z",
            "19691231T235959Z",
            "+0250115T083000Z",
            "20250115T083000Z ",
            "２0250115T083000Z",
        ] {
            assert_eq!(parse_iso8601_basic(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_iso8601_basic("20240229T000000Z"),
            Some(at(1_709_164_800))
        );
        assert_eq!(parse_rfc1123("Wed, 15 Jan 2025 08:30:00"), None);
        assert_eq!(parse_rfc1123("not a date"), None);
        assert_eq!(
            parse_rfc1123(" Wed, 15 Jan 2025 08:30:00 GMT "),
            Some(at(1_736_929_800))
        );
    }

    #[test]
    fn repeated_headers_join_with_commas() {
        let mut headers = HeaderMap::new();
        let name = HeaderName::from_static("x-oss-meta-a");
        headers.append(&name, HeaderValue::from_static(" one "));
        assert_eq!(joined_header_value(&headers, &name), "one");
        headers.append(&name, HeaderValue::from_static("two"));
        assert_eq!(joined_header_value(&headers, &name), "one,two");
        assert_eq!(
            joined_header_value(&headers, &HeaderName::from_static("x-oss-none")),
            ""
        );
    }

    proptest::proptest! {
        #[test]
        fn uri_encode_decodes_back(input in "\\PC{0,40}", keep_slash in proptest::bool::ANY) {
            let encoded = uri_encode(&input, keep_slash);
            proptest::prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric()
                || b"-_.~%".contains(&b)
                || (keep_slash && b == b'/')));
            let decoded = percent_encoding::percent_decode_str(&encoded).decode_utf8().unwrap();
            proptest::prop_assert_eq!(decoded, input);
        }

        #[test]
        fn v4_timestamps_round_trip(secs in 0u64..253_402_300_800) {
            let t = at(secs);
            proptest::prop_assert_eq!(parse_iso8601_basic(&format_iso8601_basic(t)), Some(t));
            proptest::prop_assert_eq!(parse_rfc1123(&format_rfc1123(t)), Some(t));
        }
    }
}
