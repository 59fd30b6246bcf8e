//! Secrets never appear in `Debug`, `Display`, logs at any level, error messages, panics or the
//! CLI's output.
//!
//! Recognisable canaries are used as the access key secret and the STS security token. Uploads
//! that succeed and uploads that fail (a wrong secret, a denied part, an expired token, retried
//! 503s) run in-process with a tracing subscriber at TRACE that captures every log line (the
//! `log` records of reqwest and hyper included), and through the built CLI with
//! `RUST_LOG=trace -vvv`; every byte of output, every error's `Display` and `Debug` (what a
//! panic on `unwrap` prints), and the `Debug` of every configuration type is searched for the
//! canaries, raw and in the encodings a signer or a server might echo them in (hex, base64).
#![cfg(feature = "cli")]

#[path = "common/reliability.rs"]
mod reliability;

use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use osspipe::client::Client;
use osspipe::credentials::{RefreshingProvider, StaticProvider};
use osspipe::server::{FaultRule, LocalServer};
use osspipe::sign::SignatureVersion;
use osspipe::target::ObjectOptions;
use osspipe::upload::ObjectWriter;
use osspipe::{Credentials, Error, Operation};
use reliability::cli::{osspipe, run, Ran};
use reliability::*;
use tokio::io::AsyncWriteExt;

const BUCKET: &str = "secrets";
const KEY_ID: &str = "STS.secretscanary";
/// The access key secret the server knows.
const SECRET: &str = "SeCrEtCanary5f1d9a7c3e2b8046Xq";
/// A wrong secret a client may be given: as secret as the right one.
const WRONG_SECRET: &str = "WrOnGsEcReTcAnArY71c0e9d4b2aZ";
/// The STS security token.
const TOKEN: &str = "ToKeNcAnArY0c8e6a4f2d1b9735Yw";

/// Every form in which a canary could leak.
fn leak_forms() -> Vec<(String, &'static str)> {
    let mut forms = Vec::new();
    for canary in [SECRET, WRONG_SECRET, TOKEN] {
        forms.push((canary.to_owned(), canary));
        forms.push((canary.to_ascii_lowercase(), canary));
        forms.push((hex::encode(canary), canary));
        forms.push((hex::encode_upper(canary), canary));
        let spaced: Vec<String> = canary.bytes().map(|b| format!("{b:02X}")).collect();
        forms.push((spaced.join(" "), canary));
        forms.push((
            base64::engine::general_purpose::STANDARD.encode(canary),
            canary,
        ));
    }
    forms
}

/// Collects every leak a test finds, so one run reports them all.
#[derive(Default)]
struct Leaks(Vec<String>);

impl Leaks {
    /// Records a leak if `text` contains a canary in any form.
    fn check(&mut self, text: &str, what: &str) {
        for (form, canary) in leak_forms() {
            if let Some(at) = text.find(&form) {
                let start = text.floor_char_boundary(at.saturating_sub(160));
                let end = text.ceil_char_boundary((at + form.len() + 60).min(text.len()));
                self.0.push(format!(
                    "{what} leaks {canary:?} (as {form:?}): ...{}...",
                    &text[start..end]
                ));
                return;
            }
        }
    }

    /// `Display`, alternate `Display`, `Debug` and pretty `Debug` of an error, its sources
    /// and its `io::Error` form.
    fn check_error(&mut self, error: &Error, what: &str) {
        self.check(&error.to_string(), &format!("{what}: Display"));
        self.check(&format!("{error:#}"), &format!("{what}: alternate Display"));
        self.check(
            &format!("{error:?}"),
            &format!("{what}: Debug (what unwrap prints)"),
        );
        self.check(&format!("{error:#?}"), &format!("{what}: pretty Debug"));
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            self.check(&cause.to_string(), &format!("{what}: a source"));
            self.check(&format!("{cause:?}"), &format!("{what}: a source's Debug"));
            source = cause.source();
        }
        let io: std::io::Error = error.duplicate().into();
        self.check(&format!("{io} {io:?}"), &format!("{what}: as io::Error"));
    }

    /// Fails the test with every leak found.
    #[track_caller]
    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} leak(s):\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// Everything logged in this process, at TRACE, by every crate.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .try_init()
            .expect("the only subscriber of this test binary");
        buffer
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sts(secret: &str) -> Credentials {
    Credentials::new(KEY_ID, secret).with_security_token(TOKEN)
}

