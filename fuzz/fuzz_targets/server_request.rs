//! The local server's front end over real HTTP: request-line, path and query parsing, routing,
//! `Host` (virtual-hosted) handling, `Authorization` header and presigned-query parsing, and,
//! for requests the fuzzer chooses to sign correctly, the handlers themselves (including an
//! upload that really exists, so UploadPart, ListParts and Complete get past `NoSuchUpload`).
//!
//! One server runs for the whole fuzzing session on its own runtime; each input becomes one
//! request on a kept-alive connection. The server must answer every request within 5 s with a
//! well-formed HTTP response, and must never panic or answer an unexpected 500
//! (`LocalServer::panics` and `unexpected_errors` stay 0).
#![no_main]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use osspipe::server::LocalServer;
use osspipe::sign::{self, uri_encode, SignatureVersion, SigningParams};
use osspipe::Credentials;

const BUCKET: &str = "fuzz-bucket";
const KEY: &str = "fuzz/key";
const REGION: &str = "cn-hangzhou";
/// How long the server may take to answer one request.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

struct Fixture {
    server: LocalServer,
    /// The live upload; replaced when an input completes or aborts it.
    upload_id: Mutex<String>,
    connection: Mutex<Option<TcpStream>>,
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        self.server.addr()
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = Box::leak(Box::new(
            // osspipe's own dependency on tokio enables the multi-threaded runtime and drivers.
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime"),
        ));
        let server = runtime.block_on(async {
            LocalServer::builder()
                .memory()
                .bucket(BUCKET)
                .auto_create_buckets(false)
                .start()
                .await
                .expect("the local server starts")
        });
        let upload_id = initiate(&server);
        Fixture {
            server,
            upload_id: Mutex::new(upload_id),
            connection: Mutex::new(None),
        }
    })
}

/// Starts an upload of [`KEY`] that exists, for UploadPart, ListParts, Complete and Abort.
fn initiate(server: &LocalServer) -> String {
    let query = vec![("uploads".to_owned(), String::new())];
    let mut headers = HeaderMap::new();
    sign_into(
        &mut headers,
        SignatureVersion::V4,
        server.credentials(),
        "POST",
        Some(BUCKET),
        Some(KEY),
        &query,
        SystemTime::now(),
    );
    let answer = exchange_once(
        server.addr(),
        &request_bytes(
            "POST",
            &format!("/{BUCKET}/{KEY}?uploads"),
            &headers,
            &[],
            None,
        ),
    );
    let text = String::from_utf8_lossy(&answer);
    text.split("<UploadId>")
        .nth(1)
        .and_then(|rest| rest.split("</UploadId>").next())
        .unwrap_or_else(|| panic!("Initiate failed: {text}"))
        .to_owned()
}

#[derive(Debug, Arbitrary)]
enum Method {
    Get,
    Put,
    Post,
    Delete,
    Head,
    Options,
    Other(String),
}

