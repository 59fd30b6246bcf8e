//! `osspipe recover`: completes an unfinished upload from the parts that reached the server.
//!
//! ListParts gives the parts. The object is made of the contiguous prefix 1..=k: part 1, 2,
//! ... up to the first missing number, and also stopping after a part shorter than OSS's
//! 100 KiB minimum (such a part can only be the last). Parts after the gap are not in the
//! Complete request, and OSS discards parts that Complete does not list: they are deleted, so
//! the object is exactly the stream's first bytes, never a stream with a hole. `--dry-run`
//! shows the choice first.
//!
//! The object's CRC-64 is checked: the part CRCs from ListParts are combined and compared with
//! the `x-oss-hash-crc64ecma` that Complete returns.

use osspipe::crc64;
use osspipe::limits::MIN_PART_SIZE;
use osspipe::target::{ObjectOptions, PartReceipt};
use osspipe::xml::ListedPart;

use crate::cli::RecoverArgs;
use crate::connect::{destination, Connection, EnvCredentials};
use crate::parse::{human_bytes, shell_quote};
use crate::progress::eprintln_clean;
use crate::report::Failure;

/// Runs `osspipe recover`.
///
/// # Errors
/// A [`Failure`]: 2 for bad usage, 1 when listing or completing fails (or nothing can be
/// recovered).
pub(crate) async fn run(args: RecoverArgs, quiet: bool) -> Result<(), Failure> {
    let destination = destination(&args.connect, EnvCredentials::from_env())?;
    let connection = Connection::open(destination, quiet).await?;
    let result = recover(&args, &connection).await;
    connection.close().await;
    result
}

/// Which listed parts make the object.
#[derive(Debug, PartialEq, Eq)]
struct Selection {
    /// Parts 1..=k, in order.
    kept: usize,
    /// Why the prefix stops before the last listed part, if it does.
    stopped_because: Option<String>,
}

/// The contiguous prefix of `parts` (sorted by number) that can be completed.
fn select(parts: &[ListedPart]) -> Selection {
    let mut stopped_because = None;
    let mut kept = 0;
    for (index, part) in parts.iter().enumerate() {
        let expected = index as u32 + 1;
        if part.part_number != expected {
            stopped_because = Some(format!("part {expected} is missing"));
            break;
        }
        if let Some(previous) = index.checked_sub(1).map(|i| &parts[i]) {
            if previous.size < MIN_PART_SIZE {
                stopped_because = Some(format!(
                    "part {} has {} bytes, below OSS's 100 KiB minimum, so it can only be the \
                     last part",
                    previous.part_number, previous.size
                ));
                break;
            }
        }
        kept = index + 1;
    }
    Selection {
        kept,
        stopped_because,
    }
}

