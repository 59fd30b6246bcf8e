//! The local OSS-compatible server.
