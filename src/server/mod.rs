//! The local OSS-compatible server (feature `server`).
//!
//! A faithful stand-in for Alibaba Cloud OSS's object and multipart API, for tests, benchmarks
//! and the CLI's embedded default (`osspipe serve`). It speaks HTTP/1.1 (and HTTP/2 with prior
//! knowledge), checks V1 and V4 signatures (headers and presigned URLs, STS tokens, clock skew)
//! with the same builders the client signs with, and answers with OSS's exact error codes,
//! messages and `EC`s (`oss-errors.md`).
//!
//! ```no_run
//! # async fn demo() -> osspipe::Result<()> {
//! use osspipe::server::LocalServer;
//!
//! let server = LocalServer::builder().memory().bucket("demo").start().await?;
//! println!("endpoint {} key id {}", server.endpoint(), server.credentials().access_key_id());
//! // ... point a client at server.endpoint() with server.credentials() ...
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Operations
//! PutObject, GetObject (with `Range`), HeadObject, DeleteObject, InitiateMultipartUpload,
//! UploadPart, CompleteMultipartUpload (explicit list or `x-oss-complete-all: yes`),
//! AbortMultipartUpload, ListParts, ListMultipartUploads, ListObjects v2 (`list-type=2`) and
//! PutBucket; `encoding-type=url` on the listings. Anything else answers `NotImplemented`.
//!
//! # Addressing
//! Path-style (`http://127.0.0.1:PORT/<bucket>/<key>`, what clients use for IP endpoints) and
//! virtual-hosted (`Host: <bucket>.<endpoint>` where the endpoint is `localhost`, any
//! `*.aliyuncs.com` name, or the name given to [`ServerBuilder::virtual_host`]).
//!
//! # Buckets
//! Buckets are created by [`ServerBuilder::bucket`], by PutBucket, and by default also on
//! first use: any authenticated request to a missing (validly named) bucket creates it, so the
//! CLI's embedded server works with whatever bucket the user names. Turn that off with
//! [`ServerBuilder::auto_create_buckets`]`(false)` to get `NoSuchBucket`.
//!
//! # Stores
//! - [`ServerBuilder::memory`] (the default): everything in memory. Bodies are copied (with
//!   streaming stores, bypassing the cache) into pooled, page-aligned 1 MiB blocks, so hyper
//!   reuses one cached read buffer per connection and a server that stores and deletes objects
//!   over and over keeps reusing warm memory (the pool keeps at most 4 GiB of free blocks);
//!   Complete links the parts' blocks, copying nothing.
//! - [`ServerBuilder::directory`]: a bucket is a folder of the data directory. Objects, their
//!   metadata and in-progress uploads with their parts survive a restart. Keys never become
//!   paths (they are hashed into file names), so no key reaches outside the directory. Objects
//!   appear atomically (data first, then a renamed record); Complete keeps the part files as
//!   the object's pieces instead of copying them. The layout is described in `store/disk.rs`.
//!
//! # ETags
//! [`EtagMode::Md5`] (the default) gives OSS's ETags: the quoted upper-case MD5 of a PutObject
//! body or part, and `"<hex>-<N>"` for a multipart object (the MD5 of the parts' binary MD5s,
//! then the part count). MD5 costs about 0.5 GiB/s per core, so benchmarks can choose
//! [`EtagMode::Opaque`]: ETags of the same shape built from the CRC-64 and a random number,
//! not an MD5 of anything. `Content-MD5` is still verified when a request sends it (and then
//! the ETag is that MD5 after all). CRC-64 (`x-oss-hash-crc64ecma`) is always computed.
//!
//! # Faults
//! [`Faults`] scripts failures (error statuses, stalls, resets, wrong CRCs, lost responses,
//! clock skew); [`faults`] documents the rule syntax that `osspipe serve
//! --fault` reads.
//!
//! # Failures of the server itself
//! A handler that panics, or an I/O error in the store, answers `500 InternalError`, is logged
//! with `tracing`, and is counted: tests should assert that
//! [`LocalServer::unexpected_errors`] is 0 when they are done.

mod auth;
mod errors;
pub mod faults;
mod handlers;
mod request;
mod service;
mod store;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::faults::{FaultAction, FaultId, FaultRule, Faults, ParseFaultError};
use crate::credentials::Credentials;
use crate::error::{Error, ErrorKind, Result};

/// The region a server signs for unless told otherwise.
pub const DEFAULT_REGION: &str = "cn-hangzhou";

/// Length of a made-up access key id, after its `LTAI` prefix.
const MADE_UP_KEY_ID_LEN: usize = 20;
/// Length of a made-up access key secret.
const MADE_UP_SECRET_LEN: usize = 30;

