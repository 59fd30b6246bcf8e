//! CRC-64/XZ folded 256 bytes at a time with 256-bit carry-less multiplies (x86-64 with AVX2
//! and VPCLMULQDQ, e.g. AMD Zen 3 and later, Intel Ice Lake and later).
//!
//! `crc64fast` folds 128 bytes per step with 128-bit `PCLMULQDQ`; on the bench machine (AMD EPYC,
//! no AVX-512) that is ~8-11 GiB/s, and the server and the writer each spend a tenth of a CPU
//! second per GiB in it. Folding eight 256-bit lanes at once runs at about twice that.
//!
//! How it works: the CRC of a message is its polynomial times x^64 modulo P. A 128-bit piece of
//! the message `d` bytes before some later piece can be replaced by its product with x^(8d)
//! (mod P) added into that later piece, without changing the CRC; the two 64-bit halves of the
//! piece are multiplied by `k(8d + 63)` (low half) and `k(8d - 1)` (high half). The main loop
//! keeps sixteen 128-bit pieces (eight 256-bit registers) and moves each forward by 256 bytes
//! per step; at the end the sixteen pieces are folded into the last one, and the 16 bytes left
//! (plus the input's tail of < 256 bytes) go through a slice-by-8 table.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::{
    __m128i, __m256i, _mm256_castsi256_si128, _mm256_clmulepi64_epi128, _mm256_extracti128_si256,
    _mm256_loadu_si256, _mm256_set_epi64x, _mm256_xor_si256, _mm_clmulepi64_si128, _mm_set_epi64x,
    _mm_storeu_si128, _mm_xor_si128,
};

use super::POLY_REFLECTED;

/// Bytes folded per step of the main loop: eight 256-bit registers.
const STEP_BYTES: usize = 256;

/// Proof that this CPU has what [`Wide::update`] needs (AVX2, PCLMULQDQ, VPCLMULQDQ): the
/// features are detected once, when a digest picks its engine, not on every update.
#[derive(Debug, Clone, Copy)]
// Built only on x86-64; elsewhere `detect` always says no.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) struct Wide(());

impl Wide {
    /// `Some` if this CPU can fold 256-bit lanes.
    pub(super) fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            let supported = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("pclmulqdq")
                && std::arch::is_x86_feature_detected!("vpclmulqdq");
            supported.then_some(Self(()))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            None
        }
    }

    /// Feeds `bytes` into the raw CRC register `state` (all ones for a new digest; the CRC is
    /// its complement).
    pub(super) fn update(self, state: u64, bytes: &[u8]) -> u64 {
        let bulk = bytes.len() / STEP_BYTES * STEP_BYTES;
        if bulk == 0 {
            return table_update(state, bytes);
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `self` exists only if the CPU has AVX2, PCLMULQDQ and VPCLMULQDQ (see
        // `detect`), and `fold` reads only inside the slice it is given, whose length is a
        // non-zero multiple of 256.
        let state = unsafe { fold(state, &bytes[..bulk]) };
        table_update(state, &bytes[bulk..])
    }
}

/// `bit_reverse(x^n mod P)`, P being the ECMA-182 polynomial: the folding multipliers in the
/// reflected bit order the register uses.
#[cfg(target_arch = "x86_64")]
const fn k(n: u32) -> u64 {
    let poly = POLY_REFLECTED.reverse_bits();
    let mut remainder: u64 = 1;
    let mut i = 0;
    while i < n {
        let carry = remainder >> 63;
        remainder <<= 1;
        if carry == 1 {
            remainder ^= poly;
        }
        i += 1;
    }
    remainder.reverse_bits()
}

/// The multipliers that move a 128-bit piece forward by `distance` bytes: (low half, high half).
#[cfg(target_arch = "x86_64")]
const fn multipliers(distance: u32) -> (u64, u64) {
    (k(8 * distance + 63), k(8 * distance - 1))
}

/// Moves each 128-bit piece of the main loop forward by one step.
#[cfg(target_arch = "x86_64")]
const STEP_MULTIPLIERS: (u64, u64) = multipliers(STEP_BYTES as u32);

/// `FINAL_MULTIPLIERS[j]` moves piece `j` of the sixteen onto the last one, 16·(15 − j) bytes on.
#[cfg(target_arch = "x86_64")]
const FINAL_MULTIPLIERS: [(u64, u64); 15] = {
    let mut table = [(0, 0); 15];
    let mut j = 0;
    while j < 15 {
        table[j] = multipliers(16 * (15 - j as u32));
        j += 1;
    }
    table
};

/// Slice-by-8 tables: `TABLES[0]` is the byte-at-a-time table, `TABLES[s]` advances a byte
/// through `s` more zero bytes.
static TABLES: [[u64; 256]; 8] = {
    let mut tables = [[0u64; 256]; 8];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut slice = 1;
    while slice < 8 {
        let mut byte = 0;
        while byte < 256 {
            let previous = tables[slice - 1][byte];
            tables[slice][byte] = (previous >> 8) ^ tables[0][(previous & 0xff) as usize];
            byte += 1;
        }
        slice += 1;
    }
    tables
};

/// The portable path for short inputs and tails, 8 bytes per step.
fn table_update(mut state: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut value = state ^ u64::from_le_bytes(word.try_into().expect("8-byte chunk"));
        state = 0;
        for table in TABLES.iter().rev() {
            state ^= table[(value & 0xff) as usize];
            value >>= 8;
        }
    }
    for &byte in words.remainder() {
        state = TABLES[0][((state ^ u64::from(byte)) & 0xff) as usize] ^ (state >> 8);
    }
    state
}

