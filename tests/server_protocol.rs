//! The local server over real HTTP: operations, response facts and every documented error.
#![cfg(feature = "server")]

#[path = "common/server.rs"]
mod common;

use common::*;
use osspipe::crc64;
use osspipe::server::{EtagMode, LocalServer};
use osspipe::xml::{self, ListBucketResult, ListMultipartUploadsResult, ListPartsResult};

const B: &str = "test-bucket";

#[tokio::test]
async fn put_get_head_delete_with_metadata() {
    let oss = Oss::memory().await;
    let body = b"hello oss\n".to_vec();
    let reply = oss
        .call("PUT", B, Some("docs/hello world.txt"))
        .header("content-type", "text/plain")
        .header("cache-control", "no-cache")
        .header("content-disposition", "attachment; filename=x")
        .header("content-encoding", "identity")
        .header("expires", "Wed, 15 Jan 2025 08:30:00 GMT")
        .header("x-oss-meta-Project", "Rust-Client")
        .header("x-oss-storage-class", "IA")
        .header("x-oss-tagging", "team=storage&env=test")
        .header("x-oss-server-side-encryption", "AES256")
        .body(body.clone())
        .send()
        .await
        .ok();
    assert_common_headers(&reply);
    assert_eq!(
        reply.header("etag"),
        Some("\"4B4114A18BBF2A4C5446F9AFCCF9923F\"")
    );
    assert_eq!(
        reply.header("content-md5"),
        Some("S0EUoYu/KkxURvmvzPmSPw==")
    );
    assert_eq!(
        reply.header("x-oss-hash-crc64ecma"),
        Some("17223430255209957478")
    );
    assert_eq!(reply.header("x-oss-server-side-encryption"), Some("AES256"));
    assert_eq!(reply.header("content-length"), Some("0"));

    for method in ["HEAD", "GET"] {
        let reply = oss
            .call(method, B, Some("docs/hello world.txt"))
            .send()
            .await
            .ok();
        assert_common_headers(&reply);
        assert_eq!(reply.header("content-length"), Some("10"), "{method}");
        assert_eq!(reply.header("content-type"), Some("text/plain"));
        assert_eq!(reply.header("cache-control"), Some("no-cache"));
        assert_eq!(
            reply.header("content-disposition"),
            Some("attachment; filename=x")
        );
        assert_eq!(reply.header("content-encoding"), Some("identity"));
        assert_eq!(
            reply.header("expires"),
            Some("Wed, 15 Jan 2025 08:30:00 GMT")
        );
        assert_eq!(reply.header("x-oss-meta-project"), Some("Rust-Client"));
        assert_eq!(reply.header("x-oss-storage-class"), Some("IA"));
        assert_eq!(reply.header("x-oss-tagging-count"), Some("2"));
        assert_eq!(reply.header("x-oss-server-side-encryption"), Some("AES256"));
        assert_eq!(reply.header("x-oss-object-type"), Some("Normal"));
        assert_eq!(
            reply.header("x-oss-hash-crc64ecma"),
            Some("17223430255209957478")
        );
        assert_eq!(
            reply.header("content-md5"),
            Some("S0EUoYu/KkxURvmvzPmSPw==")
        );
        assert_eq!(
            reply.header("etag"),
            Some("\"4B4114A18BBF2A4C5446F9AFCCF9923F\"")
        );
        assert_eq!(reply.header("accept-ranges"), Some("bytes"));
        let last_modified = reply.header("last-modified").unwrap();
        assert!(osspipe::sign::parse_rfc1123(last_modified).is_some());
        if method == "GET" {
            assert_eq!(reply.body.as_ref(), body.as_slice());
        } else {
            assert!(reply.body.is_empty());
        }
    }
    // response-* overrides on GET.
    let reply = oss
        .call("GET", B, Some("docs/hello world.txt"))
        .query("response-content-type", "application/x-test")
        .send()
        .await
        .ok();
    assert_eq!(reply.header("content-type"), Some("application/x-test"));

    let reply = oss
        .call("DELETE", B, Some("docs/hello world.txt"))
        .send()
        .await;
    assert_eq!(reply.status, 204);
    let reply = oss
        .call("DELETE", B, Some("docs/hello world.txt"))
        .send()
        .await;
    assert_eq!(reply.status, 204, "deleting a missing object is fine");
    let reply = oss
        .call("GET", B, Some("docs/hello world.txt"))
        .send()
        .await;
    let error = reply.expect_error(404, "NoSuchKey");
    assert_eq!(error.message, "The specified key does not exist.");
    assert_eq!(error.field("Key"), Some("docs/hello world.txt"));
    assert_eq!(error.ec, "0026-00000001");
    assert_eq!(reply.header("content-type"), Some("application/xml"));
    assert_eq!(reply.header("x-oss-ec"), Some("0026-00000001"));
}

