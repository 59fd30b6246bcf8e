//! Exit codes and the messages a person reads when something goes wrong.
//!
//! A failure prints at most a few lines on stderr: what failed (the operation, the object,
//! what OSS said: status, code, message, request id), then what to try.

use std::fmt::Write as _;

use osspipe::{Error, ErrorKind};

/// Everything worked.
pub(crate) const EXIT_OK: u8 = 0;
/// The upload (or other operation) failed after it started.
pub(crate) const EXIT_FAILED: u8 = 1;
/// A bad flag, size, URL or configuration, found before any request was sent.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Stopped by SIGINT or SIGTERM (128 + 2, the shell's convention for Ctrl-C).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// The exit code table, for `--help`.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  1    the upload or operation failed (OSS refused it, the network failed, a CRC-64 mismatch)
  2    bad usage: a flag, size, URL or configuration was refused before any request was sent
  130  interrupted by SIGINT or SIGTERM (an unfinished upload is aborted, or kept with
       --keep-parts-on-error)";

/// Why the command stops with a non-zero status, and what to tell the person.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The process exit code.
    pub(crate) code: u8,
    /// The first line: what went wrong.
    message: String,
    /// Further lines: what happened to the upload, what to try.
    notes: Vec<String>,
}

impl Failure {
    /// A usage error (exit 2): the rule that was broken.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
            notes: Vec::new(),
        }
    }

    /// A failed operation (exit 1) with a plain message.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILED,
            message: message.into(),
            notes: Vec::new(),
        }
    }

    /// Interrupted by a signal (exit 130).
    pub(crate) fn interrupted(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_INTERRUPTED,
            message: message.into(),
            notes: Vec::new(),
        }
    }

    /// A library error: exit 2 when the library refused the input or the configuration (such an
    /// error means nothing was sent for it), else 1. Adds a hint when one is known.
    pub(crate) fn from_error(error: &Error) -> Self {
        let code = match error.kind() {
            ErrorKind::Config | ErrorKind::InvalidInput => EXIT_USAGE,
            _ => EXIT_FAILED,
        };
        let mut failure = Self {
            code,
            message: error_line(error),
            notes: Vec::new(),
        };
        if let Some(hint) = hint(error) {
            failure.notes.push(format!("hint: {hint}"));
        }
        failure
    }

    /// Puts `context` (such as the object being read) before the message, unless the message
    /// already names an operation.
    pub(crate) fn context(mut self, context: &str) -> Self {
        if !self.message.contains(" failed: ") {
            self.message = format!("{context}: {}", self.message);
        }
        self
    }

    /// Adds a line after the message.
    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Adds a line before the other notes (so the upload's fate comes before the hint).
    pub(crate) fn first_note(mut self, note: impl Into<String>) -> Self {
        self.notes.insert(0, note.into());
        self
    }

    /// The lines printed on stderr.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!("osspipe: error: {}", self.message)];
        lines.extend(self.notes.iter().map(|note| format!("osspipe: {note}")));
        lines
    }

    /// Prints the lines on stderr.
    pub(crate) fn print(&self) {
        for line in self.lines() {
            crate::progress::eprintln_clean(&line);
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::from_error(&error)
    }
}

/// The error's one-line `Display`, followed by its causes (a network error's "connection
/// refused" lives in the source chain). Service errors carry everything in `Display` already.
pub(crate) fn error_line(error: &Error) -> String {
    let mut line = error.to_string();
    let mut next = std::error::Error::source(error);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !text.is_empty() && !line.contains(&text) {
            let _ = write!(line, ": {text}");
        }
        next = cause.source();
    }
    line
}

/// What a person can do about `error`, when there is something to say.
pub(crate) fn hint(error: &Error) -> Option<String> {
    hint_for(error.oss_code(), error.kind(), error.status())
}

