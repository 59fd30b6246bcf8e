//! # osspipe
//!
//! Stream a byte stream of unknown size into Alibaba Cloud OSS (Object Storage Service) with
//! multipart upload.
//!
//! The crate has three layers:
//! - the OSS protocol client ([`Client`]): signing (V4 and V1), the multipart API, Put/Get/Head,
//!   typed errors, CRC-64 checks and retries;
//! - the streaming writer ([`ObjectWriter`]): an [`tokio::io::AsyncWrite`] sink that cuts the stream into
//!   parts, sends them concurrently within a memory budget and completes the object on shutdown;
//! - the local OSS-compatible server (feature `server`), used by tests, benchmarks and the CLI's
//!   embedded default.
#![deny(missing_docs, rust_2018_idioms, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]

pub mod client;
pub mod config;
pub mod crc64;
pub mod credentials;
mod error;
pub mod limits;
pub mod retry;
#[cfg(feature = "server")]
pub mod server;
pub mod sign;
pub mod target;
mod timestamp;
pub mod upload;
pub mod xml;

pub use client::{Bucket, Client};
pub use config::ClientBuilder;
pub use credentials::Credentials;
pub use error::{Error, ErrorKind, Operation, Result, ServiceError};
pub use target::{MultipartTarget, ObjectOptions};
pub use upload::{ObjectWriter, ObjectWriterBuilder, PartSizePlan, UploadOutcome};