#[tokio::test]
async fn head_errors_have_no_body_but_x_oss_err() {
    let oss = Oss::memory().await;
    let reply = oss.call("HEAD", B, Some("missing")).send().await;
    assert!(reply.body.is_empty());
    assert!(reply.header("x-oss-err").is_some());
    assert_eq!(reply.header("x-oss-ec"), Some("0026-00000001"));
    let error = reply.expect_error(404, "NoSuchKey");
    assert_eq!(error.field("Key"), Some("missing"));
}

#[tokio::test]
async fn content_type_is_guessed_from_the_key() {
    let oss = Oss::memory().await;
    oss.call("PUT", B, Some("a.json"))
        .body("{}")
        .send()
        .await
        .ok();
    oss.call("PUT", B, Some("noext"))
        .body("x")
        .send()
        .await
        .ok();
    let json = oss.call("HEAD", B, Some("a.json")).send().await.ok();
    assert_eq!(json.header("content-type"), Some("application/json"));
    let plain = oss.call("HEAD", B, Some("noext")).send().await.ok();
    assert_eq!(
        plain.header("content-type"),
        Some("application/octet-stream")
    );
}

#[tokio::test]
async fn keys_are_decoded_once_and_plus_is_literal() {
    let oss = Oss::memory().await;
    for key in [
        "backups/a+b=c.tar.gz",
        "数据/报告 2025.csv",
        "a%20b",
        "sp ace",
        "q?#&=",
    ] {
        let bytes = format!("body of {key}");
        oss.call("PUT", B, Some(key))
            .body(bytes.clone())
            .send()
            .await
            .ok();
        assert_eq!(get(&oss, B, key).await.as_ref(), bytes.as_bytes(), "{key}");
    }
    // %2F in the path is a slash in the key (oss2 encodes slashes).
    let reply = oss
        .call("GET", B, Some("backups/a+b=c.tar.gz"))
        .send_raw("/test-bucket/backups%2Fa%2Bb%3Dc.tar.gz")
        .await
        .ok();
    assert_eq!(reply.text(), "body of backups/a+b=c.tar.gz");
    let listing = oss
        .call("GET", B, None)
        .query("list-type", "2")
        .send()
        .await
        .ok();
    let listing: ListBucketResult = xml::from_xml(&listing.body).unwrap();
    let keys: Vec<&str> = listing.contents.iter().map(|o| o.key.as_str()).collect();
    assert!(
        keys.contains(&"a%20b") && keys.contains(&"sp ace"),
        "{keys:?}"
    );
}

#[tokio::test]
async fn ranges_follow_oss_rules() {
    let oss = Oss::memory().await;
    let body = data(1000, 1);
    oss.call("PUT", B, Some("r"))
        .body(body.clone())
        .send()
        .await
        .ok();
    let crc = crc64::checksum(&body).to_string();
    let range = |spec: &'static str, standard: bool| {
        let mut call = oss.call("GET", B, Some("r")).header("range", spec);
        if standard {
            call = call.header("x-oss-range-behavior", "standard");
        }
        call.send()
    };
    let reply = range("bytes=100-199", false).await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(reply.body.as_ref(), &body[100..200]);
    assert_eq!(
        reply.header("x-oss-hash-crc64ecma"),
        Some(crc.as_str()),
        "whole-object CRC"
    );
    let reply = range("bytes=990-", false).await;
    assert_eq!((reply.status, reply.body.len()), (206, 10));
    let reply = range("bytes=-5", false).await;
    assert_eq!(reply.body.as_ref(), &body[995..]);
    let reply = range("bytes=0-9,20-29", false).await;
    assert_eq!((reply.status, reply.body.as_ref()), (206, &body[..10]));
    // Invalid or unsatisfiable: ignored (200, whole body) by default.
    for spec in ["bytes=1000-2000", "bytes=500-2000", "byte=0-9", "bytes=9-1"] {
        let reply = range(spec, false).await;
        assert_eq!(reply.status, 200, "{spec}");
        assert_eq!(reply.body.len(), 1000);
        assert!(reply.header("content-range").is_none());
    }
    // Standard behaviour: 416 past the end, clamped when it overlaps.
    range("bytes=1000-2000", true)
        .await
        .expect_error(416, "InvalidRange");
    let reply = range("bytes=500-2000", true).await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.header("content-range"), Some("bytes 500-999/1000"));
}

#[tokio::test]
async fn conditional_requests() {
    let oss = Oss::memory().await;
    let etag = oss
        .call("PUT", B, Some("c"))
        .body("x")
        .send()
        .await
        .ok()
        .header("etag")
        .unwrap()
        .to_owned();
    let reply = oss
        .call("GET", B, Some("c"))
        .header("if-none-match", &etag)
        .send()
        .await;
    assert_eq!(reply.status, 304);
    let reply = oss
        .call("GET", B, Some("c"))
        .header("if-match", "\"0000\"")
        .send()
        .await;
    let error = reply.expect_error(412, "PreconditionFailed");
    assert_eq!(error.field("Condition"), Some("If-Match"));
    oss.call("GET", B, Some("c"))
        .header("if-match", &etag)
        .send()
        .await
        .ok();
}

