//! Soak: one writer streams a long stream (`OSSPIPE_SOAK_BYTES`, default 1 GiB; the full soak is
//! `OSSPIPE_SOAK_BYTES=10GiB`) with the default settings (8 MiB parts, 256 MiB budget, 4 parts
//! in flight) into an `osspipe serve` child process, and the process's RSS stays flat: it stays
//! within the writer's budget however long the stream runs, and while the part size stays the
//! same it does not grow (no leak per part or per byte). The part-size plan doubles the part
//! size after part 500 (about 3.9 GiB with 8 MiB parts), so the writer's buffers, and the RSS
//! with them, step up once in a 10 GiB stream; flatness is checked within each such tier (the
//! tiers show in the writer's own `peak_buffered_bytes`). The object is then read back and
//! compared by SHA-256.
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
/// Within one part-size tier, RSS may drift by this much after its first checkpoint.
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
    // (bytes written, RSS, the writer's peak-buffered bytes so far)
    let mut checkpoints: Vec<(u64, u64, u64)> = Vec::new();
    let mut next_checkpoint = 0;
    while stream.next_into(&mut buffer, WRITE) {
        writer.write_all(&buffer).await.expect("write");
        let written = stream.produced();
        if written >= next_checkpoint || written == total {
            let peak_buffered = writer.progress().peak_buffered_bytes;
            checkpoints.push((written, rss_bytes(), peak_buffered));
            next_checkpoint += total / CHECKPOINTS;
        }
    }
    let end_rss = rss_bytes();
    writer.shutdown().await.expect("shutdown");
    let elapsed = started.elapsed();
    let peak_rss = sampler.stop();
    let progress = writer.progress();
    let warm = checkpoints
        .iter()
        .find(|(at, _, _)| *at >= warm_up)
        .copied()
        .expect("a checkpoint after the warm-up");
    eprintln!(
        "soak: {} MiB in {elapsed:?} ({:.0} MiB/s), {} parts; RSS before {} MiB, after warm-up \
         ({} MiB) {} MiB, at the end {} MiB, peak {} MiB; writer peak-buffered {} MiB of {} MiB",
        total / MIB,
        (total / MIB) as f64 / elapsed.as_secs_f64(),
        writer.outcome().unwrap().parts,
        base_rss / MIB,
        warm.0 / MIB,
        warm.1 / MIB,
        end_rss / MIB,
        peak_rss / MIB,
        progress.peak_buffered_bytes / MIB,
        DEFAULT_MAX_MEMORY / MIB
    );
    eprintln!(
        "soak: along the stream (MiB written: RSS MiB / writer peak-buffered MiB): {}",
        checkpoints
            .iter()
            .map(|(at, rss, buffered)| format!("{}: {}/{}", at / MIB, rss / MIB, buffered / MIB))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(progress.peak_buffered_bytes <= DEFAULT_MAX_MEMORY);
    assert!(
        peak_rss.saturating_sub(base_rss) <= DEFAULT_MAX_MEMORY + 64 * MIB,
        "RSS peaked {} MiB above the start, beyond the writer's budget",
        peak_rss.saturating_sub(base_rss) / MIB
    );
    // Flat within each tier of the part-size plan (after the warm-up): compared with the
    // tier's first checkpoint, where its buffers already exist, RSS does not grow.
    let after_warm_up: Vec<_> = checkpoints
        .iter()
        .filter(|(at, _, _)| *at >= warm_up)
        .copied()
        .collect();
    let mut tiers = 0;
    for tier in after_warm_up.chunk_by(|a, b| a.2 == b.2) {
        tiers += 1;
        let first = tier[0].1;
        let highest = tier.iter().map(|c| c.1).max().unwrap();
        assert!(
            highest.saturating_sub(first) <= FLAT,
            "RSS grew {} MiB within the tier of {} MiB peak-buffered (from {} MiB at {} MiB \
             written): not flat",
            highest.saturating_sub(first) / MIB,
            tier[0].2 / MIB,
            first / MIB,
            tier[0].0 / MIB
        );
    }
    eprintln!(
        "soak: {tiers} part-size tier(s) after the warm-up, each flat within {} MiB",
        FLAT / MIB
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
