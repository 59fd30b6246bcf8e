//! Parsing of what people type: `oss://` URLs, human sizes and durations, `KEY=VALUE` pairs.
//!
//! Every parser returns `Err(rule)` with the rule that was broken, so clap (or the caller)
//! can print it and exit with status 2 before any request is sent.

use std::fmt;
use std::time::Duration;

use osspipe::limits;

/// The scheme of object URLs.
const SCHEME: &str = "oss://";

/// `oss://BUCKET/KEY` (or `oss://BUCKET[/PREFIX]` where a prefix is accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OssUrl {
    /// The bucket, checked against OSS's naming rule.
    pub(crate) bucket: String,
    /// The key (or prefix); may be empty only for a prefix.
    pub(crate) key: String,
}

impl fmt::Display for OssUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.bucket, self.key)
    }
}

/// Splits `oss://BUCKET[/REST]` and checks the bucket name.
fn split_url(text: &str) -> Result<(String, String), String> {
    let Some(rest) = text.strip_prefix(SCHEME) else {
        return Err(format!(
            "an object URL must look like oss://BUCKET/KEY: got {text:?}"
        ));
    };
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    limits::validate_bucket_name(bucket).map_err(|e| e.to_string())?;
    Ok((bucket.to_owned(), key.to_owned()))
}

/// `oss://BUCKET/KEY` naming one object: the key must follow OSS's rules (1-1023 bytes of
/// UTF-8, no leading `/` or `\`). Anything else legal in a key (spaces, `?`, `#`, `%`, `+`,
/// non-ASCII) is kept as typed.
pub(crate) fn parse_object_url(text: &str) -> Result<OssUrl, String> {
    let (bucket, key) = split_url(text)?;
    if key.is_empty() {
        return Err(format!(
            "the URL names no object: expected oss://{bucket}/KEY, got {text:?}"
        ));
    }
    limits::validate_object_key(&key).map_err(|e| e.to_string())?;
    Ok(OssUrl { bucket, key })
}

/// `oss://BUCKET`, `oss://BUCKET/` or `oss://BUCKET/PREFIX`: a bucket and an optional key prefix.
pub(crate) fn parse_prefix_url(text: &str) -> Result<OssUrl, String> {
    let (bucket, key) = split_url(text)?;
    if !key.is_empty() {
        limits::validate_object_key(&key)
            .map_err(|e| e.to_string().replacen("object key", "key prefix", 1))?;
    }
    Ok(OssUrl { bucket, key })
}

/// The units [`parse_size`] knows, lower-cased, with their multipliers.
const SIZE_UNITS: &[(&str, u128)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("kib", 1 << 10),
    ("kb", 1_000),
    ("m", 1 << 20),
    ("mib", 1 << 20),
    ("mb", 1_000_000),
    ("g", 1 << 30),
    ("gib", 1 << 30),
    ("gb", 1_000_000_000),
    ("t", 1 << 40),
    ("tib", 1 << 40),
    ("tb", 1_000_000_000_000),
];

/// The size rule, quoted in every size error.
const SIZE_RULE: &str = "a size is a positive number with an optional unit: B, K/KiB, M/MiB, \
                         G/GiB, T/TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000)";

/// A human size: `8MiB`, `8MB`, `1KB`, `6GB`, `100M`, `1.5GiB`, `4096`.
///
/// `K`, `M`, `G`, `T` and the `-iB` units are powers of 1024 (as in `head -c 100M`); `KB`, `MB`,
/// `GB`, `TB` are powers of 1000 (as in GNU coreutils). Units are case-insensitive. The result
/// must be a whole number of bytes, at least 1, and fit in 64 bits.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let invalid = |why: &str| format!("invalid size {text:?}: {why} ({SIZE_RULE})");
    if trimmed.starts_with('-') {
        return Err(invalid("a size cannot be negative"));
    }
    let number_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(number_end);
    let unit = unit.trim_start().to_ascii_lowercase();
    let Some(&(_, multiplier)) = SIZE_UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(invalid(&format!("unknown unit {:?}", unit_as_typed(text))));
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(invalid("no number"));
    }
    // Exact decimal arithmetic: 1.5GiB is 1610612736 bytes, 0.1KiB is not a whole number.
    let digits = format!("{whole}{fraction}");
    let mantissa: u128 = digits
        .parse()
        .map_err(|_| invalid("the number is too large"))?;
    let scale = 10u128
        .checked_pow(fraction.len() as u32)
        .ok_or_else(|| invalid("too many decimals"))?;
    let scaled = mantissa
        .checked_mul(multiplier)
        .ok_or_else(|| invalid("the number is too large"))?;
    if scaled % scale != 0 {
        return Err(invalid("not a whole number of bytes"));
    }
    let bytes = scaled / scale;
    if bytes == 0 {
        return Err(invalid("a size must be at least 1 byte"));
    }
    u64::try_from(bytes).map_err(|_| invalid("larger than 2^64 bytes"))
}