#[tokio::test]
async fn multipart_round_trip_with_oss_etag_and_crc() {
    let oss = Oss::memory().await;
    let key = "big/object.bin";
    let upload_id = oss
        .call("POST", B, Some(key))
        .query("uploads", "")
        .query("encoding-type", "url")
        .header("x-oss-meta-origin", "test")
        .header("content-type", "application/x-test")
        .send()
        .await
        .ok();
    assert_eq!(upload_id.header("content-type"), Some("application/xml"));
    let initiated: xml::InitiateMultipartUploadResult = xml::from_xml(&upload_id.body).unwrap();
    assert_eq!(initiated.key, "big%2Fobject.bin");
    assert_eq!(initiated.encoding_type.as_deref(), Some("url"));
    assert_eq!(initiated.bucket, B);
    let id = initiated.upload_id;
    assert_eq!(id.len(), 32);

    let parts = [data(150_000, 1), data(102_400, 2), data(777, 3)];
    let mut listed = Vec::new();
    let mut expected_crc = 0;
    for (i, part) in parts.iter().enumerate() {
        let n = i as u32 + 1;
        let reply = oss
            .call("PUT", B, Some(key))
            .query("partNumber", &n.to_string())
            .query("uploadId", &id)
            .header("content-md5", &content_md5(part))
            .body(part.clone())
            .send()
            .await
            .ok();
        assert_eq!(reply.header("etag").unwrap(), md5_etag(part));
        assert_eq!(reply.header("content-md5").unwrap(), content_md5(part));
        let crc = crc64::checksum(part);
        assert_eq!(
            reply.header("x-oss-hash-crc64ecma").unwrap(),
            crc.to_string()
        );
        expected_crc = crc64::combine(expected_crc, crc, part.len() as u64);
        listed.push((n, reply.header("etag").unwrap().to_owned()));
    }
    // ListParts, paged by 2.
    let page = oss
        .call("GET", B, Some(key))
        .query("uploadId", &id)
        .query("max-parts", "2")
        .send()
        .await
        .ok();
    let page: ListPartsResult = xml::from_xml(&page.body).unwrap();
    assert!(page.is_truncated);
    assert_eq!(page.next_part_number_marker, 2);
    assert_eq!(page.parts.len(), 2);
    assert_eq!(page.parts[0].size, 150_000);
    assert_eq!(
        page.parts[0].hash_crc64ecma,
        Some(crc64::checksum(&parts[0]))
    );
    assert!(page.parts[0].last_modified.ends_with(".000Z"));
    let page = oss
        .call("GET", B, Some(key))
        .query("uploadId", &id)
        .query("part-number-marker", "2")
        .send()
        .await
        .ok();
    let page: ListPartsResult = xml::from_xml(&page.body).unwrap();
    assert!(!page.is_truncated);
    assert_eq!(page.part_number_marker, 2);
    assert_eq!(page.next_part_number_marker, 3);
    assert_eq!(
        page.parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [3]
    );

    let reply = oss
        .call("POST", B, Some(key))
        .query("uploadId", &id)
        .query("encoding-type", "url")
        .header(
            "content-md5",
            &content_md5(complete_body(&listed).as_bytes()),
        )
        .body(complete_body(&listed))
        .send()
        .await
        .ok();
    assert_eq!(
        reply.header("x-oss-hash-crc64ecma").unwrap(),
        expected_crc.to_string()
    );
    let result: xml::CompleteMultipartUploadResult = xml::from_xml(&reply.body).unwrap();
    assert_eq!(result.key, "big%2Fobject.bin");
    assert_eq!(result.bucket, B);
    assert!(
        result.location.ends_with("/test-bucket/big/object.bin"),
        "{}",
        result.location
    );
    let etag = &result.etag;
    assert!(etag.starts_with('"') && etag.ends_with("-3\""), "{etag}");
    let hex = &etag[1..33];
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));

    let head = oss.call("HEAD", B, Some(key)).send().await.ok();
    assert_eq!(head.header("x-oss-object-type"), Some("Multipart"));
    assert_eq!(head.header("etag"), Some(etag.as_str()));
    assert_eq!(
        head.header("x-oss-hash-crc64ecma").unwrap(),
        expected_crc.to_string()
    );
    assert_eq!(
        head.header("content-md5"),
        None,
        "no Content-MD5 for multipart objects"
    );
    assert_eq!(head.header("x-oss-meta-origin"), Some("test"));
    assert_eq!(head.header("content-type"), Some("application/x-test"));
    assert_eq!(head.header("content-length"), Some("253177"));
    assert_eq!(get(&oss, B, key).await.as_ref(), parts.concat().as_slice());

    // The upload is gone now.
    let reply = oss
        .call("DELETE", B, Some(key))
        .query("uploadId", &id)
        .send()
        .await;
    let error = reply.expect_error(404, "NoSuchUpload");
    assert_eq!(error.field("UploadId"), Some(id.as_str()));
    assert_eq!(error.ec, "0042-00000002");
}

