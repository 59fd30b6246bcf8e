//! Where the server keeps buckets, objects and multipart uploads.
//!
//! One index serves both stores: an in-memory map of buckets, objects (each an ordered list of
//! immutable blobs) and uploads (each a map of parts, each one blob). The two stores differ only
//! in where blob bytes live ([`blob`]) and in whether changes are also written to disk
//! ([`disk`]; the directory store reloads the index from it at start).
//!
//! Every change goes through one commit lock: check against the index, write to disk, then
//! update the index. So the disk always holds the same history as the index, and two racing
//! changes (two Completes of the same key, a part arriving while its upload is aborted) are
//! decided in one order. Request bodies are streamed into blobs *before* taking the lock, so the
//! lock only covers small metadata writes.

pub(crate) mod blob;
mod disk;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

pub(crate) use blob::{stream_range, Blob, BlobWriter, BlockPool};

/// Seconds since the epoch (OSS times have a one-second resolution).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The object-level headers stored at PutObject / InitiateMultipartUpload and returned by HEAD
/// and GET.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredHeaders {
    pub(crate) content_type: String,
    pub(crate) storage_class: String,
    pub(crate) acl: Option<String>,
    /// The raw `x-oss-tagging` value (`k1=v1&k2=v2`).
    pub(crate) tagging: Option<String>,
    /// Headers returned as they were sent: `Cache-Control`, `Content-Disposition`,
    /// `Content-Encoding`, `Content-Language`, `Expires`, `x-oss-meta-*` (lower-cased names)
    /// and the `x-oss-server-side-*` encryption headers.
    pub(crate) echo: Vec<(String, String)>,
}

/// `x-oss-object-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ObjectType {
    /// Written by PutObject.
    Normal,
    /// Written by CompleteMultipartUpload.
    Multipart,
}

impl ObjectType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ObjectType::Normal => "Normal",
            ObjectType::Multipart => "Multipart",
        }
    }
}

/// Everything about an object except its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ObjectMeta {
    pub(crate) key: String,
    pub(crate) size: u64,
    /// Quoted, as sent in `ETag`.
    pub(crate) etag: String,
    pub(crate) crc64: u64,
    /// Base64 MD5, for objects written by PutObject in MD5 mode only.
    pub(crate) content_md5: Option<String>,
    pub(crate) object_type: ObjectType,
    /// Unix seconds.
    pub(crate) last_modified: u64,
    pub(crate) headers: StoredHeaders,
}

/// One version of an object: its metadata and the blobs its bytes are, in order.
#[derive(Debug)]
pub(crate) struct ObjectVersion {
    pub(crate) meta: ObjectMeta,
    pub(crate) pieces: Vec<Arc<Blob>>,
}

/// An in-progress multipart upload, as Initiate recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadMeta {
    pub(crate) key: String,
    pub(crate) upload_id: String,
    /// Unix seconds.
    pub(crate) initiated: u64,
    pub(crate) headers: StoredHeaders,
}

/// One uploaded part, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PartMeta {
    pub(crate) part_number: u32,
    pub(crate) size: u64,
    /// Quoted, as sent in `ETag`.
    pub(crate) etag: String,
    pub(crate) crc64: u64,
    /// Unix seconds.
    pub(crate) last_modified: u64,
}

#[derive(Debug)]
pub(crate) struct Part {
    pub(crate) meta: PartMeta,
    pub(crate) blob: Arc<Blob>,
}

#[derive(Debug)]
pub(crate) struct Upload {
    pub(crate) meta: UploadMeta,
    pub(crate) parts: BTreeMap<u32, Part>,
}

/// One bucket's objects and uploads.
#[derive(Debug)]
pub(crate) struct BucketState {
    #[allow(dead_code)] // kept on disk for a future ListBuckets
    pub(crate) created: u64,
    pub(crate) objects: BTreeMap<String, Arc<ObjectVersion>>,
    pub(crate) uploads: BTreeMap<String, Upload>,
}

