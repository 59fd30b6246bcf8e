//! Helpers for the reliability, load, bad-input and security suites (`tests/reliability_*`,
//! `tests/load_*`, `tests/bad_input_*`, `tests/security_*`).
//!
//! - seeded random streams and their SHA-256, and an independent read back (GET + SHA-256);
//! - clients for the local server with fast, seeded retries;
//! - process figures from `/proc/self`: resident memory, open file descriptors;
//! - a raw HTTP/1.1 exchange over a `TcpStream`, signed with `osspipe::sign`, for requests a URL
//!   library would "fix" (dot segments, NUL, a leading slash);
//! - a scripted raw TCP server that answers whatever bytes a test wants (malformed XML, HTML,
//!   endless bodies), so the client's handling of hostile answers can be pinned down.
//!
//! Everything listens on and connects to loopback only.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use osspipe::client::Client;
use osspipe::retry::RetryPolicy;
use osspipe::sign::{self, SignatureVersion, SigningParams};
use osspipe::upload::{ObjectWriter, UploadOutcome};
use osspipe::xml::ListedUpload;
use osspipe::{Credentials, Error, ErrorKind};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// The region the local server signs for by default.
pub const REGION: &str = "cn-hangzhou";

/// The length and SHA-256 of a byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest256 {
    /// Bytes hashed.
    pub len: u64,
    /// Their SHA-256.
    pub sha256: [u8; 32],
}

impl Digest256 {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            len: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
        }
    }
}

/// A deterministic stream of pseudo-random bytes: the same seed always gives the same bytes,
/// so a failing case can be replayed and a prefix recomputed without keeping the data.
#[derive(Debug)]
pub struct SeededStream {
    rng: fastrand::Rng,
    remaining: u64,
    hasher: Sha256,
    produced: u64,
}

impl SeededStream {
    /// `len` bytes from `seed`.
    pub fn new(seed: u64, len: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            remaining: len,
            hasher: Sha256::new(),
            produced: 0,
        }
    }

    /// The next chunk of at most `max` bytes (`None` at the end), hashed as it is produced.
    pub fn next_chunk(&mut self, max: usize) -> Option<Vec<u8>> {
        if self.remaining == 0 {
            return None;
        }
        let len = (max as u64).min(self.remaining) as usize;
        let mut chunk = vec![0u8; len];
        self.rng.fill(&mut chunk);
        self.remaining -= len as u64;
        self.produced += len as u64;
        self.hasher.update(&chunk);
        Some(chunk)
    }

    /// Refills `buffer` with the next chunk of at most `max` bytes, reusing its allocation;
    /// `false` at the end.
    pub fn next_into(&mut self, buffer: &mut Vec<u8>, max: usize) -> bool {
        if self.remaining == 0 {
            return false;
        }
        let len = (max as u64).min(self.remaining) as usize;
        buffer.resize(len, 0);
        self.rng.fill(buffer);
        self.remaining -= len as u64;
        self.produced += len as u64;
        self.hasher.update(&buffer[..]);
        true
    }

    /// Bytes produced so far.
    pub fn produced(&self) -> u64 {
        self.produced
    }

    /// The digest of everything produced so far.
    pub fn digest(&self) -> Digest256 {
        Digest256 {
            len: self.produced,
            sha256: self.hasher.clone().finalize().into(),
        }
    }
}

/// The digest of the first `len` bytes of the stream of `seed`, recomputed from scratch.
pub fn seeded_prefix_digest(seed: u64, len: u64) -> Digest256 {
    let mut stream = SeededStream::new(seed, len);
    while stream.next_chunk(MIB as usize).is_some() {}
    stream.digest()
}

/// Write sizes that vary (1 byte to ~1 MiB), so parts never line up with writes.
pub fn chunk_sizes(seed: u64) -> impl FnMut() -> usize {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed_c0de);
    move || match rng.u8(..) {
        0..=7 => rng.usize(1..4096),
        8..=127 => rng.usize(4096..256 * 1024),
        _ => rng.usize(256 * 1024..1024 * 1024 + 7),
    }
}

