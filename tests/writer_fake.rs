//! The streaming writer against the in-memory fake: every behaviour of the issue, fault by fault.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use osspipe::crc64;
use osspipe::target::{MultipartTarget, ObjectHead, ObjectOptions, ObjectReceipt, PartReceipt};
use osspipe::upload::{Fault, MemoryTarget, ObjectWriter, PartSizePlan};
use osspipe::{Error, ErrorKind, Operation};
use tokio::io::AsyncWriteExt;

const KEY: &str = "dir/object.bin";

fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

/// A fixed-size plan of `size`-byte parts, below OSS's minimum (fine with the fake).
fn fixed(size: u64) -> PartSizePlan {
    PartSizePlan::unchecked(size, size).with_growth_interval(10_000)
}

fn fake() -> Arc<MemoryTarget> {
    Arc::new(MemoryTarget::with_min_part_size(1))
}

fn fixed_writer(target: &Arc<MemoryTarget>, part: u64) -> ObjectWriter {
    ObjectWriter::builder(target.clone(), KEY)
        .plan(fixed(part))
        .max_memory(part * 5)
        .retry_backoff(Duration::from_millis(1))
        .build()
        .unwrap()
}

async fn write_in(writer: &mut ObjectWriter, data: &[u8], chunk: usize) -> std::io::Result<()> {
    for piece in data.chunks(chunk) {
        writer.write_all(piece).await?;
    }
    Ok(())
}

fn service(status: u16, code: &'static str) -> impl Fn() -> Error + Send + Sync + 'static {
    move || MemoryTarget::service_error(status, code)
}

/// Waits (in real or paused time) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..2000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting until {what}");
}

fn part_numbers(target: &MemoryTarget) -> Vec<u32> {
    target
        .calls()
        .iter()
        .filter(|c| c.operation == Operation::UploadPart)
        .filter_map(|c| c.part_number)
        .collect()
}

#[tokio::test]
async fn small_stream_is_one_put_object() {
    let target = Arc::new(MemoryTarget::new());
    let mut writer = ObjectWriter::builder(target.clone(), KEY).build().unwrap();
    writer.write_all(b"hello oss\n").await.unwrap();
    writer.flush().await.unwrap();
    writer.shutdown().await.unwrap();
    let outcome = writer.outcome().unwrap().clone();
    assert_eq!(outcome.size, 10);
    assert_eq!(outcome.parts, 0);
    assert_eq!(outcome.upload_id, None);
    assert_eq!(outcome.crc64, 17223430255209957478);
    let ops: Vec<_> = target.calls().iter().map(|c| c.operation).collect();
    assert_eq!(ops, vec![Operation::PutObject]);
    let object = target.object(KEY).unwrap();
    assert_eq!(&object.body[..], b"hello oss\n");
    assert_eq!(object.etag, outcome.etag);
    assert!(writer.progress().finished);
    assert_eq!(writer.progress().bytes_durable, 10);
}

#[tokio::test]
async fn empty_stream_is_an_empty_object() {
    let target = Arc::new(MemoryTarget::new());
    let mut writer = ObjectWriter::builder(target.clone(), KEY).build().unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(writer.outcome().unwrap().size, 0);
    assert_eq!(writer.outcome().unwrap().crc64, 0);
    assert_eq!(target.count(Operation::PutObject), 1);
    assert_eq!(target.count(Operation::InitiateMultipartUpload), 0);
    assert!(target.object(KEY).unwrap().body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_round_trip() {
    let target = fake();
    let input = data(10_500, 1);
    let mut writer = fixed_writer(&target, 1000);
    write_in(&mut writer, &input, 333).await.unwrap();
    writer.shutdown().await.unwrap();
    let outcome = writer.outcome().unwrap().clone();
    assert_eq!(outcome.parts, 11);
    assert_eq!(outcome.size, 10_500);
    assert_eq!(outcome.crc64, crc64::checksum(&input));
    assert!(outcome.upload_id.is_some());
    let object = target.object(KEY).unwrap();
    assert_eq!(object.body, input);
    assert_eq!(object.part_sizes, [vec![1000; 10], vec![500]].concat());
    assert_eq!(target.count(Operation::InitiateMultipartUpload), 1);
    assert_eq!(target.count(Operation::CompleteMultipartUpload), 1);
    let mut numbers = part_numbers(&target);
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=11).collect::<Vec<_>>());
    let progress = writer.progress();
    assert!(progress.finished);
    assert_eq!(progress.bytes_durable, 10_500);
    assert_eq!(progress.parts_acknowledged, 11);
    assert_eq!(progress.parts_in_flight, 0);
    assert!(progress.peak_buffered_bytes <= 5000, "{progress:?}");
    assert!(target.uploads().is_empty());
}

