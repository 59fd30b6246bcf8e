//! The client against the local OSS-compatible server, in-process on `127.0.0.1:0`: every
//! operation end to end with both signature versions, OSS's error codes as the client sees
//! them, and the server's fault injection driving the client's retries.
#![cfg(feature = "server")]

use std::time::Duration;

use bytes::Bytes;
use osspipe::client::Client;
use osspipe::config::ClientBuilder;
use osspipe::retry::RetryPolicy;
use osspipe::server::{FaultRule, LocalServer};
use osspipe::sign::SignatureVersion;
use osspipe::target::{MultipartTarget, ObjectOptions};
use osspipe::{crc64, Operation};

const BUCKET: &str = "client-tests";

async fn server() -> LocalServer {
    LocalServer::builder()
        .memory()
        .bucket(BUCKET)
        .start()
        .await
        .expect("server starts")
}

fn builder(server: &LocalServer) -> ClientBuilder {
    Client::builder()
        .with_endpoint(server.endpoint())
        .with_region(server.region())
        .with_credentials(server.credentials().clone())
        .with_idle_timeout(Duration::from_secs(10))
        .with_retry_policy(
            RetryPolicy::new()
                .with_base_delay(Duration::from_millis(1))
                .with_seed(3),
        )
}

async fn finish(server: LocalServer) {
    assert_eq!(
        server.unexpected_errors(),
        0,
        "the server failed on its own"
    );
    server.shutdown().await;
}

/// Deterministic bytes, different per `seed`.
fn data(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

#[tokio::test]
async fn every_operation_round_trips_with_v4_and_v1() {
    let server = server().await;
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let client = builder(&server)
            .with_signature_version(version)
            .build()
            .unwrap();
        let prefix = format!("{version:?}/");
        let small_key = format!("{prefix}docs/hello world+1.txt");
        let big_key = format!("{prefix}数据/报告 2025.csv");

        let mut options = ObjectOptions::default();
        options.metadata = vec![("Project".into(), "osspipe".into())];
        options.content_md5 = true;
        let put = client
            .put_object(
                BUCKET,
                &small_key,
                Bytes::from_static(b"hello oss\n"),
                &options,
            )
            .await
            .unwrap();
        assert_eq!(put.etag, "\"4B4114A18BBF2A4C5446F9AFCCF9923F\"");
        assert_eq!(put.crc64, Some(17223430255209957478));

        let head = client.head_object(BUCKET, &small_key).await.unwrap();
        assert_eq!(head.content_length, 10);
        assert_eq!(head.content_type.as_deref(), Some("text/plain"));
        assert_eq!(head.object_type.as_deref(), Some("Normal"));
        assert_eq!(head.metadata, vec![("project".into(), "osspipe".into())]);
        let got = client.get_object(BUCKET, &small_key).await.unwrap();
        assert_eq!(&got.body.bytes().await.unwrap()[..], b"hello oss\n");
        let range = client
            .get_object_range(BUCKET, &small_key, 6..9)
            .await
            .unwrap();
        assert_eq!(&range.body.bytes().await.unwrap()[..], b"oss");

        // A multipart upload: two 100 KiB parts and a short last one.
        let parts_data = [data(100 * 1024, 1), data(100 * 1024, 2), data(777, 3)];
        let mut options = ObjectOptions::default();
        options.forbid_overwrite = true;
        let upload_id = client
            .initiate_multipart_upload(BUCKET, &big_key, &options)
            .await
            .unwrap();
        let mut receipts = Vec::new();
        for (number, body) in (1..).zip(&parts_data) {
            receipts.push(
                client
                    .upload_part(BUCKET, &big_key, &upload_id, number, body.clone())
                    .await
                    .unwrap(),
            );
        }
        let listed = client
            .list_parts(BUCKET, &big_key, &upload_id)
            .await
            .unwrap();
        assert_eq!(listed.len(), 3);
        for (listed, receipt) in listed.iter().zip(&receipts) {
            assert_eq!(listed.part_number, receipt.part_number);
            assert_eq!(listed.etag, receipt.etag);
            assert_eq!(listed.size, receipt.size);
            assert_eq!(listed.hash_crc64ecma, Some(receipt.crc64));
        }
        let uploads = client
            .list_multipart_uploads(BUCKET, Some(&prefix))
            .await
            .unwrap();
        assert_eq!(uploads.len(), 1);
        assert_eq!(uploads[0].key, big_key);
        assert_eq!(uploads[0].upload_id, upload_id);

        let complete = client
            .complete_multipart_upload(BUCKET, &big_key, &upload_id, &receipts, &options)
            .await
            .unwrap();
        let whole: Vec<u8> = parts_data.concat();
        assert_eq!(complete.crc64, Some(crc64::checksum(&whole)));
        let head = client.head_object(BUCKET, &big_key).await.unwrap();
        assert_eq!(head.object_type.as_deref(), Some("Multipart"));
        assert_eq!(head.content_length, whole.len() as u64);
        assert!(head.etag.ends_with("-3\""), "{}", head.etag);
        let got = client.get_object(BUCKET, &big_key).await.unwrap();
        assert_eq!(got.body.bytes().await.unwrap(), whole);

        let objects = client.list_objects(BUCKET, Some(&prefix)).await.unwrap();
        let mut keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        keys.sort_unstable();
        let mut expected = vec![small_key.as_str(), big_key.as_str()];
        expected.sort_unstable();
        assert_eq!(keys, expected);

        // The upload id is dead after Complete; aborting another upload works once.
        let error = client
            .abort_multipart_upload(BUCKET, &big_key, &upload_id)
            .await
            .unwrap_err();
        assert_eq!(error.oss_code(), Some("NoSuchUpload"));
        let other = client
            .initiate_multipart_upload(BUCKET, &big_key, &ObjectOptions::default())
            .await
            .unwrap();
        client
            .abort_multipart_upload(BUCKET, &big_key, &other)
            .await
            .unwrap();

        client.delete_object(BUCKET, &small_key).await.unwrap();
        let missing = client.head_object(BUCKET, &small_key).await.unwrap_err();
        assert_eq!(missing.status(), Some(404));
        assert_eq!(missing.oss_code(), Some("NoSuchKey"), "from x-oss-err");
        assert_eq!(client.bucket(BUCKET).head(&small_key).await.unwrap(), None);
        let get_missing = client.get_object(BUCKET, &small_key).await.unwrap_err();
        assert_eq!(get_missing.oss_code(), Some("NoSuchKey"));
        assert_eq!(get_missing.operation(), Some(Operation::GetObject));
    }
    finish(server).await;
}

