//! Reliability under faults: each case streams 64 MiB of seeded random data through the
//! streaming writer over real HTTP into the local server while its fault injection misbehaves,
//! then checks with an independent read (GET + SHA-256 against the input's SHA-256) that the
//! object is identical or absent, and with ListMultipartUploads that no upload was left behind.
//!
//! Parts are 2 MiB, so 64 MiB makes 32 parts and every fault lands mid-stream.
#![cfg(feature = "server")]

#[path = "common/reliability.rs"]
mod reliability;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use osspipe::client::Client;
use osspipe::credentials::RefreshingProvider;
use osspipe::server::{FaultRule, LocalServer};
use osspipe::upload::{ObjectWriter, ObjectWriterBuilder};
use osspipe::{Credentials, Error, ErrorKind, Operation};
use reliability::*;

const BUCKET: &str = "reliability";
/// Every case streams this much.
const STREAM_BYTES: u64 = 64 * MIB;
const PART_SIZE: u64 = 2 * MIB;
/// Room for one part filling and several in flight.
const MAX_MEMORY: u64 = 12 * MIB;

/// A writer of `key` with the suite's part size, memory budget and a fast writer-level
/// backoff.
fn writer(client: &Client, key: &str) -> ObjectWriterBuilder {
    ObjectWriter::builder(Arc::new(client.bucket(BUCKET)), key)
        .part_size(PART_SIZE)
        .max_memory(MAX_MEMORY)
        .max_in_flight(4)
        .retry_backoff(Duration::from_millis(20))
}

async fn memory_server() -> LocalServer {
    LocalServer::builder()
        .memory()
        .bucket(BUCKET)
        .start()
        .await
        .expect("the local server starts")
}

/// The object is byte-identical to the input, and no upload of it is left.
async fn assert_identical(client: &Client, key: &str, input: Digest256) {
    let stored = read_back(client, BUCKET, key)
        .await
        .expect("GET")
        .unwrap_or_else(|| panic!("{key} was not stored"));
    assert_eq!(stored.len, input.len, "{key}: stored size");
    assert!(
        stored == input,
        "{key}: the stored bytes differ from the input"
    );
    let left = uploads_of(client, BUCKET, key).await;
    assert!(left.is_empty(), "{key}: uploads left behind: {left:?}");
}

/// Nothing of the object exists: no object, no upload.
async fn assert_absent(client: &Client, key: &str) {
    let stored = read_back(client, BUCKET, key).await.expect("GET");
    assert!(
        stored.is_none(),
        "{key} must not exist after a failed upload"
    );
    let left = uploads_of(client, BUCKET, key).await;
    assert!(left.is_empty(), "{key}: uploads left behind: {left:?}");
}

fn assert_healthy(server: &LocalServer) {
    assert_eq!(server.panics(), 0, "handler panics on the local server");
    assert_eq!(
        server.unexpected_errors(),
        0,
        "unexpected 500 answers from the local server"
    );
}

/// Case 1: a seeded 10% of UploadParts answer 503 SlowDown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case01_ten_percent_of_parts_answer_503() {
    let server = memory_server().await;
    let fault = server
        .faults()
        .add(FaultRule::fail(Some(Operation::UploadPart), 503, "SlowDown").fraction(0.10, 0x0503));
    let client = client_for(server.addr(), server.credentials());
    let mut w = writer(&client, "case01").build().unwrap();
    let streamed = stream_into(&mut w, 1, STREAM_BYTES).await;
    let outcome = streamed.result.expect("the upload completes despite 503s");
    assert_eq!(outcome.size, STREAM_BYTES);
    assert!(outcome.parts >= 32, "{} parts", outcome.parts);
    assert!(
        server.faults().fired(fault) >= 1,
        "the 503 rule must have fired"
    );
    assert_identical(&client, "case01", streamed.input).await;
    assert_healthy(&server);
    server.shutdown().await;
}

