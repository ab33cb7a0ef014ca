//! `--dry-run` over pickle: a frame shown as a person reads it (the list Carbon unpickles,
//! in Python's notation) with its exact bytes in hex.

use std::fmt::Write as _;

/// The frame (4-byte length and pickle) as text: a comment with its size, the list it
/// holds, and a hex dump.
pub fn render(frame: &[u8]) -> String {
    let mut out = String::new();
    let payload = frame.get(4..).unwrap_or_default();
    let _ = writeln!(
        out,
        "# pickle frame: {} bytes, a 4-byte length ({}) and a protocol-2 pickle",
        frame.len(),
        payload.len()
    );
    match points(payload) {
        Ok(points) => {
            for (i, (path, timestamp, value)) in points.iter().enumerate() {
                let open = if i == 0 { "[" } else { " " };
                let close = if i + 1 == points.len() { "]" } else { "," };
                let _ = writeln!(out, "{open}({path:?}, ({timestamp}, {value})){close}");
            }
            if points.is_empty() {
                out.push_str("[]\n");
            }
        }
        Err(why) => {
            let _ = writeln!(out, "# cannot be shown as a list: {why}");
        }
    }
    for (i, row) in frame.chunks(16).enumerate() {
        let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(out, "# {:06x}  {}", i * 16, hex.join(" "));
    }
    out
}

/// The `(path, timestamp, value)` tuples of the pickle graphyte writes: PROTO 2,
/// EMPTY_LIST, MARK, then per point BINUNICODE and two numbers in two TUPLE2, APPENDS, STOP.
fn points(pickle: &[u8]) -> Result<Vec<(String, String, String)>, String> {
    let mut reader = Reader {
        bytes: pickle,
        at: 0,
    };
    reader.expect(&[0x80, 2], "PROTO 2")?;
    reader.expect(b"]", "EMPTY_LIST")?;
    reader.expect(b"(", "MARK")?;
    let mut points = Vec::new();
    loop {
        match reader.byte()? {
            b'X' => {
                let len = u32::from_le_bytes(reader.array()?) as usize;
                let path = String::from_utf8(reader.take(len)?.to_vec())
                    .map_err(|_| "a path is not UTF-8".to_owned())?;
                let timestamp = reader.number()?;
                let value = reader.number()?;
                reader.expect(&[0x86, 0x86], "TUPLE2 TUPLE2")?;
                points.push((path, timestamp, value));
            }
            b'e' => break,
            other => return Err(format!("unexpected opcode 0x{other:02x}")),
        }
    }
    reader.expect(b".", "STOP")?;
    if reader.at != pickle.len() {
        return Err("bytes after STOP".to_owned());
    }
    Ok(points)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| "the pickle ends early".to_owned())?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn expect(&mut self, bytes: &[u8], what: &str) -> Result<(), String> {
        if self.take(bytes.len())? == bytes {
            Ok(())
        } else {
            Err(format!("expected {what}"))
        }
    }

    /// An int (BININT1, BININT2, BININT, LONG1) or a float (BINFLOAT), as Python prints it.
    fn number(&mut self) -> Result<String, String> {
        Ok(match self.byte()? {
            b'K' => self.byte()?.to_string(),
            b'M' => u16::from_le_bytes(self.array()?).to_string(),
            b'J' => i32::from_le_bytes(self.array()?).to_string(),
            0x8a => {
                let len = usize::from(self.byte()?);
                if len > 16 {
                    return Err("an integer longer than 128 bits".to_owned());
                }
                let bytes = self.take(len)?;
                let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
                let mut wide = [if negative { 0xff } else { 0 }; 16];
                wide[..len].copy_from_slice(bytes);
                i128::from_le_bytes(wide).to_string()
            }
            b'G' => python_float(f64::from_be_bytes(self.array()?)),
            other => return Err(format!("unexpected opcode 0x{other:02x} for a number")),
        })
    }
}

/// A float as Python's `repr` writes it: with a point, or an exponent of a sign and at
/// least two digits (Rust's `1e20` and `1.5e-7` are Python's `1e+20` and `1.5e-07`).
fn python_float(v: f64) -> String {
    let text = format!("{v:?}");
    let Some(at) = text.find('e') else {
        return text;
    };
    let (mantissa, exponent) = (&text[..at], &text[at + 1..]);
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(digits) => ('-', digits),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pickle: &[u8]) -> Vec<u8> {
        let mut frame = (pickle.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(pickle);
        frame
    }

    #[test]
    fn a_frame_is_shown_as_the_list_python_would_read() {
        let pickle = b"\x80\x02](X\x03\x00\x00\x00a.bJ\x00\xf1SeK*\x86\x86X\x01\x00\x00\x00cJ\x00\xf1SeG?\xf8\x00\x00\x00\x00\x00\x00\x86\x86e.";
        let text = render(&frame(pickle));
        assert!(
            text.contains("[(\"a.b\", (1700000000, 42)),\n (\"c\", (1700000000, 1.5))]\n"),
            "{text}"
        );
        assert!(
            text.starts_with("# pickle frame: 49 bytes, a 4-byte length (45)"),
            "{text}"
        );
        assert!(text.contains("# 000000  00 00 00 2d 80 02 5d 28"), "{text}");
    }

    #[test]
    fn big_and_negative_integers_read_back_from_long1() {
        let pickle =
            b"\x80\x02](X\x01\x00\x00\x00a\x8a\x05\x00\x00\x00\x00\x01\x8a\x01\xff\x86\x86e.";
        assert!(render(&frame(pickle)).contains("[(\"a\", (4294967296, -1))]"));
    }

    #[test]
    fn a_pickle_it_does_not_know_is_shown_in_hex_only() {
        let text = render(&frame(b"\x80\x04."));
        assert!(
            text.contains("# cannot be shown as a list: expected PROTO 2"),
            "{text}"
        );
        assert!(text.contains("# 000000  00 00 00 03 80 04 2e"), "{text}");
    }

    #[test]
    fn floats_are_written_as_python_writes_them() {
        assert_eq!(python_float(42.0), "42.0");
        assert_eq!(python_float(1e20), "1e+20");
        assert_eq!(python_float(1.5e-7), "1.5e-07");
        assert_eq!(python_float(-2.5e-300), "-2.5e-300");
    }
}