/// The unit part of a size as the user typed it, for the error message.
fn unit_as_typed(text: &str) -> &str {
    let trimmed = text.trim();
    let start = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    trimmed[start..].trim_start()
}

/// A part size: a size within OSS's 100 KiB - 5 GiB.
pub(crate) fn parse_part_size(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text)?;
    if !(limits::MIN_PART_SIZE..=limits::MAX_PART_SIZE).contains(&bytes) {
        return Err(format!(
            "a part must be 100KiB-5GiB ({}-{} bytes), as OSS requires: got {bytes} bytes \
             from {text:?}",
            limits::MIN_PART_SIZE,
            limits::MAX_PART_SIZE
        ));
    }
    Ok(bytes)
}

/// The units [`parse_duration`] knows, with their length in seconds.
const DURATION_UNITS: &[(char, u64)] = &[
    ('s', 1),
    ('m', 60),
    ('h', 60 * 60),
    ('d', 24 * 60 * 60),
    ('w', 7 * 24 * 60 * 60),
];

/// A duration: `30m`, `2h`, `7d`, `90s`, `1w`, or a sum such as `1h30m`. Every number needs a
/// unit (`s`, `m`, `h`, `d`, `w`), so `30` is refused rather than guessed.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let rule = "a duration is a number with a unit s, m, h, d or w, e.g. 30m, 2h, 7d or 1h30m";
    let invalid = |why: &str| format!("invalid duration {text:?}: {why} ({rule})");
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in trimmed.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let Some(&(_, seconds)) = DURATION_UNITS
            .iter()
            .find(|(unit, _)| *unit == c.to_ascii_lowercase())
        else {
            return Err(invalid(&format!("unexpected {c:?}")));
        };
        if number.is_empty() {
            return Err(invalid(&format!("no number before {c:?}")));
        }
        let value: u64 = number
            .parse()
            .map_err(|_| invalid("the number is too large"))?;
        total = value
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| invalid("too long"))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(invalid(&format!("{number} has no unit")));
    }
    Ok(Duration::from_secs(total))
}

/// `KEY=VALUE` (the value may itself contain `=`; the key may not be empty).
pub(crate) fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!(
            "expected KEY=VALUE with a non-empty KEY: got {text:?}"
        )),
    }
}

/// Object tags allowed on one object.
const MAX_TAGS: usize = 10;
/// The longest tag key, in characters.
const MAX_TAG_KEY_CHARS: usize = 128;
/// The longest tag value, in characters.
const MAX_TAG_VALUE_CHARS: usize = 256;

/// `K1=V1&K2=V2`, sent as `x-oss-tagging`: at most 10 tags, keys 1-128 characters, values at
/// most 256, each key once. The text is sent as typed, so keys and values that contain `&`,
/// `=` or non-ASCII characters must already be URL-encoded.
pub(crate) fn parse_tagging(text: &str) -> Result<String, String> {
    let invalid = |why: String| format!("invalid --tagging {text:?}: {why}");
    let mut keys: Vec<&str> = Vec::new();
    for pair in text.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key.is_empty() {
            return Err(invalid("every tag needs a key: use K1=V1&K2=V2".into()));
        }
        if key.chars().count() > MAX_TAG_KEY_CHARS {
            return Err(invalid(format!(
                "a tag key is at most {MAX_TAG_KEY_CHARS} characters"
            )));
        }
        if value.chars().count() > MAX_TAG_VALUE_CHARS {
            return Err(invalid(format!(
                "a tag value is at most {MAX_TAG_VALUE_CHARS} characters"
            )));
        }
        if pair.chars().any(|c| c.is_control() || c == ' ') {
            return Err(invalid(
                "spaces and control characters must be URL-encoded (%20)".into(),
            ));
        }
        if keys.contains(&key) {
            return Err(invalid(format!("the tag key {key:?} appears twice")));
        }
        keys.push(key);
    }
    if keys.len() > MAX_TAGS {
        return Err(invalid(format!(
            "an object has at most {MAX_TAGS} tags, got {}",
            keys.len()
        )));
    }
    Ok(text.to_owned())
}