/// Case 2: every fourth UploadPart loses its connection 300 KiB into the part's body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case02_connections_reset_mid_part_body() {
    let server = memory_server().await;
    let fault = server
        .faults()
        .add(FaultRule::reset_body(Some(Operation::UploadPart), 300 * 1024).every(4));
    let client = client_for(server.addr(), server.credentials());
    let mut w = writer(&client, "case02").build().unwrap();
    let streamed = stream_into(&mut w, 2, STREAM_BYTES).await;
    let outcome = streamed
        .result
        .expect("the upload completes despite resets");
    assert_eq!(outcome.size, STREAM_BYTES);
    assert!(server.faults().fired(fault) >= 8, "resets fired");
    assert_identical(&client, "case02", streamed.input).await;
    assert_healthy(&server);
    server.shutdown().await;
}

/// Case 3: the server stops reading part 5's body for a minute; the client's 2 s idle timeout
/// gives up on that connection and sends the part again on a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case03_a_stalled_part_is_retried_on_a_new_connection() {
    let server = memory_server().await;
    let fault = server.faults().add(
        FaultRule::stall_body(
            Some(Operation::UploadPart),
            512 * 1024,
            Duration::from_secs(60),
        )
        .part(5),
    );
    let client = Client::builder()
        .with_endpoint(server.endpoint())
        .with_region(REGION)
        .with_credentials(server.credentials().clone())
        .with_retry_policy(fast_retries())
        .with_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut w = writer(&client, "case03").build().unwrap();
    let streamed = stream_into(&mut w, 3, STREAM_BYTES).await;
    let elapsed = started.elapsed();
    let outcome = streamed
        .result
        .expect("the upload completes despite the stall");
    assert_eq!(outcome.size, STREAM_BYTES);
    assert_eq!(server.faults().fired(fault), 1, "the stall fired once");
    // Waiting the stall out would take 60 s; the idle timeout cuts it to about 2 s.
    assert!(
        elapsed < Duration::from_secs(30),
        "the stalled part was not cut short by the idle timeout: {elapsed:?}"
    );
    assert_identical(&client, "case03", streamed.input).await;
    assert_healthy(&server);
    // The stalled handler still sleeps: drop the server (cuts it) rather than wait for it.
    drop(server);
}

/// Case 4: one UploadPart answers 403 RequestTimeTooSkewed; it is re-signed and retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case04_request_time_too_skewed_once_is_resigned() {
    let server = memory_server().await;
    let fault = server
        .faults()
        .add(FaultRule::request_time_too_skewed(Some(Operation::UploadPart)).nth(3));
    let client = client_for(server.addr(), server.credentials());
    let mut w = writer(&client, "case04").build().unwrap();
    let streamed = stream_into(&mut w, 4, STREAM_BYTES).await;
    streamed
        .result
        .expect("the upload completes after one clock-skew answer");
    assert_eq!(server.faults().fired(fault), 1);
    assert_identical(&client, "case04", streamed.input).await;
    assert_healthy(&server);
    server.shutdown().await;
}

/// Case 5: Complete is performed but its answer is lost. The writer must report success for
/// the object that exists and is right, and leave exactly one copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case05_complete_performed_but_its_answer_lost() {
    let server = memory_server().await;
    let fault = server.faults().add(FaultRule::lose_response(Some(
        Operation::CompleteMultipartUpload,
    )));
    let client = client_for(server.addr(), server.credentials());
    let mut w = writer(&client, "case05").build().unwrap();
    let streamed = stream_into(&mut w, 5, STREAM_BYTES).await;
    let outcome = streamed
        .result
        .expect("a Complete that happened must not be reported as a failure");
    assert_eq!(server.faults().fired(fault), 1, "the answer was lost once");
    let head = client.head_object(BUCKET, "case05").await.expect("HEAD");
    assert_eq!(head.content_length, STREAM_BYTES);
    assert_eq!(
        head.crc64,
        Some(outcome.crc64),
        "the object's CRC-64 is the writer's"
    );
    let objects = client
        .list_objects(BUCKET, Some("case05"))
        .await
        .expect("ListObjects");
    assert_eq!(objects.len(), 1, "exactly one copy: {objects:?}");
    assert_identical(&client, "case05", streamed.input).await;
    assert_healthy(&server);
    server.shutdown().await;
}

