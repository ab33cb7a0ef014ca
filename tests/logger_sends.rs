//! A logger that counts log records as metrics, through graphyte itself, never deadlocks the
//! process: no lock is held while graphyte logs, and the worker never waits on its own queue.
//!
//! The logger and the default sender are process-wide, so these tests take turns; each runs
//! its scenario under a watchdog, so a deadlock fails the test instead of hanging it.

mod support;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::Duration;

use graphyte::{FullQueue, SendSocket, Sender};
use support::{Capture, Discard, wait_until};

/// Sends a metric for every record graphyte logs, and a refused one when asked to.
struct SendingLogger;

static LOGGED: AtomicUsize = AtomicUsize::new(0);
static ALSO_SEND_A_BAD_NAME: AtomicBool = AtomicBool::new(false);

impl log::Log for SendingLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target() == "graphyte"
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        LOGGED.fetch_add(1, Ordering::SeqCst);
        graphyte::send("log.records", 1);
        if ALSO_SEND_A_BAD_NAME.load(Ordering::SeqCst) {
            graphyte::send("bad name", 1);
        }
    }

    fn flush(&self) {}
}

static TURN: Mutex<()> = Mutex::new(());

/// This test's turn: the logger installed, counters reset; the default sender is shut down
/// when the turn ends.
struct Turn(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Drop for Turn {
    fn drop(&mut self) {
        ALSO_SEND_A_BAD_NAME.store(false, Ordering::SeqCst);
        let _ = graphyte::shutdown(Duration::from_secs(5));
    }
}

fn turn() -> Turn {
    let turn = Turn(TURN.lock().unwrap_or_else(|p| p.into_inner()));
    let _ = log::set_logger(&SendingLogger);
    log::set_max_level(log::LevelFilter::Trace);
    LOGGED.store(0, Ordering::SeqCst);
    turn
}

/// Runs `scenario` on another thread and fails the test if it has not finished in 20 s.
fn finishes<T: Send + 'static>(scenario: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(scenario());
    });
    finished
        .recv_timeout(Duration::from_secs(20))
        .expect("deadlocked: the scenario did not finish in 20 s")
}

/// Refuses every write, as an unreachable Carbon would.
struct Refusing;

impl SendSocket for Refusing {
    fn send(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::ConnectionRefused.into())
    }
}

#[test]
fn a_failing_synchronous_send_logs_without_holding_the_lock_its_logger_needs() {
    let _turn = turn();
    let _guard = graphyte::init(Sender::builder("unused").synchronous().socket(Refusing)).unwrap();
    let result = finishes(|| graphyte::try_send(graphyte::Metric::new("app.m", 1)));
    assert!(matches!(result, Err(graphyte::Error::Io(_))), "{result:?}");
    assert!(LOGGED.load(Ordering::SeqCst) >= 1, "the failure was logged");
}

#[test]
fn a_refused_send_logs_without_holding_the_lock_a_refused_send_in_its_logger_needs() {
    let _turn = turn();
    ALSO_SEND_A_BAD_NAME.store(true, Ordering::SeqCst);
    let guard = graphyte::init(Sender::builder("unused").socket(Discard)).unwrap();
    let sender = guard.sender().clone();
    finishes(|| graphyte::send("bad name", 1));
    // The send, and the logger's own refused send: both counted.
    assert!(sender.stats().refused >= 2, "{:?}", sender.stats());
}

/// A socket whose first write waits for the test, then fails; later writes go through.
#[derive(Clone, Default)]
struct Gate {
    state: Arc<(Mutex<(bool, usize)>, Condvar)>,
    written: Capture,
}

impl Gate {
    fn entered(&self) -> usize {
        self.state.0.lock().unwrap().1
    }

    fn open(&self) {
        self.state.0.lock().unwrap().0 = true;
        self.state.1.notify_all();
    }
}

impl SendSocket for Gate {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (lock, opened) = &*self.state;
        let mut state = lock.lock().unwrap();
        state.1 += 1;
        if state.1 == 1 {
            drop(opened.wait_while(state, |(open, _)| !*open).unwrap());
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        drop(state);
        self.written.send(buf)
    }
}

#[test]
fn the_worker_drops_its_loggers_send_into_its_own_full_queue_instead_of_waiting() {
    let _turn = turn();
    let gate = Gate::default();
    let guard = graphyte::init(
        Sender::builder("unused")
            .socket(gate.clone())
            .queue_capacity(4)
            .batch_size(1)
            .full_queue(FullQueue::Block)
            .interval(Duration::from_secs(3600))
            .backoff(Duration::from_millis(5), Duration::from_millis(10)),
    )
    .unwrap();
    let sender = guard.sender().clone();
    // The worker takes the first point and waits in the socket; four more fill the queue.
    graphyte::send("app.m", 0);
    assert!(wait_until(Duration::from_secs(10), || gate.entered() == 1));
    for i in 1..=4 {
        graphyte::send("app.m", i);
    }
    // The failed write is logged on the worker's thread, while its queue is full.
    gate.open();
    finishes(move || {
        graphyte::send("app.m", 5);
        graphyte::flush()
    })
    .unwrap();
    let lines = gate.written.lines();
    let sent: Vec<_> = lines.iter().filter(|l| l.starts_with("app.m ")).collect();
    assert_eq!(sent.len(), 6, "{lines:?}");
    assert!(
        sender.stats().dropped >= 1,
        "the logger's send on the worker thread was dropped: {:?}",
        sender.stats()
    );
}
