//! The part-size plan for a stream of unknown size.

use crate::limits::{MAX_PART_NUMBER, MAX_PART_SIZE, MIN_PART_SIZE};
use crate::{Error, ErrorKind, Result};

use super::{
    DEFAULT_FIRST_PART_SIZE, DEFAULT_GROWTH_INTERVAL, DEFAULT_MAX_MEMORY, SIZE_HINT_ALIGNMENT,
};

/// How large part `n` of a stream is, when the stream's size is not known in advance.
///
/// OSS allows at most 10,000 parts of 100 KB to 5 GB each (the last may be shorter). A fixed part
/// size must choose between small streams wasting memory and large streams running out of part
/// numbers, so the plan grows: part `n` (1-based) is
///
/// ```text
/// part_size(n) = min(first × 2^((n - 1) / growth_interval), max_part_size)
/// ```
///
/// With the defaults (8 MiB first, doubling every 500 parts, capped at 128 MiB = half of the
/// default 256 MiB budget) parts 1-500 are 8 MiB, then 16, 32 and 64 MiB tiers, then 8,000 parts
/// of 128 MiB: a [`ceiling`](Self::ceiling) of about 1.03 TiB.
///
/// ```
/// use osspipe::upload::PartSizePlan;
///
/// let plan = PartSizePlan::default();
/// assert_eq!(plan.part_size(1), 8 << 20);
/// assert_eq!(plan.part_size(501), 16 << 20);
/// assert_eq!(plan.part_size(10_000), 128 << 20);
/// assert!(plan.ceiling() >= 1 << 40);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSizePlan {
    first: u64,
    max: u64,
    growth_interval: u32,
    max_parts: u32,
    min_part_size: u64,
    ceiling: u64,
}

impl Default for PartSizePlan {
    /// The plan of a writer with default settings: [`DEFAULT_FIRST_PART_SIZE`] first, capped at
    /// half of [`DEFAULT_MAX_MEMORY`].
    fn default() -> Self {
        Self::build(
            DEFAULT_FIRST_PART_SIZE,
            DEFAULT_MAX_MEMORY / 2,
            DEFAULT_GROWTH_INTERVAL,
            MAX_PART_NUMBER,
            MIN_PART_SIZE,
        )
    }
}

impl PartSizePlan {
    /// A plan within OSS's limits: parts start at `first_part_size` and double every
    /// [`DEFAULT_GROWTH_INTERVAL`] parts up to `max_part_size`, over at most 10,000 parts.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] if `first_part_size` is below OSS's 100 KB minimum, `max_part_size`
    /// is above its 5 GB maximum, or `max_part_size < first_part_size`.
    pub fn new(first_part_size: u64, max_part_size: u64) -> Result<Self> {
        if first_part_size < MIN_PART_SIZE {
            return Err(config(format!(
                "part size must be at least {MIN_PART_SIZE} bytes (OSS's minimum part size), not {first_part_size}"
            )));
        }
        if max_part_size > MAX_PART_SIZE {
            return Err(config(format!(
                "part size must be at most {MAX_PART_SIZE} bytes (OSS's maximum part size), not {max_part_size}"
            )));
        }
        if max_part_size < first_part_size {
            return Err(config(format!(
                "the largest part size ({max_part_size}) must be at least the first part size ({first_part_size})"
            )));
        }
        Ok(Self::build(
            first_part_size,
            max_part_size,
            DEFAULT_GROWTH_INTERVAL,
            MAX_PART_NUMBER,
            MIN_PART_SIZE,
        ))
    }

    /// A plan that starts at `first_part_size` and is capped at
    /// `min(5 GB, max_memory / 2)`, so that one part can fill while another is in flight.
    ///
    /// # Errors
    /// As [`PartSizePlan::new`], and [`ErrorKind::Config`] if `max_memory` cannot hold two parts
    /// of `first_part_size`.
    pub fn for_memory(first_part_size: u64, max_memory: u64) -> Result<Self> {
        let max = MAX_PART_SIZE.min(max_memory / 2);
        if first_part_size > max {
            return Err(config(format!(
                "max_memory ({max_memory}) must hold at least two parts of the first part size ({first_part_size})"
            )));
        }
        Self::new(first_part_size, max)
    }

    /// A plan that ignores OSS's part-size limits (any size from 1 byte), for the in-memory
    /// [`MemoryTarget`](super::MemoryTarget) in tests and fuzzing, or for OSS-compatible stores
    /// with other limits. OSS itself rejects such parts (`EntityTooSmall` at Complete).
    ///
    /// `first_part_size` is raised to 1 and `max_part_size` to `first_part_size` if smaller.
    pub fn unchecked(first_part_size: u64, max_part_size: u64) -> Self {
        let first = first_part_size.max(1);
        Self::build(
            first,
            max_part_size.max(first),
            DEFAULT_GROWTH_INTERVAL,
            MAX_PART_NUMBER,
            1,
        )
    }