/// How a stream into a writer ended.
#[derive(Debug)]
pub struct Streamed {
    /// The digest of every byte handed to the writer (accepted or not).
    pub input: Digest256,
    /// The first error, from a write or from shutdown, recovered from the `io::Error`.
    pub result: Result<UploadOutcome, Error>,
}

/// Streams `len` seeded bytes into `writer` with varying write sizes, then shuts it down. The
/// first write error stops the stream; shutdown is still called, and must return the same
/// latched error (that also waits for the writer's abort to finish).
pub async fn stream_into(writer: &mut ObjectWriter, seed: u64, len: u64) -> Streamed {
    stream_into_with(writer, seed, len, |_, _| async {}).await
}

/// [`stream_into`], calling `between(writer_progress_bytes, &writer)` after every write, so a
/// test can act mid-stream (abort the upload, restart the server).
pub async fn stream_into_with<F, Fut>(
    writer: &mut ObjectWriter,
    seed: u64,
    len: u64,
    mut between: F,
) -> Streamed
where
    F: FnMut(u64, &ObjectWriter) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut stream = SeededStream::new(seed, len);
    let mut sizes = chunk_sizes(seed);
    let mut write_error = None;
    while let Some(chunk) = stream.next_chunk(sizes()) {
        if let Err(error) = writer.write_all(&chunk).await {
            write_error = Some(Error::from_io(error));
            break;
        }
        between(stream.produced(), writer).await;
    }
    let shutdown = writer.shutdown().await.map_err(Error::from_io);
    let result = match (write_error, shutdown) {
        (None, Ok(())) => Ok(writer
            .outcome()
            .cloned()
            .expect("a writer that shut down cleanly has an outcome")),
        (None, Err(error)) => Err(error),
        (Some(error), later) => {
            let later = later.expect_err("shutdown after a failed write must fail too");
            assert_eq!(
                later.kind(),
                error.kind(),
                "shutdown must return the latched error: first {error}, then {later}"
            );
            Err(error)
        }
    };
    Streamed {
        input: stream.digest(),
        result,
    }
}

/// Fast, seeded retries for tests: 8 attempts, 10-400 ms backoff, at most a minute in all.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy::new()
        .with_max_attempts(8)
        .with_base_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(400))
        .with_max_elapsed(Duration::from_secs(60))
        .with_seed(7)
}

/// A client of the server at `addr` signing with `credentials`, with [`fast_retries`].
pub fn client_for(addr: SocketAddr, credentials: &Credentials) -> Client {
    Client::builder()
        .with_endpoint(format!("http://{addr}"))
        .with_region(REGION)
        .with_credentials(credentials.clone())
        .with_retry_policy(fast_retries())
        .build()
        .expect("a client for the local server")
}

/// Reads `key` back with GET and hashes it: `Ok(None)` when the object does not exist.
///
/// # Errors
/// Any other failure of the GET or of reading its body.
pub async fn read_back(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Digest256>, Error> {
    let output = match client.get_object(bucket, key).await {
        Ok(output) => output,
        Err(error) if error.oss_code() == Some("NoSuchKey") => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut reader = output.body.into_async_read();
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; MIB as usize];
    let mut len = 0u64;
    loop {
        let n = reader.read(&mut buffer).await.map_err(Error::from_io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        len += n as u64;
    }
    Ok(Some(Digest256 {
        len,
        sha256: hasher.finalize().into(),
    }))
}

/// The unfinished uploads of `key` (exactly that key) in `bucket`.
pub async fn uploads_of(client: &Client, bucket: &str, key: &str) -> Vec<ListedUpload> {
    client
        .list_multipart_uploads(bucket, Some(key))
        .await
        .expect("ListMultipartUploads")
        .into_iter()
        .filter(|u| u.key == key)
        .collect()
}

// ----- process figures ------------------------------------------------------------------------

fn status_field_kib(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
}

/// The process's resident set size in bytes (`VmRSS`).
pub fn rss_bytes() -> u64 {
    status_field_kib("VmRSS:") * 1024
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Samples [`rss_bytes`] on a thread every few milliseconds and keeps the highest value.
#[derive(Debug)]
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling.
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_bytes()));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    /// The highest RSS seen so far.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed).max(rss_bytes())
    }

    /// Stops sampling and returns the highest RSS seen.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the sampler thread");
        }
        self.peak()
    }
}

