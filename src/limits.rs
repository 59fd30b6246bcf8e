//! OSS's limits, and the checks that refuse bad input before any request is sent.
//!
//! See <https://www.alibabacloud.com/help/en/oss/user-guide/limits>.

/// The smallest part number.
pub const MIN_PART_NUMBER: u32 = 1;
/// The largest part number: a multipart upload has at most 10,000 parts.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// Every part but the last must be at least 100 KB (checked by OSS at Complete).
pub const MIN_PART_SIZE: u64 = 100 * 1024;
/// A part is at most 5 GB.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// A PutObject body is at most 5 GB.
pub const MAX_PUT_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// An object key is at most 1023 bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1023;
/// A bucket name is at least 3 characters.
pub const MIN_BUCKET_NAME_LEN: usize = 3;
/// A bucket name is at most 63 characters.
pub const MAX_BUCKET_NAME_LEN: usize = 63;
/// User metadata totals at most 8 KB.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
/// ListParts and ListMultipartUploads return at most 1,000 entries a page.
pub const MAX_LIST_PAGE: u32 = 1000;
/// Signed times may differ from the server's clock by at most 15 minutes.
pub const MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

use crate::{Error, Result};

/// Quotes a user-supplied value for an error message.
fn shown(value: &str) -> String {
    // Long inputs are cut so an error message stays one readable line.
    const SHOWN_CHARS: usize = 80;
    if value.chars().count() > SHOWN_CHARS {
        let cut: String = value.chars().take(SHOWN_CHARS).collect();
        format!("{cut:?}...")
    } else {
        format!("{value:?}")
    }
}

/// Checks a bucket name: 3-63 characters of `a-z`, `0-9` and `-`, not starting or ending with
/// `-` (the rule Py-v2 checks on the client, §1.3).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the rule and the name.
pub fn validate_bucket_name(name: &str) -> Result<()> {
    let ok = (MIN_BUCKET_NAME_LEN..=MAX_BUCKET_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "bucket name must be {MIN_BUCKET_NAME_LEN}-{MAX_BUCKET_NAME_LEN} characters of a-z, \
             0-9 and '-', not starting or ending with '-': got {}",
            shown(name)
        )))
    }
}

/// Checks an object key: 1-1023 bytes of UTF-8 (a `&str` is UTF-8 already), not starting with
/// `/` or `\` (§1.3), and without NUL.
///
/// NUL is not an OSS rule: OSS accepts it. We refuse it because such a key cannot be passed
/// through C strings, file names or most shells, so it is almost surely a bug in the caller.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the rule that was broken.
pub fn validate_object_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::invalid_input(format!(
            "object key must be 1-{MAX_KEY_BYTES} bytes of UTF-8: got {} bytes ({})",
            key.len(),
            shown(key)
        )));
    }
    if key.starts_with('/') || key.starts_with('\\') {
        return Err(Error::invalid_input(format!(
            "object key must not start with '/' or '\\': got {}",
            shown(key)
        )));
    }
    if key.contains('\0') {
        return Err(Error::invalid_input(format!(
            "object key must not contain NUL (refused by osspipe, not by OSS): got {}",
            shown(key)
        )));
    }
    Ok(())
}

/// Checks a part number: 1..=10000.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the range and the number.
pub fn validate_part_number(part_number: u32) -> Result<()> {
    if (MIN_PART_NUMBER..=MAX_PART_NUMBER).contains(&part_number) {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "part number must be {MIN_PART_NUMBER}..={MAX_PART_NUMBER}: got {part_number}"
        )))
    }
}

/// Checks a part's size: at most 5 GiB, and at least 100 KiB unless it is the last part (OSS
/// checks the minimum only at Complete, §5.3; checking it here fails before any byte is sent).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the limit and the size.
pub fn validate_part_size(size: u64, is_last: bool) -> Result<()> {
    if size > MAX_PART_SIZE {
        return Err(Error::invalid_input(format!(
            "part size must be at most {MAX_PART_SIZE} bytes (5 GiB): got {size}"
        )));
    }
    if !is_last && size < MIN_PART_SIZE {
        return Err(Error::invalid_input(format!(
            "every part but the last must be at least {MIN_PART_SIZE} bytes (100 KiB): got {size}"
        )));
    }
    Ok(())
}

