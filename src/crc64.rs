//! CRC-64/XZ, the checksum OSS returns in `x-oss-hash-crc64ecma`.
//!
//! Despite the header's name this is the *reflected* ECMA-182 polynomial with all-ones init and
//! xor-out (the catalogue's CRC-64/XZ), not the catalogue's CRC-64/ECMA-182. The bytes are hashed
//! by 256-bit carry-less multiplies where the CPU has them (`wide`: x86-64 with AVX2 and
//! VPCLMULQDQ), else by `crc64fast` (128-bit SIMD, several GiB/s); [`combine`] folds part
//! checksums into the object checksum without touching the bytes again, which is how a multipart
//! object's CRC is checked.

mod wide;

/// The reflected ECMA-182 polynomial.
const POLY_REFLECTED: u64 = 0xC96C_5795_D787_0F42;

/// An incremental CRC-64/XZ digest.
#[derive(Clone)]
pub struct Crc64 {
    engine: Engine,
    len: u64,
}

/// Which code hashes the bytes, chosen once per digest from what the CPU can do.
#[derive(Clone)]
enum Engine {
    /// [`wide`]'s raw register (all ones at the start; the CRC is its complement).
    Wide(wide::Wide, u64),
    Portable(crc64fast::Digest),
}

impl std::fmt::Debug for Crc64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crc64")
            .field("value", &self.value())
            .field("len", &self.len)
            .finish()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc64 {
    /// A digest of no bytes (its value is 0).
    pub fn new() -> Self {
        let engine = match wide::Wide::detect() {
            Some(wide) => Engine::Wide(wide, !0),
            None => Engine::Portable(crc64fast::Digest::new()),
        };
        Self { engine, len: 0 }
    }

    /// Feeds more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.engine {
            Engine::Wide(wide, state) => *state = wide.update(*state, bytes),
            Engine::Portable(digest) => digest.write(bytes),
        }
        self.len += bytes.len() as u64;
    }

    /// The CRC of all bytes fed so far.
    pub fn value(&self) -> u64 {
        match &self.engine {
            Engine::Wide(_, state) => !state,
            Engine::Portable(digest) => digest.sum64(),
        }
    }

    /// How many bytes were fed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The CRC-64/XZ of `bytes` in one call.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut digest = Crc64::new();
    digest.update(bytes);
    digest.value()
}

/// CRC(A ‖ B) from CRC(A), CRC(B) and the length of B, without the bytes.
///
/// `combine(c, x, 0) == c` and `combine(0, c, n) == c`.
pub fn combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    // The zlib method (a 64x64 GF(2) matrix appends zero bits to crc_a; the init/xor-out terms
    // cancel, leaving a plain XOR), with the operators for 2^k zero bytes computed once: a
    // combine is then one matrix-vector product per set bit of len_b instead of ~2 log2(len_b)
    // matrix squarings (the writer combines once per part and again at Complete).
    let table = zero_byte_operators();
    let mut crc = crc_a;
    let mut len = len_b;
    let mut k = 0;
    while len != 0 {
        if len & 1 != 0 {
            crc = gf2_matrix_times(&table[k], crc);
        }
        len >>= 1;
        k += 1;
    }
    crc ^ crc_b
}

/// `table[k]` appends 2^k zero bytes to a CRC.
fn zero_byte_operators() -> &'static [[u64; 64]; 64] {
    static TABLE: std::sync::OnceLock<Box<[[u64; 64]; 64]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        // One zero bit.
        let mut op = [0u64; 64];
        op[0] = POLY_REFLECTED;
        let mut row = 1u64;
        for slot in op.iter_mut().skip(1) {
            *slot = row;
            row <<= 1;
        }
        // Eight zero bits: one zero byte.
        for _ in 0..3 {
            op = gf2_matrix_square(&op);
        }
        let mut table = Box::new([[0u64; 64]; 64]);
        for slot in table.iter_mut() {
            *slot = op;
            op = gf2_matrix_square(&op);
        }
        table
    })
}

fn gf2_matrix_times(matrix: &[u64; 64], mut vector: u64) -> u64 {
    let mut sum = 0;
    let mut index = 0;
    while vector != 0 {
        if vector & 1 != 0 {
            sum ^= matrix[index];
        }
        vector >>= 1;
        index += 1;
    }
    sum
}

