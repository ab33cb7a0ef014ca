//! Carbon's pickle protocol: frames of a 4-byte big-endian payload length and a pickle
//! (protocol 2) of a list of `(path, (timestamp, value))` tuples.
//!
//! Hand-written rather than taken from a crate (serde-pickle): the subset is a dozen opcodes,
//! a frame must be cut at a byte limit while it is being written, and the default
//! dependencies stay the design card's. What it writes, and nothing else:
//!
//! ```text
//! length (u32 BE) | PROTO 2 | EMPTY_LIST | MARK | point… | APPENDS | STOP
//! point = BINUNICODE path | int or float timestamp | int or float value | TUPLE2 | TUPLE2
//! ```
//!
//! Paths are `str` (BINUNICODE), never `bytes`: carbon-cache drops a whole frame with a bytes
//! name. Integers take the shortest of BININT1, BININT2, BININT and, past 32 bits, LONG1
//! (timestamps after 2038 included). No memo opcodes: nothing is shared.

use std::io::Write as _;

use crate::point::metric::{Number, Point};
use crate::protocol::{Encode, Frames, PathStyle};

const PROTO_2: &[u8] = b"\x80\x02";
const EMPTY_LIST: u8 = b']';
const MARK: u8 = b'(';
const BINUNICODE: u8 = b'X';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const BININT: u8 = b'J';
const LONG1: u8 = 0x8a;
const BINFLOAT: u8 = b'G';
const TUPLE2: u8 = 0x86;
const APPENDS: u8 = b'e';
const STOP: u8 = b'.';

/// The length prefix.
pub(super) const HEADER: usize = 4;
/// A frame's payload without points: PROTO 2, EMPTY_LIST, MARK, APPENDS, STOP.
const PAYLOAD_OVERHEAD: usize = PROTO_2.len() + 4;
/// A point's bytes besides its path, at most: BINUNICODE and its length, a timestamp past
/// 2^31 (LONG1 of 5 bytes), a value as LONG1 of 9 bytes (`u64::MAX`), two TUPLE2.
const POINT_OVERHEAD: usize = 1 + 4 + (2 + 5) + (2 + 9) + 2;

/// Pickle frames whose payload is at most `max_frame` bytes.
#[derive(Debug, Clone)]
pub(crate) struct Pickle {
    pub(super) style: PathStyle,
    max_frame: usize,
}

impl Pickle {
    pub(crate) fn new(style: PathStyle, max_frame: usize) -> Self {
        Pickle { style, max_frame }
    }

    fn open(&self, frames: &mut Frames) {
        let buf = frames.buf();
        let start = buf.len();
        buf.extend_from_slice(&[0; HEADER]);
        buf.extend_from_slice(PROTO_2);
        buf.push(EMPTY_LIST);
        buf.push(MARK);
        frames.open_at(start);
    }

    fn write_point(&self, point: &Point, out: &mut Vec<u8>) {
        out.push(BINUNICODE);
        // A path is far shorter than 4 GiB: the sender refuses anything over the frame limit.
        out.extend_from_slice(&(self.style.len(point) as u32).to_le_bytes());
        self.style.write(point, out);
        write_int(i128::from(point.timestamp), out);
        match point.value() {
            Number::Int(v) => write_int(i128::from(v), out),
            Number::Uint(v) => write_int(i128::from(v), out),
            Number::F64(v) => write_float(v, out),
            Number::F32(v) => write_float(widen(v), out),
        }
        out.push(TUPLE2);
        out.push(TUPLE2);
    }
}

impl Encode for Pickle {
    fn push(&self, point: &Point, frames: &mut Frames) {
        if !frames.is_open() {
            self.open(frames);
        }
        let start = frames.buf().len();
        self.write_point(point, frames.buf());
        let payload = frames.open_len() - HEADER + 2;
        if payload > self.max_frame && frames.open_points() > 0 {
            // Over the limit: end the frame before this point, which starts the next one.
            let point_bytes = frames.buf().split_off(start);
            self.close(frames);
            self.open(frames);
            frames.buf().extend_from_slice(&point_bytes);
        }
        frames.add_point();
    }

    fn close(&self, frames: &mut Frames) {
        if !frames.is_open() {
            return;
        }
        frames.buf().push(APPENDS);
        frames.buf().push(STOP);
        let open = frames.open_bytes_mut();
        let payload = (open.len() - HEADER) as u32;
        open[..HEADER].copy_from_slice(&payload.to_be_bytes());
        let end = frames.buf().len();
        frames.end_frame(end);
    }

    /// Nothing: a receiver drops a frame cut short, so the whole frame goes again.
    fn whole_points(&self, _frame: &[u8], _written: usize) -> (usize, usize) {
        (0, 0)
    }

    fn max_path_len(&self) -> usize {
        self.max_frame
            .saturating_sub(PAYLOAD_OVERHEAD + POINT_OVERHEAD)
    }

    fn max_encoded_len(&self, path_len: usize) -> usize {
        path_len + PAYLOAD_OVERHEAD + POINT_OVERHEAD
    }

    fn limit(&self) -> usize {
        self.max_frame
    }
}

