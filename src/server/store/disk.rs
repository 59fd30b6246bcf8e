//! The directory store's on-disk layout, its atomic writes and its recovery at startup.
//!
//! ```text
//! <root>/
//!   .tmp/                          scratch for atomic writes and deletions (emptied at start)
//!   <bucket>/                      one folder per bucket (names are [a-z0-9-], so safe as is)
//!     bucket.json                  { "created": <unix seconds> }
//!     blobs/<32 hex>               immutable data: PutObject bodies and parts
//!     objects/<sha256(key)>.json   an object: metadata + the ordered list of its blobs
//!     uploads/<upload id>/upload.json       an in-progress multipart upload
//!     uploads/<upload id>/part-<n>.json     one of its parts (metadata + blob id)
//! ```
//!
//! No path is ever built from a key: keys are hashed (SHA-256) into file names and stored
//! inside the JSON, so `../`, absolute paths, NUL or `%2F..%2F` in a key are just bytes.
//! Blob ids and upload ids are generated here (hex) and checked when read back.
//!
//! Atomicity: every JSON file is written to `.tmp/` and renamed into place, so an object
//! appears (or changes) all at once; its blobs are written before its record, and a crash in
//! between leaves only unreferenced blobs, which the next start deletes. Complete writes the
//! object's record, then removes the upload; if a crash falls between the two, the next start
//! sees an upload whose parts already belong to the object and finishes removing it. There is
//! no fsync: the goal is surviving a killed process, not a power cut.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::blob::Blob;
use super::{unix_now, BucketState, ObjectMeta, ObjectVersion, Part, PartMeta, Upload, UploadMeta};

const TMP_DIR: &str = ".tmp";
const BLOBS_DIR: &str = "blobs";
const OBJECTS_DIR: &str = "objects";
const UPLOADS_DIR: &str = "uploads";
const BUCKET_FILE: &str = "bucket.json";
const UPLOAD_FILE: &str = "upload.json";

