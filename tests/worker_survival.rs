//! The worker survives what it can (a panicking socket, huge settings), gives up what it
//! must (lines refused for good, a batch that keeps failing), and counts both.

mod support;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use graphyte::{Error, Sender};
use support::{Capture, wait_until};

const HOUR: Duration = Duration::from_secs(3600);
const WAIT: Duration = Duration::from_secs(10);

/// Panics on its first call to `send`, then keeps what it is given.
#[derive(Clone, Default)]
struct PanicsOnce {
    calls: Arc<AtomicUsize>,
    kept: Capture,
}

impl graphyte::SendSocket for PanicsOnce {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("a bug in the user's socket");
        }
        self.kept.send(buf)
    }
}

#[test]
fn a_panicking_socket_is_survived_and_its_batch_counted_as_failed() {
    let socket = PanicsOnce::default();
    let sender = Sender::builder("unused")
        .socket(socket.clone())
        .interval(HOUR)
        .build()
        .unwrap();
    for i in 0..3 {
        sender.send("lost.with.the.panic", i);
    }
    assert!(sender.flush().is_err(), "the flush reports the lost batch");
    for i in 0..2 {
        sender.send("after.the.panic", i);
    }
    sender.flush().unwrap();
    assert_eq!(socket.kept.lines().len(), 2);
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.failed), (2, 3), "{stats:?}");
    sender.shutdown(WAIT).unwrap();
}

/// Panics whenever asked to connect.
struct PanicsInConnect;

impl graphyte::SendSocket for PanicsInConnect {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn connect(&mut self) -> io::Result<bool> {
        panic!("a bug in connect");
    }
}

#[test]
fn a_socket_panicking_in_connect_is_survived_and_every_batch_counted() {
    let sender = Sender::builder("unused")
        .socket(PanicsInConnect)
        .interval(HOUR)
        .build()
        .unwrap();
    sender.send("a", 1);
    assert!(sender.flush().is_err());
    sender.send("b", 2);
    assert!(
        sender.flush().is_err(),
        "the worker is still there to answer"
    );
    sender.shutdown(WAIT).unwrap();
    let stats = sender.stats();
    assert_eq!((stats.queued, stats.failed), (2, 2), "{stats:?}");
}

fn survives(builder: graphyte::Builder) {
    let capture = Capture::default();
    let sender = builder.socket(capture.clone()).build().unwrap();
    sender.send("alive", 1);
    sender.flush().unwrap();
    sender.send("alive", 2);
    sender.shutdown(WAIT).unwrap();
    assert_eq!(capture.lines().len(), 2);
}

#[test]
fn an_interval_of_duration_max_keeps_the_worker_alive() {
    survives(Sender::builder("unused").interval(Duration::MAX));
}

#[test]
fn a_huge_batch_size_keeps_the_worker_alive() {
    survives(Sender::builder("unused").batch_size(usize::MAX / 2));
}

#[test]
fn a_timeout_of_duration_max_keeps_the_worker_alive() {
    survives(Sender::builder("unused").timeout(Duration::MAX));
}

/// Fails its first write, then keeps what it is given.
#[derive(Clone, Default)]
struct FailsOnce {
    calls: Arc<AtomicUsize>,
    kept: Capture,
}

impl graphyte::SendSocket for FailsOnce {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        self.kept.send(buf)
    }
}

#[test]
fn a_backoff_of_duration_max_keeps_the_worker_alive_and_a_flush_still_writes() {
    let socket = FailsOnce::default();
    let sender = Sender::builder("unused")
        .socket(socket.clone())
        .backoff(Duration::MAX, Duration::MAX)
        .interval(HOUR)
        .build()
        .unwrap();
    sender.send("a", 1);
    assert!(sender.flush().is_err(), "the first write fails");
    // The backoff is practically forever; a flush writes anyway.
    sender.flush().unwrap();
    assert_eq!(socket.kept.lines().len(), 1);
    sender.shutdown(WAIT).unwrap();
}

/// Refuses for good (`InvalidData`) any buffer holding a poisoned line, as an HTTP sink
/// answering 400 would; writes the rest.
#[derive(Clone, Default)]
struct RefusesPoison {
    kept: Capture,
}

impl graphyte::SendSocket for RefusesPoison {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.windows(6).any(|w| w == b"poison") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "400 bad metric"));
        }
        self.kept.send(buf)
    }
}

#[test]
fn lines_refused_for_good_are_dropped_counted_and_later_lines_go_out_at_once() {
    let socket = RefusesPoison::default();
    let sender = Sender::builder("unused")
        .socket(socket.clone())
        .interval(HOUR)
        .build()
        .unwrap();
    sender.send("poison", 1);
    assert!(matches!(sender.flush(), Err(Error::Io(_))));
    sender.send("good", 2);
    sender.flush().unwrap();
    assert_eq!(socket.kept.lines().len(), 1);
    let stats = sender.stats();
    assert_eq!(
        (stats.sent, stats.failed, stats.errors),
        (1, 1, 0),
        "{stats:?}"
    );
}

