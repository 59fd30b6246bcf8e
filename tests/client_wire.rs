//! The OSS client on the wire: every operation against a loopback server that records exactly
//! what arrives (method, raw path, raw query, headers, body), with each Authorization header
//! recomputed from what arrived, and the retry, CRC-64 and idle-timeout behaviour.

#[path = "common/recorder.rs"]
mod recorder;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use osspipe::client::{guess_content_type, Bucket, Client};
use osspipe::config::ClientBuilder;
use osspipe::credentials::CredentialsProvider;
use osspipe::retry::RetryPolicy;
use osspipe::sign::{self, SignableRequest, SignatureVersion, SigningParams};
use osspipe::target::{MultipartTarget, ObjectOptions, PartReceipt};
use osspipe::{crc64, xml, Credentials, ErrorKind, Operation};
use recorder::{Recorded, Recorder, Reply};

const REGION: &str = "cn-hangzhou";
const BUCKET: &str = "examplebucket";
const UPLOAD_ID: &str = "0004B9894A22E5B1888A1E29F8236E2D";

fn credentials() -> Credentials {
    Credentials::new("LTAI-test-id", "test-secret")
}

fn builder(server: &Recorder) -> ClientBuilder {
    Client::builder()
        .with_endpoint(server.endpoint())
        .with_region(REGION)
        .with_credentials(credentials())
        .with_idle_timeout(Duration::from_secs(10))
        .with_retry_policy(
            RetryPolicy::new()
                .with_base_delay(Duration::from_millis(1))
                .with_seed(7),
        )
}

fn client(server: &Recorder) -> Client {
    builder(server).build().unwrap()
}

/// Recomputes the request's signature from what arrived on the wire (the path decoded once,
/// the query decoded, the headers as received, the time from `x-oss-date` or `Date`) and
/// checks it equals the `Authorization` header.
fn verify_signature(request: &Recorded, credentials: &Credentials, version: SignatureVersion) {
    let path = request.decoded_path();
    let rest = path
        .strip_prefix(&format!("/{BUCKET}"))
        .unwrap_or_else(|| panic!("not a path-style request for {BUCKET}: {path}"));
    let key = match rest {
        "" | "/" => None,
        rest => Some(&rest[1..]),
    };
    let now = match version {
        SignatureVersion::V4 => {
            sign::parse_iso8601_basic(request.header("x-oss-date").expect("x-oss-date"))
        }
        SignatureVersion::V1 => sign::parse_rfc1123(request.header("date").expect("date")),
    }
    .expect("a parsable signing time");
    let mut headers = request.headers.clone();
    let params = SigningParams::new(version, credentials, REGION, now);
    sign::sign_headers(
        &params,
        &request.method,
        Some(BUCKET),
        key,
        &request.query,
        &mut headers,
    )
    .unwrap();
    assert_eq!(
        headers.get("authorization"),
        request.headers.get("authorization"),
        "signature of {} {}",
        request.method,
        request.target
    );
}

/// The V4 headers every signed request carries.
fn assert_v4_headers(request: &Recorded) {
    let authorization = request.header("authorization").expect("authorization");
    let date8 = &request.header("x-oss-date").expect("x-oss-date")[..8];
    assert!(
        authorization.starts_with(&format!(
            "OSS4-HMAC-SHA256 Credential=LTAI-test-id/{date8}/{REGION}/oss/aliyun_v4_request,"
        )),
        "{authorization}"
    );
    assert_eq!(
        request.header("x-oss-content-sha256"),
        Some("UNSIGNED-PAYLOAD")
    );
    assert!(request.header("date").is_some());
    assert!(request
        .header("user-agent")
        .is_some_and(|ua| ua.starts_with("osspipe/")));
}

fn crc_header(body: &[u8]) -> String {
    crc64::checksum(body).to_string()
}

fn etag_of(body: &[u8]) -> String {
    format!("\"{:032X}\"", crc64::checksum(body) as u128)
}

#[tokio::test]
async fn put_object_sends_the_options_and_checks_the_crc() {
    let server = Recorder::start(|request, _| {
        Reply::ok()
            .header("etag", "\"4B4114A18BBF2A4C5446F9AFCCF9923F\"")
            .header("x-oss-hash-crc64ecma", crc_header(&request.body))
    })
    .await;
    let client = client(&server);
    let mut options = ObjectOptions::default();
    options.metadata = vec![("Author".into(), "alice".into())];
    options.storage_class = Some("Standard".into());
    options.tagging = Some("team=storage&env=test".into());
    options.forbid_overwrite = true;
    options.acl = Some("private".into());
    options.cache_control = Some("no-cache".into());
    options.content_md5 = true;
    let receipt = client
        .put_object(
            BUCKET,
            "docs/hello world.txt",
            Bytes::from_static(b"hello oss\n"),
            &options,
        )
        .await
        .unwrap();
    assert_eq!(receipt.etag, "\"4B4114A18BBF2A4C5446F9AFCCF9923F\"");
    assert_eq!(receipt.crc64, Some(17223430255209957478));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let put = &requests[0];
    assert_eq!(put.method, "PUT");
    assert_eq!(put.target, "/examplebucket/docs/hello%20world.txt");
    assert_eq!(&put.body[..], b"hello oss\n");
    assert_eq!(put.header("content-length"), Some("10"));
    assert_eq!(put.header("content-type"), Some("text/plain"));
    assert_eq!(put.header("content-md5"), Some("S0EUoYu/KkxURvmvzPmSPw=="));
    assert_eq!(put.header("cache-control"), Some("no-cache"));
    assert_eq!(put.header("x-oss-meta-author"), Some("alice"));
    assert_eq!(put.header("x-oss-storage-class"), Some("Standard"));
    assert_eq!(put.header("x-oss-tagging"), Some("team=storage&env=test"));
    assert_eq!(put.header("x-oss-forbid-overwrite"), Some("true"));
    assert_eq!(put.header("x-oss-object-acl"), Some("private"));
    assert_v4_headers(put);
    verify_signature(put, &credentials(), SignatureVersion::V4);
    server.shutdown();
}

