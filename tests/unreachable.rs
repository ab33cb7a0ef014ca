//! A Carbon that cannot be reached or will not keep a connection: no panic, retries with
//! backoff, at most one log line per interval, everything counted.
//!
//! Every test waits on events (a failure count, a server's connection count), never on the
//! clock; durations are only measured, and checked against bounds the sender itself enforces.

mod support;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use graphyte::{Sender, Stats};
use support::{unused_port, wait_until};

struct Recorder;

static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static TURN: Mutex<()> = Mutex::new(());

impl log::Log for Recorder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == "graphyte" && metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            warnings().push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// The warnings recorded so far (still there after a test failed holding them).
fn warnings() -> MutexGuard<'static, Vec<String>> {
    WARNINGS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records warnings from graphyte for one test at a time.
fn recording() -> MutexGuard<'static, ()> {
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let _ = log::set_logger(&Recorder);
    log::set_max_level(log::LevelFilter::Warn);
    warnings().clear();
    turn
}

/// Failure warnings (`Report::Failed`), not the final shutdown report.
fn failure_warnings() -> usize {
    warnings()
        .iter()
        .filter(|w| w.starts_with("sending to carbon failed"))
        .count()
}

/// A generous deadline for events that take a second or two.
const WAIT: Duration = Duration::from_secs(30);

const INTERVAL: Duration = Duration::from_millis(500);
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(400);
/// Points sent to a server that cannot be reached.
const POINTS: u64 = 20;
/// Failed attempts waited for: the backoff reaches its cap, and they span several intervals.
const ATTEMPTS: u64 = 6;

/// The least time from the first of `attempts` failed attempts to the last: the backoff
/// delays between them (50 + 100 + 200 + 400 + 400 ms for 6).
fn backoff_before(attempts: u64) -> Duration {
    (0..attempts.saturating_sub(1))
        .map(|k| {
            let factor = 2u32.saturating_pow(k.try_into().unwrap());
            BACKOFF_MIN.saturating_mul(factor).min(BACKOFF_MAX)
        })
        .sum()
}

/// What a sender did against a server it could not reach.
struct Outcome {
    /// From the first send until `ATTEMPTS` attempts had failed.
    elapsed: Duration,
    /// Failure warnings logged within `elapsed`.
    warnings: usize,
    /// After a shutdown.
    stats: Stats,
}

/// Sends `POINTS` points at once, waits until `ATTEMPTS` attempts to write them have failed,
/// then shuts the sender down.
fn fail_against(host: &str, port: u16) -> Outcome {
    let sender = Sender::builder(host)
        .port(port)
        .interval(INTERVAL)
        .backoff(BACKOFF_MIN, BACKOFF_MAX)
        .batch_size(1)
        .build()
        .unwrap();
    let started = Instant::now();
    for i in 0..POINTS {
        sender.send("unreachable.m", i);
    }
    assert!(
        wait_until(WAIT, || sender.stats().errors >= ATTEMPTS),
        "{ATTEMPTS} failed attempts awaited: {:?}",
        sender.stats()
    );
    let warnings = failure_warnings();
    let elapsed = started.elapsed();
    sender.shutdown(Duration::from_secs(1)).unwrap();
    Outcome {
        elapsed,
        warnings,
        stats: sender.stats(),
    }
}

/// Retried, not once per send nor in a tight loop: the attempts took at least the backoff
/// delays between them.
fn assert_retried_with_backoff(outcome: &Outcome) {
    let least = backoff_before(ATTEMPTS);
    assert!(
        outcome.elapsed >= least,
        "{ATTEMPTS} failed attempts in {:?}, sooner than a backoff of {least:?} allows",
        outcome.elapsed
    );
}

/// At least one failure warning, and never two within one interval.
fn assert_logged_once_per_interval(outcome: &Outcome) {
    let most = (outcome.elapsed.as_nanos() / INTERVAL.as_nanos()) as usize + 1;
    let all = warnings().clone();
    assert!(
        (1..=most).contains(&outcome.warnings),
        "{} failure warnings in {:?} (at most {most}): {all:?}",
        outcome.warnings,
        outcome.elapsed,
    );
}

/// Every failed attempt counted, and every point, none written, counted as failed.
fn assert_counted(outcome: &Outcome) {
    let stats = &outcome.stats;
    assert!(stats.errors >= ATTEMPTS, "{stats:?}");
    assert_eq!(
        (stats.queued, stats.sent, stats.failed),
        (POINTS, 0, POINTS),
        "{stats:?}"
    );
}

#[test]
fn an_unresolvable_host_is_retried_with_backoff_logged_once_per_interval_and_counted() {
    let _turn = recording();
    let outcome = fail_against("no-such-host.invalid", 2003);
    assert_retried_with_backoff(&outcome);
    assert_logged_once_per_interval(&outcome);
    assert_counted(&outcome);
}

