//! Malformed answers from the server: a tiny raw TCP server in the test answers with truncated
//! XML, HTML error pages, an XML bomb, a 200 carrying an error body, a part without ETag and
//! bodies that never end. The client must return a clear, typed error every time, keep its
//! memory bounded, and never panic; the streaming writer on top must latch the error.

#[path = "common/reliability.rs"]
mod reliability;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use osspipe::client::Client;
use osspipe::retry::RetryPolicy;
use osspipe::target::{ObjectOptions, PartReceipt};
use osspipe::upload::ObjectWriter;
use osspipe::{Credentials, Error, ErrorKind, Operation};
use reliability::*;
use tokio::io::AsyncWriteExt;

const BUCKET: &str = "answers";
const ATTEMPTS: u32 = 3;

fn client(server: &ScriptedServer) -> Client {
    Client::builder()
        .with_endpoint(server.endpoint())
        .with_region(REGION)
        .with_credentials(Credentials::new("LTAIanswers", "answers-secret"))
        .with_retry_policy(
            RetryPolicy::new()
                .with_max_attempts(ATTEMPTS)
                .with_base_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(20))
                .with_seed(3),
        )
        .with_idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn xml(body: &str) -> String {
    format!(r#"<?xml version="1.0" encoding="UTF-8"?>{body}"#)
}

fn assert_malformed(error: &Error, what: &str) {
    assert_eq!(
        error.kind(),
        ErrorKind::MalformedResponse,
        "{what}: a malformed answer must be a MalformedResponse error: {error}"
    );
    assert!(!error.to_string().is_empty());
}

const HTML_PAGE: &str = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\
    <body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>";

/// Entities that would expand to a gigabyte if a parser expanded them.
fn xml_bomb(root: &str) -> String {
    let mut doctype = String::from("<!DOCTYPE lolz [<!ENTITY lol0 \"lololololololololololol\">");
    for level in 1..10 {
        let previous = format!("&lol{};", level - 1);
        doctype.push_str(&format!("<!ENTITY lol{level} \"{}\">", previous.repeat(10)));
    }
    doctype.push_str("]>");
    xml(&format!(
        "{doctype}<{root}><Bucket>&lol9;</Bucket><Key>&lol9;</Key><UploadId>&lol9;</UploadId>\
         <Code>&lol9;</Code></{root}>"
    ))
}

#[tokio::test]
async fn truncated_xml_is_a_malformed_response() {
    let server = ScriptedServer::start(|_, _| {
        let body = xml(
            "<InitiateMultipartUploadResult><Bucket>answers</Bucket><Key>k</Key><UploadId>0004B9",
        );
        Reply::response(200, &[("content-type", "application/xml")], body)
    })
    .await;
    let error = client(&server)
        .initiate_multipart_upload(BUCKET, "k", &ObjectOptions::default())
        .await
        .expect_err("a truncated body has no upload id");
    assert_malformed(&error, "truncated Initiate");
    assert_eq!(error.operation(), Some(Operation::InitiateMultipartUpload));
    assert_eq!(server.requests(), 1, "a malformed answer is not retried");

    // A body cut off mid-stream (Content-Length promises more than comes).
    let server = ScriptedServer::start(|_, _| {
        let body = xml("<ListPartsResult><Bucket>answers</Bucket><Part><PartNumber>1");
        let mut raw = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n",
            body.len() + 1000
        )
        .into_bytes();
        raw.extend_from_slice(body.as_bytes());
        Reply::Raw(raw)
    })
    .await;
    let error = client(&server)
        .list_parts(BUCKET, "k", "upload")
        .await
        .expect_err("a cut-off body fails");
    assert!(
        matches!(
            error.kind(),
            ErrorKind::Network | ErrorKind::MalformedResponse
        ),
        "{error}"
    );
}

