//! The HTTP side: the accept loop, one hyper connection per socket (HTTP/1.1, or HTTP/2 when
//! the client speaks it), and the per-request pipeline:
//!
//! ```text
//! route ─► authenticate ─► fault rules ─► handler ─► error body / drain ─► common headers
//! ```
//!
//! A handler that panics is caught here: the client gets `500 InternalError`, the panic is
//! logged and counted ([`super::LocalServer::panics`]), and the server keeps serving.

use std::convert::Infallible;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use futures::FutureExt;
use http::header::{HeaderValue, CONTENT_TYPE, HOST};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::auth::{self, AuthRequest};
use super::errors::OssError;
use super::faults::{BodyFault, FaultPlan};
use super::handlers::{self, Cx, Failure};
use super::request::{self, Route};
use super::Shared;
use crate::error::Operation;

/// The error type of response bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body: empty, a full XML document, or a stream of object bytes.
pub(crate) type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// HTTP/1 read buffer ceiling, and so the largest body chunk. 512 KiB fits a core's L2 cache
/// (1 MiB on the bench machine): the kernel's copy out of the socket, the CRC-64 and the store
/// each touch a chunk while it is still cached. A bare hyper server discarding bodies used
/// 0.15-0.24 CPU s/GiB with 512 KiB and 0.26-0.35 with 4 MiB.
const HTTP1_MAX_BUF_BYTES: usize = 512 * 1024;
/// HTTP/2 flow-control windows, sized so one stream can run at full speed on loopback.
const HTTP2_STREAM_WINDOW_BYTES: u32 = 8 * 1024 * 1024;
const HTTP2_CONNECTION_WINDOW_BYTES: u32 = 32 * 1024 * 1024;
/// An error answer reads and discards up to this much of an unread request body, so the
/// client (still sending) sees the answer rather than a reset.
const DRAIN_LIMIT_BYTES: u64 = 1024 * 1024 * 1024;
/// A request body that stalls this long is answered `400 RequestTimeout`, as OSS does (unless
/// [`super::ServerBuilder::body_idle_timeout`] says otherwise).
pub(crate) const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful shutdown waits for requests in flight.
const GRACEFUL_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn empty_response(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(
        Empty::new()
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

pub(crate) fn xml_response(status: StatusCode, xml: String) -> Response<ResponseBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(xml))
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    response
}

pub(crate) fn stream_response(
    status: StatusCode,
    stream: BoxStream<'static, io::Result<Bytes>>,
    fault: Option<BodyFault>,
) -> Response<ResponseBody> {
    let stream = match fault {
        Some(fault) => faulty_stream(stream, fault),
        None => stream,
    };
    let body = StreamBody::new(stream.map_ok(Frame::data).map_err(BoxError::from));
    let mut response = Response::new(BodyExt::boxed_unsync(body));
    *response.status_mut() = status;
    response
}

/// Applies a body fault to a response stream: the chunk that crosses the threshold is split,
/// then the stream stalls or fails (which makes hyper drop the connection).
fn faulty_stream(
    inner: BoxStream<'static, io::Result<Bytes>>,
    fault: BodyFault,
) -> BoxStream<'static, io::Result<Bytes>> {
    struct State {
        inner: BoxStream<'static, io::Result<Bytes>>,
        sent: u64,
        fired: bool,
        held: Option<Bytes>,
        done: bool,
    }
    let after = fault.after_bytes();
    let state = State {
        inner,
        sent: 0,
        fired: false,
        held: None,
        done: false,
    };
    stream::unfold(state, move |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if !st.fired && st.sent >= after {
                st.fired = true;
                match fault {
                    BodyFault::Stall { duration, .. } => tokio::time::sleep(duration).await,
                    BodyFault::Reset { .. } => {
                        st.done = true;
                        let error = io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            "connection reset by a fault rule",
                        );
                        return Some((Err(error), st));
                    }
                }
            }
            let chunk = match st.held.take() {
                Some(chunk) => chunk,
                None => match st.inner.next().await {
                    Some(Ok(chunk)) => chunk,
                    Some(Err(e)) => return Some((Err(e), st)),
                    None => return None,
                },
            };
            if !st.fired && st.sent + chunk.len() as u64 > after {
                let head = (after - st.sent) as usize;
                st.held = Some(chunk.slice(head..));
                if head == 0 {
                    continue;
                }
                st.sent += head as u64;
                return Some((Ok(chunk.slice(..head)), st));
            }
            st.sent += chunk.len() as u64;
            return Some((Ok(chunk), st));
        }
    })
    .boxed()
}