#[tokio::test]
async fn second_shutdown_gives_the_same_outcome_and_writes_after_it_fail() {
    let target = fake();
    let mut writer = fixed_writer(&target, 100);
    writer.write_all(&data(250, 2)).await.unwrap();
    writer.shutdown().await.unwrap();
    let first = writer.outcome().unwrap().clone();
    writer.shutdown().await.unwrap();
    assert_eq!(writer.outcome().unwrap(), &first);
    assert_eq!(target.count(Operation::CompleteMultipartUpload), 1);
    writer.flush().await.unwrap();
    let error = writer.write_all(b"more").await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
    let error = Error::from_io(error);
    assert_eq!(error.kind(), ErrorKind::Closed);
    let error = writer
        .write_bytes(Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert!(writer.sync_durable(true).await.is_ok());
    assert_eq!(target.object(KEY).unwrap().body.len(), 250);
}

#[tokio::test]
async fn non_retryable_error_aborts_and_latches() {
    let target = fake();
    target.inject(Fault::fail(Operation::UploadPart, service(403, "AccessDenied")).on_part(3));
    let mut writer = fixed_writer(&target, 100);
    let input = data(2000, 3);
    let result = write_in(&mut writer, &input, 64).await;
    let error = match result {
        Err(error) => error,
        Ok(()) => writer.shutdown().await.unwrap_err(),
    };
    assert_eq!(error.kind(), std::io::ErrorKind::PermissionDenied);
    let error = Error::from_io(error);
    assert_eq!(error.oss_code(), Some("AccessDenied"));
    assert_eq!(error.operation(), Some(Operation::UploadPart));
    let upload_id = error
        .upload_id()
        .expect("the error names the upload")
        .to_owned();
    assert_eq!(error.key(), Some(KEY));
    // The upload is gone and nothing was completed.
    assert!(target.uploads().is_empty());
    assert_eq!(target.count(Operation::AbortMultipartUpload), 1);
    assert_eq!(target.count(Operation::CompleteMultipartUpload), 0);
    assert!(target.object(KEY).is_none());
    // Latched: every later call returns the same error.
    for _ in 0..2 {
        let again = Error::from_io(writer.write_all(b"x").await.unwrap_err());
        assert_eq!(again.oss_code(), Some("AccessDenied"));
        assert_eq!(again.upload_id(), Some(upload_id.as_str()));
    }
    let again = Error::from_io(writer.flush().await.unwrap_err());
    assert_eq!(again.oss_code(), Some("AccessDenied"));
    let again = Error::from_io(writer.shutdown().await.unwrap_err());
    assert_eq!(again.oss_code(), Some("AccessDenied"));
    assert_eq!(
        writer.sync_durable(false).await.unwrap_err().oss_code(),
        Some("AccessDenied")
    );
    assert!(writer.outcome().is_none());
    assert_eq!(target.count(Operation::AbortMultipartUpload), 1);
}

#[tokio::test(start_paused = true)]
async fn retryable_errors_are_sent_again_by_the_writer() {
    let target = fake();
    target
        .inject(Fault::fail(Operation::UploadPart, service(503, "ServiceUnavailable")).on_call(2));
    target.inject(
        Fault::fail(
            Operation::InitiateMultipartUpload,
            service(500, "InternalError"),
        )
        .on_call(1),
    );
    let mut writer = fixed_writer(&target, 100);
    let input = data(1000, 4);
    write_in(&mut writer, &input, 100).await.unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(target.object(KEY).unwrap().body, input);
    assert_eq!(writer.progress().retries, 2);
    assert_eq!(target.count(Operation::UploadPart), 11);
    // The failed Initiate left no upload behind (it failed before taking effect).
    assert!(target.uploads().is_empty());
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_abort() {
    let target = fake();
    target.inject(Fault::fail(Operation::UploadPart, service(503, "SlowDown")).on_part(2));
    let mut writer = ObjectWriter::builder(target.clone(), KEY)
        .plan(fixed(100))
        .max_memory(500)
        .attempts(3)
        .build()
        .unwrap();
    let result = write_in(&mut writer, &data(1000, 5), 100).await;
    let error = match result {
        Err(error) => Error::from_io(error),
        Ok(()) => Error::from_io(writer.shutdown().await.unwrap_err()),
    };
    assert_eq!(error.oss_code(), Some("SlowDown"));
    assert!(error.is_retryable());
    assert_eq!(part_numbers(&target).iter().filter(|&&n| n == 2).count(), 3);
    assert!(target.uploads().is_empty());
}

#[tokio::test]
async fn dropping_the_writer_aborts_in_the_background() {
    let target = fake();
    let mut writer = fixed_writer(&target, 100);
    write_in(&mut writer, &data(750, 6), 50).await.unwrap();
    writer.sync_durable(false).await.unwrap();
    assert_eq!(target.uploads().len(), 1);
    let upload_id = writer.upload_id().unwrap().to_owned();
    drop(writer);
    eventually("the upload is aborted", || target.uploads().is_empty()).await;
    let abort = target
        .calls()
        .into_iter()
        .find(|c| c.operation == Operation::AbortMultipartUpload)
        .unwrap();
    assert_eq!(abort.upload_id.as_deref(), Some(upload_id.as_str()));
    assert_eq!(target.count(Operation::CompleteMultipartUpload), 0);
    assert!(target.object(KEY).is_none());
}

#[tokio::test]
async fn dropping_with_parts_in_flight_aborts_after_stopping_them() {
    let target = fake();
    let gate = target.gate(Operation::UploadPart);
    let mut writer = fixed_writer(&target, 100);
    write_in(&mut writer, &data(350, 7), 50).await.unwrap();
    eventually("parts wait at the gate", || gate.waiting() == 3).await;
    drop(writer);
    eventually("the upload is aborted", || target.uploads().is_empty()).await;
    assert_eq!(gate.waiting(), 0, "the part tasks were stopped");
    gate.open();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(target.uploads().is_empty());
}

#[tokio::test]
async fn keep_parts_on_drop_keeps_them_and_resume_continues() {
    let target = fake();
    let input = data(2_345, 8);
    let (first, rest) = input.split_at(1_234);
    let mut writer = ObjectWriter::builder(target.clone(), KEY)
        .plan(fixed(100))
        .max_memory(500)
        .keep_parts_on_drop(true)
        .build()
        .unwrap();
    write_in(&mut writer, first, 77).await.unwrap();
    // Twelve full parts durable; the 34-byte tail is lost with the writer.
    assert_eq!(writer.sync_durable(false).await.unwrap(), 1_200);
    let upload_id = writer.upload_id().unwrap().to_owned();
    drop(writer);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(target.uploads(), vec![(KEY.to_owned(), upload_id.clone())]);
    assert_eq!(target.count(Operation::AbortMultipartUpload), 0);

    let mut resumed = ObjectWriter::builder(target.clone(), KEY)
        .plan(fixed(100))
        .max_memory(500)
        .resume(upload_id.clone())
        .build()
        .unwrap();
    let offset = resumed.resumed_size().await.unwrap();
    assert_eq!(offset, 1_200);
    assert_eq!(resumed.upload_id(), Some(upload_id.as_str()));
    let progress = resumed.progress();
    assert_eq!(
        (progress.bytes_resumed, progress.parts_acknowledged),
        (1_200, 12)
    );
    write_in(&mut resumed, &first[1_200..], 10).await.unwrap();
    write_in(&mut resumed, rest, 91).await.unwrap();
    resumed.shutdown().await.unwrap();
    let outcome = resumed.outcome().unwrap();
    assert_eq!(outcome.upload_id.as_deref(), Some(upload_id.as_str()));
    assert_eq!(outcome.size, 2_345);
    assert_eq!(outcome.parts, 24);
    assert_eq!(outcome.crc64, crc64::checksum(&input));
    assert_eq!(target.object(KEY).unwrap().body, input);
    assert_eq!(target.count(Operation::InitiateMultipartUpload), 1);
}

#[tokio::test]
async fn resume_refuses_uploads_it_cannot_continue() {
    let target = fake();
    let options = ObjectOptions::default();
    let id = target.initiate(KEY, &options).await.unwrap();
    target
        .upload_part(KEY, &id, 1, Bytes::from(vec![1; 100]))
        .await
        .unwrap();
    target
        .upload_part(KEY, &id, 3, Bytes::from(vec![3; 100]))
        .await
        .unwrap();
    let mut writer = ObjectWriter::builder(target.clone(), KEY)
        .plan(fixed(100))
        .max_memory(500)
        .resume(id.clone())
        .build()
        .unwrap();
    let error = writer.resumed_size().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("part 2 is missing"), "{error}");
    assert_eq!(error.upload_id(), Some(id.as_str()));
    drop(writer);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        target.uploads().len(),
        1,
        "a listing failure never aborts the caller's upload"
    );

    let mut writer = ObjectWriter::builder(target.clone(), KEY)
        .plan(fixed(100))
        .max_memory(500)
        .resume("NO-SUCH-UPLOAD")
        .build()
        .unwrap();
    let error = Error::from_io(writer.write_all(b"abc").await.unwrap_err());
    assert_eq!(error.oss_code(), Some("NoSuchUpload"));
}

