//! Retry policy as data: attempts, deadline, exponential backoff with full jitter.
