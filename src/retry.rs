//! Retry policy as data: attempts, deadline, exponential backoff with full jitter.
//!
//! Which errors are worth another attempt is decided by [`crate::Error::is_retryable`] (the
//! table of §6.3). This module decides *whether there is budget left* for another attempt and
//! *how long to wait*: `U[0,1) × min(max_delay, base_delay × 2^attempt)`, the "full jitter" of
//! the official v2 SDKs, where `attempt` is the 1-based number of the attempt that just failed
//! (so the first retry waits at most 0.4 s with the defaults).
//!
//! The jitter comes from a [`fastrand::Rng`] that tests seed with [`RetryPolicy::with_seed`], so
//! delays are reproducible.

use std::time::{Duration, Instant};

use crate::Error;

/// Attempts per request, the first included. The SDKs use 3; a streaming uploader holds a part
/// in memory anyway and losing a whole stream to a blip costs more, so we allow 5.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The backoff's base: the first retry waits up to twice this.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(200);

/// The most one backoff can wait (before jitter), as in the SDKs.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(20);

/// No new attempt starts once this long has passed since the first one started. It bounds the
/// time a request spends retrying, not one attempt: a 5 GiB part may legitimately take longer.
pub const DEFAULT_MAX_ELAPSED: Duration = Duration::from_secs(10 * 60);

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    max_elapsed: Duration,
    seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            max_elapsed: DEFAULT_MAX_ELAPSED,
            seed: None,
        }
    }
}

impl RetryPolicy {
    /// The default policy: [`DEFAULT_MAX_ATTEMPTS`], [`DEFAULT_BASE_DELAY`],
    /// [`DEFAULT_MAX_DELAY`], [`DEFAULT_MAX_ELAPSED`], random jitter.
    pub fn new() -> Self {
        Self::default()
    }

    /// A policy that never retries (one attempt).
    pub fn no_retries() -> Self {
        Self::default().with_max_attempts(1)
    }

    /// Sets the number of attempts, the first included; 0 is treated as 1.
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets the backoff's base delay.
    pub fn with_base_delay(mut self, base_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self
    }

    /// Sets the cap on one backoff delay.
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets the total time after which no new attempt starts.
    pub fn with_max_elapsed(mut self, max_elapsed: Duration) -> Self {
        self.max_elapsed = max_elapsed;
        self
    }

    /// Seeds the jitter so delays are reproducible (tests). Every request starts from the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Attempts per request, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff's base delay.
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// The cap on one backoff delay.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The total time after which no new attempt starts.
    pub fn max_elapsed(&self) -> Duration {
        self.max_elapsed
    }

    /// The largest delay after the 1-based `attempt` failed: `min(max_delay, base × 2^attempt)`.
    pub fn delay_ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// A full-jitter delay after the 1-based `attempt` failed: `U[0,1) × delay_ceiling(attempt)`.
    pub fn delay_for(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        self.delay_ceiling(attempt).mul_f64(rng.f64())
    }

    /// Whether another attempt may follow the 1-based `attempt` that failed with `error`,
    /// `elapsed` after the first attempt started: the error must be retryable, and the attempt
    /// and time budgets not spent.
    pub fn should_retry(&self, error: &Error, attempt: u32, elapsed: Duration) -> bool {
        error.is_retryable() && attempt < self.max_attempts && elapsed < self.max_elapsed
    }

    /// A fresh jitter source: seeded if the policy has a seed, random otherwise.
    pub fn rng(&self) -> fastrand::Rng {
        match self.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        }
    }

    /// Starts tracking one request's attempts.
    pub fn start(&self) -> RetryState<'_> {
        RetryState {
            policy: self,
            rng: self.rng(),
            attempt: 0,
            started: Instant::now(),
        }
    }
}

/// One request's progress through its [`RetryPolicy`].
#[derive(Debug)]
pub struct RetryState<'a> {
    policy: &'a RetryPolicy,
    rng: fastrand::Rng,
    attempt: u32,
    started: Instant,
}

