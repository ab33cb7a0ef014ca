//! A logger that panics takes down neither the worker nor the caller's send.

mod support;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use graphyte::{Metric, SendSocket, Sender};
use support::Capture;

struct PanickingLogger;

static CALLS: AtomicUsize = AtomicUsize::new(0);

impl log::Log for PanickingLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, _: &log::Record<'_>) {
        CALLS.fetch_add(1, Ordering::SeqCst);
        panic!("a bug in the logger");
    }
    fn flush(&self) {}
}

/// Fails its first write (so that the worker logs), then keeps what it is given.
#[derive(Clone, Default)]
struct FailsOnce {
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    kept: Capture,
}

impl SendSocket for FailsOnce {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.failed.swap(true, Ordering::SeqCst) {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        self.kept.send(buf)
    }
}

#[test]
fn a_panicking_logger_kills_neither_the_worker_nor_the_callers_send() {
    log::set_logger(&PanickingLogger).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let socket = FailsOnce::default();
    let sender = Sender::builder("unused")
        .socket(socket.clone())
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    sender.send("a", 1);
    // The worker's write fails and it logs: the logger panics on the worker's thread.
    assert!(sender.flush().is_err());
    // A refused send logs on this thread: the logger panics here too.
    assert!(sender.try_send(Metric::new("bad name", 1)).is_err());
    sender.send("bad name", 1);
    assert!(CALLS.load(Ordering::SeqCst) >= 2, "the logger was called");
    sender.send("b", 2);
    sender.flush().unwrap();
    assert_eq!(socket.kept.lines().len(), 2, "the worker is alive");
    sender.shutdown(Duration::from_secs(5)).unwrap();
}