/// OSS's storage classes, as OSS spells them.
const STORAGE_CLASSES: &[&str] = &[
    "Standard",
    "IA",
    "Archive",
    "ColdArchive",
    "DeepColdArchive",
];

/// A storage class, case-insensitive, returned as OSS spells it.
pub(crate) fn parse_storage_class(text: &str) -> Result<String, String> {
    STORAGE_CLASSES
        .iter()
        .find(|class| class.eq_ignore_ascii_case(text))
        .map(|class| (*class).to_owned())
        .ok_or_else(|| {
            format!(
                "the storage class must be one of {}: got {text:?}",
                STORAGE_CLASSES.join(", ")
            )
        })
}

/// The canned ACLs OSS accepts on an object.
const ACLS: &[&str] = &["default", "private", "public-read", "public-read-write"];

/// An object ACL, case-insensitive.
pub(crate) fn parse_acl(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    if ACLS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!(
            "the ACL must be one of {}: got {text:?}",
            ACLS.join(", ")
        ))
    }
}

/// A header value typed by a person (`--content-type`): printable, no line breaks.
pub(crate) fn parse_header_value(text: &str) -> Result<String, String> {
    if text.is_empty() || text.chars().any(|c| c.is_control()) {
        return Err(format!(
            "must be non-empty and free of control characters: got {text:?}"
        ));
    }
    Ok(text.to_owned())
}

