//! `osspipe put`: standard input (or a file) into one object.
//!
//! A pipe on standard input is read without blocking straight into the writer's part buffers
//! ([`ObjectWriter::copy_from`]). Anything else (a file, a terminal) is read by a thread doing
//! large blocking reads (1 MiB) into reused buffers, handing `Bytes` to the async side over a
//! small bounded channel, so memory stays bounded by the writer's budget plus a few chunks.
//! Every wait (for input, for the writer, for Complete) races SIGINT/SIGTERM: a signal before
//! the end aborts the upload (or keeps its parts with `--keep-parts-on-error`). The object is
//! completed only after the input reached its end; a read error or a signal never completes a
//! truncated object.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use osspipe::target::{MultipartTarget, ObjectOptions};
use osspipe::upload::{MemoryTarget, ObjectWriter, ObjectWriterBuilder, UploadOutcome};
use osspipe::{limits, Error, Operation};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::cli::PutArgs;
use crate::connect::{destination, Connection, EnvCredentials};
use crate::parse::{human_bytes, shell_quote, OssUrl};
use crate::progress::{self, eprintln_clean, ProgressLine};
use crate::report::Failure;
use crate::signals::Signals;

/// The size of one read from the input. Large reads keep the syscall count low on a fast pipe;
/// a read returns what the pipe holds, so a slow producer is not held back.
const READ_CHUNK: usize = 1024 * 1024;

/// A read buffer with less room than this is swapped for another, so reads stay large.
const MIN_READ_ROOM: usize = 64 * 1024;

/// The capacity asked for a pipe on standard input (see [`StdinPipe::open`]).
#[cfg(target_os = "linux")]
const PIPE_BYTES: libc::c_int = 1024 * 1024;

/// The alignment of the read buffers' start (see [`ReadBuffers::next`]).
const READ_ALIGN: usize = 4096;

/// Read buffers kept for reuse while the writer still holds chunks of them. Filling fresh
/// memory costs page faults and zeroing; a reclaimed buffer is already mapped and warm.
const SPARE_READ_BUFFERS: usize = 3;

/// Chunks read ahead of the writer (each at most [`READ_CHUNK`]).
const READ_AHEAD: usize = 8;

/// After standard input ends, how long a SIGINT/SIGTERM still counts as "before the end".
///
/// Ctrl-C on a terminal signals the whole pipeline at once: the producer dies, which closes
/// the pipe, and our own SIGINT may be handled a moment after the end of input is seen. Without
/// this grace, `head -c 10G /dev/urandom | osspipe put ...` interrupted by Ctrl-C could complete
/// a truncated object.
const EOF_SIGNAL_GRACE: Duration = Duration::from_millis(50);

/// Runs `osspipe put`.
///
/// # Errors
/// A [`Failure`] carrying the exit code: 2 for bad usage (before any request), 1 for a failed
/// upload, 130 when interrupted.
pub(crate) async fn run(args: PutArgs, quiet: bool) -> Result<(), Failure> {
    let options = object_options(&args)?;
    let input = Input::open(&args)?;
    // The writer's settings are checked before anything starts (the embedded server creates
    // its directory): a throwaway writer over an in-memory target applies the same rules, and
    // building one sends nothing.
    writer_builder(
        &args,
        Arc::new(MemoryTarget::new()),
        options.clone(),
        input.size,
    )
    .build()
    .map_err(|e| Failure::usage(e.to_string()))?;
    let destination = destination(&args.connect, EnvCredentials::from_env())?;
    let mut signals = Signals::new()
        .map_err(|e| Failure::failed(format!("cannot listen for SIGINT/SIGTERM: {e}")))?;
    let connection = Connection::open(destination, quiet).await?;
    let result = upload(&args, options, input, &connection, &mut signals, quiet).await;
    connection.close().await;
    result
}

