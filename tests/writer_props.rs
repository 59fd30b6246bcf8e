//! Property tests of the writer's chunking invariants against the in-memory fake: for any input,
//! any split of it into writes and any small part-size plan, the object read back equals the
//! input, every part but the last has exactly its planned size, part numbers run 1..=N, and the
//! memory budget holds. With random faults, an upload is all or nothing.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use osspipe::crc64;
use osspipe::upload::{Fault, MemoryTarget, ObjectWriter, PartSizePlan};
use osspipe::{Error, ErrorKind, Operation};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;

const KEY: &str = "prop/object";

#[derive(Debug, Clone)]
struct Case {
    data: Vec<u8>,
    writes: Vec<usize>,
    first: u64,
    cap_factor: u64,
    growth: u32,
    max_parts: u32,
    max_in_flight: usize,
    memory_parts: u64,
    memory_slack: u64,
    zero_copy: bool,
    /// Feed the writer through `ObjectWriter::copy_from` (reads of the `writes` sizes).
    read_from: bool,
    delay_seed: Option<u64>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        vec(any::<u8>(), 0..6000),
        vec(1usize..2500, 1..20),
        1u64..700,
        1u64..4,
        1u32..6,
        prop_oneof![Just(10_000u32), 1u32..12],
        1usize..6,
        2u64..5,
        0u64..100,
        any::<bool>(),
        any::<bool>(),
        option::of(any::<u64>()),
    )
        .prop_map(
            |(
                data,
                writes,
                first,
                cap_factor,
                growth,
                max_parts,
                max_in_flight,
                memory_parts,
                memory_slack,
                zero_copy,
                read_from,
                delay_seed,
            )| Case {
                data,
                writes,
                first,
                cap_factor,
                growth,
                max_parts,
                max_in_flight,
                memory_parts,
                memory_slack,
                zero_copy,
                read_from,
                delay_seed,
            },
        )
}

impl Case {
    fn plan(&self) -> PartSizePlan {
        PartSizePlan::unchecked(self.first, self.first * self.cap_factor)
            .with_growth_interval(self.growth)
            .with_max_parts(self.max_parts)
    }

    fn max_memory(&self) -> u64 {
        self.plan().max_part_size() * self.memory_parts + self.memory_slack
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // Paused time: injected delays and backoff cost nothing, and runs are deterministic.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// A reader that returns `data` in reads of the given sizes (cycled).
struct PiecesReader<'a> {
    data: &'a [u8],
    sizes: std::iter::Cycle<std::slice::Iter<'a, usize>>,
}

impl tokio::io::AsyncRead for PiecesReader<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let size = *self.sizes.next().expect("at least one size");
        let n = size.min(buf.remaining()).min(self.data.len());
        let (piece, rest) = self.data.split_at(n);
        buf.put_slice(piece);
        self.data = rest;
        std::task::Poll::Ready(Ok(()))
    }
}

/// Writes `data` in pieces of the given sizes (cycled), by `write_all`, `write_bytes` or
/// `copy_from`, then shuts down.
async fn stream(
    writer: &mut ObjectWriter,
    data: &[u8],
    writes: &[usize],
    zero_copy: bool,
    read_from: bool,
) -> Result<(), Error> {
    if read_from {
        let mut reader = PiecesReader {
            data,
            sizes: writes.iter().cycle(),
        };
        writer.copy_from(&mut reader).await?;
        return writer.shutdown().await.map_err(Error::from_io);
    }
    let mut offset = 0;
    for size in writes.iter().cycle() {
        if offset == data.len() {
            break;
        }
        let piece = &data[offset..(offset + size).min(data.len())];
        if zero_copy {
            writer.write_bytes(Bytes::copy_from_slice(piece)).await?;
        } else {
            writer.write_all(piece).await.map_err(Error::from_io)?;
        }
        offset += piece.len();
    }
    writer.shutdown().await.map_err(Error::from_io)
}

fn check(case: Case) -> Result<(), TestCaseError> {
    runtime().block_on(async move {
        let plan = case.plan();
        let max_memory = case.max_memory();
        let target = Arc::new(MemoryTarget::with_min_part_size(case.first));
        if let Some(seed) = case.delay_seed {
            // Parts finish out of order.
            target.inject(
                Fault::delay(Operation::UploadPart, Duration::from_millis(3))
                    .with_probability(0.5, seed),
            );
        }
        let mut writer = ObjectWriter::builder(target.clone(), KEY)
            .plan(plan)
            .max_memory(max_memory)
            .max_in_flight(case.max_in_flight)
            .build()
            .unwrap();
        let result = stream(
            &mut writer,
            &case.data,
            &case.writes,
            case.zero_copy,
            case.read_from,
        )
        .await;
        let progress = writer.progress();
        prop_assert!(progress.peak_buffered_bytes <= max_memory, "{progress:?}");
        prop_assert!(target.peak_bytes_in_flight() <= max_memory);
        prop_assert!(target.peak_parts_in_flight() <= case.max_in_flight);
        let part_numbers: Vec<u32> = target
            .calls()
            .iter()
            .filter(|c| c.operation == Operation::UploadPart)
            .filter_map(|c| c.part_number)
            .collect();

        if case.data.len() as u64 > plan.ceiling() {
            let error = result.unwrap_err();
            prop_assert_eq!(error.kind(), ErrorKind::TooLarge);
            prop_assert!(target.uploads().is_empty());
            prop_assert!(target.object(KEY).is_none());
            // The plan's last part is never sent: it could not be the object's last.
            prop_assert!(part_numbers.iter().all(|&n| n < plan.max_parts()));
            return Ok(());
        }
        result.unwrap();
        let outcome = writer.outcome().unwrap().clone();
        let object = target.object(KEY).unwrap();
        prop_assert!(object.body == case.data, "object differs from the input");
        prop_assert_eq!(outcome.size, case.data.len() as u64);
        prop_assert_eq!(outcome.crc64, crc64::checksum(&case.data));
        prop_assert!(target.uploads().is_empty());

        let single_put = (case.data.len() as u64) < plan.part_size(1) || plan.max_parts() == 1;
        if single_put {
            prop_assert_eq!(outcome.parts, 0);
            prop_assert_eq!(target.count(Operation::InitiateMultipartUpload), 0);
            prop_assert_eq!(target.count(Operation::PutObject), 1);
            return Ok(());
        }
        let count = outcome.parts;
        prop_assert_eq!(object.part_sizes.len(), count as usize);
        for (index, &size) in object.part_sizes.iter().enumerate() {
            let planned = plan.part_size(index as u32 + 1);
            if index + 1 < count as usize {
                prop_assert_eq!(size, planned, "part {}", index + 1);
            } else {
                prop_assert!(
                    size > 0 && size <= planned,
                    "last part {} of {}",
                    size,
                    planned
                );
            }
        }
        let mut sorted = part_numbers.clone();
        sorted.sort_unstable();
        prop_assert_eq!(sorted, (1..=count).collect::<Vec<_>>());
        let complete = target
            .calls()
            .into_iter()
            .find(|c| c.operation == Operation::CompleteMultipartUpload)
            .unwrap();
        prop_assert_eq!(complete.parts, (1..=count).collect::<Vec<_>>());
        prop_assert_eq!(target.count(Operation::InitiateMultipartUpload), 1);
        let progress = writer.progress();
        prop_assert_eq!(progress.bytes_durable, case.data.len() as u64);
        prop_assert_eq!(progress.parts_acknowledged, count);
        Ok(())
    })
}