/// How ETags are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EtagMode {
    /// OSS's ETags: MD5 of bodies and parts, `"<hex>-<N>"` for multipart objects.
    #[default]
    Md5,
    /// Cheap ETags of the same shape that are not MD5s (for benchmarks; see the module docs).
    Opaque,
}

#[derive(Debug, Clone)]
enum StoreKind {
    Memory,
    Directory(PathBuf),
}

/// Counters a test can check when it is done.
#[derive(Debug, Default)]
struct Stats {
    requests: AtomicU64,
    panics: AtomicU64,
    internal_errors: AtomicU64,
}

/// What every request handler shares.
#[derive(Debug)]
struct Shared {
    store: store::Store,
    keyring: auth::Keyring,
    region: String,
    etag_mode: EtagMode,
    faults: Faults,
    virtual_host: Option<String>,
    body_idle_timeout: Duration,
    stats: Stats,
}

/// Configures and starts a [`LocalServer`]. Setters take and return the builder by value and
/// cannot fail; [`ServerBuilder::start`] checks everything.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    store: StoreKind,
    addr: SocketAddr,
    credentials: Option<Credentials>,
    extra_credentials: Vec<Credentials>,
    region: String,
    buckets: Vec<String>,
    etag_mode: EtagMode,
    auto_create_buckets: bool,
    virtual_host: Option<String>,
    body_idle_timeout: Duration,
    faults: Vec<FaultRule>,
}

impl Default for ServerBuilder {
    fn default() -> Self {
        Self {
            store: StoreKind::Memory,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            credentials: None,
            extra_credentials: Vec::new(),
            region: DEFAULT_REGION.to_owned(),
            buckets: Vec::new(),
            etag_mode: EtagMode::Md5,
            auto_create_buckets: true,
            virtual_host: None,
            body_idle_timeout: service::BODY_IDLE_TIMEOUT,
            faults: Vec::new(),
        }
    }
}

impl ServerBuilder {
    /// Keep everything in memory (the default).
    pub fn memory(mut self) -> Self {
        self.store = StoreKind::Memory;
        self
    }

    /// Keep buckets as folders of `path` (created if missing), surviving restarts.
    pub fn directory(mut self, path: impl Into<PathBuf>) -> Self {
        self.store = StoreKind::Directory(path.into());
        self
    }

    /// The address to listen on (default `127.0.0.1:0`, a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// The key pair (with its STS token, if any) the server accepts. Without one, the server
    /// makes one up; read it back with [`LocalServer::credentials`].
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Another key pair (or STS credentials) to accept as well.
    pub fn add_credentials(mut self, credentials: Credentials) -> Self {
        self.extra_credentials.push(credentials);
        self
    }

    /// The region V4 signatures must be scoped to (default [`DEFAULT_REGION`]).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// A bucket to create at start (may be given several times).
    pub fn bucket(mut self, name: impl Into<String>) -> Self {
        self.buckets.push(name.into());
        self
    }

    /// How ETags are computed (default [`EtagMode::Md5`]).
    pub fn etag_mode(mut self, mode: EtagMode) -> Self {
        self.etag_mode = mode;
        self
    }

    /// Whether a request to a missing bucket creates it (default `true`) or gets
    /// `NoSuchBucket`.
    pub fn auto_create_buckets(mut self, enabled: bool) -> Self {
        self.auto_create_buckets = enabled;
        self
    }

    /// A host name under which `Host: <bucket>.<name>` is read as virtual-hosted addressing
    /// (`localhost` and `*.aliyuncs.com` always are).
    pub fn virtual_host(mut self, name: impl Into<String>) -> Self {
        self.virtual_host = Some(name.into().to_ascii_lowercase());
        self
    }

    /// How long a request body may stall before the server answers `400 RequestTimeout` and
    /// closes the connection (default 60 s).
    pub fn body_idle_timeout(mut self, timeout: Duration) -> Self {
        self.body_idle_timeout = timeout;
        self
    }

    /// A fault rule in force from the start (more can be added with [`LocalServer::faults`]).
    pub fn fault(mut self, rule: FaultRule) -> Self {
        self.faults.push(rule);
        self
    }