/// Case 6a: the server reports a wrong CRC-64 for part 4 once: the part is sent again and the
/// object completes intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case06a_a_wrong_part_crc_once_is_retried() {
    let server = memory_server().await;
    let fault = server
        .faults()
        .add(FaultRule::wrong_crc(Some(Operation::UploadPart)).part(4));
    let client = client_for(server.addr(), server.credentials());
    let mut w = writer(&client, "case06a").build().unwrap();
    let streamed = stream_into(&mut w, 6, STREAM_BYTES).await;
    streamed
        .result
        .expect("the part is retried after the CRC mismatch");
    assert_eq!(server.faults().fired(fault), 1);
    assert_identical(&client, "case06a", streamed.input).await;
    assert_healthy(&server);
    server.shutdown().await;
}

/// Case 6b: the server always reports a wrong CRC-64 for part 4: the upload fails with a CRC
/// mismatch and is aborted; it is never completed with data nobody verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case06b_a_part_whose_crc_never_matches_aborts_the_upload() {
    let server = memory_server().await;
    let fault = server.faults().add(
        FaultRule::wrong_crc(Some(Operation::UploadPart))
            .part(4)
            .times(u64::MAX),
    );
    let client = client_for(server.addr(), server.credentials());
    let mut w = writer(&client, "case06b").build().unwrap();
    let streamed = stream_into(&mut w, 7, STREAM_BYTES).await;
    let error = streamed
        .result
        .expect_err("an upload whose part never verifies must fail");
    assert_eq!(error.kind(), ErrorKind::CrcMismatch, "{error}");
    assert_eq!(error.part_number(), Some(4), "{error}");
    assert!(server.faults().fired(fault) >= 2, "the part was retried");
    assert_absent(&client, "case06b").await;
    assert_healthy(&server);
    server.shutdown().await;
}

/// Runs a case where a non-retryable error hits part 5 (every attempt of it), and checks the
/// writer fails fast with OSS's code and request id, aborts, and leaves nothing.
async fn non_retryable_case(key: &str, seed: u64, status: u16, code: &str) {
    let server = memory_server().await;
    let fault = server.faults().add(
        FaultRule::fail(Some(Operation::UploadPart), status, code)
            .part(5)
            .times(u64::MAX),
    );
    let client = client_for(server.addr(), server.credentials());
    let started = Instant::now();
    let mut w = writer(&client, key).build().unwrap();
    let streamed = stream_into(&mut w, seed, STREAM_BYTES).await;
    let error = streamed
        .result
        .expect_err("a non-retryable error fails the upload");
    assert_service_error(&error, status, code);
    assert_eq!(error.operation(), Some(Operation::UploadPart), "{error}");
    assert_eq!(error.part_number(), Some(5), "{error}");
    assert!(
        error.upload_id().is_some(),
        "the error names the upload: {error}"
    );
    assert_eq!(
        server.faults().fired(fault),
        1,
        "a non-retryable answer must not be retried (neither by the client nor the writer)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "failing fast took {:?}",
        started.elapsed()
    );
    assert_absent(&client, key).await;
    assert_healthy(&server);
    server.shutdown().await;
}

/// Case 7a: 403 AccessDenied on a part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case07a_access_denied_fails_fast_and_aborts() {
    non_retryable_case("case07a", 71, 403, "AccessDenied").await;
}

/// Case 7b: 400 InvalidArgument on a part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case07b_invalid_argument_fails_fast_and_aborts() {
    non_retryable_case("case07b", 72, 400, "InvalidArgument").await;
}