#[tokio::test]
async fn service_errors_arrive_whole_and_are_not_retried() {
    let server = server().await;
    let client = builder(&server).build().unwrap();
    let error = client
        .upload_part(BUCKET, "k", "NO-SUCH-UPLOAD", 1, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(404));
    assert_eq!(error.oss_code(), Some("NoSuchUpload"));
    assert!(error.request_id().is_some());
    assert_eq!(error.upload_id(), Some("NO-SUCH-UPLOAD"));
    assert_eq!(
        error.service_error().unwrap().field("UploadId"),
        Some("NO-SUCH-UPLOAD")
    );

    // forbid-overwrite at Complete: 409 FileAlreadyExists.
    client
        .put_object(
            BUCKET,
            "taken",
            Bytes::from_static(b"1"),
            &ObjectOptions::default(),
        )
        .await
        .unwrap();
    let mut options = ObjectOptions::default();
    options.forbid_overwrite = true;
    let error = client
        .put_object(BUCKET, "taken", Bytes::from_static(b"2"), &options)
        .await
        .unwrap_err();
    assert_eq!(error.oss_code(), Some("FileAlreadyExists"));
    assert!(!error.is_retryable());
    let upload_id = client
        .initiate_multipart_upload(BUCKET, "later", &options)
        .await
        .unwrap();
    let part = client
        .upload_part(BUCKET, "later", &upload_id, 1, Bytes::from_static(b"p"))
        .await
        .unwrap();
    client
        .put_object(
            BUCKET,
            "later",
            Bytes::from_static(b"first"),
            &ObjectOptions::default(),
        )
        .await
        .unwrap();
    let requests_before = server.requests();
    let error = client
        .complete_multipart_upload(BUCKET, "later", &upload_id, &[part], &options)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(409));
    assert_eq!(error.oss_code(), Some("FileAlreadyExists"));
    assert_eq!(server.requests() - requests_before, 1, "not retried");
    finish(server).await;
}