    /// The same plan with the part size doubling every `parts` parts (at least 1).
    pub fn with_growth_interval(self, parts: u32) -> Self {
        Self::build(
            self.first,
            self.max,
            parts.max(1),
            self.max_parts,
            self.min_part_size,
        )
    }

    /// The same plan limited to `max_parts` parts (clamped to 1..=10,000), for tests that reach
    /// the ceiling quickly.
    pub fn with_max_parts(self, max_parts: u32) -> Self {
        Self::build(
            self.first,
            self.max,
            self.growth_interval,
            max_parts.clamp(1, MAX_PART_NUMBER),
            self.min_part_size,
        )
    }

    /// The same plan with a first part large enough that a stream of `total_bytes` fits in the
    /// first tier, that is in at most `growth_interval` evenly sized parts (or in parts of the
    /// largest size, if it is larger than that). The first part never shrinks.
    pub fn with_size_hint(self, total_bytes: u64) -> Self {
        let even = total_bytes.div_ceil(u64::from(self.growth_interval));
        let alignment = if self.min_part_size >= MIN_PART_SIZE {
            SIZE_HINT_ALIGNMENT
        } else {
            1
        };
        let even = even.div_ceil(alignment).saturating_mul(alignment);
        let first = even.clamp(self.first, self.max);
        Self::build(
            first,
            self.max,
            self.growth_interval,
            self.max_parts,
            self.min_part_size,
        )
    }

    fn build(
        first: u64,
        max: u64,
        growth_interval: u32,
        max_parts: u32,
        min_part_size: u64,
    ) -> Self {
        let mut plan = Self {
            first,
            max,
            growth_interval,
            max_parts,
            min_part_size,
            ceiling: 0,
        };
        plan.ceiling = (1..=max_parts).fold(0u64, |sum, n| sum.saturating_add(plan.part_size(n)));
        plan
    }

    /// The size of part `part_number` (1-based); 0 outside `1..=max_parts()`.
    pub fn part_size(&self, part_number: u32) -> u64 {
        if part_number == 0 || part_number > self.max_parts {
            return 0;
        }
        let tier = (part_number - 1) / self.growth_interval;
        if tier >= 63 {
            return self.max;
        }
        self.first
            .checked_mul(1u64 << tier)
            .map_or(self.max, |size| size.min(self.max))
    }

    /// The most bytes a stream can have under this plan: the sum of all its part sizes.
    pub fn ceiling(&self) -> u64 {
        self.ceiling
    }

    /// The bytes in parts `1..part_number` when every part is full.
    pub fn bytes_before(&self, part_number: u32) -> u64 {
        (1..part_number.min(self.max_parts + 1))
            .fold(0u64, |sum, n| sum.saturating_add(self.part_size(n)))
    }

    /// How many parts a stream of `total_bytes` takes (0 for an empty stream), or `None` if it
    /// exceeds the [`ceiling`](Self::ceiling).
    pub fn parts_for(&self, total_bytes: u64) -> Option<u32> {
        let mut sum = 0u64;
        for n in 1..=self.max_parts {
            if sum >= total_bytes {
                return Some(n - 1);
            }
            sum = sum.saturating_add(self.part_size(n));
        }
        (sum >= total_bytes).then_some(self.max_parts)
    }

    /// The size of the first part.
    pub fn first_part_size(&self) -> u64 {
        self.first
    }

    /// The largest part size (the cap).
    pub fn max_part_size(&self) -> u64 {
        self.max
    }

    /// Parts between doublings.
    pub fn growth_interval(&self) -> u32 {
        self.growth_interval
    }

    /// The most parts the plan uses.
    pub fn max_parts(&self) -> u32 {
        self.max_parts
    }

    /// The smallest part the writer may cut early (for a durability point): OSS's 100 KB for
    /// checked plans, 1 byte for [`unchecked`](Self::unchecked) ones.
    pub fn min_part_size(&self) -> u64 {
        self.min_part_size
    }
}

