//! Helpers for the tests that run the built `osspipe` binary: a clean environment, a shared
//! `osspipe serve --memory` child, seeded data, signals.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use osspipe::client::Client;
use osspipe::Credentials;
use sha2::{Digest, Sha256};

/// The binary under test.
pub const OSSPIPE: &str = env!("CARGO_BIN_EXE_osspipe");

/// Every environment variable the CLI reads; removed so the test's own environment never
/// leaks into the child.
pub const CLI_ENV: &[&str] = &[
    "OSS_ACCESS_KEY_ID",
    "OSS_ACCESS_KEY_SECRET",
    "OSS_SESSION_TOKEN",
    "OSS_ENDPOINT",
    "OSS_REGION",
    "RUST_LOG",
];

/// How long any one command may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

pub const MIB: usize = 1024 * 1024;

/// `osspipe` in `dir` with a clean environment and captured output.
pub fn osspipe(dir: &Path) -> Command {
    let mut command = Command::new(OSSPIPE);
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in CLI_ENV {
        command.env_remove(name);
    }
    command
}

/// What a finished command did.
#[derive(Debug)]
pub struct Ran {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Ran {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Both streams, for assertion messages (stdout cut short: it may be an object).
    pub fn both(&self) -> String {
        let stdout = self.stdout_text();
        let shown: String = stdout.chars().take(2000).collect();
        format!(
            "exit {:?}\nstdout:\n{shown}\nstderr:\n{}",
            self.code, self.stderr
        )
    }

    /// The one JSON value printed on stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is one JSON value ({e}): {}", self.both()))
    }
}

/// Runs `command` with `input` on its stdin (written from a thread, so a large input cannot
/// deadlock against the output pipes) and waits for it.
pub fn run_with_input(mut command: Command, input: Vec<u8>) -> Ran {
    command.stdin(Stdio::piped());
    let mut child = command.spawn().expect("osspipe starts");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let ran = wait_output(child);
    feeder.join().unwrap();
    ran
}

/// Runs `command` (stdin closed) and waits for it.
pub fn run(mut command: Command) -> Ran {
    wait_output(command.spawn().expect("osspipe starts"))
}