async fn recover(args: &RecoverArgs, connection: &Connection) -> Result<(), Failure> {
    let url = &args.url;
    let client = &connection.client;
    let mut parts = client
        .list_parts(&url.bucket, &url.key, &args.upload_id)
        .await?;
    parts.sort_by_key(|p| p.part_number);
    let selection = select(&parts);
    let abort_command = format!(
        "osspipe abort {} --upload-id {}{}",
        shell_quote(&url.to_string()),
        shell_quote(&args.upload_id),
        connection.repeat_flags()
    );
    if selection.kept == 0 {
        let why = match &selection.stopped_because {
            Some(why) => format!("{why}, so no part can start the object"),
            None => "it has no parts".to_owned(),
        };
        return Err(Failure::failed(format!(
            "nothing to recover in upload {} of {url}: {why}",
            args.upload_id
        ))
        .note(format!("hint: delete the upload with: {abort_command}")));
    }
    let (kept, dropped) = parts.split_at(selection.kept);
    let receipts = kept
        .iter()
        .map(|part| {
            let crc64 = part.hash_crc64ecma.ok_or_else(|| {
                Failure::failed(format!(
                    "ListParts gave no CRC-64 for part {} of upload {}, so the object could not \
                     be verified",
                    part.part_number, args.upload_id
                ))
            })?;
            Ok(PartReceipt {
                part_number: part.part_number,
                etag: part.etag.clone(),
                crc64,
                size: part.size,
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let size: u64 = receipts.iter().map(|p| p.size).sum();
    let expected_crc = receipts
        .iter()
        .fold(0, |crc, part| crc64::combine(crc, part.crc64, part.size));
    let dropped_bytes: u64 = dropped.iter().map(|p| p.size).sum();
    let dropped_note = selection.stopped_because.as_ref().map(|why| {
        format!(
            "{} part{} after it ({}) {} not part of the object: {why}; Complete discards them",
            dropped.len(),
            if dropped.len() == 1 { "" } else { "s" },
            human_bytes(dropped_bytes),
            if dropped.len() == 1 { "is" } else { "are" },
        )
    });

    if args.dry_run {
        println!(
            "would complete {url} from parts 1..={}: {} ({size} bytes), crc64 {expected_crc}",
            selection.kept,
            human_bytes(size)
        );
        if let Some(note) = &dropped_note {
            println!("{note}");
        }
        return Ok(());
    }

    let mut options = ObjectOptions::default();
    options.forbid_overwrite = args.forbid_overwrite;
    options.acl = args.acl.clone();
    // The client compares Complete's x-oss-hash-crc64ecma with the combined part CRCs and
    // fails with a CRC mismatch when they differ.
    let receipt = client
        .complete_multipart_upload(&url.bucket, &url.key, &args.upload_id, &receipts, &options)
        .await?;
    let verified = receipt.crc64 == Some(expected_crc);
    if receipt.crc64.is_none() {
        eprintln_clean(
            "osspipe: warning: Complete returned no x-oss-hash-crc64ecma, so the object's CRC-64 \
             was not verified",
        );
    }
    if let Some(note) = &dropped_note {
        eprintln_clean(&format!("osspipe: note: {note}"));
    }
    let etag = receipt.etag.trim_matches('"');
    if args.json {
        let value = serde_json::json!({
            "bucket": url.bucket,
            "key": url.key,
            "upload_id": args.upload_id,
            "size": size,
            "parts": selection.kept,
            "etag": etag,
            "crc64": expected_crc.to_string(),
            "crc64_verified": verified,
            "discarded_parts": dropped.len(),
            "discarded_bytes": dropped_bytes,
        });
        println!("{value}");
    } else {
        println!(
            "{url}: recovered {} ({size} bytes) from parts 1..={} of upload {}, crc64 \
             {expected_crc}{}, etag {etag}",
            human_bytes(size),
            selection.kept,
            args.upload_id,
            if verified { " (verified)" } else { "" },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(part_number: u32, size: u64) -> ListedPart {
        ListedPart {
            part_number,
            size,
            ..ListedPart::default()
        }
    }

    const FULL: u64 = 8 << 20;

    #[test]
    fn every_part_present_is_kept() {
        let parts = [part(1, FULL), part(2, FULL), part(3, 10)];
        assert_eq!(
            select(&parts),
            Selection {
                kept: 3,
                stopped_because: None
            }
        );
    }

    #[test]
    fn the_prefix_stops_at_a_gap() {
        let parts = [part(1, FULL), part(2, FULL), part(4, FULL), part(5, FULL)];
        let selection = select(&parts);
        assert_eq!(selection.kept, 2);
        assert_eq!(
            selection.stopped_because.as_deref(),
            Some("part 3 is missing")
        );
    }

    #[test]
    fn a_short_part_can_only_be_last() {
        let parts = [part(1, FULL), part(2, 1000), part(3, FULL)];
        let selection = select(&parts);
        assert_eq!(selection.kept, 2);
        assert!(selection
            .stopped_because
            .unwrap()
            .contains("part 2 has 1000 bytes"));
    }

    #[test]
    fn no_part_one_means_nothing_to_recover() {
        assert_eq!(select(&[part(2, FULL)]).kept, 0);
        assert_eq!(
            select(&[]),
            Selection {
                kept: 0,
                stopped_because: None
            }
        );
    }
}
