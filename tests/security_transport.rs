//! Transport security: HTTPS (rustls) by default with certificate checks on; plain HTTP only
//! when the endpoint says `http://`.
//!
//! - a client built from a bare host, a region, or an `https://` endpoint uses https;
//! - pointed at a plain-TCP server, it fails with a TLS error instead of falling back to plain
//!   HTTP, and what it sent was a TLS handshake, not a readable request;
//! - pointed at a TLS server with a self-signed certificate, it fails with a certificate error.

#[path = "common/reliability.rs"]
mod reliability;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use osspipe::client::Client;
use osspipe::retry::RetryPolicy;
use osspipe::target::ObjectOptions;
use osspipe::{Credentials, Error, ErrorKind};
use reliability::REGION;

/// A throwaway self-signed certificate for `localhost` and `127.0.0.1` (ECDSA P-256, made with
/// `openssl req -x509` for this test only; valid until 2126), DER in base64.
const SELF_SIGNED_CERT: &str = "MIIBmjCCAUGgAwIBAgIUbcdwHpQZmsA6UUewTj6ggAARb0QwCgYIKoZIzj0EAwIwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNTE0NTAyOVoYDzIxMjYxMTAxMTQ1MDI5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASExu7h6749bpEY/qlPIgEo1LbMB1rirmdmXFWK6nmi8JWBozmoxrMm3DHw60OkBKy1F2qeUAcQb+0dpcuFI32Co28wbTAdBgNVHQ4EFgQUQqs3MspF3F5kuVAT67iOW253ppUwHwYDVR0jBBgwFoAUQqs3MspF3F5kuVAT67iOW253ppUwDwYDVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZIzj0EAwIDRwAwRAIgYM4wDOJM772RapcdvvPoIf0dD+Vb9AWJqJ0fAg7IUgACIBcbYRhxAW/9KLnHIxNB8TD6BJUjjsXcuL8RA0vPln71";
/// Its private key, PKCS#8 DER in base64 (a test key: it protects nothing).
const SELF_SIGNED_KEY: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg95jpKMn06DFaXQuiX2Okv8juwpNWHpUHnySZqOD3vGyhRANCAASExu7h6749bpEY/qlPIgEo1LbMB1rirmdmXFWK6nmi8JWBozmoxrMm3DHw60OkBKy1F2qeUAcQb+0dpcuFI32C";