fn config(message: String) -> Error {
    Error::new(ErrorKind::Config, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn default_plan_tiers_and_ceiling() {
        let plan = PartSizePlan::default();
        assert_eq!(plan.part_size(0), 0);
        assert_eq!(plan.part_size(1), 8 * MIB);
        assert_eq!(plan.part_size(500), 8 * MIB);
        assert_eq!(plan.part_size(501), 16 * MIB);
        assert_eq!(plan.part_size(1001), 32 * MIB);
        assert_eq!(plan.part_size(1501), 64 * MIB);
        assert_eq!(plan.part_size(2000), 64 * MIB);
        assert_eq!(plan.part_size(2001), 128 * MIB);
        assert_eq!(plan.part_size(10_000), 128 * MIB);
        assert_eq!(plan.part_size(10_001), 0);
        // 500 × (8 + 16 + 32 + 64) MiB + 8000 × 128 MiB
        assert_eq!(plan.ceiling(), (500 * 120 + 8000 * 128) * MIB);
        assert!(
            plan.ceiling() >= 1 << 40,
            "1 TiB must fit in the default budget"
        );
        assert_eq!(plan.bytes_before(501), 500 * 8 * MIB);
        assert_eq!(plan.bytes_before(10_001), plan.ceiling());
    }

    #[test]
    fn every_part_respects_oss_limits_and_grows() {
        let plan = PartSizePlan::default();
        let mut previous = 0;
        for n in 1..=plan.max_parts() {
            let size = plan.part_size(n);
            assert!((MIN_PART_SIZE..=MAX_PART_SIZE).contains(&size), "part {n}");
            assert!(size >= previous);
            assert!(size <= DEFAULT_MAX_MEMORY / 2);
            previous = size;
        }
    }

    #[test]
    fn parts_for_counts_parts() {
        let plan = PartSizePlan::default();
        assert_eq!(plan.parts_for(0), Some(0));
        assert_eq!(plan.parts_for(1), Some(1));
        assert_eq!(plan.parts_for(8 * MIB), Some(1));
        assert_eq!(plan.parts_for(8 * MIB + 1), Some(2));
        assert_eq!(plan.parts_for(plan.ceiling()), Some(10_000));
        assert_eq!(plan.parts_for(plan.ceiling() + 1), None);
    }

    #[test]
    fn size_hint_gives_even_parts() {
        let plan = PartSizePlan::default().with_size_hint(10 << 30);
        // 10 GiB / 500 = 20.48 MiB, rounded up to 21 MiB
        assert_eq!(plan.first_part_size(), 21 * MIB);
        let parts = plan.parts_for(10 << 30).unwrap();
        assert!(parts <= 500);
        assert!((1..=parts).all(|n| plan.part_size(n) == 21 * MIB));
        // A huge hint uses the cap; a tiny one never shrinks the first part.
        assert_eq!(
            PartSizePlan::default()
                .with_size_hint(1 << 40)
                .first_part_size(),
            128 * MIB
        );
        assert_eq!(
            PartSizePlan::default().with_size_hint(10).first_part_size(),
            8 * MIB
        );
        let tib = PartSizePlan::default().with_size_hint(1 << 40);
        assert_eq!(tib.parts_for(1 << 40), Some(8192));
    }

    #[test]
    fn checked_constructors_name_their_rule() {
        let error = PartSizePlan::new(1000, 1000).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(
            error.to_string().contains("at least 102400 bytes"),
            "{error}"
        );
        assert!(PartSizePlan::new(MIN_PART_SIZE, MAX_PART_SIZE + 1).is_err());
        assert!(PartSizePlan::new(2 * MIB, MIB).is_err());
        let error = PartSizePlan::for_memory(8 * MIB, 10 * MIB).unwrap_err();
        assert!(error.to_string().contains("two parts"), "{error}");
        assert_eq!(
            PartSizePlan::for_memory(8 * MIB, 64 << 30)
                .unwrap()
                .max_part_size(),
            MAX_PART_SIZE
        );
    }

    #[test]
    fn unchecked_plans_and_overflow() {
        let plan = PartSizePlan::unchecked(0, 0).with_growth_interval(0);
        assert_eq!(plan.part_size(1), 1);
        assert_eq!(plan.growth_interval(), 1);
        assert_eq!(plan.min_part_size(), 1);
        let plan = PartSizePlan::unchecked(3, u64::MAX).with_growth_interval(1);
        assert_eq!(plan.part_size(2), 6);
        assert_eq!(plan.part_size(100), u64::MAX);
        assert_eq!(plan.ceiling(), u64::MAX);
        let plan = PartSizePlan::unchecked(10, 10).with_max_parts(5);
        assert_eq!(plan.ceiling(), 50);
        assert_eq!(plan.part_size(6), 0);
        assert_eq!(
            PartSizePlan::unchecked(1, 1).with_max_parts(0).max_parts(),
            1
        );
    }
}