/// Seconds since the Unix epoch of an OSS timestamp such as `2025-01-15T08:00:00.000Z`
/// (ListMultipartUploads' `Initiated`). Fractions are ignored; only UTC (`Z`) is accepted,
/// which is what OSS sends.
pub(crate) fn parse_iso8601_utc(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    let time = time.split('.').next()?;
    let mut time_parts = time.splitn(3, ':');
    let hour: i64 = time_parts.next()?.parse().ok()?;
    let minute: i64 = time_parts.next()?.parse().ok()?;
    let second: i64 = time_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Formats bytes for people: `100.0 MiB`, `512 B`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: &[&str] = &["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Quotes `text` for a POSIX shell when it holds anything but plainly safe characters, so
/// printed commands can be pasted back.
pub(crate) fn shell_quote(text: &str) -> String {
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if safe {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_every_unit() {
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("8MB"), Ok(8_000_000));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("6GB"), Ok(6_000_000_000));
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("8 mib"), Ok(8 << 20));
        assert_eq!(parse_size("2t"), Ok(2 << 40));
        assert_eq!(parse_size(" 1k "), Ok(1024));
    }

    #[test]
    fn sizes_that_break_the_rule() {
        let zero = parse_size("0").unwrap_err();
        assert!(zero.contains("at least 1 byte"), "{zero}");
        let negative = parse_size("-1").unwrap_err();
        assert!(negative.contains("cannot be negative"), "{negative}");
        let unit = parse_size("8XB").unwrap_err();
        assert!(
            unit.starts_with("invalid size \"8XB\": unknown unit \"XB\""),
            "{unit}"
        );
        assert!(unit.contains("powers of 1024"), "{unit}");
        assert!(parse_size("").unwrap_err().contains("no number"));
        assert!(parse_size("MiB").unwrap_err().contains("no number"));
        assert!(parse_size("1.2.3").is_err());
        assert!(parse_size("0.1KiB")
            .unwrap_err()
            .contains("not a whole number of bytes"));
        assert!(parse_size("0.5").is_err());
        assert!(parse_size("20000000TiB").unwrap_err().contains("2^64"));
        assert!(parse_size("99999999999999999999999999999999999999999").is_err());
    }

    #[test]
    fn part_sizes_follow_oss_limits() {
        assert_eq!(parse_part_size("100KiB"), Ok(100 * 1024));
        assert_eq!(parse_part_size("5GiB"), Ok(5 << 30));
        let small = parse_part_size("100KB").unwrap_err();
        assert!(small.contains("100KiB-5GiB"), "{small}");
        assert!(parse_part_size("6GiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("30").unwrap_err().contains("30 has no unit"));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").unwrap_err().contains("no number"));
        assert!(parse_duration("5y").unwrap_err().contains("unexpected 'y'"));
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn object_urls() {
        let url = parse_object_url("oss://demo/random.bin").unwrap();
        assert_eq!(
            (url.bucket.as_str(), url.key.as_str()),
            ("demo", "random.bin")
        );
        let odd = parse_object_url("oss://demo/a b/c?d#e%f+g/数据").unwrap();
        assert_eq!(odd.key, "a b/c?d#e%f+g/数据");
        assert_eq!(odd.to_string(), "oss://demo/a b/c?d#e%f+g/数据");
        assert!(parse_object_url("s3://demo/k")
            .unwrap_err()
            .contains("oss://BUCKET/KEY"));
        assert!(parse_object_url("oss://demo")
            .unwrap_err()
            .contains("names no object"));
        assert!(parse_object_url("oss://demo/").is_err());
        assert!(parse_object_url("oss://Demo/k")
            .unwrap_err()
            .contains("bucket name must be 3-63"));
        assert!(parse_object_url("oss://demo//k")
            .unwrap_err()
            .contains("must not start with '/'"));
        assert!(parse_object_url(&format!("oss://demo/{}", "k".repeat(1024))).is_err());
    }

    #[test]
    fn prefix_urls() {
        assert_eq!(parse_prefix_url("oss://demo").unwrap().key, "");
        assert_eq!(parse_prefix_url("oss://demo/").unwrap().key, "");
        assert_eq!(parse_prefix_url("oss://demo/logs/").unwrap().key, "logs/");
        assert!(parse_prefix_url("oss://demo//x")
            .unwrap_err()
            .contains("key prefix"));
        assert!(parse_prefix_url("oss://x").is_err());
    }

    #[test]
    fn pairs_tags_classes_and_acls() {
        assert_eq!(
            parse_key_value("a=b=c"),
            Ok(("a".to_owned(), "b=c".to_owned()))
        );
        assert!(parse_key_value("=b").is_err());
        assert!(parse_key_value("ab").is_err());
        assert_eq!(parse_tagging("a=1&b=2"), Ok("a=1&b=2".to_owned()));
        assert!(parse_tagging("a=1&a=2").unwrap_err().contains("twice"));
        assert!(parse_tagging("=1").is_err());
        assert!(parse_tagging("a=b c").unwrap_err().contains("%20"));
        let eleven: Vec<String> = (0..11).map(|i| format!("k{i}=v")).collect();
        assert!(parse_tagging(&eleven.join("&"))
            .unwrap_err()
            .contains("at most 10 tags"));
        assert_eq!(parse_storage_class("ia"), Ok("IA".to_owned()));
        assert_eq!(
            parse_storage_class("coldarchive"),
            Ok("ColdArchive".to_owned())
        );
        assert!(parse_storage_class("Glacier").is_err());
        assert_eq!(parse_acl("Public-Read"), Ok("public-read".to_owned()));
        assert!(parse_acl("everyone").is_err());
        assert!(parse_header_value("text/plain").is_ok());
        assert!(parse_header_value("a\nb").is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_iso8601_utc("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_iso8601_utc("2025-01-15T08:00:00.000Z"),
            Some(1_736_928_000)
        );
        assert_eq!(parse_iso8601_utc("2000-03-01T00:00:01Z"), Some(951_868_801));
        assert_eq!(parse_iso8601_utc("2025-01-15 08:00:00"), None);
        assert_eq!(parse_iso8601_utc("2025-13-15T08:00:00Z"), None);
    }

    #[test]
    fn formatting() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(100 << 20), "100.0 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(shell_quote("oss://demo/a.bin"), "oss://demo/a.bin");
        assert_eq!(shell_quote("oss://demo/a b"), "'oss://demo/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
