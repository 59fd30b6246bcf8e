//! The command line, as clap derive definitions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::parse::{
    parse_acl, parse_duration, parse_header_value, parse_key_value, parse_object_url,
    parse_part_size, parse_prefix_url, parse_size, parse_storage_class, parse_tagging, OssUrl,
};
use crate::report::EXIT_CODES_HELP;

/// The data directory of the embedded local server when no endpoint is configured.
pub(crate) const DEFAULT_LOCAL_DIR: &str = "oss-data";

/// The address `osspipe serve` listens on by default (loopback only).
pub(crate) const DEFAULT_SERVE_ADDR: &str = "127.0.0.1:9000";

/// The region the local server signs for by default.
pub(crate) const DEFAULT_LOCAL_REGION: &str = "cn-hangzhou";

/// What `--help` prints after the flags.
const AFTER_HELP: &str = "\
Credentials and endpoint come from the environment too: OSS_ACCESS_KEY_ID,
OSS_ACCESS_KEY_SECRET, OSS_SESSION_TOKEN, OSS_ENDPOINT, OSS_REGION. With no endpoint and
no credentials at all, put/get/uploads/abort/recover use an embedded local server over
./oss-data (--local-dir to change).

Sizes: 8MiB, 8MB, 100M, 1.5GiB, 4096. K/M/G/T and KiB/MiB/GiB/TiB are powers of 1024;
KB/MB/GB/TB are powers of 1000.";

/// Streams a byte stream of unknown size into Alibaba Cloud OSS with multipart upload.
#[derive(Debug, Parser)]
#[command(
    name = "osspipe",
    version,
    about,
    after_help = format!("{AFTER_HELP}\n\n{EXIT_CODES_HELP}"),
    propagate_version = true
)]
pub(crate) struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides it.
    #[arg(short, long, action = ArgAction::Count, global = true, display_order = 100)]
    pub(crate) verbose: u8,

    /// No progress line and no notes on stderr (errors are still printed).
    #[arg(short, long, global = true, display_order = 100)]
    pub(crate) quiet: bool,

    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Streams standard input (or --file) into an object; the end of input completes it.
    Put(PutArgs),
    /// Writes an object to standard output (or --output), verifying its CRC-64.
    Get(GetArgs),
    /// Lists unfinished multipart uploads (key, upload id, started, parts, bytes).
    Uploads(UploadsArgs),
    /// Aborts one unfinished upload, or every one under a prefix older than a duration.
    Abort(AbortArgs),
    /// Completes an unfinished upload from the parts that reached the server.
    Recover(RecoverArgs),
    /// Runs the local OSS-compatible server in the foreground.
    Serve(ServeArgs),
}

/// Where requests go: OSS, another OSS-compatible server, or the embedded local server.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectArgs {
    /// The OSS endpoint, e.g. https://oss-cn-hangzhou.aliyuncs.com or http://127.0.0.1:9000.
    #[arg(long, env = "OSS_ENDPOINT", value_name = "URL")]
    pub(crate) endpoint: Option<String>,

    /// The region to sign for, e.g. cn-hangzhou (inferred from an aliyuncs.com endpoint).
    #[arg(long, env = "OSS_REGION", value_name = "REGION")]
    pub(crate) region: Option<String>,

    /// The data directory of the embedded local server, used when no endpoint is configured
    /// [default: ./oss-data].
    #[arg(long, value_name = "DIR")]
    pub(crate) local_dir: Option<PathBuf>,
}

