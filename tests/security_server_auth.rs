//! The local server's front door: it binds to loopback by default, and refuses unsigned and
//! badly signed requests, unknown keys, wrong or expired STS tokens, expired presigned URLs and
//! requests outside the clock-skew window (V1 and V4), without performing them. Requests are
//! sent as raw HTTP over a `TcpStream`, signed with `osspipe::sign`.
#![cfg(feature = "server")]

#[path = "common/reliability.rs"]
mod reliability;

use std::time::{Duration, SystemTime};

use osspipe::server::LocalServer;
use osspipe::sign::{self, uri_encode, SignableRequest, SignatureVersion, SigningParams};
use osspipe::Credentials;
use reliability::*;

const BUCKET: &str = "front-door";
const VERSIONS: [SignatureVersion; 2] = [SignatureVersion::V1, SignatureVersion::V4];

struct Door {
    server: LocalServer,
    sts: Credentials,
    expired_sts: Credentials,
}

async fn door() -> Door {
    let sts = Credentials::new("STS.frontdoor", "sts-front-door-secret")
        .with_security_token("sts-front-door-token");
    let expired_sts = Credentials::new("STS.expired", "sts-expired-secret")
        .with_security_token("sts-expired-token")
        .with_expiry(SystemTime::now() - Duration::from_secs(60));
    let server = LocalServer::builder()
        .bucket(BUCKET)
        .add_credentials(sts.clone())
        .add_credentials(expired_sts.clone())
        .start()
        .await
        .unwrap();
    Door {
        server,
        sts,
        expired_sts,
    }
}

impl Door {
    fn addr(&self) -> std::net::SocketAddr {
        self.server.addr()
    }

    fn credentials(&self) -> &Credentials {
        self.server.credentials()
    }

    /// A PUT of `key`, signed by `credentials` at `at` with `version`.
    async fn put(
        &self,
        key: &str,
        version: SignatureVersion,
        credentials: &Credentials,
        at: SystemTime,
    ) -> RawResponse {
        RawRequest::new("PUT", format!("/{BUCKET}/{key}"))
            .body("should not be stored")
            .signed(version, credentials, Some(BUCKET), Some(key), &[], at)
            .send(self.addr())
            .await
    }

    /// Asserts that `key` does not exist (checked with a properly signed GET).
    async fn assert_not_stored(&self, key: &str) {
        let get = RawRequest::new("GET", format!("/{BUCKET}/{key}"))
            .signed(
                SignatureVersion::V4,
                self.credentials(),
                Some(BUCKET),
                Some(key),
                &[],
                SystemTime::now(),
            )
            .send(self.addr())
            .await;
        assert_eq!(
            get.status,
            404,
            "{key} must not have been stored: {}",
            get.text()
        );
        assert_eq!(get.oss_code(), "NoSuchKey");
    }
}

fn assert_refused(response: &RawResponse, status: u16, code: &str, what: &str) {
    assert_eq!(response.status, status, "{what}: {}", response.text());
    assert_eq!(response.oss_code(), code, "{what}: {}", response.text());
}

