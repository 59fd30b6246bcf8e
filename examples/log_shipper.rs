//! A log sink: lines from standard input become objects that rotate by size and by age,
//! named by the time they were opened (`logs/2026/11/25/13-00-00.log`).
//!
//! ```text
//! my-server 2>&1 | cargo run --features server --example log_shipper -- oss://demo/logs/ \
//!     --max-bytes 67108864 --max-age 3600
//! ```
//!
//! - An object is opened at the first line after a rotation (no empty objects), and rotated
//!   when it reaches `--max-bytes` (default 64 MiB) or is `--max-age` seconds old (default 60),
//!   whichever comes first. Rotation happens between lines, never inside one.
//! - Each rotated object is completed (the writer's shutdown: Complete, CRC-64 check) in the
//!   background while the next one fills, and reported when it is stored.
//! - At the end of input, or on Ctrl-C / SIGTERM, the open object is completed and every
//!   completion is awaited before exiting: no line that was read is lost.
//!
//! Without `OSS_ENDPOINT`, the local server runs in this process over `./oss-data`; list what
//! was shipped with `osspipe get oss://demo/logs/...`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use osspipe::server::LocalServer;
use osspipe::{Bucket, Client, ObjectWriter, UploadOutcome};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Rotate when an object reaches this many bytes...
const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// ...or this age, whichever comes first.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);

/// Logs are small and frequent: start with 1 MiB parts (growing as usual) so that an object
/// of a few MiB is still sent while it fills rather than all at rotation.
const PART_SIZE: u64 = 1024 * 1024;

/// Memory per open object (a rotating object finishing in the background holds its own).
const MAX_MEMORY: u64 = 32 * 1024 * 1024;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_args()?;
    let (client, server) = connect().await?;
    let mut shipper = Shipper {
        target: Arc::new(client.bucket(&settings.bucket)),
        settings,
        current: None,
        last_name: String::new(),
        repeats: 0,
        finishing: JoinSet::new(),
    };

    let mut input = BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    let mut stop = std::pin::pin!(stop_signal());
    loop {
        let age_limit = shipper.rotation_deadline();
        tokio::select! {
            () = &mut stop => {
                eprintln!("stopping: completing the open object");
                break;
            }
            () = tokio::time::sleep_until(age_limit.unwrap_or_else(Instant::now)),
                if age_limit.is_some() => shipper.rotate(),
            Some(done) = shipper.finishing.join_next(), if !shipper.finishing.is_empty() => {
                report(done);
            }
            // `read_until` keeps a partly read line in `line` if another branch wins, so no
            // byte is lost; the line is handled once its newline (or the end) arrives.
            read = input.read_until(b'\n', &mut line) => {
                if read? == 0 {
                    break;
                }
                if line.last() == Some(&b'\n') {
                    shipper.write_line(&line).await?;
                    line.clear();
                }
            }
        }
    }
    if !line.is_empty() {
        // The last line had no newline: ship it as it is.
        shipper.write_line(&line).await?;
    }
    shipper.rotate();
    while let Some(done) = shipper.finishing.join_next().await {
        report(done);
    }
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}

/// What the command line asks for.
struct Settings {
    bucket: String,
    prefix: String,
    max_bytes: u64,
    max_age: Duration,
}

impl Settings {
    fn from_args() -> Result<Self, String> {
        let mut args = std::env::args().skip(1);
        let mut url = "oss://demo/logs/".to_owned();
        let mut max_bytes = DEFAULT_MAX_BYTES;
        let mut max_age = DEFAULT_MAX_AGE;
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|v| *v > 0)
                    .ok_or(format!("{name} takes a positive whole number"))
            };
            match arg.as_str() {
                "--max-bytes" => max_bytes = value("--max-bytes")?,
                "--max-age" => max_age = Duration::from_secs(value("--max-age")?),
                other => url = other.to_owned(),
            }
        }
        let (bucket, prefix) = url
            .strip_prefix("oss://")
            .map(|rest| rest.split_once('/').unwrap_or((rest, "")))
            .ok_or("the destination must look like oss://BUCKET/PREFIX/")?;
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            max_bytes,
            max_age,
        })
    }
}

/// The object being filled.
struct Current {
    key: String,
    writer: ObjectWriter,
    opened: Instant,
    bytes: u64,
}

struct Shipper {
    target: Arc<Bucket>,
    settings: Settings,
    current: Option<Current>,
    /// The name of the last object opened, to tell apart two opened in the same second.
    last_name: String,
    repeats: u32,
    /// Rotated objects whose Complete is running.
    finishing: JoinSet<(String, osspipe::Result<UploadOutcome>)>,
}

impl Shipper {
    /// When the open object reaches its maximum age.
    fn rotation_deadline(&self) -> Option<Instant> {
        self.current
            .as_ref()
            .map(|current| current.opened + self.settings.max_age)
    }

    async fn write_line(&mut self, line: &[u8]) -> osspipe::Result<()> {
        if self.current.is_none() {
            let key = self.next_key();
            let writer = ObjectWriter::builder(self.target.clone(), &key)
                .part_size(PART_SIZE)
                .max_memory(MAX_MEMORY)
                .build()?;
            self.current = Some(Current {
                key,
                writer,
                opened: Instant::now(),
                bytes: 0,
            });
        }
        let current = self.current.as_mut().expect("opened above");
        current
            .writer
            .write_all(line)
            .await
            .map_err(osspipe::Error::from_io)?;
        current.bytes += line.len() as u64;
        if current.bytes >= self.settings.max_bytes {
            self.rotate();
        }
        Ok(())
    }

    /// Completes the open object in the background (if there is one).
    fn rotate(&mut self) {
        let Some(mut current) = self.current.take() else {
            return;
        };
        self.finishing.spawn(async move {
            let result = match current.writer.shutdown().await {
                Ok(()) => Ok(current.writer.outcome().expect("shut down").clone()),
                Err(error) => Err(osspipe::Error::from_io(error)),
            };
            (current.key, result)
        });
    }

    /// `PREFIX/2026/11/25/13-00-00.log` for now (UTC), with `-1`, `-2`, ... when several
    /// objects open within one second.
    fn next_key(&mut self) -> String {
        let name = utc_name(SystemTime::now());
        if name == self.last_name {
            self.repeats += 1;
        } else {
            self.last_name = name.clone();
            self.repeats = 0;
        }
        match self.repeats {
            0 => format!("{}{name}.log", self.settings.prefix),
            n => format!("{}{name}-{n}.log", self.settings.prefix),
        }
    }
}

fn report(done: Result<(String, osspipe::Result<UploadOutcome>), tokio::task::JoinError>) {
    match done {
        Ok((key, Ok(outcome))) => println!(
            "stored {key}: {} bytes in {} part(s), crc64 {}",
            outcome.size, outcome.parts, outcome.crc64
        ),
        Ok((key, Err(error))) => eprintln!("FAILED to store {key}: {error}"),
        Err(error) => eprintln!("FAILED: a completion task died: {error}"),
    }
}

/// `2026/11/25/13-00-00` for a time (UTC).
fn utc_name(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}/{month:02}/{day:02}/{:02}-{:02}-{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_utc_calendar() {
        assert_eq!(utc_name(UNIX_EPOCH), "1970/01/01/00-00-00");
        let moment = UNIX_EPOCH + Duration::from_secs(1_795_611_600); // 2026-11-25T13:00:00Z
        assert_eq!(utc_name(moment), "2026/11/25/13-00-00");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_661); // 2000-02-29T01:01:01Z
        assert_eq!(utc_name(leap), "2000/02/29/01-01-01");
    }
}