/// The hint for an OSS code, else for the kind of failure.
fn hint_for(code: Option<&str>, kind: ErrorKind, status: Option<u16>) -> Option<String> {
    let by_code = match code {
        Some("NoSuchBucket") => Some(
            "the bucket does not exist: check its name or create it (the local server creates \
             buckets with `osspipe serve --bucket NAME`)",
        ),
        Some("NoSuchKey") => Some("no object has this key: check the key's spelling and case"),
        Some("NoSuchUpload") => Some(
            "the upload id is unknown, completed or aborted: list unfinished uploads with \
             `osspipe uploads oss://BUCKET`",
        ),
        Some("AccessDenied") => Some(
            "these credentials may not do this: check the RAM policy of OSS_ACCESS_KEY_ID and \
             the bucket's ACL",
        ),
        Some("InvalidAccessKeyId") => Some(
            "OSS does not know this access key (or the STS token expired): check \
             OSS_ACCESS_KEY_ID and OSS_SESSION_TOKEN",
        ),
        Some("SignatureDoesNotMatch") => Some(
            "the signature was refused: check OSS_ACCESS_KEY_SECRET, and that --region matches \
             the endpoint",
        ),
        Some("RequestTimeTooSkewed") => {
            Some("this machine's clock is more than 15 minutes off: synchronise it (NTP) and retry")
        }
        Some("FileAlreadyExists") => Some(
            "the object exists and --forbid-overwrite is set: choose another key or drop the flag",
        ),
        Some("EntityTooLarge") | Some("EntityTooSmall") => {
            Some("a part broke OSS's size limits (100 KiB to 5 GiB); please report this as a bug")
        }
        Some("SlowDown") | Some("ServiceUnavailable") | Some("InternalError") => {
            Some("OSS kept failing after every retry: try again later, or lower --concurrency")
        }
        _ => None,
    };
    if let Some(hint) = by_code {
        return Some(hint.to_owned());
    }
    let hint = match kind {
        ErrorKind::Network => {
            "could not talk to the endpoint: check --endpoint / OSS_ENDPOINT and the network"
        }
        ErrorKind::Timeout => {
            "the connection stopped moving, even after retries: check the network"
        }
        ErrorKind::CrcMismatch => {
            "the bytes were corrupted in transit (CRC-64 mismatch): try again; if it keeps \
             happening, report it with the request id"
        }
        ErrorKind::Credentials => "set OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET",
        ErrorKind::TooLarge => {
            "the stream outgrew the part-size plan: raise --max-memory or --part-size, or pass \
             --expected-size"
        }
        ErrorKind::Service if status.is_some_and(|s| s >= 500) => {
            "OSS kept failing after every retry: try again later, or lower --concurrency"
        }
        _ => return None,
    };
    Some(hint.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_by_code_then_by_kind() {
        let upload = hint_for(Some("NoSuchUpload"), ErrorKind::Service, Some(404)).unwrap();
        assert!(upload.contains("osspipe uploads oss://BUCKET"), "{upload}");
        let slow = hint_for(Some("SlowDown"), ErrorKind::Service, Some(503)).unwrap();
        assert!(slow.contains("--concurrency"), "{slow}");
        assert!(hint_for(None, ErrorKind::Service, Some(502)).is_some());
        assert!(hint_for(Some("InvalidArgument"), ErrorKind::Service, Some(400)).is_none());
        let skew = hint_for(Some("RequestTimeTooSkewed"), ErrorKind::Service, Some(403)).unwrap();
        assert!(skew.contains("clock"), "{skew}");
        assert!(hint_for(None, ErrorKind::CrcMismatch, None)
            .unwrap()
            .contains("CRC-64"));
        assert!(hint_for(None, ErrorKind::Io, None).is_none());
    }

    #[test]
    fn causes_are_appended_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = Error::new(ErrorKind::Network, "could not connect").with_source(io);
        assert_eq!(error_line(&error), "could not connect: connection refused");
        let failure = Failure::from_error(&error);
        assert_eq!(failure.code, EXIT_FAILED);
        assert_eq!(
            failure.lines(),
            vec![
                "osspipe: error: could not connect: connection refused".to_owned(),
                "osspipe: hint: could not talk to the endpoint: check --endpoint / OSS_ENDPOINT \
                 and the network"
                    .to_owned(),
            ]
        );
    }

    #[test]
    fn context_is_added_once() {
        let bare = Failure::failed("crc-64 mismatch").context("reading oss://b/k");
        assert_eq!(
            bare.lines()[0],
            "osspipe: error: reading oss://b/k: crc-64 mismatch"
        );
        let named = Failure::failed("GetObject of oss://b/k failed: 404 NoSuchKey")
            .context("reading oss://b/k");
        assert_eq!(
            named.lines()[0],
            "osspipe: error: GetObject of oss://b/k failed: 404 NoSuchKey"
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            Failure::from_error(&Error::invalid_input("bad")).code,
            EXIT_USAGE
        );
        assert_eq!(
            Failure::from_error(&Error::new(ErrorKind::Config, "no region")).code,
            EXIT_USAGE
        );
        let refused = Error::invalid_input("bad").with_operation(osspipe::Operation::PutObject);
        assert_eq!(Failure::from_error(&refused).code, EXIT_USAGE);
        assert_eq!(
            Failure::from_error(&Error::new(ErrorKind::Network, "reset")).code,
            EXIT_FAILED
        );
        assert_eq!(Failure::usage("x").code, 2);
        assert_eq!(Failure::interrupted("x").code, 130);
        assert_eq!(EXIT_OK, 0);
    }
}
