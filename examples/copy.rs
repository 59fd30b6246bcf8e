//! Copies a file (or standard input) into an OSS object with `tokio::io::copy`, then prints
//! what the writer reports.
//!
//! ```text
//! cargo run --features server --example copy -- Cargo.lock oss://demo/Cargo.lock
//! head -c 50M /dev/urandom | cargo run --features server --example copy -- - oss://demo/random.bin
//! ```
//!
//! With `OSS_ENDPOINT` set it writes to that endpoint (credentials from `OSS_ACCESS_KEY_ID` and
//! `OSS_ACCESS_KEY_SECRET`, region from `OSS_REGION` or the endpoint). Without it, it starts
//! the local server in this process over `./oss-data`, the directory `osspipe` uses by default,
//! so `osspipe get oss://demo/Cargo.lock` reads the copy back.

use std::sync::Arc;

use osspipe::server::LocalServer;
use osspipe::{Client, ObjectWriter};
use tokio::io::{AsyncRead, AsyncWriteExt};

/// Where the example writes when no destination is given.
const DEFAULT_DESTINATION: &str = "oss://demo/copy.bin";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let source = args.next().unwrap_or_else(|| "-".to_owned());
    let destination = args
        .next()
        .unwrap_or_else(|| DEFAULT_DESTINATION.to_owned());
    let (bucket, key) = destination
        .strip_prefix("oss://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or("the destination must look like oss://BUCKET/KEY")?;

    let (client, server) = connect().await?;
    let mut reader: Box<dyn AsyncRead + Unpin + Send> = if source == "-" {
        Box::new(tokio::io::stdin())
    } else {
        Box::new(tokio::fs::File::open(&source).await?)
    };

    // The defaults suit most streams: 8 MiB first parts that grow, 4 in flight, 256 MiB budget.
    let mut writer = ObjectWriter::builder(Arc::new(client.bucket(bucket)), key).build()?;
    let copied = tokio::io::copy(&mut reader, &mut writer).await?;
    // Shutdown completes the object (or sends one PutObject for a short stream) and checks its
    // CRC-64. Without it, dropping the writer aborts the upload: no object is written.
    writer.shutdown().await?;

    let outcome = writer
        .outcome()
        .expect("a successful shutdown has an outcome");
    println!("copied {copied} bytes from {source} to {destination}");
    println!(
        "  size {} in {} part(s), etag {}, crc64 {}, upload id {}",
        outcome.size,
        outcome.parts,
        outcome.etag,
        outcome.crc64,
        outcome
            .upload_id
            .as_deref()
            .unwrap_or("(none: one PutObject)")
    );
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}

/// OSS when `OSS_ENDPOINT` is set; otherwise the local server in this process over
/// `./oss-data`.
async fn connect() -> osspipe::Result<(Client, Option<LocalServer>)> {
    if let Ok(endpoint) = std::env::var("OSS_ENDPOINT") {
        let mut builder = Client::builder().with_endpoint(endpoint);
        if let Ok(region) = std::env::var("OSS_REGION") {
            builder = builder.with_region(region);
        }
        return Ok((builder.build()?, None));
    }
    let server = LocalServer::builder().directory("oss-data").start().await?;
    eprintln!(
        "no OSS_ENDPOINT: writing to the local server over ./oss-data ({})",
        server.endpoint()
    );
    let client = Client::builder()
        .with_endpoint(server.endpoint())
        .with_region(server.region())
        .with_credentials(server.credentials().clone())
        .build()?;
    Ok((client, Some(server)))
}