/// Accepts connections, but every write holding a poisoned line breaks the connection.
#[derive(Clone, Default)]
struct ResetsOnPoison {
    attempts: Arc<Mutex<usize>>,
    kept: Capture,
}

impl graphyte::SendSocket for ResetsOnPoison {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.windows(6).any(|w| w == b"poison") {
            *self.attempts.lock().unwrap() += 1;
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        self.kept.send(buf)
    }
    fn connect(&mut self) -> io::Result<bool> {
        Ok(true)
    }
}

#[test]
fn a_batch_failing_on_every_working_connection_is_given_up_after_five_attempts() {
    let socket = ResetsOnPoison::default();
    let sender = Sender::builder("unused")
        .socket(socket.clone())
        .batch_size(1)
        .interval(Duration::from_millis(20))
        .backoff(Duration::from_millis(1), Duration::from_millis(4))
        .build()
        .unwrap();
    sender.send("poison", 1);
    sender.send("good", 2);
    assert!(
        wait_until(WAIT, || socket.kept.lines().len() == 1),
        "the stream went on after the poisoned batch: {:?}",
        sender.stats()
    );
    assert_eq!(*socket.attempts.lock().unwrap(), 5);
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.failed), (1, 1), "{stats:?}");
    sender.shutdown(WAIT).unwrap();
}

#[test]
fn every_stats_snapshot_keeps_the_invariants_while_four_threads_send() {
    let sender = Sender::builder("unused")
        .socket(support::Discard)
        .queue_capacity(256)
        .batch_size(32)
        .build()
        .unwrap();
    let attempted = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let (sender, attempted) = (sender.clone(), attempted.clone());
            thread::spawn(move || {
                for i in 0..200_000u64 {
                    attempted.fetch_add(1, Ordering::SeqCst);
                    sender.send("snapshot", i);
                }
            })
        })
        .collect();
    let mut snapshots = 0;
    while producers.iter().any(|p| !p.is_finished()) {
        let stats = sender.stats();
        let attempted_after = attempted.load(Ordering::SeqCst) as u64;
        assert!(stats.sent + stats.failed <= stats.queued, "{stats:?}");
        assert!(
            stats.queued + stats.dropped + stats.refused <= attempted_after,
            "{stats:?} after {attempted_after} attempted"
        );
        snapshots += 1;
    }
    producers.into_iter().for_each(|p| p.join().unwrap());
    sender.shutdown(WAIT).unwrap();
    let stats = sender.stats();
    assert_eq!(stats.queued + stats.dropped, 800_000, "{stats:?}");
    assert_eq!(stats.sent, stats.queued, "{stats:?}");
    assert!(snapshots > 100, "only {snapshots} snapshots taken");
}

/// Sends through its own (synchronous) sender from inside its write, as a socket that logs
/// through a logger counting log records would.
#[derive(Clone, Default)]
struct SendsFromInside {
    sender: Arc<Mutex<Option<Sender>>>,
    inner_result: Arc<Mutex<Option<Result<(), Error>>>>,
    kept: Capture,
}

impl graphyte::SendSocket for SendsFromInside {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        let sender = self.sender.lock().unwrap().clone();
        if let Some(sender) = sender {
            let result = sender.try_send(graphyte::Metric::new("from.inside", 1));
            *self.inner_result.lock().unwrap() = Some(result);
            let _ = sender.shutdown(WAIT);
        }
        self.kept.send(buf)
    }
}

#[test]
fn a_synchronous_send_or_shutdown_from_inside_its_own_write_is_refused_instead_of_waiting() {
    let socket = SendsFromInside::default();
    let sender = Sender::builder("unused")
        .synchronous()
        .socket(socket.clone())
        .build()
        .unwrap();
    *socket.sender.lock().unwrap() = Some(sender.clone());
    let (done, finished) = std::sync::mpsc::channel();
    let outer = sender.clone();
    thread::spawn(move || done.send(outer.try_send(graphyte::Metric::new("outer", 1))));
    let result = finished
        .recv_timeout(WAIT)
        .expect("deadlocked: the send waited for itself");
    assert!(result.is_ok(), "{result:?}");
    let inner = socket.inner_result.lock().unwrap().take();
    assert!(matches!(inner, Some(Err(Error::Reentrant))), "{inner:?}");
    assert_eq!(socket.kept.lines().len(), 1);
    assert_eq!(sender.stats().dropped, 1);
    *socket.sender.lock().unwrap() = None;
}
