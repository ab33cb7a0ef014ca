//! The rules a metric must follow to make one valid line for Carbon.
//!
//! Every rule lives here, so the sender, the CLI and the line parser refuse the same things.
//! They come from Carbon 1.1's line receiver (`line.strip().split()` on the decoded line, so
//! any Unicode whitespace splits it), its `TaggedSeries` parser, and its storage limits: a
//! path segment becomes a file name (at most 255 bytes) and a line over 16,384 bytes makes
//! Carbon close the connection, losing every later line on it.

use std::cell::Cell;

use crate::Error;

/// Longest line Carbon's plaintext receiver takes, newline included.
pub const MAX_LINE_LEN: usize = 16_384;

/// Longest path segment: Carbon stores each segment as a file or directory name.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Longest text a value can format to (`-2.2250738585072014e-308` is 24 bytes).
pub(crate) const MAX_VALUE_LEN: usize = 24;

/// Longest a timestamp can format to (`4294967295`).
pub(crate) const MAX_TIMESTAMP_LEN: usize = 10;

/// Bytes a line adds around the name and tags at most: two spaces, value, timestamp, newline.
pub(crate) const LINE_OVERHEAD: usize = 1 + MAX_VALUE_LEN + 1 + MAX_TIMESTAMP_LEN + 1;

/// Tag names Carbon reserves: it sets `name` to the metric name itself.
const RESERVED_TAG: &str = "name";

/// Checks a metric name (or a prefix) without tags.
pub(crate) fn check_name(name: &str) -> Result<(), Error> {
    name_rule(name).map_err(|reason| invalid_name(name, reason))
}

fn name_rule(name: &str) -> Result<(), &'static str> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err("name is empty");
    }
    let mut segment_start = 0;
    let mut non_ascii = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'.' => {
                check_segment(i - segment_start)?;
                segment_start = i + 1;
            }
            b';' => return Err("contains ';', which starts tags: pass tags separately"),
            0..=b' ' | 0x7f => return Err(WHITESPACE),
            0x80.. => non_ascii = true,
            _ => {}
        }
    }
    check_segment(bytes.len() - segment_start)?;
    if non_ascii && has_unicode_space(name) {
        return Err(WHITESPACE);
    }
    if name.ends_with("\"}") && name.contains('{') {
        return Err("ends like an OpenMetrics label set ('{...\"}'), which Carbon would re-parse");
    }
    Ok(())
}

/// Checks a name that lives for the whole program. A `&'static str` never changes, so once
/// checked, its address and length are remembered (per thread, a few dozen names) and the
/// bytes are not read again.
#[inline]
pub(crate) fn check_static_name(name: &'static str) -> Result<(), Error> {
    let key = (name.as_ptr() as usize, name.len());
    // Static strings sit close together: skip the low bits, which vary little.
    let slot = (key.0 >> 3) % STATIC_NAMES;
    let known = CHECKED_STATIC_NAMES
        .try_with(|names| names[slot].get() == key)
        .unwrap_or(false);
    if known {
        return Ok(());
    }
    check_name(name)?;
    let _ = CHECKED_STATIC_NAMES.try_with(|names| names[slot].set(key));
    Ok(())
}

const STATIC_NAMES: usize = 64;

thread_local! {
    static CHECKED_STATIC_NAMES: [Cell<(usize, usize)>; STATIC_NAMES] =
        const { [const { Cell::new((0, 0)) }; STATIC_NAMES] };
}

/// Checks one tag under Graphite 1.1's rules (`TaggedSeries.validateTagAndValue`) plus
/// the line protocol's: no whitespace or control characters anywhere.
pub(crate) fn check_tag(key: &str, value: &str) -> Result<(), Error> {
    tag_rule(key, value).map_err(|reason| Error::InvalidTag {
        tag: format!("{key}={value}"),
        reason,
    })
}

fn tag_rule(key: &str, value: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("tag name is empty");
    }
    if key.bytes().any(|b| matches!(b, b';' | b'!' | b'^' | b'=')) {
        return Err("tag name contains one of ; ! ^ =");
    }
    if key == RESERVED_TAG {
        return Err("tag name 'name' is reserved: Carbon sets it to the metric name");
    }
    if value.is_empty() {
        return Err("tag value is empty");
    }
    if value.contains(';') {
        return Err("tag value contains ';'");
    }
    if value.starts_with('~') {
        return Err("tag value starts with '~'");
    }
    if value.ends_with("\"}") {
        return Err("tag value ends with '\"}', which Carbon would re-parse as OpenMetrics");
    }
    if has_space_or_control(key) || has_space_or_control(value) {
        return Err(WHITESPACE);
    }
    Ok(())
}

/// Checks the name of a tagged series: Carbon strips a leading `~` from it.
pub(crate) fn check_tagged_name(name: &str) -> Result<(), Error> {
    if name.starts_with('~') {
        return Err(invalid_name(
            name,
            "a tagged metric name may not start with '~'",
        ));
    }
    Ok(())
}

#[cold]
fn invalid_name(name: &str, reason: &'static str) -> Error {
    Error::InvalidName {
        name: name.to_owned(),
        reason,
    }
}

const WHITESPACE: &str = "contains whitespace or a control character";

fn check_segment(len: usize) -> Result<(), &'static str> {
    if len == 0 {
        Err("has an empty path segment (leading, trailing or doubled '.')")
    } else if len > MAX_SEGMENT_LEN {
        Err("has a path segment longer than 255 bytes")
    } else {
        Ok(())
    }
}

fn has_space_or_control(text: &str) -> bool {
    text.bytes().any(|b| b <= b' ' || b == 0x7f) || (!text.is_ascii() && has_unicode_space(text))
}

fn has_unicode_space(text: &str) -> bool {
    text.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_dotted_names_pass() {
        assert_eq!(name_rule("a.b_c-d.E9"), Ok(()));
        assert_eq!(name_rule("héllo.wörld"), Ok(()));
    }

    #[test]
    fn segment_of_exactly_255_bytes_passes_and_256_fails() {
        let ok = format!("a.{}", "x".repeat(255));
        let bad = format!("a.{}", "x".repeat(256));
        assert_eq!(name_rule(&ok), Ok(()));
        assert!(name_rule(&bad).is_err());
    }

    #[test]
    fn unicode_whitespace_is_refused_like_ascii_whitespace() {
        for name in ["a\u{a0}b", "a\u{2028}b", "a\u{85}b", "a\u{3000}b"] {
            assert_eq!(name_rule(name), Err(WHITESPACE), "{name:?}");
        }
    }

    #[test]
    fn tag_value_may_contain_equals_sign() {
        assert_eq!(tag_rule("k", "a=b"), Ok(()));
    }

    #[test]
    fn a_remembered_static_name_passes_again_and_a_bad_one_never_does() {
        assert!(check_static_name("app.ok").is_ok());
        assert!(check_static_name("app.ok").is_ok());
        assert!(check_static_name("app bad").is_err());
        assert!(check_static_name("app bad").is_err());
        // The same address with another length is checked on its own.
        let text: &'static str = "a.b..c";
        assert!(check_static_name(&text[..3]).is_ok());
        assert!(check_static_name(text).is_err());
    }

    #[test]
    fn reserved_tag_name_is_refused() {
        assert!(tag_rule("name", "x").is_err());
    }
}
