//! The orchestrator: starts the servers, runs every uploader in its own child process in
//! alternation (A B C D E A B C D E ...), checks and deletes each object, and writes the results.
//!
//! Who is measured, and how:
//!
//! | runner | process | clock | CPU |
//! |---|---|---|---|
//! | `limit` | harness child | Initiate .. Complete | getrusage(SELF) over that span |
//! | `osspipe` | harness child | first byte .. shutdown done | same |
//! | `opendal` | harness child | `writer_with` .. close done | same |
//! | `sdk`, `sdk-default` | python | `upload_from` call | `time.process_time()` over it |
//! | `cli` | `osspipe put` | spawn .. exit | whole process (`wait4`) |
//!
//! Peak RSS is always the whole process's (`wait4`'s `ru_maxrss`). The osspipe and OpenDAL
//! children generate their data themselves (the generator's own cost is measured apart, as
//! `generator`); the Python SDK and the CLI read it from a pipe that the harness fills.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use osspipe::client::Client;
use osspipe::Credentials;

use crate::gen;
use crate::proc::{self, Feed, Finished};
use crate::report;
use crate::runner::{Kind, RunnerReport, ENV_KEY_ID, ENV_KEY_SECRET};
use crate::serve::{Etag, ServerInfo, Store};

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The bucket every runner writes to.
const BUCKET: &str = "bench";

/// The Python SDK reads a whole non-seekable stream into memory before its first part is
/// collected (oss-protocol.md §11), so it is not run on streams above this size.
const SDK_MAX_STREAM: u64 = 4 << 30;

/// The growth run: parts start at this size and double every [`GROWTH_INTERVAL`] parts up to
/// [`GROWTH_MAX_PART`], within [`GROWTH_MEMORY`]. Over 4 GiB that is six part sizes (0.5, 1, 2,
/// 4, 8, 16 MiB; 504 MiB before the last tier).
const GROWTH_FIRST_PART: u64 = 512 << 10;
const GROWTH_INTERVAL: u32 = 16;
const GROWTH_MAX_PART: u64 = 16 << 20;
const GROWTH_MEMORY: u64 = 128 << 20;

/// How much a measured process may use over the writer's memory budget (the targets' `+ 32 MiB`).
const RSS_ALLOWANCE: f64 = 32.0 * MIB;

pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 8MiB or 2GiB"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB, GiB)")),
    };
    Ok((number * factor as f64).round() as u64)
}

pub fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// The harness's options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The stream size of the main tables.
    #[arg(long, default_value = "2GiB", value_parser = parse_size)]
    pub size: u64,
    /// Runs of every case (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Parts in flight in the main tables.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Part size of every runner (the Python SDK's defaults run aside).
    #[arg(long, default_value = "8MiB", value_parser = parse_size)]
    pub part_size: u64,
    /// Concurrencies of the scan (memory store, main size).
    #[arg(long, default_value = "1,2,4,8", value_delimiter = ',')]
    pub scan_concurrency: Vec<usize>,
    /// Stream sizes of the scan (memory store, main concurrency).
    #[arg(long, default_value = "256MiB,2GiB", value_delimiter = ',', value_parser = parse_size)]
    pub scan_sizes: Vec<u64>,
    /// Adds an 8 GiB stream to the size scan.
    #[arg(long)]
    pub huge: bool,
    /// The stream of the part-size growth run.
    #[arg(long, default_value = "4GiB", value_parser = parse_size)]
    pub growth_size: u64,
    /// Only the main tables (no scans, no growth run).
    #[arg(long)]
    pub quick: bool,
    /// Skip the directory store.
    #[arg(long)]
    pub memory_only: bool,
    /// Run only these runners (limit, osspipe, opendal, sdk-default, sdk, cli).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Measure the server instead (UploadPart acceptance: osspipe memory store vs bare hyper,
    /// directory store vs bare hyper writing files).
    #[arg(long)]
    pub server_bench: bool,
    /// Unmeasured limit uploads to each server before the measured runs (a fresh server
    /// process takes every page of its first 2 GiB from the kernel). The server bench reports
    /// the first one's rate as the cold rate.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Server bench: only these servers (memory, bare-discard, bare-keep, directory, bare-files).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub servers: Vec<Store>,
    /// ETags of osspipe's server: opaque (no MD5, the default) or md5 (what OSS sends).
    #[arg(long, value_enum, default_value = "opaque")]
    pub etag: Etag,
    /// The data's seed.
    #[arg(long, default_value_t = gen::DEFAULT_SEED)]
    pub seed: u64,
    /// A Python with alibabacloud-oss-v2 (default: target/interop-venv, else target/bench-venv,
    /// created from benches/python/requirements.txt).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// The osspipe binary for the CLI runner (default: target/release/osspipe, built first).
    #[arg(long)]
    pub cli_bin: Option<PathBuf>,
    /// Do not run `cargo build --release --features cli --bin osspipe` first.
    #[arg(long)]
    pub no_build_cli: bool,
    /// Where results.json and results.md go (default: target/bench).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the plot goes (default: docs/bench.svg; only a run with the concurrency scan
    /// writes it).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Kill a measured process after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// Who uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Who {
    Limit,
    Osspipe,
    OsspipeRead,
    Opendal,
    SdkDefault,
    Sdk,
    Cli,
    Growth,
    Generator,
}