    /// Opens the store, binds the address and starts serving on the current Tokio runtime.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an invalid bucket name or an empty region;
    /// [`ErrorKind::Io`] if the data directory cannot be read or repaired or the address
    /// cannot be bound.
    pub async fn start(self) -> Result<LocalServer> {
        if self.region.is_empty() {
            return Err(Error::invalid_input(
                "the server's region must not be empty",
            ));
        }
        if let Some(bad) = self
            .buckets
            .iter()
            .find(|b| !request::is_valid_bucket_name(b))
        {
            return Err(Error::invalid_input(format!(
                "bucket name {bad:?} is not 3-63 characters of [a-z0-9-] starting and ending \
                 with a letter or digit"
            )));
        }
        let store = match &self.store {
            StoreKind::Memory => store::Store::memory(self.auto_create_buckets),
            StoreKind::Directory(path) => {
                store::Store::directory(path.clone(), self.auto_create_buckets)
                    .await
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Io,
                            format!("cannot open the data directory {}", path.display()),
                        )
                        .with_source(e)
                    })?
            }
        };
        for bucket in &self.buckets {
            store.create_bucket(bucket).await.map_err(Error::from_io)?;
        }
        let credentials = self.credentials.clone().unwrap_or_else(made_up_credentials);
        let mut keyring = auth::Keyring::default();
        keyring.add(credentials.clone());
        for extra in &self.extra_credentials {
            keyring.add(extra.clone());
        }
        let faults = Faults::new();
        for rule in &self.faults {
            faults.add(rule.clone());
        }
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Io, format!("cannot listen on {}", self.addr)).with_source(e)
            })?;
        let addr = listener.local_addr().map_err(Error::from_io)?;
        let shared = Arc::new(Shared {
            store,
            keyring,
            region: self.region.clone(),
            etag_mode: self.etag_mode,
            faults: faults.clone(),
            virtual_host: self.virtual_host.clone(),
            body_idle_timeout: self.body_idle_timeout,
            stats: Stats::default(),
        });
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(service::accept_loop(
            listener,
            shared.clone(),
            shutdown.clone(),
        ));
        tracing::info!("local oss server listening on http://{addr}");
        Ok(LocalServer {
            addr,
            credentials,
            region: self.region,
            faults,
            shared,
            shutdown,
            task: Some(task),
        })
    }
}

fn random_alphanumeric(len: usize) -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(len)
        .collect()
}

/// A key pair in the shape of a real one (`LTAI…`), random for every server.
fn made_up_credentials() -> Credentials {
    Credentials::new(
        format!("LTAI{}", random_alphanumeric(MADE_UP_KEY_ID_LEN)),
        random_alphanumeric(MADE_UP_SECRET_LEN),
    )
}

/// A running server. Dropping it stops it at once (connections are cut); [`shutdown`]
/// lets requests in flight finish first.
///
/// [`shutdown`]: LocalServer::shutdown
pub struct LocalServer {
    addr: SocketAddr,
    credentials: Credentials,
    region: String,
    faults: Faults,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServer")
            .field("addr", &self.addr)
            .field("credentials", &self.credentials)
            .field("region", &self.region)
            .field("store", &self.shared.store)
            .finish()
    }
}

impl LocalServer {
    /// A builder with the defaults: memory store, `127.0.0.1:0`, made-up credentials,
    /// region `cn-hangzhou`, MD5 ETags, buckets created on first use.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The endpoint to give a client: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The key pair the server accepts (made up at start unless one was given). Its secret
    /// is readable with [`Credentials::access_key_secret`], e.g. for the CLI to print it.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The region V4 signatures must be scoped to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The fault rules; add or clear rules at any time.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.shared.stats.requests.load(Ordering::Relaxed)
    }

    /// Handler panics so far (each was answered with `500 InternalError`).
    pub fn panics(&self) -> u64 {
        self.shared.stats.panics.load(Ordering::Relaxed)
    }

    /// `500 InternalError` answers that no fault rule asked for: panics and store I/O errors.
    /// A test that expects a healthy server asserts this is 0.
    pub fn unexpected_errors(&self) -> u64 {
        self.shared.stats.internal_errors.load(Ordering::Relaxed)
    }

    /// Stops accepting connections and waits (up to 10 s) for requests in flight.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                if e.is_panic() {
                    tracing::error!("local oss server: the accept loop panicked: {e}");
                }
            }
        }
    }

    /// Serves until `signal` completes (e.g. Ctrl-C), then shuts down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            // Aborting the accept loop drops its set of connection tasks, which aborts them.
            task.abort();
        }
    }
}

/// Starts a server from `builder`, calls `on_ready` (to print the endpoint and the
/// credentials), serves until `signal` completes, then shuts down gracefully. This is what
/// `osspipe serve` runs.
///
/// # Errors
/// As [`ServerBuilder::start`].
pub async fn run_until(
    builder: ServerBuilder,
    signal: impl Future<Output = ()>,
    on_ready: impl FnOnce(&LocalServer),
) -> Result<()> {
    let server = builder.start().await?;
    on_ready(&server);
    server.run_until(signal).await;
    Ok(())
}