/// A small scripted OSS for the multipart calls: it answers by method and sub-resource.
fn multipart_script(request: &Recorded, _: usize) -> Reply {
    let has = |name: &str| request.query.iter().any(|(n, _)| n == name);
    match request.method.as_str() {
        "POST" if has("uploads") => Reply::ok().xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult>\n  \
             <Bucket>{BUCKET}</Bucket>\n  <Key>backups%2Fa%2Bb%3Dc.tar.gz</Key>\n  \
             <UploadId>{UPLOAD_ID}</UploadId>\n  <EncodingType>url</EncodingType>\n\
             </InitiateMultipartUploadResult>"
        )),
        "PUT" if has("partNumber") => Reply::ok()
            .header("etag", etag_of(&request.body))
            .header("x-oss-hash-crc64ecma", crc_header(&request.body)),
        "POST" if has("uploadId") => {
            // The object's CRC is the fold of the listed parts' CRCs (§9.3); this script
            // knows the two part bodies of the test.
            let object = [&b"first part "[..], &b"second"[..]].concat();
            Reply::ok()
                .header("x-oss-hash-crc64ecma", crc_header(&object))
                .xml(format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                     <CompleteMultipartUploadResult>\n  <EncodingType>url</EncodingType>\n  \
                     <Location>http://127.0.0.1/{BUCKET}/k</Location>\n  <Bucket>{BUCKET}</Bucket>\n  \
                     <Key>backups%2Fa%2Bb%3Dc.tar.gz</Key>\n  \
                     <ETag>\"B864DB6A936D376F9F8D3ED3BBE540DD-2\"</ETag>\n\
                     </CompleteMultipartUploadResult>"
                ))
        }
        "GET" if has("uploadId") => {
            // Two pages: part 1, then part 2.
            let marker = request.query_value("part-number-marker").unwrap_or("0");
            let (number, body, truncated) = if marker == "0" {
                (1, &b"first part "[..], true)
            } else {
                (2, &b"second"[..], false)
            };
            Reply::ok().xml(format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListPartsResult>\n  \
                 <EncodingType>url</EncodingType>\n  <Bucket>{BUCKET}</Bucket>\n  \
                 <Key>backups%2Fa%2Bb%3Dc.tar.gz</Key>\n  <UploadId>{UPLOAD_ID}</UploadId>\n  \
                 <PartNumberMarker>{marker}</PartNumberMarker>\n  \
                 <NextPartNumberMarker>{number}</NextPartNumberMarker>\n  \
                 <MaxParts>1000</MaxParts>\n  <IsTruncated>{truncated}</IsTruncated>\n  <Part>\n    \
                 <PartNumber>{number}</PartNumber>\n    \
                 <LastModified>2025-01-15T08:29:00.000Z</LastModified>\n    \
                 <ETag>{}</ETag>\n    <HashCrc64ecma>{}</HashCrc64ecma>\n    <Size>{}</Size>\n  \
                 </Part>\n</ListPartsResult>",
                etag_of(body),
                crc64::checksum(body),
                body.len()
            ))
        }
        "DELETE" if has("uploadId") => Reply::status(204),
        _ => Reply::error(
            400,
            "Unexpected",
            "the test script does not know this request",
        ),
    }
}

