//! Background mode: queueing, batching, one persistent connection, retries, drops, shutdown.

mod support;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use graphyte::{Error, FullQueue, Metric, SendSocket, Sender, Transport};
use support::{TcpSink, UdpSink, wait_until};

const HOUR: Duration = Duration::from_secs(3600);
const WAIT: Duration = Duration::from_secs(10);

/// A socket whose writes can be held, failed, and watched.
#[derive(Clone, Default)]
struct Valve {
    state: Arc<(Mutex<ValveState>, Condvar)>,
}

#[derive(Default)]
struct ValveState {
    held: bool,
    failures_left: usize,
    written: Vec<u8>,
    sends: usize,
    /// Calls to `send` begun, including those waiting while held.
    entered: usize,
    connects: usize,
}

impl Valve {
    fn hold(&self) {
        self.state.0.lock().unwrap().held = true;
    }
    fn release(&self) {
        self.state.0.lock().unwrap().held = false;
        self.state.1.notify_all();
    }
    fn fail_next(&self, n: usize) {
        self.state.0.lock().unwrap().failures_left = n;
    }
    fn lines(&self) -> Vec<String> {
        support::lines_of(&self.state.0.lock().unwrap().written)
    }
    fn sends(&self) -> usize {
        self.state.0.lock().unwrap().sends
    }
    fn entered(&self) -> usize {
        self.state.0.lock().unwrap().entered
    }
}

impl SendSocket for Valve {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (lock, cvar) = &*self.state;
        lock.lock().unwrap().entered += 1;
        let mut state = cvar.wait_while(lock.lock().unwrap(), |s| s.held).unwrap();
        state.sends += 1;
        if state.failures_left > 0 {
            state.failures_left -= 1;
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        state.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn connect(&mut self) -> io::Result<bool> {
        self.state.0.lock().unwrap().connects += 1;
        Ok(false)
    }
}

fn valve_sender(valve: &Valve) -> graphyte::Builder {
    Sender::builder("unused")
        .socket(valve.clone())
        .interval(HOUR)
}

/// Makes `count` sends on a thread of their own, timing each, and returns the slowest. Fails
/// if they have not all returned within `WAIT`: then a send blocked.
fn slowest_send(sender: &Sender, name: &'static str, count: u64) -> Duration {
    let sender = sender.clone();
    let (done, slowest) = mpsc::channel();
    thread::spawn(move || {
        let slowest = (0..count)
            .map(|i| {
                let start = Instant::now();
                sender.send(name, i);
                start.elapsed()
            })
            .max()
            .unwrap_or_default();
        drop(sender);
        let _ = done.send(slowest);
    });
    slowest
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{count} sends had not returned after {WAIT:?}: one blocked"))
}

#[test]
fn send_returns_before_anything_is_written() {
    let valve = Valve::default();
    valve.hold();
    let sender = valve_sender(&valve).batch_size(1).build().unwrap();
    sender.send("written.later", 0);
    // The worker is inside the socket's send, held there until released: a send that waited
    // for a write would wait for ever.
    assert!(wait_until(WAIT, || valve.entered() == 1));
    let slowest = slowest_send(&sender, "written.later", 10);
    assert!(slowest < Duration::from_secs(1), "a send took {slowest:?}");
    let stats = sender.stats();
    assert_eq!(
        (stats.queued, stats.sent),
        (11, 0),
        "queued, none written yet"
    );
    valve.release();
    sender.flush().unwrap();
    assert_eq!(valve.lines().len(), 11, "all of them written once released");
}

#[test]
fn a_full_batch_is_written_without_waiting_for_the_interval() {
    let valve = Valve::default();
    let sender = valve_sender(&valve).batch_size(100).build().unwrap();
    for i in 0..100 {
        sender.send_at("batch.full", i, 1_700_000_000);
    }
    assert!(
        wait_until(WAIT, || valve.lines().len() == 100),
        "{} lines",
        valve.lines().len()
    );
}

#[test]
fn a_partial_batch_is_written_when_the_interval_ends() {
    let valve = Valve::default();
    let sender = Sender::builder("unused")
        .socket(valve.clone())
        .interval(Duration::from_millis(50))
        .build()
        .unwrap();
    sender.send("partial", 1);
    assert!(wait_until(WAIT, || valve.lines().len() == 1));
}

#[test]
fn batches_hold_at_most_batch_size_lines() {
    let valve = Valve::default();
    valve.hold();
    let sender = valve_sender(&valve).batch_size(10).build().unwrap();
    for i in 0..95 {
        sender.send("capped", i);
    }
    valve.release();
    sender.flush().unwrap();
    assert_eq!(valve.lines().len(), 95);
    assert_eq!(valve.sends(), 10, "95 lines in batches of 10");
}

#[test]
fn flush_writes_everything_queued_before_it_returns() {
    let valve = Valve::default();
    let sender = valve_sender(&valve).build().unwrap();
    for i in 0..500 {
        sender.send("flushed", i);
    }
    sender.flush().unwrap();
    assert_eq!(valve.lines().len(), 500);
}

#[test]
fn dropping_a_clone_keeps_the_worker_running() {
    let valve = Valve::default();
    let sender = valve_sender(&valve).build().unwrap();
    let clone = sender.clone();
    clone.send("from.clone", 1);
    drop(clone);
    sender.send("from.original", 2);
    sender.flush().unwrap();
    assert_eq!(valve.lines().len(), 2);
}

#[test]
fn dropping_the_last_handle_writes_the_queue_and_stops_the_worker() {
    let valve = Valve::default();
    let sender = valve_sender(&valve).build().unwrap();
    let clone = sender.clone();
    for i in 0..300 {
        clone.send("last.handle", i);
    }
    drop(sender);
    drop(clone);
    // The drop returned only after the worker wrote everything and was joined.
    assert_eq!(valve.lines().len(), 300);
}

#[test]
fn a_full_queue_drops_the_metric_and_counts_it() {
    let valve = Valve::default();
    valve.hold();
    let sender = valve_sender(&valve)
        .queue_capacity(10)
        .batch_size(1)
        .build()
        .unwrap();
    // The worker takes one point and blocks writing it; ten more fill the queue.
    sender.send("q", 0);
    assert!(wait_until(WAIT, || valve.entered() == 1));
    let results: Vec<_> = (0..20)
        .map(|i| sender.try_send(Metric::new("q", i)))
        .collect();
    assert!(results[..10].iter().all(Result::is_ok));
    assert!(
        results[10..]
            .iter()
            .all(|r| matches!(r, Err(Error::QueueFull)))
    );
    let stats = sender.stats();
    assert_eq!((stats.queued, stats.dropped), (11, 10));
    valve.release();
    sender.shutdown(WAIT).unwrap();
    assert_eq!(sender.stats().sent, 11);
}

#[test]
fn block_policy_waits_for_room_instead_of_dropping() {
    let valve = Valve::default();
    valve.hold();
    let sender = valve_sender(&valve)
        .queue_capacity(4)
        .batch_size(1)
        .full_queue(FullQueue::Block)
        .build()
        .unwrap();
    let releaser = {
        let valve = valve.clone();
        let sender = sender.clone();
        thread::spawn(move || {
            // Release once the producer is stuck behind a full queue.
            wait_until(WAIT, || sender.stats().queued >= 5);
            valve.release();
        })
    };
    for i in 0..50 {
        sender.try_send(Metric::new("blocked", i)).unwrap();
    }
    releaser.join().unwrap();
    sender.flush().unwrap();
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.dropped), (50, 0));
}