/// The request body wasn't read to its end.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The client broke off or sent a malformed body.
    Client,
    /// A fault rule reset the connection.
    Reset,
    /// The client sent nothing for the body idle timeout.
    Timeout,
}

/// The request body, read chunk by chunk, with an optional fault part-way through.
pub(crate) struct BodyReader {
    incoming: Incoming,
    idle_timeout: Duration,
    fault: Option<BodyFault>,
    received: u64,
    fault_fired: bool,
    held: Option<Bytes>,
    finished: bool,
}

impl BodyReader {
    fn new(incoming: Incoming, idle_timeout: Duration) -> Self {
        Self {
            incoming,
            idle_timeout,
            fault: None,
            received: 0,
            fault_fired: false,
            held: None,
            finished: false,
        }
    }

    /// The next non-empty chunk, `None` at the end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        loop {
            if let Some(fault) = self.fault {
                if !self.fault_fired && self.received >= fault.after_bytes() {
                    self.fault_fired = true;
                    match fault {
                        BodyFault::Stall { duration, .. } => tokio::time::sleep(duration).await,
                        BodyFault::Reset { .. } => return Err(BodyError::Reset),
                    }
                }
            }
            let chunk = match self.held.take() {
                Some(chunk) => chunk,
                None => {
                    if self.finished {
                        return Ok(None);
                    }
                    let frame = match tokio::time::timeout(self.idle_timeout, self.incoming.frame())
                        .await
                    {
                        Ok(frame) => frame,
                        Err(_) => {
                            // Nothing more will be read: do not drain, let hyper close.
                            self.finished = true;
                            return Err(BodyError::Timeout);
                        }
                    };
                    match frame {
                        None => {
                            self.finished = true;
                            return Ok(None);
                        }
                        Some(Err(e)) => {
                            self.finished = true;
                            tracing::debug!("request body broke off: {e}");
                            return Err(BodyError::Client);
                        }
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(data) if !data.is_empty() => data,
                            _ => continue,
                        },
                    }
                }
            };
            if let Some(fault) = self.fault {
                let after = fault.after_bytes();
                if !self.fault_fired && self.received + chunk.len() as u64 > after {
                    let head = (after - self.received) as usize;
                    self.held = Some(chunk.slice(head..));
                    if head == 0 {
                        continue;
                    }
                    self.received += head as u64;
                    return Ok(Some(chunk.slice(..head)));
                }
            }
            self.received += chunk.len() as u64;
            return Ok(Some(chunk));
        }
    }

    fn is_finished(&self) -> bool {
        self.finished || (self.held.is_none() && hyper::body::Body::is_end_stream(&self.incoming))
    }

    /// Reads and discards the rest (up to `limit` bytes), without faults. A body declared
    /// longer than `limit` is left alone (hyper closes the connection after the answer): the
    /// client may never send it, having asked for more than OSS allows.
    async fn drain(&mut self, limit: u64) {
        self.fault = None;
        let declared = hyper::body::Body::size_hint(&self.incoming).exact();
        if declared.is_some_and(|len| len > limit) {
            return;
        }
        let mut drained = 0u64;
        while drained < limit {
            match self.chunk().await {
                Ok(Some(chunk)) => drained += chunk.len() as u64,
                _ => break,
            }
        }
    }
}

/// The connection must be dropped without an answer.
#[derive(Debug)]
pub(crate) struct Disconnect;

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Disconnect {}

