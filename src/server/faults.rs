//! Fault injection: scripted failures so client tests can exercise every retry path.
//!
//! A [`FaultRule`] says *which* requests it hits (an operation, optionally one part number,
//! then the n-th, every n-th or a seeded fraction of the matching requests), *what* it does (an
//! error status and OSS code, a stall, a reset connection, a wrong CRC, a lost response, a clock
//! skew error) and *how often* at most (`times`). Rules are checked after the request is routed
//! and authenticated, so unsigned or mis-signed requests never use up a rule.
//!
//! # The rule syntax
//!
//! `osspipe serve --fault RULE` and [`FaultRule::from_str`](std::str::FromStr) read one rule:
//!
//! ```text
//! RULE     = OPERATION ":" ACTION *( ":" OPTION )
//! OPERATION= an OSS operation name: PutObject, GetObject, HeadObject, DeleteObject,
//!            InitiateMultipartUpload, UploadPart, CompleteMultipartUpload,
//!            AbortMultipartUpload, ListParts, ListMultipartUploads, ListObjects, PutBucket
//!            (case-insensitive), or "*" for any operation
//! ACTION   = STATUS ":" CODE         answer STATUS with this OSS error code (503:SlowDown,
//!                                    500:InternalError, 400:InvalidArgument, ...)
//!          | "delay=" MS             wait MS milliseconds, then answer normally
//!          | "stall=" MS "@" BYTES   stop for MS ms after BYTES bytes of the body
//!          | "reset@" BYTES          drop the connection after BYTES bytes of the body
//!          | "bad-crc"               answer with a wrong x-oss-hash-crc64ecma
//!          | "lose-response"         do the work, then drop the connection unanswered
//!          | "skew"                  answer 403 RequestTimeTooSkewed
//!          | "panic"                 panic inside the handler (tests the server's panic
//!                                    guard: the client gets 500 InternalError and
//!                                    `LocalServer::panics` counts it)
//! OPTION   = "nth=" N                only from the N-th matching request on (1-based)
//!          | "every=" N              only every N-th matching request (N, 2N, 3N, ...)
//!          | "part=" N               only requests for part number N
//!          | "p=" FRACTION           only a fraction (0..=1) of the matching requests, drawn
//!          | "seed=" N                 from an RNG seeded with N (default 0): deterministic
//!          | "times=" N | "times=unlimited"   fire at most N times
//! ```
//!
//! "The body" is the request body for operations that send one (PutObject, UploadPart,
//! CompleteMultipartUpload) and the response body for GetObject.
//!
//! `times` defaults to unlimited when `every=` or `p=` is given, and to 1 otherwise, so
//! `UploadPart:500:InternalError:part=3` fails part 3 once and lets the retry through, while
//! `UploadPart:503:SlowDown:every=10` keeps failing every tenth part.
//!
//! Examples:
//! - `UploadPart:503:SlowDown:every=10`
//! - `CompleteMultipartUpload:lose-response`
//! - `UploadPart:reset@65536:part=2:times=2`
//! - `*:500:InternalError:p=0.05:seed=7`
//! - `PutObject:skew`

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Operation;

/// Every operation the server routes, for parsing rule strings.
const OPERATIONS: &[Operation] = &[
    Operation::PutObject,
    Operation::GetObject,
    Operation::HeadObject,
    Operation::DeleteObject,
    Operation::InitiateMultipartUpload,
    Operation::UploadPart,
    Operation::CompleteMultipartUpload,
    Operation::AbortMultipartUpload,
    Operation::ListParts,
    Operation::ListMultipartUploads,
    Operation::ListObjects,
    Operation::PutBucket,
];

