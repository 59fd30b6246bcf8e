//! A live camera feed into one OSS object, durable segment by segment, resumed after a restart.
//!
//! ```text
//! ffmpeg -f v4l2 -i /dev/video0 -c:v libx264 -f mpegts - | \
//!     cargo run --features server --example camera -- oss://demo/camera/feed.ts
//! ```
//!
//! - The feed is uploaded while it plays: parts are sent as they fill.
//! - At every segment boundary (every [`SEGMENT_BYTES`] or [`SEGMENT_SECONDS`], whichever
//!   comes first) the writer's durability point (`sync_durable`) sends the buffered tail and
//!   waits until everything so far is in acknowledged parts. The upload id and the durable size
//!   are then saved in a state file (`camera.state`).
//! - Ctrl-C (or SIGTERM, or a crash) leaves the upload unfinished, with its parts kept. Run the
//!   command again and it resumes the upload from the state file: the new feed continues after
//!   the last durable byte instead of starting a new object. At most one segment is lost.
//! - The end of the feed (ffmpeg exits) completes the object and removes the state file.
//!
//! MPEG-TS is a sequence of 188-byte packets. The example hands the writer whole packets only,
//! and its part sizes are multiples of 188, so every part boundary (where a resumed feed
//! continues) is a packet boundary.
//!
//! Each durability point cuts a part short, which lowers the plan's ceiling: with a 10 s
//! segment and 10,000 parts, one object holds at least 27 hours of feed; longer feeds should
//! roll over to a new object (see `log_shipper.rs`).
//!
//! Without `OSS_ENDPOINT`, the local server runs in this process over `./oss-data` (kept across
//! restarts, so resuming works locally too).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use osspipe::server::LocalServer;
use osspipe::{Client, ErrorKind, ObjectWriter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// MPEG-TS packet size.
const TS_PACKET: u64 = 188;

/// The first part: 44,620 packets (just under 8 MiB). Later parts double from it, so every
/// part is a whole number of packets.
const PART_SIZE: u64 = TS_PACKET * 44_620;

/// Memory for part buffers: 16 first-size parts, so the largest part (half of it, 8 first
/// parts) is a whole number of packets too.
const MAX_MEMORY: u64 = PART_SIZE * 16;

/// A durability point after this many bytes...
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// ...or after this long, whichever comes first.
const SEGMENT_SECONDS: u64 = 10;

/// Where the upload id of an unfinished feed is kept between runs.
const STATE_FILE: &str = "camera.state";

/// The size of one read from the pipe.
const READ_SIZE: usize = 256 * 1024;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let destination = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "oss://demo/camera/feed.ts".to_owned());
    let (bucket, key) = destination
        .strip_prefix("oss://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or("the destination must look like oss://BUCKET/KEY")?;
    let (client, server) = connect().await?;
    let target = Arc::new(client.bucket(bucket));
    let builder = || {
        ObjectWriter::builder(target.clone(), key)
            .part_size(PART_SIZE)
            .max_memory(MAX_MEMORY)
            // A crash or Ctrl-C must leave the parts for the next run, not abort them.
            .keep_parts_on_drop(true)
    };

    // Resume the unfinished feed of a previous run, if there is one for this object.
    let mut writer = match State::load(Path::new(STATE_FILE)) {
        Some(state) if state.destination == destination => {
            let mut writer = builder().resume(&state.upload_id).build()?;
            match writer.resumed_size().await {
                Ok(size) => {
                    // OSS may hold more than the last durability point recorded: parts that
                    // were acknowledged after it count too.
                    eprintln!(
                        "resuming upload {} of {destination} after {size} bytes ({} recorded \
                         durable)",
                        state.upload_id, state.durable
                    );
                    writer
                }
                Err(error) => {
                    // Gone (completed or aborted elsewhere) or not continuable (a gap in the
                    // parts): keep what is there for `osspipe recover`, start a new object.
                    eprintln!("cannot resume upload {}: {error}", state.upload_id);
                    eprintln!(
                        "  its complete prefix can still be saved with: osspipe recover \
                         {destination} --upload-id {}",
                        state.upload_id
                    );
                    builder().build()?
                }
            }
        }
        _ => builder().build()?,
    };
    let resumed = writer.progress().bytes_resumed;
    if resumed % TS_PACKET != 0 {
        // Not written by this program: finish the broken packet with stuffing bytes so the
        // new packets start on a boundary.
        let pad = (TS_PACKET - resumed % TS_PACKET) as usize;
        writer.write_all(&vec![0xFF; pad]).await?;
    }

    let mut stdin = tokio::io::stdin();
    let mut pending = BytesMut::with_capacity(READ_SIZE);
    let mut since_durable = 0u64;
    let mut recorded = writer.upload_id().is_some();
    let mut segment_timer = tokio::time::interval(Duration::from_secs(SEGMENT_SECONDS));
    segment_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    segment_timer.tick().await; // the first tick is immediate
    let mut stop = std::pin::pin!(stop_signal());
    loop {
        tokio::select! {
            () = &mut stop => {
                // Make everything read so far durable, save the state and leave the upload
                // open for the next run.
                let durable = durability_point(&mut writer, &destination).await?;
                eprintln!("stopped: {durable} bytes are durable; run again to resume");
                drop(writer);
                break;
            }
            _ = segment_timer.tick() => {
                durability_point(&mut writer, &destination).await?;
                since_durable = 0;
            }
            read = stdin.read_buf(&mut pending) => {
                if read? == 0 {
                    // The end of the feed: the trailing partial packet (if any) goes too.
                    writer.write_all(&pending).await?;
                    writer.shutdown().await?;
                    let outcome = writer.outcome().expect("shut down");
                    let _ = std::fs::remove_file(STATE_FILE);
                    println!(
                        "{destination}: {} bytes in {} parts, crc64 {}",
                        outcome.size, outcome.parts, outcome.crc64
                    );
                    break;
                }
                // Only whole packets go to the writer.
                let whole = pending.len() - pending.len() % TS_PACKET as usize;
                let packets = pending.split_to(whole).freeze();
                since_durable += packets.len() as u64;
                writer.write_bytes(packets).await?;
                if !recorded {
                    // The upload exists as soon as the first part is sent: record it at once,
                    // so even a crash before the first durability point can be resumed.
                    if let Some(upload_id) = writer.upload_id() {
                        State {
                            destination: destination.clone(),
                            upload_id: upload_id.to_owned(),
                            durable: writer.progress().bytes_durable,
                        }
                        .save(Path::new(STATE_FILE))?;
                        recorded = true;
                    }
                }
                if since_durable >= SEGMENT_BYTES {
                    durability_point(&mut writer, &destination).await?;
                    since_durable = 0;
                    segment_timer.reset();
                }
                pending.reserve(READ_SIZE);
            }
        }
    }
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}

