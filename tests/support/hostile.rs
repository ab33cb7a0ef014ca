//! Hostile input shared by the library's tests and the command line's: lines Carbon would
//! drop, misread, or drop the connection over, and the kinds of error that refuse them.

use graphyte::Error;

/// Which error refuses a metric or a line.
#[derive(Debug, Clone, Copy)]
pub enum Refused {
    Line,
    Name,
    Tag,
    Value,
    Timestamp,
    TooLong,
}

impl Refused {
    pub fn matches(self, err: &Error) -> bool {
        match self {
            Refused::Line => matches!(err, Error::InvalidLine { .. }),
            Refused::Name => matches!(err, Error::InvalidName { .. }),
            Refused::Tag => matches!(err, Error::InvalidTag { .. }),
            Refused::Value => matches!(err, Error::InvalidValue { .. }),
            Refused::Timestamp => matches!(err, Error::InvalidTimestamp { .. }),
            Refused::TooLong => matches!(err, Error::LineTooLong { .. }),
        }
    }
}

/// Lines a forwarder might be handed, each one that Carbon would drop, misread, or drop the
/// connection over.
pub const HOSTILE_LINES: &[&[u8]] = &[
    b"",
    b"\n",
    b"a.b",
    b"a.b 1 1700000000 extra",
    b"a b 1 1700000000",
    b"a.b 1 1700000000\r\n",
    b"a.b 1\r",
    b"a\x00b 1 1700000000",
    b"a\x7fb 1",
    b"a\x1b[31m 1",
    b"a\x0cb 1",
    b"\xff\xfe 1 1700000000",
    b"a.b 1 17000\xff",
    b"a\xc3 1",
    "a\u{a0}b 1".as_bytes(),
    "a\u{2028}b 1".as_bytes(),
    "a\u{85}b 1".as_bytes(),
    b".a 1",
    b"a. 1",
    b"a..b 1",
    b". 1",
    b"a;b 1",
    b"a;=v 1",
    b"a;k= 1",
    b"a;k=v;x 1",
    b"a;k!=v 1",
    b"a;k^=v 1",
    b"a;k=~v 1",
    b"a;name=x 1",
    b";k=v 1",
    b"~a;k=v 1",
    b"a{b=\"c\"} 1",
    b"a;k=x\"} 1",
    b"a nan",
    b"a NaN 1700000000",
    b"a inf",
    b"a -inf",
    b"a infinity",
    b"a 1e400",
    b"a -1e400",
    b"a 0x10",
    b"a --5",
    b"a +-5",
    b"a 1_000",
    b"a 1,5",
    b"a true",
    b"a True",
    b"a 1.2.3",
    b"a 5e",
    b"a -",
    b"a 1 0",
    b"a 1 -5",
    b"a 1 -1",
    b"a 1 1700000000000",
    b"a 1 4294967296",
    b"a 1 nan",
    b"a 1 inf",
    b"a 1 1e20",
    b"a 1 0x10",
    b"a 1 abc",
    b"~a.b 1 1700000000",
    b"~a.b;k=v 1 1700000000",
    b"a/b.c 1 1700000000",
    b"a 1 99999999999999999999999",
];

pub fn long_lines() -> Vec<Vec<u8>> {
    vec![
        format!("a.{} 1", "x".repeat(256)).into_bytes(),
        format!("a.{} 1", "x".repeat(252)).into_bytes(),
        format!("{} 1", vec!["p".repeat(200); 21].join(".")).into_bytes(),
        format!("{} 1 1700000000", vec!["y".repeat(200); 82].join(".")).into_bytes(),
    ]
}