#[tokio::test]
async fn resumed_short_last_part_can_only_stay_last() {
    let target = fake();
    let id = target
        .initiate(KEY, &ObjectOptions::default())
        .await
        .unwrap();
    target
        .upload_part(KEY, &id, 1, Bytes::from(vec![1; 5]))
        .await
        .unwrap();
    let plan = PartSizePlan::unchecked(100, 100).with_growth_interval(10_000);
    // A checked-size plan's minimum is what matters; emulate with a plan whose minimum is 100.
    let checked = PartSizePlan::new(100 * 1024, 100 * 1024).unwrap();
    let mut writer = ObjectWriter::builder(target.clone(), KEY)
        .plan(checked)
        .max_memory(1 << 20)
        .resume(id.clone())
        .build()
        .unwrap();
    assert_eq!(writer.resumed_size().await.unwrap(), 5);
    writer.write_all(b"more").await.unwrap();
    let error = Error::from_io(writer.shutdown().await.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    assert!(target.uploads().is_empty(), "the failed upload is aborted");

    // With nothing written after it, the short part completes the object.
    let id = target
        .initiate(KEY, &ObjectOptions::default())
        .await
        .unwrap();
    target
        .upload_part(KEY, &id, 1, Bytes::from(vec![1; 5]))
        .await
        .unwrap();
    let mut writer = ObjectWriter::builder(target.clone(), KEY)
        .plan(plan)
        .max_memory(1000)
        .resume(id)
        .build()
        .unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(&target.object(KEY).unwrap().body[..], &[1; 5]);
}

#[tokio::test(start_paused = true)]
async fn wrong_part_crc_is_retried_then_fails() {
    let target = fake();
    target.inject(Fault::wrong_crc(Operation::UploadPart).on_part(2).times(1));
    let mut writer = fixed_writer(&target, 100);
    let input = data(500, 9);
    writer.write_all(&input).await.unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(writer.progress().retries, 1);
    assert_eq!(target.object(KEY).unwrap().body, input);

    let target = fake();
    target.inject(Fault::wrong_crc(Operation::UploadPart).on_part(2));
    let mut writer = fixed_writer(&target, 100);
    let result = writer.write_all(&input).await;
    let error = match result {
        Err(error) => error,
        Ok(()) => writer.shutdown().await.unwrap_err(),
    };
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    let error = Error::from_io(error);
    assert_eq!(error.kind(), ErrorKind::CrcMismatch);
    assert_eq!(error.part_number(), Some(2));
    assert!(target.uploads().is_empty());
}

#[tokio::test]
async fn wrong_object_crc_is_an_error() {
    let target = fake();
    target.inject(Fault::wrong_crc(Operation::CompleteMultipartUpload));
    let mut writer = fixed_writer(&target, 100);
    writer.write_all(&data(300, 10)).await.unwrap();
    let error = Error::from_io(writer.shutdown().await.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::CrcMismatch);
    assert_eq!(error.operation(), Some(Operation::CompleteMultipartUpload));
    assert!(writer.outcome().is_none());

    // A target that checks the CRC itself reports the mismatch as an error: not a lost answer,
    // so HeadObject is not asked to vouch for the object.
    let target = fake();
    target.inject(
        Fault::fail(Operation::CompleteMultipartUpload, || {
            Error::new(ErrorKind::CrcMismatch, "crc-64 mismatch")
        })
        .after_effect(),
    );
    let mut writer = fixed_writer(&target, 100);
    writer.write_all(&data(300, 10)).await.unwrap();
    let error = Error::from_io(writer.shutdown().await.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::CrcMismatch);
    assert_eq!(target.count(Operation::HeadObject), 0);
    assert_eq!(target.count(Operation::CompleteMultipartUpload), 1);

    let target = fake();
    target.inject(Fault::wrong_crc(Operation::PutObject));
    let mut writer = ObjectWriter::builder(target.clone(), KEY)
        .attempts(1)
        .build()
        .unwrap();
    writer.write_all(b"small").await.unwrap();
    let error = Error::from_io(writer.shutdown().await.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::CrcMismatch);
    assert_eq!(error.operation(), Some(Operation::PutObject));
}

#[tokio::test(start_paused = true)]
async fn lost_complete_answer_is_confirmed_with_head() {
    for (status, code) in [(503, "ServiceUnavailable"), (404, "NoSuchUpload")] {
        let target = fake();
        target.inject(
            Fault::fail(Operation::CompleteMultipartUpload, service(status, code))
                .after_effect()
                .times(1),
        );
        let mut writer = fixed_writer(&target, 100);
        let input = data(450, 11);
        writer.write_all(&input).await.unwrap();
        writer.shutdown().await.unwrap();
        let outcome = writer.outcome().unwrap();
        assert_eq!(outcome.etag, target.object(KEY).unwrap().etag, "{code}");
        assert_eq!(target.count(Operation::HeadObject), 1);
        assert_eq!(target.count(Operation::CompleteMultipartUpload), 1);
        assert_eq!(target.object(KEY).unwrap().body, input);
    }

    // Complete failed for real (before taking effect): HeadObject finds nothing, so it is sent
    // again.
    let target = fake();
    target.inject(Fault::fail(Operation::CompleteMultipartUpload, service(503, "x")).times(1));
    let mut writer = fixed_writer(&target, 100);
    writer.write_all(&data(450, 12)).await.unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(target.count(Operation::CompleteMultipartUpload), 2);
    assert_eq!(writer.progress().retries, 1);

    // A NoSuchUpload that HeadObject cannot explain is an error.
    let target = fake();
    target.inject(Fault::fail(
        Operation::CompleteMultipartUpload,
        service(404, "NoSuchUpload"),
    ));
    let mut writer = fixed_writer(&target, 100);
    writer.write_all(&data(450, 13)).await.unwrap();
    let error = Error::from_io(writer.shutdown().await.unwrap_err());
    assert_eq!(error.oss_code(), Some("NoSuchUpload"));
    assert!(target.uploads().is_empty());
}

#[tokio::test]
async fn plan_exhaustion_fails_before_sending_a_part_it_cannot_complete() {
    let plan = PartSizePlan::unchecked(10, 10).with_max_parts(5);
    assert_eq!(plan.ceiling(), 50);
    let build = |target: &Arc<MemoryTarget>| {
        ObjectWriter::builder(target.clone(), KEY)
            .plan(plan)
            .max_memory(40)
            .build()
            .unwrap()
    };
    // Exactly the ceiling fits.
    let target = fake();
    let mut writer = build(&target);
    writer.write_all(&data(50, 14)).await.unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(writer.outcome().unwrap().parts, 5);

    // One byte more fails, and part 5 was never sent.
    let target = fake();
    let mut writer = build(&target);
    writer.write_all(&data(50, 14)).await.unwrap();
    writer.sync_durable(false).await.unwrap();
    let error = Error::from_io(writer.write_all(b"!").await.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::TooLarge);
    assert!(error.to_string().contains("ceiling 50 bytes"), "{error}");
    assert!(error.upload_id().is_some());
    assert_eq!(part_numbers(&target), vec![1, 2, 3, 4]);
    assert!(target.uploads().is_empty());
    assert!(target.object(KEY).is_none());
}

#[tokio::test]
async fn plan_exhaustion_at_ten_thousand_parts() {
    let target = fake();
    let mut writer = ObjectWriter::builder(target.clone(), KEY)
        .plan(PartSizePlan::unchecked(1, 1))
        .max_memory(8)
        .build()
        .unwrap();
    writer.write_all(&data(10_000, 15)).await.unwrap();
    // Parts 1..=9,999 went out as they filled; part 10,000 waits to learn whether it is last.
    assert_eq!(writer.sync_durable(true).await.unwrap(), 9_999);
    let error = Error::from_io(writer.write_all(b"!").await.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::TooLarge);
    let numbers = part_numbers(&target);
    assert_eq!(numbers.len(), 9_999);
    assert_eq!(numbers.iter().max(), Some(&9_999));
    assert!(target.uploads().is_empty());
}

#[tokio::test]
async fn object_options_pass_through() {
    let mut options = ObjectOptions::default();
    options.content_type = Some("text/plain".into());
    options.metadata = vec![("origin".into(), "test".into())];
    options.forbid_overwrite = true;
    let target = fake();
    let mut writer = ObjectWriter::builder(target.clone(), "small")
        .options(options.clone())
        .build()
        .unwrap();
    writer.write_all(b"tiny").await.unwrap();
    writer.shutdown().await.unwrap();
    let mut writer = ObjectWriter::builder(target.clone(), "large")
        .plan(fixed(100))
        .max_memory(500)
        .options(options.clone())
        .build()
        .unwrap();
    writer.write_all(&data(250, 16)).await.unwrap();
    writer.shutdown().await.unwrap();
    for call in target.calls() {
        match call.operation {
            Operation::PutObject
            | Operation::InitiateMultipartUpload
            | Operation::CompleteMultipartUpload => {
                assert_eq!(call.options.as_ref(), Some(&options), "{call:?}")
            }
            _ => assert_eq!(call.options, None),
        }
    }
    assert_eq!(target.object("large").unwrap().options, options);

    // forbid_overwrite: the second write of "small" is refused (409, not retried).
    let mut writer = ObjectWriter::builder(target.clone(), "small")
        .options(options)
        .build()
        .unwrap();
    writer.write_all(b"again").await.unwrap();
    let error = writer.shutdown().await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(Error::from_io(error).oss_code(), Some("FileAlreadyExists"));
    assert_eq!(&target.object("small").unwrap().body[..], b"tiny");
}

#[tokio::test]
async fn flush_neither_cuts_parts_nor_waits() {
    let target = fake();
    let gate = target.gate(Operation::UploadPart);
    let mut writer = fixed_writer(&target, 100);
    writer.write_all(&data(250, 17)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), writer.flush())
        .await
        .expect("flush must not wait for parts in flight")
        .unwrap();
    eventually("two parts are at the gate", || gate.waiting() == 2).await;
    assert_eq!(
        target.count(Operation::UploadPart),
        2,
        "the 50-byte tail is not cut"
    );
    assert_eq!(writer.progress().bytes_durable, 0);
    gate.open();
    writer.shutdown().await.unwrap();
    assert_eq!(target.object(KEY).unwrap().part_sizes, vec![100, 100, 50]);
}

