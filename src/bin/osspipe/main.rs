//! The `osspipe` command line tool: stream standard input into an OSS object (`put`), read it
//! back (`get`), list, abort and recover unfinished uploads, and run the local server
//! (`serve`). With no endpoint configured it runs against an embedded local server over
//! `./oss-data`.
//!
//! Exit codes: 0 success; 1 the upload or operation failed; 2 bad usage (a flag, size, URL
//! or configuration refused before any request); 130 interrupted by SIGINT or SIGTERM.

mod cli;
mod connect;
mod get;
mod parse;
mod progress;
mod put;
mod recover;
mod report;
mod serve;
mod signals;
mod uploads;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::report::{Failure, EXIT_OK};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("osspipe")
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            Failure::failed(format!("cannot start the async runtime: {error}")).print();
            return ExitCode::from(report::EXIT_FAILED);
        }
    };
    let result = runtime.block_on(run(cli));
    // The reader thread of `put` may still be blocked on standard input; do not wait for it.
    runtime.shutdown_background();
    let code = match result {
        Ok(()) => EXIT_OK,
        Err(failure) => {
            failure.print();
            failure.code
        }
    };
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Put(args) => put::run(args, quiet).await,
        Command::Get(args) => get::run(args, quiet).await,
        Command::Uploads(args) => uploads::run_uploads(args, quiet).await,
        Command::Abort(args) => uploads::run_abort(args, quiet).await,
        Command::Recover(args) => recover::run(args, quiet).await,
        Command::Serve(args) => serve::run(args, quiet).await,
    }
}

/// Logs go to stderr (around the progress line). `RUST_LOG` wins; otherwise `-v` raises the
/// level of this crate from errors only to info, debug, trace. Errors the command reports
/// itself are printed by [`Failure::print`], so the default keeps the log quiet.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "error",
        1 => "error,osspipe=info",
        2 => "warn,osspipe=debug",
        _ => "info,osspipe=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(progress::LogWriter)
        .with_target(verbose >= 2)
        .try_init();
}