impl BucketState {
    fn new(created: u64) -> Self {
        Self {
            created,
            objects: BTreeMap::new(),
            uploads: BTreeMap::new(),
        }
    }
}

/// Which parts Complete assembles.
#[derive(Debug, Clone)]
pub(crate) enum PartSelection {
    /// The request's list: `(part number, ETag as sent)`, already checked to be ascending.
    Listed(Vec<(u32, String)>),
    /// `x-oss-complete-all: yes`: every uploaded part in part-number order.
    All,
}

/// What Complete needs besides the parts.
#[derive(Debug, Clone)]
pub(crate) struct CompleteOptions {
    pub(crate) forbid_overwrite: bool,
    pub(crate) acl: Option<String>,
}

/// Why a store operation was refused.
#[derive(Debug)]
pub(crate) enum StoreError {
    NoSuchBucket,
    NoSuchUpload,
    InvalidPart {
        part_number: u32,
        etag: String,
    },
    EntityTooSmall {
        part_number: u32,
        size: u64,
        etag: String,
    },
    FileAlreadyExists,
    Io(io::Error),
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e)
    }
}

/// Whether an ETag sent in a Complete list names the stored part: quotes stripped, case
/// ignored (oss2 re-adds quotes, Go escapes them, some clients drop them).
fn etag_matches(stored: &str, sent: &str) -> bool {
    let strip = |s: &str| s.trim().trim_matches('"').to_ascii_uppercase();
    strip(stored) == strip(sent)
}

/// The ETag of a multipart object: `"<MD5 of the parts' binary MD5s>-<N>"`, upper-case, as OSS
/// writes it. Opaque part ETags that are not hex are hashed as text. Zero parts give the MD5 of
/// nothing and `-0` (what OSS answers there is unconfirmed).
fn multipart_etag(parts: &[&Part]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        let text = part.meta.etag.trim_matches('"');
        match hex::decode(text) {
            Ok(bytes) => md5.update(bytes),
            Err(_) => md5.update(text.as_bytes()),
        }
    }
    format!("\"{}-{}\"", hex::encode_upper(md5.finalize()), parts.len())
}

enum Backend {
    Memory(Arc<BlockPool>),
    Directory(PathBuf),
}

/// The store: the index, its commit lock, and the backend.
pub(crate) struct Store {
    backend: Backend,
    auto_create_buckets: bool,
    state: Mutex<BTreeMap<String, BucketState>>,
    commit: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.backend {
            Backend::Memory(_) => "memory".to_owned(),
            Backend::Directory(root) => root.display().to_string(),
        };
        f.debug_struct("Store").field("backend", &kind).finish()
    }
}

impl Store {
    /// A store that keeps everything in memory and forgets it when dropped.
    pub(crate) fn memory(auto_create_buckets: bool) -> Self {
        Self {
            backend: Backend::Memory(Arc::new(BlockPool::default())),
            auto_create_buckets,
            state: Mutex::new(BTreeMap::new()),
            commit: tokio::sync::Mutex::new(()),
        }
    }

