//! Shutdown travels through the queue: it writes exactly what was queued before it, then
//! stops; what comes after is refused and counted. Synchronous senders stop too.

mod support;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use graphyte::{Error, FullQueue, Metric, SendSocket, Sender};
use support::{Capture, Discard, wait_until};

const WAIT: Duration = Duration::from_secs(10);

/// Sends with `try_send` until the sender refuses with `Closed`; returns how many sends it
/// accepted and how many it refused (queue full, then the one `Closed`).
fn produce_until_closed(sender: Sender) -> thread::JoinHandle<(u64, u64)> {
    thread::spawn(move || {
        let (mut accepted, mut refused) = (0, 0);
        loop {
            match sender.try_send(Metric::new("produced", accepted)) {
                Ok(()) => accepted += 1,
                Err(Error::QueueFull) => refused += 1,
                Err(Error::Closed) => return (accepted, refused + 1),
                Err(err) => panic!("unexpected {err:?}"),
            }
        }
    })
}

#[test]
fn shutdown_with_a_live_producer_writes_what_came_before_it_and_returns_at_once() {
    // A socket slower than the producer, so that the queue never empties by itself.
    let sender = Sender::builder("unused")
        .socket(Slow)
        .queue_capacity(1024)
        .batch_size(16)
        .build()
        .unwrap();
    let producer = produce_until_closed(sender.clone());
    assert!(wait_until(WAIT, || sender.stats().sent > 2_000));
    let started = Instant::now();
    sender.shutdown(Duration::from_secs(3)).unwrap();
    let took = started.elapsed();
    let (accepted, refused) = producer.join().unwrap();
    let stats = sender.stats();
    // It stops after what was queued before it, not at its deadline.
    assert!(took < Duration::from_millis(1500), "shutdown took {took:?}");
    assert_eq!(stats.failed, 0, "a healthy socket loses nothing: {stats:?}");
    // What raced the shutdown was accepted, then dropped and counted.
    assert_eq!(
        stats.sent + stats.dropped,
        accepted + refused,
        "{stats:?}, {accepted} accepted"
    );
}

/// Writes slowly, so that a producer under `FullQueue::Block` keeps waiting for room.
struct Slow;

impl SendSocket for Slow {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Load shaping, not a wait: the queue must stay full while the shutdown comes.
        thread::sleep(Duration::from_micros(200));
        Ok(buf.len())
    }
}

#[test]
fn under_block_every_send_that_returned_ok_is_written_across_a_shutdown() {
    let sender = Sender::builder("unused")
        .socket(Slow)
        .queue_capacity(64)
        .batch_size(16)
        .full_queue(FullQueue::Block)
        .build()
        .unwrap();
    let producers: Vec<_> = (0..4)
        .map(|_| produce_until_closed(sender.clone()))
        .collect();
    assert!(wait_until(WAIT, || sender.stats().sent > 2_000));
    sender.shutdown(Duration::from_secs(10)).unwrap();
    let (accepted, refused) = producers
        .into_iter()
        .map(|p| p.join().unwrap())
        .fold((0, 0), |(a, r), (pa, pr)| (a + pa, r + pr));
    let stats = sender.stats();
    assert_eq!(stats.sent, accepted, "{stats:?}");
    assert_eq!((stats.failed, stats.dropped), (0, refused), "{stats:?}");
}

#[test]
fn a_point_sent_after_shutdown_is_refused_and_counted() {
    let capture = Capture::default();
    let sender = Sender::builder("unused")
        .socket(capture.clone())
        .build()
        .unwrap();
    sender.send("before", 1);
    sender.shutdown(WAIT).unwrap();
    let after = sender.try_send(Metric::new("after", 2));
    assert!(matches!(after, Err(Error::Closed)), "{after:?}");
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.dropped), (1, 1));
    assert_eq!(capture.lines().len(), 1);
}

#[test]
fn a_synchronous_sender_refuses_sends_after_shutdown() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    sender.try_send(Metric::new("before", 1)).unwrap();
    sender.shutdown(WAIT).unwrap();
    let after = sender.try_send(Metric::new("after", 2));
    assert!(matches!(after, Err(Error::Closed)), "{after:?}");
    assert_eq!(sender.stats().dropped, 1);
    assert_eq!(
        capture.lines().len(),
        1,
        "nothing written after the shutdown"
    );
}

/// Counts its connections: a synchronous sender must not open one after shutdown.
#[derive(Clone, Default)]
struct Connects(Arc<AtomicBool>);

impl SendSocket for Connects {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn connect(&mut self) -> io::Result<bool> {
        Ok(!self.0.swap(true, Ordering::SeqCst))
    }
}

#[test]
fn a_synchronous_sender_does_not_connect_after_shutdown() {
    let socket = Connects::default();
    let sender = Sender::builder("unused")
        .synchronous()
        .socket(socket.clone())
        .build()
        .unwrap();
    sender.shutdown(WAIT).unwrap();
    sender.send("after", 1);
    assert!(!socket.0.load(Ordering::SeqCst), "it connected");
}

#[test]
fn shutdown_and_flush_take_duration_max_without_panicking() {
    let sender = Sender::builder("unused")
        .socket(Discard)
        .timeout(Duration::MAX)
        .build()
        .unwrap();
    sender.send("a", 1);
    sender.flush().unwrap();
    sender.shutdown(Duration::MAX).unwrap();
    assert_eq!(sender.stats().sent, 1);
}

#[test]
fn dropping_the_last_handle_of_a_sender_with_a_huge_timeout_writes_and_does_not_panic() {
    let capture = Capture::default();
    let sender = Sender::builder("unused")
        .socket(capture.clone())
        .timeout(Duration::MAX)
        .interval(Duration::MAX)
        .build()
        .unwrap();
    sender.send("a", 1);
    drop(sender);
    assert_eq!(capture.lines().len(), 1);
}
