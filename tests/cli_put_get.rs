//! `osspipe put` and `osspipe get` end to end: a 64 MiB stream is byte-identical after the round
//! trip, `--json` describes the object, `--output` writes through a renamed temporary file,
//! and the embedded default works in an empty directory with no configuration.
#![cfg(feature = "cli")]

mod cli_common;

use cli_common::*;

const BUCKET: &str = "cli-put-get";

#[test]
fn a_64_mib_stream_round_trips_byte_identical() {
    let serve = Serve::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let input = seeded(64, 64 * MIB);
    let url = format!("oss://{BUCKET}/streams/64mib.bin");

    let mut put = serve.osspipe(work.path());
    put.args(["put", &url, "--json"]);
    let put = run_with_input(put, input.clone());
    assert_eq!(put.code, Some(0), "{}", put.both());
    let summary = put.json();
    assert_eq!(summary["bucket"], BUCKET);
    assert_eq!(summary["key"], "streams/64mib.bin");
    assert_eq!(summary["size"], 64 * MIB as u64);
    // 8 MiB first parts by default: 8 parts.
    assert_eq!(summary["parts"], 8, "{summary}");
    assert_eq!(
        summary["crc64"],
        osspipe::crc64::checksum(&input).to_string(),
        "crc64 is the object's CRC-64 as a decimal string"
    );
    assert!(summary["etag"]
        .as_str()
        .is_some_and(|e| !e.is_empty() && !e.contains('"')));
    assert!(summary["upload_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert!(summary["seconds"].as_f64().is_some_and(|s| s >= 0.0));

    let mut get = serve.osspipe(work.path());
    get.args(["get", &url]);
    let got = run(get);
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    assert_eq!(got.stdout.len(), input.len());
    assert_eq!(
        sha256(&got.stdout),
        sha256(&input),
        "get returns the bytes put"
    );

    let target = work.path().join("copy.bin");
    let mut get = serve.osspipe(work.path());
    get.args(["get", &url, "--output"]).arg(&target);
    let got = run(get);
    assert_eq!(got.code, Some(0), "{}", got.both());
    assert!(got.stdout.is_empty(), "--output leaves stdout empty");
    assert_eq!(sha256(&std::fs::read(&target).unwrap()), sha256(&input));
    let names: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["copy.bin"], "no temporary file is left behind");
    assert!(serve.stop().success(), "the server stops cleanly on SIGINT");
}

#[test]
fn the_summary_line_files_and_small_streams() {
    let serve = Serve::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let client = serve.client();

    // --file: a regular file, its size used as the size hint.
    let input = seeded(7, 3 * MIB + 17);
    let path = work.path().join("input.bin");
    std::fs::write(&path, &input).unwrap();
    let mut put = serve.osspipe(work.path());
    put.args(["put", &format!("oss://{BUCKET}/from-file.bin"), "--file"])
        .arg(&path)
        .args(["--part-size", "1MiB"]);
    let put = run(put);
    assert_eq!(put.code, Some(0), "{}", put.both());
    let line = put.stdout_text();
    assert_eq!(line.lines().count(), 1, "one summary line: {line}");
    assert!(
        line.starts_with(&format!(
            "oss://{BUCKET}/from-file.bin: 3.0 MiB (3145745 bytes) in "
        )),
        "{line}"
    );
    assert!(line.contains("crc64 ") && line.contains("etag "), "{line}");
    let stored = block_on(async {
        client
            .get_object(BUCKET, "from-file.bin")
            .await
            .unwrap()
            .body
            .bytes()
            .await
            .unwrap()
    });
    assert_eq!(sha256(&stored), sha256(&input));

    // An empty stream is an empty object, written with one PutObject.
    let mut put = serve.osspipe(work.path());
    put.args(["put", &format!("oss://{BUCKET}/empty"), "--json"]);
    let put = run_with_input(put, Vec::new());
    assert_eq!(put.code, Some(0), "{}", put.both());
    let summary = put.json();
    assert_eq!(summary["size"], 0);
    assert_eq!(summary["parts"], 0);
    assert_eq!(summary["upload_id"], serde_json::Value::Null);
    let mut get = serve.osspipe(work.path());
    get.args(["get", &format!("oss://{BUCKET}/empty")]);
    let got = run(get);
    assert_eq!((got.code, got.stdout.len()), (Some(0), 0), "{}", got.both());

    // Metadata, content type and --forbid-overwrite reach OSS.
    let url = format!("oss://{BUCKET}/meta.txt");
    let mut put = serve.osspipe(work.path());
    put.args([
        "put",
        &url,
        "--meta",
        "origin=cli-test",
        "--content-type",
        "text/x-test",
        "--forbid-overwrite",
    ]);
    let put = run_with_input(put, b"first".to_vec());
    assert_eq!(put.code, Some(0), "{}", put.both());
    let head = block_on(client.head_object(BUCKET, "meta.txt")).unwrap();
    assert_eq!(head.content_type.as_deref(), Some("text/x-test"));
    assert!(head
        .metadata
        .contains(&("origin".to_owned(), "cli-test".to_owned())));
    let mut again = serve.osspipe(work.path());
    again.args(["put", &url, "--forbid-overwrite"]);
    let again = run_with_input(again, b"second".to_vec());
    assert_eq!(again.code, Some(1), "{}", again.both());
    assert!(
        again.stderr.contains("FileAlreadyExists"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains("hint:"), "{}", again.stderr);
    let mut get = serve.osspipe(work.path());
    get.args(["get", &url]);
    assert_eq!(run(get).stdout, b"first", "the object was not replaced");

    // A missing object: exit 1 with OSS's code and a hint.
    let mut get = serve.osspipe(work.path());
    get.args(["get", &format!("oss://{BUCKET}/missing"), "-o", "out.bin"]);
    let got = run(get);
    assert_eq!(got.code, Some(1), "{}", got.both());
    assert!(got.stderr.contains("404 NoSuchKey"), "{}", got.stderr);
    assert!(got.stderr.contains("request id"), "{}", got.stderr);
    assert!(!work.path().join("out.bin").exists());
}

#[test]
fn the_embedded_default_works_in_an_empty_directory() {
    let work = tempfile::tempdir().unwrap();
    let input = seeded(3, 5 * MIB + 3);

    let mut put = osspipe(work.path());
    put.args(["put", "oss://demo/random.bin", "--part-size", "1MiB"]);
    let put = run_with_input(put, input.clone());
    assert_eq!(put.code, Some(0), "{}", put.both());
    assert!(
        put.stderr.contains("embedded local server over ./oss-data"),
        "the embedded default says so on stderr: {}",
        put.stderr
    );
    assert!(
        work.path().join("oss-data").is_dir(),
        "./oss-data holds the data"
    );

    // Another process reads it back from the same directory.
    let mut get = osspipe(work.path());
    get.args(["get", "oss://demo/random.bin"]);
    let got = run(get);
    assert_eq!(got.code, Some(0), "{}", got.stderr);
    assert_eq!(sha256(&got.stdout), sha256(&input));

    // -q silences the note; --local-dir picks another directory.
    let mut put = osspipe(work.path());
    put.args(["-q", "put", "oss://demo/other", "--local-dir", "elsewhere"]);
    let put = run_with_input(put, b"elsewhere".to_vec());
    assert_eq!(put.code, Some(0), "{}", put.both());
    assert_eq!(put.stderr, "", "-q prints nothing on success");
    assert!(work.path().join("elsewhere").is_dir());
    let mut get = osspipe(work.path());
    get.args(["get", "oss://demo/other"]);
    let got = run(get);
    assert_eq!(got.code, Some(1), "not in ./oss-data: {}", got.both());
    let mut get = osspipe(work.path());
    get.args(["get", "oss://demo/other", "--local-dir", "elsewhere"]);
    assert_eq!(run(get).stdout, b"elsewhere");
}

#[test]
fn get_refuses_bytes_whose_crc64_does_not_match() {
    // Every GetObject answer carries a wrong x-oss-hash-crc64ecma.
    let serve = Serve::start(&["--fault", "GetObject:bad-crc:times=unlimited"]);
    let work = tempfile::tempdir().unwrap();
    let input = seeded(5, 2 * MIB + 5);
    let url = format!("oss://{BUCKET}/checked.bin");
    let mut put = serve.osspipe(work.path());
    put.args(["put", &url]);
    let put = run_with_input(put, input);
    assert_eq!(put.code, Some(0), "{}", put.both());

    let mut get = serve.osspipe(work.path());
    get.args(["get", &url, "--output", "copy.bin"]);
    let got = run(get);
    assert_eq!(got.code, Some(1), "a CRC-64 mismatch fails: {}", got.both());
    assert!(
        got.stderr.to_ascii_lowercase().contains("crc-64"),
        "{}",
        got.stderr
    );
    assert!(
        std::fs::read_dir(work.path()).unwrap().next().is_none(),
        "neither the file nor its temporary file is left"
    );

    let mut get = serve.osspipe(work.path());
    get.args(["get", &url]);
    let got = run(get);
    assert_eq!(got.code, Some(1), "{}", got.both());
    assert!(
        got.stderr.to_ascii_lowercase().contains("crc-64"),
        "{}",
        got.stderr
    );
    assert!(serve.stop().success());
}

/// Standard input that is a pipe is read without blocking (straight into the part buffers);
/// a slow producer still gives the whole object, and the pipe is handed back in blocking mode
/// (the mode belongs to the pipe, which a shell may pass on to the next command).
#[cfg(target_os = "linux")]
#[test]
fn a_pipe_on_stdin_is_read_whole_and_left_blocking() {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    let serve = Serve::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let input = seeded(71, 3 * MIB + 12_345);
    let url = format!("oss://{BUCKET}/pipes/slow.bin");
    let (reader, mut writer) = std::io::pipe().unwrap();
    let ours = reader.try_clone().unwrap();
    let mut put = serve.osspipe(work.path());
    put.args(["put", &url, "--json", "--part-size", "1048576"]);
    put.stdin(reader);
    let child = put.spawn().expect("osspipe starts");
    let fed = input.clone();
    let feeder = std::thread::spawn(move || {
        for piece in fed.chunks(200_003) {
            writer.write_all(piece).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    });
    let ran = wait_output(child);
    feeder.join().unwrap();
    assert_eq!(ran.code, Some(0), "{}", ran.both());
    assert_eq!(ran.json()["size"], input.len() as u64);
    assert_eq!(
        ran.json()["crc64"],
        osspipe::crc64::checksum(&input).to_string()
    );
    // SAFETY: F_GETFL on a descriptor this test owns.
    let flags = unsafe { libc::fcntl(ours.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0);
    assert_eq!(flags & libc::O_NONBLOCK, 0, "the pipe is blocking again");
}
