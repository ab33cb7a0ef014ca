//! Any bytes: the parser never panics, and a line it accepts, sent on, is sent as one line
//! the parser accepts again.
#![no_main]

use std::io;
use std::sync::{Arc, Mutex};

use libfuzzer_sys::fuzz_target;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl graphyte::SendSocket for Capture {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = graphyte::parse_line(data) else {
        return;
    };
    let capture = Capture::default();
    let sender = graphyte::Sender::builder("unused")
        .synchronous()
        .socket(capture.clone())
        .build()
        .unwrap();
    sender
        .try_send(line.to_metric())
        .expect("a parsed line is a valid metric");
    let written = capture.0.lock().unwrap().clone();
    assert_eq!(written.iter().filter(|&&b| b == b'\n').count(), 1);
    let again = graphyte::parse_line(&written).expect("what was written parses");
    assert_eq!(again.name(), line.name());
    assert_eq!(again.value(), line.value());
});
