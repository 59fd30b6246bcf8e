//! Poll-level tests of the writer's backpressure: `poll_write`, `poll_flush` and `poll_shutdown`
//! driven by hand, with UploadPart held at a gate the test controls.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use osspipe::upload::{Fault, Gate, MemoryTarget, ObjectWriter, PartSizePlan};
use osspipe::{Error, ErrorKind, Operation};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_test::task::{self, Spawn};

const PART: u64 = 1000;
/// Room for the part being filled and two in flight.
const BUDGET: u64 = 3 * PART;

fn setup() -> (Arc<MemoryTarget>, Gate, ObjectWriter) {
    let target = Arc::new(MemoryTarget::with_min_part_size(1));
    let gate = target.gate(Operation::UploadPart);
    let writer = ObjectWriter::builder(target.clone(), "k")
        .plan(PartSizePlan::unchecked(PART, PART).with_growth_interval(10_000))
        .max_memory(BUDGET)
        .max_in_flight(8)
        .build()
        .unwrap();
    (target, gate, writer)
}

fn poll_write(
    task: &mut Spawn<()>,
    writer: &mut ObjectWriter,
    buf: &[u8],
) -> Poll<std::io::Result<usize>> {
    task.enter(|cx, _| Pin::new(writer).poll_write(cx, buf))
}

