//! Reading Carbon plaintext lines (`name[;tags] value [timestamp]`), by the same rules the
//! sender writes them with.

use std::fmt;

use crate::error::Error;
use crate::point::metric::{Metric, Name, Number, Timestamp, Value};
use crate::point::validate::{self, MAX_LAST_SEGMENT_LEN};
use crate::protocol::MAX_LINE_LEN;

#[cfg(target_arch = "x86_64")]
mod window;

/// One plaintext line, checked: what [`parse_line`] returns.
///
/// ```
/// let line = graphyte::parse_line(b"app.hits;host=web1 42 1700000000\n")?;
/// assert_eq!(line.name(), "app.hits");
/// assert_eq!(line.tags(), [("host", "web1")]);
/// assert_eq!(line.value(), graphyte::Value::from(42));
/// assert_eq!(line.timestamp(), Some(1_700_000_000));
/// # Ok::<(), graphyte::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Line<'a> {
    name: &'a str,
    tags: Vec<(&'a str, &'a str)>,
    value: Value,
    timestamp: Option<u32>,
}

impl fmt::Debug for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Line")
            .field("name", &self.name)
            .field("tags", &self.tags)
            .field("value", &self.value)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

impl<'a> Line<'a> {
    /// The metric name, without tags.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The tags, in the order the line gave them.
    pub fn tags(&self) -> &[(&'a str, &'a str)] {
        &self.tags
    }

    /// The value: an integer when the text was one that fits 64 bits, otherwise a float.
    pub fn value(&self) -> Value {
        self.value
    }

    /// The timestamp in Unix seconds, if the line had one (a fractional one is rounded down).
    pub fn timestamp(&self) -> Option<u32> {
        self.timestamp
    }

    /// The line as a [`Metric`] to send on, borrowing its name (copied into the queued point
    /// without allocation when short). Without a timestamp, it is stamped when sent.
    pub fn to_metric(&self) -> Metric<'_> {
        let metric = Metric::new(Name::borrowed(self.name), self.value).tags(&self.tags);
        match self.timestamp {
            Some(timestamp) => metric.timestamp(timestamp),
            None => metric,
        }
    }
}

/// Parses one plaintext line: `name[;tag=value…] value [timestamp]`, fields separated by
/// spaces or tabs, with or without its final `\n`.
///
/// It accepts exactly what a [`Sender`](crate::Sender) would write, so a line it accepts is
/// safe to forward to Carbon; anything else is an [`Error`] saying what is wrong: invalid
/// UTF-8, a carriage return or other control character, a bad name or tag (or an untagged
/// name Carbon could not store), a value that is
/// not a finite decimal number (`0x10`, `1_000`, `nan`, `1e400` are refused), a timestamp
/// that is not Unix seconds from 1 to 4294967295, or a line over 16,384 bytes.
///
/// # Errors
///
/// [`Error::InvalidLine`] for a line not of that form, [`Error::InvalidName`],
/// [`Error::InvalidTag`], [`Error::InvalidValue`] or [`Error::InvalidTimestamp`] for a bad
/// field, [`Error::LineTooLong`] for a line over 16,384 bytes.
///
/// ```
/// assert!(graphyte::parse_line(b"a.b 1.5").is_ok());
/// assert!(graphyte::parse_line(b"a.b nan 1700000000").is_err());
/// assert!(graphyte::parse_line(b"a.b 1 1700000000000").is_err()); // milliseconds
/// ```
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, Error> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if line.len() >= MAX_LINE_LEN {
        return Err(Error::LineTooLong {
            len: line.len() + 1,
            max: MAX_LINE_LEN,
        });
    }
    let text = std::str::from_utf8(line).map_err(|_| invalid_line(line, "is not valid UTF-8"))?;
    let mut fields = text.split([' ', '\t']).filter(|f| !f.is_empty());
    let (Some(path), Some(value)) = (fields.next(), fields.next()) else {
        return Err(invalid_line(line, "needs a name and a value"));
    };
    let timestamp = fields.next();
    if fields.next().is_some() {
        return Err(invalid_line(line, "has more than three fields"));
    }
    let mut parts = path.split(';');
    let name = parts.next().unwrap_or_default();
    let tags = parts
        .map(|tag| {
            let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
            validate::check_tag(key, value).map(|()| (key, value))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    validate::check_line_name(name, !tags.is_empty())?;
    let value = parse_value(value)?;
    let timestamp = timestamp.map(parse_timestamp).transpose()?;
    Ok(Line {
        name,
        tags,
        value,
        timestamp,
    })
}

/// What [`check_plain`] learnt of a line it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plain {
    /// Bytes of the name, from the line's start.
    pub(crate) name_len: usize,
    pub(crate) has_timestamp: bool,
}