/// Accepts connections until `shutdown`, then lets requests in flight finish (up to a limit).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, shared.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("local oss server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(GRACEFUL_SHUTDOWN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("local oss server: aborting connections still busy after shutdown");
        connections.abort_all();
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, shutdown: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { handle(shared, request).await }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(HTTP1_MAX_BUF_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(HTTP2_STREAM_WINDOW_BYTES)
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW_BYTES);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("local oss server: connection ended: {e}");
    }
}

/// A fresh request id: 24 upper-case hex digits, like OSS's.
fn new_request_id() -> String {
    format!("{:024X}", fastrand::u128(..) >> 32)
}

fn host_of(request: &Request<Incoming>) -> String {
    request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}

/// One request, start to finish. Never fails except to drop the connection on purpose.
async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Disconnect> {
    let started = Instant::now();
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    let request_id = new_request_id();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let host = host_of(&request);
    let outcome = AssertUnwindSafe(process(&shared, request, &request_id, &host))
        .catch_unwind()
        .await;
    let mut response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(Disconnect)) => {
            tracing::debug!(request_id, "{method} {uri}: connection dropped");
            return Err(Disconnect);
        }
        Err(panic) => {
            shared.stats.panics.fetch_add(1, Ordering::Relaxed);
            let message = panic_message(panic.as_ref());
            tracing::error!(
                request_id,
                "local oss server: handler panicked on {method} {uri}: {message}"
            );
            let error = OssError::internal(format!("handler panicked: {message}"));
            error_response(&shared, &error, &request_id, &host, method == Method::HEAD)
        }
    };
    let headers = response.headers_mut();
    headers.insert("server", HeaderValue::from_static("AliyunOSS"));
    if let Ok(date) = HeaderValue::from_str(&crate::sign::format_rfc1123(SystemTime::now())) {
        headers.insert("date", date);
    }
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        headers.insert("x-oss-request-id", id);
    }
    let elapsed = started.elapsed().as_millis();
    if let Ok(time) = HeaderValue::from_str(&elapsed.to_string()) {
        headers.insert("x-oss-server-time", time);
    }
    tracing::debug!(
        request_id,
        "{method} {uri} -> {} in {elapsed} ms",
        response.status()
    );
    Ok(response)
}

/// The error answer: XML body, or for HEAD no body and the XML in `x-oss-err`.
fn error_response(
    shared: &Shared,
    error: &OssError,
    request_id: &str,
    host: &str,
    head: bool,
) -> Response<ResponseBody> {
    if error.internal {
        shared.stats.internal_errors.fetch_add(1, Ordering::Relaxed);
    }
    let service = error.to_service_error(request_id, host);
    let mut response = if head {
        let mut response = empty_response(error.status);
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        if let Ok(encoded) = HeaderValue::from_str(&crate::xml::encode_oss_err(&service)) {
            response.headers_mut().insert("x-oss-err", encoded);
        }
        response
    } else {
        xml_response(error.status, crate::xml::error_to_xml(&service))
    };
    if !error.ec.is_empty() {
        if let Ok(ec) = HeaderValue::from_str(error.ec) {
            response.headers_mut().insert("x-oss-ec", ec);
        }
    }
    response
}

async fn process(
    shared: &Shared,
    request: Request<Incoming>,
    request_id: &str,
    host: &str,
) -> Result<Response<ResponseBody>, Disconnect> {
    let (parts, incoming) = request.into_parts();
    let mut body = BodyReader::new(incoming, shared.body_idle_timeout);
    let head = parts.method == Method::HEAD;
    let mut plan = FaultPlan::default();
    let result = match route_and_authenticate(shared, &parts, host) {
        Err(error) => Err(Failure::Oss(error)),
        Ok(route) => {
            plan = shared.faults.plan(route.operation, route.part_number);
            run(shared, &route, &parts, host, &mut body, &plan).await
        }
    };
    let mut response = match result {
        Ok(response) => response,
        Err(Failure::Disconnect) => return Err(Disconnect),
        Err(Failure::Oss(error)) => error_response(shared, &error, request_id, host, head),
    };
    if !body.is_finished() {
        body.drain(DRAIN_LIMIT_BYTES).await;
    }
    if plan.wrong_crc {
        let headers = response.headers_mut();
        let wrong = headers
            .get("x-oss-hash-crc64ecma")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|crc| crc ^ 0x5A5A);
        if let Some(wrong) = wrong.and_then(|w| HeaderValue::from_str(&w.to_string()).ok()) {
            headers.insert("x-oss-hash-crc64ecma", wrong);
        }
    }
    if plan.lose_response {
        return Err(Disconnect);
    }
    Ok(response)
}

