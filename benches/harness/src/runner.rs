//! The uploaders that run inside a child process of the harness (`osspipe-bench runner ...`),
//! so that the child's peak RSS and CPU time are the uploader's own.
//!
//! Each prints one JSON line ([`RunnerReport`]) on stdout. The clock (and the CPU clock) runs
//! from just before the first request to just after Complete; setup (the runtime, the client,
//! the limit runner's pre-cut parts) is outside it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use osspipe::client::Client;
use osspipe::sign::{self, SignatureVersion, SigningParams};
use osspipe::upload::{ObjectWriter, PartSizePlan};
use osspipe::Credentials;

use crate::gen::{GenReader, Generator};

/// The limit runner cycles through at most this many distinct pre-cut parts, so a long stream
/// does not need its whole size in memory (the server does not care which bytes it gets; the
/// runner reports the CRC-64 of what it sent so the object is still checked).
pub const LIMIT_DISTINCT_PARTS: u64 = 32;

/// The environment variables the credentials travel in (the CLI and the Python SDK read the
/// same ones), so they never appear on a command line.
pub const ENV_KEY_ID: &str = "OSS_ACCESS_KEY_ID";
/// See [`ENV_KEY_ID`].
pub const ENV_KEY_SECRET: &str = "OSS_ACCESS_KEY_SECRET";

/// Which in-process uploader to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Kind {
    /// Bare reqwest: Initiate, pre-cut parts at concurrency C, Complete.
    Limit,
    /// `tokio::io::copy` from the generator into osspipe's `ObjectWriter`.
    Osspipe,
    /// `ObjectWriter::copy_from` the generator: it reads straight into the part buffers.
    OsspipeRead,
    /// The same into OpenDAL's OSS writer (`chunk`, `concurrent`).
    Opendal,
    /// The generator into `tokio::io::sink()`: what producing the data costs.
    Gen,
}

/// What a runner is told (everything but the credentials, which come from the environment).
#[derive(Debug, Clone, clap::Args)]
pub struct RunnerArgs {
    /// The uploader.
    #[arg(long)]
    pub kind: Kind,
    /// `http://127.0.0.1:PORT`.
    #[arg(long, default_value = "")]
    pub endpoint: String,
    /// The region V4 signatures are scoped to.
    #[arg(long, default_value = osspipe::server::DEFAULT_REGION)]
    pub region: String,
    #[arg(long, default_value = "bench")]
    pub bucket: String,
    #[arg(long, default_value = "bench.bin")]
    pub key: String,
    /// Stream size in bytes.
    #[arg(long)]
    pub size: u64,
    #[arg(long)]
    pub seed: u64,
    /// Part size (the first part's size for osspipe).
    #[arg(long)]
    pub part_size: u64,
    /// Parts in flight.
    #[arg(long)]
    pub concurrency: usize,
    /// osspipe only: double the part size every this many parts (a growing plan), capped at
    /// `--max-part-size`.
    #[arg(long)]
    pub growth_interval: Option<u32>,
    /// osspipe only, with `--growth-interval`: the plan's cap.
    #[arg(long)]
    pub max_part_size: Option<u64>,
    /// osspipe only: the writer's memory budget (default: the writer's default).
    #[arg(long)]
    pub max_memory: Option<u64>,
}

/// One runner's answer, printed as a JSON line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunnerReport {
    /// Bytes uploaded.
    pub bytes: u64,
    /// Wall time of the timed section.
    pub seconds: f64,
    /// User + system CPU of the process during the timed section.
    pub cpu_seconds: f64,
    /// The CRC-64 of what was sent (to check against the stored object).
    pub crc64: Option<u64>,
    /// Parts sent.
    pub parts: u64,
    /// Limit runner: wall time of the UploadPart phase alone (for the server bench).
    pub parts_seconds: Option<f64>,
    /// osspipe: the writer's memory budget.
    pub budget_bytes: Option<u64>,
}

/// User + system CPU seconds of this process so far.
pub fn cpu_self() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a full rusage into the pointer we give it.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    timeval_seconds(usage.ru_utime) + timeval_seconds(usage.ru_stime)
}

