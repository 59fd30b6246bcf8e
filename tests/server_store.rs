//! The directory store over HTTP: hostile keys stay inside the data directory, everything
//! survives a restart, and racing uploads of one key never corrupt it.
#![cfg(feature = "server")]

#[path = "common/server.rs"]
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;
use osspipe::server::LocalServer;
use osspipe::Credentials;

const B: &str = "store-bucket";

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out
}

fn credentials() -> Credentials {
    Credentials::new("LTAIstoretest", "store-secret")
}

async fn directory_server(data: &Path) -> Oss {
    Oss::start(
        LocalServer::builder()
            .directory(data)
            .credentials(credentials()),
    )
    .await
}

#[tokio::test]
async fn hostile_keys_never_leave_the_data_directory() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // Decoys next to and above the data directory that a traversal would hit.
    std::fs::write(root.path().join("passwd"), b"decoy").unwrap();
    let oss = directory_server(&data).await;
    oss.call("PUT", B, Some("plain"))
        .body("plain")
        .send()
        .await
        .ok();

    // (decoded key the server sees, raw request target on the wire)
    let attempts: &[(&str, &str)] = &[
        ("../../etc/passwd", "/store-bucket/../../etc/passwd"),
        ("../passwd", "/store-bucket/%2e%2e%2fpasswd"),
        ("../passwd", "/store-bucket/%2E%2E/passwd"),
        (
            "a/../../../passwd",
            "/store-bucket/a%2F..%2F..%2F..%2Fpasswd",
        ),
        ("..", "/store-bucket/.."),
        ("etc/passwd\0.txt", "/store-bucket/etc/passwd%00.txt"),
        (
            "C:\\Windows\\win.ini",
            "/store-bucket/C:%5CWindows%5Cwin.ini",
        ),
        ("~/.ssh/id_rsa", "/store-bucket/~/.ssh/id_rsa"),
    ];
    let mut seen = BTreeSet::new();
    for (key, target) in attempts {
        // Reading first: never the decoy, never a server file. (Two targets are spellings of
        // the same key; the second finds the first's object, which proves they decode alike.)
        let reply = oss.call("GET", B, Some(key)).send_raw(target).await;
        if seen.insert(*key) {
            reply.expect_error(404, "NoSuchKey");
        } else {
            assert_eq!(reply.ok().text(), "part");
        }
        let body = format!("stored under {key:?}");
        oss.call("PUT", B, Some(key))
            .body(body.clone())
            .send_raw(target)
            .await
            .ok();
        let reply = oss.call("GET", B, Some(key)).send_raw(target).await.ok();
        assert_eq!(reply.text(), body);
        // The multipart path too (part files and upload records), raw all the way.
        let reply = oss
            .call("POST", B, Some(key))
            .query("uploads", "")
            .send_raw(&format!("{target}?uploads"))
            .await
            .ok();
        let id = osspipe::xml::from_xml::<osspipe::xml::InitiateMultipartUploadResult>(&reply.body)
            .unwrap()
            .upload_id;
        let reply = oss
            .call("PUT", B, Some(key))
            .query("partNumber", "1")
            .query("uploadId", &id)
            .body("part")
            .send_raw(&format!("{target}?partNumber=1&uploadId={id}"))
            .await
            .ok();
        let etag = reply.header("etag").unwrap().to_owned();
        oss.call("POST", B, Some(key))
            .query("uploadId", &id)
            .body(complete_body(&[(1, etag)]))
            .send_raw(&format!("{target}?uploadId={id}"))
            .await
            .ok();
        let reply = oss.call("GET", B, Some(key)).send_raw(target).await.ok();
        assert_eq!(reply.text(), "part");
    }
    // Absolute paths are not keys at all.
    let reply = oss
        .call("GET", B, Some("/etc/passwd"))
        .send_raw("/store-bucket//etc/passwd")
        .await;
    reply.expect_error(400, "InvalidObjectName");
    // A bucket that is a traversal is an invalid bucket.
    for target in ["/../x", "/%2e%2e/x", "/.tmp/x"] {
        let reply = oss.call("GET", "dotdot", Some("x")).send_raw(target).await;
        reply.expect_error(400, "InvalidBucketName");
    }

    assert_eq!(std::fs::read(root.path().join("passwd")).unwrap(), b"decoy");
    let outside: Vec<PathBuf> = files_under(root.path())
        .into_iter()
        .filter(|p| !p.starts_with("data"))
        .collect();
    assert_eq!(
        outside,
        [PathBuf::from("passwd")],
        "only the decoy lives outside data/"
    );
    // Inside, only the documented layout: bucket folders of blobs/objects/uploads.
    for file in files_under(&data) {
        let first = file
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(first == B || first == ".tmp", "unexpected {file:?}");
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'),
            "file names are hex ids and hashes, not keys: {file:?}"
        );
    }
    oss.shutdown().await;
}