#[tokio::test]
async fn zero_part_completes_make_empty_objects() {
    // Both official v2 SDKs' uploaders finish an empty stream of unknown size this way.
    let oss = Oss::memory().await;
    for complete_all in [false, true] {
        let key = format!("empty-{complete_all}");
        let id = initiate(&oss, B, &key).await;
        let mut call = oss.call("POST", B, Some(&key)).query("uploadId", &id);
        call = if complete_all {
            call.header("x-oss-complete-all", "yes")
        } else {
            call.body("<CompleteMultipartUpload />")
        };
        let reply = call.send().await.ok();
        assert_eq!(reply.header("x-oss-hash-crc64ecma"), Some("0"));
        let head = oss.call("HEAD", B, Some(&key)).send().await.ok();
        assert_eq!(head.header("content-length"), Some("0"));
        assert_eq!(head.header("x-oss-object-type"), Some("Multipart"));
        assert!(get(&oss, B, &key).await.is_empty());
    }
}

#[tokio::test]
async fn get_object_meta_answers_like_a_small_head() {
    let oss = Oss::memory().await;
    let body = data(1234, 5);
    oss.call("PUT", B, Some("m"))
        .header("x-oss-meta-a", "b")
        .body(body.clone())
        .send()
        .await
        .ok();
    let reply = oss
        .call("HEAD", B, Some("m"))
        .query("objectMeta", "")
        .send()
        .await
        .ok();
    assert_common_headers(&reply);
    assert_eq!(reply.header("content-length"), Some("1234"));
    assert_eq!(reply.header("etag").unwrap(), md5_etag(&body));
    assert!(reply.header("last-modified").is_some());
    assert_eq!(
        reply.header("x-oss-hash-crc64ecma").unwrap(),
        crc64::checksum(&body).to_string()
    );
    assert_eq!(
        reply.header("x-oss-meta-a"),
        None,
        "only the basic metadata"
    );
    let reply = oss
        .call("HEAD", B, Some("absent"))
        .query("objectMeta", "")
        .send()
        .await;
    assert!(reply.header("x-oss-err").is_some());
    reply.expect_error(404, "NoSuchKey");
}

#[tokio::test]
async fn complete_all_uses_every_part_and_refuses_a_body() {
    let oss = Oss::memory().await;
    let id = initiate(&oss, B, "all").await;
    let p1 = data(102_400, 1);
    let p2 = data(10, 2);
    // Uploaded out of order; part 1 re-uploaded (the new bytes replace the old).
    upload_part(&oss, B, "all", &id, 2, &p2).await;
    upload_part(&oss, B, "all", &id, 1, &data(200_000, 9)).await;
    upload_part(&oss, B, "all", &id, 1, &p1).await;
    let reply = oss
        .call("POST", B, Some("all"))
        .query("uploadId", &id)
        .header("x-oss-complete-all", "yes")
        .body(complete_body(&[(1, md5_etag(&p1))]))
        .send()
        .await;
    let error = reply.expect_error(400, "InvalidArgument");
    assert_eq!(
        error.message,
        "Should not speficy both complete all header and http body."
    );
    assert_eq!(error.ec, "0042-00000216");
    let reply = oss
        .call("POST", B, Some("all"))
        .query("uploadId", &id)
        .header("x-oss-complete-all", "yes")
        .send()
        .await
        .ok();
    let result: xml::CompleteMultipartUploadResult = xml::from_xml(&reply.body).unwrap();
    assert!(result.etag.ends_with("-2\""));
    assert_eq!(
        get(&oss, B, "all").await.as_ref(),
        [p1, p2].concat().as_slice()
    );
}

