//! The name encoder: any text (a user name, a host name with dots, a URL, non-ASCII, an empty
//! string) made into a valid path segment or tag value, reversibly or not.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::error::Error;
use crate::point::validate::{self, MAX_LAST_SEGMENT_LEN};

/// How [`NameEncoder`] turns text into one path segment or tag value.
///
/// | mode | `web1.example.com` | `GET /a b` | `Zürich` | `` (empty) | reversible |
/// |---|---|---|---|---|---|
/// | [`Escape`](NameEncoder::Escape) | `web1%2Eexample%2Ecom` | `GET%20%2Fa%20b` | `Z%C3%BCrich` | `%` | yes |
/// | [`Strict`](NameEncoder::Strict) | `web1_example_com` | `GET__a_b` | `Z_rich` | `_` | no |
/// | [`Compatible`](NameEncoder::Compatible) | `web1_example_com` | `GET__a_b` | `Zürich` | `_` | no |
///
/// Every output is made only of what a [`Sender`](crate::Sender) accepts in a segment of a
/// name or in a tag value; only its length can be too much. [`join`](NameEncoder::join)
/// checks the whole path; the lossy modes cut a part to a storable length, `Escape` never
/// cuts (a tag value longer than a line allows is refused when sent).
///
/// ```
/// use graphyte::NameEncoder;
/// let path = NameEncoder::Escape.join(["hosts", "web1.example.com", "cpu"])?;
/// assert_eq!(path, "hosts.web1%2Eexample%2Ecom.cpu");
/// assert_eq!(graphyte::split_escaped(&path)?, ["hosts", "web1.example.com", "cpu"]);
///
/// let path = NameEncoder::Strict.join(["requests", "GET /login", "count"])?;
/// assert_eq!(path, "requests.GET__login.count");
/// # Ok::<(), graphyte::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameEncoder {
    /// Reversible, in the spirit of aiographite's `clean_and_join_metric_parts`: every byte
    /// outside `A-Z a-z 0-9 _ -` is written `%XX` (its UTF-8 bytes in hex; in tag values
    /// `.` and `:` are kept too), and an empty text is a lone `%`. [`unescape`] and
    /// [`split_escaped`] give the text back. The output is ASCII; graphite-web finds it with
    /// `%25` for each `%` in a URL. carbon-c-relay rewrites `%` to `_` unless started with
    /// `-c '-_:#%'` (its list of characters kept besides letters and digits): through a
    /// default carbon-c-relay, use `Strict`. A part whose escaped form is too long to store
    /// is refused by `join`.
    Escape,
    /// Lossy and strict (Telegraf's `strict`): keeps `A-Z a-z 0-9 _ -` (and `.` `:` in tag
    /// values) and writes `_` for anything else, an empty text as `_`.
    Strict,
    /// Lossy and compatible: writes `_` only for what Carbon or graphite-web's target grammar
    /// cannot take (whitespace and control characters, `.` `;` `/` `\` `(` `)` `{` `}` `[`
    /// `]` `,` `=` `'` `"` `*` `?` `%` in segments; whitespace, control characters, `;` `'`
    /// `"` `\` `,` `(` `)` `{` `}` in tag values; a leading `~`), keeping letters of any
    /// script and other punctuation; an empty text is `_`. Carbon stores non-ASCII names, but
    /// graphite-web finds them only with `UTF8_METRICS = True`, and carbon-c-relay rewrites
    /// them (and some punctuation) to `_`: for either, prefer `Strict`.
    Compatible,
}

/// Longest segment a lossy mode writes: a last segment's limit, so it fits anywhere.
const MAX_LOSSY_SEGMENT: usize = MAX_LAST_SEGMENT_LEN;

impl NameEncoder {
    /// One path segment for `part`. A lossy mode cuts a part too long to store, ending it
    /// with a hash of the whole part so that different long parts stay apart.
    ///
    /// ```
    /// use graphyte::NameEncoder;
    /// assert_eq!(NameEncoder::Escape.part("a.b"), "a%2Eb");
    /// assert_eq!(NameEncoder::Compatible.part("Zürich"), "Zürich");
    /// ```
    pub fn part(self, part: &str) -> Cow<'_, str> {
        match self {
            NameEncoder::Escape => escape(part, is_segment_safe),
            NameEncoder::Strict => replace(part, |c, _| c.is_ascii() && is_segment_safe(c as u8)),
            NameEncoder::Compatible => replace(part, compatible_segment),
        }
    }

    /// Joins `parts` into one path, one segment each.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] when the joined path cannot be stored: no parts at all, or, in
    /// `Escape` mode, a part whose escaped form is longer than a segment may be (251 bytes for
    /// the last, 255 for the others) or a path over [`MAX_PATH_LEN`](crate::MAX_PATH_LEN).
    ///
    /// ```
    /// use graphyte::NameEncoder;
    /// assert_eq!(NameEncoder::Compatible.join(["app", "", "x y"])?, "app._.x_y");
    /// assert!(NameEncoder::Escape.join(Vec::<String>::new()).is_err());
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn join<I>(self, parts: I) -> Result<String, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut path = String::new();
        for part in parts {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&self.part(part.as_ref()));
        }
        validate::check_line_name(&path, false)?;
        Ok(path)
    }

    /// A tag value for `value`.
    ///
    /// ```
    /// use graphyte::NameEncoder;
    /// assert_eq!(NameEncoder::Escape.tag_value("GET /login"), "GET%20%2Flogin");
    /// assert_eq!(NameEncoder::Strict.tag_value("web1.example.com"), "web1.example.com");
    /// assert_eq!(NameEncoder::Compatible.tag_value("~a;b"), "_a_b");
    /// ```
    pub fn tag_value(self, value: &str) -> Cow<'_, str> {
        match self {
            NameEncoder::Escape => escape(value, is_tag_safe),
            NameEncoder::Strict => replace(value, |c, _| c.is_ascii() && is_tag_safe(c as u8)),
            NameEncoder::Compatible => replace(value, compatible_tag),
        }
    }
}