#[tokio::test]
async fn sync_durable_waits_and_cuts_the_tail() {
    let target = fake();
    let input = data(3_500, 18);
    let mut writer = fixed_writer(&target, 1000);
    writer.write_all(&input[..2_500]).await.unwrap();
    assert_eq!(writer.sync_durable(false).await.unwrap(), 2_000);
    assert_eq!(writer.progress().bytes_durable, 2_000);
    assert_eq!(writer.sync_durable(true).await.unwrap(), 2_500);
    writer.write_all(&input[2_500..]).await.unwrap();
    writer.shutdown().await.unwrap();
    let object = target.object(KEY).unwrap();
    assert_eq!(object.body, input);
    assert_eq!(object.part_sizes, vec![1000, 1000, 500, 1000]);

    // OSS plans never cut a part below 100 KB.
    let target = Arc::new(MemoryTarget::new());
    let mut writer = ObjectWriter::builder(target.clone(), KEY).build().unwrap();
    writer.write_all(&data(50 * 1024, 19)).await.unwrap();
    assert_eq!(writer.sync_durable(true).await.unwrap(), 0);
    assert_eq!(target.count(Operation::InitiateMultipartUpload), 0);
    writer.write_all(&data(100 * 1024, 20)).await.unwrap();
    assert_eq!(writer.sync_durable(true).await.unwrap(), 150 * 1024);
    writer.write_all(b"end").await.unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(target.object(KEY).unwrap().part_sizes, vec![150 * 1024, 3]);
}