#[tokio::test]
async fn multipart_upload_through_the_bucket_handle() {
    let server = Recorder::start(multipart_script).await;
    let bucket: Bucket = client(&server).bucket(BUCKET);
    assert_eq!(MultipartTarget::bucket(&bucket), Some(BUCKET));
    let key = "backups/a+b=c.tar.gz";
    let mut options = ObjectOptions::default();
    options.forbid_overwrite = true;
    options.acl = Some("private".into());
    options.metadata = vec![("project".into(), "osspipe".into())];
    options.server_side_encryption = Some("AES256".into());

    let upload_id = bucket.initiate(key, &options).await.unwrap();
    assert_eq!(upload_id, UPLOAD_ID);
    let first = bucket
        .upload_part(key, &upload_id, 1, Bytes::from_static(b"first part "))
        .await
        .unwrap();
    let second_body = Bytes::from_static(b"second");
    let second = bucket
        .upload_part_with_crc(
            key,
            &upload_id,
            2,
            second_body.clone(),
            crc64::checksum(&second_body),
        )
        .await
        .unwrap();
    assert_eq!(first.etag, etag_of(b"first part "));
    assert_eq!(first.crc64, crc64::checksum(b"first part "));
    assert_eq!((first.size, second.size), (11, 6));

    let listed = bucket.list_parts(key, &upload_id).await.unwrap();
    assert_eq!(listed, vec![first.clone(), second.clone()]);

    // Given out of order, the parts are sent sorted.
    let receipt = bucket
        .complete(key, &upload_id, &[second.clone(), first.clone()], &options)
        .await
        .unwrap();
    assert_eq!(receipt.etag, "\"B864DB6A936D376F9F8D3ED3BBE540DD-2\"");
    assert_eq!(receipt.crc64, Some(crc64::checksum(b"first part second")));
    bucket.abort(key, &upload_id).await.unwrap();

    let requests = server.requests();
    let wire_key = "/examplebucket/backups/a%2Bb%3Dc.tar.gz";
    let methods_and_targets: Vec<(String, String)> = requests
        .iter()
        .map(|r| (r.method.clone(), r.target.clone()))
        .collect();
    assert_eq!(
        methods_and_targets,
        vec![
            (
                "POST".into(),
                format!("{wire_key}?uploads&encoding-type=url")
            ),
            (
                "PUT".into(),
                format!("{wire_key}?partNumber=1&uploadId={UPLOAD_ID}")
            ),
            (
                "PUT".into(),
                format!("{wire_key}?partNumber=2&uploadId={UPLOAD_ID}")
            ),
            (
                "GET".into(),
                format!("{wire_key}?uploadId={UPLOAD_ID}&max-parts=1000&encoding-type=url")
            ),
            (
                "GET".into(),
                format!(
                    "{wire_key}?uploadId={UPLOAD_ID}&max-parts=1000&encoding-type=url\
                     &part-number-marker=1"
                )
            ),
            (
                "POST".into(),
                format!("{wire_key}?uploadId={UPLOAD_ID}&encoding-type=url")
            ),
            ("DELETE".into(), format!("{wire_key}?uploadId={UPLOAD_ID}")),
        ]
    );
    for request in &requests {
        assert_v4_headers(request);
        verify_signature(request, &credentials(), SignatureVersion::V4);
    }

    let initiate = &requests[0];
    assert_eq!(initiate.header("content-length"), Some("0"));
    assert_eq!(
        initiate.header("content-type"),
        Some(guess_content_type(key).as_str())
    );
    assert_eq!(initiate.header("x-oss-forbid-overwrite"), Some("true"));
    assert_eq!(initiate.header("x-oss-meta-project"), Some("osspipe"));
    assert_eq!(
        initiate.header("x-oss-server-side-encryption"),
        Some("AES256")
    );
    assert_eq!(
        initiate.header("x-oss-object-acl"),
        None,
        "ACL goes on Complete"
    );

    let part = &requests[1];
    assert_eq!(&part.body[..], b"first part ");
    assert_eq!(part.header("content-length"), Some("11"));
    assert_eq!(part.header("x-oss-server-side-encryption"), None);
    assert_eq!(part.header("x-oss-forbid-overwrite"), None);

    let complete = &requests[5];
    let body: xml::CompleteMultipartUpload = xml::from_xml(&complete.body).unwrap();
    assert_eq!(
        body.parts
            .iter()
            .map(|p| (p.part_number, p.etag.clone()))
            .collect::<Vec<_>>(),
        vec![(1, first.etag.clone()), (2, second.etag.clone())]
    );
    let md5 = {
        use base64::Engine as _;
        use md5::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&complete.body))
    };
    assert_eq!(complete.header("content-md5"), Some(md5.as_str()));
    assert_eq!(complete.header("x-oss-forbid-overwrite"), Some("true"));
    assert_eq!(complete.header("x-oss-object-acl"), Some("private"));
    assert_eq!(complete.header("x-oss-complete-all"), None);
    assert_eq!(complete.header("x-oss-meta-project"), None);
    server.shutdown();
}

#[tokio::test]
async fn complete_all_sends_no_body_and_a_wrong_object_crc_is_caught() {
    let server = Recorder::start(|request, _| {
        Reply::ok()
            .header(
                "x-oss-hash-crc64ecma",
                if request.body.is_empty() { "1" } else { "2" },
            )
            .xml(
                "<CompleteMultipartUploadResult><Bucket>examplebucket</Bucket><Key>k</Key>\
                 <ETag>\"E-1\"</ETag></CompleteMultipartUploadResult>",
            )
    })
    .await;
    let client = client(&server);
    let receipt = client
        .complete_multipart_upload_all(BUCKET, "k", UPLOAD_ID, &ObjectOptions::default())
        .await
        .unwrap();
    assert_eq!(receipt.etag, "\"E-1\"");
    let part = PartReceipt {
        part_number: 1,
        etag: "\"E\"".into(),
        crc64: 5,
        size: 1,
    };
    let error = client
        .complete_multipart_upload(BUCKET, "k", UPLOAD_ID, &[part], &ObjectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CrcMismatch);
    assert_eq!(error.operation(), Some(Operation::CompleteMultipartUpload));
    assert_eq!(error.upload_id(), Some(UPLOAD_ID));

    let requests = server.requests();
    // The CRC mismatch after Complete is not retried: the upload is gone once it succeeded.
    assert_eq!(requests.len(), 2);
    let all = &requests[0];
    assert_eq!(all.method, "POST");
    assert_eq!(
        all.target,
        format!("/examplebucket/k?uploadId={UPLOAD_ID}&encoding-type=url")
    );
    assert_eq!(all.header("x-oss-complete-all"), Some("yes"));
    assert_eq!(all.header("content-length"), Some("0"));
    assert!(all.body.is_empty());
    verify_signature(all, &credentials(), SignatureVersion::V4);

    // Nothing is sent for an empty or duplicated part list.
    for parts in [vec![], vec![requests_part(1), requests_part(1)]] {
        let error = client
            .complete_multipart_upload(BUCKET, "k", UPLOAD_ID, &parts, &ObjectOptions::default())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
    }
    assert_eq!(server.requests().len(), 2);
    server.shutdown();
}

