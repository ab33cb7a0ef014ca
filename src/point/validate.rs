//! The rules a metric must follow so that Carbon reads it as one metric and stores it as sent.
//!
//! Every rule lives here, so the sender, the CLI and the line parser refuse the same things.
//! They come from Carbon 1.1's line receiver (`line.strip().split()` on the decoded line, so
//! any Unicode whitespace splits it), its name parser (`TaggedSeries.parse`: a path ending in `"}` that
//! contains `{` is read as OpenMetrics; leading `~` are stripped from every name), and its
//! storage: an untagged path becomes directories and a file `<last segment>.wsp`, so each
//! segment is a file name (255 bytes), the last has 4 bytes less, the whole path must fit
//! the file system's 4,096 bytes, and a `/` would make another directory level, filing the
//! point under another name. Tagged series are stored under a hash of their name, so only
//! the frame's limit applies to them, which the protocol checks. The limits were measured
//! against carbon-cache 1.1.7.

use std::cell::Cell;

use crate::error::Error;
use crate::point::metric::{Name, NameRef};

/// Longest path segment of an untagged name but the last: Carbon makes each a directory.
pub const MAX_SEGMENT_LEN: usize = 255;

/// Longest last segment of an untagged name: Carbon stores it as the file `<segment>.wsp`.
pub const MAX_LAST_SEGMENT_LEN: usize = MAX_SEGMENT_LEN - ".wsp".len();

/// Longest untagged name, prefix included, that Carbon can store under Debian's default
/// `LOCAL_DATA_DIR` (`/var/lib/graphite/whisper/`): its full file path must fit in 4,095
/// bytes. A server storing under a longer directory takes that many bytes less.
pub const MAX_PATH_LEN: usize = 4090 - "/var/lib/graphite/whisper".len();

/// Tag names Carbon reserves: it sets `name` to the metric name itself.
const RESERVED_TAG: &str = "name";

/// What a sender's prefix changes about the path Carbon reads (`prefix.name`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Prefix {
    /// Bytes the prefix adds, its `.` included; 0 without a prefix.
    pub(crate) len: usize,
    has_brace: bool,
}

/// Checks a prefix: a name whose every segment will be a directory.
pub(crate) fn check_prefix(prefix: &str) -> Result<Prefix, Error> {
    let shape = name_rule(prefix).map_err(|reason| invalid_name(prefix, reason))?;
    let reason = if shape.longest.max(shape.last) > MAX_SEGMENT_LEN {
        Some("has a path segment longer than 255 bytes")
    } else if shape.has_slash {
        Some(SLASH)
    } else if prefix.starts_with('~') {
        Some(TILDE)
    } else {
        None
    };
    match reason {
        Some(reason) => Err(invalid_name(prefix, reason)),
        None => Ok(Prefix {
            len: prefix.len() + 1,
            has_brace: shape.has_brace,
        }),
    }
}

/// Checks a metric name as the path Carbon will read, `prefix.name`; `tagged` when the line
/// carries tags (the call's own or the sender's defaults).
#[inline]
pub(crate) fn check_name(prefix: Prefix, name: &Name<'_>, tagged: bool) -> Result<(), Error> {
    let result = match &name.0 {
        NameRef::Static(name) => check_static(prefix, name, tagged),
        NameRef::Borrowed(name) => check_text(prefix, name, tagged),
        NameRef::Owned(name) => check_text(prefix, name, tagged),
    };
    result.map_err(|reason| invalid_name(name.as_str(), reason))
}

/// Checks a name in any context: the rules of one line, then the path rules.
fn check_text(prefix: Prefix, name: &str, tagged: bool) -> Result<(), &'static str> {
    let shape = name_rule(name)?;
    path_rule(prefix, name, shape, tagged)
}

/// The shape of a name that makes a valid line: what the path rules look at.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Longest segment but the last.
    longest: usize,
    last: usize,
    has_brace: bool,
    has_slash: bool,
}

/// The rules that keep a name one field of one line: not empty, no whitespace or control
/// character, no `;`, no empty segment.
fn name_rule(name: &str) -> Result<Shape, &'static str> {
    let bytes = name.as_bytes();
    if bytes.is_empty() {
        return Err("name is empty");
    }
    let mut shape = Shape {
        longest: 0,
        last: 0,
        has_brace: false,
        has_slash: false,
    };
    let mut segment_start = 0;
    let mut non_ascii = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'.' => {
                let len = i - segment_start;
                if len == 0 {
                    return Err(EMPTY_SEGMENT);
                }
                shape.longest = shape.longest.max(len);
                segment_start = i + 1;
            }
            b';' => return Err("contains ';', which starts tags: pass tags separately"),
            b'{' => shape.has_brace = true,
            b'/' => shape.has_slash = true,
            0..=b' ' | 0x7f => return Err(WHITESPACE),
            0x80.. => non_ascii = true,
            _ => {}
        }
    }
    shape.last = bytes.len() - segment_start;
    if shape.last == 0 {
        return Err(EMPTY_SEGMENT);
    }
    if non_ascii && has_unicode_space(name) {
        return Err(WHITESPACE);
    }
    Ok(shape)
}

