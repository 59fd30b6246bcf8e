//! Bad input on the command line: keys, bucket names, sizes, concurrency and a memory budget
//! too small for one part. Each must make `osspipe` exit 2 with the rule that was broken, and
//! send nothing: the endpoint is a scripted server that counts what reaches it.
#![cfg(feature = "cli")]

#[path = "common/reliability.rs"]
mod reliability;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use reliability::cli::{osspipe, run, Ran};
use reliability::*;

/// Runs `osspipe put <url> <flags>` against a server that must not hear from it, and returns
/// what it printed. Asserts exit 2, an error line on stderr, and no request sent.
async fn refused(url: OsString, flags: &[&str]) -> Ran {
    let work = tempfile::tempdir().unwrap();
    let server = ScriptedServer::start(|_, _| Reply::response(500, &[], "")).await;
    let mut args: Vec<OsString> = vec!["put".into(), url.clone()];
    args.extend(flags.iter().map(OsString::from));
    args.extend(["--endpoint".into(), server.endpoint().into()]);
    let mut command = osspipe(work.path(), &args);
    command
        .env("OSS_ACCESS_KEY_ID", "LTAIbadinputcli")
        .env("OSS_ACCESS_KEY_SECRET", "bad-input-secret")
        .env("OSS_REGION", REGION);
    let ran = run(command).await;
    assert_eq!(
        ran.code,
        Some(2),
        "{url:?} {flags:?} must be a usage error (exit 2): {}",
        ran.both()
    );
    assert!(
        ran.stderr.to_ascii_lowercase().contains("error"),
        "{url:?} {flags:?}: an error on stderr: {}",
        ran.both()
    );
    assert_eq!(
        server.requests(),
        0,
        "{url:?} {flags:?}: nothing may be sent for refused input"
    );
    assert!(
        std::fs::read_dir(work.path()).unwrap().next().is_none(),
        "{url:?} {flags:?}: nothing written in the working directory"
    );
    ran
}

fn assert_mentions(ran: &Ran, words: &[&str]) {
    let text = ran.stderr.to_ascii_lowercase();
    assert!(
        words.iter().any(|w| text.contains(&w.to_ascii_lowercase())),
        "the message names the broken rule (one of {words:?}): {}",
        ran.both()
    );
}

#[tokio::test]
async fn bad_keys_are_refused() {
    let long = format!("oss://demo-bucket/{}", "k".repeat(1024));
    let cases: &[(&str, &[&str])] = &[
        ("oss://demo-bucket/", &["no object", "key"]),
        (&long, &["1023", "bytes"]),
        ("oss://demo-bucket//etc/passwd", &["'/'", "start"]),
        ("oss://demo-bucket/\\windows", &["'\\'", "start"]),
        ("oss://demo-bucket/../../etc/passwd", &["..", "segment"]),
    ];
    for (url, words) in cases {
        let ran = refused(OsString::from(url), &[]).await;
        assert_mentions(&ran, words);
    }
}

#[tokio::test]
async fn a_key_that_is_not_utf8_is_refused() {
    let url = OsString::from_vec(b"oss://demo-bucket/bad-\xff\xfe-key".to_vec());
    let ran = refused(url, &[]).await;
    assert_mentions(&ran, &["utf-8", "utf8", "unicode"]);
}

#[tokio::test]
async fn bad_bucket_names_are_refused() {
    for url in [
        "oss://Bad_Bucket/key",
        "oss://ab/key",
        "oss://-leading-dash/key",
        "oss://trailing-dash-/key",
        "oss://UPPER/key",
        "s3://demo-bucket/key",
    ] {
        let ran = refused(OsString::from(url), &[]).await;
        assert_mentions(&ran, &["bucket", "oss://"]);
    }
}

#[tokio::test]
async fn bad_part_sizes_are_refused() {
    let url = || OsString::from("oss://demo-bucket/key");
    for (size, words) in [
        ("1KB", &["100kib", "part"][..]),
        ("6GB", &["5gib", "part"]),
        ("0", &["at least", "part", "size"]),
        ("-1", &["negative", "size"]),
        ("8XB", &["unit", "size"]),
    ] {
        let ran = refused(url(), &["--part-size", size]).await;
        assert_mentions(&ran, words);
    }
    let ran = refused(url(), &["--concurrency", "0"]).await;
    assert_mentions(&ran, &["concurrency", "1..", "range"]);
    let ran = refused(url(), &["--max-memory", "-1"]).await;
    assert_mentions(&ran, &["negative"]);
}

#[tokio::test]
async fn a_memory_budget_smaller_than_a_part_is_refused() {
    let ran = refused(
        OsString::from("oss://demo-bucket/key"),
        &["--part-size", "8MiB", "--max-memory", "4MiB"],
    )
    .await;
    assert_mentions(&ran, &["memory"]);
}
