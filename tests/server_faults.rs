//! Fault rules over real HTTP: each action does what it says, exactly as often as it says.
#![cfg(feature = "server")]

#[path = "common/server.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use osspipe::server::{FaultRule, LocalServer};
use osspipe::Operation;

const B: &str = "fault-bucket";

#[tokio::test]
async fn fail_the_nth_request_once() {
    let oss = Oss::memory().await;
    let id = oss
        .server()
        .faults()
        .add(FaultRule::fail(Some(Operation::PutObject), 503, "ServiceUnavailable").nth(2));
    oss.call("PUT", B, Some("a")).body("1").send().await.ok();
    let reply = oss
        .call("PUT", B, Some("a"))
        .body(data(300_000, 1))
        .send()
        .await;
    let error = reply.expect_error(503, "ServiceUnavailable");
    assert_eq!(
        error.message,
        "Thread pool is almost full, please retry later."
    );
    oss.call("PUT", B, Some("a")).body("3").send().await.ok();
    assert_eq!(oss.server().faults().fired(id), 1);
    // The failed request stored nothing.
    assert_eq!(get(&oss, B, "a").await.as_ref(), b"3");
    // Other operations were never counted.
    oss.call("GET", B, Some("a")).send().await.ok();
}

#[tokio::test]
async fn fail_a_part_number_and_every_nth() {
    let oss = Oss::start(
        LocalServer::builder().fault(
            "UploadPart:500:InternalError:part=2:times=2"
                .parse()
                .unwrap(),
        ),
    )
    .await;
    let up = initiate(&oss, B, "k").await;
    let part = |n: u32| {
        oss.call("PUT", B, Some("k"))
            .query("partNumber", &n.to_string())
            .query("uploadId", &up)
            .body(data(1000, n as u8))
            .send()
    };
    assert_eq!(part(1).await.status, 200);
    part(2).await.expect_error(500, "InternalError");
    assert_eq!(part(3).await.status, 200);
    part(2).await.expect_error(500, "InternalError");
    assert_eq!(part(2).await.status, 200, "times=2 is spent");
    // Injected 500s are not "unexpected".
    oss.assert_healthy();

    oss.server().faults().clear();
    oss.server()
        .faults()
        .add_str("UploadPart:503:SlowDown:every=3")
        .unwrap();
    let mut statuses = Vec::new();
    for n in 1..=9 {
        statuses.push(part(n).await.status);
    }
    assert_eq!(statuses, [200, 200, 503, 200, 200, 503, 200, 200, 503]);
}

#[tokio::test]
async fn a_seeded_fraction_is_repeatable() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let oss = Oss::start(
            LocalServer::builder().fault(
                "HeadObject:500:InternalError:p=0.4:seed=11"
                    .parse()
                    .unwrap(),
            ),
        )
        .await;
        let mut statuses = Vec::new();
        for _ in 0..30 {
            statuses.push(oss.call("HEAD", B, Some("x")).send().await.status);
        }
        assert!(
            statuses.contains(&500) && statuses.contains(&404),
            "{statuses:?}"
        );
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
}

#[tokio::test]
async fn delay_and_stall() {
    let oss = Oss::memory().await;
    oss.server().faults().add(FaultRule::delay(
        Some(Operation::HeadObject),
        Duration::from_millis(300),
    ));
    let started = Instant::now();
    oss.call("HEAD", B, Some("x"))
        .send()
        .await
        .expect_error(404, "NoSuchKey");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    oss.call("HEAD", B, Some("x")).send().await;
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "fired once only"
    );

    // A stall in the middle of an upload body: the upload still succeeds, later.
    oss.server()
        .faults()
        .add_str("PutObject:stall=400@100000")
        .unwrap();
    let body = data(300_000, 7);
    let started = Instant::now();
    oss.call("PUT", B, Some("s"))
        .body(body.clone())
        .send()
        .await
        .ok();
    assert!(started.elapsed() >= Duration::from_millis(400));
    // And in the middle of a download.
    oss.server()
        .faults()
        .add_str("GetObject:stall=400@1000")
        .unwrap();
    let started = Instant::now();
    assert_eq!(get(&oss, B, "s").await.as_ref(), body.as_slice());
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn reset_mid_body_breaks_the_connection() {
    let oss = Oss::memory().await;
    let rule = oss
        .server()
        .faults()
        .add("UploadPart:reset@65536:part=1".parse().unwrap());
    let up = initiate(&oss, B, "k").await;
    let result = oss
        .call("PUT", B, Some("k"))
        .query("partNumber", "1")
        .query("uploadId", &up)
        .body(data(1024 * 1024, 1))
        .try_send()
        .await;
    assert!(
        result.is_err(),
        "the client sees a broken connection: {result:?}"
    );
    assert_eq!(oss.server().faults().fired(rule), 1);
    // Nothing was stored for the broken part; the retry works.
    let parts = oss
        .call("GET", B, Some("k"))
        .query("uploadId", &up)
        .send()
        .await
        .ok();
    let parts: osspipe::xml::ListPartsResult = osspipe::xml::from_xml(&parts.body).unwrap();
    assert!(parts.parts.is_empty());
    upload_part(&oss, B, "k", &up, 1, &data(1024 * 1024, 1)).await;

    // On a download, the body stops short.
    oss.call("PUT", B, Some("g"))
        .body(data(500_000, 2))
        .send()
        .await
        .ok();
    oss.server()
        .faults()
        .add_str("GetObject:reset@1000")
        .unwrap();
    let result = oss.call("GET", B, Some("g")).try_send().await;
    assert!(result.is_err(), "a short body is an error: {result:?}");
    assert_eq!(get(&oss, B, "g").await.len(), 500_000);
}

