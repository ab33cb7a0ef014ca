//! Any bytes: the parser never panics, and a line it accepts, sent on, is sent as one line
//! the parser accepts again.
#![no_main]

mod capture;

use capture::Capture;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = graphyte::parse_line(data) else {
        return;
    };
    let capture = Capture::default();
    let sender = capture.sender();
    sender
        .try_send(line.to_metric())
        .expect("a parsed line is a valid metric");
    let written = capture.bytes();
    assert_eq!(written.iter().filter(|&&b| b == b'\n').count(), 1);
    let again = graphyte::parse_line(&written).expect("what was written parses");
    assert_eq!(again.name(), line.name());
    assert_eq!(again.value(), line.value());
});
