//! Authentication against the local server: V1 and V4 headers, presigned URLs, STS tokens,
//! clock skew and every refusal, over real HTTP.
#![cfg(feature = "server")]

#[path = "common/server.rs"]
mod common;

use std::time::{Duration, SystemTime};

use common::*;
use osspipe::server::LocalServer;
use osspipe::sign::SignatureVersion::{V1, V4};
use osspipe::Credentials;

const B: &str = "auth-bucket";

#[tokio::test]
async fn v1_and_v4_header_signatures_work_for_every_operation() {
    let oss = Oss::memory().await;
    for version in [V1, V4] {
        let key = format!("{version:?}/数据 a+b.txt");
        oss.call("PUT", B, Some(&key))
            .version(version)
            .header("content-type", "text/plain")
            .header("content-md5", &content_md5(b"body"))
            .header("x-oss-meta-Mixed-Case", "v")
            .body("body")
            .send()
            .await
            .ok();
        let id = oss
            .call("POST", B, Some(&key))
            .version(version)
            .query("uploads", "")
            .query("encoding-type", "url")
            .send()
            .await
            .ok();
        let id: osspipe::xml::InitiateMultipartUploadResult =
            osspipe::xml::from_xml(&id.body).unwrap();
        let etag = oss
            .call("PUT", B, Some(&key))
            .version(version)
            .query("partNumber", "1")
            .query("uploadId", &id.upload_id)
            .body("part")
            .send()
            .await
            .ok()
            .header("etag")
            .unwrap()
            .to_owned();
        oss.call("GET", B, Some(&key))
            .version(version)
            .query("uploadId", &id.upload_id)
            .query("max-parts", "10")
            .query("encoding-type", "url")
            .send()
            .await
            .ok();
        oss.call("GET", B, None)
            .version(version)
            .query("uploads", "")
            .query("prefix", "V")
            .send()
            .await
            .ok();
        oss.call("POST", B, Some(&key))
            .version(version)
            .query("uploadId", &id.upload_id)
            .body(complete_body(&[(1, etag)]))
            .send()
            .await
            .ok();
        oss.call("HEAD", B, Some(&key))
            .version(version)
            .send()
            .await
            .ok();
        oss.call("GET", B, None)
            .version(version)
            .query("list-type", "2")
            .send()
            .await
            .ok();
        let reply = oss
            .call("DELETE", B, Some(&key))
            .version(version)
            .send()
            .await;
        assert_eq!(reply.status, 204);
    }
}

