//! OSS's limits, and the checks that refuse bad input before any request is sent.
//!
//! See <https://www.alibabacloud.com/help/en/oss/user-guide/limits>.

/// The smallest part number.
pub const MIN_PART_NUMBER: u32 = 1;
/// The largest part number: a multipart upload has at most 10,000 parts.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// Every part but the last must be at least 100 KB (checked by OSS at Complete).
pub const MIN_PART_SIZE: u64 = 100 * 1024;
/// A part is at most 5 GB.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// A PutObject body is at most 5 GB.
pub const MAX_PUT_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// An object key is at most 1023 bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1023;
/// A bucket name is at least 3 characters.
pub const MIN_BUCKET_NAME_LEN: usize = 3;
/// A bucket name is at most 63 characters.
pub const MAX_BUCKET_NAME_LEN: usize = 63;
/// User metadata totals at most 8 KB.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
/// ListParts and ListMultipartUploads return at most 1,000 entries a page.
pub const MAX_LIST_PAGE: u32 = 1000;
/// Signed times may differ from the server's clock by at most 15 minutes.
pub const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(15 * 60);
