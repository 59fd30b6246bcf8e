//! The streaming writer fed arbitrary writes, flushes and durability points under arbitrary
//! small part-size plans, against the in-memory fake. Whatever the sequence, the writer must not
//! panic, must keep within its memory budget, and must end with the exact bytes as the object,
//! or (only when the stream outgrew the plan) fail with `TooLarge` and leave no upload behind.
#![no_main]

use std::sync::Arc;

use bytes::Bytes;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use osspipe::upload::{MemoryTarget, ObjectWriter, PartSizePlan};
use osspipe::{Error, ErrorKind};
use tokio::io::AsyncWriteExt;

#[derive(Debug, Arbitrary)]
enum Step {
    /// `write_all` of this many bytes.
    Write(u16),
    /// `write_bytes` of this many bytes (whole parts are sliced, not copied).
    WriteBytes(u16),
    Flush,
    /// `sync_durable(cut_tail)`.
    SyncDurable(bool),
}

#[derive(Debug, Arbitrary)]
struct Input {
    first_part: u8,
    cap_factor: u8,
    growth_interval: u8,
    max_parts: u8,
    max_in_flight: u8,
    memory_parts: u8,
    steps: Vec<Step>,
}

fuzz_target!(|input: Input| {
    let first = u64::from(input.first_part).max(1);
    let plan = PartSizePlan::unchecked(first, first * u64::from(input.cap_factor % 4 + 1))
        .with_growth_interval(u32::from(input.growth_interval % 8 + 1))
        .with_max_parts(if input.max_parts == 0 {
            10_000
        } else {
            u32::from(input.max_parts)
        });
    let max_memory = plan.max_part_size() * u64::from(input.memory_parts % 4 + 2);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let target = Arc::new(MemoryTarget::with_min_part_size(1));
        let mut writer = ObjectWriter::builder(target.clone(), "fuzz")
            .plan(plan)
            .max_memory(max_memory)
            .max_in_flight(usize::from(input.max_in_flight % 8) + 1)
            .build()
            .unwrap();
        let mut expected: Vec<u8> = Vec::new();
        let mut cut = false;
        let mut result: Result<(), Error> = Ok(());
        for step in &input.steps {
            let next = |len: u16, expected: &Vec<u8>| -> Vec<u8> {
                (expected.len()..expected.len() + usize::from(len))
                    .map(|i| (i % 251) as u8)
                    .collect()
            };
            result = match *step {
                Step::Write(len) => {
                    let bytes = next(len, &expected);
                    let written = writer.write_all(&bytes).await.map_err(Error::from_io);
                    expected.extend_from_slice(&bytes);
                    written
                }
                Step::WriteBytes(len) => {
                    let bytes = next(len, &expected);
                    expected.extend_from_slice(&bytes);
                    writer.write_bytes(Bytes::from(bytes)).await
                }
                Step::Flush => writer.flush().await.map_err(Error::from_io),
                Step::SyncDurable(cut_tail) => {
                    let before = writer.progress();
                    let durable = writer.sync_durable(cut_tail).await;
                    if let Ok(durable) = durable {
                        cut |= cut_tail && durable > before.bytes_durable;
                        assert!(durable <= before.bytes_accepted);
                    }
                    durable.map(|_| ())
                }
            };
            assert!(writer.progress().peak_buffered_bytes <= max_memory);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = writer.shutdown().await.map_err(Error::from_io);
        }
        assert!(writer.progress().peak_buffered_bytes <= max_memory);
        match result {
            Ok(()) => {
                let object = target.object("fuzz").expect("completed object");
                assert_eq!(object.body, expected);
                assert_eq!(writer.outcome().unwrap().size, expected.len() as u64);
            }
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::TooLarge, "{error}");
                // Parts cut short by sync_durable lower the ceiling; otherwise only a stream
                // longer than the plan's ceiling may fail.
                assert!(cut || expected.len() as u64 > plan.ceiling());
                assert!(target.uploads().is_empty());
                assert!(target.object("fuzz").is_none());
            }
        }
    });
});
