//! The streaming writer over real HTTP: the OSS client against the local server (in-process on
//! 127.0.0.1:0), with the server's fault injection. Parts are OSS-sized (100 KiB and up) because
//! the server enforces OSS's minimum part size at Complete.
#![cfg(feature = "server")]

use std::sync::Arc;
use std::time::Duration;

use osspipe::client::Client;
use osspipe::crc64;
use osspipe::limits::MIN_PART_SIZE;
use osspipe::retry::RetryPolicy;
use osspipe::server::{FaultRule, LocalServer};
use osspipe::upload::{ObjectWriter, ObjectWriterBuilder};
use osspipe::{Error, ErrorKind, Operation};
use tokio::io::AsyncWriteExt;

const BUCKET: &str = "writer-tests";
const PART: u64 = MIN_PART_SIZE;

async fn server() -> LocalServer {
    LocalServer::builder()
        .memory()
        .bucket(BUCKET)
        .start()
        .await
        .expect("server starts")
}

fn client(server: &LocalServer) -> Client {
    Client::builder()
        .with_endpoint(server.endpoint())
        .with_region(server.region())
        .with_credentials(server.credentials().clone())
        .with_idle_timeout(Duration::from_secs(10))
        .with_retry_policy(
            RetryPolicy::new()
                .with_base_delay(Duration::from_millis(1))
                .with_seed(5),
        )
        .build()
        .unwrap()
}

/// A writer of 100 KiB parts, room for four in flight.
fn builder(client: &Client, key: &str) -> ObjectWriterBuilder {
    ObjectWriter::builder(Arc::new(client.bucket(BUCKET)), key)
        .part_size(PART)
        .max_memory(5 * PART)
        .retry_backoff(Duration::from_millis(1))
}

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

async fn write_in(writer: &mut ObjectWriter, data: &[u8], chunk: usize) -> std::io::Result<()> {
    for piece in data.chunks(chunk) {
        writer.write_all(piece).await?;
    }
    Ok(())
}

/// Writes everything and shuts down; the first error, recovered from `io::Error`.
async fn upload(writer: &mut ObjectWriter, data: &[u8]) -> Result<(), Error> {
    write_in(writer, data, 64 * 1024)
        .await
        .map_err(Error::from_io)?;
    writer.shutdown().await.map_err(Error::from_io)
}

async fn read_back(client: &Client, key: &str) -> Vec<u8> {
    let object = client.get_object(BUCKET, key).await.unwrap();
    object.body.bytes().await.unwrap().to_vec()
}

async fn uploads_left(client: &Client, key: &str) -> usize {
    client
        .list_multipart_uploads(BUCKET, Some(key))
        .await
        .unwrap()
        .len()
}

