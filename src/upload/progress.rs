//! What a writer has done so far.

/// A snapshot of an [`ObjectWriter`](super::ObjectWriter)'s progress, from
/// [`progress`](super::ObjectWriter::progress) or the channel of
/// [`subscribe`](super::ObjectWriter::subscribe).
///
/// For a resumed upload, the parts and bytes found by ListParts count as sent, acknowledged,
/// accepted and durable (they are also in `bytes_resumed`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Bytes the writer has taken from its caller (the object's size so far).
    pub bytes_accepted: u64,
    /// Bytes in parts the target has acknowledged (or in the finished object).
    pub bytes_durable: u64,
    /// Bytes already in the upload when it was resumed.
    pub bytes_resumed: u64,
    /// Parts handed to the target (UploadPart started).
    pub parts_sent: u32,
    /// Parts the target acknowledged.
    pub parts_acknowledged: u32,
    /// Parts sent but not yet acknowledged.
    pub parts_in_flight: u32,
    /// Requests the writer sent again after a retryable error (not counting the target's own
    /// retries).
    pub retries: u64,
    /// Bytes of part buffers the writer holds now (see the module's memory formula).
    pub buffered_bytes: u64,
    /// The most bytes of part buffers the writer has held at once; never above `max_memory`.
    pub peak_buffered_bytes: u64,
    /// Whether the object is complete.
    pub finished: bool,
}