/// Polls `read` until it returns `want` or `within` passes; returns the last value.
pub async fn settle<T: PartialEq + Copy>(want: T, within: Duration, read: impl Fn() -> T) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let value = read();
        if value == want || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ----- raw HTTP -------------------------------------------------------------------------------

/// A raw HTTP response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body (de-chunked when the answer was chunked).
    pub body: Bytes,
}

impl RawResponse {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an OSS error body, or the code in `x-oss-err`.
    pub fn oss_code(&self) -> String {
        osspipe::xml::parse_error_body(self.status, &self.body, &self.headers).code
    }
}

/// A request to send as raw bytes: the path goes on the wire exactly as given.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The request target exactly as sent, e.g. `/bucket/%2e%2e/x?uploads`.
    pub target: String,
    /// The headers (Host, Content-Length and Connection are added).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl RawRequest {
    /// A request for `target` without headers or body.
    pub fn new(method: &str, target: impl Into<String>) -> Self {
        Self {
            method: method.to_owned(),
            target: target.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    /// Signs the request in place for `bucket` and the *decoded* `key` and `query`, as the
    /// server will see them after routing, with `credentials` at `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn signed(
        mut self,
        version: SignatureVersion,
        credentials: &Credentials,
        bucket: Option<&str>,
        key: Option<&str>,
        query: &[(String, String)],
        now: SystemTime,
    ) -> Self {
        let params = SigningParams::new(version, credentials, REGION, now);
        sign::sign_headers(&params, &self.method, bucket, key, query, &mut self.headers)
            .expect("signing");
        self
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self, host: &str) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nhost: {host}\r\n",
            self.method, self.target
        );
        for (name, value) in &self.headers {
            out.push_str(name.as_str());
            out.push_str(": ");
            out.push_str(value.to_str().expect("ascii header"));
            out.push_str("\r\n");
        }
        out.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Sends it on a new connection to `addr` and reads the whole answer (bounded to 16 MiB,
    /// within 30 s).
    pub async fn send(&self, addr: SocketAddr) -> RawResponse {
        let exchange = async {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(&self.to_bytes(&addr.to_string()))
                .await
                .expect("send the request");
            let mut raw = Vec::new();
            stream
                .take(16 * MIB)
                .read_to_end(&mut raw)
                .await
                .expect("read the answer");
            parse_response(&raw, self.method == "HEAD")
        };
        tokio::time::timeout(Duration::from_secs(30), exchange)
            .await
            .expect("the server answers within 30 s")
    }
}

