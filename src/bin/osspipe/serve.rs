//! `osspipe serve`: the local OSS-compatible server in the foreground.
//!
//! It prints how to reach it as shell lines on stdout (`export OSS_ENDPOINT=...`, and the
//! credentials when it made them up), so another terminal can paste them; it listens on
//! loopback unless `--addr` says otherwise, and stops on SIGINT or SIGTERM after the requests
//! in flight finish.

use std::io::Write;
use std::path::PathBuf;

use osspipe::server::{FaultRule, LocalServer};
use osspipe::Credentials;

use crate::cli::{ServeArgs, DEFAULT_LOCAL_DIR};
use crate::parse::shell_quote;
use crate::progress::eprintln_clean;
use crate::report::Failure;
use crate::signals::Signals;

/// Runs `osspipe serve` until SIGINT or SIGTERM.
///
/// # Errors
/// A [`Failure`]: 2 for a bad fault rule or bucket name, 1 when the server cannot start
/// (address in use, unreadable data directory).
pub(crate) async fn run(args: ServeArgs, quiet: bool) -> Result<(), Failure> {
    let mut builder = LocalServer::builder()
        .addr(args.addr)
        .region(args.region.clone());
    let store = if args.memory {
        builder = builder.memory();
        "memory (lost when the server stops)".to_owned()
    } else {
        let dir = args
            .data
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LOCAL_DIR));
        builder = builder.directory(&dir);
        dir.display().to_string()
    };
    for bucket in &args.buckets {
        builder = builder.bucket(bucket.clone());
    }
    for text in &args.faults {
        let rule: FaultRule = text
            .parse()
            .map_err(|e| Failure::usage(format!("invalid --fault {text:?}: {e}")))?;
        builder = builder.fault(rule);
    }
    let made_up = args.access_key_id.is_none();
    if let (Some(id), Some(secret)) = (&args.access_key_id, &args.access_key_secret) {
        builder = builder.credentials(Credentials::new(id.clone(), secret.clone()));
    }
    let mut signals = Signals::new()
        .map_err(|e| Failure::failed(format!("cannot listen for SIGINT/SIGTERM: {e}")))?;
    let server = builder.start().await?;
    if !quiet {
        eprintln_clean(&format!(
            "osspipe: local OSS server listening on {} (region {}, data in {store}); stop it \
             with Ctrl-C",
            server.endpoint(),
            server.region()
        ));
        if !server.addr().ip().is_loopback() {
            eprintln_clean(
                "osspipe: warning: listening beyond loopback: anyone who can reach this address \
                 and knows the credentials can read and write the data",
            );
        }
    }
    print_environment(&server, made_up);
    let signal = signals.recv().await;
    if !quiet {
        eprintln_clean(&format!("osspipe: {signal}: stopping the server"));
    }
    let unexpected = server.unexpected_errors();
    server.shutdown().await;
    if unexpected > 0 {
        return Err(Failure::failed(format!(
            "the server answered {unexpected} request(s) with an internal error; see the log \
             (-v)"
        )));
    }
    Ok(())
}

/// `export NAME=value` lines on stdout, flushed at once so a reader of the pipe sees them
/// while the server runs.
fn print_environment(server: &LocalServer, made_up: bool) {
    let credentials = server.credentials();
    let mut lines = vec![
        format!("export OSS_ENDPOINT={}", shell_quote(&server.endpoint())),
        format!("export OSS_REGION={}", shell_quote(server.region())),
        format!(
            "export OSS_ACCESS_KEY_ID={}",
            shell_quote(credentials.access_key_id())
        ),
    ];
    if made_up {
        lines.push(format!(
            "export OSS_ACCESS_KEY_SECRET={}",
            shell_quote(credentials.access_key_secret())
        ));
    }
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(stdout, "{line}");
    }
    let _ = stdout.flush();
}