#[tokio::test]
async fn wrong_secret_unknown_key_and_anonymous() {
    let oss = Oss::memory().await;
    let ak = oss.credentials().access_key_id().to_owned();
    let wrong = Credentials::new(ak.clone(), "not-the-secret");
    let reply = oss
        .call("PUT", B, Some("k"))
        .version(V1)
        .credentials(wrong.clone())
        .body("x")
        .send()
        .await;
    let error = reply.expect_error(403, "SignatureDoesNotMatch");
    assert_eq!(
        error.message,
        "The request signature we calculated does not match the signature you provided. Check \
         your key and signing method."
    );
    assert_eq!(error.field("OSSAccessKeyId"), Some(ak.as_str()));
    let string_to_sign = error.field("StringToSign").unwrap();
    assert!(string_to_sign.starts_with("PUT\n"), "{string_to_sign:?}");
    assert!(
        string_to_sign.ends_with(&format!("/{B}/k")),
        "{string_to_sign:?}"
    );
    assert!(error.field("SignatureProvided").is_some());
    assert!(error
        .field("StringToSignBytes")
        .unwrap()
        .starts_with("50 55 54 0A "));
    assert_eq!(error.ec, "0002-00000040");

    let reply = oss
        .call("PUT", B, Some("k"))
        .version(V4)
        .credentials(wrong)
        .body("x")
        .send()
        .await;
    let error = reply.expect_error(403, "SignatureDoesNotMatch");
    assert!(error
        .field("StringToSign")
        .unwrap()
        .starts_with("OSS4-HMAC-SHA256\n"));
    assert!(error
        .field("CanonicalRequest")
        .unwrap()
        .starts_with("PUT\n/auth-bucket/k\n"));
    assert_eq!(error.ec, "0002-00000201");

    for version in [V1, V4] {
        let reply = oss
            .call("GET", B, Some("k"))
            .version(version)
            .credentials(Credentials::new("LTAIunknown", "s"))
            .send()
            .await;
        let error = reply.expect_error(403, "InvalidAccessKeyId");
        assert_eq!(
            error.message,
            "The OSS Access Key Id you provided does not exist in our records."
        );
        assert_eq!(error.field("OSSAccessKeyId"), Some("LTAIunknown"));
        assert_eq!(error.ec, "0002-00000902");
    }

    let reply = oss.call("GET", B, Some("k")).anonymous().send().await;
    reply.expect_error(403, "AccessDenied");
    let reply = oss.call("HEAD", B, Some("k")).anonymous().send().await;
    assert!(reply.body.is_empty());
    reply.expect_error(403, "AccessDenied");
    let reply = oss
        .call("GET", B, Some("k"))
        .anonymous()
        .header("authorization", "Bearer nope")
        .send()
        .await;
    reply.expect_error(400, "InvalidArgument");
    // Nothing was stored by the refused requests.
    oss.call("GET", B, Some("k"))
        .send()
        .await
        .expect_error(404, "NoSuchKey");
}

#[tokio::test]
async fn a_tampered_request_fails_the_signature() {
    let oss = Oss::memory().await;
    for version in [V1, V4] {
        // Sign for one key, send to another.
        let call = oss.call("PUT", B, Some("signed-key")).version(version);
        let headers = call.signed_headers();
        let reply = oss
            .client
            .put(format!("http://{}/{B}/other-key", oss.addr()))
            .headers(headers)
            .body("x")
            .send()
            .await
            .unwrap();
        Reply::from_reqwest(reply)
            .await
            .expect_error(403, "SignatureDoesNotMatch");
        // Sign one x-oss header value, send another.
        let call = oss
            .call("PUT", B, Some("k"))
            .version(version)
            .header("x-oss-meta-a", "1");
        let mut headers = call.signed_headers();
        headers.insert("x-oss-meta-a", "2".parse().unwrap());
        let reply = oss
            .client
            .put(call.url())
            .headers(headers)
            .body("x")
            .send()
            .await
            .unwrap();
        Reply::from_reqwest(reply)
            .await
            .expect_error(403, "SignatureDoesNotMatch");
    }
}

#[tokio::test]
async fn clock_skew_over_fifteen_minutes_is_refused() {
    let oss = Oss::memory().await;
    for version in [V1, V4] {
        for offset in [Duration::from_secs(16 * 60)] {
            let past = SystemTime::now() - offset;
            let reply = oss
                .call("PUT", B, Some("k"))
                .version(version)
                .signed_at(past)
                .body("x")
                .send()
                .await;
            let error = reply.expect_error(403, "RequestTimeTooSkewed");
            assert_eq!(
                error.message,
                "The difference between the request time and the current time is too large."
            );
            assert_eq!(error.ec, "0002-00000504");
            let future = SystemTime::now() + offset;
            let reply = oss
                .call("PUT", B, Some("k"))
                .version(version)
                .signed_at(future)
                .body("x")
                .send()
                .await;
            reply.expect_error(403, "RequestTimeTooSkewed");
        }
        // Ten minutes is within the window.
        oss.call("PUT", B, Some("k"))
            .version(version)
            .signed_at(SystemTime::now() - Duration::from_secs(600))
            .body("x")
            .send()
            .await
            .ok();
    }
}