impl RetryState<'_> {
    /// Records that an attempt starts and returns its 1-based number.
    pub fn begin_attempt(&mut self) -> u32 {
        self.attempt += 1;
        self.attempt
    }

    /// The 1-based number of the current attempt (0 before the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How long since the state was created.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// After the current attempt failed with `error`: the delay before the next attempt, or
    /// `None` if the error is permanent or the budget is spent. A delay that would end past
    /// the deadline also ends the retries.
    pub fn next_delay(&mut self, error: &Error) -> Option<Duration> {
        let elapsed = self.elapsed();
        if !self.policy.should_retry(error, self.attempt, elapsed) {
            return None;
        }
        let delay = self.policy.delay_for(self.attempt, &mut self.rng);
        (elapsed + delay < self.policy.max_elapsed).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServiceError;
    use crate::ErrorKind;

    fn service(status: u16, code: &str) -> Error {
        Error::service(ServiceError {
            status,
            code: code.into(),
            ..ServiceError::default()
        })
    }

    #[test]
    fn defaults_are_the_named_consts() {
        let policy = RetryPolicy::new();
        assert_eq!(policy.max_attempts(), DEFAULT_MAX_ATTEMPTS);
        assert_eq!(policy.base_delay(), DEFAULT_BASE_DELAY);
        assert_eq!(policy.max_delay(), DEFAULT_MAX_DELAY);
        assert_eq!(policy.max_elapsed(), DEFAULT_MAX_ELAPSED);
        assert_eq!(RetryPolicy::no_retries().max_attempts(), 1);
        assert_eq!(RetryPolicy::new().with_max_attempts(0).max_attempts(), 1);
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let policy = RetryPolicy::new();
        assert_eq!(policy.delay_ceiling(1), Duration::from_millis(400));
        assert_eq!(policy.delay_ceiling(2), Duration::from_millis(800));
        assert_eq!(policy.delay_ceiling(6), Duration::from_millis(12_800));
        assert_eq!(policy.delay_ceiling(7), DEFAULT_MAX_DELAY);
        assert_eq!(policy.delay_ceiling(40), DEFAULT_MAX_DELAY);
        assert_eq!(policy.delay_ceiling(u32::MAX), DEFAULT_MAX_DELAY);
    }

    #[test]
    fn seeded_jitter_is_reproducible_and_within_bounds() {
        let policy = RetryPolicy::new().with_seed(42);
        let delays = |policy: &RetryPolicy| {
            let mut rng = policy.rng();
            (1..=10)
                .map(|attempt| policy.delay_for(attempt, &mut rng))
                .collect::<Vec<_>>()
        };
        let first = delays(&policy);
        assert_eq!(first, delays(&policy));
        for (attempt, delay) in (1..).zip(&first) {
            assert!(
                *delay < policy.delay_ceiling(attempt),
                "{attempt}: {delay:?}"
            );
        }
        // Full jitter spreads: ten draws are not all equal, and another seed differs.
        assert!(first.windows(2).any(|w| w[0] != w[1]));
        assert_ne!(first, delays(&RetryPolicy::new().with_seed(7)));
        // The mean of many draws of the first retry is near half its 400 ms ceiling.
        let mut rng = policy.rng();
        let total: Duration = (0..2000).map(|_| policy.delay_for(1, &mut rng)).sum();
        let mean = total / 2000;
        assert!(
            mean > Duration::from_millis(180) && mean < Duration::from_millis(220),
            "{mean:?}"
        );
    }

    #[test]
    fn should_retry_follows_the_table_and_budgets() {
        let policy = RetryPolicy::new().with_max_attempts(3);
        let busy = service(503, "ServiceUnavailable");
        assert!(policy.should_retry(&busy, 1, Duration::ZERO));
        assert!(policy.should_retry(&busy, 2, Duration::ZERO));
        assert!(!policy.should_retry(&busy, 3, Duration::ZERO));
        assert!(!policy.should_retry(&busy, 1, DEFAULT_MAX_ELAPSED));
        assert!(!policy.should_retry(&service(403, "AccessDenied"), 1, Duration::ZERO));
        assert!(policy.should_retry(&service(403, "RequestTimeTooSkewed"), 1, Duration::ZERO));
        assert!(policy.should_retry(&Error::new(ErrorKind::Timeout, "idle"), 1, Duration::ZERO));
        assert!(policy.should_retry(
            &Error::new(ErrorKind::CrcMismatch, "crc"),
            1,
            Duration::ZERO
        ));
        assert!(!policy.should_retry(&Error::invalid_input("bad"), 1, Duration::ZERO));
        assert!(!RetryPolicy::no_retries().should_retry(&busy, 1, Duration::ZERO));
    }

    #[test]
    fn state_counts_attempts_and_stops() {
        let policy = RetryPolicy::new().with_max_attempts(3).with_seed(1);
        let mut state = policy.start();
        let busy = service(500, "InternalError");
        assert_eq!(state.begin_attempt(), 1);
        let first = state.next_delay(&busy).expect("retry after attempt 1");
        assert!(first < Duration::from_millis(400));
        assert_eq!(state.begin_attempt(), 2);
        assert!(state.next_delay(&busy).is_some());
        assert_eq!(state.begin_attempt(), 3);
        assert_eq!(state.next_delay(&busy), None);
        let mut state = policy.start();
        state.begin_attempt();
        assert_eq!(state.next_delay(&service(404, "NoSuchUpload")), None);
        // A deadline shorter than any possible delay ends retries at once.
        let tight = RetryPolicy::new().with_max_elapsed(Duration::from_nanos(1));
        let mut state = tight.start();
        state.begin_attempt();
        std::thread::sleep(Duration::from_millis(1));
        assert_eq!(state.next_delay(&busy), None);
    }
}