pub fn timeval_seconds(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

fn credentials() -> anyhow::Result<Credentials> {
    let id = std::env::var(ENV_KEY_ID).map_err(|_| anyhow::anyhow!("{ENV_KEY_ID} is not set"))?;
    let secret = std::env::var(ENV_KEY_SECRET)
        .map_err(|_| anyhow::anyhow!("{ENV_KEY_SECRET} is not set"))?;
    Ok(Credentials::new(id, secret))
}

/// Runs the runner `args` describes and prints its report.
pub fn main(args: RunnerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        match args.kind {
            Kind::Limit => limit(&args).await,
            Kind::Osspipe => osspipe_writer(&args, false).await,
            Kind::OsspipeRead => osspipe_writer(&args, true).await,
            Kind::Opendal => opendal(&args).await,
            Kind::Gen => generator_only(&args).await,
        }
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

async fn generator_only(args: &RunnerArgs) -> anyhow::Result<RunnerReport> {
    let mut reader = GenReader::new(args.seed, args.size);
    let cpu = cpu_self();
    let start = Instant::now();
    let bytes = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await?;
    Ok(RunnerReport {
        bytes,
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: cpu_self() - cpu,
        crc64: None,
        parts: 0,
        parts_seconds: None,
        budget_bytes: None,
    })
}

/// `read_into`: `ObjectWriter::copy_from` instead of `tokio::io::copy`.
async fn osspipe_writer(args: &RunnerArgs, read_into: bool) -> anyhow::Result<RunnerReport> {
    let client = Client::builder()
        .with_endpoint(&args.endpoint)
        .with_region(&args.region)
        .with_credentials(credentials()?)
        .build()?;
    let target = Arc::new(client.bucket(&args.bucket));
    let mut builder = ObjectWriter::builder(target, &args.key).max_in_flight(args.concurrency);
    if let Some(memory) = args.max_memory {
        builder = builder.max_memory(memory);
    }
    builder = match args.growth_interval {
        Some(interval) => builder.plan(
            PartSizePlan::new(args.part_size, args.max_part_size.unwrap_or(args.part_size))?
                .with_growth_interval(interval),
        ),
        None => builder.part_size(args.part_size),
    };
    let mut writer = builder.build()?;
    let budget = writer.max_memory();
    let mut reader = GenReader::new(args.seed, args.size);
    let cpu = cpu_self();
    let start = Instant::now();
    if read_into {
        writer.copy_from(&mut reader).await?;
    } else {
        tokio::io::copy(&mut reader, &mut writer).await?;
    }
    writer.shutdown().await?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = cpu_self() - cpu;
    let outcome = writer
        .outcome()
        .ok_or_else(|| anyhow::anyhow!("the writer has no outcome after shutdown"))?;
    Ok(RunnerReport {
        bytes: outcome.size,
        seconds,
        cpu_seconds,
        crc64: Some(outcome.crc64),
        parts: u64::from(outcome.parts),
        parts_seconds: None,
        budget_bytes: Some(budget),
    })
}

async fn opendal(args: &RunnerArgs) -> anyhow::Result<RunnerReport> {
    use tokio_util::compat::FuturesAsyncWriteCompatExt;
    let credentials = credentials()?;
    // Path-style addressing: the endpoint is an IP address, which cannot take a bucket label.
    let builder = opendal::services::Oss::default()
        .endpoint(&args.endpoint)
        .bucket(&args.bucket)
        .access_key_id(credentials.access_key_id())
        .access_key_secret(credentials.access_key_secret())
        .addressing_style("path")
        .root("/");
    let operator = opendal::Operator::new(builder)?;
    let mut reader = GenReader::new(args.seed, args.size);
    let cpu = cpu_self();
    let start = Instant::now();
    let writer = operator
        .writer_with(&args.key)
        .chunk(args.part_size as usize)
        .concurrent(args.concurrency)
        .await?;
    let mut writer = writer.into_futures_async_write().compat_write();
    let bytes = tokio::io::copy(&mut reader, &mut writer).await?;
    writer.shutdown().await?;
    Ok(RunnerReport {
        bytes,
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: cpu_self() - cpu,
        crc64: None,
        parts: bytes.div_ceil(args.part_size),
        parts_seconds: None,
        budget_bytes: None,
    })
}

/// The bare client: reqwest, one signature per request, nothing else.
struct Bare {
    http: reqwest::Client,
    endpoint: String,
    region: String,
    bucket: String,
    key: String,
    credentials: Credentials,
}

impl Bare {
    fn url(&self, query: &[(String, String)]) -> String {
        let mut url = format!(
            "{}/{}/{}",
            self.endpoint,
            self.bucket,
            sign::uri_encode(&self.key, true)
        );
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&sign::uri_encode(name, false));
            if !value.is_empty() {
                url.push('=');
                url.push_str(&sign::uri_encode(value, false));
            }
        }
        url
    }

    async fn send(
        &self,
        method: http::Method,
        query: Vec<(String, String)>,
        body: Bytes,
    ) -> anyhow::Result<reqwest::Response> {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_LENGTH, body.len().into());
        let params = SigningParams::new(
            SignatureVersion::V4,
            &self.credentials,
            &self.region,
            SystemTime::now(),
        );
        sign::sign_headers(
            &params,
            method.as_str(),
            Some(&self.bucket),
            Some(&self.key),
            &query,
            &mut headers,
        )?;
        let response = self
            .http
            .request(method, self.url(&query))
            .headers(headers)
            .body(body)
            .send()
            .await?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            anyhow::bail!("{status}: {text}");
        }
        Ok(response)
    }
}

