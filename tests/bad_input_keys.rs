//! Hostile object keys.
//!
//! - The client refuses, before sending anything, keys OSS or URLs cannot carry: empty, 1024
//!   bytes, a leading `/` or `\`, NUL, `.`/`..` path segments (`../../etc/passwd`), with an
//!   [`ErrorKind::InvalidInput`] error that names the rule. `%2e%2e%2f` is a legal key: it is
//!   sent encoded and stored under exactly that name.
//! - The local server, spoken to directly with raw HTTP over a `TcpStream` (so no URL library
//!   "fixes" the path), signed with `osspipe::sign`, refuses such keys or stores them safely:
//!   nothing is ever written outside its data directory.
#![cfg(feature = "server")]

#[path = "common/reliability.rs"]
mod reliability;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use osspipe::server::LocalServer;
use osspipe::sign::SignatureVersion;
use osspipe::target::ObjectOptions;
use osspipe::upload::ObjectWriter;
use osspipe::{Credentials, ErrorKind};
use reliability::*;
use tokio::io::AsyncWriteExt;

const BUCKET: &str = "bad-keys";

/// Keys the client must refuse, with a word the message must contain.
fn refused_keys() -> Vec<(String, &'static str)> {
    vec![
        (String::new(), "1-1023 bytes"),
        ("k".repeat(1024), "1-1023 bytes"),
        ("/etc/passwd".into(), "must not start with '/'"),
        (
            "\\windows\\system32".into(),
            "must not start with '/' or '\\'",
        ),
        ("../../etc/passwd".into(), "'..' path segments"),
        ("logs/../../../etc/passwd".into(), "'..' path segments"),
        ("a/./b".into(), "'.' or '..' path segments"),
        ("nul\0byte".into(), "NUL"),
    ]
}

#[tokio::test]
async fn the_client_refuses_bad_keys_before_sending() {
    let server = LocalServer::builder().bucket(BUCKET).start().await.unwrap();
    let client = client_for(server.addr(), server.credentials());
    let before = server.requests();
    for (key, rule) in refused_keys() {
        let shown: String = key.chars().take(40).collect();
        let error = client
            .put_object(
                BUCKET,
                &key,
                Bytes::from_static(b"x"),
                &ObjectOptions::default(),
            )
            .await
            .expect_err(&format!("PutObject of {shown:?} must be refused"));
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{shown:?}: {error}");
        assert!(
            error.to_string().contains(rule),
            "{shown:?}: the message names the rule ({rule:?}): {error}"
        );
        let error = client
            .initiate_multipart_upload(BUCKET, &key, &ObjectOptions::default())
            .await
            .expect_err(&format!("Initiate of {shown:?} must be refused"));
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{shown:?}: {error}");
        let error = client
            .get_object(BUCKET, &key)
            .await
            .expect_err(&format!("GET of {shown:?} must be refused"));
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{shown:?}: {error}");
    }
    assert_eq!(server.requests(), before, "a refused key must send nothing");
    server.shutdown().await;
}

#[tokio::test]
async fn the_writer_refuses_bad_keys_and_sends_nothing() {
    let server = LocalServer::builder().bucket(BUCKET).start().await.unwrap();
    let client = client_for(server.addr(), server.credentials());
    let before = server.requests();
    for (key, _) in refused_keys() {
        let shown: String = key.chars().take(40).collect();
        let builder = ObjectWriter::builder(Arc::new(client.bucket(BUCKET)), &key);
        let mut writer = match builder.build() {
            Ok(writer) => writer,
            Err(error) => {
                // Length rules are checked when the writer is built.
                assert!(
                    matches!(error.kind(), ErrorKind::Config | ErrorKind::InvalidInput),
                    "{shown:?}: {error}"
                );
                continue;
            }
        };
        let write = writer.write_all(b"some bytes").await;
        let shutdown = writer.shutdown().await;
        let error = osspipe::Error::from_io(
            write
                .err()
                .or(shutdown.err())
                .unwrap_or_else(|| panic!("the writer stored {shown:?}")),
        );
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{shown:?}: {error}");
    }
    assert_eq!(server.requests(), before, "a refused key must send nothing");
    server.shutdown().await;
}

