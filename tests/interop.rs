//! The local server against clients nobody here wrote: Alibaba's official OSS SDKs.
//!
//! Each test starts `osspipe::server::LocalServer` in-process on `127.0.0.1:0`, runs one script
//! from `tests/interop/` that drives an SDK against it (put/get/head, a multipart upload with the
//! SDK's own CRC checks, ListParts, ListMultipartUploads, abort, presigned URLs and the error codes
//! a real OSS returns, STS credentials), streams the script's output, and requires exit status 0.
//!
//! | script | SDK | signatures |
//! |---|---|---|
//! | `oss2_interop.py` | `oss2` (Python SDK v1) | V1, V4 (`ProviderAuthV4`) |
//! | `oss_v2_interop.py` | `alibabacloud-oss-v2` (Python SDK v2) | V4 (its default), V1 |
//! | `ali_oss_interop.js` | `ali-oss` (Node.js SDK) | V1, V4 |
//!
//! The SDKs come from PyPI and npm at the versions pinned in `tests/interop/requirements.txt` and
//! `tests/interop/package-lock.json`. `.ci/interop-setup.sh` installs them under `target/` (a venv
//! and a `node_modules`); these tests run it first, so a fresh machine with Rust, Python 3 and
//! Node.js needs nothing else. When the setup cannot work (no python3, no pip, no registry) the
//! tests fail with its message: they never skip.
#![cfg(feature = "server")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use osspipe::server::LocalServer;
use osspipe::Credentials;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

/// The one access key the server knows. The scripts also try a wrong secret and an unknown id.
const ACCESS_KEY_ID: &str = "LTAI5tInteropKeyId";
const ACCESS_KEY_SECRET: &str = "interop-secret-for-local-tests";
/// Temporary (STS) credentials the server also accepts: requests must carry the token.
const STS_ACCESS_KEY_ID: &str = "STS.NTInteropTemporaryKey";
const STS_ACCESS_KEY_SECRET: &str = "interop-sts-secret";
const STS_SECURITY_TOKEN: &str = "CAIS-interop-security-token+/=";
const REGION: &str = "cn-hangzhou";
const BUCKET: &str = "interop";

/// One script run takes a few seconds; this only catches a hang (a request the server never
/// answers), so that the test fails instead of CI's global timeout.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);

/// Which interpreter runs a script.
#[derive(Clone, Copy, Debug)]
enum Runtime {
    /// `target/interop-venv/bin/python`.
    Python,
    /// `node`, with `NODE_PATH` pointing at `target/interop-node/node_modules`.
    Node,
}

/// One SDK configuration: a script and its arguments.
#[derive(Clone, Copy, Debug)]
struct Sdk {
    /// Short name, also the key prefix of its objects.
    name: &'static str,
    runtime: Runtime,
    script: &'static str,
    args: &'static [&'static str],
}

const OSS2_V1: Sdk = Sdk {
    name: "oss2-v1",
    runtime: Runtime::Python,
    script: "oss2_interop.py",
    args: &["--auth", "v1"],
};
const OSS2_V4: Sdk = Sdk {
    name: "oss2-v4",
    runtime: Runtime::Python,
    script: "oss2_interop.py",
    args: &["--auth", "v4"],
};
const OSS_V2_V4: Sdk = Sdk {
    name: "oss-v2-v4",
    runtime: Runtime::Python,
    script: "oss_v2_interop.py",
    args: &["--sign", "v4"],
};
const OSS_V2_V1: Sdk = Sdk {
    name: "oss-v2-v1",
    runtime: Runtime::Python,
    script: "oss_v2_interop.py",
    args: &["--sign", "v1"],
};
const ALI_OSS_V1: Sdk = Sdk {
    name: "ali-oss-v1",
    runtime: Runtime::Node,
    script: "ali_oss_interop.js",
    args: &["--auth", "v1"],
};
const ALI_OSS_V4: Sdk = Sdk {
    name: "ali-oss-v4",
    runtime: Runtime::Node,
    script: "ali_oss_interop.js",
    args: &["--auth", "v4"],
};

const EVERY_SDK: [Sdk; 6] = [
    OSS2_V1, OSS2_V4, OSS_V2_V4, OSS_V2_V1, ALI_OSS_V1, ALI_OSS_V4,
];

/// Where the server keeps its objects.
#[derive(Clone, Copy, Debug)]
enum Store {
    Memory,
    Directory,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Cargo's target directory (the parent of the integration tests' `CARGO_TARGET_TMPDIR`), where
