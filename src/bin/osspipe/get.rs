//! `osspipe get`: one object to standard output or to a file, with its CRC-64 checked.
//!
//! The CRC-64 of the bytes received is computed here and compared with the whole-object CRC
//! in `x-oss-hash-crc64ecma`; the byte count is compared with `Content-Length`. With
//! `--output`, the bytes go to a temporary file beside the target, which is synced and renamed
//! only when everything checked out, so a failed or interrupted download never leaves a
//! partial file under the target's name.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use osspipe::crc64::Crc64;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::cli::GetArgs;
use crate::connect::{destination, Connection, EnvCredentials};
use crate::parse::human_bytes;
use crate::progress::{self, eprintln_clean, ProgressLine};
use crate::report::Failure;
use crate::signals::Signals;

/// Runs `osspipe get`.
///
/// # Errors
/// A [`Failure`]: 2 for bad usage, 1 for a failed or corrupt download, 130 when interrupted.
pub(crate) async fn run(args: GetArgs, quiet: bool) -> Result<(), Failure> {
    match &args.output {
        None if std::io::stdout().is_terminal() => {
            return Err(Failure::usage(
                "refusing to write an object to a terminal: redirect standard output or pass \
                 --output PATH",
            ))
        }
        None => {}
        Some(path) => check_output_path(path)?,
    }
    let destination = destination(&args.connect, EnvCredentials::from_env())?;
    let mut signals = Signals::new()
        .map_err(|e| Failure::failed(format!("cannot listen for SIGINT/SIGTERM: {e}")))?;
    let connection = Connection::open(destination, quiet).await?;
    let result = download(&args, &connection, &mut signals, quiet).await;
    connection.close().await;
    result
}

/// Refuses an output path whose directory is missing, or that is a directory.
fn check_output_path(path: &Path) -> Result<(), Failure> {
    if path.is_dir() {
        return Err(Failure::usage(format!(
            "--output {} is a directory: name a file",
            path.display()
        )));
    }
    let parent = parent_dir(path);
    if !parent.is_dir() {
        return Err(Failure::usage(format!(
            "--output {}: the directory {} does not exist",
            path.display(),
            parent.display()
        )));
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

async fn download(
    args: &GetArgs,
    connection: &Connection,
    signals: &mut Signals,
    quiet: bool,
) -> Result<(), Failure> {
    let url = &args.url;
    let interrupted = |signal: &str| Failure::interrupted(format!("interrupted by {signal}"));
    let output = tokio::select! {
        biased;
        signal = signals.recv() => return Err(interrupted(signal)),
        output = connection.client.get_object(&url.bucket, &url.key) => output?,
    };
    let expected_size = output.metadata.content_length;
    let expected_crc = output.metadata.crc64;
    let mut body = output.body;
    let mut sink = match &args.output {
        Some(path) => Sink::file(path).await?,
        None => Sink::Stdout(tokio::io::stdout()),
    };
    let line = ProgressLine::new(progress::enabled(quiet), "get", Some(expected_size));
    let mut crc = Crc64::new();
    loop {
        let chunk = tokio::select! {
            biased;
            signal = signals.recv() => {
                sink.discard().await;
                return Err(interrupted(signal).note(format!(
                    "note: stopped after {} of {url}",
                    human_bytes(crc.len())
                )));
            }
            chunk = body.next() => chunk,
        };
        let chunk = match chunk {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(error)) => {
                let mut failure = Failure::from_error(&error)
                    .context(&format!("reading {url} after {}", human_bytes(crc.len())));
                if args.output.is_none() && error.kind() == osspipe::ErrorKind::CrcMismatch {
                    failure = failure
                        .note("note: the bytes already written to standard output are corrupt");
                }
                sink.discard().await;
                return Err(failure);
            }
        };
        crc.update(&chunk);
        if let Err(error) = sink.writer().write_all(&chunk).await {
            let failure = Failure::failed(format!(
                "writing {} failed after {}: {error}",
                sink.name(),
                human_bytes(crc.len())
            ));
            sink.discard().await;
            return Err(failure);
        }
        line.set_position(crc.len());
    }
    line.clear();
    if crc.len() != expected_size {
        sink.discard().await;
        return Err(Failure::failed(format!(
            "{url}: received {} bytes, but Content-Length said {expected_size}",
            crc.len()
        )));
    }
    match expected_crc {
        Some(expected) if expected != crc.value() => {
            sink.discard().await;
            return Err(Failure::failed(format!(
                "{url}: CRC-64 mismatch: the object's x-oss-hash-crc64ecma is {expected}, the \
                 bytes received give {}",
                crc.value()
            ))
            .note("hint: the bytes were corrupted in transit: try again")
            .note(match &args.output {
                Some(_) => "note: the output file was not written",
                None => "note: the bytes already written to standard output are corrupt",
            }));
        }
        Some(_) => {}
        None if !quiet => eprintln_clean(&format!(
            "osspipe: warning: {url} has no x-oss-hash-crc64ecma, so its bytes were not verified"
        )),
        None => {}
    }
    sink.commit().await
}

/// Where the bytes go.
enum Sink {
    Stdout(tokio::io::Stdout),
    File {
        file: tokio::fs::File,
        temporary: PathBuf,
        target: PathBuf,
    },
}

impl Sink {
    /// A temporary file beside `target`: `.NAME.osspipe-PID.partial`.
    async fn file(target: &Path) -> Result<Self, Failure> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "object".to_owned());
        let temporary =
            parent_dir(target).join(format!(".{name}.osspipe-{}.partial", std::process::id()));
        let file = tokio::fs::File::create(&temporary)
            .await
            .map_err(|e| Failure::failed(format!("cannot create {}: {e}", temporary.display())))?;
        Ok(Self::File {
            file,
            temporary,
            target: target.to_path_buf(),
        })
    }

    fn name(&self) -> String {
        match self {
            Sink::Stdout(_) => "standard output".to_owned(),
            Sink::File { target, .. } => target.display().to_string(),
        }
    }

    fn writer(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        match self {
            Sink::Stdout(stdout) => stdout,
            Sink::File { file, .. } => file,
        }
    }

    /// Removes the temporary file (nothing to undo on standard output).
    async fn discard(self) {
        if let Sink::File { temporary, .. } = self {
            let _ = tokio::fs::remove_file(&temporary).await;
        }
    }

    /// Flushes standard output, or syncs the temporary file and renames it into place.
    async fn commit(self) -> Result<(), Failure> {
        match self {
            Sink::Stdout(mut stdout) => stdout
                .flush()
                .await
                .map_err(|e| Failure::failed(format!("writing standard output failed: {e}"))),
            Sink::File {
                mut file,
                temporary,
                target,
            } => {
                let synced = async {
                    file.flush().await?;
                    file.sync_all().await?;
                    drop(file);
                    tokio::fs::rename(&temporary, &target).await
                }
                .await;
                if let Err(error) = synced {
                    let _ = tokio::fs::remove_file(&temporary).await;
                    return Err(Failure::failed(format!(
                        "cannot write {}: {error}",
                        target.display()
                    )));
                }
                Ok(())
            }
        }
    }
}
