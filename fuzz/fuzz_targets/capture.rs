//! A socket that keeps what it is given, shared by the fuzz targets.

use std::io;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl graphyte::SendSocket for Capture {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
}

impl Capture {
    /// A synchronous sender writing into this capture.
    pub fn sender(&self) -> graphyte::Sender {
        graphyte::Sender::builder("unused")
            .synchronous()
            .socket(self.clone())
            .build()
            .unwrap()
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}