/// The fast path of [`parse_line`], for the plainest lines: an untagged ASCII name of at
/// most 251 bytes, one space, a decimal value, and optionally one space and a whole
/// timestamp. A line it accepts, `parse_line` accepts too; for any other line it says
/// `None`, and `parse_line` decides (and says what is wrong). No allocation, and few
/// branches: how a stream of lines keeps up with the network.
#[inline]
pub(crate) fn check_plain(line: &[u8]) -> Option<Plain> {
    let name_len = find_byte(line, b' ')?;
    let (name, rest) = (&line[..name_len], &line[name_len + 1..]);
    let (value, timestamp) = match find_byte(rest, b' ') {
        Some(space) => (&rest[..space], Some(&rest[space + 1..])),
        None => (rest, None),
    };
    let plain = plain_name(name) && plain_value(value) && timestamp.is_none_or(plain_timestamp);
    plain.then_some(Plain {
        name_len,
        has_timestamp: timestamp.is_some(),
    })
}

/// The plain line (see [`check_plain`]) at the start of `text`, with its timestamp and its
/// newline: its length, newline included. `None` for any other line, and when `text` holds
/// no newline. A stream of such lines is checked where it lies, without finding each line's
/// end first.
#[inline]
pub(crate) fn check_plain_line(text: &[u8]) -> Option<usize> {
    // Each search is bounded by the longest field the fast path takes, so a line without
    // its spaces costs its own length, not the rest of the stream's.
    let name_len = find_byte(&text[..text.len().min(MAX_LAST_SEGMENT_LEN + 1)], b' ')?;
    let value_start = name_len + 1;
    let value_text = &text[value_start..];
    let value_len = find_byte(
        &value_text[..value_text.len().min(MAX_PLAIN_VALUE + 2)],
        b' ',
    )?;
    let stamp_start = value_start + value_len + 1;
    let stamp_len = text[stamp_start..]
        .iter()
        .take(11)
        .position(|b| !b.is_ascii_digit())?;
    let end = stamp_start + stamp_len;
    let plain = text[end] == b'\n'
        && plain_name(&text[..name_len])
        && plain_value(&text[value_start..value_start + value_len])
        && plain_timestamp(&text[stamp_start..end]);
    plain.then_some(end + 1)
}

/// The run of plain lines (see [`check_plain_line`]) at the start of `text`, each at most
/// `limit` bytes long: its length in bytes and in lines. It stops at the first other line,
/// and at a last line without its newline. On x86_64, 64 bytes are checked at a time.
#[inline]
pub(crate) fn plain_run(text: &[u8], limit: usize) -> (usize, usize) {
    #[cfg(target_arch = "x86_64")]
    let run = window::plain_run(text, limit);
    #[cfg(not(target_arch = "x86_64"))]
    let run = plain_run_line_by_line(text, limit);
    run
}

/// [`plain_run`], one [`check_plain_line`] at a time.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn plain_run_line_by_line(text: &[u8], limit: usize) -> (usize, usize) {
    let (mut at, mut lines) = (0, 0);
    while let Some(len) = check_plain_line(&text[at..]).filter(|&len| len <= limit) {
        at += len;
        lines += 1;
    }
    (at, lines)
}

/// Where `byte` first is in `text`, eight bytes at a time.
#[inline]
pub(crate) fn find_byte(text: &[u8], byte: u8) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = u64::from_ne_bytes([byte; 8]);
    let mut words = text.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes")) ^ pattern;
        // The lowest byte flagged is the first zero byte of `x`: the first match.
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(at + zeros.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = words.remainder();
    tail.iter().position(|&b| b == byte).map(|i| at + i)
}

/// How a byte of a name is read by [`plain_name`]: a bit for "not plain", a bit for a dot.
const NAME_BYTES: [u8; 256] = {
    let mut table = [ODD; 256];
    let mut b = b'!';
    while b <= b'~' {
        table[b as usize] = match b {
            b';' | b'/' | b'{' | b'}' | b'"' => ODD,
            b'.' => DOT,
            _ => 0,
        };
        b += 1;
    }
    table
};
const DOT: u8 = 1;
const ODD: u8 = 2;

/// Printable ASCII but what needs a closer look (`;` tags, `/`, the OpenMetrics shape's
/// `{`, `}` and `"`), no empty segment, no leading `~`, and short enough that no segment
/// can be too long for Carbon's files.
#[inline]
fn plain_name(name: &[u8]) -> bool {
    let (Some(&first), Some(&last)) = (name.first(), name.last()) else {
        return false;
    };
    if name.len() > MAX_LAST_SEGMENT_LEN || first == b'.' || first == b'~' || last == b'.' {
        return false;
    }
    let mut odd = 0;
    let mut previous = 0;
    for &b in name {
        let class = NAME_BYTES[usize::from(b)];
        // Two dots in a row: an empty segment.
        odd |= class | ((class & previous) << 1);
        previous = class;
    }
    odd & ODD == 0
}

