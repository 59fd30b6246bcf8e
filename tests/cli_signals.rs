//! Signals during `osspipe put`: SIGINT or SIGTERM mid-stream aborts the upload and writes no
//! object (exit 130); with `--keep-parts-on-error` the parts stay, `osspipe uploads` lists them,
//! `osspipe recover` completes exactly the uploaded prefix, and `osspipe abort --all` cleans
//! up.
#![cfg(all(feature = "cli", unix))]

mod cli_common;

use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cli_common::*;
use osspipe::client::Client;

const BUCKET: &str = "cli-signals";

/// Bytes fed to each put; the end of input is held back anyway, so this only has to outlast
/// the few parts a test waits for.
const FED: usize = 64 * MIB;

/// A `put` being fed slowly, with the end of input held back.
struct Feeding {
    child: Child,
    feeder: JoinHandle<usize>,
    release: mpsc::Sender<()>,
}

/// Starts `osspipe put oss://BUCKET/KEY --part-size 1MiB EXTRA...` and feeds it seeded bytes
/// at roughly 25 MiB/s, never closing its stdin (so only a signal can stop it).
fn start_put(
    serve: &Serve,
    work: &std::path::Path,
    key: &str,
    seed: u64,
    extra: &[&str],
) -> Feeding {
    let mut put = serve.osspipe(work);
    put.args([
        "put",
        &format!("oss://{BUCKET}/{key}"),
        "--part-size",
        "1MiB",
    ])
    .args(extra)
    .stdin(Stdio::piped());
    let mut child = put.spawn().expect("osspipe put starts");
    let stdin = child.stdin.take().unwrap();
    let (release, hold_open) = mpsc::channel();
    let feeder = feed_slowly(
        stdin,
        seeded(seed, FED),
        256 * 1024,
        Duration::from_millis(10),
        hold_open,
    );
    Feeding {
        child,
        feeder,
        release,
    }
}

