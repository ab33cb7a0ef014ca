//! A full batch is written at once, not at the next interval, for any pattern of threads and
//! senders. Every sender here has an hour-long interval: a batch that arrives was woken for.

mod support;

use std::io;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use graphyte::{DEFAULT_BATCH_SIZE, SendSocket, Sender};
use support::wait_until;

const HOUR: Duration = Duration::from_secs(3600);
const WAIT: Duration = Duration::from_secs(10);

/// Keeps what it is given and counts its writes.
#[derive(Clone, Default)]
struct Counting(Arc<Mutex<(Vec<u8>, usize)>>);

impl SendSocket for Counting {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut kept = self.0.lock().unwrap();
        kept.0.extend_from_slice(buf);
        kept.1 += 1;
        Ok(buf.len())
    }
}

impl Counting {
    fn lines(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .0
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn writes(&self) -> usize {
        self.0.lock().unwrap().1
    }
}

/// A sender with the default batch size, writing to `socket`, its worker idle: a flush
/// returns once the worker has looked at its queue, so a burst after it cannot be found by
/// the worker's first look instead of by a wake-up.
fn sender(socket: &Counting) -> Sender {
    let sender = Sender::builder("unused")
        .socket(socket.clone())
        .interval(HOUR)
        .build()
        .unwrap();
    sender.flush().unwrap();
    sender
}

#[test]
fn a_burst_of_exactly_the_default_batch_size_is_written_at_once() {
    let socket = Counting::default();
    let sender = sender(&socket);
    for i in 0..DEFAULT_BATCH_SIZE {
        sender.send("burst", i);
    }
    assert!(
        wait_until(WAIT, || socket.lines() == DEFAULT_BATCH_SIZE),
        "{} lines written",
        socket.lines()
    );
}

#[test]
fn a_burst_one_short_of_a_batch_waits_and_the_next_send_writes_the_batch_in_one_write() {
    let socket = Counting::default();
    let sender = sender(&socket);
    for i in 0..DEFAULT_BATCH_SIZE - 1 {
        sender.send("short", i);
    }
    sender.send("short", DEFAULT_BATCH_SIZE);
    assert!(wait_until(WAIT, || socket.lines() == DEFAULT_BATCH_SIZE));
    assert_eq!(
        socket.writes(),
        1,
        "the first lines were not written on their own"
    );
}

#[test]
fn two_senders_alternating_on_one_thread_each_write_their_full_batch() {
    let (first, second) = (Counting::default(), Counting::default());
    let (a, b) = (sender(&first), sender(&second));
    for i in 0..DEFAULT_BATCH_SIZE {
        a.send("alternating.a", i);
        b.send("alternating.b", i);
    }
    assert!(
        wait_until(WAIT, || first.lines() == DEFAULT_BATCH_SIZE
            && second.lines() == DEFAULT_BATCH_SIZE),
        "{} and {} lines written",
        first.lines(),
        second.lines()
    );
}

#[test]
fn a_batch_filled_by_four_threads_is_written_at_once() {
    let socket = Counting::default();
    let sender = sender(&socket);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let sender = sender.clone();
            thread::spawn(move || {
                for i in 0..DEFAULT_BATCH_SIZE / 4 {
                    sender.send("threads", t * 1000 + i);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert!(
        wait_until(WAIT, || socket.lines() == DEFAULT_BATCH_SIZE),
        "{} lines written",
        socket.lines()
    );
}

#[test]
fn every_full_batch_of_a_long_stream_is_written_without_waiting_for_the_interval() {
    let socket = Counting::default();
    let sender = Sender::builder("unused")
        .socket(socket.clone())
        .batch_size(100)
        .interval(HOUR)
        .build()
        .unwrap();
    sender.flush().unwrap();
    for i in 0..100 * 100 {
        sender.send("stream", i);
    }
    assert!(
        wait_until(WAIT, || socket.lines() == 100 * 100),
        "{} lines written",
        socket.lines()
    );
}
