//! Test helpers for the local OSS server: start it, sign requests with `osspipe::sign` and send
//! them with reqwest (or as raw bytes over TCP when a URL library would "fix" the path), and
//! read OSS error bodies.
//!
//! [`Oss`] fails the test when it is dropped if the server answered a `500` that no fault rule
//! asked for, or a handler panicked (unless the test declared it expected them).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use osspipe::server::{LocalServer, ServerBuilder};
use osspipe::sign::{self, uri_encode, SignableRequest, SignatureVersion, SigningParams};
use osspipe::xml::ServiceError;
use osspipe::Credentials;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running server and an HTTP client pointed at it.
pub struct Oss {
    server: Option<LocalServer>,
    pub client: reqwest::Client,
    /// The signature version requests use unless told otherwise.
    pub version: SignatureVersion,
    expected_panics: u64,
    expected_unexpected_errors: u64,
}

impl Oss {
    /// Starts `builder` (it should listen on loopback, the default).
    pub async fn start(builder: ServerBuilder) -> Self {
        let server = builder.start().await.expect("the local server starts");
        Self {
            server: Some(server),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            version: SignatureVersion::V4,
            expected_panics: 0,
            expected_unexpected_errors: 0,
        }
    }

    /// A memory-store server with made-up credentials.
    pub async fn memory() -> Self {
        Self::start(LocalServer::builder().memory()).await
    }

    pub fn server(&self) -> &LocalServer {
        self.server.as_ref().unwrap()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server().addr()
    }

    pub fn credentials(&self) -> Credentials {
        self.server().credentials().clone()
    }

    /// The test expects this many panics (and as many 500s) in total.
    pub fn expect_panics(&mut self, panics: u64) {
        self.expected_panics = panics;
        self.expected_unexpected_errors = panics;
    }

    /// Checks the server's health counters now.
    pub fn assert_healthy(&self) {
        let server = self.server();
        assert_eq!(
            server.panics(),
            self.expected_panics,
            "handler panics on the local server"
        );
        assert_eq!(
            server.unexpected_errors(),
            self.expected_unexpected_errors,
            "unexpected 500 answers from the local server"
        );
    }

    /// Stops the server gracefully, checking its health first; returns nothing to reuse.
    pub async fn shutdown(mut self) {
        self.assert_healthy();
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// A request to `bucket` (and `key`), signed with the server's credentials.
    pub fn call(&self, method: &str, bucket: &str, key: Option<&str>) -> Call<'_> {
        Call {
            oss: self,
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            bucket: bucket.to_owned(),
            key: key.map(str::to_owned),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            signing: Signing::Signed {
                credentials: self.credentials(),
                version: self.version,
                at: None,
            },
            region: self.server().region().to_owned(),
        }
    }
}

impl Drop for Oss {
    fn drop(&mut self) {
        if self.server.is_some() && !std::thread::panicking() {
            self.assert_healthy();
        }
    }
}

/// How a [`Call`] is authenticated.
#[derive(Clone)]
pub enum Signing {
    Signed {
        credentials: Credentials,
        version: SignatureVersion,
        /// Sign as if the clock said this (for skew tests).
        at: Option<SystemTime>,
    },
    Anonymous,
}

/// Path-style URL with `uri_encode`d key and query, as the SDKs build them.
pub fn url(
    addr: SocketAddr,
    bucket: &str,
    key: Option<&str>,
    query: &[(String, String)],
) -> String {
    format!("http://{addr}{}", target(bucket, key, query))
}