#[tokio::test]
async fn html_error_pages_keep_their_status() {
    // A proxy's 502 page: retryable, retried, then reported with its status.
    let server = ScriptedServer::start(|_, _| {
        Reply::response(502, &[("content-type", "text/html")], HTML_PAGE)
    })
    .await;
    let error = client(&server)
        .put_object(
            BUCKET,
            "k",
            Bytes::from_static(b"data"),
            &ObjectOptions::default(),
        )
        .await
        .expect_err("502 is an error");
    assert_eq!(error.kind(), ErrorKind::Service, "{error}");
    assert_eq!(error.status(), Some(502), "{error}");
    assert!(error.is_retryable());
    assert_eq!(
        server.requests(),
        ATTEMPTS as usize,
        "a 502 is retried up to the policy"
    );
    assert!(
        !error.to_string().contains("<html"),
        "the page's markup is not dumped into the message: {error}"
    );

    // A 403 HTML page (a captive portal): not retried.
    let server = ScriptedServer::start(|_, _| {
        Reply::response(403, &[("content-type", "text/html")], HTML_PAGE)
    })
    .await;
    let error = client(&server)
        .put_object(
            BUCKET,
            "k",
            Bytes::from_static(b"data"),
            &ObjectOptions::default(),
        )
        .await
        .expect_err("403 is an error");
    assert_eq!(error.status(), Some(403), "{error}");
    assert_eq!(server.requests(), 1, "a 403 is not retried");

    // A 200 HTML page where XML was expected.
    let server = ScriptedServer::start(|_, _| {
        Reply::response(200, &[("content-type", "text/html")], HTML_PAGE)
    })
    .await;
    let error = client(&server)
        .initiate_multipart_upload(BUCKET, "k", &ObjectOptions::default())
        .await
        .expect_err("HTML is not an Initiate answer");
    assert_malformed(&error, "200 HTML");
}

#[tokio::test]
async fn an_xml_bomb_is_refused_without_expanding() {
    let sampler = RssSampler::start();
    let before = rss_bytes();
    let server = ScriptedServer::start(|index, _| {
        if index % 2 == 0 {
            Reply::response(200, &[], xml_bomb("InitiateMultipartUploadResult"))
        } else {
            Reply::response(400, &[], xml_bomb("Error"))
        }
    })
    .await;
    let client = client(&server);
    let error = client
        .initiate_multipart_upload(BUCKET, "k", &ObjectOptions::default())
        .await
        .expect_err("a DTD is refused");
    assert_malformed(&error, "bomb in a 200");
    let error = client
        .initiate_multipart_upload(BUCKET, "k", &ObjectOptions::default())
        .await
        .expect_err("400 with a bomb");
    assert_eq!(error.status(), Some(400), "{error}");
    assert!(
        error.to_string().len() < 4096,
        "the error message stays short: {} bytes",
        error.to_string().len()
    );
    let growth = sampler.stop().saturating_sub(before);
    assert!(
        growth < 64 * MIB,
        "parsing a bomb grew RSS by {} MiB",
        growth / MIB
    );
}

#[tokio::test]
async fn a_200_with_an_error_body_is_not_success() {
    let body = xml(
        "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message>\
         <RequestId>5C3D9175B6FC201293AD4890</RequestId></Error>",
    );
    let server = ScriptedServer::start(move |_, _| Reply::response(200, &[], &body)).await;
    let client = client(&server);
    let part = PartReceipt {
        part_number: 1,
        etag: "\"0123456789ABCDEF0123456789ABCDEF\"".into(),
        crc64: 0,
        size: 0,
    };
    let error = client
        .complete_multipart_upload(BUCKET, "k", "upload", &[part], &ObjectOptions::default())
        .await
        .expect_err("a 200 whose body is an <Error> is not a completed object");
    assert!(
        matches!(
            error.kind(),
            ErrorKind::MalformedResponse | ErrorKind::Service
        ),
        "{error}"
    );
    let error = client
        .initiate_multipart_upload(BUCKET, "k", &ObjectOptions::default())
        .await
        .expect_err("a 200 <Error> body has no upload id");
    assert_malformed(&error, "200 <Error> on Initiate");
}

#[tokio::test]
async fn a_part_answer_without_etag_is_refused() {
    let server = ScriptedServer::start(|_, _| Reply::response(200, &[], "")).await;
    let error = client(&server)
        .upload_part(BUCKET, "k", "upload", 1, Bytes::from(vec![7u8; 4096]))
        .await
        .expect_err("a part without ETag cannot be completed later");
    assert_malformed(&error, "UploadPart without ETag");
    assert!(error.to_string().contains("ETag"), "{error}");
    assert_eq!(error.part_number(), Some(1));
}