/// The most digits (and point) of a value the fast path takes: far from a float's limit.
const MAX_PLAIN_VALUE: usize = 24;

/// `-?digits(.digits*)?`, short enough to be finite as a float.
#[inline]
fn plain_value(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let Some(first) = digits.first() else {
        return false;
    };
    let mut odd = false;
    let mut points = 0u8;
    for &b in digits {
        odd |= !b.is_ascii_digit() & (b != b'.');
        points += u8::from(b == b'.');
    }
    first.is_ascii_digit() && !odd && points <= 1 && digits.len() <= MAX_PLAIN_VALUE
}

/// Whole seconds from 1 to `u32::MAX`: up to ten digits, not all zeros, and with ten, no
/// more than `4294967295` (digits of one length compare as their numbers do).
#[inline]
fn plain_timestamp(text: &[u8]) -> bool {
    if text.is_empty() || text.len() > 10 {
        return false;
    }
    let mut odd = false;
    let mut zeros = true;
    for &b in text {
        odd |= !b.is_ascii_digit();
        zeros &= b == b'0';
    }
    !odd && !zeros && (text.len() < 10 || text <= b"4294967295".as_slice())
}

/// A decimal number as Python's `float()` reads it, less what only Python reads (`nan`,
/// `inf`, `1_000`): optional sign, digits with an optional point, optional exponent.
fn is_decimal(text: &str) -> bool {
    let bytes = text.strip_prefix(['-', '+']).unwrap_or(text).as_bytes();
    let (mantissa, exponent) = match bytes.iter().position(|&b| b == b'e' || b == b'E') {
        Some(at) => (&bytes[..at], Some(&bytes[at + 1..])),
        None => (bytes, None),
    };
    let digits = mantissa.iter().filter(|b| b.is_ascii_digit()).count();
    let points = mantissa.iter().filter(|&&b| b == b'.').count();
    let mantissa_ok = digits > 0 && points <= 1 && digits + points == mantissa.len();
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e
            .strip_prefix(b"-")
            .or_else(|| e.strip_prefix(b"+"))
            .unwrap_or(e);
        !e.is_empty() && e.iter().all(u8::is_ascii_digit)
    });
    mantissa_ok && exponent_ok
}

fn parse_value(text: &str) -> Result<Value, Error> {
    if !is_decimal(text) {
        return Err(Error::InvalidValue {
            reason: "not a decimal number",
        });
    }
    let integer = !text.contains(['.', 'e', 'E']);
    let number = match (integer, text.parse::<i64>(), text.parse::<u64>()) {
        // "-0" is how a negative zero float is written: keep its sign.
        (true, Ok(0), _) if text.starts_with('-') => Number::F64(-0.0),
        (true, Ok(v), _) => Number::Int(v),
        (true, _, Ok(v)) => Number::Uint(v),
        _ => Number::F64(text.parse().map_err(|_| Error::InvalidValue {
            reason: "not a decimal number",
        })?),
    };
    let value = Value(number);
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::InvalidValue {
            reason: "NaN and infinite values are not accepted",
        })
    }
}

fn parse_timestamp(text: &str) -> Result<u32, Error> {
    let invalid = || Error::InvalidTimestamp {
        given: text.to_owned(),
    };
    if !is_decimal(text) {
        return Err(invalid());
    }
    let timestamp = match text.parse::<i64>() {
        Ok(secs) => Timestamp::from(secs),
        Err(_) => Timestamp::from(text.parse::<f64>().map_err(|_| invalid())?),
    };
    timestamp.to_secs()
}