#[tokio::test(start_paused = true)]
async fn deadline_fails_and_aborts() {
    let target = fake();
    let _gate = target.gate(Operation::UploadPart);
    let mut writer = ObjectWriter::builder(target.clone(), KEY)
        .plan(fixed(100))
        .max_memory(500)
        .deadline(Duration::from_secs(30))
        .build()
        .unwrap();
    writer.write_all(&data(250, 21)).await.unwrap();
    let error = writer.shutdown().await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    let error = Error::from_io(error);
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.to_string().contains("deadline of 30s"), "{error}");
    assert!(target.uploads().is_empty());
}

#[tokio::test]
async fn progress_is_published() {
    let target = fake();
    let mut writer = fixed_writer(&target, 100);
    let mut progress = writer.subscribe();
    writer.write_all(&data(1_050, 22)).await.unwrap();
    writer.shutdown().await.unwrap();
    assert!(progress.has_changed().unwrap());
    let last = progress.borrow_and_update().clone();
    assert!(last.finished);
    assert_eq!(last.bytes_accepted, 1_050);
    assert_eq!(last.bytes_durable, 1_050);
    assert_eq!(last.parts_sent, 11);
    assert_eq!(last.parts_acknowledged, 11);
    assert_eq!(last, writer.progress());
}

#[tokio::test]
async fn explicit_abort_waits_for_the_abort() {
    let target = fake();
    let mut writer = fixed_writer(&target, 100);
    writer.write_all(&data(350, 23)).await.unwrap();
    writer.sync_durable(false).await.unwrap();
    assert_eq!(target.uploads().len(), 1);
    writer.abort().await.unwrap();
    assert!(target.uploads().is_empty());
    assert_eq!(target.count(Operation::AbortMultipartUpload), 1);
}