fn requests_part(number: u32) -> PartReceipt {
    PartReceipt {
        part_number: number,
        etag: "\"E\"".into(),
        crc64: 0,
        size: 0,
    }
}

#[tokio::test]
async fn head_get_and_delete() {
    let object = b"0123456789".to_vec();
    let whole_crc = crc_header(&object);
    let not_found = xml::encode_oss_err(&xml::ServiceError {
        status: 404,
        code: "NoSuchKey".into(),
        message: "The specified key does not exist.".into(),
        request_id: "6556E3AED11E553933CCDEDF".into(),
        ec: "0026-00000001".into(),
        fields: vec![("Key".into(), "missing".into())],
        ..xml::ServiceError::default()
    });
    let server = Recorder::start(move |request, _| {
        let path = request.decoded_path();
        match (request.method.as_str(), path.as_str()) {
            ("HEAD", "/examplebucket/missing") => Reply::status(404)
                .header("x-oss-err", not_found.clone())
                .header("x-oss-ec", "0026-00000001")
                .header("x-oss-request-id", "6556E3AED11E553933CCDEDF"),
            ("HEAD", _) => Reply::ok()
                .header("etag", "\"E-2\"")
                .header("x-oss-hash-crc64ecma", whole_crc.clone())
                .header("x-oss-object-type", "Multipart")
                .header("x-oss-meta-project", "osspipe")
                .header("content-type", "text/plain")
                .body(object.clone()),
            ("GET", "/examplebucket/bad-crc") => Reply::ok()
                .header("x-oss-hash-crc64ecma", "1")
                .body(object.clone()),
            ("GET", _) => match request.header("range") {
                Some("bytes=5-9") => Reply::status(206)
                    .header("content-range", "bytes 5-9/10")
                    .header("x-oss-hash-crc64ecma", whole_crc.clone())
                    .body(object[5..].to_vec()),
                _ => Reply::ok()
                    .header("x-oss-hash-crc64ecma", whole_crc.clone())
                    .body(object.clone()),
            },
            ("DELETE", _) => Reply::status(204),
            _ => Reply::error(400, "Unexpected", "unknown"),
        }
    })
    .await;
    let client = client(&server);

    let head = client.head_object(BUCKET, "present").await.unwrap();
    assert_eq!(head.content_length, 10);
    assert_eq!(head.etag, "\"E-2\"");
    assert_eq!(head.crc64, Some(crc64::checksum(b"0123456789")));
    assert_eq!(head.object_type.as_deref(), Some("Multipart"));
    assert_eq!(
        head.metadata,
        vec![("project".to_owned(), "osspipe".to_owned())]
    );

    let error = client.head_object(BUCKET, "missing").await.unwrap_err();
    assert_eq!(error.status(), Some(404));
    assert_eq!(
        error.oss_code(),
        Some("NoSuchKey"),
        "decoded from x-oss-err"
    );
    assert_eq!(error.request_id(), Some("6556E3AED11E553933CCDEDF"));
    assert_eq!(error.service_error().unwrap().field("Key"), Some("missing"));
    assert!(!error.is_retryable());
    let bucket = client.bucket(BUCKET);
    assert_eq!(bucket.head("missing").await.unwrap(), None);
    assert_eq!(bucket.head("present").await.unwrap().unwrap().size, 10);

    let whole = client.get_object(BUCKET, "present").await.unwrap();
    assert_eq!(&whole.body.bytes().await.unwrap()[..], b"0123456789");
    let ranged = client
        .get_object_range(BUCKET, "present", 5..10)
        .await
        .unwrap();
    assert_eq!(ranged.content_range.as_deref(), Some("bytes 5-9/10"));
    assert_eq!(&ranged.body.bytes().await.unwrap()[..], b"56789");
    let bad = client.get_object(BUCKET, "bad-crc").await.unwrap();
    assert_eq!(
        bad.body.bytes().await.unwrap_err().kind(),
        ErrorKind::CrcMismatch
    );

    client.delete_object(BUCKET, "present").await.unwrap();

    let requests = server.requests();
    // HEAD 404 is not retried.
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.path == "/examplebucket/missing")
            .count(),
        2
    );
    let get_range = requests
        .iter()
        .find(|r| r.header("range").is_some())
        .unwrap();
    assert_eq!(get_range.method, "GET");
    assert_eq!(get_range.header("range"), Some("bytes=5-9"));
    assert_eq!(get_range.header("x-oss-range-behavior"), Some("standard"));
    let delete = requests.last().unwrap();
    assert_eq!(
        (delete.method.as_str(), delete.target.as_str()),
        ("DELETE", "/examplebucket/present")
    );
    for request in &requests {
        assert_v4_headers(request);
        verify_signature(request, &credentials(), SignatureVersion::V4);
    }
    server.shutdown();
}