impl Who {
    pub const TABLE: [Who; 7] = [
        Who::Limit,
        Who::Osspipe,
        Who::OsspipeRead,
        Who::Opendal,
        Who::SdkDefault,
        Who::Sdk,
        Who::Cli,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Who::Limit => "limit",
            Who::Osspipe => "osspipe",
            Who::OsspipeRead => "osspipe-read",
            Who::Opendal => "opendal",
            Who::SdkDefault => "sdk-default",
            Who::Sdk => "sdk",
            Who::Cli => "cli",
            Who::Growth => "osspipe-growth",
            Who::Generator => "generator",
        }
    }

    /// What the table calls it.
    pub fn label(self) -> &'static str {
        match self {
            Who::Limit => "limit: bare reqwest, pre-cut parts",
            Who::Osspipe => "osspipe ObjectWriter (tokio::io::copy, CRC-64)",
            Who::OsspipeRead => "osspipe ObjectWriter::copy_from (reads into the parts, CRC-64)",
            Who::Opendal => "OpenDAL 0.59 writer (chunk, concurrent)",
            Who::SdkDefault => "Python SDK upload_from, defaults (6 MiB, 3 threads)",
            Who::Sdk => "Python SDK upload_from (same part size, threads)",
            Who::Cli => "osspipe put CLI (stdin pipe)",
            Who::Growth => "osspipe ObjectWriter, growing parts",
            Who::Generator => "generator alone (into tokio::io::sink)",
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub run: usize,
    pub seconds: f64,
    pub gib_per_s: f64,
    pub cpu_seconds: f64,
    pub peak_rss_mib: f64,
    /// Spawn to exit of the process.
    pub wall_seconds: f64,
    /// Limit runner: the UploadPart phase alone.
    pub parts_seconds: Option<f64>,
    /// The server process's CPU time (user + system) while the runner ran.
    pub server_cpu_seconds: Option<f64>,
}

/// Medians and extremes of a case.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub median_gib_s: f64,
    pub min_gib_s: f64,
    pub max_gib_s: f64,
    /// The largest peak RSS of the runs.
    pub peak_rss_mib: f64,
    pub cpu_s_per_gib: f64,
    /// Median over the limit's median at the same store, size and concurrency.
    pub ratio_to_limit: Option<f64>,
}

/// One case: a runner at a store, size and concurrency, over several runs.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub phase: String,
    pub store: &'static str,
    pub runner: Who,
    pub label: &'static str,
    pub size: u64,
    pub concurrency: usize,
    pub part_size: u64,
    /// The writer's memory budget (osspipe runners).
    pub budget_mib: Option<f64>,
    pub samples: Vec<Sample>,
    /// Server bench: the unmeasured warm-up runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warmup: Vec<Sample>,
    pub errors: Vec<String>,
    pub summary: Option<Summary>,
    /// Growth run: `(seconds, VmRSS MiB)` samples of the first run.
    pub rss_timeline: Vec<(f64, f64)>,
}

impl CaseResult {
    fn new(phase: &str, store: Store, case: &Case) -> Self {
        Self {
            phase: phase.to_owned(),
            store: store.name(),
            runner: case.who,
            label: case.who.label(),
            size: case.size,
            concurrency: case.concurrency,
            part_size: case.part_size,
            budget_mib: None,
            samples: Vec::new(),
            warmup: Vec::new(),
            errors: Vec::new(),
            summary: None,
            rss_timeline: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub who: Who,
    pub size: u64,
    pub concurrency: usize,
    pub part_size: u64,
}

/// A target and whether the numbers meet it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub issue: &'static str,
    pub target: String,
    pub measured: String,
    /// `None`: not measured.
    pub pass: Option<bool>,
}

/// Facts about the run.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    pub date_unix: u64,
    pub commit: String,
    pub cores: usize,
    pub kernel: String,
    pub load_before: String,
    pub load_after: String,
    pub etag_mode: &'static str,
    pub seed: u64,
    pub runs: usize,
    pub size: u64,
    pub part_size: u64,
    pub concurrency: usize,
    pub python: Result<String, String>,
    pub cli: Result<String, String>,
    pub command: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub meta: Meta,
    pub results: Vec<CaseResult>,
    pub checks: Vec<Check>,
}

/// The server bench's results.
#[derive(Debug, Clone, Serialize)]
pub struct ServerBench {
    pub meta: Meta,
    pub results: Vec<CaseResult>,
    pub checks: Vec<Check>,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the harness lives in benches/harness of the repository")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn command_output(program: &str, args: &[&str], dir: &Path) -> String {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// A running server child; stopped (stdin closed, then reaped) on drop.
struct ServerChild {
    child: Child,
    info: ServerInfo,
    store: Store,
    dir: Option<PathBuf>,
}

impl ServerChild {
    fn start(store: Store, etag: Etag, dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["serve", "--store", store.name(), "--etag"]);
        command.arg(match etag {
            Etag::Opaque => "opaque",
            Etag::Md5 => "md5",
        });
        if let Some(dir) = &dir {
            command.arg("--dir").arg(dir);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let info: ServerInfo = serde_json::from_str(line.trim()).map_err(|e| {
            anyhow::anyhow!("the {} server did not start ({e}): {line:?}", store.name())
        })?;
        Ok(Self {
            child,
            info,
            store,
            dir,
        })
    }