#[tokio::test]
async fn objects_metadata_and_uploads_survive_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let object = data_bytes();
    let (upload_id, part1);
    {
        let oss = directory_server(&dir).await;
        oss.call("PUT", B, Some("kept.txt"))
            .header("content-type", "text/x-kept")
            .header("x-oss-meta-color", "blue")
            .header("cache-control", "max-age=1")
            .body(object.clone())
            .send()
            .await
            .ok();
        // A completed multipart object.
        let id = initiate(&oss, B, "multi").await;
        let e1 = upload_part(&oss, B, "multi", &id, 1, &data(102_400, 1)).await;
        let e2 = upload_part(&oss, B, "multi", &id, 2, &data(5, 2)).await;
        complete(&oss, B, "multi", &id, &[(1, e1), (2, e2)])
            .await
            .ok();
        // An upload in progress with two parts.
        upload_id = initiate(&oss, B, "pending").await;
        part1 = data(200_000, 3);
        upload_part(&oss, B, "pending", &upload_id, 1, &part1).await;
        upload_part(&oss, B, "pending", &upload_id, 3, &data(10, 4)).await;
        oss.shutdown().await;
    }
    let oss = directory_server(&dir).await;
    let head = oss.call("HEAD", B, Some("kept.txt")).send().await.ok();
    assert_eq!(head.header("content-type"), Some("text/x-kept"));
    assert_eq!(head.header("x-oss-meta-color"), Some("blue"));
    assert_eq!(head.header("cache-control"), Some("max-age=1"));
    assert_eq!(head.header("etag").unwrap(), md5_etag(&object));
    assert_eq!(get(&oss, B, "kept.txt").await.as_ref(), object.as_slice());
    let multi = get(&oss, B, "multi").await;
    assert_eq!(
        multi.as_ref(),
        [data(102_400, 1), data(5, 2)].concat().as_slice()
    );
    let head = oss.call("HEAD", B, Some("multi")).send().await.ok();
    assert_eq!(head.header("x-oss-object-type"), Some("Multipart"));

    // The pending upload is listed, with its parts, and can be finished.
    let uploads = oss
        .call("GET", B, None)
        .query("uploads", "")
        .send()
        .await
        .ok();
    let uploads: osspipe::xml::ListMultipartUploadsResult =
        osspipe::xml::from_xml(&uploads.body).unwrap();
    assert_eq!(uploads.uploads.len(), 1);
    assert_eq!(uploads.uploads[0].upload_id, upload_id);
    let parts = oss
        .call("GET", B, Some("pending"))
        .query("uploadId", &upload_id)
        .send()
        .await
        .ok();
    let parts: osspipe::xml::ListPartsResult = osspipe::xml::from_xml(&parts.body).unwrap();
    let listed: Vec<(u32, String)> = parts
        .parts
        .iter()
        .map(|p| (p.part_number, p.etag.clone()))
        .collect();
    assert_eq!(listed.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(listed[0].1, md5_etag(&part1));
    complete(&oss, B, "pending", &upload_id, &listed).await.ok();
    assert_eq!(
        get(&oss, B, "pending").await.as_ref(),
        [part1, data(10, 4)].concat().as_slice()
    );
    // Deleting frees the files: only the bucket record and the live objects remain.
    for key in ["kept.txt", "multi", "pending"] {
        oss.call("DELETE", B, Some(key)).send().await;
    }
    let left: Vec<PathBuf> = files_under(&dir.join(B)).into_iter().collect();
    assert_eq!(left, [PathBuf::from("bucket.json")]);
    oss.shutdown().await;
}