impl Method {
    fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Other(m) => m,
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Bucket {
    Known,
    Other(String),
    None,
}

#[derive(Debug, Arbitrary)]
enum Key {
    Known,
    Other(String),
    None,
}

/// Query names the server gives meaning to, and anything else.
const QUERY_NAMES: &[&str] = &[
    "uploads",
    "uploadId",
    "partNumber",
    "list-type",
    "prefix",
    "delimiter",
    "max-parts",
    "max-uploads",
    "max-keys",
    "part-number-marker",
    "key-marker",
    "upload-id-marker",
    "continuation-token",
    "start-after",
    "encoding-type",
    "acl",
    "objectMeta",
    "x-oss-signature",
    "x-oss-credential",
    "x-oss-date",
    "x-oss-expires",
    "x-oss-signature-version",
    "OSSAccessKeyId",
    "Expires",
    "Signature",
    "security-token",
];

#[derive(Debug, Arbitrary)]
enum QueryValue {
    KnownUploadId,
    Number(u32),
    Text(String),
    Empty,
}

#[derive(Debug, Arbitrary)]
enum Host {
    Address,
    VirtualHosted,
    Aliyun,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Authorization {
    /// Signed correctly by the signer the client uses.
    Signed {
        v1: bool,
        skew_seconds: i16,
    },
    /// A V4 header assembled from arbitrary parts.
    V4Parts {
        credential: String,
        additional: String,
        signature: String,
    },
    /// A V1 header from arbitrary parts.
    V1Parts {
        id: String,
        signature: String,
    },
    /// Any text at all.
    Raw(String),
    None,
}

#[derive(Debug, Arbitrary)]
enum Body {
    Bytes(Vec<u8>),
    /// A CompleteMultipartUpload document over arbitrary part numbers and ETags.
    Complete(Vec<(u16, String)>),
}

#[derive(Debug, Arbitrary)]
struct Input {
    method: Method,
    bucket: Bucket,
    key: Key,
    /// Send the path segments as given (dot segments, `%`, `//`) instead of encoding them.
    raw_path: Option<String>,
    query: Vec<(u8, Option<String>, QueryValue)>,
    host: Host,
    headers: Vec<(String, String)>,
    authorization: Authorization,
    body: Body,
}

#[allow(clippy::too_many_arguments)]
fn sign_into(
    headers: &mut HeaderMap,
    version: SignatureVersion,
    credentials: &Credentials,
    method: &str,
    bucket: Option<&str>,
    key: Option<&str>,
    query: &[(String, String)],
    at: SystemTime,
) {
    let params = SigningParams::new(version, credentials, REGION, at);
    // A request the signer refuses (e.g. a method that is not a token) stays unsigned.
    let _ = sign::sign_headers(&params, method, bucket, key, query, headers);
}

fn request_bytes(
    method: &str,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
    host: Option<&str>,
) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    if let Some(host) = host {
        out.extend_from_slice(format!("host: {host}\r\n").as_bytes());
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// Sends one request on a new connection and reads the answer to the end (setup only).
fn exchange_once(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(ANSWER_WITHIN)).unwrap();
    let mut request = request.to_vec();
    // Ask the server to close, so the answer ends at EOF.
    let at = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a request head");
    request.splice(at + 2..at + 2, b"connection: close\r\n".iter().copied());
    stream.write_all(&request).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// Reads one byte; `None` at the end of the stream. libFuzzer's timers interrupt blocking reads
/// (EINTR), which is not a timeout: read again.
fn read_byte(stream: &mut TcpStream) -> std::io::Result<Option<u8>> {
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(byte[0])),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
}

/// Reads one HTTP/1.1 response from `stream`; returns (status, keep the connection).
fn read_response(stream: &mut TcpStream, head_request: bool) -> (u16, bool) {
    let mut raw = Vec::new();
    while !raw.ends_with(b"\r\n\r\n") {
        match read_byte(stream) {
            Ok(Some(byte)) => raw.push(byte),
            Ok(None) if raw.is_empty() => return (0, false),
            Ok(None) => panic!(
                "the server closed mid-head: {:?}",
                String::from_utf8_lossy(&raw)
            ),
            Err(error) => panic!("the server did not answer within {ANSWER_WITHIN:?}: {error}"),
        }
        assert!(raw.len() < 64 * 1024, "a response head over 64 KiB");
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 response: {head:?}"));
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    let close = header("connection").is_some_and(|v| v == "close");
    if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        return (status, !close);
    }
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        // Read chunks until the last one.
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                match read_byte(stream) {
                    Ok(Some(byte)) => line.push(byte),
                    _ => return (status, false),
                }
            }
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&line)
                    .trim()
                    .split(';')
                    .next()
                    .unwrap_or(""),
                16,
            )
            .unwrap_or_else(|_| panic!("a bad chunk size line {line:?}"));
            let mut chunk = vec![0u8; size + 2];
            if stream.read_exact(&mut chunk).is_err() {
                return (status, false);
            }
            if size == 0 {
                return (status, !close);
            }
        }
    }
    match header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(length) => {
            let mut body = vec![0u8; length];
            if stream.read_exact(&mut body).is_err() {
                return (status, false);
            }
            (status, !close)
        }
        None => {
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
            (status, false)
        }
    }
}

fn header_allowed(name: &HeaderName) -> bool {
    // Framing and connection management stay ours, so a request is always well delimited.
    !matches!(
        name.as_str(),
        "content-length"
            | "transfer-encoding"
            | "connection"
            | "host"
            | "expect"
            | "upgrade"
            | "te"
            | "trailer"
    )
}