#[tokio::test]
async fn upload_part_errors() {
    let oss = Oss::memory().await;
    let id = initiate(&oss, B, "k").await;
    for raw in ["0", "10001", "STR", "-3"] {
        let reply = oss
            .call("PUT", B, Some("k"))
            .query("partNumber", raw)
            .query("uploadId", &id)
            .body("x")
            .send()
            .await;
        let error = reply.expect_error(400, "InvalidArgument");
        assert_eq!(
            error.message,
            "Part number must be an integer between 1 and 10000, inclusive."
        );
        assert_eq!(error.field("ArgumentName"), Some("PartNumber"));
        assert_eq!(error.field("ArgumentValue"), Some(raw));
        assert_eq!(error.ec, "0017-00000220");
    }
    for edge in ["1", "10000"] {
        oss.call("PUT", B, Some("k"))
            .query("partNumber", edge)
            .query("uploadId", &id)
            .body("x")
            .send()
            .await
            .ok();
    }
    let reply = oss
        .call("PUT", B, Some("k"))
        .query("uploadId", &id)
        .body("x")
        .send()
        .await;
    let error = reply.expect_error(400, "InvalidArgument");
    assert_eq!(error.message, "Unexpected query string parameter");
    assert_eq!(error.field("ArgumentName"), Some("ResourceType"));
    assert_eq!(error.field("ArgumentValue"), Some("partNumber"));
    assert_eq!(error.ec, "0017-00000219");

    let reply = oss
        .call("PUT", B, Some("k"))
        .query("partNumber", "1")
        .query("uploadId", "00358B75E5C546AF822369CE04A48A14")
        .body(data(300_000, 1))
        .send()
        .await;
    let error = reply.expect_error(404, "NoSuchUpload");
    assert_eq!(
        error.message,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may \
         have been aborted or completed."
    );
    assert_eq!(
        error.field("UploadId"),
        Some("00358B75E5C546AF822369CE04A48A14")
    );
    assert_eq!(error.ec, "0017-00000244");
    // The upload id of another key is not this key's.
    let reply = oss
        .call("PUT", B, Some("other"))
        .query("partNumber", "1")
        .query("uploadId", &id)
        .body("x")
        .send()
        .await;
    reply.expect_error(404, "NoSuchUpload");

    // Content-MD5: malformed and mismatched.
    let reply = oss
        .call("PUT", B, Some("k"))
        .query("partNumber", "2")
        .query("uploadId", &id)
        .header("content-md5", "bm90LWFuLW1kNQ==")
        .body("x")
        .send()
        .await;
    let error = reply.expect_error(400, "InvalidDigest");
    assert_eq!(error.message, "The Content-MD5 you specified was invalid.");
    assert_eq!(error.field("Content-MD5"), Some("bm90LWFuLW1kNQ=="));
    assert_eq!(error.ec, "0017-00000502");
    let reply = oss
        .call("PUT", B, Some("k"))
        .query("partNumber", "2")
        .query("uploadId", &id)
        .header("content-md5", &content_md5(b"y"))
        .body("x")
        .send()
        .await;
    let error = reply.expect_error(400, "InvalidDigest");
    assert_eq!(error.ec, "0017-00000503");
    // The refused part was not stored.
    let parts = oss
        .call("GET", B, Some("k"))
        .query("uploadId", &id)
        .send()
        .await
        .ok();
    let parts: ListPartsResult = xml::from_xml(&parts.body).unwrap();
    assert_eq!(
        parts
            .parts
            .iter()
            .map(|p| p.part_number)
            .collect::<Vec<_>>(),
        [1, 10000]
    );
}

