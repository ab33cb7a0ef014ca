//! Carbon's plaintext protocol: a line `path value timestamp\n` per point, frames of whole
//! lines.
//!
//! Runs on the worker (or, in synchronous mode, on the sending thread). Everything it is given
//! has been checked by `validate`, so it only formats.

use std::fmt;
use std::io::Write as _;

use crate::point::metric::{Number, Point};
use crate::protocol::{Encode, Frames, PathStyle};

/// Longest line Carbon's plaintext receiver takes, newline included: a longer one closes the
/// connection, losing every later line on it.
pub const MAX_LINE_LEN: usize = 16_384;

/// Longest text a value can format to (`-2.2250738585072014e-308` is 24 bytes).
const MAX_VALUE_LEN: usize = 24;

/// Longest a timestamp can format to (`4294967295`).
const MAX_TIMESTAMP_LEN: usize = 10;

/// Bytes a line adds around its path at most: two spaces, value, timestamp, newline.
const LINE_OVERHEAD: usize = 1 + MAX_VALUE_LEN + 1 + MAX_TIMESTAMP_LEN + 1;

/// Lines, cut into frames of at most `max_frame` bytes (a datagram's size over UDP).
#[derive(Debug, Clone)]
pub(crate) struct Plaintext {
    pub(super) style: PathStyle,
    max_frame: usize,
}

impl Plaintext {
    pub(crate) fn new(style: PathStyle, max_frame: usize) -> Self {
        Plaintext { style, max_frame }
    }

    /// Appends the point's line, newline included, to `out`.
    #[inline]
    fn write_line(&self, point: &Point, out: &mut Vec<u8>) {
        self.style.write(point, out);
        out.push(b' ');
        write_number(point.value(), out);
        out.push(b' ');
        write_u64(u64::from(point.timestamp), out);
        out.push(b'\n');
    }
}

impl Plaintext {
    /// Appends `count` lines already in their final form (checked, each ending in `\n`), cut
    /// into frames between lines as points are. Lines that make one frame into empty frames
    /// are taken as they are, not copied. `owned` is left empty, with room: a buffer to fill
    /// again (the frames' old one, when they took the lines as they were).
    pub(crate) fn push_lines(&self, owned: &mut Vec<u8>, mut count: usize, frames: &mut Frames) {
        if !owned.is_empty() && owned.len() <= self.max_frame && frames.adopt(owned) {
            frames.open_at(0);
            frames.add_points(count);
            owned.clear();
            return;
        }
        let mut lines = owned.as_slice();
        while !lines.is_empty() {
            if !frames.is_open() {
                let start = frames.buf().len();
                frames.open_at(start);
            }
            let room = self.max_frame.saturating_sub(frames.open_len());
            let take = if lines.len() <= room {
                lines.len()
            } else {
                match lines[..room].iter().rposition(|&b| b == b'\n') {
                    Some(end) => end + 1,
                    // Not even one more line fits: the next frame starts with it.
                    None if frames.open_len() > 0 => 0,
                    // A line longer than a frame is refused before it gets here; should one
                    // come, it goes alone rather than cut.
                    None => lines
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(lines.len(), |end| end + 1),
                }
            };
            let (part, rest) = lines.split_at(take);
            let part_lines = if rest.is_empty() {
                count
            } else {
                part.iter().filter(|&&b| b == b'\n').count()
            };
            frames.buf().extend_from_slice(part);
            frames.add_points(part_lines);
            count -= part_lines.min(count);
            lines = rest;
            if !rest.is_empty() {
                let end = frames.buf().len();
                frames.end_frame(end);
            }
        }
        owned.clear();
    }
}

impl Encode for Plaintext {
    #[inline]
    fn push(&self, point: &Point, frames: &mut Frames) {
        let start = frames.buf().len();
        self.write_line(point, frames.buf());
        if !frames.is_open() {
            frames.open_at(start);
        } else if frames.open_len() > self.max_frame {
            // Lines need no header: the frame ends before this line, which starts the next.
            frames.end_frame(start);
        }
        frames.add_point();
    }

    fn close(&self, frames: &mut Frames) {
        if frames.is_open() {
            let end = frames.buf().len();
            frames.end_frame(end);
        }
    }

    /// Whole lines: every line before the one `written` falls in.
    fn whole_points(&self, frame: &[u8], written: usize) -> (usize, usize) {
        let end = frame[..written]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let lines = frame[..end].iter().filter(|&&b| b == b'\n').count();
        (end, lines)
    }