#[cold]
fn invalid_line(line: &[u8], reason: &'static str) -> Error {
    Error::InvalidLine {
        line: String::from_utf8_lossy(line).into_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_grammar_takes_what_python_takes_less_nan_inf_and_underscores() {
        for ok in [
            "1", "-1", "+1", "1.5", ".5", "5.", "1e3", "1E-3", "-2.5e+10",
        ] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in [
            "", "-", ".", "e3", "1e", "1e+", "0x10", "--5", "1_000", "nan", "inf", "1.2.3",
            "1e3.5", " 1",
        ] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }

    #[test]
    fn the_fast_path_takes_plain_lines_and_says_what_it_found() {
        for (line, name_len, has_timestamp) in [
            (&b"a.b 1 1700000000"[..], 3, true),
            (b"a.b -1.5", 3, false),
            (b"x 0.", 1, false),
            (b"app-1.cpu_user:total 42 4294967295", 20, true),
        ] {
            let plain = Plain {
                name_len,
                has_timestamp,
            };
            assert_eq!(check_plain(line), Some(plain), "{line:?}");
        }
    }

    #[test]
    fn the_fast_path_leaves_every_unusual_line_to_the_parser() {
        for line in [
            &b""[..],
            b"a.b",
            b"a.b ",
            b" a.b 1",
            b"a.b  1",
            b"a.b\t1",
            b"a.b 1 ",
            b"a;t=v 1",
            b"~a 1",
            b"a..b 1",
            b".a 1",
            b"a. 1",
            b"a/b 1",
            b"a{x=\"1\"} 1",
            b"a 1e3",
            b"a +1",
            b"a .5",
            b"a - 1",
            b"a 1.2.3",
            b"a nan",
            b"a 1 0",
            b"a 1 4294967296",
            b"a 1 1.5",
            b"a 1 17000000000",
            b"a 1 1700000000 x",
            "\u{e9} 1".as_bytes(),
            b"a\r 1",
        ] {
            assert_eq!(
                check_plain(line),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        let long_segment = format!("{} 1", "x".repeat(MAX_LAST_SEGMENT_LEN + 1));
        assert_eq!(check_plain(long_segment.as_bytes()), None);
        let long_line = format!("a.{} 1", "x.".repeat(MAX_LINE_LEN / 2));
        assert_eq!(check_plain(long_line.as_bytes()), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Lines near the fast path's edge: what it takes, the parser takes, with the same name
        /// and timestamp.
        #[test]
        fn whatever_the_fast_path_takes_the_parser_takes(
            line in "[a~.;/{}\"é -]{0,3}[a-z0-9._~-]{0,12}[ \t]{0,2}[-+]?[0-9.e]{0,4}[ ]{0,2}[0-9.]{0,11}[ x]{0,1}"
        ) {
            if let Some(plain) = check_plain(line.as_bytes()) {
                let parsed = parse_line(line.as_bytes());
                proptest::prop_assert!(parsed.is_ok(), "{line:?}: {parsed:?}");
                let parsed = parsed.unwrap();
                proptest::prop_assert_eq!(parsed.name().len(), plain.name_len);
                proptest::prop_assert_eq!(parsed.timestamp().is_some(), plain.has_timestamp);
            }
        }

        /// In a stream, the in-place check takes a line exactly when the fast path takes
        /// it with its timestamp, and says where it ends.
        #[test]
        fn the_in_place_check_takes_what_the_fast_path_takes_with_a_timestamp(
            line in "[a~.;/{}\"é -]{0,3}[a-z0-9._~-]{0,12}[ \t]{0,2}[-+]?[0-9.e]{0,4}[ ]{0,2}[0-9.]{0,11}[ x]{0,1}",
            next in "[a-z0-9 .\n]{0,12}",
        ) {
            let stream = format!("{line}\n{next}");
            let expected = check_plain(line.as_bytes())
                .filter(|plain| plain.has_timestamp)
                .map(|_| line.len() + 1);
            proptest::prop_assert_eq!(check_plain_line(stream.as_bytes()), expected, "{:?}", stream);
        }
    }

    #[test]
    fn finding_a_byte_looks_at_every_position_in_and_out_of_whole_words() {
        for len in 0..20 {
            for at in 0..len {
                let mut text = vec![b'x'; len];
                text[at] = b' ';
                if at + 1 < len {
                    text[at + 1] = b' ';
                }
                assert_eq!(find_byte(&text, b' '), Some(at), "{len} {at}");
            }
            assert_eq!(find_byte(&vec![b'x'; len], b' '), None);
        }
        assert_eq!(find_byte(b"\x80\xff\x01 ", b' '), Some(3));
    }

    #[test]
    fn the_in_place_check_ends_each_plain_line_at_its_newline() {
        let stream = b"a.b 1 1700000000\nc -2.5 4294967295\nd 1\n";
        assert_eq!(check_plain_line(stream), Some(17));
        assert_eq!(check_plain_line(&stream[17..]), Some(18));
        assert_eq!(check_plain_line(&stream[35..]), None, "no timestamp");
        assert_eq!(check_plain_line(b"a.b 1 1700000000"), None, "no newline");
        assert_eq!(check_plain_line(b"a.b 1 17000000000\n"), None);
        assert_eq!(check_plain_line(b"a.b 1 1700000000 \n"), None);
        let unspaced = b"a\tb\n".repeat(1000);
        assert_eq!(
            check_plain_line(&unspaced),
            None,
            "a tab is not the fast path's"
        );
    }

    #[test]
    fn integers_stay_integers_and_big_ones_become_floats() {
        assert_eq!(
            parse_value("-9223372036854775808").unwrap(),
            Value::from(i64::MIN)
        );
        assert_eq!(
            parse_value("18446744073709551615").unwrap(),
            Value::from(u64::MAX)
        );
        assert_eq!(
            parse_value("18446744073709551616").unwrap(),
            Value::from(1.8446744073709552e19)
        );
    }
}
