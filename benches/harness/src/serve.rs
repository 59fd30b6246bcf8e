//! The servers, each run as a child process of the harness (`osspipe-bench serve ...`) so the
//! uploader being measured is alone in its own process.
//!
//! - `memory` / `directory`: osspipe's local server (`osspipe::server::LocalServer`).
//! - `bare-discard`: a bare hyper 1 server that reads every body and drops it.
//! - `bare-keep`: the same, but it keeps every part's body chunks in memory until Complete (what
//!   retaining hyper's chunks costs: hyper then reads into a fresh allocation every time, which
//!   osspipe's memory store avoids by copying into pooled blocks).
//! - `bare-files`: a bare hyper 1 server that writes every body to a new file.
//!
//! The bare servers are the yardsticks of the server bench: they answer Initiate, UploadPart,
//! Complete and Abort with just enough XML for a client, check no signature and keep no state.
//! They use the same hyper settings as osspipe's server (auto HTTP/1 + HTTP/2, 512 KiB HTTP/1
//! read buffer, `TCP_NODELAY`) so the difference is what osspipe's handlers and stores cost.
//!
//! Each prints one JSON line ([`ServerInfo`]) and serves until its standard input closes.

use std::convert::Infallible;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use osspipe::server::{EtagMode, LocalServer};

/// The same HTTP/1 read buffer as osspipe's server (`src/server/service.rs`).
const HTTP1_MAX_BUF_BYTES: usize = 512 * 1024;

/// The bare file server hands bodies to the blocking pool in batches of this size, one batch in
/// flight per request while the next is read (what osspipe's directory store does too).
const FILE_BATCH_BYTES: usize = 1024 * 1024;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Store {
    Memory,
    Directory,
    BareDiscard,
    BareKeep,
    BareFiles,
}

impl Store {
    pub fn name(self) -> &'static str {
        match self {
            Store::Memory => "memory",
            Store::Directory => "directory",
            Store::BareDiscard => "bare-discard",
            Store::BareKeep => "bare-keep",
            Store::BareFiles => "bare-files",
        }
    }

    /// Whether the server keeps objects (so they can be checked and must be deleted).
    pub fn is_osspipe(self) -> bool {
        matches!(self, Store::Memory | Store::Directory)
    }
}

/// Which ETags osspipe's server computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Etag {
    Opaque,
    Md5,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[arg(long)]
    pub store: Store,
    /// The data directory (directory and bare-files stores).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "opaque")]
    pub etag: Etag,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// What a server child prints when it is ready.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub region: String,
}

pub fn main(args: ServeArgs) -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads);
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async move {
        // The harness closes our stdin to stop us (or dies, which closes it too).
        let stdin_closed = async {
            let mut sink = Vec::new();
            let _ = tokio::io::stdin().read_to_end(&mut sink).await;
        };
        match args.store {
            Store::Memory | Store::Directory => {
                let mut builder =
                    LocalServer::builder()
                        .bucket("bench")
                        .etag_mode(match args.etag {
                            Etag::Opaque => EtagMode::Opaque,
                            Etag::Md5 => EtagMode::Md5,
                        });
                builder = match (args.store, &args.dir) {
                    (Store::Directory, Some(dir)) => builder.directory(dir),
                    (Store::Directory, None) => anyhow::bail!("--dir is needed"),
                    _ => builder.memory(),
                };
                let server = builder.start().await?;
                announce(&ServerInfo {
                    endpoint: server.endpoint(),
                    access_key_id: server.credentials().access_key_id().to_owned(),
                    access_key_secret: server.credentials().access_key_secret().to_owned(),
                    region: server.region().to_owned(),
                })?;
                stdin_closed.await;
                let unexpected = server.unexpected_errors();
                server.shutdown().await;
                if unexpected > 0 {
                    anyhow::bail!("the server answered {unexpected} unexpected 500s");
                }
                Ok(())
            }
            Store::BareDiscard | Store::BareKeep | Store::BareFiles => {
                let dir = match args.store {
                    Store::BareFiles => Some(
                        args.dir
                            .clone()
                            .ok_or_else(|| anyhow::anyhow!("--dir is needed"))?,
                    ),
                    _ => None,
                };
                if let Some(dir) = &dir {
                    std::fs::create_dir_all(dir)?;
                }
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                announce(&ServerInfo {
                    endpoint: format!("http://{}", listener.local_addr()?),
                    access_key_id: "LTAIbare".into(),
                    access_key_secret: "bare".into(),
                    region: osspipe::server::DEFAULT_REGION.into(),
                })?;
                let state = Arc::new(Bare {
                    dir,
                    keep: args.store == Store::BareKeep,
                    kept: Mutex::new(Vec::new()),
                    counter: AtomicU64::new(0),
                });
                tokio::select! {
                    _ = stdin_closed => {}
                    result = accept_loop(listener, state) => result?,
                }
                Ok(())
            }
        }
    })
}

