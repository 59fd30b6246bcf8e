//! The README stays true: its library example is this file's `ship_logs` (and runs), its test
//! command is the one `.ci/run` runs, and its CLI reference names every flag `--help` lists,
//! every environment variable and every exit code.
#![cfg(feature = "cli")]

mod cli_common;

use cli_common::*;

const README: &str = include_str!("../README.md");

// README:begin
use std::sync::Arc;

use osspipe::server::LocalServer;
use osspipe::{Client, ObjectWriter};
use tokio::io::AsyncWriteExt;

async fn ship_logs() -> Result<(), Box<dyn std::error::Error>> {
    let server = LocalServer::builder().start().await?; // stands in for OSS here
    let client = Client::builder()
        .with_endpoint(server.endpoint()) // e.g. "https://oss-cn-hangzhou.aliyuncs.com"
        .with_region(server.region())
        .with_credentials(server.credentials().clone()) // default: OSS_ACCESS_KEY_ID/SECRET
        .build()?;
    let bucket = Arc::new(client.bucket("demo"));
    let mut writer = ObjectWriter::builder(bucket, "logs/today.log").build()?;
    for i in 0..2_000_000 {
        writer.write_all(format!("line {i}\n").as_bytes()).await?; // parts go up meanwhile
    }
    writer.shutdown().await?; // completes the object and checks its CRC-64
    let outcome = writer.outcome().expect("shut down");
    println!(
        "{} bytes in {} parts, crc64 {}",
        outcome.size, outcome.parts, outcome.crc64
    );
    server.shutdown().await;
    Ok(())
}
// README:end

/// The text between the markers above.
fn example_source() -> &'static str {
    let this = include_str!("cli_readme.rs");
    let begin = this.find("// README:begin\n").expect("begin marker") + "// README:begin\n".len();
    // The markers are matched as whole lines, so the strings in this function do not count.
    let end = begin + this[begin..].find("\n// README:end\n").expect("end marker") + 1;
    &this[begin..end]
}

/// The README's ```rust block.
fn readme_example() -> &'static str {
    let start = README.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let end = start + README[start..].find("```\n").expect("the block ends");
    &README[start..end]
}

#[test]
fn the_library_example_is_the_one_tested_here() {
    assert_eq!(
        readme_example(),
        example_source(),
        "README.md's rust block must be this file's example, verbatim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_example_runs() {
    ship_logs().await.expect("the README example works");
}

#[test]
fn the_test_command_is_the_one_ci_runs() {
    let ci = include_str!("../.ci/run");
    let command = "cargo test --all-features";
    assert!(
        ci.lines().any(|line| line.trim() == command),
        ".ci/run runs `{command}`"
    );
    assert!(
        README.contains(&format!("```sh\n{command}\n```")),
        "the README shows `{command}` as its test command"
    );
    assert!(README.contains(
        "head -c 100M /dev/urandom | tee /tmp/random.bin | cargo run --release --features cli -- \
         put oss://demo/random.bin"
    ));
    assert!(README.contains("## Benchmarks\n"));
    assert!(README.contains("## Reliability\n"));
}

#[test]
fn the_cli_reference_names_every_flag() {
    let work = tempfile::tempdir().unwrap();
    for command in ["put", "get", "uploads", "abort", "recover", "serve"] {
        assert!(
            README.contains(&format!("### `osspipe {command}")),
            "the README has a section for `osspipe {command}`"
        );
        let mut help = osspipe(work.path());
        help.args([command, "--help"]);
        let help = run(help);
        assert_eq!(help.code, Some(0), "{}", help.both());
        let flags: Vec<String> = help
            .stdout_text()
            .split_whitespace()
            .filter(|word| word.starts_with("--"))
            .map(|word| {
                word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                    .to_owned()
            })
            .filter(|flag| flag.len() > 2)
            .collect();
        assert!(!flags.is_empty(), "{command} --help lists flags");
        for flag in flags {
            if ["--help", "--version"].contains(&flag.as_str()) {
                continue;
            }
            assert!(
                README.contains(&format!("`{flag}"))
                    || README.contains(&format!(" {flag} "))
                    || README.contains(&format!("{flag}`")),
                "the README documents `osspipe {command} {flag}`"
            );
        }
    }
    for variable in [
        "OSS_ENDPOINT",
        "OSS_REGION",
        "OSS_ACCESS_KEY_ID",
        "OSS_ACCESS_KEY_SECRET",
        "OSS_SESSION_TOKEN",
        "RUST_LOG",
    ] {
        assert!(README.contains(&format!("`{variable}`")), "{variable}");
    }
    for code in ["| 0 |", "| 1 |", "| 2 |", "| 130 |"] {
        assert!(README.contains(code), "exit code {code}");
    }
}