    /// Removes what a bare file server wrote (osspipe's stores get DeleteObject instead).
    fn clear_files(&self) {
        if self.store == Store::BareFiles {
            if let Some(dir) = &self.dir {
                if let Ok(entries) = std::fs::read_dir(dir) {
                    for entry in entries.flatten() {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
            }
        }
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// What is needed to run the Python SDK and the CLI, or why they cannot run.
struct Tools {
    python: Result<PathBuf, String>,
    cli: Result<PathBuf, String>,
}

fn python_has_sdk(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import alibabacloud_oss_v2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn find_python(repo: &Path, given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(python) = given {
        return if python_has_sdk(python) {
            Ok(python.to_owned())
        } else {
            Err(format!(
                "{} cannot import alibabacloud_oss_v2",
                python.display()
            ))
        };
    }
    for venv in ["target/interop-venv", "target/bench-venv"] {
        let python = repo.join(venv).join("bin/python");
        if python_has_sdk(&python) {
            return Ok(python);
        }
    }
    let venv = repo.join("target/bench-venv");
    eprintln!(
        "osspipe-bench: creating {} (alibabacloud-oss-v2)",
        venv.display()
    );
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    if !created {
        return Err("python3 -m venv failed (apt-get install python3-venv)".into());
    }
    let python = venv.join("bin/python");
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "-r",
        ])
        .arg(repo.join("benches/python/requirements.txt"))
        .status()
        .is_ok_and(|s| s.success());
    if installed && python_has_sdk(&python) {
        Ok(python)
    } else {
        Err("pip install -r benches/python/requirements.txt failed".into())
    }
}

fn find_cli(repo: &Path, args: &BenchArgs) -> Result<PathBuf, String> {
    if let Some(bin) = &args.cli_bin {
        return check_cli(bin);
    }
    if !args.no_build_cli {
        eprintln!("osspipe-bench: cargo build --release --features cli --bin osspipe");
        let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--features",
                "cli",
                "--bin",
                "osspipe",
            ])
            .current_dir(repo)
            // The harness's own `cargo run` sets a target dir for this package; the CLI is
            // built in the repository's.
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .is_ok_and(|s| s.success());
        if !built {
            return Err("cargo build --release --features cli --bin osspipe failed".into());
        }
    }
    check_cli(&repo.join("target/release/osspipe"))
}

fn check_cli(bin: &Path) -> Result<PathBuf, String> {
    let output = Command::new(bin)
        .args(["put", "--help"])
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if output.status.success() {
        Ok(bin.to_owned())
    } else {
        Err(format!(
            "{} put --help: {}",
            bin.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Runs the cases and collects their results.
struct Executor {
    args: BenchArgs,
    tools: Tools,
    runtime: tokio::runtime::Runtime,
    expected_crc: HashMap<u64, u64>,
    key_counter: u64,
}

impl Executor {
    fn crc_of(&mut self, size: u64) -> u64 {
        let seed = self.args.seed;
        *self
            .expected_crc
            .entry(size)
            .or_insert_with(|| gen::stream_crc64(seed, size))
    }

    fn credentials_env(command: &mut Command, server: &ServerInfo) {
        command
            .env(ENV_KEY_ID, &server.access_key_id)
            .env(ENV_KEY_SECRET, &server.access_key_secret);
    }

    fn runner_command(
        &self,
        kind: Kind,
        server: Option<&ServerInfo>,
        key: &str,
        case: &Case,
    ) -> anyhow::Result<Command> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("runner")
            .arg("--kind")
            .arg(match kind {
                Kind::Limit => "limit",
                Kind::Osspipe => "osspipe",
                Kind::OsspipeRead => "osspipe-read",
                Kind::Opendal => "opendal",
                Kind::Gen => "gen",
            })
            .args(["--bucket", BUCKET, "--key", key])
            .arg("--size")
            .arg(case.size.to_string())
            .arg("--seed")
            .arg(self.args.seed.to_string())
            .arg("--part-size")
            .arg(case.part_size.to_string())
            .arg("--concurrency")
            .arg(case.concurrency.to_string());
        if let Some(server) = server {
            command
                .arg("--endpoint")
                .arg(&server.endpoint)
                .arg("--region")
                .arg(&server.region);
            Self::credentials_env(&mut command, server);
        }
        if case.who == Who::Growth {
            command
                .arg("--growth-interval")
                .arg(GROWTH_INTERVAL.to_string())
                .arg("--max-part-size")
                .arg(GROWTH_MAX_PART.to_string())
                .arg("--max-memory")
                .arg(GROWTH_MEMORY.to_string());
        }
        Ok(command)
    }

    /// One run of one case. `Ok(None)` when the runner cannot run here (the reason is in the
    /// error list once).
    fn run_once(
        &mut self,
        server: Option<&ServerChild>,
        case: &Case,
        run: usize,
        result: &mut CaseResult,
    ) -> anyhow::Result<()> {
        self.key_counter += 1;
        let key = format!("bench/{}/{}-{}", case.who.name(), self.key_counter, run);
        let limit = Duration::from_secs(self.args.timeout);
        let info = server.map(|s| &s.info);
        let server_cpu_before = server.and_then(|s| proc::cpu_seconds_of(s.child.id()));
        let (finished, report): (Finished, Option<RunnerReport>) = match case.who {
            Who::Limit
            | Who::Osspipe
            | Who::OsspipeRead
            | Who::Opendal
            | Who::Growth
            | Who::Generator => {
                let kind = match case.who {
                    Who::Limit => Kind::Limit,
                    Who::OsspipeRead => Kind::OsspipeRead,
                    Who::Opendal => Kind::Opendal,
                    Who::Generator => Kind::Gen,
                    _ => Kind::Osspipe,
                };
                let command = self.runner_command(kind, info, &key, case)?;
                let finished = proc::run(command, Feed::Nothing, case.who == Who::Growth, limit)?;
                let report = if finished.success() {
                    Some(serde_json::from_str(finished.last_line()).map_err(|e| {
                        anyhow::anyhow!("bad runner report ({e}): {:?}", finished.last_line())
                    })?)
                } else {
                    None
                };
                (finished, report)
            }
            Who::Sdk | Who::SdkDefault => {
                let python = match &self.tools.python {
                    Ok(p) => p.clone(),
                    Err(e) => anyhow::bail!("unavailable: {e}"),
                };
                if case.size > SDK_MAX_STREAM {
                    anyhow::bail!(
                        "not run: upload_from reads a whole unknown-size stream into memory \
                         (oss-protocol.md §11); skipped above {}",
                        human_size(SDK_MAX_STREAM)
                    );
                }
                let server = info.expect("the SDK needs a server");
                let mut command = Command::new(python);
                command
                    .arg(repo_root().join("benches/python/upload_from.py"))
                    .arg("--endpoint")
                    .arg(&server.endpoint)
                    .arg("--region")
                    .arg(&server.region)
                    .args(["--bucket", BUCKET, "--key", &key]);
                if case.who == Who::Sdk {
                    command
                        .arg("--part-size")
                        .arg(case.part_size.to_string())
                        .arg("--parallel")
                        .arg(case.concurrency.to_string());
                }
                Self::credentials_env(&mut command, server);
                let feed = Feed::Stream {
                    seed: self.args.seed,
                    len: case.size,
                };
                let finished = proc::run(command, feed, false, limit)?;
                let report = if finished.success() {
                    let value: serde_json::Value = serde_json::from_str(finished.last_line())?;
                    Some(RunnerReport {
                        bytes: value["bytes"].as_u64().unwrap_or(0),
                        seconds: value["seconds"].as_f64().unwrap_or(f64::NAN),
                        cpu_seconds: value["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
                        crc64: value["crc64"].as_u64(),
                        parts: 0,
                        parts_seconds: None,
                        budget_bytes: None,
                    })
                } else {
                    None
                };
                (finished, report)
            }
            Who::Cli => {
                let bin = match &self.tools.cli {
                    Ok(b) => b.clone(),
                    Err(e) => anyhow::bail!("unavailable: {e}"),
                };
                let server = info.expect("the CLI needs a server");
                let mut command = Command::new(bin);
                command
                    .arg("put")
                    .arg(format!("oss://{BUCKET}/{key}"))
                    .arg("--endpoint")
                    .arg(&server.endpoint)
                    .arg("--region")
                    .arg(&server.region)
                    .arg("--concurrency")
                    .arg(case.concurrency.to_string())
                    .arg("--part-size")
                    .arg(case.part_size.to_string())
                    .arg("--quiet");
                Self::credentials_env(&mut command, server);
                let feed = Feed::Stream {
                    seed: self.args.seed,
                    len: case.size,
                };
                let finished = proc::run(command, feed, false, limit)?;
                let report = finished.success().then_some(RunnerReport {
                    bytes: case.size,
                    seconds: finished.wall.as_secs_f64(),
                    cpu_seconds: finished.cpu_seconds,
                    crc64: None,
                    parts: 0,
                    parts_seconds: None,
                    budget_bytes: None,
                });
                (finished, report)
            }
        };
        let server_cpu_seconds = server
            .and_then(|s| proc::cpu_seconds_of(s.child.id()))
            .zip(server_cpu_before)
            .map(|(after, before)| after - before);
        let Some(report) = report else {
            anyhow::bail!("{}", finished.failure());
        };
        if report.bytes != case.size {
            anyhow::bail!("uploaded {} bytes, not {}", report.bytes, case.size);
        }
        if let Some(server) = server.filter(|s| s.store.is_osspipe()) {
            let expected_crc = match case.who {
                Who::Limit => report.crc64.expect("the limit runner reports its CRC"),
                _ => self.crc_of(case.size),
            };
            self.check_and_delete(&server.info, &key, case.size, expected_crc)?;
        }
        if let Some(server) = server {
            server.clear_files();
        }
        if let Some(budget) = report.budget_bytes {
            result.budget_mib = Some(budget as f64 / MIB);
        }
        if run == 0 && !finished.rss_samples.is_empty() {
            result.rss_timeline = finished
                .rss_samples
                .iter()
                .map(|&(t, kib)| (t, kib as f64 / 1024.0))
                .collect();
        }
        result.samples.push(Sample {
            run,
            seconds: report.seconds,
            gib_per_s: case.size as f64 / GIB / report.seconds,
            cpu_seconds: report.cpu_seconds,
            peak_rss_mib: finished.max_rss_kib as f64 / 1024.0,
            wall_seconds: finished.wall.as_secs_f64(),
            parts_seconds: report.parts_seconds,
            server_cpu_seconds,
        });
        Ok(())
    }

    /// HEADs the object (size and CRC-64 must be the stream's), then deletes it so the memory
    /// store does not fill up.
    fn check_and_delete(
        &self,
        server: &ServerInfo,
        key: &str,
        size: u64,
        crc: u64,
    ) -> anyhow::Result<()> {
        let client = Client::builder()
            .with_endpoint(&server.endpoint)
            .with_region(&server.region)
            .with_credentials(Credentials::new(
                server.access_key_id.clone(),
                server.access_key_secret.clone(),
            ))
            .build()?;
        self.runtime.block_on(async {
            let head = client.head_object(BUCKET, key).await?;
            let result = if head.content_length != size {
                Err(anyhow::anyhow!(
                    "stored object has {} bytes, not {size}",
                    head.content_length
                ))
            } else if head.crc64 != Some(crc) {
                Err(anyhow::anyhow!(
                    "stored object's CRC-64 is {:?}, the stream's is {crc}",
                    head.crc64
                ))
            } else {
                Ok(())
            };
            client.delete_object(BUCKET, key).await?;
            result
        })
    }

    /// `--warmup` unmeasured limit uploads to a freshly started server, so the first measured
    /// run does not pay for the server process's first touch of every page.
    fn warm_up(&mut self, server: &ServerChild, size: u64) {
        let case = Case {
            who: Who::Limit,
            size,
            concurrency: self.args.concurrency,
            part_size: self.args.part_size,
        };
        let mut scratch = CaseResult::new("warm-up", server.store, &case);
        for run in 0..self.args.warmup {
            eprint!(
                "  warm-up    {:<9} {:>8} limit run {}/{} ... ",
                server.store.name(),
                human_size(size),
                run + 1,
                self.args.warmup
            );
            match self.run_once(Some(server), &case, run, &mut scratch) {
                Ok(()) => eprintln!("done (not measured)"),
                Err(e) => eprintln!("FAILED: {e:#}"),
            }
        }
    }

    /// Runs `cases` against `server`, `runs` times in alternation.
    fn phase(
        &mut self,
        phase: &str,
        store: Store,
        server: Option<&ServerChild>,
        cases: &[Case],
        runs: usize,
    ) -> Vec<CaseResult> {
        let mut results: Vec<CaseResult> = cases
            .iter()
            .map(|case| CaseResult::new(phase, store, case))
            .collect();
        for run in 0..runs {
            for (case, result) in cases.iter().zip(results.iter_mut()) {
                // A runner that cannot run here says so once, not once per run.
                if result
                    .errors
                    .iter()
                    .any(|e| e.starts_with("unavailable") || e.starts_with("not run"))
                {
                    continue;
                }
                eprint!(
                    "  {phase:<10} {:<9} {:>8} c={} {:<14} run {}/{runs} ... ",
                    store.name(),
                    human_size(case.size),
                    case.concurrency,
                    case.who.name(),
                    run + 1
                );
                let _ = std::io::stderr().flush();
                match self.run_once(server, case, run, result) {
                    Ok(()) => {
                        let s = result.samples.last().expect("just pushed");
                        eprintln!(
                            "{:.2} GiB/s, {:.0} MiB peak RSS, {:.2} CPU s",
                            s.gib_per_s, s.peak_rss_mib, s.cpu_seconds
                        );
                    }
                    Err(e) => {
                        eprintln!("FAILED: {e:#}");
                        result.errors.push(format!("{e:#}"));
                    }
                }
            }
        }
        results
    }
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Fills in every case's summary and its ratio to the limit.
pub fn summarise(results: &mut [CaseResult], main_concurrency: usize) {
    for result in results.iter_mut() {
        if result.samples.is_empty() {
            continue;
        }
        let mut speeds: Vec<f64> = result.samples.iter().map(|s| s.gib_per_s).collect();
        let mut cpu: Vec<f64> = result
            .samples
            .iter()
            .map(|s| s.cpu_seconds / (result.size as f64 / GIB))
            .collect();
        let min = speeds.iter().copied().fold(f64::INFINITY, f64::min);
        let max = speeds.iter().copied().fold(0.0, f64::max);
        result.summary = Some(Summary {
            median_gib_s: median(&mut speeds),
            min_gib_s: min,
            max_gib_s: max,
            peak_rss_mib: result
                .samples
                .iter()
                .map(|s| s.peak_rss_mib)
                .fold(0.0, f64::max),
            cpu_s_per_gib: median(&mut cpu),
            ratio_to_limit: None,
        });
    }
    let limits: Vec<(&'static str, u64, usize, f64)> = results
        .iter()
        .filter(|r| r.runner == Who::Limit)
        .filter_map(|r| {
            Some((
                r.store,
                r.size,
                r.concurrency,
                r.summary.as_ref()?.median_gib_s,
            ))
        })
        .collect();
    for result in results.iter_mut() {
        if matches!(result.runner, Who::Limit | Who::Generator | Who::Growth) {
            continue;
        }
        // The SDK's defaults are compared with the limit at the main concurrency.
        let concurrency = if result.runner == Who::SdkDefault {
            main_concurrency
        } else {
            result.concurrency
        };
        let limit = limits
            .iter()
            .find(|l| l.0 == result.store && l.1 == result.size && l.2 == concurrency)
            .map(|l| l.3);
        if let (Some(summary), Some(limit)) = (result.summary.as_mut(), limit) {
            summary.ratio_to_limit = Some(summary.median_gib_s / limit);
        }
    }
}

fn find<'a>(
    results: &'a [CaseResult],
    store: &str,
    who: Who,
    size: u64,
    concurrency: Option<usize>,
) -> Option<&'a CaseResult> {
    results.iter().find(|r| {
        r.store == store
            && r.runner == who
            && r.size == size
            && concurrency.is_none_or(|c| r.concurrency == c)
            && r.summary.is_some()
    })
}

fn ratio_check(
    issue: &'static str,
    target: String,
    a: Option<&CaseResult>,
    b: Option<&CaseResult>,
    factor: f64,
) -> Check {
    let median = |r: Option<&CaseResult>| Some(r?.summary.as_ref()?.median_gib_s);
    compare(issue, target, median(a).zip(median(b)), "GiB/s", factor)
}

/// Checks `x / y ≥ factor` for a measured pair `(x, y)` in `unit`.
pub fn compare(
    issue: &'static str,
    target: String,
    pair: Option<(f64, f64)>,
    unit: &str,
    factor: f64,
) -> Check {
    match pair {
        Some((x, y)) => {
            let ratio = x / y;
            Check {
                issue,
                target,
                measured: format!("{x:.2} / {y:.2} {unit} = {ratio:.2}×"),
                pass: Some(ratio >= factor),
            }
        }
        None => Check {
            issue,
            target,
            measured: "not measured".into(),
            pass: None,
        },
    }
}

fn rss_check(issue: &'static str, result: Option<&CaseResult>) -> Check {
    match result.and_then(|r| Some((r, r.summary.as_ref()?, r.budget_mib?))) {
        Some((r, summary, budget)) => {
            let bound = budget + RSS_ALLOWANCE / MIB;
            Check {
                issue,
                target: format!(
                    "{} peak RSS ≤ budget {budget:.0} MiB + 32 MiB ({}, c={})",
                    r.runner.name(),
                    human_size(r.size),
                    r.concurrency
                ),
                measured: format!("{:.0} MiB", summary.peak_rss_mib),
                pass: Some(summary.peak_rss_mib <= bound),
            }
        }
        None => Check {
            issue,
            target: "osspipe peak RSS ≤ budget + 32 MiB".into(),
            measured: "not measured".into(),
            pass: None,
        },
    }
}

fn checks(results: &[CaseResult], args: &BenchArgs) -> Vec<Check> {
    let size = args.size;
    let c = args.concurrency;
    let mut checks = vec![
        ratio_check(
            "writer (4)",
            format!(
                "osspipe ≥ 0.9 × limit ({}, c={c}, memory store)",
                human_size(size)
            ),
            find(results, "memory", Who::Osspipe, size, Some(c)),
            find(results, "memory", Who::Limit, size, Some(c)),
            0.9,
        ),
        rss_check(
            "writer (4)",
            find(results, "memory", Who::Osspipe, size, Some(c)),
        ),
    ];
    for concurrency in [4, 8] {
        checks.push(ratio_check(
            "6",
            format!(
                "osspipe ≥ 0.9 × limit at c={concurrency} ({}, memory)",
                human_size(size)
            ),
            find(results, "memory", Who::Osspipe, size, Some(concurrency)),
            find(results, "memory", Who::Limit, size, Some(concurrency)),
            0.9,
        ));
        checks.push(ratio_check(
            "6",
            format!("osspipe ≥ 1.2 × OpenDAL at c={concurrency}"),
            find(results, "memory", Who::Osspipe, size, Some(concurrency)),
            find(results, "memory", Who::Opendal, size, Some(concurrency)),
            1.2,
        ));
        checks.push(ratio_check(
            "6",
            format!("osspipe ≥ 2 × Python SDK (same part size, {concurrency} threads)"),
            find(results, "memory", Who::Osspipe, size, Some(concurrency)),
            find(results, "memory", Who::Sdk, size, Some(concurrency)),
            2.0,
        ));
        checks.push(rss_check(
            "6",
            find(results, "memory", Who::Osspipe, size, Some(concurrency)),
        ));
    }
    checks.push(ratio_check(
        "6",
        format!("osspipe (c={c}) ≥ 2 × Python SDK with its defaults"),
        find(results, "memory", Who::Osspipe, size, Some(c)),
        find(results, "memory", Who::SdkDefault, size, None),
        2.0,
    ));
    checks.push(ratio_check(
        "CLI",
        format!("osspipe put ≥ 0.9 × limit (c={c}, memory)"),
        find(results, "memory", Who::Cli, size, Some(c)),
        find(results, "memory", Who::Limit, size, Some(c)),
        0.9,
    ));
    if let Some(growth) = results
        .iter()
        .find(|r| r.runner == Who::Growth && r.summary.is_some())
    {
        let peak = growth.summary.as_ref().map_or(0.0, |s| s.peak_rss_mib);
        let bound = GROWTH_MEMORY as f64 / MIB + RSS_ALLOWANCE / MIB;
        checks.push(Check {
            issue: "writer (4)",
            target: format!(
                "growing parts ({} → {}): peak RSS ≤ budget {} + 32 MiB",
                human_size(GROWTH_FIRST_PART),
                human_size(GROWTH_MAX_PART),
                human_size(GROWTH_MEMORY)
            ),
            measured: format!("{peak:.0} MiB"),
            pass: Some(peak <= bound),
        });
    }
    checks
}

fn wanted(args: &BenchArgs, who: Who) -> bool {
    args.only.is_empty() || args.only.iter().any(|n| n == who.name())
}

fn meta(args: &BenchArgs, tools: &Tools, load_before: String) -> Meta {
    let repo = repo_root();
    Meta {
        date_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        commit: command_output("git", &["rev-parse", "--short", "HEAD"], &repo),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: command_output("uname", &["-sr"], &repo),
        load_before,
        load_after: load_average(),
        etag_mode: match args.etag {
            Etag::Opaque => "opaque",
            Etag::Md5 => "md5",
        },
        seed: args.seed,
        runs: args.runs,
        size: args.size,
        part_size: args.part_size,
        concurrency: args.concurrency,
        python: tools
            .python
            .as_ref()
            .map(|p| p.display().to_string())
            .map_err(Clone::clone),
        cli: tools
            .cli
            .as_ref()
            .map(|p| p.display().to_string())
            .map_err(Clone::clone),
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
    }
}

pub fn main(args: BenchArgs) -> anyhow::Result<()> {
    let repo = repo_root();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| repo.join("target/bench"));
    std::fs::create_dir_all(&out)?;
    let scratch = tempfile::Builder::new().prefix("data-").tempdir_in(&out)?;
    let load_before = load_average();

    if args.server_bench {
        let tools = Tools {
            python: Err("not used by the server bench".into()),
            cli: Err("not used by the server bench".into()),
        };
        let mut executor = Executor {
            args: args.clone(),
            tools,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            expected_crc: HashMap::new(),
            key_counter: 0,
        };
        let results = server_bench(&mut executor, scratch.path())?;
        let meta = meta(&args, &executor.tools, load_before);
        let bench = report::server_bench_results(meta, results);
        let markdown = report::server_bench_markdown(&bench);
        println!("{markdown}");
        std::fs::write(out.join("server-bench.md"), &markdown)?;
        std::fs::write(
            out.join("server-bench.json"),
            serde_json::to_string_pretty(&bench)?,
        )?;
        eprintln!(
            "osspipe-bench: wrote {}",
            out.join("server-bench.{json,md}").display()
        );
        return Ok(());
    }

    let needs_python = wanted(&args, Who::Sdk) || wanted(&args, Who::SdkDefault);
    let tools = Tools {
        python: if needs_python {
            find_python(&repo, args.python.as_deref())
        } else {
            Err("not selected".into())
        },
        cli: if wanted(&args, Who::Cli) {
            find_cli(&repo, &args)
        } else {
            Err("not selected".into())
        },
    };
    if let Err(e) = &tools.python {
        eprintln!("osspipe-bench: the Python SDK runners will not run: {e}");
    }
    if let Err(e) = &tools.cli {
        eprintln!("osspipe-bench: the CLI runner will not run: {e}");
    }
    let mut executor = Executor {
        args: args.clone(),
        tools,
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        expected_crc: HashMap::new(),
        key_counter: 0,
    };
    let c = args.concurrency;
    let case = |who: Who, size: u64, concurrency: usize| Case {
        who,
        size,
        concurrency: if who == Who::SdkDefault {
            3
        } else {
            concurrency
        },
        part_size: if who == Who::SdkDefault {
            6 << 20
        } else if who == Who::Growth {
            GROWTH_FIRST_PART
        } else {
            args.part_size
        },
    };
    let table: Vec<Who> = Who::TABLE
        .into_iter()
        .filter(|&w| wanted(&args, w))
        .collect();
    let main_cases: Vec<Case> = table.iter().map(|&w| case(w, args.size, c)).collect();
    let mut results = Vec::new();

    eprintln!(
        "osspipe-bench: {} stream, {} parts, concurrency {c}, {} runs, ETag mode {}; load {}",
        human_size(args.size),
        human_size(args.part_size),
        args.runs,
        meta(&args, &executor.tools, String::new()).etag_mode,
        load_average()
    );
    // Computed up front so no measured run waits for it.
    executor.crc_of(args.size);

    {
        let server = ServerChild::start(Store::Memory, args.etag, None)?;
        eprintln!("memory store at {}", server.info.endpoint);
        executor.warm_up(&server, args.size);
        let generator = vec![case(Who::Generator, args.size, 1)];
        results.extend(executor.phase("generator", Store::Memory, None, &generator, args.runs));
        results.extend(executor.phase(
            "main",
            Store::Memory,
            Some(&server),
            &main_cases,
            args.runs,
        ));
        if !args.quick {
            let scan: Vec<Case> = args
                .scan_concurrency
                .iter()
                .filter(|&&cc| cc != c)
                .flat_map(|&cc| {
                    [Who::Limit, Who::Osspipe, Who::Opendal, Who::Sdk, Who::Cli]
                        .into_iter()
                        .filter(|&w| wanted(&args, w))
                        .map(move |w| (w, cc))
                })
                .map(|(w, cc)| case(w, args.size, cc))
                .collect();
            results.extend(executor.phase(
                "scan-c",
                Store::Memory,
                Some(&server),
                &scan,
                args.runs,
            ));
            let mut sizes: Vec<u64> = args
                .scan_sizes
                .iter()
                .copied()
                .filter(|&s| s != args.size)
                .collect();
            if args.huge && !sizes.contains(&(8 << 30)) {
                sizes.push(8 << 30);
            }
            for &size in &sizes {
                executor.crc_of(size);
            }
            let size_cases: Vec<Case> = sizes
                .iter()
                .flat_map(|&size| table.iter().map(move |&w| (w, size)))
                .map(|(w, size)| case(w, size, c))
                .collect();
            results.extend(executor.phase(
                "scan-size",
                Store::Memory,
                Some(&server),
                &size_cases,
                args.runs,
            ));
            if wanted(&args, Who::Osspipe) {
                executor.crc_of(args.growth_size);
                let growth = vec![case(Who::Growth, args.growth_size, c)];
                results.extend(executor.phase("growth", Store::Memory, Some(&server), &growth, 1));
            }
        }
    }
    if !args.memory_only {
        let dir = scratch.path().join("directory-store");
        let server = ServerChild::start(Store::Directory, args.etag, Some(dir))?;
        executor.warm_up(&server, args.size);
        eprintln!("directory store at {}", server.info.endpoint);
        results.extend(executor.phase(
            "main",
            Store::Directory,
            Some(&server),
            &main_cases,
            args.runs,
        ));
    }

    summarise(&mut results, c);
    let checks = checks(&results, &args);
    let results = Results {
        meta: meta(&args, &executor.tools, load_before),
        results,
        checks,
    };
    let markdown = report::markdown(&results);
    println!("{markdown}");
    std::fs::write(out.join("results.md"), &markdown)?;
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    eprintln!(
        "osspipe-bench: wrote {}",
        out.join("results.{json,md}").display()
    );
    if !args.quick && args.scan_concurrency.len() > 1 {
        let svg = args
            .svg
            .clone()
            .unwrap_or_else(|| repo.join("docs/bench.svg"));
        if let Some(parent) = svg.parent() {
            std::fs::create_dir_all(parent)?;
        }
        crate::plot::draw(&results, &svg)?;
        eprintln!("osspipe-bench: wrote {}", svg.display());
    }
    Ok(())
}

/// The server bench: the same bare-reqwest client (limit runner, concurrency 4, 8 MiB parts)
/// against the servers; the UploadPart phase's rate is what counts, and the server process's
/// CPU time per GiB is reported beside it.
///
/// The servers are measured in two groups, each alone on the machine: the in-memory ones
/// (memory, bare-discard, bare-keep), then the file writers (directory, bare-files). Within a
/// group the runs alternate, after `--warmup` unmeasured rounds. The groups do not overlap
/// because the memory servers keep GiBs of freed memory for reuse, and with that much memory
/// taken every page-cache write costs more (a 7 GiB hog made the file servers' writes 1.3-1.8×
/// dearer in CPU per GiB), which would measure the memory store's footprint, not the file servers.
fn server_bench(executor: &mut Executor, scratch: &Path) -> anyhow::Result<Vec<CaseResult>> {
    let args = executor.args.clone();
    let wanted = |store: Store| args.servers.is_empty() || args.servers.contains(&store);
    let case = Case {
        who: Who::Limit,
        size: args.size,
        concurrency: args.concurrency,
        part_size: args.part_size,
    };
    eprintln!(
        "osspipe-bench: server bench, {} per run in {} parts, concurrency {}, {} runs; load {}",
        human_size(case.size),
        human_size(case.part_size),
        case.concurrency,
        args.runs,
        load_average()
    );
    let groups = [
        &[Store::Memory, Store::BareDiscard, Store::BareKeep][..],
        &[Store::Directory, Store::BareFiles][..],
    ];
    let mut results = Vec::new();
    for group in groups {
        let servers = group
            .iter()
            .copied()
            .filter(|&store| wanted(store))
            .map(|store| {
                let dir = match store {
                    Store::Directory => Some(scratch.join("directory-store")),
                    Store::BareFiles => Some(scratch.join("bare-files")),
                    _ => None,
                };
                ServerChild::start(store, args.etag, dir)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut group_results: Vec<CaseResult> = servers
            .iter()
            .map(|s| CaseResult::new("server", s.store, &case))
            .collect();
        server_bench_rounds(executor, &servers, &case, &mut group_results);
        // The group's servers stop here, before the next group starts.
        drop(servers);
        results.extend(group_results);
    }
    summarise(&mut results, args.concurrency);
    Ok(results)
}

/// Runs `--warmup` unmeasured rounds, then `--runs` measured ones, each round one upload to
/// every server in turn.
fn server_bench_rounds(
    executor: &mut Executor,
    servers: &[ServerChild],
    case: &Case,
    results: &mut [CaseResult],
) {
    let (warmups, runs) = (executor.args.warmup, executor.args.runs);
    let rounds = (0..warmups)
        .map(|n| (n, true))
        .chain((0..runs).map(|n| (n, false)));
    for (run, warmup) in rounds {
        for (server, result) in servers.iter().zip(results.iter_mut()) {
            let (what, of) = if warmup {
                ("warm-up", warmups)
            } else {
                ("run", runs)
            };
            eprint!("  {:<13} {what} {}/{of} ... ", server.store.name(), run + 1);
            // Every run starts with no dirty page cache left by the one before (the file
            // servers' deleted files are dropped, not written, but a writeback may be under
            // way), so the two file servers meet the same disk.
            // SAFETY: sync has no preconditions.
            unsafe { libc::sync() };
            match executor.run_once(Some(server), case, run, result) {
                Ok(()) => {
                    let s = result.samples.last().expect("just pushed");
                    let parts = s.parts_seconds.unwrap_or(f64::NAN);
                    eprintln!(
                        "UploadPart phase {:.2} GiB/s ({:.0} parts/s), server {:.2} CPU s/GiB",
                        case.size as f64 / GIB / parts,
                        case.size.div_ceil(case.part_size) as f64 / parts,
                        s.server_cpu_seconds.unwrap_or(f64::NAN) / (case.size as f64 / GIB)
                    );
                    if warmup {
                        let sample = result.samples.pop().expect("just pushed");
                        result.warmup.push(sample);
                    }
                }
                Err(e) => {
                    eprintln!("FAILED: {e:#}");
                    result.errors.push(format!("{what}: {e:#}"));
                }
            }
        }
    }
}