/// What a fault rule does to a request it hits.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer with this status and OSS error code (the body is a normal OSS error document;
    /// the message is OSS's own for documented codes). The request body is read and discarded
    /// first, so the client always sees the answer rather than a broken pipe.
    Fail {
        /// The HTTP status.
        status: u16,
        /// The OSS `Code`.
        code: String,
    },
    /// Wait this long before handling the request.
    Delay(Duration),
    /// After this many bytes of the body, stop for `duration`, then go on.
    StallBody {
        /// Bytes of the body that pass before the stall.
        after_bytes: u64,
        /// How long the stall lasts.
        duration: Duration,
    },
    /// After this many bytes of the body, drop the connection (the client sees a reset or an
    /// unexpected end of the response).
    ResetBody {
        /// Bytes of the body that pass before the reset.
        after_bytes: u64,
    },
    /// Handle the request, but answer with a wrong `x-oss-hash-crc64ecma`.
    WrongCrc,
    /// Handle the request (Complete really completes), then drop the connection without
    /// answering.
    LoseResponse,
    /// Answer 403 `RequestTimeTooSkewed`.
    RequestTimeTooSkewed,
    /// Panic inside the request handler, to exercise the server's panic guard.
    Panic,
}

/// One scripted fault: which requests it hits, what it does, and how often at most.
///
/// Build it with a constructor per action, then narrow it:
///
/// ```
/// use osspipe::server::FaultRule;
/// use osspipe::Operation;
///
/// // Part 3 fails once with 503 SlowDown; its retry succeeds.
/// let rule = FaultRule::fail(Some(Operation::UploadPart), 503, "SlowDown").part(3);
/// assert_eq!(rule, "UploadPart:503:SlowDown:part=3".parse().unwrap());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    operation: Option<Operation>,
    action: FaultAction,
    nth: Option<u64>,
    every: Option<u64>,
    part_number: Option<u32>,
    fraction: Option<(f64, u64)>,
    times: Option<u64>,
}

impl FaultRule {
    /// A rule with `action` for `operation` (`None`: every operation).
    pub fn new(operation: Option<Operation>, action: FaultAction) -> Self {
        Self {
            operation,
            action,
            nth: None,
            every: None,
            part_number: None,
            fraction: None,
            times: None,
        }
    }

    /// Answer `status` with OSS error `code`.
    pub fn fail(operation: Option<Operation>, status: u16, code: impl Into<String>) -> Self {
        Self::new(
            operation,
            FaultAction::Fail {
                status,
                code: code.into(),
            },
        )
    }

    /// Wait `delay` before handling the request.
    pub fn delay(operation: Option<Operation>, delay: Duration) -> Self {
        Self::new(operation, FaultAction::Delay(delay))
    }

    /// Stop for `duration` after `after_bytes` bytes of the body.
    pub fn stall_body(operation: Option<Operation>, after_bytes: u64, duration: Duration) -> Self {
        Self::new(
            operation,
            FaultAction::StallBody {
                after_bytes,
                duration,
            },
        )
    }

    /// Drop the connection after `after_bytes` bytes of the body.
    pub fn reset_body(operation: Option<Operation>, after_bytes: u64) -> Self {
        Self::new(operation, FaultAction::ResetBody { after_bytes })
    }

    /// Answer with a wrong `x-oss-hash-crc64ecma` (for UploadPart, PutObject, Complete).
    pub fn wrong_crc(operation: Option<Operation>) -> Self {
        Self::new(operation, FaultAction::WrongCrc)
    }

    /// Do the work, then drop the connection without an answer (for Complete: the object
    /// exists but the client never hears so).
    pub fn lose_response(operation: Option<Operation>) -> Self {
        Self::new(operation, FaultAction::LoseResponse)
    }

    /// Answer 403 `RequestTimeTooSkewed`.
    pub fn request_time_too_skewed(operation: Option<Operation>) -> Self {
        Self::new(operation, FaultAction::RequestTimeTooSkewed)
    }

    /// Panic inside the handler (the server answers `500 InternalError` and counts it in
    /// `LocalServer::panics`).
    pub fn panic(operation: Option<Operation>) -> Self {
        Self::new(operation, FaultAction::Panic)
    }

    /// Hit only from the `n`-th matching request on (1-based). With the default `times` of 1,
    /// exactly the `n`-th request.
    pub fn nth(mut self, n: u64) -> Self {
        self.nth = Some(n.max(1));
        self
    }

    /// Hit only every `n`-th matching request (the n-th, 2n-th, ...). Makes `times` default to
    /// unlimited.
    pub fn every(mut self, n: u64) -> Self {
        self.every = Some(n.max(1));
        self
    }

    /// Hit only requests for this part number (UploadPart).
    pub fn part(mut self, part_number: u32) -> Self {
        self.part_number = Some(part_number);
        self
    }