/// Collects a child's output; panics (after killing it) if it runs past [`COMMAND_TIMEOUT`].
pub fn wait_output(mut child: Child) -> Ran {
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let status = wait_timeout(&mut child, COMMAND_TIMEOUT);
    let stdout = stdout.map(|h| h.join().unwrap()).unwrap_or_default();
    let stderr = stderr.map(|h| h.join().unwrap()).unwrap_or_default();
    Ran {
        code: status.code(),
        stdout,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// Waits for `child`, killing it and failing the test after `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("osspipe did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a signal (`"INT"`, `"TERM"`) with kill(1).
pub fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -{signal} {}", child.id());
}

/// `osspipe serve --memory` on a free loopback port, shared by several commands of a test.
/// Stopped (SIGINT, then SIGKILL if it lingers) when dropped.
pub struct Serve {
    child: Option<Child>,
    pub endpoint: String,
    pub region: String,
    pub credentials: Credentials,
    /// The server's stderr, for failure messages.
    log: tempfile::NamedTempFile,
    /// Where the server runs (it writes nothing there with --memory).
    work: tempfile::TempDir,
}

impl Serve {
    /// Starts `osspipe serve --memory --addr 127.0.0.1:0 EXTRA...` and reads the endpoint and
    /// credentials it prints.
    pub fn start(extra: &[&str]) -> Self {
        let work = tempfile::tempdir().unwrap();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut command = osspipe(work.path());
        command
            .args(["serve", "--memory", "--addr", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::from(log.reopen().unwrap()));
        let mut child = command.spawn().expect("osspipe serve starts");
        let exports = read_exports(&mut child);
        let get = |name: &str| {
            exports
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("serve printed {name}: {exports:?}"))
        };
        // Only made-up secrets are printed; a test that gave one sets `credentials` itself.
        let secret = exports
            .iter()
            .find(|(n, _)| n == "OSS_ACCESS_KEY_SECRET")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let credentials = Credentials::new(get("OSS_ACCESS_KEY_ID"), secret);
        Self {
            endpoint: get("OSS_ENDPOINT"),
            region: get("OSS_REGION"),
            credentials,
            child: Some(child),
            log,
            work,
        }
    }

    /// `osspipe` in `dir`, configured (through the environment) for this server.
    pub fn osspipe(&self, dir: &Path) -> Command {
        let mut command = osspipe(dir);
        command
            .env("OSS_ENDPOINT", &self.endpoint)
            .env("OSS_REGION", &self.region)
            .env("OSS_ACCESS_KEY_ID", self.credentials.access_key_id())
            .env(
                "OSS_ACCESS_KEY_SECRET",
                self.credentials.access_key_secret(),
            );
        command
    }

    /// A library client of this server, to check what the commands did independently.
    pub fn client(&self) -> Client {
        Client::builder()
            .with_endpoint(&self.endpoint)
            .with_region(&self.region)
            .with_credentials(self.credentials.clone())
            .build()
            .unwrap()
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends SIGINT and returns how the server exited.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        send_signal(&child, "INT");
        wait_timeout(&mut child, Duration::from_secs(20))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads the `export NAME=VALUE` lines of a starting `serve`: four, or three when the
/// credentials were given (then the secret is not printed); the first within 30 s.
fn read_exports(child: &mut Child) -> Vec<(String, String)> {
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut exports = Vec::new();
    while exports.len() < 4 {
        // The secret follows the key id at once (same flush), or not at all when it was given.
        let left = if exports.len() == 3 {
            Duration::from_millis(500)
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        match receiver.recv_timeout(left) {
            Ok(line) => {
                let Some(assignment) = line.strip_prefix("export ") else {
                    panic!("serve printed an unexpected line on stdout: {line:?}");
                };
                let (name, value) = assignment.split_once('=').expect("NAME=VALUE");
                exports.push((name.to_owned(), value.trim_matches('\'').to_owned()));
            }
            Err(_) if exports.len() == 3 => break,
            Err(e) => {
                let _ = child.kill();
                panic!("serve did not print its endpoint ({e}): {exports:?}");
            }
        }
    }
    exports
}

/// Deterministic pseudo-random bytes (xorshift64*), so a prefix can be regenerated.
pub fn seeded(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        bytes.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// SHA-256, hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Runs a future on a fresh runtime (the tests themselves are synchronous).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Unfinished uploads of `key` in `bucket`.
pub fn uploads_of(client: &Client, bucket: &str, key: &str) -> Vec<String> {
    block_on(client.list_multipart_uploads(bucket, Some(key)))
        .unwrap()
        .into_iter()
        .filter(|u| u.key == key)
        .map(|u| u.upload_id)
        .collect()
}

/// Whether `key` exists (HeadObject).
pub fn object_exists(client: &Client, bucket: &str, key: &str) -> bool {
    match block_on(client.head_object(bucket, key)) {
        Ok(_) => true,
        Err(error) if error.status() == Some(404) => false,
        Err(error) => panic!("HeadObject failed: {error}"),
    }
}

/// A writer of stdin that feeds `data` slowly (chunks with pauses) until it is all written or
/// the child stops reading; returns how many bytes were written.
pub fn feed_slowly(
    mut stdin: std::process::ChildStdin,
    data: Vec<u8>,
    chunk: usize,
    pause: Duration,
    hold_open: mpsc::Receiver<()>,
) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut written = 0;
        for piece in data.chunks(chunk) {
            if stdin.write_all(piece).is_err() {
                return written;
            }
            written += piece.len();
            std::thread::sleep(pause);
        }
        // Keep the pipe open (no end of input) until told otherwise: the test is about what a
        // signal does, not what the end of input does.
        let _ = hold_open.recv();
        written
    })
}