/// Waits until the server holds at least `parts` parts of the upload of `key`; returns its id.
fn wait_for_parts(client: &Client, key: &str, parts: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "put never uploaded {parts} parts"
        );
        if let Some(upload_id) = uploads_of(client, BUCKET, key).first() {
            let listed = block_on(client.list_parts(BUCKET, key, upload_id)).unwrap();
            if listed.len() >= parts {
                return upload_id.clone();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Signals the put, checks it exits 130, and returns what it printed.
fn interrupt(feeding: Feeding, signal: &str) -> (Ran, usize) {
    let Feeding {
        child,
        feeder,
        release,
    } = feeding;
    send_signal(&child, signal);
    let ran = wait_output(child);
    let _ = release.send(());
    let fed = feeder.join().unwrap();
    assert_eq!(
        ran.code,
        Some(130),
        "interrupted put exits 130: {}",
        ran.both()
    );
    assert!(
        ran.stderr.contains(&format!("interrupted by SIG{signal}")),
        "{}",
        ran.stderr
    );
    (ran, fed)
}

fn a_signal_aborts_the_upload(signal: &str) {
    let serve = Serve::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let client = serve.client();
    let key = format!("interrupted-by-{signal}.bin");
    let feeding = start_put(&serve, work.path(), &key, 1, &[]);
    let upload_id = wait_for_parts(&client, &key, 3);
    let (ran, _) = interrupt(feeding, signal);
    assert!(
        ran.stderr
            .contains(&format!("upload {upload_id} was aborted")),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("no object was written"),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.is_empty(), "no summary: {}", ran.both());
    assert_eq!(
        uploads_of(&client, BUCKET, &key),
        Vec::<String>::new(),
        "no unfinished upload is left"
    );
    assert!(
        !object_exists(&client, BUCKET, &key),
        "no object was written"
    );
    assert!(serve.stop().success());
}

#[test]
fn sigint_mid_stream_aborts_the_upload_and_writes_no_object() {
    a_signal_aborts_the_upload("INT");
}

#[test]
fn sigterm_mid_stream_aborts_the_upload_and_writes_no_object() {
    a_signal_aborts_the_upload("TERM");
}

#[test]
fn kept_parts_are_listed_and_recovered_to_the_uploaded_prefix() {
    let serve = Serve::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let client = serve.client();
    let key = "kept/stream.bin";
    let seed = 2;
    let feeding = start_put(&serve, work.path(), key, seed, &["--keep-parts-on-error"]);
    let upload_id = wait_for_parts(&client, key, 4);
    let (ran, fed) = interrupt(feeding, "INT");

    // The message names the upload and the command that completes it.
    let recover_command = format!("osspipe recover oss://{BUCKET}/{key} --upload-id {upload_id}");
    assert!(ran.stderr.contains(&recover_command), "{}", ran.stderr);
    assert!(
        ran.stderr.contains(&format!(
            "osspipe abort oss://{BUCKET}/{key} --upload-id {upload_id}"
        )),
        "{}",
        ran.stderr
    );
    assert_eq!(
        uploads_of(&client, BUCKET, key),
        std::slice::from_ref(&upload_id)
    );
    assert!(
        !object_exists(&client, BUCKET, key),
        "nothing was completed"
    );

    // `uploads` lists it with its parts and bytes.
    let mut uploads = serve.osspipe(work.path());
    uploads.args(["uploads", &format!("oss://{BUCKET}/kept/"), "--json"]);
    let listed = run(uploads);
    assert_eq!(listed.code, Some(0), "{}", listed.both());
    let rows = listed.json();
    let rows = rows.as_array().expect("an array");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["key"], key);
    assert_eq!(rows[0]["upload_id"], upload_id.as_str());
    let parts = rows[0]["parts"].as_u64().unwrap();
    assert!(parts >= 4, "{rows:?}");
    assert_eq!(rows[0]["bytes"].as_u64().unwrap(), parts * MIB as u64);

    // `abort --all` spares it when it is younger than the limit; --dry-run touches nothing.
    let mut young = serve.osspipe(work.path());
    young.args([
        "abort",
        &format!("oss://{BUCKET}/kept/"),
        "--all",
        "--older-than",
        "1d",
    ]);
    let young = run(young);
    assert_eq!(young.code, Some(0), "{}", young.both());
    let mut dry = serve.osspipe(work.path());
    dry.args([
        "abort",
        &format!("oss://{BUCKET}/kept/"),
        "--all",
        "--older-than",
        "0s",
        "--dry-run",
    ]);
    let dry = run(dry);
    assert_eq!(dry.code, Some(0), "{}", dry.both());
    assert!(dry
        .stdout_text()
        .contains(&format!("would abort upload {upload_id}")));
    assert_eq!(
        uploads_of(&client, BUCKET, key),
        std::slice::from_ref(&upload_id)
    );

    // `recover` completes the parts that reached the server: a prefix of the input.
    let mut recover = serve.osspipe(work.path());
    recover.args([
        "recover",
        &format!("oss://{BUCKET}/{key}"),
        "--upload-id",
        &upload_id,
        "--json",
    ]);
    let recovered = run(recover);
    assert_eq!(recovered.code, Some(0), "{}", recovered.both());
    let summary = recovered.json();
    let size = summary["size"].as_u64().unwrap() as usize;
    assert_eq!(summary["parts"].as_u64().unwrap(), parts);
    assert_eq!(size, parts as usize * MIB, "whole 1 MiB parts");
    assert!(size <= fed, "no more than was fed");
    assert_eq!(summary["crc64_verified"], true);
    let mut get = serve.osspipe(work.path());
    get.args(["get", &format!("oss://{BUCKET}/{key}")]);
    let got = run(get);
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    assert_eq!(got.stdout.len(), size);
    assert_eq!(
        sha256(&got.stdout),
        sha256(&seeded(seed, FED)[..size]),
        "the object is the first {size} bytes of the input"
    );
    assert!(uploads_of(&client, BUCKET, key).is_empty());
    assert!(serve.stop().success());
}

#[test]
fn abort_all_cleans_up_kept_uploads() {
    let serve = Serve::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let client = serve.client();
    let key = "cleanup/left.bin";
    let feeding = start_put(&serve, work.path(), key, 3, &["--keep-parts-on-error"]);
    let upload_id = wait_for_parts(&client, key, 2);
    interrupt(feeding, "INT");
    assert_eq!(
        uploads_of(&client, BUCKET, key),
        std::slice::from_ref(&upload_id)
    );

    let mut abort = serve.osspipe(work.path());
    abort.args([
        "abort",
        &format!("oss://{BUCKET}/cleanup/"),
        "--all",
        "--older-than",
        "0s",
    ]);
    let aborted = run(abort);
    assert_eq!(aborted.code, Some(0), "{}", aborted.both());
    assert!(
        aborted
            .stdout_text()
            .contains(&format!("aborted upload {upload_id}")),
        "{}",
        aborted.both()
    );
    assert!(uploads_of(&client, BUCKET, key).is_empty());

    // Aborting it again by id: OSS says NoSuchUpload, exit 1 with a hint.
    let mut again = serve.osspipe(work.path());
    again.args([
        "abort",
        &format!("oss://{BUCKET}/{key}"),
        "--upload-id",
        &upload_id,
    ]);
    let again = run(again);
    assert_eq!(again.code, Some(1), "{}", again.both());
    assert!(again.stderr.contains("NoSuchUpload"), "{}", again.stderr);
    assert!(again.stderr.contains("osspipe uploads"), "{}", again.stderr);
    assert!(serve.stop().success());
}

/// Ctrl-C on a terminal signals the whole pipeline: the producer dies (closing the pipe) at
/// the same moment `osspipe put` is interrupted. The end of input that follows must not
/// complete a truncated object.
#[test]
fn ctrl_c_on_a_pipeline_never_completes_a_truncated_object() {
    use std::os::unix::process::CommandExt;

    let serve = Serve::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let client = serve.client();
    for round in 0..3 {
        let key = format!("pipeline-{round}.bin");
        // The producer leads a new process group, as a shell job would.
        let mut producer = std::process::Command::new("head")
            .args(["-c", "4G", "/dev/zero"])
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("head runs");
        let group = producer.id();
        let mut put = serve.osspipe(work.path());
        put.args([
            "put",
            &format!("oss://{BUCKET}/{key}"),
            "--part-size",
            "1MiB",
        ])
        .stdin(Stdio::from(producer.stdout.take().unwrap()))
        .process_group(group as i32);
        let put = put.spawn().expect("osspipe put starts");
        wait_for_parts(&client, &key, 2 + round);
        // kill(1) with a negative pid signals the whole group at once, like the terminal.
        let status = std::process::Command::new("kill")
            .args(["-INT", "--", &format!("-{group}")])
            .status()
            .unwrap();
        assert!(status.success());
        let ran = wait_output(put);
        let _ = producer.wait();
        assert_eq!(ran.code, Some(130), "round {round}: {}", ran.both());
        assert!(
            !object_exists(&client, BUCKET, &key),
            "round {round}: no object"
        );
        assert!(
            uploads_of(&client, BUCKET, &key).is_empty(),
            "round {round}"
        );
    }
    assert!(serve.stop().success());
}