    /// Hit a fraction `probability` (0..=1) of the matching requests, drawn from an RNG seeded
    /// with `seed`, so a run is repeatable. Makes `times` default to unlimited.
    pub fn fraction(mut self, probability: f64, seed: u64) -> Self {
        self.fraction = Some((probability.clamp(0.0, 1.0), seed));
        self
    }

    /// Fire at most `times` times (`u64::MAX`: unlimited).
    pub fn times(mut self, times: u64) -> Self {
        self.times = Some(times);
        self
    }

    /// The operation the rule applies to (`None`: all).
    pub fn operation(&self) -> Option<Operation> {
        self.operation
    }

    /// What the rule does.
    pub fn action(&self) -> &FaultAction {
        &self.action
    }

    /// How many times the rule fires at most.
    pub fn max_times(&self) -> u64 {
        match self.times {
            Some(times) => times,
            None if self.every.is_some() || self.fraction.is_some() => u64::MAX,
            None => 1,
        }
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operation {
            Some(operation) => write!(f, "{operation}")?,
            None => f.write_str("*")?,
        }
        match &self.action {
            FaultAction::Fail { status, code } => write!(f, ":{status}:{code}")?,
            FaultAction::Delay(delay) => write!(f, ":delay={}", delay.as_millis())?,
            FaultAction::StallBody {
                after_bytes,
                duration,
            } => write!(f, ":stall={}@{after_bytes}", duration.as_millis())?,
            FaultAction::ResetBody { after_bytes } => write!(f, ":reset@{after_bytes}")?,
            FaultAction::WrongCrc => f.write_str(":bad-crc")?,
            FaultAction::LoseResponse => f.write_str(":lose-response")?,
            FaultAction::RequestTimeTooSkewed => f.write_str(":skew")?,
            FaultAction::Panic => f.write_str(":panic")?,
        }
        if let Some(n) = self.nth {
            write!(f, ":nth={n}")?;
        }
        if let Some(n) = self.every {
            write!(f, ":every={n}")?;
        }
        if let Some(n) = self.part_number {
            write!(f, ":part={n}")?;
        }
        if let Some((p, seed)) = self.fraction {
            write!(f, ":p={p}:seed={seed}")?;
        }
        match self.times {
            Some(u64::MAX) => f.write_str(":times=unlimited")?,
            Some(n) => write!(f, ":times={n}")?,
            None => {}
        }
        Ok(())
    }
}

/// Why a fault rule string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFaultError(String);

impl fmt::Display for ParseFaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid fault rule: {}", self.0)
    }
}

impl std::error::Error for ParseFaultError {}

fn parse_number<T: FromStr>(what: &str, text: &str) -> Result<T, ParseFaultError> {
    text.parse()
        .map_err(|_| ParseFaultError(format!("{what} must be a number, got {text:?}")))
}

fn parse_operation(text: &str) -> Result<Option<Operation>, ParseFaultError> {
    if text == "*" || text.eq_ignore_ascii_case("any") {
        return Ok(None);
    }
    OPERATIONS
        .iter()
        .find(|op| op.as_str().eq_ignore_ascii_case(text))
        .map(|op| Some(*op))
        .ok_or_else(|| ParseFaultError(format!("unknown operation {text:?}")))
}

impl FromStr for FaultRule {
    type Err = ParseFaultError;