fn announce(info: &ServerInfo) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string(info)?)?;
    out.flush()?;
    Ok(())
}

struct Bare {
    dir: Option<PathBuf>,
    /// bare-keep: part bodies are kept in `kept` until the next Complete.
    keep: bool,
    kept: Mutex<Vec<Vec<Bytes>>>,
    counter: AtomicU64,
}

async fn accept_loop(listener: tokio::net::TcpListener, state: Arc<Bare>) -> anyhow::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(bare_handle(&state, request).await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().max_buf_size(HTTP1_MAX_BUF_BYTES);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn xml(status: u16, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("x-oss-request-id", "0")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

async fn bare_handle(state: &Bare, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let query = request.uri().query().unwrap_or("").to_owned();
    let method = request.method().clone();
    let has = |name: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(name))
    };
    let number = state.counter.fetch_add(1, Ordering::Relaxed);
    let body = request.into_body();
    let stored = match &state.dir {
        Some(dir) if method == hyper::Method::PUT => {
            to_file(body, dir.join(format!("{number:016}.part"))).await
        }
        None if state.keep && method == hyper::Method::PUT => match collect(body).await {
            Ok(chunks) => {
                state
                    .kept
                    .lock()
                    .expect("no panics while locked")
                    .push(chunks);
                Ok(())
            }
            Err(e) => Err(e),
        },
        _ => discard(body).await,
    };
    if let Err(e) = stored {
        return xml(
            500,
            format!("<Error><Code>InternalError</Code><Message>{e}</Message></Error>"),
        );
    }
    if method == hyper::Method::POST && has("uploads") {
        xml(
            200,
            format!(
                "<InitiateMultipartUploadResult><Bucket>bench</Bucket><Key>k</Key>\
                 <UploadId>{number:032X}</UploadId></InitiateMultipartUploadResult>"
            ),
        )
    } else if method == hyper::Method::POST && has("uploadId") {
        state.kept.lock().expect("no panics while locked").clear();
        xml(
            200,
            "<CompleteMultipartUploadResult><Bucket>bench</Bucket><Key>k</Key>\
             <ETag>\"0-1\"</ETag></CompleteMultipartUploadResult>"
                .into(),
        )
    } else if method == hyper::Method::PUT {
        let mut response = xml(200, String::new());
        response.headers_mut().insert(
            "etag",
            format!("\"{number:032X}\"")
                .parse()
                .expect("hex is a valid header"),
        );
        response
    } else if method == hyper::Method::DELETE {
        xml(204, String::new())
    } else {
        xml(
            404,
            "<Error><Code>NoSuchKey</Code><Message>bare server</Message></Error>".into(),
        )
    }
}

async fn discard(mut body: Incoming) -> anyhow::Result<()> {
    while let Some(frame) = body.frame().await {
        drop(frame?);
    }
    Ok(())
}

async fn collect(mut body: Incoming) -> anyhow::Result<Vec<Bytes>> {
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            chunks.push(data);
        }
    }
    Ok(chunks)
}

async fn to_file(mut body: Incoming, path: PathBuf) -> anyhow::Result<()> {
    let mut file = Some(tokio::task::spawn_blocking(move || std::fs::File::create(path)).await??);
    let mut in_flight: Option<tokio::task::JoinHandle<std::io::Result<std::fs::File>>> = None;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0;
    loop {
        let frame = body.frame().await.transpose()?;
        let done = frame.is_none();
        if let Some(data) = frame.and_then(|f| f.into_data().ok()) {
            batch_len += data.len();
            batch.push(data);
        }
        if batch_len >= FILE_BATCH_BYTES || (done && !batch.is_empty()) {
            if let Some(handle) = in_flight.take() {
                file = Some(handle.await??);
            }
            let mut owned = file.take().expect("the file comes back with each batch");
            let chunks = std::mem::take(&mut batch);
            batch_len = 0;
            in_flight = Some(tokio::task::spawn_blocking(move || {
                for chunk in &chunks {
                    owned.write_all(chunk)?;
                }
                Ok(owned)
            }));
        }
        if done {
            break;
        }
    }
    if let Some(handle) = in_flight.take() {
        handle.await??;
    }
    Ok(())
}