#[tokio::test]
async fn percent_sequences_are_stored_under_their_literal_name() {
    let data = tempfile::tempdir().unwrap();
    let server = LocalServer::builder()
        .directory(data.path().join("data"))
        .bucket(BUCKET)
        .start()
        .await
        .unwrap();
    let client = client_for(server.addr(), server.credentials());
    for key in [
        "%2e%2e%2f",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2f..%2fx",
        "a b?c#d+e%f",
    ] {
        let body = Bytes::from(format!("literal {key}"));
        client
            .put_object(BUCKET, key, body.clone(), &ObjectOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{key:?} is a legal key: {e}"));
        let read = client.get_object(BUCKET, key).await.unwrap();
        assert_eq!(read.body.bytes().await.unwrap(), body, "{key:?}");
    }
    let listed: Vec<String> = client
        .list_objects(BUCKET, None)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    for key in [
        "%2e%2e%2f",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2f..%2fx",
        "a b?c#d+e%f",
    ] {
        assert!(
            listed.iter().any(|k| k == key),
            "{key:?} listed as is: {listed:?}"
        );
    }
    assert_only_inside(data.path(), &data.path().join("data"));
    server.shutdown().await;
}

/// Every file under `root` lies inside `inside`.
fn assert_only_inside(root: &Path, inside: &Path) {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    let outside: Vec<_> = files.iter().filter(|f| !f.starts_with(inside)).collect();
    assert!(
        outside.is_empty(),
        "files written outside the data directory: {outside:?}"
    );
}

/// A raw PUT of `target` (the path exactly as sent) whose signature covers `key` (the key as
/// the server decodes it), then, if it was stored, a raw GET of the same target.
async fn raw_put_then_get(
    addr: std::net::SocketAddr,
    credentials: &Credentials,
    target: &str,
    key: &str,
    body: &str,
) -> (RawResponse, Option<RawResponse>) {
    let now = SystemTime::now();
    let put = RawRequest::new("PUT", target)
        .body(body.to_owned())
        .signed(
            SignatureVersion::V4,
            credentials,
            Some(BUCKET),
            Some(key),
            &[],
            now,
        )
        .send(addr)
        .await;
    if put.status != 200 {
        return (put, None);
    }
    let get = RawRequest::new("GET", target)
        .signed(
            SignatureVersion::V4,
            credentials,
            Some(BUCKET),
            Some(key),
            &[],
            now,
        )
        .send(addr)
        .await;
    (put, Some(get))
}

#[tokio::test]
async fn the_server_refuses_or_contains_hostile_keys() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let server = LocalServer::builder()
        .directory(&data)
        .bucket(BUCKET)
        .start()
        .await
        .unwrap();
    let addr = server.addr();
    let credentials = server.credentials().clone();
    let b = BUCKET;
    let long = "k".repeat(1024);
    // (target as sent, key as the server decodes it, what must happen)
    let stored = "stored";
    let refused = "InvalidObjectName";
    let cases: Vec<(String, String, &str)> = vec![
        (
            format!("/{b}/../../etc/passwd"),
            "../../etc/passwd".into(),
            stored,
        ),
        (
            format!("/{b}/%2e%2e/%2e%2e/etc/passwd"),
            "../../etc/passwd".into(),
            stored,
        ),
        (
            format!("/{b}/%2e%2e%2f%2e%2e%2fescape"),
            "../../escape".into(),
            stored,
        ),
        (
            format!("/{b}/..%2F..%2F..%2Froot-escape"),
            "../../../root-escape".into(),
            stored,
        ),
        (format!("/{b}/%252e%252e%252f"), "%2e%2e%2f".into(), stored),
        (format!("/{b}/.."), "..".into(), stored),
        (format!("/{b}/nul%00byte"), "nul\0byte".into(), stored),
        (
            format!("/{b}/%2Fetc%2Fpasswd"),
            "/etc/passwd".into(),
            refused,
        ),
        (format!("/{b}//etc/passwd"), "/etc/passwd".into(), refused),
        (
            format!("/{b}/%5C..%5Cwindows"),
            "\\..\\windows".into(),
            refused,
        ),
        (format!("/{b}/{long}"), long.clone(), refused),
    ];
    for (index, (target, key, expected)) in cases.iter().enumerate() {
        let body = format!("hostile key {index}");
        let (put, get) = raw_put_then_get(addr, &credentials, target, key, &body).await;
        if *expected == stored {
            // Stored as an opaque name inside the data directory, and readable under it.
            assert_eq!(put.status, 200, "{target}: {}", put.text());
            let get = get.unwrap();
            assert_eq!(get.status, 200, "{target}: {}", get.text());
            assert_eq!(get.text(), body, "{target}");
        } else {
            assert_eq!(put.status, 400, "{target}: {}", put.text());
            assert_eq!(put.oss_code(), *expected, "{target}: {}", put.text());
        }
    }
    // A bucket name that is a path segment is refused as a bucket name.
    let put = RawRequest::new("PUT", "/%2e%2e/escape")
        .body("x")
        .signed(
            SignatureVersion::V4,
            &credentials,
            Some(".."),
            Some("escape"),
            &[],
            SystemTime::now(),
        )
        .send(addr)
        .await;
    assert_eq!(put.status, 400, "{}", put.text());
    assert_eq!(put.oss_code(), "InvalidBucketName");

    assert!(!root.path().join("etc").exists());
    assert!(!root.path().join("escape").exists());
    assert!(!root.path().join("root-escape").exists());
    assert_only_inside(root.path(), &data);
    assert_eq!(server.unexpected_errors(), 0);
    assert_eq!(server.panics(), 0);
    server.shutdown().await;
}
