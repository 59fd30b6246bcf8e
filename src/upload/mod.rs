//! The streaming writer: an AsyncWrite that turns a byte stream into an OSS object.