/// the setup script keeps the venv and `node_modules`.
fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// Runs `.ci/interop-setup.sh` once per test process; every test waits for the same outcome.
/// The error is the script's whole output, so a failure says what is missing.
fn ensure_sdks_installed() -> &'static Result<String, String> {
    static SETUP: OnceLock<Result<String, String>> = OnceLock::new();
    SETUP.get_or_init(|| {
        let script = repo_root().join(".ci/interop-setup.sh");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .env("OSSPIPE_INTEROP_TARGET", target_dir())
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `bash {}`: {e}", script.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "`bash {}` failed ({}): the interop tests need Python 3 with venv/pip and Node.js \
                 with npm, and PyPI/npm reachable once.\n{text}",
                script.display(),
                output.status
            ))
        }
    })
}

/// Installs the SDKs (or finds them installed), from a blocking thread.
async fn install_sdks() {
    let outcome = tokio::task::spawn_blocking(ensure_sdks_installed)
        .await
        .expect("the setup thread panicked");
    match outcome {
        Ok(log) => print!("{log}"),
        Err(message) => panic!("{message}"),
    }
}

/// A started server, and the directory that backs it (removed on drop).
struct RunningServer {
    server: LocalServer,
    _directory: Option<tempfile::TempDir>,
}

async fn start_server(store: Store) -> RunningServer {
    let builder = LocalServer::builder()
        .credentials(Credentials::new(ACCESS_KEY_ID, ACCESS_KEY_SECRET))
        .add_credentials(
            Credentials::new(STS_ACCESS_KEY_ID, STS_ACCESS_KEY_SECRET)
                .with_security_token(STS_SECURITY_TOKEN),
        )
        .region(REGION)
        .bucket(BUCKET);
    let (builder, directory) = match store {
        Store::Memory => (builder.memory(), None),
        Store::Directory => {
            let dir = tempfile::tempdir().expect("create a temporary directory");
            (builder.directory(dir.path()), Some(dir))
        }
    };
    let server = builder.start().await.expect("start the local server");
    RunningServer {
        server,
        _directory: directory,
    }
}

/// What one script run produced.
struct ScriptOutcome {
    success: bool,
    status: String,
    /// The `FAIL …` and `RESULT …` lines: the short story for the panic message.
    summary: Vec<String>,
}

/// Runs one SDK script against `endpoint`, echoing its output line by line (captured by the test
/// harness, shown when the test fails or with `--nocapture`).
async fn run_script(sdk: Sdk, endpoint: &str, store: Store) -> ScriptOutcome {
    let interop = repo_root().join("tests/interop");
    let target = target_dir();
    let mut command = match sdk.runtime {
        Runtime::Python => Command::new(target.join("interop-venv/bin/python")),
        Runtime::Node => {
            let mut node = Command::new("node");
            node.env("NODE_PATH", target.join("interop-node/node_modules"));
            node
        }
    };
    command
        .arg(interop.join(sdk.script))
        .args(sdk.args)
        .current_dir(&interop)
        .env("OSSPIPE_INTEROP_ENDPOINT", endpoint)
        .env("OSSPIPE_INTEROP_ACCESS_KEY_ID", ACCESS_KEY_ID)
        .env("OSSPIPE_INTEROP_ACCESS_KEY_SECRET", ACCESS_KEY_SECRET)
        .env("OSSPIPE_INTEROP_STS_ACCESS_KEY_ID", STS_ACCESS_KEY_ID)
        .env(
            "OSSPIPE_INTEROP_STS_ACCESS_KEY_SECRET",
            STS_ACCESS_KEY_SECRET,
        )
        .env("OSSPIPE_INTEROP_STS_SECURITY_TOKEN", STS_SECURITY_TOKEN)
        .env("OSSPIPE_INTEROP_REGION", REGION)
        .env("OSSPIPE_INTEROP_BUCKET", BUCKET)
        .env("OSSPIPE_INTEROP_PREFIX", format!("{}/", sdk.name))
        // No bytecode caches inside tests/interop; unbuffered, UTF-8 output (keys are Chinese).
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONIOENCODING", "utf-8")
        // A proxy from the environment must not see requests meant for 127.0.0.1.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);

    let tag = format!("{}/{store:?}", sdk.name);
    println!("[{tag}] running {} {}", sdk.script, sdk.args.join(" "));
    let started = Instant::now();
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return ScriptOutcome {
                success: false,
                status: format!("cannot start {:?} for {}: {e}", sdk.runtime, sdk.script),
                summary: Vec::new(),
            }
        }
    };
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");

    let mut summary = Vec::new();
    let echo = echo_output(&tag, stdout, stderr, &mut summary);
    let finished = tokio::time::timeout(SCRIPT_TIMEOUT, async {
        echo.await;
        child.wait().await
    })
    .await;
    let (success, status) = match finished {
        Ok(Ok(status)) => (status.success(), status.to_string()),
        Ok(Err(e)) => (false, format!("waiting for the script failed: {e}")),
        Err(_) => {
            // kill_on_drop would do it too; kill now so the port is quiet before shutdown.
            let _ = child.kill().await;
            (
                false,
                format!("timed out after {SCRIPT_TIMEOUT:?} (a request hung?) and was killed"),
            )
        }
    };
    println!(
        "[{tag}] {status} after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    ScriptOutcome {
        success,
        status,
        summary,
    }
}