#[derive(Debug, Clone)]
struct Faults {
    seed: u64,
    part_errors: f64,
    wrong_crc: f64,
    initiate_errors: f64,
    complete_errors: f64,
    complete_after_effect: bool,
    put_errors: f64,
    fatal_part: Option<u32>,
}

fn faults() -> impl Strategy<Value = Faults> {
    (
        any::<u64>(),
        0.0..0.4,
        0.0..0.2,
        0.0..0.5,
        0.0..0.6,
        any::<bool>(),
        0.0..0.5,
        option::weighted(0.2, 1u32..8),
    )
        .prop_map(
            |(
                seed,
                part_errors,
                wrong_crc,
                initiate_errors,
                complete_errors,
                complete_after_effect,
                put_errors,
                fatal_part,
            )| Faults {
                seed,
                part_errors,
                wrong_crc,
                initiate_errors,
                complete_errors,
                complete_after_effect,
                put_errors,
                fatal_part,
            },
        )
}

fn check_all_or_nothing(
    data: Vec<u8>,
    writes: Vec<usize>,
    faults: Faults,
) -> Result<(), TestCaseError> {
    runtime().block_on(async move {
        let target = Arc::new(MemoryTarget::with_min_part_size(1));
        let unavailable = || MemoryTarget::service_error(503, "ServiceUnavailable");
        let seed = faults.seed;
        target.inject(
            Fault::fail(Operation::UploadPart, unavailable)
                .with_probability(faults.part_errors, seed),
        );
        target.inject(
            Fault::wrong_crc(Operation::UploadPart).with_probability(faults.wrong_crc, seed ^ 1),
        );
        target.inject(
            Fault::fail(Operation::InitiateMultipartUpload, unavailable)
                .with_probability(faults.initiate_errors, seed ^ 2),
        );
        let complete = Fault::fail(Operation::CompleteMultipartUpload, unavailable)
            .with_probability(faults.complete_errors, seed ^ 3);
        target.inject(if faults.complete_after_effect {
            complete.after_effect()
        } else {
            complete
        });
        target.inject(
            Fault::fail(Operation::PutObject, unavailable)
                .with_probability(faults.put_errors, seed ^ 4),
        );
        if let Some(part) = faults.fatal_part {
            target.inject(
                Fault::fail(Operation::UploadPart, || {
                    MemoryTarget::service_error(400, "InvalidArgument")
                })
                .on_part(part),
            );
        }
        let mut writer = ObjectWriter::builder(target.clone(), KEY)
            .plan(PartSizePlan::unchecked(100, 300).with_growth_interval(2))
            .max_memory(1000)
            .attempts(3)
            .build()
            .unwrap();
        let result = stream(&mut writer, &data, &writes, false, false).await;
        // Wait out anything still running in the background.
        tokio::time::sleep(Duration::from_secs(60)).await;
        prop_assert!(target.uploads().is_empty(), "an upload was left behind");
        match result {
            Ok(()) => {
                let object = target.object(KEY).unwrap();
                prop_assert!(object.body == data, "object differs from the input");
                prop_assert_eq!(writer.outcome().unwrap().crc64, crc64::checksum(&data));
            }
            Err(error) => {
                prop_assert!(
                    target.object(KEY).is_none(),
                    "a failed upload left an object: {}",
                    error
                );
                prop_assert!(writer.outcome().is_none());
                // Latched.
                let again = Error::from_io(writer.write_all(b"x").await.unwrap_err());
                prop_assert_eq!(again.kind(), error.kind());
                prop_assert_eq!(again.oss_code(), error.oss_code());
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn object_equals_input_for_any_split_and_plan(case in case()) {
        check(case)?;
    }

    #[test]
    fn faults_leave_all_or_nothing(
        data in vec(any::<u8>(), 0..3000),
        writes in vec(1usize..700, 1..8),
        faults in faults(),
    ) {
        check_all_or_nothing(data, writes, faults)?;
    }
}