#[test]
fn a_refused_connection_is_retried_with_backoff_logged_once_per_interval_and_counted() {
    let _turn = recording();
    let outcome = fail_against("127.0.0.1", unused_port());
    assert_retried_with_backoff(&outcome);
    assert_logged_once_per_interval(&outcome);
    assert_counted(&outcome);
}

/// A loopback server that serves each connection in turn with its `serve`, keeping what it
/// read, then closes it.
struct Server {
    port: u16,
    accepted: Arc<AtomicUsize>,
    /// Connections served and closed.
    closed: Arc<AtomicUsize>,
    /// The bytes read on each connection.
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Server {
    fn start(serve: fn(TcpStream, &mut Vec<u8>)) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (opened, done, bytes) = (accepted.clone(), closed.clone(), received.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                opened.fetch_add(1, Ordering::SeqCst);
                let mut read = Vec::new();
                serve(stream, &mut read);
                bytes.lock().unwrap().push(read);
                done.fetch_add(1, Ordering::SeqCst);
            }
        });
        Server {
            port,
            accepted,
            closed,
            received,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Whole lines read, over every connection.
    fn lines_read(&self) -> u64 {
        let received = self.received.lock().unwrap();
        received.concat().iter().filter(|&&b| b == b'\n').count() as u64
    }

    /// The first line read on each connection, as name and value.
    fn first_lines(&self) -> Vec<String> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .map(|bytes| {
                let line = support::lines_of(bytes)
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                line.split(' ').take(2).collect::<Vec<_>>().join(" ")
            })
            .collect()
    }
}

/// Connections the server breaks, one per round.
const ROUNDS: usize = 3;
/// Lines per round: one write of about 9 KB, more than the servers below read.
const ROUND_LINES: u64 = 300;

/// Drives the sender through `ROUNDS` connections, by events: each round sends
/// `ROUND_LINES` points, flushes them (one write on the current connection) and waits until
/// the server has closed that connection. The next round finds it closed and opens another. A
/// last round of one point makes the sender notice the end of the last broken connection.
/// Returns the sender's stats.
fn drive_connections(server: &Server) -> Stats {
    // What is counted as possibly lost, without replay (tests/replay.rs): each connection
    // then starts with its own round.
    let sender = Sender::builder("127.0.0.1")
        .port(server.port)
        .interval(Duration::from_secs(3600))
        .replay(Duration::ZERO)
        .build()
        .unwrap();
    let mut value = 0u64;
    for round in 0..=ROUNDS {
        let lines = if round < ROUNDS { ROUND_LINES } else { 1 };
        for _ in 0..lines {
            sender.send("broken.m", value);
            value += 1;
        }
        sender.flush().unwrap();
        assert!(
            wait_until(WAIT, || server.closed.load(Ordering::SeqCst) == round + 1),
            "round {round}: the server did not close connection {}",
            round + 1
        );
    }
    sender.stats()
}

/// Survived: every round went out, each on a new connection that starts with the first line
/// of its round. Counted: every line the server did not read is counted as possibly lost.
fn assert_survived_and_counted(server: &Server, stats: &graphyte::Stats) {
    assert_eq!(server.accepted(), ROUNDS + 1);
    assert_eq!(stats.reconnects, ROUNDS as u64, "{stats:?}");
    assert_eq!((stats.sent, stats.failed), (stats.queued, 0), "{stats:?}");
    assert_eq!(
        server.first_lines(),
        ["broken.m 0", "broken.m 300", "broken.m 600", "broken.m 900"],
        "each connection starts with the first line of its round"
    );
    let read = server.lines_read();
    assert!(
        read + stats.possibly_lost >= stats.queued,
        "{read} lines read, {stats:?}"
    );
}

#[test]
fn a_server_closing_every_connection_after_one_line_is_survived_and_counted() {
    let _turn = recording();
    let server = Server::start(|mut stream, received| {
        let mut byte = [0u8; 1];
        while let Ok(1) = stream.read(&mut byte) {
            received.push(byte[0]);
            if byte[0] == b'\n' {
                break;
            }
        }
    });
    let stats = drive_connections(&server);
    assert_survived_and_counted(&server, &stats);
}

#[test]
fn a_server_resetting_every_connection_is_survived_and_counted() {
    let _turn = recording();
    let server = Server::start(|mut stream, received| {
        // Takes what the first read brings, then closes with a zero linger: a reset, as a
        // proxy or a crashing server would send mid-stream.
        let mut buf = [0u8; 4096];
        if let Ok(n) = stream.read(&mut buf) {
            received.extend_from_slice(&buf[..n]);
        }
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    });
    let stats = drive_connections(&server);
    assert_survived_and_counted(&server, &stats);
    assert!(
        server.lines_read() < stats.queued,
        "a reset cut each round short"
    );
}