fn gf2_matrix_square(matrix: &[u64; 64]) -> [u64; 64] {
    let mut square = [0u64; 64];
    for (n, slot) in square.iter_mut().enumerate() {
        *slot = gf2_matrix_times(matrix, matrix[n]);
    }
    square
}

/// Parses the decimal form of `x-oss-hash-crc64ecma`.
pub fn parse_header(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitwise(data: &[u8]) -> u64 {
        let mut crc = !0u64;
        for &b in data {
            crc ^= u64::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ POLY_REFLECTED
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn check_value() {
        assert_eq!(checksum(b"123456789"), 0x995D_C9BB_DF19_39FA);
        assert_eq!(checksum(b""), 0);
        assert_eq!(checksum(b"hello oss\n"), 17223430255209957478);
    }

    #[test]
    fn combine_matches_concatenation() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for split in [0, 1, 7, 100, 4096, 9999, 10_000] {
            let (a, b) = data.split_at(split);
            assert_eq!(
                combine(checksum(a), checksum(b), b.len() as u64),
                checksum(&data)
            );
        }
        assert_eq!(combine(0, 42, 5), 42);
        assert_eq!(combine(42, 0, 0), 42);
    }

    #[test]
    fn combine_covers_long_lengths() {
        // Lengths with high bits set exercise the upper operators of the table.
        let data: Vec<u8> = (0..(3 << 20) + 17u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let whole = checksum(&data);
        for split in [1 << 16, (1 << 20) + 1, (2 << 20) + 12_345, data.len() - 1] {
            let (a, b) = data.split_at(split);
            assert_eq!(combine(checksum(a), checksum(b), b.len() as u64), whole);
        }
        let folded = data.chunks(393_216 + 7).fold(0, |crc, piece| {
            combine(crc, checksum(piece), piece.len() as u64)
        });
        assert_eq!(folded, whole);
    }

    /// Feeds `data` in pieces of the given sizes (cycled), to `digest`.
    fn fed_in_pieces(mut digest: Crc64, data: &[u8], sizes: &[usize]) -> u64 {
        let mut rest = data;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(size.clamp(1, rest.len()));
            digest.update(piece);
            rest = tail;
        }
        digest.value()
    }

    #[test]
    fn the_fastest_engine_this_cpu_has_is_chosen() {
        let engine = Crc64::new().engine;
        assert_eq!(
            matches!(engine, Engine::Wide(..)),
            wide::Wide::detect().is_some()
        );
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        if std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| info.contains(" vpclmulqdq")) {
            assert!(matches!(engine, Engine::Wide(..)));
        }
    }

    #[test]
    fn both_engines_agree_on_long_inputs() {
        let data: Vec<u8> = (0..(1 << 20) + 333u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let portable = Crc64 {
            engine: Engine::Portable(crc64fast::Digest::new()),
            len: 0,
        };
        let expected = fed_in_pieces(portable, &data, &[data.len()]);
        for sizes in [
            &[data.len()][..],
            &[256],
            &[255, 257, 4096],
            &[1, 65_536, 300_001],
        ] {
            assert_eq!(
                fed_in_pieces(Crc64::new(), &data, sizes),
                expected,
                "{sizes:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn simd_matches_bitwise(data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000)) {
            proptest::prop_assert_eq!(checksum(&data), bitwise(&data));
        }

        /// Any way of cutting the input into updates gives the same CRC (each update folds what
        /// it can in 256-byte steps and hashes its tail by table).
        #[test]
        fn pieces_match_bitwise(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..20_000),
            sizes in proptest::collection::vec(1usize..3000, 1..8),
        ) {
            proptest::prop_assert_eq!(fed_in_pieces(Crc64::new(), &data, &sizes), bitwise(&data));
        }

        /// Appending `x` then `y` zero bytes equals appending `x + y`, for any 62-bit lengths.
        #[test]
        fn combine_shifts_compose(crc in proptest::num::u64::ANY, x in 0u64..1 << 62, y in 0u64..1 << 62) {
            proptest::prop_assert_eq!(combine(combine(crc, 0, x), 0, y), combine(crc, 0, x + y));
        }
    }
}
