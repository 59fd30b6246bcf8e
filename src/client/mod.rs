//! The OSS client: one bucket-independent HTTP client and its operations.