#[tokio::test]
async fn wrong_crc_on_upload_part_and_put() {
    let oss = Oss::memory().await;
    oss.server().faults().add_str("UploadPart:bad-crc").unwrap();
    oss.server().faults().add_str("PutObject:bad-crc").unwrap();
    let body = data(1000, 3);
    let crc = osspipe::crc64::checksum(&body).to_string();
    let reply = oss
        .call("PUT", B, Some("p"))
        .body(body.clone())
        .send()
        .await
        .ok();
    assert_ne!(reply.header("x-oss-hash-crc64ecma"), Some(crc.as_str()));
    let reply = oss
        .call("PUT", B, Some("p"))
        .body(body.clone())
        .send()
        .await
        .ok();
    assert_eq!(
        reply.header("x-oss-hash-crc64ecma"),
        Some(crc.as_str()),
        "once"
    );
    let up = initiate(&oss, B, "m").await;
    let reply = oss
        .call("PUT", B, Some("m"))
        .query("partNumber", "1")
        .query("uploadId", &up)
        .body(body.clone())
        .send()
        .await
        .ok();
    assert_ne!(reply.header("x-oss-hash-crc64ecma"), Some(crc.as_str()));
    // The stored part is right all the same.
    let head = oss.call("HEAD", B, Some("p")).send().await.ok();
    assert_eq!(head.header("x-oss-hash-crc64ecma"), Some(crc.as_str()));
}

#[tokio::test]
async fn complete_performed_but_response_lost() {
    let oss = Oss::memory().await;
    oss.server().faults().add(FaultRule::lose_response(Some(
        Operation::CompleteMultipartUpload,
    )));
    let up = initiate(&oss, B, "lost").await;
    let etag = upload_part(&oss, B, "lost", &up, 1, b"done anyway").await;
    let result = oss
        .call("POST", B, Some("lost"))
        .query("uploadId", &up)
        .body(complete_body(&[(1, etag.clone())]))
        .try_send()
        .await;
    assert!(result.is_err(), "no answer: {result:?}");
    // The retry finds the upload gone, and HEAD finds the object (§6.3 advice).
    complete(&oss, B, "lost", &up, &[(1, etag)])
        .await
        .expect_error(404, "NoSuchUpload");
    assert_eq!(get(&oss, B, "lost").await.as_ref(), b"done anyway");
}

#[tokio::test]
async fn request_time_too_skewed_once() {
    let oss =
        Oss::start(LocalServer::builder().fault(FaultRule::request_time_too_skewed(None))).await;
    let reply = oss.call("PUT", B, Some("k")).body("x").send().await;
    let error = reply.expect_error(403, "RequestTimeTooSkewed");
    assert_eq!(error.ec, "0002-00000504");
    oss.call("PUT", B, Some("k")).body("x").send().await.ok();
}

#[tokio::test]
async fn a_handler_panic_is_a_500_and_the_server_lives_on() {
    let mut oss = Oss::memory().await;
    oss.server()
        .faults()
        .add(FaultRule::panic(Some(Operation::GetObject)));
    let reply = oss.call("GET", B, Some("k")).send().await;
    let error = reply.expect_error(500, "InternalError");
    assert_eq!(
        error.message,
        "Please contact the server administrator, oss@service.aliyun.com."
    );
    assert_eq!(oss.server().panics(), 1);
    assert_eq!(oss.server().unexpected_errors(), 1);
    oss.expect_panics(1);
    oss.call("PUT", B, Some("k"))
        .body("alive")
        .send()
        .await
        .ok();
    assert_eq!(get(&oss, B, "k").await.as_ref(), b"alive");
    oss.shutdown().await;
}

#[tokio::test]
async fn unsigned_requests_do_not_use_up_rules() {
    let oss = Oss::memory().await;
    let rule = oss
        .server()
        .faults()
        .add_str("PutObject:500:InternalError")
        .unwrap();
    oss.call("PUT", B, Some("k"))
        .anonymous()
        .body("x")
        .send()
        .await
        .expect_error(403, "AccessDenied");
    assert_eq!(oss.server().faults().fired(rule), 0);
    oss.call("PUT", B, Some("k"))
        .body("x")
        .send()
        .await
        .expect_error(500, "InternalError");
    assert_eq!(oss.server().faults().fired(rule), 1);
}

#[tokio::test]
async fn a_stalled_body_gets_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let oss =
        Oss::start(LocalServer::builder().body_idle_timeout(Duration::from_millis(300))).await;
    let call = oss.call("PUT", B, Some("stalled"));
    let mut head = format!(
        "PUT /{B}/stalled HTTP/1.1\r\nhost: {}\r\ncontent-length: 100\r\n",
        oss.addr()
    );
    for (name, value) in &call.signed_headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    head.push_str("\r\n0123456789");
    let mut stream = tokio::net::TcpStream::connect(oss.addr()).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("<Code>RequestTimeout</Code>"), "{text}");
    oss.call("GET", B, Some("stalled"))
        .send()
        .await
        .expect_error(404, "NoSuchKey");
}