#[tokio::test]
async fn complete_errors_in_order() {
    let oss = Oss::memory().await;
    let id = initiate(&oss, B, "k").await;
    let small = data(1000, 1);
    let big = data(102_400, 2);
    let e_small = upload_part(&oss, B, "k", &id, 1, &small).await;
    let e_big = upload_part(&oss, B, "k", &id, 2, &big).await;

    let reply = complete(
        &oss,
        B,
        "k",
        &id,
        &[(2, e_big.clone()), (1, e_small.clone())],
    )
    .await;
    let error = reply.expect_error(400, "InvalidPartOrder");
    assert_eq!(
        error.message,
        "The list of parts was not in ascending order."
    );
    assert_eq!(error.ec, "0042-00000209");
    let reply = complete(
        &oss,
        B,
        "k",
        &id,
        &[(1, e_small.clone()), (1, e_small.clone())],
    )
    .await;
    reply.expect_error(400, "InvalidPartOrder");
    let reply = complete(&oss, B, "k", &id, &[(10001, e_small.clone())]).await;
    let error = reply.expect_error(400, "InvalidPartOrder");
    assert_eq!(
        error.message,
        "Part number must be an integer between 1 and 10000, inclusive."
    );

    let reply = complete(
        &oss,
        B,
        "k",
        &id,
        &[(1, e_small.clone()), (3, e_big.clone())],
    )
    .await;
    let error = reply.expect_error(400, "InvalidPart");
    assert_eq!(
        error.message,
        "One or more of the specified parts could not be found or the specified entity tag \
         might not have matched the part's entity tag."
    );
    assert_eq!(error.field("PartNumber"), Some("3"));
    assert_eq!(error.field("ETag"), Some(e_big.as_str()));
    assert_eq!(error.field("UploadId"), Some(id.as_str()));
    let reply = complete(&oss, B, "k", &id, &[(1, "undefined".into())]).await;
    assert_eq!(
        reply.expect_error(400, "InvalidPart").field("ETag"),
        Some("undefined")
    );

    let reply = complete(
        &oss,
        B,
        "k",
        &id,
        &[(1, e_small.clone()), (2, e_big.clone())],
    )
    .await;
    let error = reply.expect_error(400, "EntityTooSmall");
    assert_eq!(
        error.message,
        "Your proposed upload smaller than the minimum allowed size."
    );
    assert_eq!(error.ec, "0042-00000213");

    for body in ["", "<CompleteMultipartUpload>", "<Other/>", "not xml"] {
        let reply = oss
            .call("POST", B, Some("k"))
            .query("uploadId", &id)
            .body(body)
            .send()
            .await;
        let error = reply.expect_error(400, "MalformedXML");
        assert_eq!(error.ec, "0042-00000205", "{body:?}");
    }
    let body = complete_body(&[(2, e_big.clone())]);
    let reply = oss
        .call("POST", B, Some("k"))
        .query("uploadId", &id)
        .header("content-md5", &content_md5(b"other"))
        .body(body)
        .send()
        .await;
    reply.expect_error(400, "InvalidDigest");

    // forbid-overwrite at Complete time.
    oss.call("PUT", B, Some("k"))
        .body("existing")
        .send()
        .await
        .ok();
    let reply = oss
        .call("POST", B, Some("k"))
        .query("uploadId", &id)
        .header("x-oss-forbid-overwrite", "true")
        .body(complete_body(&[(1, e_small.clone())]))
        .send()
        .await;
    let error = reply.expect_error(409, "FileAlreadyExists");
    assert_eq!(
        error.message,
        "The object you specified already exists and can not be overwritten."
    );
    assert_eq!(error.ec, "0042-00000214");
    // A single small part is fine (it is the last), and unlisted part 2 is dropped.
    complete(&oss, B, "k", &id, &[(1, e_small.clone())])
        .await
        .ok();
    assert_eq!(get(&oss, B, "k").await.as_ref(), small.as_slice());
    let reply = complete(&oss, B, "k", &id, &[(1, e_small)]).await;
    reply.expect_error(404, "NoSuchUpload");
    let reply = oss
        .call("GET", B, Some("k"))
        .query("uploadId", &id)
        .send()
        .await;
    reply.expect_error(404, "NoSuchUpload");
}

#[tokio::test]
async fn put_object_errors() {
    let oss = Oss::memory().await;
    oss.call("PUT", B, Some("k")).body("v1").send().await.ok();
    let reply = oss
        .call("PUT", B, Some("k"))
        .header("x-oss-forbid-overwrite", "true")
        .body("v2")
        .send()
        .await;
    let error = reply.expect_error(409, "FileAlreadyExists");
    assert_eq!(error.ec, "0026-00000002");
    oss.call("PUT", B, Some("k"))
        .header("x-oss-forbid-overwrite", "false")
        .body("v3")
        .send()
        .await
        .ok();
    assert_eq!(get(&oss, B, "k").await.as_ref(), b"v3");
    let reply = oss
        .call("PUT", B, Some("k"))
        .header("x-oss-forbid-overwrite", "maybe")
        .body("v4")
        .send()
        .await;
    assert_eq!(
        reply.expect_error(400, "InvalidArgument").ec,
        "0017-00000279"
    );
    let reply = oss
        .call("POST", B, Some("k"))
        .query("uploads", "")
        .header("x-oss-forbid-overwrite", "true")
        .send()
        .await;
    reply.expect_error(409, "FileAlreadyExists");
    let reply = oss
        .call("PUT", B, Some("k"))
        .header("content-md5", &content_md5(b"no"))
        .body("v5")
        .send()
        .await;
    reply.expect_error(400, "InvalidDigest");
    assert_eq!(
        get(&oss, B, "k").await.as_ref(),
        b"v3",
        "a refused Put changes nothing"
    );
    let reply = oss
        .call("PUT", B, Some("k"))
        .header("x-oss-storage-class", "Cheap")
        .body("v")
        .send()
        .await;
    reply.expect_error(400, "InvalidArgument");
    let reply = oss
        .call("PUT", B, Some("k"))
        .header("x-oss-server-side-encryption", "ROT13")
        .body("v")
        .send()
        .await;
    reply.expect_error(400, "InvalidEncryptionAlgorithmError");
    let reply = oss
        .call("POST", B, Some("k"))
        .query("uploads", "")
        .query("encoding-type", "base64x")
        .send()
        .await;
    let error = reply.expect_error(400, "InvalidArgument");
    assert_eq!(
        error.message,
        "Invalid Encoding Method specified in Request"
    );
    assert_eq!(error.ec, "0017-00000235");
}