/// The object's headers from the flags, checked before anything is sent.
fn object_options(args: &PutArgs) -> Result<ObjectOptions, Failure> {
    limits::validate_metadata(&args.meta)
        .map_err(|e| Failure::usage(format!("invalid --meta: {e}")))?;
    let mut options = ObjectOptions::default();
    options.content_type = args.content_type.clone();
    options.metadata = args.meta.clone();
    options.storage_class = args.storage_class.clone();
    options.tagging = args.tagging.clone();
    options.forbid_overwrite = args.forbid_overwrite;
    options.acl = args.acl.clone();
    Ok(options)
}

/// The writer the flags describe.
fn writer_builder(
    args: &PutArgs,
    target: Arc<dyn MultipartTarget>,
    options: ObjectOptions,
    input_size: Option<u64>,
) -> ObjectWriterBuilder {
    let mut builder = ObjectWriter::builder(target, &args.url.key)
        .options(options)
        .keep_parts_on_drop(args.keep_parts_on_error);
    if let Some(part_size) = args.part_size {
        builder = builder.part_size(part_size);
    }
    if let Some(max_memory) = args.max_memory {
        builder = builder.max_memory(max_memory);
    }
    if let Some(concurrency) = args.concurrency {
        builder = builder.max_in_flight(usize::from(concurrency));
    }
    if let Some(hint) = args.expected_size.or(input_size) {
        builder = builder.size_hint(hint);
    }
    builder
}

/// Where the bytes come from.
struct Input {
    /// "standard input" or the file's path, for messages.
    name: String,
    /// Whether this is standard input (which ends when the producer dies).
    is_stdin: bool,
    /// The size, when it is a regular file.
    size: Option<u64>,
    reader: Box<dyn Read + Send>,
}

impl Input {
    fn open(args: &PutArgs) -> Result<Self, Failure> {
        match &args.file {
            None => Ok(Self {
                name: "standard input".to_owned(),
                is_stdin: true,
                size: None,
                reader: Box::new(io::stdin()),
            }),
            Some(path) => {
                let file = File::open(path).map_err(|e| {
                    Failure::usage(format!("cannot open --file {}: {e}", path.display()))
                })?;
                let metadata = file.metadata().map_err(|e| {
                    Failure::usage(format!("cannot read --file {}: {e}", path.display()))
                })?;
                if metadata.is_dir() {
                    return Err(Failure::usage(format!(
                        "--file {} is a directory",
                        path.display()
                    )));
                }
                Ok(Self {
                    name: path.display().to_string(),
                    is_stdin: false,
                    size: metadata.is_file().then_some(metadata.len()),
                    reader: Box::new(file),
                })
            }
        }
    }

    /// Starts the reader thread. The channel ends (`None`) at the end of input, after an error,
    /// or never if the input never ends; the thread stops when the receiver is dropped.
    fn spawn(self) -> mpsc::Receiver<io::Result<Bytes>> {
        let (sender, receiver) = mpsc::channel(READ_AHEAD);
        let mut reader = self.reader;
        let spawned = std::thread::Builder::new()
            .name("osspipe-read".to_owned())
            .spawn(move || {
                // One allocation serves many short reads (a pipe gives at most 64 KiB at a
                // time): each read's bytes are split off and sent, sharing the buffer.
                let mut buffers = ReadBuffers::default();
                let mut buffer = buffers.next();
                loop {
                    if buffer.len() < MIN_READ_ROOM {
                        buffer = buffers.swap(buffer);
                    }
                    let message = match reader.read(&mut buffer[..]) {
                        Ok(0) => return,
                        Ok(read) => Ok(buffer.split_to(read).freeze()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => Err(e),
                    };
                    let failed = message.is_err();
                    if sender.blocking_send(message).is_err() || failed {
                        return;
                    }
                }
            });
        if let Err(error) = spawned {
            // Without a reader thread there is no input: report it as a read error.
            let (sender, receiver) = mpsc::channel(1);
            let _ = sender.try_send(Err(error));
            return receiver;
        }
        receiver
    }
}

/// The reader thread's buffers: the one being read into and a few whose chunks the writer may
/// still hold, reclaimed once every chunk of them is dropped.
#[derive(Default)]
struct ReadBuffers {
    spare: Vec<BytesMut>,
}

impl ReadBuffers {
    /// Retires `used` (its chunks may still be in use) and returns a buffer of [`READ_CHUNK`]
    /// initialised bytes to read into.
    fn swap(&mut self, mut used: BytesMut) -> BytesMut {
        used.clear();
        if self.spare.len() >= SPARE_READ_BUFFERS {
            // Every spare is still held downstream: let the oldest go with its chunks.
            self.spare.remove(0);
        }
        self.spare.push(used);
        self.next()
    }