#[tokio::test]
async fn endless_bodies_are_cut_off_with_bounded_memory() {
    let sampler = RssSampler::start();
    let before = rss_bytes();
    // A 200 listing that never ends.
    let server = ScriptedServer::start(|_, _| {
        let part = "<Part><PartNumber>1</PartNumber><ETag>\"AB\"</ETag><Size>1</Size></Part>";
        Reply::Endless {
            head: b"HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\n\
                    transfer-encoding: chunked\r\n\r\n"
                .to_vec(),
            chunk: {
                let payload = part.repeat(1024);
                let mut chunk = format!("{:x}\r\n", payload.len()).into_bytes();
                chunk.extend_from_slice(payload.as_bytes());
                chunk.extend_from_slice(b"\r\n");
                chunk
            },
        }
    })
    .await;
    let error = tokio::time::timeout(
        Duration::from_secs(60),
        client(&server).list_parts(BUCKET, "k", "upload"),
    )
    .await
    .expect("an endless body is cut off, not read forever")
    .expect_err("an endless body is an error");
    assert_malformed(&error, "endless ListParts");
    assert!(error.to_string().contains("limit"), "{error}");
    let sent = server
        .endless_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        sent < 256 * MIB,
        "the client kept reading: {} MiB",
        sent / MIB
    );

    // An error answer whose body never ends: the status still gets through.
    let server = ScriptedServer::start(|_, _| Reply::Endless {
        head: b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\n\r\n".to_vec(),
        chunk: vec![b'x'; 64 * 1024],
    })
    .await;
    let error = tokio::time::timeout(
        Duration::from_secs(60),
        client(&server).put_object(
            BUCKET,
            "k",
            Bytes::from_static(b"x"),
            &ObjectOptions::default(),
        ),
    )
    .await
    .expect("an endless error body is cut off")
    .expect_err("503 is an error");
    assert_eq!(error.status(), Some(503), "{error}");

    let growth = sampler.stop().saturating_sub(before);
    assert!(
        growth < 96 * MIB,
        "endless bodies grew RSS by {} MiB",
        growth / MIB
    );
}

#[tokio::test]
async fn the_writer_latches_a_malformed_answer() {
    // Initiate answers with garbage: the writer fails on the part that needed it, and every
    // later call returns the same error.
    let server = ScriptedServer::start(|_, request| {
        if request.method() == "DELETE" {
            Reply::response(204, &[], "")
        } else {
            Reply::response(200, &[], "<InitiateMultipartUploadResult><UploadId>")
        }
    })
    .await;
    let client = client(&server);
    let mut writer = ObjectWriter::builder(Arc::new(client.bucket(BUCKET)), "k")
        .part_size(128 * 1024)
        .max_memory(MIB)
        .build()
        .unwrap();
    let chunk = vec![1u8; 64 * 1024];
    let mut first = None;
    for _ in 0..32 {
        if let Err(error) = writer.write_all(&chunk).await {
            first = Some(Error::from_io(error));
            break;
        }
    }
    let first = match first {
        Some(error) => error,
        None => Error::from_io(writer.shutdown().await.expect_err("the upload fails")),
    };
    assert_malformed(&first, "writer over a garbage Initiate");
    for _ in 0..3 {
        let again = Error::from_io(writer.write_all(&chunk).await.expect_err("latched"));
        assert_eq!(again.kind(), first.kind(), "{again}");
        let again = Error::from_io(writer.flush().await.err().unwrap_or_else(|| {
            std::io::Error::from(Error::new(ErrorKind::Closed, "flush succeeded"))
        }));
        assert!(
            matches!(again.kind(), ErrorKind::MalformedResponse),
            "flush after a failure returns the error: {again}"
        );
        let again = Error::from_io(writer.shutdown().await.expect_err("latched"));
        assert_eq!(again.kind(), first.kind(), "{again}");
    }
}