async fn server() -> LocalServer {
    LocalServer::builder()
        .bucket(BUCKET)
        .credentials(sts(SECRET))
        .start()
        .await
        .unwrap()
}

fn client(server: &LocalServer, secret: &str, version: SignatureVersion) -> Client {
    Client::builder()
        .with_endpoint(server.endpoint())
        .with_region(REGION)
        .with_signature_version(version)
        .with_credentials(sts(secret))
        .with_retry_policy(fast_retries().with_max_attempts(3))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_uploads_at_trace_level_never_show_secrets() {
    let mut leaks = Leaks::default();
    let logs = logs();
    tracing::info!("secrets test: logging at TRACE is on");
    let server = server().await;
    // Retries and their log lines.
    server
        .faults()
        .add(FaultRule::fail(Some(Operation::UploadPart), 503, "SlowDown").fraction(0.3, 17));
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let client = client(&server, SECRET, version);
        // A successful multipart upload, a PutObject, reads and listings.
        let mut writer = ObjectWriter::builder(Arc::new(client.bucket(BUCKET)), "ok/multipart")
            .part_size(MIB)
            .max_memory(4 * MIB)
            .retry_backoff(Duration::from_millis(10))
            .build()
            .unwrap();
        leaks.check(&format!("{writer:?}"), "ObjectWriter Debug");
        let streamed = stream_into(&mut writer, 21, 5 * MIB).await;
        streamed.result.expect("the upload succeeds");
        client
            .put_object(
                BUCKET,
                "ok/small",
                Bytes::from_static(b"small"),
                &ObjectOptions::default(),
            )
            .await
            .unwrap();
        let head = client.head_object(BUCKET, "ok/small").await.unwrap();
        leaks.check(&format!("{head:?}"), "ObjectMetadata Debug");
        let got = client.get_object(BUCKET, "ok/multipart").await.unwrap();
        leaks.check(&format!("{got:?}"), "GetObjectOutput Debug");
        drop(got);
        client.list_multipart_uploads(BUCKET, None).await.unwrap();
        client.list_objects(BUCKET, Some("ok/")).await.unwrap();
        // A presigned URL must carry the token (that is how STS presigning works), but never
        // be logged.
        let url = client
            .presign_get(BUCKET, "ok/small", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(
            url.contains(TOKEN),
            "an STS presigned URL carries its token"
        );

        // A wrong secret: the server echoes its string to sign (which covers the token).
        let wrong = self::client(&server, WRONG_SECRET, version);
        let error = wrong
            .put_object(
                BUCKET,
                "bad/secret",
                Bytes::from_static(b"x"),
                &ObjectOptions::default(),
            )
            .await
            .expect_err("a wrong secret is refused");
        assert_eq!(error.oss_code(), Some("SignatureDoesNotMatch"), "{error}");
        leaks.check_error(&error, &format!("{version:?} SignatureDoesNotMatch"));
        let mut writer = ObjectWriter::builder(Arc::new(wrong.bucket(BUCKET)), "bad/writer")
            .part_size(MIB)
            .max_memory(4 * MIB)
            .build()
            .unwrap();
        let streamed = stream_into(&mut writer, 22, 3 * MIB).await;
        let error = streamed
            .result
            .expect_err("a wrong secret fails the writer");
        leaks.check_error(&error, &format!("{version:?} writer with a wrong secret"));
        leaks.check(&format!("{writer:?}"), "failed ObjectWriter Debug");
    }

    // A part denied mid-stream.
    let denied = server.faults().add(
        FaultRule::fail(Some(Operation::UploadPart), 403, "AccessDenied")
            .part(2)
            .times(u64::MAX),
    );
    let client = client(&server, SECRET, SignatureVersion::V4);
    let mut writer = ObjectWriter::builder(Arc::new(client.bucket(BUCKET)), "bad/denied")
        .part_size(MIB)
        .max_memory(4 * MIB)
        .build()
        .unwrap();
    let error = stream_into(&mut writer, 23, 4 * MIB)
        .await
        .result
        .expect_err("denied");
    leaks.check_error(&error, "AccessDenied mid-stream");
    server.faults().remove(denied);

    // Expired temporary credentials.
    let expired = LocalServer::builder()
        .bucket(BUCKET)
        .credentials(sts(SECRET).with_expiry(SystemTime::now() - Duration::from_secs(1)))
        .start()
        .await
        .unwrap();
    let error = self::client(&expired, SECRET, SignatureVersion::V4)
        .put_object(
            BUCKET,
            "bad/expired",
            Bytes::from_static(b"x"),
            &ObjectOptions::default(),
        )
        .await
        .expect_err("expired");
    assert_eq!(error.oss_code(), Some("SecurityTokenExpired"), "{error}");
    leaks.check_error(&error, "SecurityTokenExpired");
    expired.shutdown().await;

    // Configuration types.
    let credentials = sts(SECRET).with_expiry(SystemTime::now() + Duration::from_secs(3600));
    leaks.check(
        &format!("{credentials:?} {credentials:#?}"),
        "Credentials Debug",
    );
    leaks.check(
        &format!("{:?}", StaticProvider::new(credentials.clone())),
        "StaticProvider Debug",
    );
    let refreshing = RefreshingProvider::new({
        let credentials = credentials.clone();
        move || {
            let credentials = credentials.clone();
            async move { Ok(credentials) }
        }
    });
    osspipe::credentials::CredentialsProvider::credentials(&refreshing)
        .await
        .unwrap();
    leaks.check(&format!("{refreshing:?}"), "RefreshingProvider Debug");
    let builder = Client::builder()
        .with_endpoint(server.endpoint())
        .with_region(REGION)
        .with_credentials(credentials.clone());
    leaks.check(&format!("{builder:?}"), "ClientBuilder Debug");
    let config = builder.clone().build_config().unwrap();
    leaks.check(&format!("{config:?}"), "Config Debug");
    let built = builder.build().unwrap();
    leaks.check(
        &format!("{built:?} {:?}", built.bucket(BUCKET)),
        "Client Debug",
    );
    let writer_builder = ObjectWriter::builder(Arc::new(built.bucket(BUCKET)), "k");
    leaks.check(&format!("{writer_builder:?}"), "ObjectWriterBuilder Debug");
    let server_builder = LocalServer::builder().credentials(credentials.clone());
    leaks.check(&format!("{server_builder:?}"), "ServerBuilder Debug");
    leaks.check(&format!("{server:?}"), "LocalServer Debug");

    server.shutdown().await;
    // Everything any crate logged, at every level.
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        text.contains("secrets test: logging at TRACE is on"),
        "the log capture works"
    );
    assert!(
        text.len() > 10_000,
        "trace logs were captured: {} bytes",
        text.len()
    );
    leaks.check(&text, "the trace log");
    leaks.assert_none();
}