    /// Parses the syntax of the [module documentation](self).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut tokens = text.trim().split(':');
        let operation = parse_operation(tokens.next().unwrap_or_default())?;
        let first = tokens
            .next()
            .ok_or_else(|| ParseFaultError(format!("{text:?} has no action")))?;
        let action = if first.bytes().all(|b| b.is_ascii_digit()) && !first.is_empty() {
            let status: u16 = parse_number("the status", first)?;
            if !(100..=599).contains(&status) {
                return Err(ParseFaultError(format!(
                    "status {status} is not an HTTP status"
                )));
            }
            let code = tokens
                .next()
                .filter(|code| !code.is_empty() && !code.contains('='))
                .ok_or_else(|| ParseFaultError(format!("status {status} needs an OSS code")))?;
            FaultAction::Fail {
                status,
                code: code.to_owned(),
            }
        } else if let Some(ms) = first.strip_prefix("delay=") {
            FaultAction::Delay(Duration::from_millis(parse_number("delay", ms)?))
        } else if let Some(rest) = first.strip_prefix("stall=") {
            let (ms, bytes) = rest
                .split_once('@')
                .ok_or_else(|| ParseFaultError("stall is written stall=MS@BYTES".to_owned()))?;
            FaultAction::StallBody {
                after_bytes: parse_number("stall bytes", bytes)?,
                duration: Duration::from_millis(parse_number("stall", ms)?),
            }
        } else if let Some(bytes) = first.strip_prefix("reset@") {
            FaultAction::ResetBody {
                after_bytes: parse_number("reset bytes", bytes)?,
            }
        } else {
            match first {
                "bad-crc" => FaultAction::WrongCrc,
                "lose-response" => FaultAction::LoseResponse,
                "skew" => FaultAction::RequestTimeTooSkewed,
                "panic" => FaultAction::Panic,
                "reset" => FaultAction::ResetBody { after_bytes: 0 },
                other => return Err(ParseFaultError(format!("unknown action {other:?}"))),
            }
        };
        let mut rule = FaultRule::new(operation, action);
        let mut seed = 0u64;
        let mut probability = None;
        for option in tokens {
            let (name, value) = option
                .split_once('=')
                .ok_or_else(|| ParseFaultError(format!("option {option:?} is not name=value")))?;
            match name {
                "nth" => rule = rule.nth(parse_number("nth", value)?),
                "every" => rule = rule.every(parse_number("every", value)?),
                "part" => rule = rule.part(parse_number("part", value)?),
                "p" => {
                    let p: f64 = parse_number("p", value)?;
                    if !(0.0..=1.0).contains(&p) {
                        return Err(ParseFaultError(format!("p={p} is not within 0..=1")));
                    }
                    probability = Some(p);
                }
                "seed" => seed = parse_number("seed", value)?,
                "times" if value == "unlimited" => rule = rule.times(u64::MAX),
                "times" => rule = rule.times(parse_number("times", value)?),
                other => return Err(ParseFaultError(format!("unknown option {other:?}"))),
            }
        }
        if let Some(p) = probability {
            rule = rule.fraction(p, seed);
        }
        Ok(rule)
    }
}

/// A handle on a rule added to [`Faults`], to remove it or ask how often it fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

struct ActiveRule {
    id: FaultId,
    rule: FaultRule,
    matched: u64,
    fired: u64,
    rng: Option<fastrand::Rng>,
}

#[derive(Default)]
struct FaultsInner {
    next_id: u64,
    rules: Vec<ActiveRule>,
    fired_removed: Vec<(FaultId, u64)>,
}

/// The fault rules of a running server; add and clear them at any time.
///
/// Cloning gives another handle on the same rules.
#[derive(Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultsInner>>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_list()
            .entries(inner.rules.iter().map(|r| r.rule.to_string()))
            .finish()
    }
}

/// What the rules decided for one request.
#[derive(Debug, Default)]
pub(crate) struct FaultPlan {
    pub(crate) delay: Duration,
    pub(crate) fail: Option<(u16, String)>,
    pub(crate) skew: bool,
    pub(crate) body: Option<BodyFault>,
    pub(crate) wrong_crc: bool,
    pub(crate) lose_response: bool,
    pub(crate) panic: bool,
}

/// A fault that fires part-way through a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFault {
    Stall {
        after_bytes: u64,
        duration: Duration,
    },
    Reset {
        after_bytes: u64,
    },
}

impl BodyFault {
    pub(crate) fn after_bytes(&self) -> u64 {
        match self {
            BodyFault::Stall { after_bytes, .. } | BodyFault::Reset { after_bytes } => *after_bytes,
        }
    }
}

impl Faults {
    /// No rules.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultsInner> {
        // A panic while holding this lock cannot leave the rules half-updated in a way that
        // matters; keep serving rather than poisoning every later request.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a rule; it applies to requests that arrive from now on.
    pub fn add(&self, rule: FaultRule) -> FaultId {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = FaultId(inner.next_id);
        let rng = rule
            .fraction
            .map(|(_, seed)| fastrand::Rng::with_seed(seed));
        inner.rules.push(ActiveRule {
            id,
            rule,
            matched: 0,
            fired: 0,
            rng,
        });
        id
    }