    fn next(&mut self) -> BytesMut {
        let capacity = READ_CHUNK + READ_ALIGN;
        let reclaimed = self
            .spare
            .iter_mut()
            .position(|buffer| buffer.try_reclaim(capacity));
        let mut buffer = match reclaimed {
            Some(index) => self.spare.remove(index),
            None => BytesMut::with_capacity(capacity),
        };
        // The kernel's copy out of the pipe runs at half speed into a destination that is not
        // 64-byte aligned on this class of CPU (about 0.6 vs 0.3 CPU s/GiB measured), and malloc
        // gives 16: start the reads on a page boundary.
        let pad = buffer.as_ptr().align_offset(READ_ALIGN);
        buffer.resize(pad + READ_CHUNK, 0);
        buffer.advance(pad);
        buffer
    }
}

/// Standard input when it is a pipe (or FIFO), read without blocking a thread so that
/// [`ObjectWriter::copy_from`] can read it straight into the part buffers.
struct StdinPipe {
    #[cfg(unix)]
    receiver: tokio::net::unix::pipe::Receiver,
    /// The read error, if reading failed (told apart from the writer's own errors).
    failure: Option<io::Error>,
}

impl StdinPipe {
    /// `None` when standard input is not a pipe (a file, a terminal, /dev/null) or cannot be
    /// switched to non-blocking mode.
    #[cfg(not(unix))]
    fn open() -> Option<Self> {
        None
    }

    #[cfg(unix)]
    fn open() -> Option<Self> {
        use std::os::fd::AsFd;
        let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // A 64 KiB pipe (the default) makes the producer and this reader take turns every
            // 64 KiB; 1 MiB (the unprivileged maximum) lets the producer keep writing while
            // we check a read's CRC. Failing (a lowered limit) just keeps the default.
            // SAFETY: fcntl on a descriptor we own, with an integer argument.
            let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES) };
        }
        let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(fd).ok()?;
        Some(Self {
            receiver,
            failure: None,
        })
    }

    /// Puts the pipe back in blocking mode: the mode belongs to the pipe, which a shell may
    /// hand to the next command.
    fn restore(self) {
        #[cfg(unix)]
        if let Err(error) = self.receiver.into_blocking_fd() {
            tracing::debug!("could not put standard input back in blocking mode: {error}");
        }
    }
}

impl tokio::io::AsyncRead for StdinPipe {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let this = &mut *self;
        #[cfg(unix)]
        let polled = std::pin::Pin::new(&mut this.receiver).poll_read(cx, buf);
        #[cfg(not(unix))]
        let polled = {
            let _ = (cx, buf);
            std::task::Poll::Ready(Ok(()))
        };
        if let std::task::Poll::Ready(Err(error)) = &polled {
            this.failure = Some(io::Error::new(error.kind(), error.to_string()));
        }
        polled
    }
}