#[test]
fn dropped_outside_a_runtime_leaves_the_upload_and_does_not_panic() {
    let target = fake();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let writer = runtime.block_on(async {
        let mut writer = fixed_writer(&target, 100);
        writer.write_all(&data(250, 24)).await.unwrap();
        writer.sync_durable(false).await.unwrap();
        writer
    });
    drop(runtime);
    let upload_id = writer.upload_id().unwrap().to_owned();
    drop(writer);
    assert_eq!(target.uploads(), vec![(KEY.to_owned(), upload_id)]);
}

#[test]
fn builder_names_each_broken_rule() {
    let target: Arc<dyn MultipartTarget> = Arc::new(MemoryTarget::new());
    let message = |builder: osspipe::upload::ObjectWriterBuilder| {
        let error = builder.build().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        error.to_string()
    };
    let b = || ObjectWriter::builder(target.clone(), KEY);
    assert!(message(ObjectWriter::builder(target.clone(), "")).contains("object key"));
    assert!(message(b().max_in_flight(0)).contains("max_in_flight"));
    assert!(message(b().attempts(0)).contains("attempts"));
    assert!(message(b().part_size(1000)).contains("part_size must be"));
    assert!(message(b().part_size(200 << 20)).contains("two parts"));
    assert!(message(b().max_memory(1 << 20)).contains("two parts"));
    assert!(message(b().size_hint(2 << 40)).contains("size_hint"));
    assert!(message(b().plan(fixed(10)).part_size(1 << 20)).contains("either a plan"));
    assert!(message(b().plan(fixed(100)).max_memory(150)).contains("two parts"));
    assert!(message(b().deadline(Duration::ZERO)).contains("deadline"));
    let writer = b().size_hint(100 << 30).build().unwrap();
    assert_eq!(writer.plan().first_part_size(), 128 << 20);
    let writer = b().build().unwrap();
    assert!(writer.plan().ceiling() >= 1 << 40);
    assert_eq!(writer.max_memory(), 256 << 20);
}

