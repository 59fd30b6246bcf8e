//! A writer used after shutdown, after an error, or dropped mid-stream, over real HTTP against
//! the local server: every later call returns an error (never panics), and a dropped writer
//! leaves no upload behind unless its parts were kept on purpose.
#![cfg(feature = "server")]

#[path = "common/reliability.rs"]
mod reliability;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use osspipe::server::{FaultRule, LocalServer};
use osspipe::upload::ObjectWriter;
use osspipe::{Error, ErrorKind, Operation};
use reliability::*;
use tokio::io::AsyncWriteExt;

const BUCKET: &str = "misuse";

async fn server() -> LocalServer {
    LocalServer::builder().bucket(BUCKET).start().await.unwrap()
}

#[tokio::test]
async fn a_writer_used_after_shutdown_returns_closed() {
    let server = server().await;
    let client = client_for(server.addr(), server.credentials());
    for size in [0usize, 1000, 3 * MIB as usize] {
        let key = format!("after-shutdown-{size}");
        let mut writer = ObjectWriter::builder(Arc::new(client.bucket(BUCKET)), &key)
            .part_size(MIB)
            .max_memory(4 * MIB)
            .build()
            .unwrap();
        writer.write_all(&vec![9u8; size]).await.unwrap();
        writer.shutdown().await.unwrap();
        let outcome = writer.outcome().cloned().expect("an outcome");
        assert_eq!(outcome.size, size as u64);

        let error = Error::from_io(writer.write_all(b"more").await.expect_err("closed"));
        assert_eq!(error.kind(), ErrorKind::Closed, "{error}");
        let error = writer
            .write_bytes(Bytes::from_static(b"more"))
            .await
            .expect_err("closed");
        assert_eq!(error.kind(), ErrorKind::Closed, "{error}");
        // After a completed upload every byte is durable: either say so, or refuse with Closed
        // as the documentation of `sync_durable` promises ("Closed after shutdown began").
        match writer.sync_durable(true).await {
            Ok(durable) => assert_eq!(
                durable, size as u64,
                "sync_durable after a completed upload of {size} bytes reports {durable} bytes \
                 durable"
            ),
            Err(error) => assert_eq!(error.kind(), ErrorKind::Closed, "{error}"),
        }
        // Shutting down again is harmless: either done already, or an error, never a panic
        // and never a second object.
        if let Err(error) = writer.shutdown().await {
            assert_eq!(Error::from_io(error).kind(), ErrorKind::Closed);
        }
        let _ = writer.flush().await;
        assert_eq!(writer.outcome(), Some(&outcome), "the outcome is unchanged");
        let stored = read_back(&client, BUCKET, &key).await.unwrap().unwrap();
        assert_eq!(stored.len, size as u64);
        writer
            .abort()
            .await
            .expect("aborting a finished writer is a no-op");
        assert!(read_back(&client, BUCKET, &key).await.unwrap().is_some());
    }
    assert!(uploads_of(&client, BUCKET, "after-shutdown-3145728")
        .await
        .is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_writer_used_after_an_error_returns_that_error() {
    let server = server().await;
    server.faults().add(
        FaultRule::fail(Some(Operation::UploadPart), 403, "AccessDenied")
            .part(2)
            .times(u64::MAX),
    );
    let client = client_for(server.addr(), server.credentials());
    let mut writer = ObjectWriter::builder(Arc::new(client.bucket(BUCKET)), "after-error")
        .part_size(MIB)
        .max_memory(4 * MIB)
        .build()
        .unwrap();
    let streamed = stream_into(&mut writer, 11, 16 * MIB).await;
    let first = streamed.result.expect_err("part 2 is denied");
    assert_service_error(&first, 403, "AccessDenied");
    for _ in 0..3 {
        let again = Error::from_io(writer.write_all(b"x").await.expect_err("latched"));
        assert_eq!(again.oss_code(), Some("AccessDenied"), "{again}");
        let again = writer
            .write_bytes(Bytes::from(vec![1u8; 2 * MIB as usize]))
            .await
            .expect_err("latched");
        assert_eq!(again.oss_code(), Some("AccessDenied"), "{again}");
        let again = writer.sync_durable(true).await.expect_err("latched");
        assert_eq!(again.oss_code(), Some("AccessDenied"), "{again}");
        let again = Error::from_io(writer.flush().await.expect_err("latched"));
        assert_eq!(again.oss_code(), Some("AccessDenied"), "{again}");
        let again = Error::from_io(writer.shutdown().await.expect_err("latched"));
        assert_eq!(again.oss_code(), Some("AccessDenied"), "{again}");
    }
    assert!(writer.outcome().is_none());
    let error = writer
        .abort()
        .await
        .expect_err("abort reports the earlier failure");
    assert_eq!(error.oss_code(), Some("AccessDenied"));
    assert!(read_back(&client, BUCKET, "after-error")
        .await
        .unwrap()
        .is_none());
    assert!(uploads_of(&client, BUCKET, "after-error").await.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_writer_dropped_mid_stream_aborts_its_upload() {
    let server = server().await;
    let client = client_for(server.addr(), server.credentials());
    for keep in [false, true] {
        let key = format!("dropped-keep-{keep}");
        let mut writer = ObjectWriter::builder(Arc::new(client.bucket(BUCKET)), &key)
            .part_size(MIB)
            .max_memory(4 * MIB)
            .keep_parts_on_drop(keep)
            .build()
            .unwrap();
        let mut stream = SeededStream::new(12, 6 * MIB);
        while let Some(chunk) = stream.next_chunk(256 * 1024) {
            writer.write_all(&chunk).await.unwrap();
        }
        writer.sync_durable(false).await.unwrap();
        let upload_id = writer.upload_id().expect("an upload").to_owned();
        drop(writer);
        // The abort runs in the background: give it a moment.
        let left = {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let left = uploads_of(&client, BUCKET, &key).await;
                if left.is_empty() != keep || tokio::time::Instant::now() >= deadline {
                    break left;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        if keep {
            assert_eq!(left.len(), 1, "kept on purpose: {left:?}");
            assert_eq!(left[0].upload_id, upload_id);
            client
                .abort_multipart_upload(BUCKET, &key, &upload_id)
                .await
                .unwrap();
        } else {
            assert!(
                left.is_empty(),
                "a dropped writer aborts its upload: {left:?}"
            );
        }
        assert!(read_back(&client, BUCKET, &key).await.unwrap().is_none());
    }
    server.shutdown().await;
}