#[test]
fn a_failed_batch_is_kept_and_retried_after_a_backoff() {
    let valve = Valve::default();
    valve.fail_next(2);
    let sender = valve_sender(&valve)
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .batch_size(5)
        .build()
        .unwrap();
    for i in 0..5 {
        sender.send("retried", i);
    }
    assert!(wait_until(WAIT, || valve.lines().len() == 5));
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.failed), (5, 0));
    assert_eq!(valve.sends(), 3, "two failures, then one write");
}

#[test]
fn what_cannot_be_written_by_the_shutdown_deadline_is_counted_as_failed() {
    let valve = Valve::default();
    valve.fail_next(usize::MAX);
    let sender = valve_sender(&valve).build().unwrap();
    for i in 0..7 {
        sender.send("doomed", i);
    }
    sender.shutdown(Duration::from_millis(200)).unwrap();
    let stats = sender.stats();
    assert_eq!((stats.queued, stats.sent, stats.failed), (7, 0, 7));
}

#[test]
fn sends_after_shutdown_are_dropped_and_counted() {
    let valve = Valve::default();
    let sender = valve_sender(&valve).build().unwrap();
    sender.shutdown(WAIT).unwrap();
    assert!(matches!(
        sender.try_send(Metric::new("late", 1)),
        Err(Error::Closed)
    ));
    sender.send("late", 2);
    assert_eq!(sender.stats().dropped, 2);
    assert!(
        sender.shutdown(WAIT).is_ok(),
        "a second shutdown does nothing"
    );
}

#[test]
fn shutdown_returns_within_its_timeout_when_the_socket_hangs() {
    let valve = Valve::default();
    valve.hold();
    let sender = valve_sender(&valve).build().unwrap();
    sender.send("stuck", 1);
    let started = Instant::now();
    let result = sender.shutdown(Duration::from_millis(200));
    let took = started.elapsed();
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    valve.release();
}