#[tokio::test]
async fn the_server_binds_to_loopback_by_default() {
    let server = LocalServer::builder().start().await.unwrap();
    assert!(server.addr().ip().is_loopback(), "{}", server.addr());
    assert!(server.endpoint().starts_with("http://127.0.0.1:"));
    server.shutdown().await;
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn osspipe_serve_binds_to_loopback_by_default() {
    let work = tempfile::tempdir().unwrap();
    let help =
        reliability::cli::run(reliability::cli::osspipe(work.path(), ["serve", "--help"])).await;
    assert_eq!(help.code, Some(0), "{}", help.both());
    assert!(
        help.stdout.contains("[default: 127.0.0.1:9000]"),
        "serve listens on loopback unless told otherwise: {}",
        help.stdout
    );
}

#[tokio::test]
async fn unsigned_requests_are_refused() {
    let door = door().await;
    let put = RawRequest::new("PUT", format!("/{BUCKET}/unsigned"))
        .body("x")
        .send(door.addr())
        .await;
    assert_refused(&put, 403, "AccessDenied", "unsigned PUT");
    let get = RawRequest::new("GET", format!("/{BUCKET}?list-type=2"))
        .send(door.addr())
        .await;
    assert_refused(&get, 403, "AccessDenied", "unsigned listing");
    let garbage = RawRequest::new("PUT", format!("/{BUCKET}/garbage"))
        .header("authorization", "Bearer let-me-in")
        .body("x")
        .send(door.addr())
        .await;
    assert_eq!(garbage.status / 100, 4, "{}", garbage.text());
    door.assert_not_stored("unsigned").await;
    door.assert_not_stored("garbage").await;
    door.server.shutdown().await;
}

#[tokio::test]
async fn badly_signed_requests_are_refused() {
    let door = door().await;
    let now = SystemTime::now();
    let wrong_secret = Credentials::new(door.credentials().access_key_id(), "not-the-secret");
    let unknown_key = Credentials::new("LTAIunknownkeyid", "whatever");
    for version in VERSIONS {
        let key = format!("wrong-secret-{version:?}");
        let put = door.put(&key, version, &wrong_secret, now).await;
        assert_refused(&put, 403, "SignatureDoesNotMatch", &key);
        door.assert_not_stored(&key).await;

        let key = format!("unknown-key-{version:?}");
        let put = door.put(&key, version, &unknown_key, now).await;
        assert_refused(&put, 403, "InvalidAccessKeyId", &key);
        door.assert_not_stored(&key).await;

        // Signed for one key, sent to another.
        let key = format!("tampered-{version:?}");
        let put = RawRequest::new("PUT", format!("/{BUCKET}/{key}"))
            .body("x")
            .signed(
                version,
                door.credentials(),
                Some(BUCKET),
                Some("other"),
                &[],
                now,
            )
            .send(door.addr())
            .await;
        assert_refused(&put, 403, "SignatureDoesNotMatch", &key);
        door.assert_not_stored(&key).await;

        // A signed header changed after signing.
        let key = format!("tampered-header-{version:?}");
        let mut request = RawRequest::new("PUT", format!("/{BUCKET}/{key}"))
            .header("x-oss-meta-owner", "alice")
            .body("x")
            .signed(
                version,
                door.credentials(),
                Some(BUCKET),
                Some(&key),
                &[],
                now,
            );
        request
            .headers
            .insert("x-oss-meta-owner", "mallory".parse().unwrap());
        let put = request.send(door.addr()).await;
        assert_refused(&put, 403, "SignatureDoesNotMatch", &key);
        door.assert_not_stored(&key).await;

        // The control: the same request, properly signed, is accepted.
        let key = format!("good-{version:?}");
        let put = door.put(&key, version, door.credentials(), now).await;
        assert_eq!(put.status, 200, "{key}: {}", put.text());
    }
    assert_eq!(door.server.unexpected_errors(), 0);
    door.server.shutdown().await;
}

#[tokio::test]
async fn sts_tokens_are_checked() {
    let door = door().await;
    let now = SystemTime::now();
    for version in VERSIONS {
        let key = format!("sts-good-{version:?}");
        let put = door.put(&key, version, &door.sts, now).await;
        assert_eq!(put.status, 200, "{key}: {}", put.text());

        let key = format!("sts-wrong-token-{version:?}");
        let wrong = Credentials::new(door.sts.access_key_id(), door.sts.access_key_secret())
            .with_security_token("not-the-token");
        let put = door.put(&key, version, &wrong, now).await;
        assert_refused(&put, 403, "InvalidSecurityToken", &key);
        door.assert_not_stored(&key).await;

        let key = format!("sts-no-token-{version:?}");
        let without = Credentials::new(door.sts.access_key_id(), door.sts.access_key_secret());
        let put = door.put(&key, version, &without, now).await;
        assert_refused(&put, 403, "InvalidSecurityToken", &key);
        door.assert_not_stored(&key).await;

        let key = format!("sts-expired-{version:?}");
        let put = door.put(&key, version, &door.expired_sts, now).await;
        assert_refused(&put, 403, "SecurityTokenExpired", &key);
        door.assert_not_stored(&key).await;
    }
    door.server.shutdown().await;
}

#[tokio::test]
async fn requests_outside_the_clock_skew_window_are_refused() {
    let door = door().await;
    let now = SystemTime::now();
    let twenty_minutes = Duration::from_secs(20 * 60);
    let ten_minutes = Duration::from_secs(10 * 60);
    for version in VERSIONS {
        for (name, at) in [
            ("past", now - twenty_minutes),
            ("future", now + twenty_minutes),
        ] {
            let key = format!("skewed-{name}-{version:?}");
            let put = door.put(&key, version, door.credentials(), at).await;
            assert_refused(&put, 403, "RequestTimeTooSkewed", &key);
            door.assert_not_stored(&key).await;
        }
        // Inside the 15-minute window: accepted.
        let key = format!("skew-ok-{version:?}");
        let put = door
            .put(&key, version, door.credentials(), now - ten_minutes)
            .await;
        assert_eq!(put.status, 200, "{key}: {}", put.text());
    }
    door.server.shutdown().await;
}

/// A presigned GET target for `key`, signed at `at` for `expires_in`.
fn presigned_target(
    credentials: &Credentials,
    version: SignatureVersion,
    key: &str,
    at: SystemTime,
    expires_in: Duration,
) -> String {
    let params = SigningParams::new(version, credentials, REGION, at);
    let headers = http::HeaderMap::new();
    let request = SignableRequest {
        method: "GET",
        bucket: Some(BUCKET),
        key: Some(key),
        query: &[],
        headers: &headers,
    };
    let query = sign::presign_query(&params, &request, expires_in).unwrap();
    let query: Vec<String> = query
        .iter()
        .map(|(n, v)| format!("{}={}", uri_encode(n, false), uri_encode(v, false)))
        .collect();
    format!("/{BUCKET}/{}?{}", uri_encode(key, true), query.join("&"))
}

#[tokio::test]
async fn expired_presigned_urls_are_refused() {
    let door = door().await;
    let put = door
        .put(
            "presigned",
            SignatureVersion::V4,
            door.credentials(),
            SystemTime::now(),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    for version in VERSIONS {
        // Valid: signed now for an hour.
        let target = presigned_target(
            door.credentials(),
            version,
            "presigned",
            SystemTime::now(),
            Duration::from_secs(3600),
        );
        let get = RawRequest::new("GET", target).send(door.addr()).await;
        assert_eq!(
            get.status,
            200,
            "{version:?} valid presigned URL: {}",
            get.text()
        );
        assert_eq!(get.text(), "should not be stored");

        // Expired: signed two minutes ago for one minute.
        let target = presigned_target(
            door.credentials(),
            version,
            "presigned",
            SystemTime::now() - Duration::from_secs(120),
            Duration::from_secs(60),
        );
        let get = RawRequest::new("GET", target).send(door.addr()).await;
        assert_refused(
            &get,
            403,
            "AccessDenied",
            &format!("{version:?} expired URL"),
        );
        assert!(get.text().contains("expired"), "{}", get.text());

        // Tampered: a valid URL used for another key.
        let target = presigned_target(
            door.credentials(),
            version,
            "presigned",
            SystemTime::now(),
            Duration::from_secs(3600),
        )
        .replace("/presigned?", "/other?");
        let get = RawRequest::new("GET", target).send(door.addr()).await;
        assert_refused(
            &get,
            403,
            "SignatureDoesNotMatch",
            &format!("{version:?} URL for another key"),
        );
    }
    door.server.shutdown().await;
}