    /// A store in `root`, loading (and repairing) what an earlier run left there.
    pub(crate) async fn directory(root: PathBuf, auto_create_buckets: bool) -> io::Result<Self> {
        let load_root = root.clone();
        let buckets = tokio::task::spawn_blocking(move || disk::load(&load_root))
            .await
            .map_err(io::Error::other)??;
        Ok(Self {
            backend: Backend::Directory(root),
            auto_create_buckets,
            state: Mutex::new(buckets),
            commit: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, BucketState>> {
        // The index is only changed by whole assignments after the disk write succeeded, so a
        // panic elsewhere cannot leave it half-updated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a disk write on the blocking pool (directory store only).
    async fn persist(
        &self,
        write: impl FnOnce(&Path) -> io::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        match &self.backend {
            Backend::Memory(_) => Ok(()),
            Backend::Directory(root) => {
                let root = root.clone();
                tokio::task::spawn_blocking(move || write(&root))
                    .await
                    .map_err(io::Error::other)?
            }
        }
    }

    /// Creates a bucket; creating an existing one is a no-op.
    pub(crate) async fn create_bucket(&self, bucket: &str) -> io::Result<()> {
        let _commit = self.commit.lock().await;
        if self.lock().contains_key(bucket) {
            return Ok(());
        }
        let created = unix_now();
        let name = bucket.to_owned();
        self.persist(move |root| disk::create_bucket(root, &name, created))
            .await?;
        self.lock()
            .insert(bucket.to_owned(), BucketState::new(created));
        Ok(())
    }

    /// Succeeds if the bucket exists, creating it first when buckets are created on first use.
    pub(crate) async fn ensure_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        if self.lock().contains_key(bucket) {
            return Ok(());
        }
        if !self.auto_create_buckets {
            return Err(StoreError::NoSuchBucket);
        }
        self.create_bucket(bucket).await?;
        Ok(())
    }

    /// Runs `f` on a bucket's index under the lock (keep it short: listings).
    pub(crate) fn with_bucket<R>(
        &self,
        bucket: &str,
        f: impl FnOnce(&BucketState) -> R,
    ) -> Result<R, StoreError> {
        let state = self.lock();
        let b = state.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        Ok(f(b))
    }

    /// The current version of an object.
    pub(crate) fn object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Arc<ObjectVersion>>, StoreError> {
        self.with_bucket(bucket, |b| b.objects.get(key).cloned())
    }

    /// An upload's metadata, if `upload_id` is an upload of `key`.
    pub(crate) fn upload(
        &self,
        bucket: &str,
        upload_id: &str,
        key: &str,
    ) -> Result<Option<UploadMeta>, StoreError> {
        self.with_bucket(bucket, |b| {
            b.uploads
                .get(upload_id)
                .filter(|u| u.meta.key == key)
                .map(|u| u.meta.clone())
        })
    }

    /// A writer for a new blob in `bucket`.
    pub(crate) async fn new_blob(&self, bucket: &str) -> io::Result<BlobWriter> {
        match &self.backend {
            Backend::Memory(pool) => Ok(BlobWriter::memory(pool.clone())),
            Backend::Directory(root) => {
                let id = format!("{:032x}", fastrand::u128(..));
                BlobWriter::file(id.clone(), disk::blob_path(root, bucket, &id)).await
            }
        }
    }

    /// Makes `blob` the object `meta.key` (PutObject).
    pub(crate) async fn put_object(
        &self,
        bucket: &str,
        meta: ObjectMeta,
        blob: Blob,
        forbid_overwrite: bool,
    ) -> Result<Arc<ObjectVersion>, StoreError> {
        let blob = Arc::new(blob);
        let result = self
            .put_object_inner(bucket, meta, blob.clone(), forbid_overwrite)
            .await;
        if result.is_err() {
            blob.discard();
        }
        result
    }

    async fn put_object_inner(
        &self,
        bucket: &str,
        meta: ObjectMeta,
        blob: Arc<Blob>,
        forbid_overwrite: bool,
    ) -> Result<Arc<ObjectVersion>, StoreError> {
        let _commit = self.commit.lock().await;
        let exists = self.with_bucket(bucket, |b| b.objects.contains_key(&meta.key))?;
        if forbid_overwrite && exists {
            return Err(StoreError::FileAlreadyExists);
        }
        let record = disk::ObjectRecord {
            meta: meta.clone(),
            pieces: piece_records(std::slice::from_ref(&blob)),
        };
        let name = bucket.to_owned();
        self.persist(move |root| disk::write_object(root, &name, &record))
            .await?;
        let version = Arc::new(ObjectVersion {
            meta,
            pieces: vec![blob],
        });
        self.replace_object(bucket, version.clone());
        Ok(version)
    }

    /// Puts `version` in the index and discards the blobs of the version it replaces.
    fn replace_object(&self, bucket: &str, version: Arc<ObjectVersion>) {
        let old = {
            let mut state = self.lock();
            let Some(b) = state.get_mut(bucket) else {
                return;
            };
            b.objects.insert(version.meta.key.clone(), version)
        };
        if let Some(old) = old {
            old.pieces.iter().for_each(|p| p.discard());
        }
    }

    /// DeleteObject; deleting a missing object is not an error.
    pub(crate) async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        let _commit = self.commit.lock().await;
        if !self.with_bucket(bucket, |b| b.objects.contains_key(key))? {
            return Ok(());
        }
        let (name, owned_key) = (bucket.to_owned(), key.to_owned());
        self.persist(move |root| disk::remove_object(root, &name, &owned_key))
            .await?;
        let old = self
            .lock()
            .get_mut(bucket)
            .and_then(|b| b.objects.remove(key));
        if let Some(old) = old {
            old.pieces.iter().for_each(|p| p.discard());
        }
        Ok(())
    }

    /// InitiateMultipartUpload; `forbid_overwrite` refuses if the object exists already.
    pub(crate) async fn initiate(
        &self,
        bucket: &str,
        meta: UploadMeta,
        forbid_overwrite: bool,
    ) -> Result<(), StoreError> {
        let _commit = self.commit.lock().await;
        let exists = self.with_bucket(bucket, |b| b.objects.contains_key(&meta.key))?;
        if forbid_overwrite && exists {
            return Err(StoreError::FileAlreadyExists);
        }
        let (name, record) = (bucket.to_owned(), meta.clone());
        self.persist(move |root| disk::write_upload(root, &name, &record))
            .await?;
        if let Some(b) = self.lock().get_mut(bucket) {
            b.uploads.insert(
                meta.upload_id.clone(),
                Upload {
                    meta,
                    parts: BTreeMap::new(),
                },
            );
        }
        Ok(())
    }

    /// UploadPart: records `blob` as part `meta.part_number`, replacing an earlier one.
    pub(crate) async fn put_part(
        &self,
        bucket: &str,
        upload_id: &str,
        key: &str,
        meta: PartMeta,
        blob: Blob,
    ) -> Result<(), StoreError> {
        let blob = Arc::new(blob);
        let result = self
            .put_part_inner(bucket, upload_id, key, meta, blob.clone())
            .await;
        if result.is_err() {
            blob.discard();
        }
        result
    }

    async fn put_part_inner(
        &self,
        bucket: &str,
        upload_id: &str,
        key: &str,
        meta: PartMeta,
        blob: Arc<Blob>,
    ) -> Result<(), StoreError> {
        let _commit = self.commit.lock().await;
        if self.upload(bucket, upload_id, key)?.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let record = disk::PartRecord {
            meta: meta.clone(),
            blob: blob.file_id().unwrap_or_default().to_owned(),
        };
        let (name, id) = (bucket.to_owned(), upload_id.to_owned());
        self.persist(move |root| disk::write_part(root, &name, &id, &record))
            .await?;
        let old = self
            .lock()
            .get_mut(bucket)
            .and_then(|b| b.uploads.get_mut(upload_id))
            .and_then(|u| u.parts.insert(meta.part_number, Part { meta, blob }));
        if let Some(old) = old {
            old.blob.discard();
        }
        Ok(())
    }

    /// CompleteMultipartUpload: checks the selection, then turns the parts into the object's
    /// pieces without copying a byte. Parts left out are discarded.
    pub(crate) async fn complete(
        &self,
        bucket: &str,
        upload_id: &str,
        key: &str,
        selection: &PartSelection,
        options: &CompleteOptions,
    ) -> Result<Arc<ObjectVersion>, StoreError> {
        let _commit = self.commit.lock().await;
        let (version, unlisted) = {
            let state = self.lock();
            let b = state.get(bucket).ok_or(StoreError::NoSuchBucket)?;
            let upload = b
                .uploads
                .get(upload_id)
                .filter(|u| u.meta.key == key)
                .ok_or(StoreError::NoSuchUpload)?;
            let chosen: Vec<&Part> = match selection {
                PartSelection::Listed(list) => list
                    .iter()
                    .map(|(number, etag)| {
                        upload
                            .parts
                            .get(number)
                            .filter(|part| etag_matches(&part.meta.etag, etag))
                            .ok_or_else(|| StoreError::InvalidPart {
                                part_number: *number,
                                etag: etag.clone(),
                            })
                    })
                    .collect::<Result<_, _>>()?,
                PartSelection::All => upload.parts.values().collect(),
            };
            // Zero parts is allowed: both official v2 SDKs' uploaders complete an empty stream
            // of unknown size this way and expect an empty object with CRC 0.
            let but_last = &chosen[..chosen.len().saturating_sub(1)];
            if let Some(small) = but_last
                .iter()
                .find(|p| p.meta.size < crate::limits::MIN_PART_SIZE)
            {
                return Err(StoreError::EntityTooSmall {
                    part_number: small.meta.part_number,
                    size: small.meta.size,
                    etag: small.meta.etag.clone(),
                });
            }
            if options.forbid_overwrite && b.objects.contains_key(key) {
                return Err(StoreError::FileAlreadyExists);
            }
            let crc64 = chosen.iter().fold(0u64, |acc, p| {
                crate::crc64::combine(acc, p.meta.crc64, p.meta.size)
            });
            let mut headers = upload.meta.headers.clone();
            if options.acl.is_some() {
                headers.acl.clone_from(&options.acl);
            }
            let meta = ObjectMeta {
                key: key.to_owned(),
                size: chosen.iter().map(|p| p.meta.size).sum(),
                etag: multipart_etag(&chosen),
                crc64,
                content_md5: None,
                object_type: ObjectType::Multipart,
                last_modified: unix_now(),
                headers,
            };
            let pieces: Vec<Arc<Blob>> = chosen.iter().map(|p| p.blob.clone()).collect();
            let unlisted: Vec<Arc<Blob>> = upload
                .parts
                .values()
                .filter(|p| !pieces.iter().any(|piece| Arc::ptr_eq(piece, &p.blob)))
                .map(|p| p.blob.clone())
                .collect();
            (Arc::new(ObjectVersion { meta, pieces }), unlisted)
        };
        let record = disk::ObjectRecord {
            meta: version.meta.clone(),
            pieces: piece_records(&version.pieces),
        };
        let (name, id) = (bucket.to_owned(), upload_id.to_owned());
        // The object record first: from the rename on, the object is complete and visible; the
        // upload's removal afterwards is cleanup that a restart would finish (see `disk`).
        self.persist(move |root| {
            disk::write_object(root, &name, &record)?;
            disk::remove_upload(root, &name, &id)
        })
        .await?;
        if let Some(b) = self.lock().get_mut(bucket) {
            b.uploads.remove(upload_id);
        }
        self.replace_object(bucket, version.clone());
        unlisted.iter().for_each(|blob| blob.discard());
        Ok(version)
    }

    /// AbortMultipartUpload: forgets the upload and discards its parts.
    pub(crate) async fn abort(
        &self,
        bucket: &str,
        upload_id: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let _commit = self.commit.lock().await;
        if self.upload(bucket, upload_id, key)?.is_none() {
            return Err(StoreError::NoSuchUpload);
        }
        let (name, id) = (bucket.to_owned(), upload_id.to_owned());
        self.persist(move |root| disk::remove_upload(root, &name, &id))
            .await?;
        let removed = self
            .lock()
            .get_mut(bucket)
            .and_then(|b| b.uploads.remove(upload_id));
        if let Some(upload) = removed {
            upload.parts.values().for_each(|p| p.blob.discard());
        }
        Ok(())
    }

    /// ListParts: the upload and its parts in part-number order.
    pub(crate) fn list_parts(
        &self,
        bucket: &str,
        upload_id: &str,
        key: &str,
    ) -> Result<(UploadMeta, Vec<PartMeta>), StoreError> {
        self.with_bucket(bucket, |b| {
            b.uploads
                .get(upload_id)
                .filter(|u| u.meta.key == key)
                .map(|u| {
                    (
                        u.meta.clone(),
                        u.parts.values().map(|p| p.meta.clone()).collect(),
                    )
                })
        })?
        .ok_or(StoreError::NoSuchUpload)
    }
}

fn piece_records(pieces: &[Arc<Blob>]) -> Vec<disk::PieceRecord> {
    pieces
        .iter()
        .map(|p| disk::PieceRecord {
            blob: p.file_id().unwrap_or_default().to_owned(),
            size: p.len(),
        })
        .collect()
}

/// A new upload id: 32 upper-case hex digits, like OSS's.
pub(crate) fn new_upload_id() -> String {
    format!("{:032X}", fastrand::u128(..))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn headers() -> StoredHeaders {
        StoredHeaders {
            content_type: "application/octet-stream".into(),
            storage_class: "Standard".into(),
            ..StoredHeaders::default()
        }
    }

    async fn blob(store: &Store, bucket: &str, bytes: &[u8]) -> (Blob, PartMeta) {
        let mut writer = store.new_blob(bucket).await.unwrap();
        writer.write(Bytes::copy_from_slice(bytes)).await.unwrap();
        let md5 = hex::encode_upper(Md5::digest(bytes));
        let meta = PartMeta {
            part_number: 0,
            size: bytes.len() as u64,
            etag: format!("\"{md5}\""),
            crc64: crate::crc64::checksum(bytes),
            last_modified: unix_now(),
        };
        (writer.finish().await.unwrap(), meta)
    }

    async fn upload_parts(store: &Store, sizes: &[usize]) -> (String, Vec<PartMeta>) {
        let upload_id = new_upload_id();
        store
            .initiate(
                "bkt",
                UploadMeta {
                    key: "k".into(),
                    upload_id: upload_id.clone(),
                    initiated: unix_now(),
                    headers: headers(),
                },
                false,
            )
            .await
            .unwrap();
        let mut metas = Vec::new();
        for (i, size) in sizes.iter().enumerate() {
            let (b, mut meta) = blob(store, "bkt", &vec![i as u8; *size]).await;
            meta.part_number = i as u32 + 1;
            store
                .put_part("bkt", &upload_id, "k", meta.clone(), b)
                .await
                .unwrap();
            metas.push(meta);
        }
        (upload_id, metas)
    }

    fn options() -> CompleteOptions {
        CompleteOptions {
            forbid_overwrite: false,
            acl: None,
        }
    }

    async fn read_all(version: &ObjectVersion) -> Vec<u8> {
        use futures::StreamExt;
        let chunks: Vec<Bytes> = stream_range(version.pieces.clone(), 0, version.meta.size)
            .map(|c| c.unwrap())
            .collect()
            .await;
        chunks.concat()
    }

    #[tokio::test]
    async fn complete_links_parts_and_checks_them() {
        let store = Store::memory(true);
        store.ensure_bucket("bkt").await.unwrap();
        let (id, parts) = upload_parts(&store, &[102_400, 50, 7]).await;
        let listed = |n: &[usize]| {
            PartSelection::Listed(
                n.iter()
                    .map(|i| (parts[*i].part_number, parts[*i].etag.clone()))
                    .collect(),
            )
        };
        // Part 2 (50 bytes) is not last here.
        match store
            .complete("bkt", &id, "k", &listed(&[0, 1, 2]), &options())
            .await
        {
            Err(StoreError::EntityTooSmall {
                part_number: 2,
                size: 50,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        let wrong = PartSelection::Listed(vec![(1, "\"00\"".into())]);
        assert!(matches!(
            store.complete("bkt", &id, "k", &wrong, &options()).await,
            Err(StoreError::InvalidPart { part_number: 1, .. })
        ));
        assert!(matches!(
            store
                .complete("bkt", &id, "other", &listed(&[0]), &options())
                .await,
            Err(StoreError::NoSuchUpload)
        ));
        // Parts 1 and 3 (gaps are fine), unquoted lower-case ETag accepted.
        let sloppy = PartSelection::Listed(vec![
            (1, parts[0].etag.trim_matches('"').to_ascii_lowercase()),
            (3, parts[2].etag.clone()),
        ]);
        let version = store
            .complete("bkt", &id, "k", &sloppy, &options())
            .await
            .unwrap();
        let mut expected = vec![0u8; 102_400];
        expected.extend([2u8; 7]);
        assert_eq!(read_all(&version).await, expected);
        assert_eq!(version.meta.crc64, crate::crc64::checksum(&expected));
        assert!(version.meta.etag.ends_with("-2\""), "{}", version.meta.etag);
        assert_eq!(version.meta.object_type, ObjectType::Multipart);
        assert!(store.upload("bkt", &id, "k").unwrap().is_none());
        assert!(matches!(
            store.abort("bkt", &id, "k").await,
            Err(StoreError::NoSuchUpload)
        ));
    }

    #[tokio::test]
    async fn zero_parts_make_an_empty_object() {
        let store = Store::memory(true);
        store.ensure_bucket("bkt").await.unwrap();
        for selection in [PartSelection::Listed(Vec::new()), PartSelection::All] {
            let (id, _) = upload_parts(&store, &[]).await;
            let version = store
                .complete("bkt", &id, "k", &selection, &options())
                .await
                .unwrap();
            assert_eq!(version.meta.size, 0);
            assert_eq!(version.meta.crc64, 0);
            assert!(version.pieces.is_empty());
            assert!(version.meta.etag.ends_with("-0\""));
            assert!(read_all(&version).await.is_empty());
        }
    }

    #[tokio::test]
    async fn forbid_overwrite_and_missing_buckets() {
        let store = Store::memory(false);
        assert!(matches!(
            store.ensure_bucket("bkt").await,
            Err(StoreError::NoSuchBucket)
        ));
        store.create_bucket("bkt").await.unwrap();
        let (b, meta) = blob(&store, "bkt", b"hello").await;
        let object = ObjectMeta {
            key: "k".into(),
            size: 5,
            etag: meta.etag.clone(),
            crc64: meta.crc64,
            content_md5: None,
            object_type: ObjectType::Normal,
            last_modified: unix_now(),
            headers: headers(),
        };
        store
            .put_object("bkt", object.clone(), b, true)
            .await
            .unwrap();
        let (b, _) = blob(&store, "bkt", b"again").await;
        assert!(matches!(
            store.put_object("bkt", object.clone(), b, true).await,
            Err(StoreError::FileAlreadyExists)
        ));
        let (id, parts) = upload_parts(&store, &[3]).await;
        let selection = PartSelection::Listed(vec![(1, parts[0].etag.clone())]);
        let forbid = CompleteOptions {
            forbid_overwrite: true,
            acl: None,
        };
        assert!(matches!(
            store.complete("bkt", &id, "k", &selection, &forbid).await,
            Err(StoreError::FileAlreadyExists)
        ));
        store.delete_object("bkt", "k").await.unwrap();
        store.delete_object("bkt", "k").await.unwrap();
        store
            .complete("bkt", &id, "k", &selection, &forbid)
            .await
            .unwrap();
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }

    #[tokio::test]
    async fn a_crash_inside_complete_is_repaired_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let saved = dir.path().join("saved-upload");
        let upload_id;
        {
            let store = Store::directory(root.clone(), true).await.unwrap();
            store.ensure_bucket("bkt").await.unwrap();
            let (id, parts) = upload_parts(&store, &[102_400, 10]).await;
            upload_id = id;
            let upload_dir = root.join("bkt/uploads").join(&upload_id);
            copy_dir(&upload_dir, &saved);
            let selection = PartSelection::Listed(
                parts
                    .iter()
                    .map(|p| (p.part_number, p.etag.clone()))
                    .collect(),
            );
            store
                .complete("bkt", &upload_id, "k", &selection, &options())
                .await
                .unwrap();
            // The crash: the object record was written, the upload's removal never happened;
            // and a half-written record was left in the scratch directory.
            copy_dir(&saved, &upload_dir);
            std::fs::write(root.join(".tmp/0123"), b"{\"half").unwrap();
        }
        let store = Store::directory(root.clone(), true).await.unwrap();
        assert!(store.upload("bkt", &upload_id, "k").unwrap().is_none());
        assert!(!root.join("bkt/uploads").join(&upload_id).exists());
        assert_eq!(std::fs::read_dir(root.join(".tmp")).unwrap().count(), 0);
        let version = store.object("bkt", "k").unwrap().unwrap();
        let mut expected = vec![0u8; 102_400];
        expected.extend([1u8; 10]);
        assert_eq!(read_all(&version).await, expected, "the pieces were kept");
    }

    #[tokio::test]
    async fn a_crash_before_the_object_record_leaves_nothing_visible() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        {
            let store = Store::directory(root.clone(), true).await.unwrap();
            store.ensure_bucket("bkt").await.unwrap();
            // PutObject's body written, then the process dies before the record's rename.
            let (b, _) = blob(&store, "bkt", b"half an object").await;
            std::mem::forget(b);
        }
        let store = Store::directory(root.clone(), true).await.unwrap();
        assert!(store.object("bkt", "k").unwrap().is_none());
        assert_eq!(
            std::fs::read_dir(root.join("bkt/blobs")).unwrap().count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(root.join("bkt/objects")).unwrap().count(),
            0
        );
    }

    #[tokio::test]
    async fn directory_store_survives_a_restart_and_collects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let upload_id;
        {
            let store = Store::directory(root.clone(), true).await.unwrap();
            store.ensure_bucket("bkt").await.unwrap();
            let (id, parts) = upload_parts(&store, &[102_400, 10]).await;
            let selection = PartSelection::Listed(
                parts
                    .iter()
                    .map(|p| (p.part_number, p.etag.clone()))
                    .collect(),
            );
            store
                .complete("bkt", &id, "k", &selection, &options())
                .await
                .unwrap();
            let (id2, _) = upload_parts(&store, &[5, 6]).await;
            upload_id = id2;
            // A blob whose writer crashed before any record referred to it.
            std::fs::write(root.join("bkt/blobs").join(format!("{:032x}", 7)), b"junk").unwrap();
        }
        let store = Store::directory(root.clone(), true).await.unwrap();
        let version = store.object("bkt", "k").unwrap().unwrap();
        assert_eq!(version.meta.size, 102_410);
        let mut expected = vec![0u8; 102_400];
        expected.extend([1u8; 10]);
        assert_eq!(read_all(&version).await, expected);
        let (_, parts) = store.list_parts("bkt", &upload_id, "k").unwrap();
        assert_eq!(parts.iter().map(|p| p.size).collect::<Vec<_>>(), [5, 6]);
        let blobs = std::fs::read_dir(root.join("bkt/blobs")).unwrap().count();
        assert_eq!(blobs, 4, "2 object pieces + 2 parts, the junk collected");

        // Overwrite: the old pieces go, the new one stays.
        let (b, meta) = blob(&store, "bkt", b"new").await;
        let object = ObjectMeta {
            key: "k".into(),
            size: 3,
            etag: meta.etag,
            crc64: meta.crc64,
            content_md5: None,
            object_type: ObjectType::Normal,
            last_modified: unix_now(),
            headers: headers(),
        };
        drop(version);
        store.put_object("bkt", object, b, false).await.unwrap();
        store.abort("bkt", &upload_id, "k").await.unwrap();
        let blobs = std::fs::read_dir(root.join("bkt/blobs")).unwrap().count();
        assert_eq!(blobs, 1);
    }
}