#[tokio::test]
async fn listings_follow_every_page() {
    let server = Recorder::start(|request, _| {
        if request.query_value("uploads").is_some() {
            let first = request.query_value("key-marker").is_none();
            let (key, id, next_key, next_id, truncated) = if first {
                ("logs%2Fa", "U1", "logs%2Fa", "U1", true)
            } else {
                ("logs%2Fb%20c", "U2", "", "", false)
            };
            Reply::ok().xml(format!(
                "<ListMultipartUploadsResult><EncodingType>url</EncodingType>\
                 <Bucket>{BUCKET}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>\
                 <NextKeyMarker>{next_key}</NextKeyMarker>\
                 <NextUploadIdMarker>{next_id}</NextUploadIdMarker><Delimiter></Delimiter>\
                 <Prefix>logs%2F</Prefix><MaxUploads>1000</MaxUploads>\
                 <IsTruncated>{truncated}</IsTruncated><Upload><Key>{key}</Key>\
                 <UploadId>{id}</UploadId><Initiated>2025-01-15T08:00:00.000Z</Initiated>\
                 </Upload></ListMultipartUploadsResult>"
            ))
        } else {
            let first = request.query_value("continuation-token").is_none();
            let (key, token, truncated) = if first {
                (
                    "logs%2F1",
                    "<NextContinuationToken>T%2B1</NextContinuationToken>",
                    true,
                )
            } else {
                ("logs%2F2", "", false)
            };
            Reply::ok().xml(format!(
                "<ListBucketResult><Name>{BUCKET}</Name><Prefix>logs%2F</Prefix>\
                 <MaxKeys>1000</MaxKeys><Delimiter></Delimiter><EncodingType>url</EncodingType>\
                 <IsTruncated>{truncated}</IsTruncated>{token}<KeyCount>1</KeyCount>\
                 <Contents><Key>{key}</Key><LastModified>2025-01-15T08:00:00.000Z</LastModified>\
                 <ETag>\"E\"</ETag><Type>Normal</Type><Size>3</Size>\
                 <StorageClass>Standard</StorageClass></Contents></ListBucketResult>"
            ))
        }
    })
    .await;
    let client = client(&server);
    let uploads = client
        .list_multipart_uploads(BUCKET, Some("logs/"))
        .await
        .unwrap();
    assert_eq!(
        uploads
            .iter()
            .map(|u| (u.key.as_str(), u.upload_id.as_str()))
            .collect::<Vec<_>>(),
        vec![("logs/a", "U1"), ("logs/b c", "U2")]
    );
    let objects = client.list_objects(BUCKET, Some("logs/")).await.unwrap();
    assert_eq!(
        objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        vec!["logs/1", "logs/2"]
    );
    // The continuation token is opaque (not url-decoded, unlike keys): it goes back exactly as
    // received, so its `%` is encoded on the wire.
    let targets: Vec<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets,
        vec![
            "/examplebucket/?uploads&max-uploads=1000&encoding-type=url&prefix=logs%2F",
            "/examplebucket/?uploads&max-uploads=1000&encoding-type=url&prefix=logs%2F\
             &key-marker=logs%2Fa&upload-id-marker=U1",
            "/examplebucket/?list-type=2&max-keys=1000&encoding-type=url&prefix=logs%2F",
            "/examplebucket/?list-type=2&max-keys=1000&encoding-type=url&prefix=logs%2F\
             &continuation-token=T%252B1",
        ]
    );
    for request in &server.requests() {
        assert_eq!(request.method, "GET");
        verify_signature(request, &credentials(), SignatureVersion::V4);
    }
    server.shutdown();
}

#[tokio::test]
async fn put_bucket_is_a_bucket_level_put() {
    let server = Recorder::start(|_, _| Reply::ok()).await;
    client(&server).put_bucket(BUCKET).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests[0].method, "PUT");
    assert_eq!(requests[0].target, "/examplebucket/");
    verify_signature(&requests[0], &credentials(), SignatureVersion::V4);
    server.shutdown();
}

