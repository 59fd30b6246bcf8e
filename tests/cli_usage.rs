//! Usage errors: a bad flag, size, URL or configuration exits 2 with the broken rule on stderr,
//! before any request and without touching the working directory; `--help` documents the exit
//! codes.
#![cfg(feature = "cli")]

mod cli_common;

use cli_common::*;

/// Runs `osspipe ARGS` in an empty directory with no configuration and checks it is refused
/// with exit 2, a message containing `expected`, and nothing created (so no embedded server
/// was started and no request sent).
fn refused(args: &[&str], env: &[(&str, &str)], expected: &str) {
    let work = tempfile::tempdir().unwrap();
    let mut command = osspipe(work.path());
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let ran = run(command);
    assert_eq!(ran.code, Some(2), "{args:?} must exit 2: {}", ran.both());
    assert!(
        ran.stderr.contains("error"),
        "{args:?}: an error on stderr: {}",
        ran.both()
    );
    assert!(
        ran.stderr.contains(expected),
        "{args:?}: the message names the rule ({expected:?}): {}",
        ran.both()
    );
    assert!(ran.stdout.is_empty(), "{args:?}: {}", ran.both());
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert!(left.is_empty(), "{args:?}: created {left:?}");
}

#[test]
fn bad_sizes_are_refused_with_the_rule() {
    for (flag, value, expected) in [
        ("--part-size", "0", "at least 1 byte"),
        ("--part-size", "-1", "cannot be negative"),
        ("--part-size", "8XB", "unknown unit \"XB\""),
        ("--part-size", "1KB", "100KiB-5GiB"),
        ("--part-size", "6GB", "100KiB-5GiB"),
        ("--max-memory", "lots", "unknown unit"),
        ("--max-memory", "0.1KiB", "not a whole number of bytes"),
        ("--expected-size", "-5", "cannot be negative"),
        ("--concurrency", "0", "1..=256"),
    ] {
        refused(&["put", "oss://demo/key", flag, value], &[], expected);
    }
    refused(
        &[
            "put",
            "oss://demo/key",
            "--part-size",
            "64MiB",
            "--max-memory",
            "64MiB",
        ],
        &[],
        "memory",
    );
}

#[test]
fn bad_urls_are_refused_with_the_rule() {
    for (url, expected) in [
        ("demo/key", "oss://BUCKET/KEY"),
        ("s3://demo/key", "oss://BUCKET/KEY"),
        ("oss://demo", "names no object"),
        ("oss://demo/", "names no object"),
        ("oss://De_mo/key", "bucket name must be 3-63 characters"),
        ("oss://ab/key", "bucket name must be 3-63 characters"),
        ("oss://demo//etc/passwd", "must not start with '/'"),
    ] {
        refused(&["put", url], &[], expected);
        refused(&["get", url], &[], expected);
    }
    refused(&["uploads", "oss://NO"], &[], "bucket name");
    refused(
        &["recover", "oss://demo", "--upload-id", "x"],
        &[],
        "names no object",
    );
}

#[test]
fn bad_flags_and_combinations_are_refused() {
    refused(&["put", "oss://demo/key", "--bogus"], &[], "--bogus");
    refused(&["launch"], &[], "launch");
    refused(&["abort", "oss://demo/key"], &[], "--upload-id");
    refused(&["abort", "oss://demo/logs/", "--all"], &[], "--older-than");
    refused(
        &["abort", "oss://demo/logs/", "--all", "--older-than", "30"],
        &[],
        "30 has no unit",
    );
    refused(
        &["abort", "oss://demo/", "--upload-id", "x"],
        &[],
        "needs the object's key",
    );
    refused(
        &["put", "oss://demo/key", "--meta", "novalue"],
        &[],
        "KEY=VALUE",
    );
    refused(
        &["put", "oss://demo/key", "--meta", "bad name=v"],
        &[],
        "metadata names",
    );
    refused(
        &["put", "oss://demo/key", "--storage-class", "Glacier"],
        &[],
        "Standard, IA, Archive",
    );
    refused(
        &["put", "oss://demo/key", "--acl", "everyone"],
        &[],
        "public-read",
    );
    refused(
        &["put", "oss://demo/key", "--tagging", "a=1&a=2"],
        &[],
        "appears twice",
    );
    refused(
        &["put", "oss://demo/key", "--file", "does-not-exist"],
        &[],
        "cannot open --file",
    );
    refused(
        &["serve", "--memory", "--fault", "Nonsense"],
        &[],
        "--fault",
    );
}

#[test]
fn configuration_that_would_misroute_data_is_refused() {
    // Credentials but no endpoint: the user meant OSS; a silent local write would lose data.
    refused(
        &["put", "oss://demo/key"],
        &[
            ("OSS_ACCESS_KEY_ID", "LTAIx"),
            ("OSS_ACCESS_KEY_SECRET", "y"),
        ],
        "no endpoint",
    );
    refused(
        &["get", "oss://demo/key"],
        &[("OSS_ACCESS_KEY_ID", "LTAIx")],
        "no endpoint",
    );
    // An endpoint needs both halves of the key.
    refused(
        &["put", "oss://demo/key"],
        &[("OSS_ENDPOINT", "http://127.0.0.1:9")],
        "OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET",
    );
    refused(
        &[
            "put",
            "oss://demo/key",
            "--endpoint",
            "http://127.0.0.1:9",
            "--local-dir",
            "d",
        ],
        &[
            ("OSS_ACCESS_KEY_ID", "LTAIx"),
            ("OSS_ACCESS_KEY_SECRET", "y"),
        ],
        "--local-dir",
    );
    refused(
        &["put", "oss://demo/key", "--endpoint", "ftp://example.com"],
        &[
            ("OSS_ACCESS_KEY_ID", "LTAIx"),
            ("OSS_ACCESS_KEY_SECRET", "y"),
        ],
        "ftp",
    );
}

#[test]
fn help_documents_commands_environment_and_exit_codes() {
    let work = tempfile::tempdir().unwrap();
    let mut help = osspipe(work.path());
    help.arg("--help");
    let ran = run(help);
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    let text = ran.stdout_text();
    for needle in [
        "put",
        "get",
        "uploads",
        "abort",
        "recover",
        "serve",
        "OSS_ENDPOINT",
        "OSS_ACCESS_KEY_ID",
        "OSS_SESSION_TOKEN",
        "Exit codes",
        "130",
    ] {
        assert!(text.contains(needle), "--help mentions {needle}: {text}");
    }
    let mut put_help = osspipe(work.path());
    put_help.args(["put", "--help"]);
    let ran = run(put_help);
    assert_eq!(ran.code, Some(0));
    for flag in [
        "--endpoint",
        "--region",
        "--part-size",
        "--max-memory",
        "--concurrency",
        "--content-type",
        "--meta",
        "--storage-class",
        "--tagging",
        "--forbid-overwrite",
        "--acl",
        "--expected-size",
        "--keep-parts-on-error",
        "--json",
        "--file",
        "--local-dir",
    ] {
        assert!(ran.stdout_text().contains(flag), "put --help lists {flag}");
    }
    let mut version = osspipe(work.path());
    version.arg("--version");
    let ran = run(version);
    assert_eq!(ran.code, Some(0));
    assert!(ran.stdout_text().starts_with("osspipe "));
}
