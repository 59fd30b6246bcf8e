//! The CRC-64 vectors of the official SDKs (`tests/data/crc64-vectors.json`, copied from
//! `shared/vectors/`) through `osspipe::crc64`: whole-input values, incremental feeding, and
//! the part-combination folds a multipart upload uses.
//!
//! The file describes its inputs instead of embedding them; `input_for` rebuilds each one and
//! checks its length and SHA-256 against the file, so a wrong reconstruction fails loudly.

use osspipe::crc64::{self, Crc64};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn load() -> Value {
    serde_json::from_str(include_str!("data/crc64-vectors.json"))
        .expect("crc64-vectors.json parses")
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The input a vector or combine case describes, by its name.
fn input_for(name: &str) -> Vec<u8> {
    match name {
        "empty" => Vec::new(),
        "check-123456789" | "check-123456789-2-parts" => b"123456789".to_vec(),
        "hello-oss" => b"hello oss\n".to_vec(),
        "pattern-1MiB" | "pattern-1MiB-2-parts" | "pattern-1MiB-3-parts" => pattern(1 << 20),
        other => panic!("unknown crc64 vector {other}: teach input_for about it"),
    }
}

fn decimal(value: &Value) -> u64 {
    let text = value.as_str().expect("a decimal string");
    let parsed = crc64::parse_header(text).expect("a u64");
    assert_eq!(parsed.to_string(), text);
    parsed
}

fn hex(value: &Value) -> u64 {
    let text = value.as_str().expect("a hex string");
    u64::from_str_radix(text.trim_start_matches("0x"), 16).expect("hex")
}

#[test]
fn algorithm_check_value() {
    let root = load();
    let check = hex(&root["algorithm"]["check_123456789"]);
    assert_eq!(crc64::checksum(b"123456789"), check);
}

#[test]
fn values() {
    let root = load();
    let vectors = root["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4, "value vector count");
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        let input = input_for(name);
        assert_eq!(
            input.len() as u64,
            vector["length"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            hex::encode(Sha256::digest(&input)),
            vector["sha256"].as_str().unwrap(),
            "{name}: reconstructed input"
        );
        let expected = decimal(&vector["crc64_decimal"]);
        assert_eq!(
            expected,
            hex(&vector["crc64_hex"]),
            "{name}: file is consistent"
        );
        assert_eq!(crc64::checksum(&input), expected, "{name}");

        // Fed in uneven pieces, the digest is the same.
        let mut digest = Crc64::new();
        for piece in input.chunks(4093) {
            digest.update(piece);
        }
        assert_eq!(digest.value(), expected, "{name}: incremental");
        assert_eq!(digest.len(), input.len() as u64);
    }
}

#[test]
fn part_combinations() {
    let root = load();
    let cases = root["combine"].as_array().unwrap();
    assert_eq!(cases.len(), 3, "combine case count");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let input = input_for(name);
        let whole = decimal(&case["whole_object_crc64_decimal"]);
        assert_eq!(crc64::checksum(&input), whole, "{name}: whole object");
        let mut offset = 0usize;
        let mut folded = 0u64;
        for part in case["parts"].as_array().unwrap() {
            let len = part["length"].as_u64().unwrap();
            let bytes = &input[offset..offset + len as usize];
            offset += len as usize;
            let crc = decimal(&part["crc64_decimal"]);
            assert_eq!(crc, hex(&part["crc64_hex"]));
            assert_eq!(crc64::checksum(bytes), crc, "{name}: part at {offset}");
            folded = crc64::combine(folded, crc, len);
            assert_eq!(
                folded,
                decimal(&part["running_combined_decimal"]),
                "{name}: running fold"
            );
        }
        assert_eq!(offset, input.len(), "{name}: parts cover the input");
        assert_eq!(folded, decimal(&case["combined_crc64_decimal"]), "{name}");
        assert_eq!(folded, hex(&case["combined_crc64_hex"]), "{name}");
        assert_eq!(folded, whole, "{name}");
    }
}

#[test]
fn pairwise_example_and_identities() {
    let root = load();
    let example = &root["combine_pairwise_example"];
    let crc1 = decimal(&example["crc1_decimal"]);
    let crc2 = decimal(&example["crc2_decimal"]);
    let len2 = example["len2"].as_u64().unwrap();
    assert_eq!(
        crc64::combine(crc1, crc2, len2),
        decimal(&example["combine(crc1, crc2, len2)_decimal"])
    );
    // The identities the file states.
    assert_eq!(crc64::combine(0, crc2, len2), crc2);
    assert_eq!(crc64::combine(crc1, 0, 0), crc1);
}