/// Echoes both pipes, line by line, on this task (so the test harness captures it), and keeps
/// the lines that summarise the run.
async fn echo_output(
    tag: &str,
    stdout: impl AsyncRead + Unpin,
    stderr: impl AsyncRead + Unpin,
    summary: &mut Vec<String>,
) {
    let mut out = BufReader::new(stdout).split(b'\n');
    let mut err = BufReader::new(stderr).split(b'\n');
    let (mut out_open, mut err_open) = (true, true);
    while out_open || err_open {
        tokio::select! {
            line = out.next_segment(), if out_open => match line {
                Ok(Some(line)) => {
                    let line = String::from_utf8_lossy(&line).into_owned();
                    println!("[{tag}] {line}");
                    if line.starts_with("FAIL ") || line.starts_with("RESULT ") {
                        summary.push(line);
                    }
                }
                _ => out_open = false,
            },
            line = err.next_segment(), if err_open => match line {
                Ok(Some(line)) => println!("[{tag} stderr] {}", String::from_utf8_lossy(&line)),
                _ => err_open = false,
            },
        }
    }
}

/// Starts a fresh server, runs one SDK against it, stops the server, and fails on any failure.
async fn interop_with_fresh_server(sdk: Sdk, store: Store) {
    install_sdks().await;
    let running = start_server(store).await;
    let endpoint = running.server.endpoint().to_string();
    let outcome = run_script(sdk, &endpoint, store).await;
    let health = ServerHealth::of(&running.server);
    running.server.shutdown().await;
    assert!(
        outcome.success,
        "{} against the {store:?} store: {}\n{}\n{health:?}",
        sdk.name,
        outcome.status,
        outcome.summary.join("\n")
    );
    health.assert_healthy(sdk.name);
}

/// What the server counted while a script ran.
#[derive(Debug)]
struct ServerHealth {
    requests: u64,
    panics: u64,
    unexpected_errors: u64,
}

impl ServerHealth {
    fn of(server: &LocalServer) -> Self {
        Self {
            requests: server.requests(),
            panics: server.panics(),
            unexpected_errors: server.unexpected_errors(),
        }
    }

    /// The scripts really talked to this server, and it never answered with an unplanned 500
    /// (a handler panic or a store I/O error), which an SDK's retries could otherwise hide.
    fn assert_healthy(&self, what: &str) {
        assert!(
            self.requests > 0,
            "{what}: the server saw no request at all: {self:?}"
        );
        assert_eq!(
            (self.panics, self.unexpected_errors),
            (0, 0),
            "{what}: the server panicked or failed internally: {self:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss2_v1_signatures_memory_store() {
    interop_with_fresh_server(OSS2_V1, Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss2_v4_signatures_memory_store() {
    interop_with_fresh_server(OSS2_V4, Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss_v2_v4_signatures_memory_store() {
    interop_with_fresh_server(OSS_V2_V4, Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oss_v2_v1_signatures_memory_store() {
    interop_with_fresh_server(OSS_V2_V1, Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ali_oss_v1_signatures_memory_store() {
    interop_with_fresh_server(ALI_OSS_V1, Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ali_oss_v4_signatures_memory_store() {
    interop_with_fresh_server(ALI_OSS_V4, Store::Memory).await;
}

/// Every SDK, one after the other, against one server backed by a directory: the same checks
/// through the on-disk store, with the runs' objects and uploads side by side (each run lists
/// under its own prefix, so it also checks that listings honour `prefix`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sdk_directory_store() {
    install_sdks().await;
    let running = start_server(Store::Directory).await;
    let endpoint = running.server.endpoint().to_string();
    let mut failures = Vec::new();
    for sdk in EVERY_SDK {
        let outcome = run_script(sdk, &endpoint, Store::Directory).await;
        if !outcome.success {
            failures.push(format!(
                "{}: {}\n{}",
                sdk.name,
                outcome.status,
                outcome.summary.join("\n")
            ));
        }
    }
    let health = ServerHealth::of(&running.server);
    running.server.shutdown().await;
    assert!(
        failures.is_empty(),
        "against the directory store:\n{}\n{health:?}",
        failures.join("\n")
    );
    health.assert_healthy("every SDK, directory store");
}