/// Why the stream stopped before its end.
enum Stop {
    /// SIGINT or SIGTERM.
    Signal(&'static str),
    /// Reading the input failed.
    Input(io::Error),
    /// The writer failed (it has aborted the upload).
    Writer(Error),
}

async fn upload(
    args: &PutArgs,
    options: ObjectOptions,
    input: Input,
    connection: &Connection,
    signals: &mut Signals,
    quiet: bool,
) -> Result<(), Failure> {
    let url = &args.url;
    let target = Arc::new(connection.client.bucket(&url.bucket));
    // Checked in `run` already; nothing has been sent, so a refusal is still a usage error.
    let mut writer = writer_builder(args, target, options, input.size)
        .build()
        .map_err(|e| Failure::usage(e.to_string()))?;

    let started = Instant::now();
    let line = ProgressLine::new(progress::enabled(quiet), "put", input.size);
    let follower = line.follow_upload(writer.subscribe());
    let input_name = input.name.clone();
    let is_stdin = input.is_stdin;
    if is_stdin && !quiet && std::io::stdin().is_terminal() {
        eprintln_clean("osspipe: reading the object from the terminal; end it with Ctrl-D");
    }
    // A pipe on standard input is read straight into the part buffers (one copy of each byte,
    // by the kernel); anything else goes through the reader thread.
    let mut pipe = if is_stdin { StdinPipe::open() } else { None };

    let mut stop = if let Some(pipe) = &mut pipe {
        tokio::select! {
            biased;
            signal = signals.recv() => Some(Stop::Signal(signal)),
            copied = writer.copy_from(pipe) => match (copied, pipe.failure.take()) {
                (Ok(_), _) => None,
                (Err(_), Some(read_error)) => Some(Stop::Input(read_error)),
                (Err(error), None) => Some(Stop::Writer(error)),
            },
        }
    } else {
        // Dropping `chunks` after the loop stops the reader thread at its next send.
        let mut chunks = input.spawn();
        loop {
            let next = tokio::select! {
                biased;
                signal = signals.recv() => break Some(Stop::Signal(signal)),
                next = chunks.recv() => next,
            };
            match next {
                None => break None,
                Some(Err(error)) => break Some(Stop::Input(error)),
                Some(Ok(chunk)) => {
                    tokio::select! {
                        biased;
                        signal = signals.recv() => break Some(Stop::Signal(signal)),
                        written = writer.write_bytes(chunk) => {
                            if let Err(error) = written {
                                break Some(Stop::Writer(error));
                            }
                        }
                    }
                }
            }
        }
    };
    if stop.is_none() && is_stdin {
        tokio::select! {
            biased;
            signal = signals.recv() => stop = Some(Stop::Signal(signal)),
            () = tokio::time::sleep(EOF_SIGNAL_GRACE) => {}
        }
    }
    // Whether the signal came while the upload was being completed: Complete may then have
    // reached OSS even though its answer was never awaited.
    let mut completing = false;
    if stop.is_none() {
        completing = true;
        tokio::select! {
            biased;
            signal = signals.recv() => stop = Some(Stop::Signal(signal)),
            finished = writer.shutdown() => {
                if let Err(error) = finished {
                    stop = Some(Stop::Writer(Error::from_io(error)));
                }
            }
        }
    }
    // The pipe goes back to blocking mode for whoever reads it after us.
    if let Some(pipe) = pipe {
        pipe.restore();
    }

    let Some(stop) = stop else {
        let outcome = writer
            .outcome()
            .cloned()
            .ok_or_else(|| Failure::failed("the writer finished without an outcome"))?;
        drop(writer);
        follower.abort();
        line.clear();
        print_outcome(url, &outcome, started.elapsed(), args.json);
        return Ok(());
    };
    let progress = writer.progress();
    let accepted = progress.bytes_accepted;
    // With parts still in flight, Complete had not been sent yet.
    let completing = completing && progress.parts_in_flight == 0;
    let failure = match stop {
        Stop::Signal(signal) => Failure::interrupted(format!(
            "interrupted by {signal} after {} of {input_name}",
            human_bytes(accepted)
        )),
        Stop::Input(error) => Failure::failed(format!(
            "reading {input_name} failed after {}: {error}",
            human_bytes(accepted)
        )),
        Stop::Writer(error) => {
            drop(writer);
            follower.abort();
            line.clear();
            let failure = Failure::from_error(&error);
            let fate = match error.upload_id() {
                Some(id) => format!("note: upload {id} was aborted; no object was written"),
                None => "note: no object was written".to_owned(),
            };
            return Err(failure.first_note(fate));
        }
    };
    let mut fate = if args.keep_parts_on_error {
        keep_parts(writer, url, connection, signals, &line).await
    } else {
        abort(writer, url, connection, signals, &line).await
    };
    follower.abort();
    line.clear();
    if completing {
        fate.push(format!(
            "note: the signal came while the upload was being completed, so OSS may have \
             completed it anyway: check with `osspipe get {}{}`",
            shell_quote(&url.to_string()),
            connection.repeat_flags()
        ));
    }
    Err(fate.into_iter().fold(failure, Failure::note))
}

/// Aborts the upload after an interruption or a read error; a second signal stops waiting.
async fn abort(
    writer: ObjectWriter,
    url: &OssUrl,
    connection: &Connection,
    signals: &mut Signals,
    line: &ProgressLine,
) -> Vec<String> {
    let upload_id = writer.upload_id().map(str::to_owned);
    if upload_id.is_some() {
        line.clear();
        eprintln_clean("osspipe: aborting the upload (send the signal again to stop waiting)");
    }
    tokio::select! {
        biased;
        _ = signals.recv() => match upload_id {
            Some(id) => vec![
                format!("note: stopped before upload {id} was aborted; its parts may remain"),
                format!(
                    "note: delete them with: {}",
                    command("abort", url, &id, connection)
                ),
            ],
            None => vec![
                "note: stopped while the upload was starting; list what is left with: osspipe \
                 uploads"
                    .to_owned()
                    + &format!(" oss://{}{}", url.bucket, connection.repeat_flags()),
            ],
        },
        aborted = writer.abort() => match (aborted, upload_id) {
            (Err(error), Some(id)) if error.operation() == Some(Operation::AbortMultipartUpload) => vec![
                format!("note: could not abort upload {id}: {error}"),
                format!(
                    "note: delete its parts with: {}",
                    command("abort", url, &id, connection)
                ),
            ],
            (Err(error), _) => vec![format!("note: the upload had already failed: {error}")],
            (Ok(()), Some(id)) => {
                vec![format!("note: upload {id} was aborted; no object was written")]
            }
            (Ok(()), None) => vec!["note: no object was written".to_owned()],
        },
    }
}

/// Keeps the uploaded parts after an interruption or a read error: waits for the parts in
/// flight (a second signal stops waiting), then leaves the upload for `osspipe recover`.
async fn keep_parts(
    mut writer: ObjectWriter,
    url: &OssUrl,
    connection: &Connection,
    signals: &mut Signals,
    line: &ProgressLine,
) -> Vec<String> {
    let in_flight = writer.progress().parts_in_flight;
    if in_flight > 0 {
        line.clear();
        eprintln_clean(&format!(
            "osspipe: waiting for {in_flight} part{} in flight (send the signal again to stop \
             waiting)",
            if in_flight == 1 { "" } else { "s" }
        ));
    }
    let waited = tokio::select! {
        biased;
        _ = signals.recv() => None,
        durable = writer.sync_durable(false) => Some(durable),
    };
    let progress = writer.progress();
    let upload_id = writer.upload_id().map(str::to_owned);
    if let Some(Err(error)) = &waited {
        return vec![format!(
            "note: the upload failed while its last parts were sent ({error}); no object was \
             written"
        )];
    }
    // Dropping a writer built with keep_parts_on_drop leaves the upload as it is.
    drop(writer);
    match upload_id {
        None => vec!["note: nothing had been uploaded yet; no object was written".to_owned()],
        Some(id) => vec![
            format!(
                "note: kept upload {id}: {} part{} ({}) reached OSS{}",
                progress.parts_acknowledged,
                if progress.parts_acknowledged == 1 {
                    ""
                } else {
                    "s"
                },
                human_bytes(progress.bytes_durable),
                if waited.is_none() {
                    "; parts still in flight may or may not have"
                } else {
                    ""
                }
            ),
            format!(
                "note: complete the object from them with: {}",
                command("recover", url, &id, connection)
            ),
            format!(
                "note: or delete them with: {}",
                command("abort", url, &id, connection)
            ),
        ],
    }
}

/// `osspipe VERB oss://bucket/key --upload-id ID [--local-dir DIR]`, quoted for a shell.
fn command(verb: &str, url: &OssUrl, upload_id: &str, connection: &Connection) -> String {
    format!(
        "osspipe {verb} {} --upload-id {}{}",
        shell_quote(&url.to_string()),
        shell_quote(upload_id),
        connection.repeat_flags()
    )
}

/// `put --json`, in this field order.
#[derive(serde::Serialize)]
struct Summary<'a> {
    bucket: &'a str,
    key: &'a str,
    size: u64,
    parts: u32,
    etag: &'a str,
    /// A decimal string: a `u64` does not survive JSON parsers that read numbers as doubles.
    crc64: String,
    upload_id: Option<&'a str>,
    seconds: f64,
}