    /// Parses a rule (see the [module documentation](self)) and adds it.
    ///
    /// # Errors
    /// [`ParseFaultError`] if `rule` does not follow the syntax.
    pub fn add_str(&self, rule: &str) -> Result<FaultId, ParseFaultError> {
        Ok(self.add(rule.parse()?))
    }

    /// Removes one rule. Its fire count stays readable with [`Faults::fired`].
    pub fn remove(&self, id: FaultId) {
        let mut inner = self.lock();
        if let Some(at) = inner.rules.iter().position(|r| r.id == id) {
            let removed = inner.rules.remove(at);
            inner.fired_removed.push((id, removed.fired));
        }
    }

    /// Removes every rule.
    pub fn clear(&self) {
        let mut inner = self.lock();
        let removed: Vec<(FaultId, u64)> = inner.rules.drain(..).map(|r| (r.id, r.fired)).collect();
        inner.fired_removed.extend(removed);
    }

    /// How many times the rule has fired so far.
    pub fn fired(&self, id: FaultId) -> u64 {
        let inner = self.lock();
        inner
            .rules
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.fired)
            .or_else(|| {
                inner
                    .fired_removed
                    .iter()
                    .find(|(removed, _)| *removed == id)
                    .map(|(_, fired)| *fired)
            })
            .unwrap_or(0)
    }

    /// The rules in force, in the order they were added.
    pub fn rules(&self) -> Vec<FaultRule> {
        self.lock().rules.iter().map(|r| r.rule.clone()).collect()
    }

    /// Counts the request against every rule and collects what fires.
    pub(crate) fn plan(&self, operation: Operation, part_number: Option<u32>) -> FaultPlan {
        let mut plan = FaultPlan::default();
        let mut inner = self.lock();
        if inner.rules.is_empty() {
            return plan;
        }
        for active in inner.rules.iter_mut() {
            let rule = &active.rule;
            if rule.operation.is_some_and(|op| op != operation) {
                continue;
            }
            if rule.part_number.is_some() && rule.part_number != part_number {
                continue;
            }
            active.matched += 1;
            if active.fired >= rule.max_times() {
                continue;
            }
            if rule.nth.is_some_and(|n| active.matched < n) {
                continue;
            }
            if rule.every.is_some_and(|n| active.matched % n != 0) {
                continue;
            }
            if let (Some((p, _)), Some(rng)) = (rule.fraction, active.rng.as_mut()) {
                if rng.f64() >= p {
                    continue;
                }
            }
            active.fired += 1;
            match &rule.action {
                FaultAction::Fail { status, code } => {
                    plan.fail.get_or_insert((*status, code.clone()));
                }
                FaultAction::Delay(delay) => plan.delay += *delay,
                FaultAction::StallBody {
                    after_bytes,
                    duration,
                } => {
                    plan.body.get_or_insert(BodyFault::Stall {
                        after_bytes: *after_bytes,
                        duration: *duration,
                    });
                }
                FaultAction::ResetBody { after_bytes } => {
                    plan.body = Some(BodyFault::Reset {
                        after_bytes: *after_bytes,
                    });
                }
                FaultAction::WrongCrc => plan.wrong_crc = true,
                FaultAction::LoseResponse => plan.lose_response = true,
                FaultAction::RequestTimeTooSkewed => plan.skew = true,
                FaultAction::Panic => plan.panic = true,
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_action() {
        for text in [
            "UploadPart:503:SlowDown:every=10",
            "CompleteMultipartUpload:lose-response",
            "UploadPart:reset@65536:part=2:times=2",
            "*:500:InternalError:p=0.05:seed=7",
            "PutObject:skew",
            "GetObject:stall=250@1024",
            "PutObject:delay=10:nth=3",
            "UploadPart:bad-crc:times=unlimited",
            "HeadObject:panic",
        ] {
            let rule: FaultRule = text.parse().unwrap();
            assert_eq!(rule.to_string(), text);
        }
    }

    #[test]
    fn operation_names_are_case_insensitive() {
        let rule: FaultRule = "uploadpart:500:InternalError".parse().unwrap();
        assert_eq!(rule.operation(), Some(Operation::UploadPart));
    }

    #[test]
    fn refuses_garbage() {
        for text in [
            "",
            "UploadPart",
            "Nope:500:InternalError",
            "UploadPart:500",
            "UploadPart:999:X",
            "UploadPart:explode",
            "UploadPart:500:InternalError:every",
            "UploadPart:500:InternalError:p=2",
            "UploadPart:500:InternalError:colour=red",
            "UploadPart:stall=10",
        ] {
            assert!(text.parse::<FaultRule>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn times_defaults() {
        assert_eq!(FaultRule::wrong_crc(None).max_times(), 1);
        assert_eq!(FaultRule::wrong_crc(None).every(2).max_times(), u64::MAX);
        assert_eq!(
            FaultRule::wrong_crc(None).fraction(0.5, 1).max_times(),
            u64::MAX
        );
        assert_eq!(FaultRule::wrong_crc(None).every(2).times(3).max_times(), 3);
    }

    fn fires(faults: &Faults, op: Operation, part: Option<u32>) -> bool {
        faults.plan(op, part).fail.is_some()
    }

    #[test]
    fn nth_fires_once_on_the_nth_matching_request() {
        let faults = Faults::new();
        let id =
            faults.add(FaultRule::fail(Some(Operation::UploadPart), 500, "InternalError").nth(3));
        let hits: Vec<bool> = (0..6)
            .map(|_| fires(&faults, Operation::UploadPart, Some(1)))
            .collect();
        assert_eq!(hits, [false, false, true, false, false, false]);
        assert!(!fires(&faults, Operation::PutObject, None));
        assert_eq!(faults.fired(id), 1);
    }

    #[test]
    fn every_nth_keeps_firing() {
        let faults = Faults::new();
        faults.add_str("UploadPart:503:SlowDown:every=3").unwrap();
        let hits: Vec<bool> = (0..9)
            .map(|_| fires(&faults, Operation::UploadPart, Some(1)))
            .collect();
        assert_eq!(
            hits,
            [false, false, true, false, false, true, false, false, true]
        );
    }

    #[test]
    fn part_filter_counts_only_that_part() {
        let faults = Faults::new();
        let id = faults
            .add_str("UploadPart:500:InternalError:part=2:times=2")
            .unwrap();
        assert!(!fires(&faults, Operation::UploadPart, Some(1)));
        assert!(fires(&faults, Operation::UploadPart, Some(2)));
        assert!(!fires(&faults, Operation::UploadPart, Some(3)));
        assert!(fires(&faults, Operation::UploadPart, Some(2)));
        assert!(!fires(&faults, Operation::UploadPart, Some(2)));
        assert_eq!(faults.fired(id), 2);
        faults.remove(id);
        assert_eq!(faults.fired(id), 2);
        assert!(faults.rules().is_empty());
    }

    #[test]
    fn fractions_are_repeatable_for_a_seed() {
        let run = |seed| {
            let faults = Faults::new();
            faults.add(FaultRule::fail(None, 500, "InternalError").fraction(0.3, seed));
            (0..200)
                .map(|_| fires(&faults, Operation::GetObject, None))
                .collect::<Vec<_>>()
        };
        let a = run(42);
        assert_eq!(a, run(42));
        let count = a.iter().filter(|hit| **hit).count();
        assert!((30..=90).contains(&count), "{count} of 200 fired at p=0.3");
    }

    #[test]
    fn plan_collects_several_actions() {
        let faults = Faults::new();
        faults.add(FaultRule::delay(None, Duration::from_millis(5)));
        faults.add(FaultRule::wrong_crc(Some(Operation::UploadPart)));
        faults.add(FaultRule::reset_body(Some(Operation::UploadPart), 10));
        let plan = faults.plan(Operation::UploadPart, Some(1));
        assert_eq!(plan.delay, Duration::from_millis(5));
        assert!(plan.wrong_crc);
        assert_eq!(plan.body, Some(BodyFault::Reset { after_bytes: 10 }));
        let plan = faults.plan(Operation::UploadPart, Some(1));
        assert_eq!(plan.delay, Duration::ZERO);
        assert!(!plan.wrong_crc);
        faults.clear();
        assert!(faults.rules().is_empty());
    }
}