/// The CLI against an in-process server that accepts the canary credentials.
struct CliSetup {
    server: LocalServer,
    work: tempfile::TempDir,
}

impl CliSetup {
    async fn new() -> Self {
        let _ = logs();
        Self {
            server: server().await,
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, secret: &str, args: &[&str]) -> tokio::process::Command {
        let mut command = osspipe(self.work.path(), args);
        command
            .arg("-vvv")
            .args(["--endpoint", &self.server.endpoint(), "--region", REGION])
            .env("OSS_ACCESS_KEY_ID", KEY_ID)
            .env("OSS_ACCESS_KEY_SECRET", secret)
            .env("OSS_SESSION_TOKEN", TOKEN)
            .env("RUST_LOG", "trace");
        command
    }

    async fn put(&self, secret: &str, key: &str, bytes: usize) -> Ran {
        let mut command = self.command(
            secret,
            &[
                "put",
                &format!("oss://{BUCKET}/{key}"),
                "--part-size",
                "1MiB",
            ],
        );
        command.stdin(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = SeededStream::new(31, bytes as u64)
            .next_chunk(bytes.max(1))
            .unwrap_or_default();
        let feeder = tokio::spawn(async move {
            let _ = stdin.write_all(&data).await;
        });
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("osspipe put finishes")
            .unwrap();
        feeder.await.unwrap();
        Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_at_trace_level_never_shows_secrets() {
    let mut leaks = Leaks::default();
    let setup = CliSetup::new().await;
    setup
        .server
        .faults()
        .add(FaultRule::fail(Some(Operation::UploadPart), 503, "SlowDown").every(3));

    let ok = setup.put(SECRET, "cli/ok", 3 * MIB as usize).await;
    assert_eq!(ok.code, Some(0), "{}", ok.both());
    assert!(
        ok.stderr.len() > 1000,
        "RUST_LOG=trace produced logs: {}",
        ok.both()
    );
    leaks.check(&ok.both(), "osspipe put (success, trace)");

    let small = setup.put(SECRET, "cli/small", 1000).await;
    assert_eq!(small.code, Some(0), "{}", small.both());
    leaks.check(&small.both(), "osspipe put of a small object");

    let wrong = setup.put(WRONG_SECRET, "cli/wrong", 3 * MIB as usize).await;
    assert_eq!(wrong.code, Some(1), "{}", wrong.both());
    assert!(
        wrong.stderr.contains("SignatureDoesNotMatch"),
        "{}",
        wrong.both()
    );
    leaks.check(&wrong.both(), "osspipe put with a wrong secret");

    for args in [
        vec!["get".to_owned(), format!("oss://{BUCKET}/cli/small")],
        vec!["get".to_owned(), format!("oss://{BUCKET}/cli/missing")],
        vec![
            "uploads".to_owned(),
            format!("oss://{BUCKET}"),
            "--json".to_owned(),
        ],
        vec![
            "abort".to_owned(),
            format!("oss://{BUCKET}/cli/none"),
            "--upload-id".to_owned(),
            "0123456789abcdef0123456789abcdef".to_owned(),
        ],
        vec![
            "recover".to_owned(),
            format!("oss://{BUCKET}/cli/none"),
            "--upload-id".to_owned(),
            "0123456789abcdef0123456789abcdef".to_owned(),
        ],
        vec![
            "put".to_owned(),
            format!("oss://{BUCKET}/cli/usage"),
            "--part-size".to_owned(),
            "1KB".to_owned(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for secret in [SECRET, WRONG_SECRET] {
            let ran = run(setup.command(secret, &args)).await;
            assert!(ran.code.is_some(), "{args:?} exited: {}", ran.both());
            leaks.check(&ran.both(), &format!("osspipe {args:?}"));
        }
    }
    assert_eq!(setup.server.unexpected_errors(), 0);
    leaks.assert_none();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osspipe_serve_does_not_echo_a_given_secret() {
    let mut leaks = Leaks::default();
    let work = tempfile::tempdir().unwrap();
    let addr = reliability::cli::free_port();
    let mut command = osspipe(
        work.path(),
        [
            "serve",
            "--memory",
            "-vvv",
            "--addr",
            &addr.to_string(),
            "--access-key-id",
            KEY_ID,
            "--access-key-secret",
            SECRET,
        ],
    );
    command.env("RUST_LOG", "trace");
    let mut child = command.spawn().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A signed request with a wrong secret, so the server logs a refusal too.
    let refused = RawRequest::new("PUT", "/secrets/k")
        .body("x")
        .signed(
            SignatureVersion::V4,
            &Credentials::new(KEY_ID, WRONG_SECRET),
            Some("secrets"),
            Some("k"),
            &[],
            SystemTime::now(),
        )
        .send(addr)
        .await;
    assert_eq!(refused.status, 403);
    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("OSS_ENDPOINT"),
        "serve printed its endpoint: {text}"
    );
    leaks.check(&text, "osspipe serve");
    leaks.assert_none();
}