/// Appends an integer in the shortest form Python reads back as the same `int`.
fn write_int(v: i128, out: &mut Vec<u8>) {
    if let Ok(byte) = u8::try_from(v) {
        out.push(BININT1);
        out.push(byte);
    } else if let Ok(short) = u16::try_from(v) {
        out.push(BININT2);
        out.extend_from_slice(&short.to_le_bytes());
    } else if let Ok(int) = i32::try_from(v) {
        out.push(BININT);
        out.extend_from_slice(&int.to_le_bytes());
    } else {
        // LONG1: little-endian two's complement, without the sign bytes it does not need.
        let bytes = v.to_le_bytes();
        let mut len = bytes.len();
        while len > 1 {
            let (last, next) = (bytes[len - 1], bytes[len - 2]);
            let redundant = (last == 0 && next & 0x80 == 0) || (last == 0xff && next & 0x80 != 0);
            if !redundant {
                break;
            }
            len -= 1;
        }
        out.push(LONG1);
        out.push(len as u8);
        out.extend_from_slice(&bytes[..len]);
    }
}

fn write_float(v: f64, out: &mut Vec<u8>) {
    out.push(BINFLOAT);
    out.extend_from_slice(&v.to_be_bytes());
}

/// The double an `f32` stands for in plaintext: its shortest decimal form (`0.1`, not
/// `0.10000000149011612`), so both protocols store the same number.
fn widen(v: f32) -> f64 {
    let mut text = [0u8; 32];
    let mut rest = &mut text[..];
    // Fits: the longest f32 in exponent form is 15 bytes.
    let _ = write!(rest, "{v:e}");
    let len = 32 - rest.len();
    std::str::from_utf8(&text[..len])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::metric::Name;
    use crate::protocol::frames_of;

    fn int(v: i128) -> Vec<u8> {
        let mut out = Vec::new();
        write_int(v, &mut out);
        out
    }

    fn pickle(max_frame: usize) -> Pickle {
        Pickle::new(PathStyle::new(None, ""), max_frame)
    }

    fn point(name: &'static str, timestamp: u32, value: Number) -> Point {
        Point::new(Name::from(name), None, value, timestamp)
    }

    #[test]
    fn the_known_three_point_frame_is_written_byte_for_byte() {
        // a, b, c at 123, 123, 876 with 456, 456, 987: the memo-free form of aiographite's
        // test vector.
        let points = [
            point("a", 123, Number::Int(456)),
            point("b", 123, Number::Int(456)),
            point("c", 876, Number::Int(987)),
        ];
        let frames = frames_of(&pickle(1 << 20), &points);
        let mut expected = b"\x00\x00\x00\x2e\x80\x02](".to_vec();
        for (name, ts, value) in [(b'a', 123u8, 456u16), (b'b', 123, 456)] {
            expected.extend_from_slice(&[b'X', 1, 0, 0, 0, name, b'K', ts, b'M']);
            expected.extend_from_slice(&value.to_le_bytes());
            expected.extend_from_slice(b"\x86\x86");
        }
        expected.extend_from_slice(b"X\x01\x00\x00\x00cM\x6c\x03M\xdb\x03\x86\x86e.");
        assert_eq!(frames, [(expected, 3)]);
    }

    #[test]
    fn integers_take_the_shortest_form_and_long1_past_32_bits() {
        assert_eq!(int(0), b"K\x00");
        assert_eq!(int(256), b"M\x00\x01");
        assert_eq!(int(-1), b"J\xff\xff\xff\xff");
        assert_eq!(int(1 << 31), b"\x8a\x05\x00\x00\x00\x80\x00");
        assert_eq!(int(-(1 << 31) - 1), b"\x8a\x05\xff\xff\xff\x7f\xff");
        assert_eq!(
            int(i128::from(u64::MAX)),
            b"\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\x00"
        );
        assert_eq!(
            int(i128::from(i64::MIN)),
            b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80"
        );
    }

    #[test]
    fn a_frame_over_the_limit_is_split_before_the_point_that_would_overflow_it() {
        // One point of a one-byte name and small ints is 12 bytes; a frame's payload adds 6.
        let points: Vec<_> = (0..5).map(|i| point("a", 1, Number::Int(i))).collect();
        let frames = frames_of(&pickle(6 + 2 * 12), &points);
        let split: Vec<_> = frames.iter().map(|(b, p)| (b.len() - HEADER, *p)).collect();
        assert_eq!(split, [(30, 2), (30, 2), (18, 1)]);
        for (bytes, _) in &frames {
            let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            assert_eq!(len, bytes.len() - HEADER);
            assert!(bytes.ends_with(b"e."));
        }
    }

    #[test]
    fn the_largest_point_fits_the_overhead_budget() {
        let encoder = pickle(1 << 20);
        let worst = point("x", u32::MAX, Number::Uint(u64::MAX));
        let frames = frames_of(&encoder, &[worst]);
        assert_eq!(
            frames[0].0.len() - HEADER,
            encoder.max_encoded_len(1),
            "payload of one worst-case point"
        );
    }

    #[test]
    fn an_f32_is_pickled_as_the_double_its_plaintext_reads_as() {
        assert_eq!(widen(0.1), 0.1);
        assert_eq!(widen(-1.1754944e-38), -1.1754944e-38);
        assert_eq!(widen(16_777_216.0), 16_777_216.0);
    }
}