/// `osspipe put`.
#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    /// The object to write: oss://BUCKET/KEY.
    #[arg(value_name = "oss://BUCKET/KEY", value_parser = parse_object_url)]
    pub(crate) url: OssUrl,

    /// Read this file instead of standard input (its size becomes the size hint).
    #[arg(long, value_name = "PATH")]
    pub(crate) file: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) connect: ConnectArgs,

    /// The first part's size (100KiB-5GiB); later parts grow by the part-size plan
    /// [default: 8MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_part_size, allow_negative_numbers = true)]
    pub(crate) part_size: Option<u64>,

    /// The memory budget for part buffers; it caps the part size at half of it and so bounds
    /// the largest stream (256MiB holds about 1 TiB) [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_size, allow_negative_numbers = true)]
    pub(crate) max_memory: Option<u64>,

    /// The most parts uploaded at once [default: 4].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256), allow_negative_numbers = true)]
    pub(crate) concurrency: Option<u16>,

    /// The object's Content-Type [default: guessed from the key's extension].
    #[arg(long, value_name = "TYPE", value_parser = parse_header_value)]
    pub(crate) content_type: Option<String>,

    /// User metadata, sent as x-oss-meta-KEY (repeatable; 8 KiB in total).
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub(crate) meta: Vec<(String, String)>,

    /// The storage class: Standard, IA, Archive, ColdArchive or DeepColdArchive.
    #[arg(long, value_name = "CLASS", value_parser = parse_storage_class)]
    pub(crate) storage_class: Option<String>,

    /// Object tags in query-string form, K1=V1&K2=V2 (at most 10; URL-encode special
    /// characters).
    #[arg(long, value_name = "K=V&...", value_parser = parse_tagging)]
    pub(crate) tagging: Option<String>,

    /// Fail with FileAlreadyExists instead of replacing an existing object.
    #[arg(long)]
    pub(crate) forbid_overwrite: bool,

    /// The object's ACL: default, private, public-read or public-read-write.
    #[arg(long, value_name = "ACL", value_parser = parse_acl)]
    pub(crate) acl: Option<String>,

    /// The stream's expected size, a hint: parts grow so it fits in evenly sized parts
    /// (a longer stream still works).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, allow_negative_numbers = true)]
    pub(crate) expected_size: Option<u64>,

    /// On interruption or a read error, keep the uploaded parts and print the upload id and
    /// the `osspipe recover` command, instead of aborting the upload.
    #[arg(long)]
    pub(crate) keep_parts_on_error: bool,

    /// Print the result as one JSON object (bucket, key, size, parts, etag, crc64,
    /// upload_id, seconds).
    #[arg(long)]
    pub(crate) json: bool,
}

/// `osspipe get`.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The object to read: oss://BUCKET/KEY.
    #[arg(value_name = "oss://BUCKET/KEY", value_parser = parse_object_url)]
    pub(crate) url: OssUrl,

    /// Write to this file (through a temporary file renamed at the end) instead of standard
    /// output.
    #[arg(short, long, value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// `osspipe uploads`.
#[derive(Debug, Args)]
pub(crate) struct UploadsArgs {
    /// The bucket, and optionally a key prefix: oss://BUCKET[/PREFIX].
    #[arg(value_name = "oss://BUCKET[/PREFIX]", value_parser = parse_prefix_url)]
    pub(crate) url: OssUrl,

    #[command(flatten)]
    pub(crate) connect: ConnectArgs,

    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `osspipe abort`.
#[derive(Debug, Args)]
pub(crate) struct AbortArgs {
    /// oss://BUCKET/KEY with --upload-id, or oss://BUCKET[/PREFIX] with --all.
    #[arg(value_name = "oss://BUCKET/KEY", value_parser = parse_prefix_url)]
    pub(crate) url: OssUrl,

    /// The upload to abort.
    #[arg(
        long,
        value_name = "ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub(crate) upload_id: Option<String>,

    /// Abort every unfinished upload under the prefix that is older than --older-than.
    #[arg(long, requires = "older_than")]
    pub(crate) all: bool,

    /// With --all: only uploads started longer ago than this (30m, 2h, 7d; 0s for all).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "upload_id")]
    pub(crate) older_than: Option<Duration>,

    /// With --all: list what would be aborted, abort nothing.
    #[arg(long, conflicts_with = "upload_id")]
    pub(crate) dry_run: bool,

    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// `osspipe recover`.
#[derive(Debug, Args)]
pub(crate) struct RecoverArgs {
    /// The object of the unfinished upload: oss://BUCKET/KEY.
    #[arg(value_name = "oss://BUCKET/KEY", value_parser = parse_object_url)]
    pub(crate) url: OssUrl,

    /// The unfinished upload (see `osspipe uploads`).
    #[arg(long, value_name = "ID")]
    pub(crate) upload_id: String,

    /// Show which parts would make the object, complete nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Fail with FileAlreadyExists instead of replacing an existing object.
    #[arg(long)]
    pub(crate) forbid_overwrite: bool,

    /// The object's ACL: default, private, public-read or public-read-write.
    #[arg(long, value_name = "ACL", value_parser = parse_acl)]
    pub(crate) acl: Option<String>,

    /// Print the result as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) connect: ConnectArgs,
}

/// `osspipe serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Keep objects in this directory [default: ./oss-data].
    #[arg(long, value_name = "DIR", conflicts_with = "memory")]
    pub(crate) data: Option<PathBuf>,