/// Folds `blocks` (a non-zero multiple of 256 bytes) into `state`.
///
/// # Safety
/// The CPU must have AVX2, PCLMULQDQ and VPCLMULQDQ.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,pclmulqdq,vpclmulqdq")]
unsafe fn fold(state: u64, blocks: &[u8]) -> u64 {
    debug_assert!(!blocks.is_empty() && blocks.len().is_multiple_of(STEP_BYTES));
    let load = |offset: usize| -> __m256i {
        let piece: &[u8; 32] = blocks[offset..offset + 32]
            .try_into()
            .expect("32-byte piece");
        // SAFETY: an unaligned 32-byte load from a 32-byte array.
        unsafe { _mm256_loadu_si256(piece.as_ptr().cast()) }
    };
    let mut lanes: [__m256i; 8] = std::array::from_fn(|i| load(32 * i));
    // The register's initial value is XORed into the first 8 bytes of the message.
    lanes[0] = _mm256_xor_si256(lanes[0], _mm256_set_epi64x(0, 0, 0, state as i64));

    let (low, high) = STEP_MULTIPLIERS;
    let step = _mm256_set_epi64x(high as i64, low as i64, high as i64, low as i64);
    for offset in (STEP_BYTES..blocks.len()).step_by(STEP_BYTES) {
        for (i, lane) in lanes.iter_mut().enumerate() {
            let high_product = _mm256_clmulepi64_epi128(*lane, step, 0x11);
            let low_product = _mm256_clmulepi64_epi128(*lane, step, 0x00);
            *lane = _mm256_xor_si256(
                _mm256_xor_si256(high_product, low_product),
                load(offset + 32 * i),
            );
        }
    }

    // The sixteen 128-bit pieces in message order, folded onto the last.
    let pieces: [__m128i; 16] = std::array::from_fn(|j| {
        let lane = lanes[j / 2];
        if j % 2 == 0 {
            _mm256_castsi256_si128(lane)
        } else {
            _mm256_extracti128_si256(lane, 1)
        }
    });
    let mut last = pieces[15];
    for (piece, &(low, high)) in pieces.iter().zip(FINAL_MULTIPLIERS.iter()) {
        let multiplier = _mm_set_epi64x(high as i64, low as i64);
        let high_product = _mm_clmulepi64_si128(*piece, multiplier, 0x11);
        let low_product = _mm_clmulepi64_si128(*piece, multiplier, 0x00);
        last = _mm_xor_si128(last, _mm_xor_si128(high_product, low_product));
    }
    let mut rest = [0u8; 16];
    // SAFETY: an unaligned 16-byte store into a 16-byte array.
    unsafe { _mm_storeu_si128(rest.as_mut_ptr().cast(), last) };
    // What is left is a 16-byte message with the same CRC register contents, from zero.
    table_update(0, &rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn multipliers_are_the_published_folding_constants() {
        // The constants crc64fast (and Intel's CRC white paper method) use for CRC-64/XZ.
        assert_eq!(k(127), 0xdabe_95af_c787_5f40);
        assert_eq!(k(191), 0xe05d_d497_ca39_3ae4);
        assert_eq!(k(1023), 0xd7d8_6b2a_f73d_e740);
        assert_eq!(k(1087), 0x8757_d71d_4fcc_1000);
    }

    #[test]
    fn the_table_path_alone_is_the_crc() {
        assert_eq!(!table_update(!0, b"123456789"), 0x995D_C9BB_DF19_39FA);
    }
}