fn route_and_authenticate(
    shared: &Shared,
    parts: &http::request::Parts,
    host: &str,
) -> Result<Route, OssError> {
    let mut route = request::route(
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        host,
        shared.virtual_host.as_deref(),
        parts.headers.contains_key("x-oss-copy-source"),
    )?;
    auth::authenticate(
        &shared.keyring,
        &shared.region,
        &AuthRequest {
            method: parts.method.as_str(),
            bucket: &route.bucket,
            key: route.key.as_deref(),
            query: &route.query.pairs,
            headers: &parts.headers,
        },
        SystemTime::now(),
    )?;
    if route.operation == Operation::UploadPart {
        route.part_number = Some(request::parse_part_number(&route.query)?);
    }
    Ok(route)
}

async fn run(
    shared: &Shared,
    route: &Route,
    parts: &http::request::Parts,
    host: &str,
    body: &mut BodyReader,
    plan: &FaultPlan,
) -> Result<Response<ResponseBody>, Failure> {
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    if plan.panic {
        panic!("panic injected by a fault rule");
    }
    if plan.skew {
        return Err(OssError::request_time_too_skewed().into());
    }
    if let Some((status, code)) = &plan.fail {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Err(OssError::injected(status, code, None).into());
    }
    let response_fault = if route.operation == Operation::GetObject {
        plan.body
    } else {
        body.fault = plan.body;
        None
    };
    let cx = Cx {
        shared,
        route,
        headers: &parts.headers,
        host,
        version: parts.version,
        response_fault,
    };
    handlers::dispatch(&cx, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(stream: BoxStream<'static, io::Result<Bytes>>) -> (Vec<u8>, bool) {
        let items: Vec<io::Result<Bytes>> = stream.collect().await;
        let failed = items.iter().any(|i| i.is_err());
        let bytes = items
            .into_iter()
            .filter_map(|i| i.ok())
            .flat_map(|b| b.to_vec())
            .collect();
        (bytes, failed)
    }

    fn chunks() -> BoxStream<'static, io::Result<Bytes>> {
        stream::iter((0..4u8).map(|i| Ok(Bytes::from(vec![i; 10])))).boxed()
    }

    #[tokio::test]
    async fn response_reset_cuts_the_stream_at_the_byte() {
        let (bytes, failed) = collect(faulty_stream(
            chunks(),
            BodyFault::Reset { after_bytes: 15 },
        ))
        .await;
        assert_eq!(bytes.len(), 15);
        assert!(failed);
        let (bytes, failed) =
            collect(faulty_stream(chunks(), BodyFault::Reset { after_bytes: 0 })).await;
        assert!(bytes.is_empty());
        assert!(failed);
    }

    #[tokio::test(start_paused = true)]
    async fn response_stall_delays_and_then_delivers_everything() {
        let start = tokio::time::Instant::now();
        let fault = BodyFault::Stall {
            after_bytes: 25,
            duration: Duration::from_secs(3),
        };
        let (bytes, failed) = collect(faulty_stream(chunks(), fault)).await;
        assert_eq!(bytes.len(), 40);
        assert!(!failed);
        assert!(start.elapsed() >= Duration::from_secs(3));
    }

    #[test]
    fn request_ids_look_like_oss() {
        let id = new_request_id();
        assert_eq!(id.len(), 24);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
    }
}
