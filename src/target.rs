//! The small interface between the streaming writer and the storage it writes to.
//!
//! The writer never speaks HTTP: it calls [`MultipartTarget`], which the OSS client implements for
//! one bucket and which `upload` implements in memory for tests (recording every call and
//! injecting failures). Bodies are [`Bytes`], so a retried part costs no copy.

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;

/// Headers and settings applied to the object being written (PutObject, or Initiate + Complete).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectOptions {
    /// `Content-Type`; guessed from the key's extension when `None`.
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Expires`.
    pub expires: Option<String>,
    /// User metadata, sent as `x-oss-meta-<name>` (names are stored lower-cased by OSS).
    pub metadata: Vec<(String, String)>,
    /// `x-oss-storage-class`: `Standard`, `IA`, `Archive`, `ColdArchive`, `DeepColdArchive`.
    pub storage_class: Option<String>,
    /// `x-oss-tagging`, in query-string form `k1=v1&k2=v2`.
    pub tagging: Option<String>,
    /// `x-oss-forbid-overwrite: true`: fail with `FileAlreadyExists` rather than replace an
    /// existing object (sent on PutObject, Initiate and Complete).
    pub forbid_overwrite: bool,
    /// `x-oss-server-side-encryption`: `AES256`, `KMS` or `SM4`.
    pub server_side_encryption: Option<String>,
    /// `x-oss-server-side-data-encryption` (with KMS).
    pub server_side_data_encryption: Option<String>,
    /// `x-oss-server-side-encryption-key-id` (with KMS).
    pub server_side_encryption_key_id: Option<String>,
    /// `x-oss-object-acl`: `default`, `private`, `public-read`, `public-read-write` (sent on
    /// PutObject and on Complete).
    pub acl: Option<String>,
    /// `x-oss-callback` (Base64 JSON, §5.10), sent on PutObject and Complete.
    pub callback: Option<String>,
    /// `x-oss-callback-var` (Base64 JSON).
    pub callback_var: Option<String>,
    /// Send `Content-MD5` with every body (costs an MD5 pass; CRC-64 is checked anyway).
    pub content_md5: bool,
}

/// What the server acknowledged for one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartReceipt {
    /// 1-based part number.
    pub part_number: u32,
    /// The ETag exactly as the server returned it (with its quotes).
    pub etag: String,
    /// The CRC-64 of the part's bytes (verified against the server's `x-oss-hash-crc64ecma`).
    pub crc64: u64,
    /// The part's length in bytes.
    pub size: u64,
}

/// A finished object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectReceipt {
    /// The object's ETag as the server returned it.
    pub etag: String,
    /// The object's CRC-64 as the server reported it (`x-oss-hash-crc64ecma`), if it did.
    pub crc64: Option<u64>,
    /// The body of an upload callback's answer, if a callback was configured.
    pub callback_body: Option<Bytes>,
}

/// Storage that a multipart stream can be written to: one bucket of OSS, the local server, or an
/// in-memory fake.
///
/// Every method checks what it can (the part's CRC-64 against the server's) and returns a
/// retryable [`crate::Error`] for transient failures; retrying is the implementation's job
/// (the OSS client retries each request under its retry policy).
#[async_trait]
pub trait MultipartTarget: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a whole small object in one request (PutObject).
    ///
    /// # Errors
    /// The service's error, a network failure, or a CRC-64 mismatch.
    async fn put_object(
        &self,
        key: &str,
        body: Bytes,
        options: &ObjectOptions,
    ) -> Result<ObjectReceipt>;

    /// Starts a multipart upload and returns its upload id.
    ///
    /// # Errors
    /// The service's error or a network failure.
    async fn initiate(&self, key: &str, options: &ObjectOptions) -> Result<String>;

    /// Uploads one part (UploadPart). Re-uploading a part number replaces it.
    ///
    /// # Errors
    /// The service's error, a network failure, or a CRC-64 mismatch.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> Result<PartReceipt>;

    /// [`upload_part`](Self::upload_part) for a body whose CRC-64 the caller computed already
    /// (the writer computes it while copying the bytes in), so the target need not read the
    /// body again. The target must still check `crc64` against the server's
    /// `x-oss-hash-crc64ecma`. The default forwards to `upload_part`.
    ///
    /// # Errors
    /// As [`upload_part`](Self::upload_part).
    async fn upload_part_with_crc(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
        crc64: u64,
    ) -> Result<PartReceipt> {
        let _ = crc64;
        self.upload_part(key, upload_id, part_number, body).await
    }

    /// Completes the upload from the given parts, sorted by part number.
    ///
    /// # Errors
    /// The service's error or a network failure.
    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[PartReceipt],
        options: &ObjectOptions,
    ) -> Result<ObjectReceipt>;

    /// Aborts the upload, deleting its parts.
    ///
    /// # Errors
    /// The service's error or a network failure.
    async fn abort(&self, key: &str, upload_id: &str) -> Result<()>;

    /// Lists every part uploaded so far, sorted by part number (all pages).
    ///
    /// # Errors
    /// The service's error or a network failure.
    async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<PartReceipt>>;

    /// Reads an object's size and CRC-64 (HeadObject), or `None` if it does not exist. Used to
    /// confirm a Complete whose answer was lost.
    ///
    /// # Errors
    /// The service's error or a network failure.
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>>;

    /// The bucket this target writes to, for messages such as the command that cleans up an
    /// abandoned upload (`osspipe abort oss://bucket/key --upload-id ID`). `None` when the
    /// target is not one bucket.
    fn bucket(&self) -> Option<&str> {
        None
    }
}

/// What HeadObject says of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// `Content-Length`.
    pub size: u64,
    /// `ETag` as sent.
    pub etag: String,
    /// `x-oss-hash-crc64ecma`.
    pub crc64: Option<u64>,
    /// `x-oss-object-type`: `Normal`, `Multipart`, ...
    pub object_type: Option<String>,
}