/// Sends the buffered tail, waits for every part, and records the upload in the state file.
async fn durability_point(
    writer: &mut ObjectWriter,
    destination: &str,
) -> Result<u64, Box<dyn std::error::Error>> {
    let durable = match writer.sync_durable(true).await {
        Ok(durable) => durable,
        Err(error) if error.kind() == ErrorKind::TooLarge => {
            return Err("the feed outgrew one object; roll over to a new key".into())
        }
        Err(error) => return Err(error.into()),
    };
    // Before the first part there is no upload yet (a tail under 100 KB stays buffered).
    if let Some(upload_id) = writer.upload_id() {
        State {
            destination: destination.to_owned(),
            upload_id: upload_id.to_owned(),
            durable,
        }
        .save(Path::new(STATE_FILE))?;
    }
    Ok(durable)
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// What survives a restart: which upload holds the feed, and how much of it is durable.
struct State {
    destination: String,
    upload_id: String,
    durable: u64,
}

impl State {
    fn load(path: &Path) -> Option<State> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut lines = text.lines();
        Some(State {
            destination: lines.next()?.to_owned(),
            upload_id: lines.next()?.to_owned(),
            durable: lines.next()?.parse().ok()?,
        })
    }

    /// Written to a temporary file and renamed, so a crash never leaves half a state file.
    fn save(&self, path: &Path) -> std::io::Result<()> {
        let temporary = path.with_extension("state.tmp");
        std::fs::write(
            &temporary,
            format!(
                "{}\n{}\n{}\n",
                self.destination, self.upload_id, self.durable
            ),
        )?;
        std::fs::rename(&temporary, path)
    }
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
