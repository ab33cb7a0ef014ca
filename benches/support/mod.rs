//! Shared by the criterion benches.

use std::hint::black_box;
use std::io;

/// Discards everything: measures the client alone.
pub struct Discard;

impl graphyte::SendSocket for Discard {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(black_box(buf).len())
    }
}