/// The text of one part written by [`NameEncoder::Escape`] (a segment or a tag value).
///
/// # Errors
///
/// [`Error::InvalidName`] when `part` is not something `Escape` writes: a `%` not followed by
/// two hex digits (but for the lone `%` of an empty part), or bytes that are not UTF-8.
///
/// ```
/// assert_eq!(graphyte::unescape("web1%2Eexample%2Ecom")?, "web1.example.com");
/// assert_eq!(graphyte::unescape("%")?, "");
/// # Ok::<(), graphyte::Error>(())
/// ```
pub fn unescape(part: &str) -> Result<String, Error> {
    if part == "%" {
        return Ok(String::new());
    }
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| not_escaped(part, "has a '%' not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| not_escaped(part, "does not decode to UTF-8"))
}

/// The parts of a path written by [`NameEncoder::Escape`]'s `join`.
///
/// # Errors
///
/// What [`unescape`] refuses, for any segment.
///
/// ```
/// let parts = graphyte::split_escaped("users.jane%40example%2Ecom.logins")?;
/// assert_eq!(parts, ["users", "jane@example.com", "logins"]);
/// # Ok::<(), graphyte::Error>(())
/// ```
pub fn split_escaped(path: &str) -> Result<Vec<String>, Error> {
    path.split('.').map(unescape).collect()
}

fn not_escaped(part: &str, reason: &'static str) -> Error {
    Error::InvalidName {
        name: part.to_owned(),
        reason,
    }
}

fn is_segment_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn is_tag_safe(b: u8) -> bool {
    is_segment_safe(b) || b == b'.' || b == b':'
}

fn compatible_segment(c: char, first: bool) -> bool {
    !(c.is_whitespace()
        || c.is_control()
        || (first && c == '~')
        || matches!(
            c,
            '.' | ';'
                | '/'
                | '\\'
                | '('
                | ')'
                | '{'
                | '}'
                | '['
                | ']'
                | ','
                | '='
                | '\''
                | '"'
                | '*'
                | '?'
                | '%'
        ))
}

fn compatible_tag(c: char, first: bool) -> bool {
    !(c.is_whitespace()
        || c.is_control()
        || (first && c == '~')
        || matches!(c, ';' | '\'' | '"' | '\\' | ',' | '(' | ')' | '{' | '}'))
}

/// `%XX` for every byte `safe` refuses; a lone `%` for empty text.
fn escape(text: &str, safe: fn(u8) -> bool) -> Cow<'_, str> {
    if text.is_empty() {
        return Cow::Borrowed("%");
    }
    if text.bytes().all(safe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if safe(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Cow::Owned(out)
}

/// `_` for every character `keep` refuses (told whether it comes first); `_` for empty text;
/// cut to a storable length, with a hash of the whole text.
fn replace(text: &str, keep: impl Fn(char, bool) -> bool) -> Cow<'_, str> {
    if text.is_empty() {
        return Cow::Borrowed("_");
    }
    let clean = text.char_indices().all(|(i, c)| keep(c, i == 0));
    let out = if clean {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(
            text.char_indices()
                .map(|(i, c)| if keep(c, i == 0) { c } else { '_' })
                .collect(),
        )
    };
    if out.len() <= MAX_LOSSY_SEGMENT {
        return out;
    }
    // Cut on a character boundary, leaving room for `_` and 8 hex digits.
    let mut cut = MAX_LOSSY_SEGMENT - 9;
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Owned(format!("{}_{:08x}", &out[..cut], fnv1a(text.as_bytes())))
}

/// FNV-1a, 32 bits: a stable hash that keeps cut parts apart.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_in_the_docs_is_what_each_mode_writes() {
        let inputs = ["web1.example.com", "GET /a b", "Zürich", ""];
        let table = [
            (
                NameEncoder::Escape,
                ["web1%2Eexample%2Ecom", "GET%20%2Fa%20b", "Z%C3%BCrich", "%"],
            ),
            (
                NameEncoder::Strict,
                ["web1_example_com", "GET__a_b", "Z_rich", "_"],
            ),
            (
                NameEncoder::Compatible,
                ["web1_example_com", "GET__a_b", "Zürich", "_"],
            ),
        ];
        for (mode, expected) in table {
            for (input, expected) in inputs.iter().zip(expected) {
                assert_eq!(mode.part(input), expected, "{mode:?} {input:?}");
            }
        }
    }

    #[test]
    fn a_long_part_is_cut_to_a_storable_length_and_long_parts_stay_apart() {
        let a = NameEncoder::Strict.part(&"a".repeat(300)).into_owned();
        let b = NameEncoder::Strict
            .part(&format!("{}b", "a".repeat(299)))
            .into_owned();
        assert_eq!(a.len(), MAX_LOSSY_SEGMENT);
        assert_ne!(a, b);
        let wide = NameEncoder::Compatible.part(&"é".repeat(200)).into_owned();
        assert!(wide.len() <= MAX_LOSSY_SEGMENT);
    }

    #[test]
    fn an_escaped_part_too_long_to_store_is_refused_by_join() {
        assert!(NameEncoder::Escape.join(["a", &"é".repeat(50)]).is_err());
        assert!(NameEncoder::Escape.join(["a", &"é".repeat(40)]).is_ok());
    }

    #[test]
    fn unescape_refuses_what_escape_never_writes() {
        assert!(unescape("%4").is_err());
        assert!(unescape("%zz").is_err());
        assert!(unescape("%FF").is_err(), "not UTF-8");
    }
}