#[tokio::test]
async fn length_and_name_errors() {
    let oss = Oss::memory().await;
    // No Content-Length and not chunked.
    let mut call = oss.call("PUT", B, Some("nolen"));
    call.body = bytes::Bytes::new();
    let headers = call.signed_headers();
    let mut request = format!(
        "PUT /{B}/nolen HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n",
        oss.addr()
    );
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    request.push_str("\r\n");
    let reply = raw(oss.addr(), request.as_bytes()).await;
    let error = reply.expect_error(411, "MissingContentLength");
    assert_eq!(
        error.message,
        "You must provide the Content-Length HTTP header."
    );
    // Chunked is fine.
    let mut request = format!("PUT /{B}/nolen HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ntransfer-encoding: chunked\r\n", oss.addr());
    for (name, value) in &headers {
        request.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
    }
    request.push_str("\r\n5\r\nhello\r\n0\r\n\r\n");
    raw(oss.addr(), request.as_bytes()).await.ok();
    assert_eq!(get(&oss, B, "nolen").await.as_ref(), b"hello");

    // Over 5 GB, refused from the declared length before any byte.
    let reply = oss
        .call("PUT", B, Some("huge"))
        .header("content-length", "5368709121")
        .send_raw(&format!("/{B}/huge"))
        .await;
    reply.expect_error(400, "InlineDataTooLarge");
    let id = initiate(&oss, B, "huge").await;
    let reply = oss
        .call("PUT", B, Some("huge"))
        .query("partNumber", "1")
        .query("uploadId", &id)
        .header("content-length", "5368709121")
        .send_raw(&format!("/{B}/huge?partNumber=1&uploadId={id}"))
        .await;
    reply.expect_error(400, "EntityTooLarge");

    let long = "k".repeat(1024);
    let reply = oss.call("PUT", B, Some(&long)).body("x").send().await;
    let error = reply.expect_error(400, "InvalidObjectName");
    assert_eq!(
        error.message,
        "The Length of Object name must be less than 1024"
    );
    let ok = "k".repeat(1023);
    oss.call("PUT", B, Some(&ok)).body("x").send().await.ok();
    let reply = oss.call("PUT", B, Some("\\lead")).body("x").send().await;
    reply.expect_error(400, "InvalidObjectName");
    for bucket in ["Upper", "ab", "-lead", "trail-", "under_score"] {
        let reply = oss.call("PUT", bucket, Some("k")).body("x").send().await;
        let error = reply.expect_error(400, "InvalidBucketName");
        assert_eq!(error.ec, "0015-00000001", "{bucket}");
    }
}

#[tokio::test]
async fn listings_page_and_encode() {
    let oss = Oss::memory().await;
    for key in ["a/1", "a/2", "b", "c d/x", "c+e"] {
        oss.call("PUT", B, Some(key))
            .body(key.to_owned())
            .send()
            .await
            .ok();
    }
    let list = |extra: &'static [(&'static str, &'static str)]| {
        let mut call = oss.call("GET", B, None).query("list-type", "2");
        for (n, v) in extra {
            call = call.query(n, v);
        }
        call.send()
    };
    let reply = list(&[("delimiter", "/"), ("max-keys", "2")]).await.ok();
    let page: ListBucketResult = xml::from_xml(&reply.body).unwrap();
    assert!(page.is_truncated);
    assert_eq!(page.common_prefixes[0].prefix, "a/");
    assert_eq!(page.contents[0].key, "b");
    assert_eq!(page.key_count, 2);
    assert_eq!(page.contents[0].object_type, "Normal");
    assert_eq!(page.contents[0].storage_class, "Standard");
    assert!(page.contents[0].last_modified.ends_with(".000Z"));
    let token = page.next_continuation_token.unwrap();
    let reply = oss
        .call("GET", B, None)
        .query("list-type", "2")
        .query("delimiter", "/")
        .query("continuation-token", &token)
        .query("encoding-type", "url")
        .send()
        .await
        .ok();
    let page: ListBucketResult = xml::from_xml(&reply.body).unwrap();
    assert!(!page.is_truncated);
    assert_eq!(page.encoding_type.as_deref(), Some("url"));
    assert_eq!(page.common_prefixes[0].prefix, "c%20d%2F");
    assert_eq!(page.contents[0].key, "c%2Be");
    assert_eq!(page.delimiter, "%2F");

    // ListMultipartUploads.
    let mut ids = Vec::new();
    for key in ["u/1", "u/1", "u/2", "v"] {
        ids.push((key, initiate(&oss, B, key).await));
    }
    let reply = oss
        .call("GET", B, None)
        .query("uploads", "")
        .query("max-uploads", "2")
        .send()
        .await
        .ok();
    let page: ListMultipartUploadsResult = xml::from_xml(&reply.body).unwrap();
    assert!(page.is_truncated);
    assert_eq!(page.uploads.len(), 2);
    assert!(page
        .uploads
        .iter()
        .all(|u| u.key == "u/1" && u.initiated.ends_with(".000Z")));
    let reply = oss
        .call("GET", B, None)
        .query("uploads", "")
        .query("key-marker", &page.next_key_marker)
        .query("upload-id-marker", &page.next_upload_id_marker)
        .query("delimiter", "/")
        .query("encoding-type", "url")
        .send()
        .await
        .ok();
    let page: ListMultipartUploadsResult = xml::from_xml(&reply.body).unwrap();
    assert!(!page.is_truncated);
    assert_eq!(
        page.common_prefixes.len(),
        1,
        "u/2 rolls up into u/ ... {page:?}"
    );
    assert_eq!(page.common_prefixes[0].prefix, "u%2F");
    assert_eq!(page.key_marker, "u%2F1");
    assert_eq!(
        page.uploads
            .iter()
            .map(|u| u.key.as_str())
            .collect::<Vec<_>>(),
        ["v"]
    );
    let reply = oss
        .call("GET", B, None)
        .query("uploads", "")
        .query("prefix", "u/2")
        .send()
        .await
        .ok();
    let page: ListMultipartUploadsResult = xml::from_xml(&reply.body).unwrap();
    assert_eq!(page.uploads.len(), 1);
    assert_eq!(page.prefix, "u/2");
    assert_eq!(page.uploads[0].upload_id, ids[2].1);
    let reply = oss
        .call("GET", B, None)
        .query("uploads", "")
        .query("max-uploads", "x")
        .send()
        .await;
    reply.expect_error(400, "InvalidArgument");
}