fn xml_field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(&body[start..end])
}

async fn limit(args: &RunnerArgs) -> anyhow::Result<RunnerReport> {
    let part_size = args.part_size;
    let parts = args.size.div_ceil(part_size).max(1);
    // Pre-cut the parts before the clock starts.
    let distinct = parts.min(LIMIT_DISTINCT_PARTS);
    let mut generator = Generator::new(args.seed);
    let mut pool = Vec::new();
    for i in 0..distinct {
        let len = part_size.min(args.size - i * part_size) as usize;
        let mut buf = vec![0u8; len];
        generator.read_at(i * part_size, &mut buf);
        pool.push(Bytes::from(buf));
    }
    let bodies: Vec<Bytes> = (0..parts)
        .map(|i| {
            let len = part_size.min(args.size - i * part_size) as usize;
            pool[(i % distinct) as usize].slice(..len)
        })
        .collect();
    let mut crc = 0u64;
    for body in &bodies {
        crc = osspipe::crc64::combine(crc, osspipe::crc64::checksum(body), body.len() as u64);
    }
    let bare = Arc::new(Bare {
        http: reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?,
        endpoint: args.endpoint.clone(),
        region: args.region.clone(),
        bucket: args.bucket.clone(),
        key: args.key.clone(),
        credentials: credentials()?,
    });

    let cpu = cpu_self();
    let start = Instant::now();
    let initiate = bare
        .send(
            http::Method::POST,
            vec![("uploads".into(), String::new())],
            Bytes::new(),
        )
        .await?
        .text()
        .await?;
    let upload_id = xml_field(&initiate, "UploadId")
        .ok_or_else(|| anyhow::anyhow!("no UploadId in {initiate:?}"))?
        .to_owned();
    let parts_start = Instant::now();
    let mut etags: Vec<(u64, String)> = futures::stream::iter(bodies.into_iter().enumerate())
        .map(|(i, body)| {
            let bare = bare.clone();
            let upload_id = upload_id.clone();
            async move {
                let number = i as u64 + 1;
                let response = bare
                    .send(
                        http::Method::PUT,
                        vec![
                            ("partNumber".into(), number.to_string()),
                            ("uploadId".into(), upload_id),
                        ],
                        body,
                    )
                    .await?;
                let etag = response
                    .headers()
                    .get(http::header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| anyhow::anyhow!("part {number} has no ETag"))?
                    .to_owned();
                anyhow::Ok((number, etag))
            }
        })
        .buffer_unordered(args.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let parts_seconds = parts_start.elapsed().as_secs_f64();
    etags.sort();
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (number, etag) in &etags {
        xml.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
            etag.replace('"', "&quot;")
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    bare.send(
        http::Method::POST,
        vec![("uploadId".into(), upload_id)],
        Bytes::from(xml),
    )
    .await?
    .bytes()
    .await?;
    Ok(RunnerReport {
        bytes: args.size,
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: cpu_self() - cpu,
        crc64: Some(crc),
        parts,
        parts_seconds: Some(parts_seconds),
        budget_bytes: None,
    })
}
