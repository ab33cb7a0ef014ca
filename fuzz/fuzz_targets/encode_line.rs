//! Any name, tag, value and timestamp: the sender refuses it or writes exactly one line that
//! the parser reads back the same.
#![no_main]

mod capture;

use capture::Capture;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let (numbers, text) = data.split_at(16);
    let bits = u64::from_le_bytes(numbers[..8].try_into().unwrap());
    let stamp = i64::from_le_bytes(numbers[8..16].try_into().unwrap());
    let value = match bits % 3 {
        0 => graphyte::Value::from(bits as i64),
        1 => graphyte::Value::from(bits),
        _ => graphyte::Value::from(f64::from_bits(bits)),
    };
    // The text is name, tag name and tag value, separated by 0x01.
    let text = String::from_utf8_lossy(text);
    let mut parts = text.split('\u{1}');
    let name = parts.next().unwrap_or_default().to_owned();
    let tag = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let tags = [tag];
    let tags: &[(&str, &str)] = if tag.0.is_empty() && tag.1.is_empty() {
        &[]
    } else {
        &tags
    };

    let capture = Capture::default();
    let sender = capture.sender();
    let metric = graphyte::Metric::new(name.clone(), value)
        .tags(tags)
        .timestamp(stamp);
    if sender.try_send(metric).is_err() {
        assert!(capture.bytes().is_empty(), "a refused metric wrote bytes");
        return;
    }
    let written = capture.bytes();
    assert_eq!(written.iter().filter(|&&b| b == b'\n').count(), 1);
    let line = graphyte::parse_line(&written).expect("every written line parses");
    assert_eq!(line.name(), name);
    assert_eq!(line.value(), value);
    assert_eq!(line.timestamp(), Some(stamp as u32));
    assert_eq!(line.tags(), tags);
});