/// Case 7c: someone aborts the upload while it streams; the next part gets NoSuchUpload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case07c_upload_aborted_by_someone_else_mid_stream() {
    let server = memory_server().await;
    let client = client_for(server.addr(), server.credentials());
    let aborted = Arc::new(AtomicUsize::new(0));
    let mut w = writer(&client, "case07c").build().unwrap();
    let streamed = {
        let (client, aborted) = (client.clone(), aborted.clone());
        stream_into_with(&mut w, 73, STREAM_BYTES, move |_, w| {
            let upload = (w.progress().parts_acknowledged >= 3
                && aborted.load(Ordering::SeqCst) == 0)
                .then(|| w.upload_id().map(str::to_owned))
                .flatten();
            let (client, aborted) = (client.clone(), aborted.clone());
            async move {
                if let Some(upload_id) = upload {
                    client
                        .abort_multipart_upload(BUCKET, "case07c", &upload_id)
                        .await
                        .expect("the test aborts the upload");
                    aborted.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
        .await
    };
    assert_eq!(aborted.load(Ordering::SeqCst), 1, "the test aborted once");
    let error = streamed
        .result
        .expect_err("parts of an aborted upload cannot succeed");
    assert_service_error(&error, 404, "NoSuchUpload");
    assert_absent(&client, "case07c").await;
    assert_healthy(&server);
    server.shutdown().await;
}

/// Case 8: temporary credentials that expire every ~0.6 s are refreshed through the provider
/// and the server accepts each new STS token; no part fails. Credentials the server holds
/// stop working at their expiry (it answers SecurityTokenExpired), so a client that kept
/// signing with stale ones would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case08_expiring_sts_credentials_are_refreshed_mid_stream() {
    const PERIOD: Duration = Duration::from_millis(600);
    const MARGIN: Duration = Duration::from_secs(1);
    const GENERATIONS: usize = 200;
    let epoch = SystemTime::now();
    let generations: Arc<Vec<Credentials>> = Arc::new(
        (0..GENERATIONS)
            .map(|n| {
                Credentials::new(format!("STS.reliability{n}"), format!("sts-secret-{n}"))
                    .with_security_token(format!("sts-token-{n}"))
                    .with_expiry(epoch + PERIOD * (n as u32 + 1))
            })
            .collect(),
    );
    let mut builder = LocalServer::builder()
        .memory()
        .bucket(BUCKET)
        .credentials(Credentials::new("LTAIunusedreliability", "unused-secret"));
    for credentials in generations.iter() {
        builder = builder.add_credentials(credentials.clone());
    }
    let server = builder.start().await.unwrap();
    // Slow the parts down so the stream spans several expiries.
    server
        .faults()
        .add(FaultRule::delay(Some(Operation::UploadPart), Duration::from_millis(250)).every(1));
    let fetches = Arc::new(AtomicUsize::new(0));
    let provider = {
        let (generations, fetches) = (generations.clone(), fetches.clone());
        RefreshingProvider::new(move || {
            let (generations, fetches) = (generations.clone(), fetches.clone());
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                // The first generation still valid beyond the margin, as STS would mint.
                let now = SystemTime::now();
                generations
                    .iter()
                    .find(|c| c.expires_at().unwrap() > now + MARGIN + PERIOD / 2)
                    .cloned()
                    .ok_or_else(|| Error::new(ErrorKind::Credentials, "out of generations"))
            }
        })
        .with_margin(MARGIN)
    };
    let client = Client::builder()
        .with_endpoint(server.endpoint())
        .with_region(REGION)
        .with_credentials_provider(provider)
        .with_retry_policy(fast_retries())
        .build()
        .unwrap();
    let started = Instant::now();
    let mut w = writer(&client, "case08").attempts(1).build().unwrap();
    let streamed = stream_into(&mut w, 8, STREAM_BYTES).await;
    let elapsed = started.elapsed();
    let progress = w.progress();
    streamed
        .result
        .expect("the upload completes across credential expiries");
    assert_eq!(progress.retries, 0, "no part failed: {progress:?}");
    let fetched = fetches.load(Ordering::SeqCst);
    assert!(
        fetched >= 3,
        "the credentials were refreshed only {fetched} times in {elapsed:?}"
    );
    assert_identical(&client, "case08", streamed.input).await;
    assert_healthy(&server);
    server.shutdown().await;
}

/// Starts a directory-store server on `addr`, retrying while the old listener's port is
/// being released.
async fn start_directory_server(
    dir: &std::path::Path,
    addr: SocketAddr,
    credentials: &Credentials,
) -> LocalServer {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match LocalServer::builder()
            .directory(dir)
            .addr(addr)
            .credentials(credentials.clone())
            .bucket(BUCKET)
            .start()
            .await
        {
            Ok(server) => return server,
            Err(error) if Instant::now() < deadline && error.kind() == ErrorKind::Io => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the server restarts on {addr}: {error}"),
        }
    }
}

