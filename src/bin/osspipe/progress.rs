//! The live progress line on stderr, and stderr output that does not tear it.
//!
//! The line is drawn only when stderr is a terminal (and `--quiet` is not given): piped or
//! redirected, the command stays quiet. Log lines and error messages go through
//! [`eprintln_clean`] and [`LogWriter`], which lift the line out of the way while they print.

use std::io::{self, IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use osspipe::upload::Progress;
use tokio::sync::watch;

use crate::parse::human_bytes;

/// How often the line is redrawn.
const REFRESH: Duration = Duration::from_millis(100);

/// Redraws per second allowed on the terminal.
const DRAW_HZ: u8 = 10;

/// The progress line being drawn now, so that log and error output can step around it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Whether a progress line may be drawn at all.
pub(crate) fn enabled(quiet: bool) -> bool {
    !quiet && io::stderr().is_terminal()
}

/// A progress line for one transfer; hidden when drawing is not [`enabled`].
#[derive(Debug)]
pub(crate) struct ProgressLine {
    bar: ProgressBar,
}

impl ProgressLine {
    /// A line for moving bytes; `total` draws a bar when the size is known.
    pub(crate) fn new(draw: bool, verb: &str, total: Option<u64>) -> Self {
        if !draw {
            return Self {
                bar: ProgressBar::hidden(),
            };
        }
        let template = match total {
            Some(_) => format!(
                "{{spinner}} {verb} [{{bar:30}}] {{binary_bytes}}/{{binary_total_bytes}} \
                 {{binary_bytes_per_sec}} {{msg}} eta {{eta}}"
            ),
            None => format!(
                "{{spinner}} {verb} {{binary_bytes}} {{binary_bytes_per_sec}} {{msg}} \
                 ({{elapsed}})"
            ),
        };
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(DRAW_HZ))
            .with_style(style);
        bar.enable_steady_tick(REFRESH);
        *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        Self { bar }
    }

    /// Sets the bytes moved so far.
    pub(crate) fn set_position(&self, bytes: u64) {
        self.bar.set_position(bytes);
    }

    /// Follows an upload: bytes accepted (the bar's position), bytes durable, parts in flight.
    /// The returned task ends when the writer is dropped.
    pub(crate) fn follow_upload(
        &self,
        mut progress: watch::Receiver<Progress>,
    ) -> tokio::task::JoinHandle<()> {
        let bar = self.bar.clone();
        tokio::spawn(async move {
            if bar.is_hidden() {
                return;
            }
            loop {
                let snapshot = progress.borrow_and_update().clone();
                bar.set_position(snapshot.bytes_accepted);
                bar.set_message(upload_message(&snapshot));
                if progress.changed().await.is_err() {
                    return;
                }
            }
        })
    }

    /// Removes the line from the terminal.
    pub(crate) fn clear(&self) {
        self.bar.finish_and_clear();
        let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        *active = None;
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.clear();
    }
}

/// `"48.0 MiB durable, 3 parts in flight"` (and the retries, once there are any).
fn upload_message(progress: &Progress) -> String {
    let mut message = format!(
        "| {} durable, {} part{} in flight",
        human_bytes(progress.bytes_durable),
        progress.parts_in_flight,
        if progress.parts_in_flight == 1 {
            ""
        } else {
            "s"
        }
    );
    if progress.retries > 0 {
        message.push_str(&format!(", {} retries", progress.retries));
    }
    message
}

/// Runs `print` with the progress line lifted, if one is drawn.
fn around_line<R>(print: impl FnOnce() -> R) -> R {
    let bar = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match bar {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// Prints a line on stderr without tearing the progress line.
pub(crate) fn eprintln_clean(line: &str) {
    around_line(|| {
        let mut stderr = io::stderr().lock();
        let _ = writeln!(stderr, "{line}");
    });
}

/// The tracing subscriber's writer: stderr, stepping around the progress line.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        around_line(|| io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_durable_bytes_and_parts_in_flight() {
        let mut progress = Progress::default();
        progress.bytes_accepted = 64 << 20;
        progress.bytes_durable = 48 << 20;
        progress.parts_in_flight = 2;
        assert_eq!(
            upload_message(&progress),
            "| 48.0 MiB durable, 2 parts in flight"
        );
    }

    #[test]
    fn a_hidden_line_draws_nothing() {
        let line = ProgressLine::new(false, "upload", None);
        line.set_position(10);
        assert!(line.bar.is_hidden());
        assert!(ACTIVE.lock().unwrap().is_none());
    }
}
