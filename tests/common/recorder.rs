//! A loopback HTTP/1.1 server that records every request and answers from a script.
//!
//! It is written on a bare tokio `TcpListener` (no hyper) so that tests see exactly what went
//! over the wire: the raw request target, every header, the body. The script is a closure
//! called with each request and its 0-based index across the server's lifetime, so "fail the
//! first attempt, then succeed" is a one-liner. It can also stall (to exercise idle timeouts)
//! or drop the connection.
//!
//! A script that panics does not take the test down from inside a server task where nobody
//! would notice: the panic is recorded and [`Recorder::shutdown`] (or drop) fails the test.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The raw request target, `/bucket/a%20b?uploads`.
    pub target: String,
    /// The raw path (before `?`).
    pub path: String,
    /// The raw query (after `?`), empty if none.
    pub raw_query: String,
    /// Decoded query pairs in wire order; `k` and `k=` both give an empty value.
    pub query: Vec<(String, String)>,
    /// Every header.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Recorded {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A query parameter's decoded value.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path percent-decoded once (`+` stays `+`).
    pub fn decoded_path(&self) -> String {
        percent_decode(&self.path)
    }
}

/// Percent-decodes once, leaving `+` alone.
pub fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .expect("utf-8 after decoding")
        .into_owned()
}

/// What the server does with a request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send the reply.
    Respond,
    /// Send nothing and keep the connection open (until the server stops).
    Stall,
    /// Send the status line, headers and the first `n` bytes of the body, then stall.
    StallAfter(usize),
    /// Close the connection without answering.
    Close,
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Headers besides `Content-Length` (always sent) and the defaults `Date` and
    /// `x-oss-request-id` (sent unless given here).
    pub headers: Vec<(String, String)>,
    /// The body (not sent for HEAD; `Content-Length` still says its length).
    pub body: Vec<u8>,
    /// Respond, stall or close.
    pub action: Action,
}

impl Reply {
    /// `status` with no body.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            action: Action::Respond,
        }
    }

    /// `200 OK` with no body.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets an XML body and `Content-Type: application/xml`.
    pub fn xml(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("content-type", "application/xml").body(body)
    }

    /// An OSS error: status, `<Error>` body with `Code`, `Message`, `RequestId`, and `x-oss-ec`.
    pub fn error(status: u16, code: &str, message: &str) -> Self {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>{code}</Code>\n  \
             <Message>{message}</Message>\n  <RequestId>RID-{code}</RequestId>\n  \
             <HostId>127.0.0.1</HostId>\n  <EC>0000-00000000</EC>\n</Error>\n"
        );
        Self::status(status)
            .header("x-oss-request-id", format!("RID-{code}"))
            .header("x-oss-ec", "0000-00000000")
            .xml(body)
    }

    /// Stalls instead of answering.
    pub fn stall(mut self) -> Self {
        self.action = Action::Stall;
        self
    }

    /// Sends the head and `n` body bytes, then stalls.
    pub fn stall_after(mut self, n: usize) -> Self {
        self.action = Action::StallAfter(n);
        self
    }

    /// Closes the connection instead of answering.
    pub fn close(mut self) -> Self {
        self.action = Action::Close;
        self
    }
}

type Script = dyn Fn(&Recorded, usize) -> Reply + Send + Sync + 'static;

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    panic: Mutex<Option<String>>,
    script: Box<Script>,
}

/// The running server. Stop it with [`Recorder::shutdown`]; dropping it stops it too.
pub struct Recorder {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl Recorder {
    /// Starts a server on `127.0.0.1:0` answering with `script(request, index)`.
    pub async fn start(script: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            panic: Mutex::new(None),
            script: Box::new(script),
        });
        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in this set; aborting the accept task drops the set, which
            // aborts them all, so nothing outlives the server.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        connections.spawn(serve(stream, accept_shared.clone()));
                    }
                    Some(joined) = connections.join_next(), if !connections.is_empty() => {
                        if let Err(error) = joined {
                            if error.is_panic() {
                                let text = panic_text(error.into_panic());
                                *accept_shared.panic.lock().unwrap() = Some(text);
                            }
                        }
                    }
                }
            }
        });
        Self {
            addr,
            shared,
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Stops the server and fails the test if the script panicked.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(text) = self.shared.panic.lock().unwrap().take() {
            if !std::thread::panicking() {
                panic!("the recorder's script panicked: {text}");
            }
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop();
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "non-string panic".to_owned())
}

/// Serves one connection: requests one after another (keep-alive).
async fn serve(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        let index = {
            let mut requests = shared.requests.lock().unwrap();
            requests.push(request.clone());
            requests.len() - 1
        };
        let reply = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            (shared.script)(&request, index)
        })) {
            Ok(reply) => reply,
            Err(payload) => {
                *shared.panic.lock().unwrap() = Some(panic_text(payload));
                return;
            }
        };
        let head = response_head(&reply);
        let body: &[u8] = if request.method == "HEAD" {
            &[]
        } else {
            &reply.body
        };
        match reply.action {
            Action::Close => return,
            Action::Stall => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Action::StallAfter(n) => {
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body[..n.min(body.len())]).await;
                let _ = stream.flush().await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Action::Respond => {
                if stream.write_all(head.as_bytes()).await.is_err()
                    || stream.write_all(body).await.is_err()
                    || stream.flush().await.is_err()
                {
                    return;
                }
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

fn response_head(reply: &Reply) -> String {
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    let has = |name: &str| {
        reply
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if !has("date") {
        head.push_str(&format!(
            "Date: {}\r\n",
            httpdate::fmt_http_date(std::time::SystemTime::now())
        ));
    }
    if !has("x-oss-request-id") {
        head.push_str("x-oss-request-id: 5C3D9175B6FC201293ADAAAA\r\n");
    }
    head.push_str("Server: AliyunOSS\r\n");
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
    head
}

/// Reads one request; `None` when the connection closes cleanly or sends garbage.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Recorded> {
    let head_end = loop {
        if let Some(at) = find(buffer, b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).ok()?;
    buffer.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let mut headers = http::HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.append(
            http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
            http::HeaderValue::from_str(value.trim()).ok()?,
        );
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // The client under test always sends Content-Length; chunked bodies are not expected.
    assert!(
        !headers.contains_key("transfer-encoding"),
        "unexpected Transfer-Encoding: {:?}",
        headers.get("transfer-encoding")
    );
    while buffer.len() < length {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = Bytes::from(buffer.drain(..length).collect::<Vec<u8>>());
    let (path, raw_query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (target.clone(), String::new()),
    };
    let query = raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => (percent_decode(name), percent_decode(value)),
            None => (percent_decode(pair), String::new()),
        })
        .collect();
    Some(Recorded {
        method,
        target,
        path,
        raw_query,
        query,
        headers,
        body,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
