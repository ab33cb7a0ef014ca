//! A strict reader for the pickle frames graphyte writes, and nothing else:
//!
//! ```text
//! length (u32 BE) | PROTO 2 | EMPTY_LIST | MARK | point… | APPENDS | STOP
//! point = BINUNICODE path | number (timestamp) | number (value) | TUPLE2 | TUPLE2
//! number = BININT1 | BININT2 | BININT | LONG1 | BINFLOAT
//! ```
//!
//! Anything else (another opcode, a length running past the payload, a path that is not UTF-8,
//! a header that is not the payload's length) panics, saying what and where.

/// A number as Python reads it back: an `int` or a `float`, type included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PyNum {
    Int(i128),
    Float(f64),
}

/// One point of a pickle frame: `(path, (timestamp, value))`.
pub type PyPoint = (String, PyNum, PyNum);

const HEAD: &[u8] = b"\x80\x02](";
const TAIL: &[u8] = b"e.";

/// The points of one whole pickle frame (its 4-byte header included), read strictly.
pub fn unpickle_frame(frame: &[u8]) -> Vec<PyPoint> {
    assert!(
        frame.len() >= 4,
        "a frame of {} bytes has no 4-byte header: {frame:?}",
        frame.len()
    );
    let (header, payload) = frame.split_at(4);
    assert_eq!(
        u32::from_be_bytes(header.try_into().unwrap()) as usize,
        payload.len(),
        "the header gives the payload's length"
    );
    assert!(
        payload.len() >= HEAD.len() + TAIL.len(),
        "a payload of {} bytes is too short for PROTO 2, EMPTY_LIST, MARK, APPENDS, STOP: \
         {payload:?}",
        payload.len()
    );
    assert!(
        payload.starts_with(HEAD),
        "the payload starts with PROTO 2, EMPTY_LIST, MARK: {:?}",
        &payload[..HEAD.len()]
    );
    assert!(
        payload.ends_with(TAIL),
        "the payload ends with APPENDS, STOP: {:?}",
        &payload[payload.len() - TAIL.len()..]
    );
    let mut body = Reader {
        rest: &payload[HEAD.len()..payload.len() - TAIL.len()],
        offset: HEAD.len(),
    };
    let mut points = Vec::new();
    while !body.rest.is_empty() {
        body.opcode(b'X', "BINUNICODE (a str path)");
        let len = u32::from_le_bytes(body.take(4, "BINUNICODE length").try_into().unwrap());
        let at = body.offset;
        let bytes = body.take(len as usize, "BINUNICODE path");
        let path = String::from_utf8(bytes.to_vec())
            .unwrap_or_else(|err| panic!("path at payload offset {at} is not UTF-8: {err}"));
        let timestamp = body.number("timestamp");
        let value = body.number("value");
        body.opcode(0x86, "TUPLE2 (timestamp, value)");
        body.opcode(0x86, "TUPLE2 (path, (timestamp, value))");
        points.push((path, timestamp, value));
    }
    points
}

/// The points' bytes of a payload, and how far into the payload they are.
struct Reader<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// The next `n` bytes, which must be there.
    fn take(&mut self, n: usize, what: &str) -> &'a [u8] {
        assert!(
            n <= self.rest.len(),
            "{what} at payload offset {}: needs {n} bytes, {} are left before APPENDS",
            self.offset,
            self.rest.len()
        );
        let (bytes, rest) = self.rest.split_at(n);
        self.rest = rest;
        self.offset += n;
        bytes
    }

    fn opcode(&mut self, expected: u8, what: &str) {
        let at = self.offset;
        let got = self.take(1, what)[0];
        assert_eq!(
            got, expected,
            "expected {what} ({expected:#04x}) at payload offset {at}, found {got:#04x}"
        );
    }

    /// A BININT1, BININT2, BININT, LONG1 or BINFLOAT.
    fn number(&mut self, what: &str) -> PyNum {
        let at = self.offset;
        match self.take(1, what)[0] {
            b'K' => PyNum::Int(self.take(1, "BININT1")[0].into()),
            b'M' => {
                PyNum::Int(u16::from_le_bytes(self.take(2, "BININT2").try_into().unwrap()).into())
            }
            b'J' => {
                PyNum::Int(i32::from_le_bytes(self.take(4, "BININT").try_into().unwrap()).into())
            }
            0x8a => {
                let len = usize::from(self.take(1, "LONG1 length")[0]);
                assert!(
                    (1..=16).contains(&len),
                    "LONG1 {what} at payload offset {at} of {len} bytes: graphyte writes 1 to 16"
                );
                let bytes = self.take(len, "LONG1 bytes");
                let sign = if bytes[len - 1] & 0x80 != 0 { 0xff } else { 0 };
                let mut wide = [sign; 16];
                wide[..len].copy_from_slice(bytes);
                PyNum::Int(i128::from_le_bytes(wide))
            }
            b'G' => PyNum::Float(f64::from_be_bytes(
                self.take(8, "BINFLOAT").try_into().unwrap(),
            )),
            op => panic!(
                "{what} at payload offset {at}: unexpected opcode {op:#04x}, not BININT1, \
                 BININT2, BININT, LONG1 or BINFLOAT"
            ),
        }
    }
}