/// Lets the runtime run the part tasks until the writer's task has been woken.
async fn until_woken<T>(task: &Spawn<T>) {
    for _ in 0..10_000 {
        if task.is_woken() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the writer was never woken");
}

async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn full_budget_is_pending_until_a_part_is_acknowledged() {
    let (target, gate, mut writer) = setup();
    let data = vec![7u8; 1 << 20];
    let mut task = task::spawn(());

    // One huge write is accepted only up to the budget: parts 1 and 2 in flight, part 3 full.
    match poll_write(&mut task, &mut writer, &data) {
        Poll::Ready(Ok(n)) => assert_eq!(n as u64, BUDGET),
        other => panic!("expected the budget's worth, got {other:?}"),
    }
    let progress = writer.progress();
    assert_eq!(progress.parts_in_flight, 2);
    assert_eq!(progress.buffered_bytes, BUDGET);

    // The budget is full: Pending, and nothing wakes the writer while the parts are held.
    assert!(poll_write(&mut task, &mut writer, &data[3000..]).is_pending());
    until("both parts wait at the gate", || gate.waiting() == 2).await;
    assert!(!task.is_woken());
    assert!(poll_write(&mut task, &mut writer, &data[3000..]).is_pending());

    // One part acknowledged: the writer is woken and makes progress (part 3 goes out, part 4
    // fills in part 1's reclaimed buffer).
    gate.release(1);
    until_woken(&task).await;
    match poll_write(&mut task, &mut writer, &data[3000..]) {
        Poll::Ready(Ok(n)) => assert_eq!(n as u64, PART),
        other => panic!("expected one part's worth, got {other:?}"),
    }
    let progress = writer.progress();
    assert_eq!(progress.parts_acknowledged, 1);
    assert_eq!(progress.bytes_durable, PART);
    assert_eq!(progress.bytes_accepted, 4 * PART);
    assert!(progress.peak_buffered_bytes <= BUDGET, "{progress:?}");
    assert!(poll_write(&mut task, &mut writer, &data[4000..]).is_pending());

    gate.open();
    writer.write_all(&data[4000..10_000]).await.unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(target.object("k").unwrap().body, data[..10_000]);
    assert!(writer.progress().peak_buffered_bytes <= BUDGET);
    assert!(target.peak_bytes_in_flight() <= 2 * PART);
}

#[tokio::test]
async fn flush_is_ready_while_the_budget_is_full() {
    let (_target, gate, mut writer) = setup();
    let mut task = task::spawn(());
    assert!(poll_write(&mut task, &mut writer, &[1; 5000]).is_ready());
    assert!(poll_write(&mut task, &mut writer, &[1; 5000]).is_pending());
    let flushed = task.enter(|cx, _| Pin::new(&mut writer).poll_flush(cx));
    assert!(matches!(flushed, Poll::Ready(Ok(()))), "{flushed:?}");
    assert_eq!(writer.progress().parts_sent, 2, "flush sends nothing early");
    gate.open();
}

#[tokio::test]
async fn flush_sends_a_full_part_once_a_slot_is_free() {
    let (target, gate, mut writer) = setup();
    let mut task = task::spawn(());
    assert!(poll_write(&mut task, &mut writer, &[1; 3000]).is_ready());
    until("both parts wait at the gate", || gate.waiting() == 2).await;
    gate.release(1);
    until("part 1 is acknowledged", || gate.passed() == 1).await;
    tokio::task::yield_now().await;
    // The producer is idle; flush hands the full part 3 to the freed slot without waiting.
    let flushed = task.enter(|cx, _| Pin::new(&mut writer).poll_flush(cx));
    assert!(matches!(flushed, Poll::Ready(Ok(()))));
    assert_eq!(writer.progress().parts_sent, 3);
    gate.open();
    writer.shutdown().await.unwrap();
    assert_eq!(target.object("k").unwrap().part_sizes, vec![1000; 3]);
}

#[tokio::test]
async fn shutdown_is_pending_until_every_part_is_acknowledged() {
    let (target, gate, mut writer) = setup();
    let mut task = task::spawn(());
    assert!(poll_write(&mut task, &mut writer, &[2; 2500]).is_ready());
    assert!(task
        .enter(|cx, _| Pin::new(&mut writer).poll_shutdown(cx))
        .is_pending());
    // Two parts in flight is the limit, so the 500-byte tail waits for a slot.
    until("two parts wait at the gate", || gate.waiting() == 2).await;
    assert!(task
        .enter(|cx, _| Pin::new(&mut writer).poll_shutdown(cx))
        .is_pending());
    assert_eq!(writer.progress().parts_sent, 2);
    gate.release(1);
    until_woken(&task).await;
    assert!(task
        .enter(|cx, _| Pin::new(&mut writer).poll_shutdown(cx))
        .is_pending());
    assert_eq!(writer.progress().parts_sent, 3);
    assert_eq!(target.count(Operation::CompleteMultipartUpload), 0);
    gate.release(2);
    loop {
        until_woken(&task).await;
        match task.enter(|cx, _| Pin::new(&mut writer).poll_shutdown(cx)) {
            Poll::Ready(result) => break result.unwrap(),
            Poll::Pending => continue,
        }
    }
    assert_eq!(target.count(Operation::CompleteMultipartUpload), 1);
    assert_eq!(writer.outcome().unwrap().parts, 3);
    // Shut down: writing is an error, not a panic.
    let written = poll_write(&mut task, &mut writer, b"late");
    assert!(matches!(written, Poll::Ready(Err(_))));
}

#[tokio::test]
async fn a_failed_part_wakes_the_pending_writer_with_its_error() {
    let (target, gate, mut writer) = setup();
    target.inject(
        Fault::fail(Operation::UploadPart, || {
            MemoryTarget::service_error(403, "AccessDenied")
        })
        .on_part(1),
    );
    let mut task = task::spawn(());
    assert!(poll_write(&mut task, &mut writer, &[3; 5000]).is_ready());
    assert!(poll_write(&mut task, &mut writer, &[3; 5000]).is_pending());
    gate.release(1);
    let error = loop {
        until_woken(&task).await;
        match poll_write(&mut task, &mut writer, &[3; 5000]) {
            Poll::Ready(Err(error)) => break Error::from_io(error),
            Poll::Ready(Ok(n)) => panic!("accepted {n} bytes after a fatal error"),
            Poll::Pending => continue,
        }
    };
    assert_eq!(error.oss_code(), Some("AccessDenied"));
    assert_eq!(error.part_number(), Some(1));
    // The abort finished before the error was returned; part 2 never passed the gate.
    assert!(target.uploads().is_empty());
    assert_eq!(gate.waiting(), 0);
    assert_eq!(gate.passed(), 1);
}

#[tokio::test]
async fn write_bytes_waits_for_the_budget_too() {
    let (target, gate, mut writer) = setup();
    let data = Bytes::from(vec![4u8; 10 * PART as usize]);
    let mut write = task::spawn(writer.write_bytes(data.clone()));
    assert!(write.poll().is_pending());
    until("two parts wait at the gate", || gate.waiting() == 2).await;
    assert!(write.poll().is_pending());
    for _ in 0..10 {
        gate.release(1);
        until_woken(&write).await;
        if write.poll().is_ready() {
            break;
        }
    }
    drop(write);
    gate.open();
    writer.shutdown().await.unwrap();
    assert_eq!(target.object("k").unwrap().body, data);
    assert!(writer.progress().peak_buffered_bytes <= BUDGET);
    assert!(target.peak_bytes_in_flight() <= 2 * PART);
    assert_eq!(target.peak_parts_in_flight(), 2);
}

#[tokio::test]
async fn dropping_a_pending_write_loses_nothing_accepted() {
    let (target, gate, mut writer) = setup();
    let data: Vec<u8> = (0..6000u32).map(|i| i as u8).collect();
    let accepted = {
        let mut write = task::spawn(writer.write_all(&data));
        assert!(write.poll().is_pending());
        drop(write); // e.g. the losing branch of a select!
        writer.progress().bytes_accepted as usize
    };
    assert_eq!(accepted, 3000);
    gate.open();
    writer.write_all(&data[accepted..]).await.unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(target.object("k").unwrap().body, data);
    let error = writer.write_all(b"x").await.unwrap_err();
    assert_eq!(Error::from_io(error).kind(), ErrorKind::Closed);
}