#[tokio::test]
async fn keys_are_percent_encoded_on_the_wire() {
    let server = Recorder::start(|request, _| {
        Reply::ok()
            .header("etag", "\"E\"")
            .header("x-oss-hash-crc64ecma", crc_header(&request.body))
    })
    .await;
    let cases = [
        (
            "docs/hello world.txt",
            "/examplebucket/docs/hello%20world.txt",
        ),
        (
            "backups/a+b=c.tar.gz",
            "/examplebucket/backups/a%2Bb%3Dc.tar.gz",
        ),
        (
            "数据/报告 2025.csv",
            "/examplebucket/%E6%95%B0%E6%8D%AE/%E6%8A%A5%E5%91%8A%202025.csv",
        ),
        ("100%/done?#x", "/examplebucket/100%25/done%3F%23x"),
        ("a//b/", "/examplebucket/a//b/"),
        ("~user/_-.txt", "/examplebucket/~user/_-.txt"),
    ];
    for version in [SignatureVersion::V4, SignatureVersion::V1] {
        let client = builder(&server)
            .with_signature_version(version)
            .build()
            .unwrap();
        for (key, _) in cases {
            client
                .put_object(
                    BUCKET,
                    key,
                    Bytes::from_static(b"x"),
                    &ObjectOptions::default(),
                )
                .await
                .unwrap();
        }
    }
    let requests = server.requests();
    assert_eq!(requests.len(), cases.len() * 2);
    for (index, request) in requests.iter().enumerate() {
        let (key, wire) = cases[index % cases.len()];
        assert_eq!(request.target, wire);
        // The server decodes once and gets the key back, `+` included.
        assert_eq!(request.decoded_path(), format!("/{BUCKET}/{key}"));
        let version = if index < cases.len() {
            SignatureVersion::V4
        } else {
            SignatureVersion::V1
        };
        verify_signature(request, &credentials(), version);
    }
    server.shutdown();
}

#[tokio::test]
async fn v1_signs_the_date_and_the_sub_resources() {
    let server = Recorder::start(multipart_script).await;
    let client = builder(&server)
        .with_signature_version(SignatureVersion::V1)
        .with_credentials(credentials().with_security_token("sts-token"))
        .build()
        .unwrap();
    let upload_id = client
        .initiate_multipart_upload(BUCKET, "backups/a+b=c.tar.gz", &ObjectOptions::default())
        .await
        .unwrap();
    client
        .upload_part(
            BUCKET,
            "backups/a+b=c.tar.gz",
            &upload_id,
            1,
            Bytes::from_static(b"first part "),
        )
        .await
        .unwrap();
    let sts = credentials().with_security_token("sts-token");
    for request in server.requests() {
        let authorization = request.header("authorization").unwrap();
        assert!(
            authorization.starts_with("OSS LTAI-test-id:"),
            "{authorization}"
        );
        assert!(request.header("x-oss-date").is_none());
        assert!(request.header("date").is_some());
        assert_eq!(request.header("x-oss-security-token"), Some("sts-token"));
        verify_signature(&request, &sts, SignatureVersion::V1);
    }
    server.shutdown();
}

/// Hands out `AK-1`, `AK-2`, ...: a different key each time it is asked, so the requests show
/// whether each attempt was signed afresh.
#[derive(Debug, Default)]
struct RotatingProvider {
    calls: AtomicUsize,
}

impl RotatingProvider {
    fn credentials_number(n: usize) -> Credentials {
        Credentials::new(format!("AK-{n}"), format!("secret-{n}"))
    }
}

#[async_trait]
impl CredentialsProvider for RotatingProvider {
    async fn credentials(&self) -> osspipe::Result<Credentials> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Self::credentials_number(n))
    }
}

fn access_key_of(request: &Recorded) -> String {
    let authorization = request.header("authorization").unwrap();
    let credential = authorization
        .split("Credential=")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    credential.to_owned()
}

#[tokio::test]
async fn a_503_is_retried_and_re_signed() {
    let server = Recorder::start(|request, index| {
        if index == 0 {
            Reply::error(503, "SlowDown", "Please reduce your request rate.")
        } else {
            Reply::ok()
                .header("etag", "\"E\"")
                .header("x-oss-hash-crc64ecma", crc_header(&request.body))
        }
    })
    .await;
    let client = builder(&server)
        .with_credentials_provider(RotatingProvider::default())
        .build()
        .unwrap();
    let receipt = client
        .upload_part(
            BUCKET,
            "k",
            UPLOAD_ID,
            17,
            Bytes::from_static(b"part seventeen"),
        )
        .await
        .unwrap();
    assert_eq!(receipt.part_number, 17);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(access_key_of(&requests[0]), "AK-1");
    assert_eq!(access_key_of(&requests[1]), "AK-2");
    for (n, request) in (1..).zip(&requests) {
        assert_eq!(
            &request.body[..],
            b"part seventeen",
            "the same bytes are re-sent"
        );
        verify_signature(
            request,
            &RotatingProvider::credentials_number(n),
            SignatureVersion::V4,
        );
    }
    server.shutdown();
}