/// Case 10: the local server (directory store) is killed mid-upload and restarted on the same
/// address and data directory. The client's retries carry the upload through (or it fails
/// cleanly), and an object stored before is not damaged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case10_server_killed_and_restarted_mid_upload() {
    let data = tempfile::tempdir().unwrap();
    let credentials = Credentials::new("LTAIrestartreliability", "restart-secret");
    let first =
        start_directory_server(data.path(), "127.0.0.1:0".parse().unwrap(), &credentials).await;
    let addr = first.addr();
    // Generous retries: the server is away for about a second.
    let client = Client::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_region(REGION)
        .with_credentials(credentials.clone())
        .with_retry_policy(
            fast_retries()
                .with_max_attempts(20)
                .with_max_delay(Duration::from_millis(500)),
        )
        .build()
        .unwrap();
    // An object stored before the crash, which must survive it intact.
    let bystander = SeededStream::new(100, 5 * MIB)
        .next_chunk(5 * MIB as usize)
        .unwrap();
    client
        .put_object(
            BUCKET,
            "bystander",
            bystander.clone().into(),
            &Default::default(),
        )
        .await
        .unwrap();

    let server = Arc::new(tokio::sync::Mutex::new(Some(first)));
    let restarted = Arc::new(AtomicUsize::new(0));
    let mut w = writer(&client, "case10").build().unwrap();
    let streamed = {
        let (server, restarted, credentials) =
            (server.clone(), restarted.clone(), credentials.clone());
        let dir = data.path().to_owned();
        stream_into_with(&mut w, 10, STREAM_BYTES, move |written, _| {
            let (server, restarted, credentials, dir) = (
                server.clone(),
                restarted.clone(),
                credentials.clone(),
                dir.clone(),
            );
            async move {
                if written < STREAM_BYTES / 3 || restarted.load(Ordering::SeqCst) > 0 {
                    return;
                }
                restarted.fetch_add(1, Ordering::SeqCst);
                let old = server.lock().await.take().unwrap();
                // Dropping cuts every connection at once, like a killed process; the store
                // keeps whatever reached the disk.
                drop(old);
                // Restart in the background so the writer's retries meet a dead port for a
                // while.
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    let new = start_directory_server(&dir, addr, &credentials).await;
                    *server.lock().await = Some(new);
                });
            }
        })
        .await
    };
    assert_eq!(
        restarted.load(Ordering::SeqCst),
        1,
        "the server was restarted"
    );
    // Wait for the restarted server (in case the writer failed before it came back).
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.lock().await.is_none() {
        assert!(Instant::now() < deadline, "the server never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match &streamed.result {
        Ok(outcome) => {
            assert_eq!(outcome.size, STREAM_BYTES);
            assert_identical(&client, "case10", streamed.input).await;
        }
        Err(error) => {
            // Failing is allowed, but cleanly: a typed error and no partial object.
            assert!(
                matches!(error.kind(), ErrorKind::Network | ErrorKind::Timeout),
                "unexpected failure across the restart: {error}"
            );
            let stored = read_back(&client, BUCKET, "case10").await.unwrap();
            assert!(stored.is_none(), "a failed upload left an object");
        }
    }
    let bystander_now = read_back(&client, BUCKET, "bystander").await.unwrap();
    assert_eq!(
        bystander_now,
        Some(Digest256::of(&bystander)),
        "the object stored before the crash is intact"
    );
    let server = server.lock().await.take().unwrap();
    assert_healthy(&server);
    server.shutdown().await;
    streamed
        .result
        .expect("the retries carry the upload across a 0.7 s restart");
}