    /// Keep objects in memory only (lost when the server stops).
    #[arg(long)]
    pub(crate) memory: bool,

    /// The address to listen on; port 0 picks a free port. Loopback unless told otherwise.
    #[arg(long, value_name = "IP:PORT", default_value = DEFAULT_SERVE_ADDR)]
    pub(crate) addr: SocketAddr,

    /// A bucket to create at start (repeatable).
    #[arg(long = "bucket", value_name = "NAME", value_parser = parse_bucket_name)]
    pub(crate) buckets: Vec<String>,

    /// The access key id clients must sign with [default: made up and printed].
    #[arg(long, value_name = "ID", requires = "access_key_secret")]
    pub(crate) access_key_id: Option<String>,

    /// The access key secret clients must sign with.
    #[arg(long, value_name = "SECRET", requires = "access_key_id")]
    pub(crate) access_key_secret: Option<String>,

    /// The region the server signs for.
    #[arg(long, value_name = "REGION", default_value = DEFAULT_LOCAL_REGION)]
    pub(crate) region: String,

    /// A fault to inject, e.g. UploadPart:503:SlowDown:every=10 (repeatable; see the README).
    #[arg(long = "fault", value_name = "RULE")]
    pub(crate) faults: Vec<String>,
}

/// A bucket name, checked against OSS's rule.
fn parse_bucket_name(text: &str) -> Result<String, String> {
    osspipe::limits::validate_bucket_name(text)
        .map(|()| text.to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("osspipe").chain(args.iter().copied()))
    }

    #[test]
    fn put_takes_every_flag() {
        let cli = parse(&[
            "put",
            "oss://demo/a.bin",
            "--part-size",
            "16MiB",
            "--max-memory",
            "1GiB",
            "--concurrency",
            "8",
            "--meta",
            "a=1",
            "--meta",
            "b=2",
            "--storage-class",
            "ia",
            "--tagging",
            "k=v",
            "--forbid-overwrite",
            "--acl",
            "private",
            "--expected-size",
            "6GB",
            "--keep-parts-on-error",
            "--json",
            "--endpoint",
            "http://127.0.0.1:9",
        ])
        .unwrap();
        let Command::Put(put) = cli.command else {
            panic!("not put")
        };
        assert_eq!(put.part_size, Some(16 << 20));
        assert_eq!(put.max_memory, Some(1 << 30));
        assert_eq!(put.concurrency, Some(8));
        assert_eq!(put.meta.len(), 2);
        assert_eq!(put.storage_class.as_deref(), Some("IA"));
        assert_eq!(put.expected_size, Some(6_000_000_000));
        assert!(put.forbid_overwrite && put.keep_parts_on_error && put.json);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["put", "oss://demo/a", "--part-size", "0"][..],
            &["put", "oss://demo/a", "--part-size", "8XB"],
            &["put", "oss://demo/a", "--max-memory", "-1"],
            &["put", "oss://demo/a", "--part-size", "-1"],
            &["put", "oss://demo/a", "--concurrency", "-2"],
            &["put", "oss://demo/a", "--concurrency", "0"],
            &["put", "oss://demo"],
            &["put", "demo/a"],
            &["put", "oss://demo/a", "--bogus"],
            &["abort", "oss://demo/a"],
            &["abort", "oss://demo/a", "--all"],
            &[
                "abort",
                "oss://demo/a",
                "--upload-id",
                "x",
                "--all",
                "--older-than",
                "1d",
            ],
            &[
                "abort",
                "oss://demo/a",
                "--upload-id",
                "x",
                "--older-than",
                "1d",
            ],
            &["abort", "oss://demo/", "--all", "--older-than", "30"],
            &["recover", "oss://demo/a"],
            &["serve", "--memory", "--data", "x"],
            &["serve", "--access-key-id", "x"],
            &["serve", "--bucket", "NO"],
        ] {
            let error = parse(args).expect_err(&format!("{args:?} must be refused"));
            assert_eq!(error.exit_code(), 2, "{args:?}: {error}");
        }
    }

    #[test]
    fn abort_all_takes_a_duration() {
        let cli = parse(&["abort", "oss://demo/logs/", "--all", "--older-than", "7d"]).unwrap();
        let Command::Abort(abort) = cli.command else {
            panic!("not abort")
        };
        assert!(abort.all);
        assert_eq!(abort.older_than, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(abort.url.key, "logs/");
    }
}