fn data_bytes() -> Vec<u8> {
    data(3 * 1024 * 1024 + 11, 9)
}

#[tokio::test]
async fn concurrent_uploads_of_one_key_last_complete_wins() {
    let root = tempfile::tempdir().unwrap();
    for store in ["memory", "directory"] {
        let builder = LocalServer::builder().credentials(credentials());
        let builder = if store == "memory" {
            builder.memory()
        } else {
            builder.directory(root.path().join("data"))
        };
        let oss = Oss::start(builder).await;
        let uploads = 6usize;
        // Every upload writes its own bytes (3 parts each), all at once.
        let results = futures::future::join_all((0..uploads).map(|u| {
            let oss = &oss;
            async move {
                let id = initiate(oss, B, "contested").await;
                let parts: Vec<Vec<u8>> = (0..3)
                    .map(|p| data(if p < 2 { 102_400 } else { 999 }, (u * 3 + p) as u8))
                    .collect();
                let etags =
                    futures::future::join_all(parts.iter().enumerate().map(|(p, bytes)| {
                        upload_part(oss, B, "contested", &id, p as u32 + 1, bytes)
                    }))
                    .await;
                let listed: Vec<(u32, String)> = etags
                    .into_iter()
                    .enumerate()
                    .map(|(p, e)| (p as u32 + 1, e))
                    .collect();
                let reply = complete(oss, B, "contested", &id, &listed).await.ok();
                let etag = reply.header("etag").unwrap().to_owned();
                (parts.concat(), etag)
            }
        }))
        .await;
        // Whichever won, the object is exactly one upload's bytes with that upload's ETag.
        let body = get(&oss, B, "contested").await;
        let head = oss.call("HEAD", B, Some("contested")).send().await.ok();
        let winner = results
            .iter()
            .find(|(_, etag)| Some(etag.as_str()) == head.header("etag"))
            .expect("the object's ETag is one of the completed uploads'");
        assert_eq!(body.as_ref(), winner.0.as_slice(), "{store}");
        assert_eq!(
            head.header("x-oss-hash-crc64ecma").unwrap(),
            osspipe::crc64::checksum(&winner.0).to_string()
        );
        let ids = results.iter().map(|r| r.1.clone()).collect::<BTreeSet<_>>();
        assert_eq!(
            ids.len(),
            uploads,
            "every upload completed with its own ETag"
        );
        // The last Complete wins: a Complete now replaces it.
        let id = initiate(&oss, B, "contested").await;
        let etag = upload_part(&oss, B, "contested", &id, 1, b"final").await;
        complete(&oss, B, "contested", &id, &[(1, etag)]).await.ok();
        assert_eq!(get(&oss, B, "contested").await.as_ref(), b"final");
        oss.shutdown().await;
    }
    // Only the final object's blob is left in the directory store.
    let blobs = std::fs::read_dir(root.path().join("data").join(B).join("blobs"))
        .unwrap()
        .count();
    assert_eq!(blobs, 1);
}

#[tokio::test]
async fn large_multipart_object_in_the_directory_store() {
    let root = tempfile::tempdir().unwrap();
    let oss = directory_server(&root.path().join("data")).await;
    let id = initiate(&oss, B, "large").await;
    let parts: Vec<Vec<u8>> = (0..4).map(|i| data(5 * 1024 * 1024 + i, i as u8)).collect();
    let mut listed = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        listed.push((
            i as u32 + 1,
            upload_part(&oss, B, "large", &id, i as u32 + 1, part).await,
        ));
    }
    complete(&oss, B, "large", &id, &listed).await.ok();
    let whole = parts.concat();
    assert_eq!(get(&oss, B, "large").await.as_ref(), whole.as_slice());
    // A range across a piece boundary.
    let start = 5 * 1024 * 1024 - 10;
    let reply = oss
        .call("GET", B, Some("large"))
        .header("range", &format!("bytes={start}-{}", start + 99))
        .send()
        .await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.body.as_ref(), &whole[start..start + 100]);
    oss.shutdown().await;
}