/// The request target (path and query) of a path-style request.
pub fn target(bucket: &str, key: Option<&str>, query: &[(String, String)]) -> String {
    let mut out = format!("/{bucket}/");
    if let Some(key) = key {
        out.push_str(&uri_encode(key, true));
    }
    if !query.is_empty() {
        out.push('?');
        let pairs: Vec<String> = query
            .iter()
            .map(|(n, v)| {
                if v.is_empty() {
                    uri_encode(n, false)
                } else {
                    format!("{}={}", uri_encode(n, false), uri_encode(v, false))
                }
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// One request being built.
pub struct Call<'a> {
    oss: &'a Oss,
    pub method: Method,
    pub bucket: String,
    pub key: Option<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub signing: Signing,
    pub region: String,
}

impl Call<'_> {
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub fn version(mut self, version: SignatureVersion) -> Self {
        if let Signing::Signed { version: v, .. } = &mut self.signing {
            *v = version;
        }
        self
    }

    pub fn credentials(mut self, credentials: Credentials) -> Self {
        if let Signing::Signed { credentials: c, .. } = &mut self.signing {
            *c = credentials;
        }
        self
    }

    pub fn signed_at(mut self, at: SystemTime) -> Self {
        if let Signing::Signed { at: a, .. } = &mut self.signing {
            *a = Some(at);
        }
        self
    }

    pub fn anonymous(mut self) -> Self {
        self.signing = Signing::Anonymous;
        self
    }

    /// The headers after signing.
    pub fn signed_headers(&self) -> HeaderMap {
        let mut headers = self.headers.clone();
        if let Signing::Signed {
            credentials,
            version,
            at,
        } = &self.signing
        {
            let params = SigningParams::new(
                *version,
                credentials,
                &self.region,
                at.unwrap_or_else(SystemTime::now),
            );
            sign::sign_headers(
                &params,
                self.method.as_str(),
                Some(&self.bucket),
                self.key.as_deref(),
                &self.query,
                &mut headers,
            )
            .expect("signing works");
        }
        headers
    }

    pub fn url(&self) -> String {
        url(
            self.oss.addr(),
            &self.bucket,
            self.key.as_deref(),
            &self.query,
        )
    }

    /// A presigned URL for this request (its headers are not sent; sign none), valid for
    /// `expires_in` from its signing time.
    pub fn presigned_url(&self, expires_in: Duration) -> String {
        let Signing::Signed {
            credentials,
            version,
            at,
        } = &self.signing
        else {
            panic!("an anonymous request cannot be presigned");
        };
        let request = SignableRequest {
            method: self.method.as_str(),
            bucket: Some(&self.bucket),
            key: self.key.as_deref(),
            query: &self.query,
            headers: &self.headers,
        };
        let params = SigningParams::new(
            *version,
            credentials,
            &self.region,
            at.unwrap_or_else(SystemTime::now),
        );
        let mut all = self.query.clone();
        all.extend(sign::presign_query(&params, &request, expires_in).expect("presigning works"));
        url(self.oss.addr(), &self.bucket, self.key.as_deref(), &all)
    }

    pub async fn send(self) -> Reply {
        let headers = self.signed_headers();
        let response = self
            .oss
            .client
            .request(self.method.clone(), self.url())
            .headers(headers)
            .body(self.body.clone())
            .send()
            .await
            .expect("the request reaches the local server");
        Reply::from_reqwest(response).await
    }

    /// Sends with reqwest and returns the transport error, if any (for fault tests).
    pub async fn try_send(self) -> Result<Reply, reqwest::Error> {
        let headers = self.signed_headers();
        let response = self
            .oss
            .client
            .request(self.method.clone(), self.url())
            .headers(headers)
            .body(self.body.clone())
            .send()
            .await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Sends over a raw TCP connection with exactly `target` as the request target (no URL
    /// normalisation), signed for this call's bucket and key.
    pub async fn send_raw(self, target: &str) -> Reply {
        let headers = self.signed_headers();
        let mut head = format!(
            "{} {target} HTTP/1.1\r\nhost: {}\r\n",
            self.method,
            self.oss.addr()
        );
        for (name, value) in &headers {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
        if !headers.contains_key("content-length") && !headers.contains_key("transfer-encoding") {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        head.push_str("connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        raw(self.oss.addr(), &bytes).await
    }
}

/// Sends `request` as is on a new connection and reads the answer until the server closes.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server answers a raw request");
    parse_raw_response(&answer)
}

fn parse_raw_response(answer: &[u8]) -> Reply {
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&answer[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let body = Bytes::copy_from_slice(&answer[end + 4..]);
    Reply {
        status,
        headers,
        body,
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub async fn from_reqwest(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("the answer's body arrives");
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The OSS error, from the body or (HEAD) the `x-oss-err` header.
    pub fn error(&self) -> ServiceError {
        osspipe::xml::parse_error_body(self.status, &self.body, &self.headers)
    }

    /// Panics unless the answer is a success; returns it for chaining.
    pub fn ok(self) -> Self {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {}: {}",
            self.status,
            self.text()
        );
        self
    }

    /// Asserts an error answer with `status` and `code` and OSS's common headers.
    pub fn expect_error(&self, status: u16, code: &str) -> ServiceError {
        assert_eq!(self.status, status, "status of {}", self.text());
        assert_common_headers(self);
        let error = self.error();
        assert_eq!(error.code, code, "code of {}", self.text());
        assert_eq!(
            error.request_id,
            self.header("x-oss-request-id").unwrap(),
            "RequestId matches the header"
        );
        error
    }
}

/// `Date` (RFC 1123), `x-oss-request-id` (24 upper-case hex) and `Server: AliyunOSS`.
pub fn assert_common_headers(reply: &Reply) {
    let date = reply.header("date").expect("a Date header");
    assert!(
        sign::parse_rfc1123(date).is_some(),
        "Date {date:?} is RFC 1123"
    );
    let id = reply.header("x-oss-request-id").expect("a request id");
    assert_eq!(id.len(), 24, "request id {id:?}");
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
    assert_eq!(reply.header("server"), Some("AliyunOSS"));
}

/// Deterministic test bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64 * 31 + seed as u64 * 7 + (i as u64 >> 8)) as u8)
        .collect()
}

/// Quoted upper-case MD5 hex, as OSS writes ETags.
pub fn md5_etag(bytes: &[u8]) -> String {
    use md5::Digest;
    format!("\"{}\"", hex::encode_upper(md5::Md5::digest(bytes)))
}

/// Base64 MD5, as `Content-MD5` carries it.
pub fn content_md5(bytes: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes))
}

/// Starts a multipart upload and returns its id.
pub async fn initiate(oss: &Oss, bucket: &str, key: &str) -> String {
    let reply = oss
        .call("POST", bucket, Some(key))
        .query("uploads", "")
        .send()
        .await
        .ok();
    let result: osspipe::xml::InitiateMultipartUploadResult =
        osspipe::xml::from_xml(&reply.body).unwrap();
    result.upload_id
}

/// Uploads one part and returns its ETag.
pub async fn upload_part(
    oss: &Oss,
    bucket: &str,
    key: &str,
    upload_id: &str,
    n: u32,
    bytes: &[u8],
) -> String {
    let reply = oss
        .call("PUT", bucket, Some(key))
        .query("partNumber", &n.to_string())
        .query("uploadId", upload_id)
        .body(bytes.to_vec())
        .send()
        .await
        .ok();
    reply.header("etag").unwrap().to_owned()
}

/// The Complete body for `parts` (number, ETag).
pub fn complete_body(parts: &[(u32, String)]) -> String {
    let mut body = String::from("<CompleteMultipartUpload>");
    for (n, etag) in parts {
        body.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

/// Completes with an explicit list.
pub async fn complete(
    oss: &Oss,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[(u32, String)],
) -> Reply {
    oss.call("POST", bucket, Some(key))
        .query("uploadId", upload_id)
        .body(complete_body(parts))
        .send()
        .await
}

/// GETs an object's bytes (asserting success).
pub async fn get(oss: &Oss, bucket: &str, key: &str) -> Bytes {
    oss.call("GET", bucket, Some(key)).send().await.ok().body
}
