//! Soak: one writer streams a long stream (`OSSPIPE_SOAK_BYTES`, default 1 GiB; the full soak is
//! `OSSPIPE_SOAK_BYTES=10GiB`) with the default settings (8 MiB parts, 256 MiB budget, 4 parts
//! in flight) into an `osspipe serve` child process, and the process's RSS stays flat: after a
//! warm-up (the writer's pool and the connections exist), it grows by no more than a few MiB
//! however long the stream runs. The object is then read back and compared by SHA-256.
//!
//! The server runs in its own process so that only the client's memory counts here.
#![cfg(feature = "cli")]

#[path = "common/reliability.rs"]
mod reliability;

use std::sync::Arc;
use std::time::{Duration, Instant};

use osspipe::upload::{ObjectWriter, DEFAULT_MAX_MEMORY};
use osspipe::Credentials;
use reliability::cli;
use reliability::*;
use tokio::io::AsyncWriteExt;

const BUCKET: &str = "soak";
/// The default soak length, small enough for every CI run on two cores.
const DEFAULT_SOAK_BYTES: u64 = 1024 * MIB;
/// RSS may drift by this much between the end of the warm-up and the end of the stream.
const FLAT: u64 = 32 * MIB;
/// Write size of the test's feeding loop.
const WRITE: usize = 256 * 1024;
/// RSS is recorded this many times along the stream.
const CHECKPOINTS: u64 = 20;

/// `OSSPIPE_SOAK_BYTES`: a byte count, optionally with a MiB or GiB suffix.
fn soak_bytes() -> u64 {
    let Ok(text) = std::env::var("OSSPIPE_SOAK_BYTES") else {
        return DEFAULT_SOAK_BYTES;
    };
    let text = text.trim();
    let (number, unit) = if let Some(n) = text.strip_suffix("GiB") {
        (n, 1024 * MIB)
    } else if let Some(n) = text.strip_suffix("MiB") {
        (n, MIB)
    } else {
        (text, 1)
    };
    number
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|n| *n >= 64 * MIB)
        .unwrap_or_else(|| {
            panic!("OSSPIPE_SOAK_BYTES must be at least 64MiB, like 1073741824, 512MiB or 10GiB: {text:?}")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_keeps_rss_flat() {
    let total = soak_bytes();
    let data = tempfile::tempdir().unwrap();
    let credentials = Credentials::new("LTAIsoakreliability", "soak-secret");
    let server = cli::Serve::start(data.path(), &credentials, &[BUCKET]).await;
    let client = client_for(server.addr(), &credentials);
    let base_rss = rss_bytes();
    let sampler = RssSampler::start();
    let started = Instant::now();
    let mut writer = ObjectWriter::builder(Arc::new(client.bucket(BUCKET)), "soak")
        .retry_backoff(Duration::from_millis(20))
        .build()
        .unwrap();
    // The writer reaches its steady state once a budget's worth of bytes went through it.
    let warm_up = (total / 10).max(DEFAULT_MAX_MEMORY);
    let mut stream = SeededStream::new(0x50a6, total);
    let mut buffer = Vec::with_capacity(WRITE);
    let mut checkpoints: Vec<(u64, u64)> = Vec::new();
    let mut warm_rss = None;
    let mut next_checkpoint = 0;
    while stream.next_into(&mut buffer, WRITE) {
        writer.write_all(&buffer).await.expect("write");
        let written = stream.produced();
        if warm_rss.is_none() && written >= warm_up {
            warm_rss = Some(rss_bytes());
        }
        if written >= next_checkpoint {
            checkpoints.push((written, rss_bytes()));
            next_checkpoint += total / CHECKPOINTS;
        }
    }
    let end_rss = rss_bytes();
    writer.shutdown().await.expect("shutdown");
    let elapsed = started.elapsed();
    let peak_rss = sampler.stop();
    let warm_rss = warm_rss.expect("the warm-up point was passed");
    let progress = writer.progress();
    eprintln!(
        "soak: {} MiB in {elapsed:?} ({:.0} MiB/s), {} parts; RSS before {} MiB, after warm-up \
         ({} MiB) {} MiB, at the end {} MiB, peak {} MiB; writer peak-buffered {} MiB of {} MiB",
        total / MIB,
        (total / MIB) as f64 / elapsed.as_secs_f64(),
        writer.outcome().unwrap().parts,
        base_rss / MIB,
        warm_up / MIB,
        warm_rss / MIB,
        end_rss / MIB,
        peak_rss / MIB,
        progress.peak_buffered_bytes / MIB,
        DEFAULT_MAX_MEMORY / MIB
    );
    eprintln!(
        "soak: RSS along the stream (MiB written: RSS MiB): {}",
        checkpoints
            .iter()
            .map(|(at, rss)| format!("{}: {}", at / MIB, rss / MIB))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(progress.peak_buffered_bytes <= DEFAULT_MAX_MEMORY);
    let drift = checkpoints
        .iter()
        .filter(|(at, _)| *at >= warm_up)
        .map(|(_, rss)| *rss)
        .chain([end_rss])
        .max()
        .unwrap()
        .saturating_sub(warm_rss);
    assert!(
        drift <= FLAT,
        "RSS grew {} MiB after the warm-up: not flat",
        drift / MIB
    );
    assert!(
        peak_rss.saturating_sub(base_rss) <= DEFAULT_MAX_MEMORY + 64 * MIB,
        "RSS peaked {} MiB above the start, beyond the writer's budget",
        peak_rss.saturating_sub(base_rss) / MIB
    );

    let read_started = Instant::now();
    let stored = read_back(&client, BUCKET, "soak").await.unwrap();
    assert_eq!(stored, Some(stream.digest()), "the soaked object differs");
    eprintln!(
        "soak: read back and verified in {:?}",
        read_started.elapsed()
    );
    drop(client);
    server.stop().await;
}
