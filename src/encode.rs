//! Carbon's plaintext line: `[prefix.]name[;tag=value…] value timestamp\n`.
//!
//! Runs on the worker (or, in synchronous mode, on the sending thread). Everything it is given
//! has been checked by `validate`, so it only formats.

use std::fmt;
use std::io::Write as _;

use crate::metric::{Number, Point};

/// How a sender's points become lines: its prefix and its default tags, pre-formatted once.
#[derive(Debug, Clone, Default)]
pub(crate) struct LineFormat {
    /// `"prefix."`, or empty.
    pub(crate) prefix: Box<str>,
    /// `";a=1;b=2"` (sorted by tag name), or empty.
    pub(crate) default_tags: Box<str>,
}

impl LineFormat {
    /// Appends the point's line, newline included, to `out`.
    pub(crate) fn write_line(&self, point: &Point, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(point.name.as_bytes());
        let tags = point.tags.as_deref().unwrap_or(&self.default_tags);
        out.extend_from_slice(tags.as_bytes());
        out.push(b' ');
        write_number(point.value(), out);
        out.push(b' ');
        write_u64(u64::from(point.timestamp), out);
        out.push(b'\n');
    }
}

/// Formats a tag set as Carbon's suffix `;k=v;k2=v2`, sorted by tag name as Carbon normalizes
/// it. When a name occurs twice, the later pair wins.
pub(crate) fn tag_suffix<'t>(tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = tags.into_iter().collect();
    // Stable sort keeps the given order among equal names; keep the last of each run.
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let kept = |i: usize| pairs.get(i + 1).is_none_or(|next| next.0 != pairs[i].0);
    let len = (0..pairs.len())
        .filter(|&i| kept(i))
        .map(|i| pairs[i].0.len() + pairs[i].1.len() + 2)
        .sum();
    let mut out = String::with_capacity(len);
    for (i, (key, value)) in pairs.iter().enumerate() {
        if !kept(i) {
            continue;
        }
        out.push(';');
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

pub(crate) fn write_number(value: Number, out: &mut Vec<u8>) {
    match value {
        Number::Int(v) => {
            if v < 0 {
                out.push(b'-');
            }
            write_u64(v.unsigned_abs(), out);
        }
        Number::Uint(v) => write_u64(v, out),
        Number::F32(v) => write_float(v, f64::from(v.abs()), out),
        Number::F64(v) => write_float(v, v.abs(), out),
    }
}

/// Writes a finite float in its shortest round-trip form, switching to exponent notation
/// where Python's `repr` would (below 1e-4 or from 1e16 on), so huge and tiny values stay short.
fn write_float<F: fmt::Display + fmt::LowerExp>(value: F, magnitude: f64, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail.
    let _ = if magnitude == 0.0 || (1e-4..1e16).contains(&magnitude) {
        write!(out, "{value}")
    } else {
        write!(out, "{value:e}")
    };
}

/// Appends the decimal digits of `v`; two digits per step, no formatting machinery.
pub(crate) fn write_u64(mut v: u64, out: &mut Vec<u8>) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    while v >= 100 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = v as usize * 2;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        pos -= 1;
        buf[pos] = b'0' + v as u8;
    }
    out.extend_from_slice(&buf[pos..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Name;
    use crate::validate::MAX_VALUE_LEN;

    fn number(value: Number) -> String {
        let mut out = Vec::new();
        write_number(value, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn integers_are_exact_at_their_extremes() {
        assert_eq!(number(Number::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(number(Number::Uint(u64::MAX)), "18446744073709551615");
        assert_eq!(number(Number::Int(0)), "0");
        assert_eq!(number(Number::Int(-7)), "-7");
        assert_eq!(number(Number::Uint(100)), "100");
    }

    #[test]
    fn floats_use_shortest_round_trip_form() {
        assert_eq!(number(Number::F64(0.1)), "0.1");
        assert_eq!(number(Number::F64(1.0)), "1");
        assert_eq!(number(Number::F64(0.125)), "0.125");
        assert_eq!(number(Number::F64(1e20)), "1e20");
        assert_eq!(number(Number::F64(1.5e-7)), "1.5e-7");
        assert_eq!(number(Number::F32(0.1)), "0.1");
    }

    #[test]
    fn every_float_reads_back_exactly() {
        for v in [
            0.1,
            1.0 / 3.0,
            123456.789,
            1e-4,
            9_999_999_999_999_998.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
        ] {
            assert_eq!(number(Number::F64(v)).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn no_value_formats_longer_than_the_budget() {
        let worst = [
            Number::Int(i64::MIN),
            Number::Uint(u64::MAX),
            Number::F64(-2.2250738585072014e-308),
            Number::F64(-0.00012345678901234567),
            Number::F64(-1234567890123456.7),
            Number::F32(-1.1754944e-38),
        ];
        for v in worst {
            assert!(number(v).len() <= MAX_VALUE_LEN, "{v:?} -> {}", number(v));
        }
    }

    #[test]
    fn tags_are_sorted_and_later_duplicates_win() {
        let suffix = tag_suffix([("zone", "a"), ("host", "x"), ("zone", "b")]);
        assert_eq!(suffix, ";host=x;zone=b");
    }

    #[test]
    fn line_joins_prefix_name_tags_value_and_time() {
        let format = LineFormat {
            prefix: "app.".into(),
            default_tags: ";env=prod".into(),
        };
        let point = Point::new(Name::from("req.ok"), None, Number::Int(42), 1_700_000_000);
        let mut out = Vec::new();
        format.write_line(&point, &mut out);
        assert_eq!(out, b"app.req.ok;env=prod 42 1700000000\n");
    }
}