async fn finish(server: LocalServer) {
    assert_eq!(
        server.unexpected_errors(),
        0,
        "the server failed on its own"
    );
    assert_eq!(server.panics(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn small_and_empty_streams_are_put_objects() {
    let server = server().await;
    let client = client(&server);
    let mut small = builder(&client, "small.txt").build().unwrap();
    small.write_all(b"hello oss\n").await.unwrap();
    small.shutdown().await.unwrap();
    assert_eq!(small.outcome().unwrap().upload_id, None);
    assert_eq!(small.outcome().unwrap().crc64, 17223430255209957478);
    assert_eq!(read_back(&client, "small.txt").await, b"hello oss\n");

    let mut empty = builder(&client, "empty").build().unwrap();
    empty.shutdown().await.unwrap();
    assert_eq!(read_back(&client, "empty").await, b"");
    let head = client.head_object(BUCKET, "empty").await.unwrap();
    assert_eq!(head.content_length, 0);
    finish(server).await;
}

#[tokio::test]
async fn retried_503s_still_give_the_identical_object() {
    let server = server().await;
    let faults = server.faults();
    faults.add(
        FaultRule::fail(Some(Operation::UploadPart), 503, "ServiceUnavailable").fraction(0.3, 11),
    );
    faults.add(FaultRule::fail(
        Some(Operation::InitiateMultipartUpload),
        503,
        "SlowDown",
    ));
    faults.add(FaultRule::fail(
        Some(Operation::CompleteMultipartUpload),
        500,
        "InternalError",
    ));
    let client = client(&server);
    let input = data(1_536 * 1024 + 17, 1);
    let mut writer = builder(&client, "retried.bin").build().unwrap();
    upload(&mut writer, &input).await.unwrap();
    let outcome = writer.outcome().unwrap().clone();
    assert_eq!(outcome.parts, 16);
    assert_eq!(outcome.crc64, crc64::checksum(&input));
    assert_eq!(read_back(&client, "retried.bin").await, input);
    let head = client.head_object(BUCKET, "retried.bin").await.unwrap();
    assert_eq!(head.crc64, Some(outcome.crc64));
    assert_eq!(uploads_left(&client, "retried.bin").await, 0);
    finish(server).await;
}

#[tokio::test]
async fn a_non_retryable_error_aborts_the_upload() {
    let server = server().await;
    server
        .faults()
        .add(FaultRule::fail(Some(Operation::UploadPart), 403, "AccessDenied").part(3));
    let client = client(&server);
    let mut writer = builder(&client, "denied.bin").build().unwrap();
    let error = upload(&mut writer, &data(800 * 1024, 2)).await.unwrap_err();
    assert_eq!(error.oss_code(), Some("AccessDenied"));
    assert_eq!(error.operation(), Some(Operation::UploadPart));
    assert_eq!(error.part_number(), Some(3));
    assert!(error.upload_id().is_some());
    assert_eq!(uploads_left(&client, "denied.bin").await, 0);
    assert_eq!(
        client
            .head_object(BUCKET, "denied.bin")
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    // Latched.
    let again = Error::from_io(writer.write_all(b"more").await.unwrap_err());
    assert_eq!(again.oss_code(), Some("AccessDenied"));
    finish(server).await;
}

#[tokio::test]
async fn a_dropped_writer_aborts_its_upload() {
    let server = server().await;
    let client = client(&server);
    let mut writer = builder(&client, "dropped.bin").build().unwrap();
    write_in(&mut writer, &data(450 * 1024, 3), 10_000)
        .await
        .unwrap();
    assert_eq!(writer.sync_durable(false).await.unwrap(), 4 * PART);
    assert_eq!(uploads_left(&client, "dropped.bin").await, 1);
    drop(writer);
    let mut left = 1;
    for _ in 0..500 {
        left = uploads_left(&client, "dropped.bin").await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(left, 0, "the dropped writer's upload was not aborted");
    assert!(client.head_object(BUCKET, "dropped.bin").await.is_err());
    finish(server).await;
}

#[tokio::test]
async fn a_wrong_crc_from_the_server_is_retried_or_fails_and_aborts() {
    let server = server().await;
    let client = client(&server);

    // Once: the part is sent again and the object is right.
    let rule = server
        .faults()
        .add(FaultRule::wrong_crc(Some(Operation::UploadPart)).part(2));
    let input = data(350 * 1024, 4);
    let mut writer = builder(&client, "crc-once.bin").build().unwrap();
    upload(&mut writer, &input).await.unwrap();
    assert_eq!(server.faults().fired(rule), 1);
    assert_eq!(read_back(&client, "crc-once.bin").await, input);

    // Always: the writer fails with a CRC mismatch and aborts.
    server.faults().add(
        FaultRule::wrong_crc(Some(Operation::UploadPart))
            .part(2)
            .times(u64::MAX),
    );
    let mut writer = builder(&client, "crc-always.bin").build().unwrap();
    let error = upload(&mut writer, &input).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CrcMismatch);
    assert_eq!(uploads_left(&client, "crc-always.bin").await, 0);
    server.faults().clear();

    // A wrong object CRC after Complete is an error too.
    server
        .faults()
        .add(FaultRule::wrong_crc(Some(Operation::CompleteMultipartUpload)).times(u64::MAX));
    let mut writer = builder(&client, "crc-complete.bin").build().unwrap();
    let error = upload(&mut writer, &input).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CrcMismatch);
    assert!(writer.outcome().is_none());
    finish(server).await;
}

#[tokio::test]
async fn a_lost_complete_answer_is_confirmed() {
    let server = server().await;
    server.faults().add(FaultRule::lose_response(Some(
        Operation::CompleteMultipartUpload,
    )));
    let client = client(&server);
    let input = data(250 * 1024, 5);
    let mut writer = builder(&client, "lost.bin").build().unwrap();
    upload(&mut writer, &input).await.unwrap();
    assert_eq!(writer.outcome().unwrap().crc64, crc64::checksum(&input));
    assert_eq!(read_back(&client, "lost.bin").await, input);
    assert_eq!(uploads_left(&client, "lost.bin").await, 0);
    finish(server).await;
}

#[tokio::test]
async fn kept_parts_can_be_resumed() {
    let server = server().await;
    let client = client(&server);
    let input = data(1_000 * 1024 + 5, 6);
    let key = "live/feed.log";

    let mut first = builder(&client, key)
        .keep_parts_on_drop(true)
        .build()
        .unwrap();
    write_in(&mut first, &input[..560 * 1024], 7_000)
        .await
        .unwrap();
    let durable = first.sync_durable(false).await.unwrap();
    assert_eq!(durable, 5 * PART);
    let upload_id = first.upload_id().unwrap().to_owned();
    drop(first); // e.g. the producer crashed
    tokio::time::sleep(Duration::from_millis(50)).await;
    let listed = client
        .list_multipart_uploads(BUCKET, Some(key))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].upload_id, upload_id);

    let mut resumed = builder(&client, key)
        .resume(upload_id.clone())
        .build()
        .unwrap();
    let offset = resumed.resumed_size().await.unwrap() as usize;
    assert!(offset >= durable as usize && offset.is_multiple_of(PART as usize));
    write_in(&mut resumed, &input[offset..], 9_000)
        .await
        .unwrap();
    resumed.shutdown().await.unwrap();
    let outcome = resumed.outcome().unwrap();
    assert_eq!(outcome.upload_id.as_deref(), Some(upload_id.as_str()));
    assert_eq!(outcome.crc64, crc64::checksum(&input));
    assert_eq!(outcome.size, input.len() as u64);
    assert_eq!(read_back(&client, key).await, input);
    assert_eq!(uploads_left(&client, key).await, 0);
    finish(server).await;
}

#[tokio::test]
async fn copy_from_a_pipe_reads_straight_into_the_parts() {
    let server = server().await;
    let client = client(&server);
    let input = data(13 * PART as usize / 2 + 17, 61);
    // A real pipe between two tasks: reads return whatever the writer side has produced.
    let (mut producer, mut consumer) = tokio::io::duplex(64 * 1024);
    let fed = input.clone();
    let feeding = tokio::spawn(async move {
        for piece in fed.chunks(10_007) {
            producer.write_all(piece).await.unwrap();
        }
    });
    let mut writer = builder(&client, "copied.bin").build().unwrap();
    let read = writer.copy_from(&mut consumer).await.unwrap();
    feeding.await.unwrap();
    assert_eq!(read, input.len() as u64);
    writer.shutdown().await.unwrap();
    let outcome = writer.outcome().unwrap().clone();
    assert_eq!(outcome.parts, 7);
    assert_eq!(outcome.crc64, osspipe::crc64::checksum(&input));
    assert_eq!(read_back(&client, "copied.bin").await, input);
    assert_eq!(uploads_left(&client, "copied.bin").await, 0);
    finish(server).await;
}
