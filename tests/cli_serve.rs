//! `osspipe serve`: prints the endpoint it listens on and the credentials it made up, serves
//! other `osspipe` processes, applies `--fault` rules, and stops cleanly on SIGINT.
#![cfg(all(feature = "cli", unix))]

mod cli_common;

use std::net::TcpStream;
use std::time::Duration;

use cli_common::*;

#[test]
fn serve_prints_its_endpoint_and_stops_on_sigint() {
    let serve = Serve::start(&["--bucket", "served"]);
    let port: u16 = serve
        .endpoint
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("a loopback endpoint: {}", serve.endpoint))
        .parse()
        .unwrap();
    assert_ne!(port, 0, "the actual port, not the requested 0");
    assert_eq!(serve.region, "cn-hangzhou");
    assert!(serve.credentials.access_key_id().starts_with("LTAI"));
    assert!(!serve.credentials.access_key_secret().is_empty());
    assert!(serve.log().contains("listening on"), "{}", serve.log());
    TcpStream::connect(("127.0.0.1", port)).expect("the server accepts connections");

    // Another process uses it through the printed environment.
    let work = tempfile::tempdir().unwrap();
    let mut put = serve.osspipe(work.path());
    put.args(["put", "oss://served/hello.txt"]);
    let put = run_with_input(put, b"hello".to_vec());
    assert_eq!(put.code, Some(0), "{}", put.both());
    assert!(
        !put.stderr.contains("embedded"),
        "an endpoint is configured: {}",
        put.stderr
    );

    let status = serve.stop();
    assert_eq!(status.code(), Some(0), "SIGINT stops the server cleanly");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens after the stop"
    );
}

#[test]
fn given_credentials_are_not_echoed_and_faults_apply() {
    let serve = Serve::start(&[
        "--access-key-id",
        "LTAIgivenbythetest",
        "--access-key-secret",
        "given-secret",
        "--region",
        "cn-shanghai",
        // The first UploadPart fails once with 503; the writer's retry carries the upload.
        "--fault",
        "UploadPart:503:SlowDown:part=2",
    ]);
    assert_eq!(serve.credentials.access_key_id(), "LTAIgivenbythetest");
    assert_eq!(serve.region, "cn-shanghai");
    assert_eq!(
        serve.credentials.access_key_secret(),
        "",
        "a given secret is not printed"
    );
    let mut serve = serve;
    serve.credentials = osspipe::Credentials::new("LTAIgivenbythetest", "given-secret");
    let work = tempfile::tempdir().unwrap();
    let input = seeded(11, 3 * MIB);
    let mut put = serve.osspipe(work.path());
    put.args([
        "put",
        "oss://faulty/object.bin",
        "--part-size",
        "1MiB",
        "--json",
    ]);
    let put = run_with_input(put, input.clone());
    assert_eq!(put.code, Some(0), "{}", put.both());
    assert_eq!(put.json()["parts"], 3);
    let mut get = serve.osspipe(work.path());
    get.args(["get", "oss://faulty/object.bin"]);
    assert_eq!(sha256(&run(get).stdout), sha256(&input));

    // A client with the wrong secret is refused by OSS's rules: exit 1, with a hint.
    let mut wrong = serve.osspipe(work.path());
    wrong
        .env("OSS_ACCESS_KEY_SECRET", "not-the-secret")
        .args(["get", "oss://faulty/object.bin"]);
    let wrong = run(wrong);
    assert_eq!(wrong.code, Some(1), "{}", wrong.both());
    assert!(
        wrong.stderr.contains("SignatureDoesNotMatch"),
        "{}",
        wrong.stderr
    );
    assert!(
        wrong.stderr.contains("OSS_ACCESS_KEY_SECRET"),
        "{}",
        wrong.stderr
    );
    assert!(serve.stop().success());
}
