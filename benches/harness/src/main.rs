//! `osspipe-bench`: osspipe's streaming upload beside a bare-reqwest limit, OpenDAL, the official
//! Python SDK and the osspipe CLI, against the local OSS server; plus a server bench.
//!
//! ```text
//! cargo run --release --manifest-path benches/harness/Cargo.toml -- --size 2GiB --runs 3
//! cargo run --release --manifest-path benches/harness/Cargo.toml -- --server-bench
//! ```
//!
//! The harness re-executes itself for every measured process (`runner ...`, `serve ...`, hidden
//! subcommands) so each uploader's peak RSS and CPU time are its own; see `bench.rs`.

mod bench;
mod gen;
mod plot;
mod proc;
mod report;
mod runner;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "osspipe-bench",
    about = "Upload benchmarks side by side: bare reqwest, osspipe, OpenDAL, the Python SDK, the CLI",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Internal>,
    #[command(flatten)]
    bench: bench::BenchArgs,
}

/// What the harness runs in its child processes, and a generator for runs by hand.
#[derive(Debug, Subcommand)]
enum Internal {
    /// Runs one uploader and prints its JSON report.
    #[command(hide = true)]
    Runner(runner::RunnerArgs),
    /// Runs one server until standard input closes.
    #[command(hide = true)]
    Serve(serve::ServeArgs),
    /// Writes the benchmark's seeded stream to standard output (to reproduce a pipe run by
    /// hand: `osspipe-bench generate --size 2GiB | osspipe put ...`).
    Generate {
        /// How many bytes.
        #[arg(long, value_parser = bench::parse_size)]
        size: u64,
        #[arg(long, default_value_t = gen::DEFAULT_SEED)]
        seed: u64,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Internal::Runner(args)) => runner::main(args),
        Some(Internal::Serve(args)) => serve::main(args),
        Some(Internal::Generate { size, seed }) => gen::write_stream(seed, size),
        None => bench::main(cli.bench),
    };
    if let Err(e) = result {
        eprintln!("osspipe-bench: {e:#}");
        std::process::exit(1);
    }
}