#[tokio::test]
async fn v4_scope_must_match_the_region() {
    let oss = Oss::start(LocalServer::builder().region("cn-beijing")).await;
    let mut call = oss.call("PUT", B, Some("k")).body("x");
    call.region = "cn-hangzhou".into();
    call.send().await.expect_error(400, "InvalidArgument");
    let mut call = oss.call("PUT", B, Some("k")).body("x");
    call.region = "cn-beijing".into();
    call.send().await.ok();
}

#[tokio::test]
async fn presigned_urls_v1_and_v4() {
    let oss = Oss::memory().await;
    let key = "dir/file name.txt";
    oss.call("PUT", B, Some(key))
        .body("presigned")
        .send()
        .await
        .ok();
    let fetch = |url: String| {
        let client = oss.client.clone();
        async move { Reply::from_reqwest(client.get(&url).send().await.unwrap()).await }
    };
    for version in [V1, V4] {
        let five_minutes = Duration::from_secs(300);
        let url = oss
            .call("GET", B, Some(key))
            .version(version)
            .presigned_url(five_minutes);
        assert_eq!(fetch(url).await.ok().text(), "presigned", "{version:?}");

        // A sub-resource signed into the URL.
        let url = oss
            .call("GET", B, Some(key))
            .version(version)
            .query("response-content-type", "text/x-presigned")
            .presigned_url(five_minutes);
        let reply = fetch(url).await.ok();
        assert_eq!(reply.header("content-type"), Some("text/x-presigned"));

        // Expired: signed an hour ago for ten minutes.
        let url = oss
            .call("GET", B, Some(key))
            .version(version)
            .signed_at(SystemTime::now() - Duration::from_secs(3600))
            .presigned_url(Duration::from_secs(600));
        let error = fetch(url).await.expect_error(403, "AccessDenied");
        assert_eq!(error.message, "Request has expired.");

        // Tampered: another key.
        let url = oss
            .call("GET", B, Some(key))
            .version(version)
            .presigned_url(five_minutes)
            .replace("file%20name", "other");
        fetch(url).await.expect_error(403, "SignatureDoesNotMatch");
    }
    // A presigned PUT.
    let url = oss
        .call("PUT", B, Some("up"))
        .presigned_url(Duration::from_secs(60));
    Reply::from_reqwest(oss.client.put(&url).body("via url").send().await.unwrap())
        .await
        .ok();
    assert_eq!(get(&oss, B, "up").await.as_ref(), b"via url");
}

#[tokio::test]
async fn sts_tokens() {
    let sts = Credentials::new("STS.temporary", "sts-secret").with_security_token("token-123");
    let oss = Oss::start(LocalServer::builder().add_credentials(sts.clone())).await;
    for version in [V1, V4] {
        oss.call("PUT", B, Some("sts"))
            .version(version)
            .credentials(sts.clone())
            .body("x")
            .send()
            .await
            .ok();
        let wrong =
            Credentials::new("STS.temporary", "sts-secret").with_security_token("token-999");
        let reply = oss
            .call("PUT", B, Some("sts"))
            .version(version)
            .credentials(wrong)
            .body("x")
            .send()
            .await;
        reply.expect_error(403, "InvalidSecurityToken");
        let missing = Credentials::new("STS.temporary", "sts-secret");
        let reply = oss
            .call("PUT", B, Some("sts"))
            .version(version)
            .credentials(missing)
            .body("x")
            .send()
            .await;
        reply.expect_error(403, "InvalidSecurityToken");
    }
    // Py-v2 1.4.1 sends the token unsigned as `security-token` with V1.
    let without_token = Credentials::new("STS.temporary", "sts-secret");
    let reply = oss
        .call("GET", B, Some("sts"))
        .version(V1)
        .credentials(without_token)
        .header("security-token", "token-123")
        .send()
        .await
        .ok();
    assert_eq!(reply.text(), "x");
    // The made-up pair keeps working beside the added one.
    oss.call("GET", B, Some("sts")).send().await.ok();
}