#[tokio::test]
async fn buckets_put_auto_create_and_no_such_bucket() {
    let oss = Oss::start(
        LocalServer::builder()
            .auto_create_buckets(false)
            .bucket("given"),
    )
    .await;
    oss.call("PUT", "given", Some("k"))
        .body("x")
        .send()
        .await
        .ok();
    let reply = oss.call("PUT", "absent", Some("k")).body("x").send().await;
    let error = reply.expect_error(404, "NoSuchBucket");
    assert_eq!(error.field("BucketName"), Some("absent"));
    assert_eq!(error.ec, "0015-00000101");
    let reply = oss.call("PUT", "absent", None).send().await.ok();
    assert_eq!(reply.header("location"), Some("/absent"));
    oss.call("PUT", "absent", Some("k"))
        .body("x")
        .send()
        .await
        .ok();

    let auto = Oss::memory().await;
    auto.call("GET", "fresh-bucket", Some("k"))
        .send()
        .await
        .expect_error(404, "NoSuchKey");
}

#[tokio::test]
async fn virtual_hosted_addressing() {
    let oss = Oss::memory().await;
    oss.call("PUT", "vbucket", Some("dir/k"))
        .body("virtual")
        .send()
        .await
        .ok();
    // ali-oss style: IP endpoint, Host header naming the bucket.
    let call = oss.call("GET", "vbucket", Some("dir/k"));
    let headers = call.signed_headers();
    let reply = oss
        .client
        .get(format!("http://{}/dir/k", oss.addr()))
        .headers(headers)
        .header("host", "vbucket.oss-cn-hangzhou.aliyuncs.com")
        .send()
        .await
        .unwrap();
    let reply = Reply::from_reqwest(reply).await.ok();
    assert_eq!(reply.text(), "virtual");
}

#[tokio::test]
async fn opaque_etags_skip_md5_but_still_verify_content_md5() {
    let oss = Oss::start(LocalServer::builder().etag_mode(EtagMode::Opaque)).await;
    let body = data(5000, 4);
    let reply = oss
        .call("PUT", B, Some("o"))
        .body(body.clone())
        .send()
        .await
        .ok();
    let etag = reply.header("etag").unwrap().to_owned();
    assert_eq!(etag.len(), 34);
    assert_ne!(etag, md5_etag(&body));
    assert!(reply.header("content-md5").is_none());
    assert_eq!(
        reply.header("x-oss-hash-crc64ecma").unwrap(),
        crc64::checksum(&body).to_string()
    );
    let reply = oss
        .call("PUT", B, Some("o"))
        .header("content-md5", &content_md5(b"x"))
        .body(body.clone())
        .send()
        .await;
    reply.expect_error(400, "InvalidDigest");
    let id = initiate(&oss, B, "m").await;
    let e1 = upload_part(&oss, B, "m", &id, 1, &body).await;
    complete(&oss, B, "m", &id, &[(1, e1)]).await.ok();
    assert_eq!(get(&oss, B, "m").await.as_ref(), body.as_slice());
}

#[tokio::test]
async fn unsupported_requests_say_so() {
    let oss = Oss::memory().await;
    oss.call("GET", B, Some("k"))
        .query("acl", "")
        .send()
        .await
        .expect_error(501, "NotImplemented");
    oss.call("GET", B, None)
        .send()
        .await
        .expect_error(501, "NotImplemented");
    oss.call("PUT", B, Some("k"))
        .header("x-oss-copy-source", "/b/x")
        .send()
        .await
        .expect_error(501, "NotImplemented");
}
