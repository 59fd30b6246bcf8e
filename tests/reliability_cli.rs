//! Reliability of the built CLI when processes die:
//! - case 9: `osspipe put` is killed with SIGKILL mid-stream; `osspipe uploads` shows the
//!   upload and `osspipe recover` completes the acknowledged prefix, byte-identical to the
//!   input's prefix;
//! - case 10 (process variant): an `osspipe serve --data DIR` child is killed with SIGKILL
//!   mid-upload and started again on the same address and directory; the writer's retries
//!   carry the upload through and an object stored before the crash is intact.
#![cfg(feature = "cli")]

#[path = "common/reliability.rs"]
mod reliability;

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use osspipe::client::Client;
use osspipe::server::LocalServer;
use osspipe::upload::ObjectWriter;
use osspipe::Credentials;
use reliability::cli::{osspipe, run, Serve};
use reliability::*;
use tokio::io::AsyncWriteExt;

const BUCKET: &str = "reliability-cli";

/// Case 9: SIGKILL the uploading process mid-stream, then list and recover with the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case09_killed_put_is_listed_and_recovered_to_the_acknowledged_prefix() {
    const SEED: u64 = 9;
    const PART: u64 = MIB;
    const KEY: &str = "case09/stream.bin";
    let work = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let credentials = Credentials::new("LTAIkilledputreliability", "killed-put-secret");
    let server = LocalServer::builder()
        .directory(data.path())
        .credentials(credentials.clone())
        .bucket(BUCKET)
        .start()
        .await
        .unwrap();
    let client = client_for(server.addr(), &credentials);
    let connect = |command: &mut tokio::process::Command| {
        command
            .args(["--endpoint", &server.endpoint(), "--region", REGION])
            .env("OSS_ACCESS_KEY_ID", credentials.access_key_id())
            .env("OSS_ACCESS_KEY_SECRET", credentials.access_key_secret());
    };

    let mut put = osspipe(
        work.path(),
        [
            "put",
            &format!("oss://{BUCKET}/{KEY}"),
            "--part-size",
            "1MiB",
            "--concurrency",
            "3",
        ],
    );
    connect(&mut put);
    put.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = put.spawn().expect("osspipe put starts");
    let mut stdin = child.stdin.take().unwrap();
    // Feed 64 MiB at about 40 MiB/s, so the kill lands while parts are in flight.
    let fed = Arc::new(AtomicU64::new(0));
    let feeder = {
        let fed = fed.clone();
        tokio::spawn(async move {
            let mut stream = SeededStream::new(SEED, 64 * MIB);
            while let Some(chunk) = stream.next_chunk(256 * 1024) {
                if stdin.write_all(&chunk).await.is_err() {
                    break;
                }
                fed.store(stream.produced(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(6)).await;
            }
        })
    };

    // Kill once the server holds at least 8 parts of the upload.
    let deadline = Instant::now() + Duration::from_secs(30);
    let upload_id = loop {
        assert!(
            Instant::now() < deadline,
            "osspipe put never uploaded 8 parts"
        );
        if let Some(upload) = uploads_of(&client, BUCKET, KEY).await.first() {
            let parts = client
                .list_parts(BUCKET, KEY, &upload.upload_id)
                .await
                .unwrap();
            if parts.len() >= 8 {
                break upload.upload_id.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.unwrap();
    assert_eq!(
        status.code(),
        None,
        "killed by a signal, not exited: {status}"
    );
    feeder.await.unwrap();
    assert!(
        fed.load(Ordering::SeqCst) < 64 * MIB,
        "the stream was cut short by the kill"
    );

    // `osspipe uploads` shows the upload, as JSON and as a table.
    let mut uploads = osspipe(
        work.path(),
        ["uploads", &format!("oss://{BUCKET}"), "--json"],
    );
    connect(&mut uploads);
    let listed = run(uploads).await;
    assert_eq!(listed.code, Some(0), "{}", listed.both());
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout)
        .unwrap_or_else(|e| panic!("uploads --json is JSON ({e}): {}", listed.both()));
    let rows = rows.as_array().expect("a JSON array");
    let row = rows
        .iter()
        .find(|r| r["key"] == KEY)
        .unwrap_or_else(|| panic!("the killed upload is listed: {rows:?}"));
    assert_eq!(row["upload_id"], upload_id.as_str());
    let mut table = osspipe(work.path(), ["uploads", &format!("oss://{BUCKET}/case09/")]);
    connect(&mut table);
    let table = run(table).await;
    assert_eq!(table.code, Some(0), "{}", table.both());
    assert!(
        table.stdout.contains(&upload_id) && table.stdout.contains(KEY),
        "the table shows the upload: {}",
        table.both()
    );

    // `osspipe recover` completes the acknowledged prefix.
    let acknowledged: u64 = client
        .list_parts(BUCKET, KEY, &upload_id)
        .await
        .unwrap()
        .iter()
        .scan(0u32, |expected, part| {
            // Only the run of parts 1, 2, 3, ... without a gap can become the object.
            *expected += 1;
            (part.part_number == *expected).then_some(part.size)
        })
        .sum();
    let mut recover = osspipe(
        work.path(),
        [
            "recover",
            &format!("oss://{BUCKET}/{KEY}"),
            "--upload-id",
            &upload_id,
            "--json",
        ],
    );
    connect(&mut recover);
    let recovered = run(recover).await;
    assert_eq!(recovered.code, Some(0), "{}", recovered.both());
    let summary: serde_json::Value = serde_json::from_str(recovered.stdout.trim())
        .unwrap_or_else(|e| panic!("recover --json is JSON ({e}): {}", recovered.both()));
    let size = summary["size"].as_u64().expect("size");
    assert_eq!(
        size, acknowledged,
        "recover completes every acknowledged part"
    );
    assert!(size >= 8 * PART, "at least the 8 parts seen: {size}");
    eprintln!(
        "case09: killed after {} bytes fed; recovered {size} bytes ({} parts)",
        fed.load(Ordering::SeqCst),
        size / PART
    );
    assert_eq!(size % PART, 0, "only whole 1 MiB parts were acknowledged");

    let stored = read_back(&client, BUCKET, KEY)
        .await
        .unwrap()
        .expect("the recovered object exists");
    assert_eq!(stored.len, size);
    assert!(
        stored == seeded_prefix_digest(SEED, size),
        "the recovered object is byte-identical to the input's first {size} bytes"
    );
    assert!(uploads_of(&client, BUCKET, KEY).await.is_empty());
    assert_eq!(server.unexpected_errors(), 0);
    assert_eq!(server.panics(), 0);
    server.shutdown().await;
}

/// Case 10, with a real process: SIGKILL `osspipe serve` mid-upload and start it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case10_killed_serve_process_is_restarted_and_the_upload_completes() {
    const STREAM: u64 = 64 * MIB;
    let data = tempfile::tempdir().unwrap();
    let credentials = Credentials::new("LTAIkilledservereliability", "killed-serve-secret");
    let first = Serve::start(data.path(), &credentials, &[BUCKET]).await;
    let addr = first.addr();
    let client = Client::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_region(REGION)
        .with_credentials(credentials.clone())
        .with_retry_policy(
            fast_retries()
                .with_max_attempts(30)
                .with_max_delay(Duration::from_millis(500)),
        )
        .build()
        .unwrap();
    let bystander = SeededStream::new(1000, 3 * MIB)
        .next_chunk(3 * MIB as usize)
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
    let restarted = Arc::new(AtomicU64::new(0));
    let mut writer = ObjectWriter::builder(Arc::new(client.bucket(BUCKET)), "case10-process")
        .part_size(2 * MIB)
        .max_memory(12 * MIB)
        .retry_backoff(Duration::from_millis(20))
        .build()
        .unwrap();
    let streamed = {
        let (server, restarted, credentials) =
            (server.clone(), restarted.clone(), credentials.clone());
        let data = data.path().to_owned();
        stream_into_with(&mut writer, 1010, STREAM, move |written, _| {
            let (server, restarted, credentials, data) = (
                server.clone(),
                restarted.clone(),
                credentials.clone(),
                data.clone(),
            );
            async move {
                if written < STREAM / 3 || restarted.load(Ordering::SeqCst) > 0 {
                    return;
                }
                restarted.fetch_add(1, Ordering::SeqCst);
                server.lock().await.take().unwrap().kill().await;
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let new = Serve::start_on(addr, &data, &credentials, &[BUCKET]).await;
                    *server.lock().await = Some(new);
                });
            }
        })
        .await
    };
    assert_eq!(restarted.load(Ordering::SeqCst), 1, "the server was killed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.lock().await.is_none() {
        assert!(Instant::now() < deadline, "osspipe serve never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outcome = streamed
        .result
        .expect("the retries carry the upload across the restart");
    assert_eq!(outcome.size, STREAM);
    let stored = read_back(&client, BUCKET, "case10-process")
        .await
        .unwrap()
        .expect("the object exists");
    assert!(stored == streamed.input, "the object is byte-identical");
    assert!(uploads_of(&client, BUCKET, "case10-process")
        .await
        .is_empty());
    assert_eq!(
        read_back(&client, BUCKET, "bystander").await.unwrap(),
        Some(Digest256::of(&bystander)),
        "the object stored before the kill is intact"
    );
    // A graceful stop: `osspipe serve` exits 0 only if it answered no unexpected 500.
    server.lock().await.take().unwrap().stop().await;
}