#[derive(Serialize, Deserialize)]
struct BucketRecord {
    created: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct PieceRecord {
    pub(crate) blob: String,
    pub(crate) size: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct ObjectRecord {
    pub(crate) meta: ObjectMeta,
    pub(crate) pieces: Vec<PieceRecord>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct PartRecord {
    pub(crate) meta: PartMeta,
    pub(crate) blob: String,
}

/// Whether `id` is one of the hex ids this store generates (blob and upload ids).
pub(crate) fn is_hex_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The record file name of a key.
fn object_file_name(key: &str) -> String {
    format!("{}.json", hex::encode(Sha256::digest(key.as_bytes())))
}

pub(crate) fn bucket_dir(root: &Path, bucket: &str) -> PathBuf {
    root.join(bucket)
}

pub(crate) fn blob_path(root: &Path, bucket: &str, id: &str) -> PathBuf {
    root.join(bucket).join(BLOBS_DIR).join(id)
}

fn upload_dir(root: &Path, bucket: &str, upload_id: &str) -> PathBuf {
    root.join(bucket).join(UPLOADS_DIR).join(upload_id)
}

fn scratch_path(root: &Path) -> PathBuf {
    root.join(TMP_DIR)
        .join(format!("{:032x}", fastrand::u128(..)))
}

fn json_error(e: serde_json::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Writes `value` as JSON to a scratch file and renames it to `target`.
fn write_json_atomic<T: Serialize>(root: &Path, target: &Path, value: &T) -> io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(json_error)?;
    let scratch = scratch_path(root);
    std::fs::write(&scratch, bytes)?;
    if let Err(e) = std::fs::rename(&scratch, target) {
        let _ = std::fs::remove_file(&scratch);
        return Err(e);
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<T> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(json_error)
}

/// Moves a directory out of sight (atomic), then deletes it.
fn remove_dir_atomic(root: &Path, dir: &Path) -> io::Result<()> {
    let scratch = scratch_path(root);
    match std::fs::rename(dir, &scratch) {
        Ok(()) => std::fs::remove_dir_all(&scratch),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) fn create_bucket(root: &Path, bucket: &str, created: u64) -> io::Result<()> {
    let dir = bucket_dir(root, bucket);
    for sub in [BLOBS_DIR, OBJECTS_DIR, UPLOADS_DIR] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    write_json_atomic(root, &dir.join(BUCKET_FILE), &BucketRecord { created })
}

pub(crate) fn write_object(root: &Path, bucket: &str, record: &ObjectRecord) -> io::Result<()> {
    let target = bucket_dir(root, bucket)
        .join(OBJECTS_DIR)
        .join(object_file_name(&record.meta.key));
    write_json_atomic(root, &target, record)
}

pub(crate) fn remove_object(root: &Path, bucket: &str, key: &str) -> io::Result<()> {
    let target = bucket_dir(root, bucket)
        .join(OBJECTS_DIR)
        .join(object_file_name(key));
    match std::fs::remove_file(target) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub(crate) fn write_upload(root: &Path, bucket: &str, meta: &UploadMeta) -> io::Result<()> {
    let dir = upload_dir(root, bucket, &meta.upload_id);
    std::fs::create_dir_all(&dir)?;
    write_json_atomic(root, &dir.join(UPLOAD_FILE), meta)
}

pub(crate) fn write_part(
    root: &Path,
    bucket: &str,
    upload_id: &str,
    record: &PartRecord,
) -> io::Result<()> {
    let target =
        upload_dir(root, bucket, upload_id).join(format!("part-{}.json", record.meta.part_number));
    write_json_atomic(root, &target, record)
}

pub(crate) fn remove_upload(root: &Path, bucket: &str, upload_id: &str) -> io::Result<()> {
    remove_dir_atomic(root, &upload_dir(root, bucket, upload_id))
}

/// Prepares `root` and loads every bucket, repairing what a crash may have left behind.
pub(crate) fn load(root: &Path) -> io::Result<BTreeMap<String, BucketState>> {
    std::fs::create_dir_all(root)?;
    let tmp = root.join(TMP_DIR);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    let mut buckets = BTreeMap::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !entry.file_type()?.is_dir() || !crate::server::request::is_valid_bucket_name(&name) {
            continue;
        }
        buckets.insert(name.clone(), load_bucket(root, &name)?);
    }
    Ok(buckets)
}

fn load_bucket(root: &Path, bucket: &str) -> io::Result<BucketState> {
    let dir = bucket_dir(root, bucket);
    for sub in [BLOBS_DIR, OBJECTS_DIR, UPLOADS_DIR] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let created = read_json::<BucketRecord>(&dir.join(BUCKET_FILE))
        .map(|r| r.created)
        .unwrap_or_else(|_| unix_now());

    // Every blob file on disk, with its length.
    let mut on_disk: HashMap<String, u64> = HashMap::new();
    for entry in std::fs::read_dir(dir.join(BLOBS_DIR))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_hex_id(&name) {
            on_disk.insert(name, entry.metadata()?.len());
        } else {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let mut blobs: HashMap<String, Arc<Blob>> = HashMap::new();
    let mut blob = |id: &str, size: u64| -> Option<Arc<Blob>> {
        if !is_hex_id(id) || on_disk.get(id) != Some(&size) {
            return None;
        }
        Some(
            blobs
                .entry(id.to_owned())
                .or_insert_with(|| {
                    Arc::new(Blob::file(id.to_owned(), blob_path(root, bucket, id), size))
                })
                .clone(),
        )
    };

    let mut state = BucketState {
        created,
        objects: BTreeMap::new(),
        uploads: BTreeMap::new(),
    };
    for entry in std::fs::read_dir(dir.join(OBJECTS_DIR))? {
        let path = entry?.path();
        let record: ObjectRecord = match read_json(&path) {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!("skipping unreadable object record {}: {e}", path.display());
                continue;
            }
        };
        if path.file_name().and_then(|n| n.to_str()) != Some(&object_file_name(&record.meta.key)) {
            tracing::warn!("skipping misnamed object record {}", path.display());
            continue;
        }
        let pieces: Option<Vec<Arc<Blob>>> = record
            .pieces
            .iter()
            .map(|piece| blob(&piece.blob, piece.size))
            .collect();
        match pieces {
            Some(pieces) => {
                let key = record.meta.key.clone();
                state.objects.insert(
                    key,
                    Arc::new(ObjectVersion {
                        meta: record.meta,
                        pieces,
                    }),
                );
            }
            None => tracing::warn!(
                "skipping object {:?}: a blob is missing or has the wrong size",
                record.meta.key
            ),
        }
    }

    for entry in std::fs::read_dir(dir.join(UPLOADS_DIR))? {
        let entry = entry?;
        let upload_dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta: Option<UploadMeta> = if is_hex_id(&name) {
            read_json(&upload_dir.join(UPLOAD_FILE)).ok()
        } else {
            None
        };
        let Some(meta) = meta.filter(|m| m.upload_id == name) else {
            tracing::warn!("removing unreadable upload {}", upload_dir.display());
            remove_dir_atomic(root, &upload_dir)?;
            continue;
        };
        let mut parts = BTreeMap::new();
        for part_entry in std::fs::read_dir(&upload_dir)? {
            let part_path = part_entry?.path();
            let file_name = part_path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if file_name == UPLOAD_FILE {
                continue;
            }
            let record: Option<PartRecord> = read_json(&part_path).ok();
            let part = record.and_then(|record| {
                let expected = format!("part-{}.json", record.meta.part_number);
                let blob = blob(&record.blob, record.meta.size)?;
                (expected == file_name).then_some(Part {
                    meta: record.meta,
                    blob,
                })
            });
            match part {
                Some(part) => {
                    parts.insert(part.meta.part_number, part);
                }
                None => {
                    tracing::warn!("dropping unreadable part record {}", part_path.display());
                    let _ = std::fs::remove_file(&part_path);
                }
            }
        }
        // A crash between Complete's two steps: the object already owns these parts.
        let completed = state.objects.get(&meta.key).is_some_and(|object| {
            parts
                .values()
                .any(|part| object.pieces.iter().any(|p| Arc::ptr_eq(p, &part.blob)))
        });
        if completed {
            tracing::info!(
                "finishing the removal of completed upload {} of {:?}",
                meta.upload_id,
                meta.key
            );
            remove_dir_atomic(root, &upload_dir)?;
            continue;
        }
        state
            .uploads
            .insert(meta.upload_id.clone(), Upload { meta, parts });
    }

    // Blobs nobody refers to: the leftovers of crashed writes and deferred deletions.
    let referenced: HashSet<&str> = state
        .objects
        .values()
        .flat_map(|o| o.pieces.iter())
        .chain(
            state
                .uploads
                .values()
                .flat_map(|u| u.parts.values().map(|p| &p.blob)),
        )
        .filter_map(|b| b.file_id())
        .collect();
    for id in on_disk.keys() {
        if !referenced.contains(id.as_str()) {
            let _ = std::fs::remove_file(blob_path(root, bucket, id));
        }
    }
    Ok(state)
}