#[tokio::test]
async fn a_403_is_not_retried_and_the_error_says_where() {
    let server = Recorder::start(|_, _| {
        Reply::error(
            403,
            "AccessDenied",
            "You have no right to access this object.",
        )
    })
    .await;
    let client = client(&server);
    let error = client
        .upload_part(BUCKET, "dir/k", UPLOAD_ID, 3, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(error.kind(), ErrorKind::Service);
    assert!(!error.is_retryable());
    assert_eq!(error.status(), Some(403));
    assert_eq!(error.oss_code(), Some("AccessDenied"));
    assert_eq!(error.request_id(), Some("RID-AccessDenied"));
    assert_eq!(error.service_error().unwrap().ec, "0000-00000000");
    assert_eq!(error.operation(), Some(Operation::UploadPart));
    assert_eq!(error.bucket(), Some(BUCKET));
    assert_eq!(error.key(), Some("dir/k"));
    assert_eq!(error.upload_id(), Some(UPLOAD_ID));
    assert_eq!(error.part_number(), Some(3));
    assert_eq!(
        error.to_string(),
        "UploadPart (part 3) of oss://examplebucket/dir/k failed: 403 AccessDenied: You have no \
         right to access this object. (request id RID-AccessDenied)"
    );
    server.shutdown();
}

#[tokio::test]
async fn retries_stop_after_the_attempt_budget() {
    let server = Recorder::start(|_, _| Reply::error(500, "InternalError", "busy")).await;
    let client = builder(&server)
        .with_retry_policy(
            RetryPolicy::new()
                .with_max_attempts(3)
                .with_base_delay(Duration::from_millis(1)),
        )
        .build()
        .unwrap();
    let error = client
        .initiate_multipart_upload(BUCKET, "k", &ObjectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.oss_code(), Some("InternalError"));
    assert!(error.is_retryable());
    assert_eq!(server.requests().len(), 3);
    server.shutdown();
}

#[tokio::test]
async fn a_crc_mismatch_is_detected_and_retried() {
    let server = Recorder::start(|request, index| {
        let crc = if index == 0 || request.target.contains("partNumber=9") {
            "12345".to_owned()
        } else {
            crc_header(&request.body)
        };
        Reply::ok()
            .header("etag", "\"E\"")
            .header("x-oss-hash-crc64ecma", crc)
    })
    .await;
    let client = client(&server);
    client
        .upload_part(BUCKET, "k", UPLOAD_ID, 1, Bytes::from_static(b"abc"))
        .await
        .unwrap();
    assert_eq!(server.requests().len(), 2, "one bad CRC, one good");
    let error = client
        .upload_part(BUCKET, "k", UPLOAD_ID, 9, Bytes::from_static(b"abc"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CrcMismatch);
    assert_eq!(error.part_number(), Some(9));
    assert_eq!(
        error.to_string(),
        format!(
            "UploadPart (part 9) of oss://examplebucket/k failed: crc-64 mismatch: sent {}, \
             server stored 12345",
            crc64::checksum(b"abc")
        )
    );
    assert_eq!(
        server.requests().len(),
        2 + osspipe::retry::DEFAULT_MAX_ATTEMPTS as usize
    );
    server.shutdown();
}

#[tokio::test]
async fn a_stalled_response_hits_the_idle_timeout_and_is_retried() {
    let server = Recorder::start(|request, index| {
        if index == 0 {
            Reply::ok().stall()
        } else {
            Reply::ok()
                .header("etag", "\"E\"")
                .header("x-oss-hash-crc64ecma", crc_header(&request.body))
        }
    })
    .await;
    let idle = Duration::from_millis(300);
    let client = builder(&server).with_idle_timeout(idle).build().unwrap();
    let started = Instant::now();
    client
        .upload_part(BUCKET, "k", UPLOAD_ID, 1, Bytes::from(vec![1u8; 300_000]))
        .await
        .unwrap();
    assert!(started.elapsed() >= idle, "{:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].body.len(), 300_000);

    // When every attempt stalls, the error is a timeout with the request's context.
    let stalling = Recorder::start(|_, _| Reply::ok().stall()).await;
    let client = builder(&stalling)
        .with_idle_timeout(Duration::from_millis(100))
        .with_retry_policy(
            RetryPolicy::new()
                .with_max_attempts(2)
                .with_base_delay(Duration::from_millis(1)),
        )
        .build()
        .unwrap();
    let error = client.head_object(BUCKET, "k").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.is_retryable());
    assert_eq!(error.operation(), Some(Operation::HeadObject));
    assert_eq!(
        error.to_string(),
        "HeadObject of oss://examplebucket/k failed: no progress for 100 ms (idle timeout)"
    );
    assert_eq!(stalling.requests().len(), 2);
    stalling.shutdown();
    server.shutdown();
}

#[tokio::test]
async fn a_body_that_stalls_mid_stream_times_out() {
    let server = Recorder::start(|_, _| Reply::ok().body(vec![b'x'; 100]).stall_after(10)).await;
    let client = builder(&server)
        .with_idle_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let output = client.get_object(BUCKET, "k").await.unwrap();
    let mut body = output.body;
    let mut received = 0;
    let error = loop {
        match body.next().await {
            Some(Ok(chunk)) => received += chunk.len(),
            Some(Err(error)) => break error,
            None => panic!("the body cannot end: it stalls"),
        }
    };
    assert_eq!(received, 10);
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(
        body.next().await.is_none(),
        "the stream ends after its error"
    );
    server.shutdown();
}

#[tokio::test]
async fn dropped_connections_and_refused_connects_are_network_errors() {
    let server = Recorder::start(|_, index| {
        if index == 0 {
            Reply::ok().close()
        } else {
            Reply::status(204)
        }
    })
    .await;
    client(&server).delete_object(BUCKET, "k").await.unwrap();
    assert_eq!(server.requests().len(), 2);
    let endpoint = server.endpoint();
    server.shutdown();

    // Nothing listens there any more.
    let refused = Client::builder()
        .with_endpoint(endpoint)
        .with_region(REGION)
        .with_credentials(credentials())
        .with_retry_policy(
            RetryPolicy::new()
                .with_max_attempts(2)
                .with_base_delay(Duration::from_millis(1)),
        )
        .build()
        .unwrap();
    let error = refused.delete_object(BUCKET, "k").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Network);
    assert!(error.is_retryable());
    assert!(std::error::Error::source(&error).is_some());
}

#[tokio::test]
async fn request_time_too_skewed_corrects_the_clock() {
    let ahead = SystemTime::now() + Duration::from_secs(3600);
    let server = Recorder::start(move |_, index| {
        if index == 0 {
            Reply::error(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            )
            .header("date", httpdate::fmt_http_date(ahead))
        } else {
            Reply::status(204)
        }
    })
    .await;
    let client = client(&server);
    client.delete_object(BUCKET, "k").await.unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let signed_at =
        |r: &Recorded| sign::parse_iso8601_basic(r.header("x-oss-date").unwrap()).unwrap();
    let first = signed_at(&requests[0]);
    let second = signed_at(&requests[1]);
    let shift = second.duration_since(first).unwrap();
    assert!(
        shift > Duration::from_secs(3590) && shift < Duration::from_secs(3610),
        "{shift:?}"
    );
    verify_signature(&requests[1], &credentials(), SignatureVersion::V4);
    server.shutdown();
}

#[tokio::test]
async fn invalid_input_is_refused_before_sending() {
    let server = Recorder::start(|_, _| Reply::ok()).await;
    let client = client(&server);
    let options = ObjectOptions::default();
    let cases = [
        client
            .put_object("Bad_Bucket", "k", Bytes::new(), &options)
            .await,
        client
            .put_object(BUCKET, "/abs", Bytes::new(), &options)
            .await,
        client.put_object(BUCKET, "", Bytes::new(), &options).await,
    ];
    for result in cases {
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert_eq!(error.operation(), Some(Operation::PutObject));
    }
    let error = client
        .upload_part(BUCKET, "k", UPLOAD_ID, 10_001, Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "UploadPart (part 10001) of oss://examplebucket/k failed: part number must be 1..=10000: got 10001");
    // URL parsers resolve `.` and `..` segments (even as %2E), so such keys cannot be sent
    // faithfully: refused, saying why.
    let error = client
        .put_object(BUCKET, "a/../b", Bytes::new(), &options)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("'..'"), "{error}");
    assert!(server.requests().is_empty());
    server.shutdown();
}