/// Delegates to a [`MemoryTarget`] and records where each part's bytes live.
#[derive(Debug)]
struct Recording {
    inner: MemoryTarget,
    bodies: Mutex<Vec<(u32, usize)>>,
}

#[async_trait]
impl MultipartTarget for Recording {
    async fn put_object(
        &self,
        key: &str,
        body: Bytes,
        options: &ObjectOptions,
    ) -> osspipe::Result<ObjectReceipt> {
        self.inner.put_object(key, body, options).await
    }
    async fn initiate(&self, key: &str, options: &ObjectOptions) -> osspipe::Result<String> {
        self.inner.initiate(key, options).await
    }
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> osspipe::Result<PartReceipt> {
        self.bodies
            .lock()
            .unwrap()
            .push((part_number, body.as_ptr() as usize));
        self.inner
            .upload_part(key, upload_id, part_number, body)
            .await
    }
    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartReceipt],
        options: &ObjectOptions,
    ) -> osspipe::Result<ObjectReceipt> {
        self.inner.complete(key, upload_id, parts, options).await
    }
    async fn abort(&self, key: &str, upload_id: &str) -> osspipe::Result<()> {
        self.inner.abort(key, upload_id).await
    }
    async fn list_parts(&self, key: &str, upload_id: &str) -> osspipe::Result<Vec<PartReceipt>> {
        self.inner.list_parts(key, upload_id).await
    }
    async fn head(&self, key: &str) -> osspipe::Result<Option<ObjectHead>> {
        self.inner.head(key).await
    }
}

fn recording() -> Arc<Recording> {
    Arc::new(Recording {
        inner: MemoryTarget::with_min_part_size(1),
        bodies: Mutex::new(Vec::new()),
    })
}

#[tokio::test]
async fn write_bytes_slices_whole_parts_without_copying() {
    let target = recording();
    let mut writer = ObjectWriter::builder(target.clone(), KEY)
        .plan(fixed(1000))
        .max_memory(10_000)
        .build()
        .unwrap();
    let head = Bytes::from(data(500, 25));
    let body = Bytes::from(data(3_200, 26));
    let base = body.as_ptr() as usize;
    writer.write_bytes(head.clone()).await.unwrap();
    writer.write_bytes(body.clone()).await.unwrap();
    writer.shutdown().await.unwrap();
    let mut bodies = target.bodies.lock().unwrap().clone();
    bodies.sort_unstable();
    // Part 1 = 500 copied + 500 copied from `body`; parts 2-3 are slices of `body`; the
    // 700-byte tail is copied.
    assert_eq!(bodies[1], (2, base + 500));
    assert_eq!(bodies[2], (3, base + 1_500));
    assert_ne!(bodies[0].1, base);
    assert_ne!(bodies[3].1, base + 2_500);
    let object = target.inner.object(KEY).unwrap();
    assert_eq!(object.body, [head, body].concat());
    assert_eq!(object.part_sizes, vec![1000, 1000, 1000, 700]);
}