fn client(endpoint: &str) -> Client {
    Client::builder()
        .with_endpoint(endpoint)
        .with_region(REGION)
        .with_credentials(Credentials::new("LTAItransport", "transport-secret"))
        .with_retry_policy(RetryPolicy::no_retries())
        .with_connect_timeout(Duration::from_secs(5))
        .with_idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The error and its causes, lower-cased, in one string.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(" / ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.to_ascii_lowercase()
}

#[test]
fn https_is_the_default_and_http_must_be_asked_for() {
    let config = |endpoint: Option<&str>| {
        let mut builder = Client::builder()
            .with_region(REGION)
            .with_credentials(Credentials::new("id", "secret"));
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        builder.build_config()
    };
    for endpoint in [
        None,
        Some("oss-cn-hangzhou.aliyuncs.com"),
        Some("127.0.0.1:9000"),
        Some("localhost:9000"),
        Some("https://oss-cn-hangzhou.aliyuncs.com"),
        Some("https://127.0.0.1:9000"),
    ] {
        let config = config(endpoint).unwrap();
        assert_eq!(config.scheme(), "https", "{endpoint:?}");
        assert!(
            config.url("bucket", Some("key")).starts_with("https://"),
            "{endpoint:?}: {}",
            config.url("bucket", Some("key"))
        );
    }
    let plain = config(Some("http://127.0.0.1:9000")).unwrap();
    assert_eq!(plain.scheme(), "http");
    assert!(plain
        .url("bucket", Some("key"))
        .starts_with("http://127.0.0.1:9000/"));
    for bad in ["ftp://127.0.0.1:21", "file:///etc/passwd", "https://"] {
        let error = config(Some(bad)).expect_err(bad);
        assert_eq!(error.kind(), ErrorKind::Config, "{bad}: {error}");
    }
}

/// A blocking loopback server on its own thread, stopped (and joined) when dropped.
struct ThreadServer {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ThreadServer {
    /// Serves each connection with `handle`, one at a time.
    fn start(handle: impl Fn(std::net::TcpStream) + Send + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Non-blocking accepts, so the thread notices the stop flag.
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            stream
                                .set_read_timeout(Some(Duration::from_secs(5)))
                                .unwrap();
                            handle(stream);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ThreadServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A plain-TCP listener that records the first bytes of each connection and answers with a
/// readable HTTP response, as a misconfigured plain-HTTP server would.
fn plain_server() -> (ThreadServer, Arc<Mutex<Vec<Vec<u8>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = ThreadServer::start(move |mut stream| {
        let mut first = [0u8; 64];
        let n = stream.read(&mut first).unwrap_or(0);
        record.lock().unwrap().push(first[..n].to_vec());
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\netag: \"PLAIN\"\r\n\
              x-oss-request-id: PLAIN\r\nconnection: close\r\n\r\n",
        );
    });
    (server, seen)
}

#[tokio::test]
async fn a_bare_host_speaks_tls_and_refuses_a_plain_server() {
    let (server, seen) = plain_server();
    let client = client(&format!("127.0.0.1:{}", server.port));
    let error = client
        .put_object(
            "bucket",
            "secret-key-name",
            Bytes::from_static(b"secret payload"),
            &ObjectOptions::default(),
        )
        .await
        .expect_err("a plain-HTTP answer to a TLS client must fail");
    assert_eq!(error.kind(), ErrorKind::Network, "{error}");
    let text = chain(&error);
    assert!(
        [
            "tls",
            "ssl",
            "corrupt",
            "handshake",
            "invalidcontenttype",
            "record"
        ]
        .iter()
        .any(|w| text.contains(w)),
        "the error says it is a TLS failure: {text}"
    );
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty(), "the client connected");
    for first in seen.iter() {
        // 0x16 0x03: a TLS handshake record; no request line went out in clear.
        assert_eq!(
            &first[..2],
            &[0x16, 0x03],
            "not a TLS ClientHello: {first:?}"
        );
        assert!(!String::from_utf8_lossy(first).contains("PUT"));
    }
}

/// A TLS server with [`SELF_SIGNED_CERT`] that records how each handshake ended.
fn self_signed_server() -> (ThreadServer, Arc<Mutex<Vec<String>>>) {
    let engine = base64::engine::general_purpose::STANDARD;
    let cert = rustls::pki_types::CertificateDer::from(engine.decode(SELF_SIGNED_CERT).unwrap());
    let key =
        rustls::pki_types::PrivateKeyDer::Pkcs8(engine.decode(SELF_SIGNED_KEY).unwrap().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let config = Arc::new(config);
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let record = outcomes.clone();
    let server = ThreadServer::start(move |mut stream| {
        let mut connection = rustls::ServerConnection::new(config.clone()).unwrap();
        let mut outcome = String::from("handshake incomplete");
        while connection.is_handshaking() {
            if let Err(error) = connection.complete_io(&mut stream) {
                outcome = format!("handshake failed: {error}");
                break;
            }
        }
        if !connection.is_handshaking() {
            outcome = "handshake completed".to_owned();
            let mut tls = rustls::Stream::new(&mut connection, &mut stream);
            let _ = tls.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\netag: \"TLS\"\r\n\
                  connection: close\r\n\r\n",
            );
        }
        record.lock().unwrap().push(outcome);
    });
    (server, outcomes)
}

#[tokio::test]
async fn a_self_signed_certificate_is_refused() {
    let (server, outcomes) = self_signed_server();
    let port = server.port;
    for endpoint in [
        format!("https://127.0.0.1:{port}"),
        format!("https://localhost:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let error = client(&endpoint)
            .put_object(
                "bucket",
                "key",
                Bytes::from_static(b"payload"),
                &ObjectOptions::default(),
            )
            .await
            .expect_err("a certificate nobody vouches for must be refused");
        assert_eq!(error.kind(), ErrorKind::Network, "{endpoint}: {error}");
        let text = chain(&error);
        assert!(
            text.contains("certificate"),
            "{endpoint}: the error names the certificate problem: {text}"
        );
    }
    // Give the server thread a moment to record the last handshake.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let outcomes = outcomes.lock().unwrap();
    assert!(!outcomes.is_empty());
    assert!(
        outcomes.iter().all(|o| o != "handshake completed"),
        "no handshake may complete with an untrusted certificate: {outcomes:?}"
    );
}