#[tokio::test]
async fn presigned_get_urls_verify() {
    let server = Recorder::start(|_, _| Reply::ok().body("presigned")).await;
    let client = client(&server);
    let url = client
        .presign_get(BUCKET, "docs/hello world.txt", Duration::from_secs(600))
        .await
        .unwrap();
    assert!(url.starts_with(&format!(
        "{}/examplebucket/docs/hello%20world.txt?x-oss-signature-version=OSS4-HMAC-SHA256&",
        server.endpoint()
    )));
    // Anyone can fetch it: a plain GET with no Authorization.
    let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert_eq!(body, "presigned");
    let request = &server.requests()[0];
    assert!(request.header("authorization").is_none());
    assert_eq!(request.query_value("x-oss-expires"), Some("600"));
    // Recompute the signature from the URL as it arrived.
    let now = sign::parse_iso8601_basic(request.query_value("x-oss-date").unwrap()).unwrap();
    let creds = credentials();
    let params = SigningParams::new(SignatureVersion::V4, &creds, REGION, now);
    let headers = http::HeaderMap::new();
    let signable = SignableRequest {
        method: "GET",
        bucket: Some(BUCKET),
        key: Some("docs/hello world.txt"),
        query: &[],
        headers: &headers,
    };
    let expected = sign::presign_query(&params, &signable, Duration::from_secs(600)).unwrap();
    assert_eq!(request.query, expected);
    server.shutdown();
}

#[tokio::test]
async fn the_signature_check_in_these_tests_can_fail() {
    let server = Recorder::start(|_, _| Reply::status(204)).await;
    client(&server).delete_object(BUCKET, "k").await.unwrap();
    let request = server.requests().remove(0);
    verify_signature(&request, &credentials(), SignatureVersion::V4);
    let wrong_secret = Credentials::new("LTAI-test-id", "another-secret");
    let outcome = std::panic::catch_unwind(|| {
        verify_signature(&request, &wrong_secret, SignatureVersion::V4)
    });
    assert!(outcome.is_err(), "a wrong secret must not verify");
    let mut tampered = request.clone();
    tampered.path = "/examplebucket/other".into();
    let outcome = std::panic::catch_unwind(|| {
        verify_signature(&tampered, &credentials(), SignatureVersion::V4)
    });
    assert!(outcome.is_err(), "another key must not verify");
    server.shutdown();
}