#[tokio::test]
async fn injected_faults_are_retried() {
    let server = server().await;
    let client = builder(&server).build().unwrap();
    let faults = server.faults();
    let busy =
        faults.add(FaultRule::fail(Some(Operation::UploadPart), 503, "ServiceUnavailable").part(2));
    let crc = faults.add(FaultRule::wrong_crc(Some(Operation::UploadPart)).part(3));
    let skew = faults.add(FaultRule::request_time_too_skewed(Some(Operation::UploadPart)).part(4));
    let lost = faults.add(FaultRule::lose_response(Some(Operation::UploadPart)).part(5));
    let reset = faults.add(FaultRule::reset_body(Some(Operation::UploadPart), 1000).part(6));
    let upload_id = client
        .initiate_multipart_upload(BUCKET, "faulty", &ObjectOptions::default())
        .await
        .unwrap();
    let mut receipts = Vec::new();
    for number in 1..=6u32 {
        let body = data(100 * 1024, number as u8);
        receipts.push(
            client
                .upload_part(BUCKET, "faulty", &upload_id, number, body)
                .await
                .unwrap(),
        );
    }
    for id in [busy, crc, skew, lost, reset] {
        assert_eq!(faults.fired(id), 1);
    }
    client
        .complete_multipart_upload(
            BUCKET,
            "faulty",
            &upload_id,
            &receipts,
            &ObjectOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        client
            .head_object(BUCKET, "faulty")
            .await
            .unwrap()
            .content_length,
        6 * 100 * 1024
    );
    finish(server).await;
}

#[tokio::test]
async fn an_upload_the_server_stops_reading_hits_the_idle_timeout() {
    let server = server().await;
    let client = builder(&server)
        .with_idle_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    // Large enough that the socket buffers cannot swallow it while the server is stalled.
    let body = data(32 * 1024 * 1024, 9);
    let stall = server.faults().add(FaultRule::stall_body(
        Some(Operation::PutObject),
        64 * 1024,
        Duration::from_secs(5),
    ));
    let started = std::time::Instant::now();
    client
        .put_object(BUCKET, "stalled", body.clone(), &ObjectOptions::default())
        .await
        .unwrap();
    assert_eq!(server.faults().fired(stall), 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried after the idle timeout, not after the stall ended: {:?}",
        started.elapsed()
    );
    let got = client.get_object(BUCKET, "stalled").await.unwrap();
    assert_eq!(got.body.bytes().await.unwrap(), body);
    finish(server).await;
}

#[tokio::test]
async fn presigned_urls_and_sts_tokens_are_accepted() {
    let sts =
        osspipe::Credentials::new("STS.test-id", "sts-secret").with_security_token("sts-token");
    let server = LocalServer::builder()
        .memory()
        .bucket(BUCKET)
        .credentials(sts.clone())
        .start()
        .await
        .unwrap();
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let client = builder(&server)
            .with_credentials(sts.clone())
            .with_signature_version(version)
            .build()
            .unwrap();
        let key = format!("{version:?}/shared file+1.txt");
        client
            .put_object(
                BUCKET,
                &key,
                Bytes::from_static(b"shared"),
                &ObjectOptions::default(),
            )
            .await
            .unwrap();
        let url = client
            .presign_get(BUCKET, &key, Duration::from_secs(300))
            .await
            .unwrap();
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.status(), 200, "{version:?} {url}");
        assert_eq!(&response.bytes().await.unwrap()[..], b"shared");
        // Tampering with the key breaks the signature.
        let tampered = url.replace("shared%20file", "other%20file");
        assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
    }
    // Without the token the server refuses.
    let tokenless = builder(&server)
        .with_credentials(osspipe::Credentials::new("STS.test-id", "sts-secret"))
        .build()
        .unwrap();
    let error = tokenless
        .head_object(BUCKET, "V4/shared file+1.txt")
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(403));
    finish(server).await;
}