fuzz_target!(|input: Input| {
    let fixture = fixture();
    let credentials = fixture.server.credentials().clone();
    let method = input.method.as_str();
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return;
    }
    let bucket = match &input.bucket {
        Bucket::Known => Some(BUCKET.to_owned()),
        Bucket::Other(name) => Some(name.clone()),
        Bucket::None => None,
    };
    let key = match &input.key {
        Key::Known => Some(KEY.to_owned()),
        Key::Other(key) if !key.is_empty() => Some(key.clone()),
        _ => None,
    };
    let query: Vec<(String, String)> = input
        .query
        .iter()
        .map(|(index, other, value)| {
            let name = match other {
                Some(name) if !name.is_empty() => name.clone(),
                _ => QUERY_NAMES[*index as usize % QUERY_NAMES.len()].to_owned(),
            };
            let value = match value {
                QueryValue::KnownUploadId => fixture.upload_id.lock().unwrap().clone(),
                QueryValue::Number(n) => n.to_string(),
                QueryValue::Text(text) => text.clone(),
                QueryValue::Empty => String::new(),
            };
            (name, value)
        })
        .collect();

    // The request target: encoded as a client would, or raw path text (request-line safe).
    let path = match &input.raw_path {
        Some(raw) => {
            if !raw
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
            {
                return;
            }
            format!("/{raw}")
        }
        None => {
            let mut path = String::from("/");
            if let Some(bucket) = &bucket {
                path.push_str(&uri_encode(bucket, false));
                path.push('/');
                if let Some(key) = &key {
                    path.push_str(&uri_encode(key, true));
                }
            }
            path
        }
    };
    let mut target = path;
    for (i, (name, value)) in query.iter().enumerate() {
        target.push(if i == 0 { '?' } else { '&' });
        target.push_str(&uri_encode(name, false));
        if !value.is_empty() {
            target.push('=');
            target.push_str(&uri_encode(value, false));
        }
    }

    let body: Vec<u8> = match &input.body {
        Body::Bytes(bytes) => bytes.clone(),
        Body::Complete(parts) => {
            let mut doc = String::from("<CompleteMultipartUpload>");
            for (number, etag) in parts {
                doc.push_str(&format!(
                    "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
                    etag.replace('&', "&amp;").replace('<', "&lt;")
                ));
            }
            doc.push_str("</CompleteMultipartUpload>");
            doc.into_bytes()
        }
    };

    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            if header_allowed(&name) {
                headers.append(name, value);
            }
        }
    }
    let host = match &input.host {
        Host::Address => fixture.addr().to_string(),
        Host::VirtualHosted => format!("{BUCKET}.localhost:{}", fixture.addr().port()),
        Host::Aliyun => format!("{BUCKET}.oss-cn-hangzhou.aliyuncs.com"),
        Host::Other(host) if HeaderValue::from_str(host).is_ok() => host.clone(),
        Host::Other(_) => fixture.addr().to_string(),
    };
    match &input.authorization {
        Authorization::Signed { v1, skew_seconds } => {
            let version = if *v1 {
                SignatureVersion::V1
            } else {
                SignatureVersion::V4
            };
            let skew = Duration::from_secs(u64::from(skew_seconds.unsigned_abs()));
            let at = if *skew_seconds < 0 {
                SystemTime::now() - skew
            } else {
                SystemTime::now() + skew
            };
            // Sign what the server will route: the decoded bucket and key of an encoded path.
            let (bucket, key) = match &input.raw_path {
                None => (bucket.as_deref(), key.as_deref()),
                Some(_) => (Some(BUCKET), Some(KEY)),
            };
            sign_into(
                &mut headers,
                version,
                &credentials,
                method,
                bucket,
                key,
                &query,
                at,
            );
        }
        Authorization::V4Parts {
            credential,
            additional,
            signature,
        } => {
            let value = format!(
                "OSS4-HMAC-SHA256 Credential={credential},AdditionalHeaders={additional},Signature={signature}"
            );
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert("authorization", value);
            }
        }
        Authorization::V1Parts { id, signature } => {
            if let Ok(value) = HeaderValue::from_str(&format!("OSS {id}:{signature}")) {
                headers.insert("authorization", value);
            }
        }
        Authorization::Raw(text) => {
            if let Ok(value) = HeaderValue::from_str(text) {
                headers.insert("authorization", value);
            }
        }
        Authorization::None => {}
    }
    let request = request_bytes(method, &target, &headers, &body, Some(&host));
    let mut slot = fixture.connection.lock().unwrap();
    // A kept-alive connection the server has closed meanwhile answers nothing: send once more
    // on a new one.
    let mut status = 0;
    for _ in 0..2 {
        let stream = match slot.as_mut() {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(fixture.addr()).expect("connect");
                stream.set_read_timeout(Some(ANSWER_WITHIN)).unwrap();
                stream.set_nodelay(true).unwrap();
                slot.insert(stream)
            }
        };
        if stream.write_all(&request).is_err() {
            // The server answered early and closed (e.g. refused the head): nothing to read.
            *slot = None;
            break;
        }
        let (answered, keep) = read_response(stream, method == "HEAD");
        status = answered;
        if !keep || answered == 0 {
            *slot = None;
        }
        if answered != 0 {
            break;
        }
    }
    // A Complete or an Abort of the live upload ends it: start another.
    let live = fixture.upload_id.lock().unwrap().clone();
    if status / 100 == 2
        && (method == "POST" || method == "DELETE")
        && query.iter().any(|(_, value)| *value == live)
    {
        *fixture.upload_id.lock().unwrap() = initiate(&fixture.server);
    }
    if std::env::var_os("OSSPIPE_FUZZ_SHOW_STATUS").is_some() {
        // For checking by hand that the fuzzer gets past authentication: `sort | uniq -c`.
        eprintln!("status {status} {method} {target}");
    }
    let server = &fixture.server;
    assert_eq!(
        server.panics(),
        0,
        "a handler panicked on {method} {target}"
    );
    assert_eq!(
        server.unexpected_errors(),
        0,
        "the server answered an unexpected 500 to {method} {target} (status {status})"
    );
});