/// The summary line (or JSON object) on stdout.
fn print_outcome(url: &OssUrl, outcome: &UploadOutcome, elapsed: Duration, json: bool) {
    let seconds = elapsed.as_secs_f64();
    let etag = outcome.etag.trim_matches('"');
    if json {
        let summary = Summary {
            bucket: &url.bucket,
            key: &url.key,
            size: outcome.size,
            parts: outcome.parts,
            etag,
            crc64: outcome.crc64.to_string(),
            upload_id: outcome.upload_id.as_deref(),
            seconds: (seconds * 1000.0).round() / 1000.0,
        };
        match serde_json::to_string(&summary) {
            Ok(line) => println!("{line}"),
            Err(error) => eprintln_clean(&format!("osspipe: cannot print JSON: {error}")),
        }
        return;
    }
    let how = match &outcome.upload_id {
        Some(id) => format!(
            "{} part{} (upload {id})",
            outcome.parts,
            if outcome.parts == 1 { "" } else { "s" }
        ),
        None => "one PutObject".to_owned(),
    };
    let rate = if seconds > 0.0 {
        format!(
            " ({}/s)",
            human_bytes((outcome.size as f64 / seconds) as u64)
        )
    } else {
        String::new()
    };
    println!(
        "{url}: {} ({} bytes) in {how}, {seconds:.2} s{rate}, crc64 {}, etag {etag}",
        human_bytes(outcome.size),
        outcome.size,
        outcome.crc64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_buffers_are_reused_once_their_chunks_are_dropped() {
        let mut buffers = ReadBuffers::default();
        let mut buffer = buffers.next();
        let start = buffer.as_ptr();
        let chunk = buffer.split_to(READ_CHUNK - MIN_READ_ROOM + 1).freeze();
        // A chunk still held downstream keeps its buffer out of reuse.
        let buffer = buffers.swap(buffer);
        assert_ne!(buffer.as_ptr(), start);
        assert_eq!(buffer.len(), READ_CHUNK);
        drop(chunk);
        let buffer = buffers.swap(buffer);
        assert_eq!(buffer.as_ptr(), start, "the first buffer is reclaimed");
        assert_eq!(buffer.len(), READ_CHUNK);
        assert_eq!(buffer.as_ptr() as usize % READ_ALIGN, 0);
    }

    #[test]
    fn read_buffers_stay_bounded_when_chunks_are_held() {
        let mut buffers = ReadBuffers::default();
        let mut held = Vec::new();
        let mut buffer = buffers.next();
        for _ in 0..10 {
            held.push(buffer.split_to(READ_CHUNK).freeze());
            buffer = buffers.swap(buffer);
            assert!(buffers.spare.len() <= SPARE_READ_BUFFERS);
        }
    }
}