#[test]
fn stats_account_for_every_metric_given() {
    let valve = Valve::default();
    valve.hold();
    let sender = valve_sender(&valve).queue_capacity(100).build().unwrap();
    for i in 0..300 {
        sender.send("acct", i);
    }
    sender.send("bad name", 1);
    valve.release();
    sender.shutdown(WAIT).unwrap();
    let s = sender.stats();
    assert_eq!(s.refused + s.dropped + s.queued, 301);
    assert_eq!(s.queued, s.sent + s.failed);
    assert_eq!(s.refused, 1);
    assert_eq!(
        s.sent_bytes as usize,
        valve.lines().iter().map(|l| l.len() + 1).sum::<usize>()
    );
}

#[test]
fn one_tcp_connection_carries_every_batch() {
    let sink = TcpSink::start();
    let sender = Sender::builder("127.0.0.1")
        .port(sink.port)
        .batch_size(10)
        .interval(HOUR)
        .build()
        .unwrap();
    for round in 0..5 {
        for i in 0..10 {
            sender.send_at("persistent", round * 10 + i, 1_700_000_000);
        }
        sender.flush().unwrap();
    }
    sink.wait_for_lines(50);
    assert_eq!(sink.connections.load(Ordering::SeqCst), 1);
    assert_eq!(sender.stats().reconnects, 0);
}

#[test]
fn the_sender_reconnects_after_the_server_closes_the_connection() {
    // A server that reads one batch per connection, then hangs up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    {
        let (received, connections) = (received.clone(), connections.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                connections.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let n = io::Read::read(&mut stream, &mut buf).unwrap();
                received.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
    }
    // Replay off: each connection is to carry one line only (tests/replay.rs replays).
    let sender = Sender::builder("127.0.0.1")
        .port(port)
        .interval(HOUR)
        .replay(Duration::ZERO)
        .build()
        .unwrap();
    for i in 0..3 {
        sender.send_at("reconnect", i, 1_700_000_000);
        sender.flush().unwrap();
        assert!(wait_until(WAIT, || support::lines_of(
            &received.lock().unwrap()
        )
        .len()
            == i as usize + 1));
        // Wait for the server to have closed this connection.
        assert!(wait_until(WAIT, || connections.load(Ordering::SeqCst)
            == i as usize + 1));
    }
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    assert_eq!(sender.stats().reconnects, 2);
}

#[test]
fn udp_packs_whole_lines_into_datagrams_no_larger_than_the_limit() {
    let sink = UdpSink::start();
    let sender = Sender::builder("127.0.0.1")
        .port(sink.port)
        .transport(Transport::Udp)
        .max_datagram(200)
        .interval(HOUR)
        .build()
        .unwrap();
    for i in 0..100 {
        sender.send_at(format!("udp.packed.metric{i}"), i, 1_700_000_000);
    }
    sender.flush().unwrap();
    assert!(wait_until(WAIT, || sink.lines().len() == 100));
    let datagrams = sink.datagrams.lock().unwrap();
    assert!(datagrams.len() > 1);
    for datagram in datagrams.iter() {
        assert!(datagram.len() <= 200, "{} bytes", datagram.len());
        assert_eq!(
            datagram.last(),
            Some(&b'\n'),
            "a datagram ends on a whole line"
        );
    }
}

#[test]
fn sending_to_an_unreachable_server_neither_blocks_nor_panics() {
    // Connecting hangs until the 2 s timeout, so a send that waited on the network would
    // take that long; one refused at once would hide it.
    let server = support::HangingListener::start();
    let sender = Sender::builder("127.0.0.1")
        .port(server.port)
        .timeout(Duration::from_secs(2))
        .interval(Duration::from_millis(10))
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap();
    let slowest = slowest_send(&sender, "unreachable", 1000);
    assert!(
        slowest < Duration::from_millis(200),
        "a send took {slowest:?}"
    );
    // The worker's connect timed out; it carries on and still takes sends, which a worker
    // that had died would refuse.
    assert!(wait_until(WAIT, || sender.stats().errors >= 1));
    sender.try_send(Metric::new("unreachable", 1000)).unwrap();
    let stats = sender.stats();
    assert_eq!((stats.queued, stats.sent, stats.dropped), (1001, 0, 0));
}

#[test]
fn synchronous_try_send_reports_io_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sender = Sender::builder("127.0.0.1")
        .port(port)
        .synchronous()
        .build()
        .unwrap();
    let err = sender.try_send(Metric::new("sync.fail", 1)).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert_eq!(sender.stats().failed, 1);
}

#[test]
fn an_unresolvable_host_is_an_io_error_not_a_build_error() {
    let sender = Sender::builder("no-such-host.invalid")
        .synchronous()
        .build()
        .unwrap();
    assert!(matches!(
        sender.try_send(Metric::new("x", 1)),
        Err(Error::Io(_))
    ));
}