/// Checks a PutObject body's size: at most 5 GiB.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the limit and the size.
pub fn validate_put_object_size(size: u64) -> Result<()> {
    if size > MAX_PUT_OBJECT_SIZE {
        return Err(Error::invalid_input(format!(
            "a PutObject body must be at most {MAX_PUT_OBJECT_SIZE} bytes (5 GiB): got {size}"
        )));
    }
    Ok(())
}

/// Checks user metadata: names are non-empty tokens (`A-Z a-z 0-9 - _ .`, so that
/// `x-oss-meta-<name>` is a valid header name), values are valid header values, and names plus
/// values total at most 8 KiB.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the rule that was broken.
pub fn validate_metadata(metadata: &[(String, String)]) -> Result<()> {
    let mut total = 0usize;
    for (name, value) in metadata {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(Error::invalid_input(format!(
                "metadata names must be non-empty and use only A-Z, a-z, 0-9, '-', '_' and '.': \
                 got {}",
                shown(name)
            )));
        }
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(Error::invalid_input(format!(
                "metadata values must not contain control characters: got {} for {name:?}",
                shown(value)
            )));
        }
        total += name.len() + value.len();
    }
    if total > MAX_METADATA_BYTES {
        return Err(Error::invalid_input(format!(
            "user metadata must total at most {MAX_METADATA_BYTES} bytes: got {total}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn message(result: Result<()>) -> String {
        let error = result.expect_err("must be refused");
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        error.to_string()
    }

    #[test]
    fn bucket_names() {
        for good in ["abc", "my-bucket-1", "0ab", &"a".repeat(63)] {
            validate_bucket_name(good).unwrap();
        }
        assert_eq!(
            message(validate_bucket_name("Ab")),
            "bucket name must be 3-63 characters of a-z, 0-9 and '-', not starting or ending \
             with '-': got \"Ab\""
        );
        for bad in [
            "ab",
            "-abc",
            "abc-",
            "a_bc",
            "a.bc",
            "ABC",
            "",
            &"a".repeat(64),
            "ab c",
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn object_keys() {
        for good in [
            "a",
            "docs/hello world.txt",
            "数据/报告 2025.csv",
            "a+b=c%?#",
            &"k".repeat(1023),
        ] {
            validate_object_key(good).unwrap();
        }
        // 1023 bytes counted as bytes, not characters: 342 three-byte characters are 1026.
        assert!(message(validate_object_key(&"数".repeat(342)))
            .starts_with("object key must be 1-1023 bytes of UTF-8: got 1026 bytes"));
        assert!(message(validate_object_key("")).contains("got 0 bytes"));
        assert_eq!(
            message(validate_object_key("/etc")),
            "object key must not start with '/' or '\\': got \"/etc\""
        );
        assert!(validate_object_key("\\x").is_err());
        assert!(message(validate_object_key("a\0b")).contains("not by OSS"));
        assert!(message(validate_object_key(&"k".repeat(2000))).contains("\"..."));
    }

    #[test]
    fn part_numbers_and_sizes() {
        validate_part_number(1).unwrap();
        validate_part_number(10_000).unwrap();
        assert_eq!(
            message(validate_part_number(0)),
            "part number must be 1..=10000: got 0"
        );
        assert!(validate_part_number(10_001).is_err());
        validate_part_size(MIN_PART_SIZE, false).unwrap();
        validate_part_size(0, true).unwrap();
        validate_part_size(MAX_PART_SIZE, false).unwrap();
        assert_eq!(
            message(validate_part_size(MIN_PART_SIZE - 1, false)),
            "every part but the last must be at least 102400 bytes (100 KiB): got 102399"
        );
        assert!(validate_part_size(MAX_PART_SIZE + 1, true).is_err());
        validate_put_object_size(MAX_PUT_OBJECT_SIZE).unwrap();
        assert!(validate_put_object_size(MAX_PUT_OBJECT_SIZE + 1).is_err());
    }

    #[test]
    fn metadata() {
        validate_metadata(&[("Project".into(), "Rust Client".into())]).unwrap();
        assert!(validate_metadata(&[("bad name".into(), "v".into())]).is_err());
        assert!(validate_metadata(&[("".into(), "v".into())]).is_err());
        assert!(validate_metadata(&[("n".into(), "a\nb".into())]).is_err());
        let big = vec![("n".to_owned(), "v".repeat(MAX_METADATA_BYTES))];
        assert!(message(validate_metadata(&big)).contains("at most 8192 bytes"));
    }
}
