//! A Carbon that cannot be reached or will not keep a connection: no panic, retries with
//! backoff, at most one log line per interval, everything counted.

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use graphyte::Sender;
use support::unused_port;

struct Recorder;

static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static TURN: Mutex<()> = Mutex::new(());

impl log::Log for Recorder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == "graphyte" && metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            WARNINGS.lock().unwrap().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// Records warnings from graphyte for one test at a time.
fn recording() -> MutexGuard<'static, ()> {
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let _ = log::set_logger(&Recorder);
    log::set_max_level(log::LevelFilter::Warn);
    WARNINGS.lock().unwrap().clear();
    turn
}

const INTERVAL: Duration = Duration::from_millis(500);
const RUN: Duration = Duration::from_millis(1600);

/// Sends a metric every 20 ms for `RUN` through a sender with a 500 ms interval and
/// 50–400 ms backoff, then shuts it down quickly.
fn run_against(host: &str, port: u16) -> graphyte::Stats {
    let sender = Sender::builder(host)
        .port(port)
        .interval(INTERVAL)
        .backoff(Duration::from_millis(50), Duration::from_millis(400))
        .batch_size(1)
        .build()
        .unwrap();
    let end = Instant::now() + RUN;
    let mut i = 0;
    while Instant::now() < end {
        sender.send("unreachable.m", i);
        i += 1;
        thread::sleep(Duration::from_millis(20));
    }
    let _ = sender.shutdown(Duration::from_millis(100));
    sender.stats()
}

/// Failure warnings (not the final shutdown report).
fn failure_warnings() -> usize {
    WARNINGS
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.starts_with("sending to carbon failed"))
        .count()
}

/// At most one line per interval, and at least one.
fn assert_rate_limited_logging() {
    let lines = failure_warnings();
    let most = (RUN.as_millis() / INTERVAL.as_millis()) as usize + 1;
    assert!(
        (1..=most).contains(&lines),
        "{lines} warnings: {:?}",
        WARNINGS.lock().unwrap()
    );
}

/// Retried, with a backoff that grows: a handful of attempts in 1.6 s, not one per send (80).
fn assert_retried_with_backoff(stats: &graphyte::Stats) {
    assert!((2..=12).contains(&stats.errors), "{stats:?}");
}

#[test]
fn an_unresolvable_host_is_retried_with_backoff_logged_once_per_interval_and_counted() {
    let _turn = recording();
    let stats = run_against("no-such-host.invalid", 2003);
    assert_retried_with_backoff(&stats);
    assert_rate_limited_logging();
    assert_eq!((stats.sent, stats.failed), (0, stats.queued));
}

#[test]
fn a_refused_connection_is_retried_with_backoff_logged_once_per_interval_and_counted() {
    let _turn = recording();
    let stats = run_against("127.0.0.1", unused_port());
    assert_retried_with_backoff(&stats);
    assert_rate_limited_logging();
    assert_eq!((stats.sent, stats.failed), (0, stats.queued));
}

/// A server that serves each connection with `serve`, counting connections and lines read.
fn server(
    serve: fn(std::net::TcpStream, &Mutex<Vec<u8>>),
) -> (u16, Arc<AtomicUsize>, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (count, bytes) = (connections.clone(), received.clone());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            serve(stream, &bytes);
        }
    });
    (port, connections, received)
}

#[test]
fn a_server_closing_every_connection_after_one_line_is_survived_and_counted() {
    let _turn = recording();
    let (port, connections, received) = server(|mut stream, received| {
        let mut byte = [0u8; 1];
        while let Ok(1) = stream.read(&mut byte) {
            received.lock().unwrap().push(byte[0]);
            if byte[0] == b'\n' {
                break;
            }
        }
    });
    let stats = run_against("127.0.0.1", port);
    let delivered = support::lines_of(&received.lock().unwrap()).len() as u64;
    assert!(connections.load(Ordering::SeqCst) >= 2);
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(
        delivered + stats.possibly_lost + stats.failed >= stats.queued,
        "{delivered} delivered, {stats:?}"
    );
    assert!(failure_warnings() <= (RUN.as_millis() / INTERVAL.as_millis()) as usize + 1);
}

#[test]
fn a_server_resetting_every_connection_is_survived_and_counted() {
    let _turn = recording();
    let (port, connections, received) = server(|mut stream, received| {
        // Takes what the first write brings, then closes with a zero linger: a reset, as a
        // proxy or a crashing server would send mid-stream.
        let mut buf = [0u8; 4096];
        if let Ok(n) = stream.read(&mut buf) {
            received.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    });
    let stats = run_against("127.0.0.1", port);
    let delivered = support::lines_of(&received.lock().unwrap()).len() as u64;
    assert!(connections.load(Ordering::SeqCst) >= 2);
    assert!(stats.reconnects >= 1, "{stats:?}");
    // A failed write means a backoff of 50 ms at least: at most 32 in 1.6 s.
    assert!(stats.errors <= 32, "{stats:?}");
    // What the server read arrived; what the kernel accepted after that, before the reset
    // was noticed, is counted as possibly lost (but for the last connection, which no later
    // batch checked).
    assert!(
        delivered >= 1 && stats.sent >= delivered,
        "{delivered} delivered, {stats:?}"
    );
    assert!(stats.possibly_lost >= 1, "{stats:?}");
    assert!(failure_warnings() <= (RUN.as_millis() / INTERVAL.as_millis()) as usize + 1);
}