    fn max_path_len(&self) -> usize {
        self.limit().saturating_sub(LINE_OVERHEAD)
    }

    fn max_encoded_len(&self, path_len: usize) -> usize {
        path_len + LINE_OVERHEAD
    }

    fn limit(&self) -> usize {
        MAX_LINE_LEN.min(self.max_frame)
    }
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
    use crate::point::metric::Name;
    use crate::protocol::{drain, frames_of};

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

    fn plaintext(max_frame: usize) -> Plaintext {
        Plaintext::new(PathStyle::new(Some("app"), ";env=prod"), max_frame)
    }

    fn point(name: &'static str, value: i64) -> Point {
        Point::new(Name::from(name), None, Number::Int(value), 1_700_000_000)
    }

    #[test]
    fn line_joins_prefix_name_tags_value_and_time() {
        let frames = frames_of(&plaintext(1 << 20), &[point("req.ok", 42)]);
        assert_eq!(
            frames,
            [(b"app.req.ok;env=prod 42 1700000000\n".to_vec(), 1)]
        );
    }

    #[test]
    fn lines_are_cut_into_frames_of_whole_lines_within_the_limit() {
        // Each line is 28 bytes: two fit in 56, the third starts a new frame.
        let frames = frames_of(
            &plaintext(56),
            &[point("a", 1), point("b", 2), point("c", 3)],
        );
        let sizes: Vec<_> = frames.iter().map(|(b, p)| (b.len(), *p)).collect();
        assert_eq!(sizes, [(56, 2), (28, 1)]);
    }

    #[test]
    fn a_frame_cut_short_keeps_the_lines_written_whole() {
        let frame = b"a 1 1\nb 2 2\nc 3 3\n";
        let encoder = plaintext(1 << 20);
        assert_eq!(encoder.whole_points(frame, 0), (0, 0));
        assert_eq!(encoder.whole_points(frame, 8), (6, 1));
        assert_eq!(encoder.whole_points(frame, 12), (12, 2));
    }

    #[test]
    fn the_longest_path_leaves_room_for_the_longest_value_and_timestamp() {
        let encoder = plaintext(1 << 20);
        assert_eq!(encoder.max_path_len() + LINE_OVERHEAD, MAX_LINE_LEN);
        assert_eq!(plaintext(1432).max_path_len() + LINE_OVERHEAD, 1432);
    }

    /// The frames `lines` make, pushed after the points, as (bytes, lines) pairs.
    fn frames_with_lines(
        max_frame: usize,
        points: &[Point],
        lines: &[&[u8]],
    ) -> Vec<(Vec<u8>, usize)> {
        let encoder = plaintext(max_frame);
        let mut frames = Frames::default();
        for point in points {
            encoder.push(point, &mut frames);
        }
        for chunk in lines {
            let count = chunk.iter().filter(|&&b| b == b'\n').count();
            encoder.push_lines(&mut chunk.to_vec(), count, &mut frames);
        }
        encoder.close(&mut frames);
        drain(&mut frames)
    }

    #[test]
    fn lines_that_fit_join_the_open_frame_unchanged() {
        let frames = frames_with_lines(1 << 20, &[point("p", 1)], &[b"a 1 5\nb 2 6\n", b"c 3 7\n"]);
        assert_eq!(
            frames,
            [(
                b"app.p;env=prod 1 1700000000\na 1 5\nb 2 6\nc 3 7\n".to_vec(),
                4
            )]
        );
    }

    #[test]
    fn lines_over_the_frame_limit_are_cut_between_lines() {
        // Each line is 6 bytes: two fit in 13, and a frame never holds part of a line.
        let frames = frames_with_lines(13, &[], &[b"a 1 5\nb 2 6\nc 3 7\nd 4 8\ne 5 9\n"]);
        let expected: [(&[u8], usize); 3] = [
            (b"a 1 5\nb 2 6\n", 2),
            (b"c 3 7\nd 4 8\n", 2),
            (b"e 5 9\n", 1),
        ];
        let expected: Vec<_> = expected.iter().map(|(b, n)| (b.to_vec(), *n)).collect();
        assert_eq!(frames, expected);
    }

    #[test]
    fn lines_that_do_not_fit_after_a_point_start_the_next_frame() {
        // The point's line is 28 bytes; the next line would take the frame past 30.
        let frames = frames_with_lines(30, &[point("p", 1)], &[b"a 1 5\n"]);
        let sizes: Vec<_> = frames.iter().map(|(b, p)| (b.len(), *p)).collect();
        assert_eq!(sizes, [(28, 1), (6, 1)]);
    }
}