#[tokio::test]
async fn part_buffers_are_reused() {
    let target = recording();
    let mut writer = ObjectWriter::builder(target.clone(), KEY)
        .plan(fixed(4096))
        .max_memory(5 * 4096)
        .max_in_flight(2)
        .build()
        .unwrap();
    write_in(&mut writer, &data(60 * 4096, 27), 1000)
        .await
        .unwrap();
    writer.shutdown().await.unwrap();
    let bodies = target.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 60);
    let mut addresses: Vec<usize> = bodies.iter().map(|(_, address)| *address).collect();
    addresses.sort_unstable();
    addresses.dedup();
    // One buffer filling, two in flight, two pooled: steady state allocates nothing per part.
    assert!(
        addresses.len() <= 6,
        "{} distinct part buffers for 60 parts",
        addresses.len()
    );
}

#[tokio::test]
async fn explicit_abort_reports_an_abort_that_failed() {
    let target = fake();
    let mut writer = fixed_writer(&target, 100);
    writer.write_all(&data(350, 29)).await.unwrap();
    writer.sync_durable(false).await.unwrap();
    let (_, upload_id) = target.uploads()[0].clone();
    target.inject(Fault::fail(Operation::AbortMultipartUpload, || {
        Error::new(ErrorKind::InvalidInput, "abort refused")
    }));
    let error = writer.abort().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    assert_eq!(error.upload_id(), Some(upload_id.as_str()));
    assert_eq!(error.operation(), Some(Operation::AbortMultipartUpload));
    assert_eq!(target.uploads().len(), 1, "the upload is left and reported");
}

/// Yields `data` in reads of the sizes in `steps` (cycled), then ends or fails.
struct ChunkedReader {
    data: Vec<u8>,
    offset: usize,
    steps: Vec<usize>,
    step: usize,
    fail_at_end: bool,
}

impl tokio::io::AsyncRead for ChunkedReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.offset == this.data.len() && this.fail_at_end {
            return std::task::Poll::Ready(Err(std::io::Error::other("producer crashed")));
        }
        let want = this.steps[this.step % this.steps.len()];
        this.step += 1;
        let n = want.min(buf.remaining()).min(this.data.len() - this.offset);
        buf.put_slice(&this.data[this.offset..this.offset + n]);
        this.offset += n;
        std::task::Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_from_reads_into_the_parts() {
    let target = fake();
    let input = data(10_500, 41);
    let mut writer = fixed_writer(&target, 1000);
    let mut reader = ChunkedReader {
        data: input.clone(),
        offset: 0,
        steps: vec![1, 333, 4096, 7, 999],
        step: 0,
        fail_at_end: false,
    };
    assert_eq!(writer.copy_from(&mut reader).await.unwrap(), 10_500);
    assert_eq!(writer.progress().bytes_accepted, 10_500);
    writer.shutdown().await.unwrap();
    let outcome = writer.outcome().unwrap().clone();
    assert_eq!(outcome.parts, 11);
    assert_eq!(outcome.crc64, crc64::checksum(&input));
    let object = target.object(KEY).unwrap();
    assert_eq!(object.body, input);
    assert_eq!(object.part_sizes, [vec![1000; 10], vec![500]].concat());
    assert!(writer.progress().peak_buffered_bytes <= 5000);
}

#[tokio::test]
async fn copy_from_a_small_reader_is_one_put_object() {
    let target = Arc::new(MemoryTarget::new());
    let mut writer = ObjectWriter::builder(target.clone(), KEY).build().unwrap();
    let mut reader: &[u8] = b"hello oss\n";
    assert_eq!(writer.copy_from(&mut reader).await.unwrap(), 10);
    writer.shutdown().await.unwrap();
    assert_eq!(writer.outcome().unwrap().crc64, 17223430255209957478);
    assert_eq!(target.count(Operation::PutObject), 1);
    assert_eq!(&target.object(KEY).unwrap().body[..], b"hello oss\n");
}

#[tokio::test]
async fn copy_from_reports_a_read_error_without_latching_it() {
    let target = fake();
    let mut writer = fixed_writer(&target, 100);
    let mut reader = ChunkedReader {
        data: data(250, 43),
        offset: 0,
        steps: vec![64],
        step: 0,
        fail_at_end: true,
    };
    let error = writer.copy_from(&mut reader).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Io, "{error}");
    assert_eq!(
        writer.progress().bytes_accepted,
        250,
        "what was read is accepted"
    );
    // The caller decides: here it aborts, and nothing is left.
    writer.abort().await.unwrap();
    assert!(target.uploads().is_empty());
    assert!(target.object(KEY).is_none());
}