/// Parses one HTTP/1.1 response from `raw` (the whole connection's bytes).
pub fn parse_response(raw: &[u8], head_only: bool) -> RawResponse {
    let end = find(raw, b"\r\n\r\n").unwrap_or_else(|| {
        panic!(
            "no complete response head in {:?}",
            String::from_utf8_lossy(raw)
        )
    });
    let head = std::str::from_utf8(&raw[..end]).expect("ascii response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').expect("header line");
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let rest = &raw[end + 4..];
    let body = if head_only {
        Bytes::new()
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        Bytes::from(dechunk(rest))
    } else if let Some(len) = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        Bytes::copy_from_slice(&rest[..len.min(rest.len())])
    } else {
        Bytes::copy_from_slice(rest)
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(raw, b"\r\n") {
        let size_text = std::str::from_utf8(&raw[..line_end]).unwrap_or("0");
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        raw = &raw[line_end + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
    out
}

// ----- a scripted raw server ------------------------------------------------------------------

/// A request as the scripted server read it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// The request line, e.g. `POST /b/k?uploads HTTP/1.1`.
    pub line: String,
    /// The head's header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// How many body bytes came with it.
    pub body_len: usize,
}

impl SeenRequest {
    /// The method.
    pub fn method(&self) -> &str {
        self.line.split(' ').next().unwrap_or_default()
    }

    /// The request target.
    pub fn target(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or_default()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the scripted server sends back.
#[derive(Debug, Clone)]
pub enum Reply {
    /// These bytes (a whole response, or part of one), then close the connection.
    Raw(Vec<u8>),
    /// This head, then `chunk` over and over until the client goes away.
    Endless {
        /// Status line and headers, ending with the blank line.
        head: Vec<u8>,
        /// The body chunk repeated.
        chunk: Vec<u8>,
    },
    /// Close the connection without a byte.
    Close,
}

impl Reply {
    /// A complete response with `status`, extra header lines and `body`, then close.
    pub fn response(status: u16, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Self {
        let body = body.as_ref();
        let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Reply::Raw(bytes)
    }
}

type Script = dyn Fn(usize, &SeenRequest) -> Reply + Send + Sync;

/// A raw TCP server on `127.0.0.1:0` that reads each request (head and body) and answers with
/// whatever its script says. One request per connection.
pub struct ScriptedServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    count: Arc<AtomicUsize>,
    /// Bytes of body the endless replies managed to write.
    pub endless_bytes: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ScriptedServer {
    /// Starts a server answering with `script(request_index, request)`.
    pub async fn start(
        script: impl Fn(usize, &SeenRequest) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let endless_bytes = Arc::new(AtomicU64::new(0));
        let script: Arc<Script> = Arc::new(script);
        let task = {
            let (seen, count, endless_bytes) = (seen.clone(), count.clone(), endless_bytes.clone());
            tokio::spawn(async move {
                let mut connections = tokio::task::JoinSet::new();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (seen, count, endless_bytes, script) = (
                        seen.clone(),
                        count.clone(),
                        endless_bytes.clone(),
                        script.clone(),
                    );
                    connections.spawn(async move {
                        serve_one(stream, seen, count, endless_bytes, script).await;
                    });
                }
            })
        };
        Self {
            addr,
            seen,
            count,
            endless_bytes,
            task,
        }
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests read so far.
    pub fn requests(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// The requests read so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(
    mut stream: TcpStream,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    count: Arc<AtomicUsize>,
    endless_bytes: Arc<AtomicU64>,
    script: Arc<Script>,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let index = count.fetch_add(1, Ordering::SeqCst);
    seen.lock().unwrap().push(request.clone());
    match script(index, &request) {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Endless { head, chunk } => {
            if stream.write_all(&head).await.is_err() {
                return;
            }
            // At most 4 GiB, so a client that never stops reading cannot keep a test alive.
            for _ in 0..(4 * 1024 * MIB / chunk.len().max(1) as u64) {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
                endless_bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
        Reply::Close => {}
    }
}

/// Reads a request head and its body (Content-Length or chunked), bounded to 64 MiB.
async fn read_request(stream: &mut TcpStream) -> Option<SeenRequest> {
    let mut raw = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let head_end = loop {
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 || raw.len() > 1024 * 1024 {
            return None;
        }
        raw.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[head_end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let length: Option<usize> = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok());
    loop {
        let complete = if chunked {
            body.ends_with(b"0\r\n\r\n")
        } else {
            body.len() >= length.unwrap_or(0)
        };
        if complete || body.len() > 64 * MIB as usize {
            break;
        }
        let n = stream.read(&mut buffer).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buffer[..n]);
    }
    let body_len = if chunked {
        dechunk(&body).len()
    } else {
        body.len()
    };
    Some(SeenRequest {
        line,
        headers,
        body_len,
    })
}

/// Asserts that `error` is an OSS service error with `code` and a request id, and says so.
pub fn assert_service_error(error: &Error, status: u16, code: &str) {
    assert_eq!(error.kind(), ErrorKind::Service, "{error}");
    assert_eq!(error.status(), Some(status), "{error}");
    assert_eq!(error.oss_code(), Some(code), "{error}");
    assert!(
        error.request_id().is_some_and(|id| !id.is_empty()),
        "the error carries OSS's request id: {error}"
    );
    let text = error.to_string();
    assert!(text.contains(code), "the message names the code: {text}");
}

// ----- the built CLI --------------------------------------------------------------------------

/// Running the built `osspipe` binary (feature `cli`).
#[cfg(feature = "cli")]
pub mod cli {
    use std::ffi::OsStr;
    use std::path::Path;
    use std::process::Stdio;
    use std::time::Duration;

    /// Every environment variable the CLI reads, removed so the tests' own environment never
    /// leaks in.
    pub const CLI_ENV: &[&str] = &[
        "OSS_ACCESS_KEY_ID",
        "OSS_ACCESS_KEY_SECRET",
        "OSS_SESSION_TOKEN",
        "OSS_ENDPOINT",
        "OSS_REGION",
        "RUST_LOG",
    ];

    /// The path of the built binary.
    pub const OSSPIPE: &str = env!("CARGO_BIN_EXE_osspipe");

    /// `osspipe ARGS` in `dir`, with a clean environment, stdin closed, output captured, and
    /// killed when dropped.
    pub fn osspipe<I, S>(dir: &Path, args: I) -> tokio::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = tokio::process::Command::new(OSSPIPE);
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for name in CLI_ENV {
            command.env_remove(name);
        }
        command
    }

    /// What a finished command did.
    #[derive(Debug)]
    pub struct Ran {
        /// The exit code (`None` if killed by a signal).
        pub code: Option<i32>,
        /// Standard output.
        pub stdout: String,
        /// Standard error.
        pub stderr: String,
    }

    impl Ran {
        /// Stdout and stderr together, for messages.
        pub fn both(&self) -> String {
            format!("stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
        }
    }

    /// Runs `command` to completion (at most 60 s).
    pub async fn run(mut command: tokio::process::Command) -> Ran {
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .expect("osspipe finishes within 60 s")
            .expect("osspipe runs");
        Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// A free loopback port (bound, read and released; the small race is acceptable here).
    pub fn free_port() -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    /// An `osspipe serve --data DIR` child process on a free loopback port.
    #[derive(Debug)]
    pub struct Serve {
        child: tokio::process::Child,
        addr: std::net::SocketAddr,
    }

    impl Serve {
        /// Starts it with `credentials` and `buckets`, and waits until it accepts connections.
        pub async fn start(
            data: &Path,
            credentials: &osspipe::Credentials,
            buckets: &[&str],
        ) -> Self {
            Self::start_on(free_port(), data, credentials, buckets).await
        }

        /// [`Serve::start`] on a given address.
        pub async fn start_on(
            addr: std::net::SocketAddr,
            data: &Path,
            credentials: &osspipe::Credentials,
            buckets: &[&str],
        ) -> Self {
            let mut args: Vec<std::ffi::OsString> = vec![
                "serve".into(),
                "--data".into(),
                data.into(),
                "--addr".into(),
                addr.to_string().into(),
                "--access-key-id".into(),
                credentials.access_key_id().into(),
                "--access-key-secret".into(),
                credentials.access_key_secret().into(),
            ];
            for bucket in buckets {
                args.extend(["--bucket".into(), bucket.into()]);
            }
            let mut command = osspipe(data, args);
            command.stdout(Stdio::null()).stderr(Stdio::null());
            let child = command.spawn().expect("osspipe serve starts");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "osspipe serve never listened on {addr}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Self { child, addr }
        }

        /// Its address.
        pub fn addr(&self) -> std::net::SocketAddr {
            self.addr
        }

        /// Kills it with SIGKILL and waits for it.
        pub async fn kill(mut self) {
            self.child.start_kill().expect("SIGKILL osspipe serve");
            self.child.wait().await.expect("osspipe serve exits");
        }

        /// Stops it with SIGTERM (a graceful stop) and checks it exited 0, which it does only
        /// when it answered no request with an unexpected internal error.
        pub async fn stop(mut self) {
            let pid = self.child.id().expect("running") as i32;
            // `kill` from the shell: no libc dependency for one signal.
            let status = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .expect("kill -TERM");
            assert!(status.success());
            let exit = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
                .await
                .expect("osspipe serve stops within 20 s of SIGTERM")
                .unwrap();
            assert_eq!(
                exit.code(),
                Some(0),
                "osspipe serve reported unexpected internal errors or failed to stop"
            );
        }
    }
}