/// The rules of the joined path `prefix.name`: what Carbon would rewrite, and what it
/// could not store.
fn path_rule(prefix: Prefix, name: &str, shape: Shape, tagged: bool) -> Result<(), &'static str> {
    if prefix.len == 0 && name.starts_with('~') {
        return Err(TILDE);
    }
    if name.ends_with("\"}") && (shape.has_brace || prefix.has_brace) {
        return Err(
            "ends like an OpenMetrics label set ('{...\"}', counting the prefix), which Carbon would re-parse",
        );
    }
    if tagged {
        return Ok(());
    }
    if shape.has_slash {
        Err(SLASH)
    } else if shape.longest > MAX_SEGMENT_LEN {
        Err("has a path segment longer than 255 bytes, which Carbon cannot store")
    } else if shape.last > MAX_LAST_SEGMENT_LEN {
        Err("has a last segment longer than 251 bytes, which Carbon cannot store (it adds '.wsp')")
    } else if prefix.len + name.len() > MAX_PATH_LEN {
        Err("is longer than 4065 bytes with its prefix, which Carbon cannot store untagged")
    } else {
        Ok(())
    }
}

/// Checks a name that lives for the whole program. A `&'static str` never changes, so once
/// it has passed the rules in every context (all but the total length, which depends on the
/// prefix), its address and length are remembered (per thread, a few dozen names) and its
/// bytes are not read again.
#[inline]
fn check_static(prefix: Prefix, name: &'static str, tagged: bool) -> Result<(), &'static str> {
    let key = (name.as_ptr() as usize, name.len());
    // Static strings sit close together: skip the low bits, which vary little.
    let slot = (key.0 >> 3) % STATIC_NAMES;
    let known = CHECKED_STATIC_NAMES
        .try_with(|names| names[slot].get() == key)
        .unwrap_or(false);
    if known {
        return if tagged || prefix.len + name.len() <= MAX_PATH_LEN {
            Ok(())
        } else {
            path_rule(prefix, name, name_rule(name)?, tagged)
        };
    }
    let shape = name_rule(name)?;
    path_rule(prefix, name, shape, tagged)?;
    let fine_anywhere =
        path_rule(Prefix::default(), name, shape, false).is_ok() && !name.ends_with("\"}");
    if fine_anywhere {
        let _ = CHECKED_STATIC_NAMES.try_with(|names| names[slot].set(key));
    }
    Ok(())
}

const STATIC_NAMES: usize = 64;

thread_local! {
    static CHECKED_STATIC_NAMES: [Cell<(usize, usize)>; STATIC_NAMES] =
        const { [const { Cell::new((0, 0)) }; STATIC_NAMES] };
}

/// Checks a line's name as [`parse_line`](crate::parse_line) reads it: no prefix.
pub(crate) fn check_line_name(name: &str, tagged: bool) -> Result<(), Error> {
    check_text(Prefix::default(), name, tagged).map_err(|reason| invalid_name(name, reason))
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

#[cold]
fn invalid_name(name: &str, reason: &'static str) -> Error {
    Error::InvalidName {
        name: name.to_owned(),
        reason,
    }
}

const WHITESPACE: &str = "contains whitespace or a control character";
const EMPTY_SEGMENT: &str = "has an empty path segment (leading, trailing or doubled '.')";
const TILDE: &str = "starts with '~', which Carbon strips from every name";
const SLASH: &str =
    "contains '/', which Carbon's storage reads as a '.' (a/b.c is stored as a.b.c)";

fn has_space_or_control(text: &str) -> bool {
    text.bytes().any(|b| b <= b' ' || b == 0x7f) || (!text.is_ascii() && has_unicode_space(text))
}

fn has_unicode_space(text: &str) -> bool {
    text.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(name: &str) -> Result<(), &'static str> {
        check_text(Prefix::default(), name, false)
    }

    fn tagged(name: &str) -> Result<(), &'static str> {
        check_text(Prefix::default(), name, true)
    }

    #[test]
    fn plain_dotted_names_pass() {
        assert_eq!(plain("a.b_c-d.E9"), Ok(()));
        assert_eq!(plain("héllo.wörld"), Ok(()));
    }

    #[test]
    fn a_last_segment_of_251_bytes_is_stored_and_252_is_refused_untagged() {
        assert_eq!(plain(&format!("a.{}", "x".repeat(251))), Ok(()));
        assert!(plain(&format!("a.{}", "x".repeat(252))).is_err());
        assert!(plain(&"é".repeat(126)).is_err(), "252 bytes of UTF-8");
    }

    #[test]
    fn a_directory_segment_of_255_bytes_is_stored_and_256_is_refused_untagged() {
        assert_eq!(plain(&format!("{}.a", "x".repeat(255))), Ok(()));
        assert!(plain(&format!("{}.a", "x".repeat(256))).is_err());
    }

    #[test]
    fn an_untagged_name_longer_than_the_storable_path_is_refused() {
        let name = |len: usize| {
            let mut name = vec!["s".repeat(200); len / 201].join(".");
            name.push('.');
            name.push_str(&"t".repeat(len - name.len()));
            name
        };
        assert_eq!(name(MAX_PATH_LEN).len(), MAX_PATH_LEN);
        assert_eq!(plain(&name(MAX_PATH_LEN)), Ok(()));
        assert!(plain(&name(MAX_PATH_LEN + 1)).is_err());
        let prefix = check_prefix("app").unwrap();
        // "app." takes 4 bytes of the path.
        assert!(check_text(prefix, &name(MAX_PATH_LEN - 4), false).is_ok());
        assert!(check_text(prefix, &name(MAX_PATH_LEN - 3), false).is_err());
    }

    #[test]
    fn tagged_names_are_stored_under_a_hash_so_only_the_line_limits_their_segments() {
        assert_eq!(tagged(&format!("a.{}", "x".repeat(600))), Ok(()));
        assert_eq!(tagged(&vec!["s".repeat(200); 40].join(".")), Ok(()));
    }

    #[test]
    fn a_leading_tilde_is_refused_for_every_name_and_a_later_one_is_kept() {
        assert!(plain("~a.b").is_err());
        assert!(tagged("~a.b").is_err());
        assert_eq!(plain("a.~b"), Ok(()));
        // After a prefix, the name is not at the start of the path.
        assert_eq!(
            check_text(check_prefix("app").unwrap(), "~b", false),
            Ok(())
        );
        assert!(check_prefix("~app").is_err());
    }

    #[test]
    fn a_prefix_and_a_name_that_join_into_openmetrics_are_refused() {
        let prefix = check_prefix("app{host").unwrap();
        assert!(check_text(prefix, "x=\"y\"}", false).is_err());
        assert_eq!(check_text(prefix, "x.y", false), Ok(()));
        assert!(plain("a{b=\"c\"}").is_err());
        assert_eq!(
            plain("b\"}"),
            Ok(()),
            "no brace: Carbon reads it as a plain path"
        );
    }

    #[test]
    fn unicode_whitespace_is_refused_like_ascii_whitespace() {
        for name in ["a\u{a0}b", "a\u{2028}b", "a\u{85}b", "a\u{3000}b"] {
            assert_eq!(plain(name), Err(WHITESPACE), "{name:?}");
        }
    }

    #[test]
    fn a_slash_is_refused_in_untagged_names_and_prefixes_and_kept_in_tagged_ones() {
        assert_eq!(plain("a/b.c"), Err(SLASH));
        assert_eq!(tagged("a/b.c"), Ok(()));
        assert!(check_prefix("app/x").is_err());
    }

    #[test]
    fn tag_value_may_contain_equals_sign() {
        assert_eq!(tag_rule("k", "a=b"), Ok(()));
    }

    #[test]
    fn a_remembered_static_name_passes_again_and_a_bad_one_never_does() {
        let none = Prefix::default();
        assert!(check_static(none, "app.ok", false).is_ok());
        assert!(check_static(none, "app.ok", false).is_ok());
        assert!(check_static(none, "app bad", false).is_err());
        assert!(check_static(none, "app bad", false).is_err());
        // The same address with another length is checked on its own.
        let text: &'static str = "a.b..c";
        assert!(check_static(none, &text[..3], false).is_ok());
        assert!(check_static(none, text, false).is_err());
    }

    #[test]
    fn a_remembered_static_name_is_still_checked_against_its_context() {
        let name: &'static str = "x=\"y\"}";
        assert!(check_static(Prefix::default(), name, false).is_ok());
        assert!(check_static(check_prefix("app{host").unwrap(), name, false).is_err());
        let long: &'static str = Box::leak(format!("{}.b", "a".repeat(200)).into_boxed_str());
        let long_prefix = check_prefix(&vec!["p".repeat(250); 16].join(".")).unwrap();
        assert!(check_static(Prefix::default(), long, false).is_ok());
        assert!(check_static(long_prefix, long, false).is_err());
        assert!(check_static(long_prefix, long, true).is_ok());
    }

    #[test]
    fn reserved_tag_name_is_refused() {
        assert!(tag_rule("name", "x").is_err());
    }
}
