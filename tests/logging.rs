//! Failures are logged through the `log` crate, target `graphyte`, at most once per period.

mod support;

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use graphyte::{SendSocket, Sender};

struct Recorder;

static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());
static TURN: Mutex<()> = Mutex::new(());

impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS.lock().unwrap().push((
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

/// Installs the recorder, empties it, and serializes the tests of this file.
fn recording() -> std::sync::MutexGuard<'static, ()> {
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let _ = log::set_logger(&Recorder);
    log::set_max_level(log::LevelFilter::Trace);
    RECORDS.lock().unwrap().clear();
    turn
}

fn records_containing(text: &str) -> Vec<(log::Level, String, String)> {
    RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.2.contains(text))
        .cloned()
        .collect()
}

struct Broken;

impl SendSocket for Broken {
    fn send(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "test server refuses",
        ))
    }
}

#[test]
fn repeated_send_failures_are_logged_once_per_interval() {
    let _turn = recording();
    let sender = Sender::builder("unused")
        .socket(Broken)
        .timeout(Duration::from_millis(100))
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for _ in 0..5 {
        sender.send("x", 1);
        let _ = sender.flush();
    }
    let failures = records_containing("test server refuses");
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, log::Level::Warn);
    assert_eq!(failures[0].1, "graphyte");
}

#[test]
fn refused_metrics_are_logged_once_per_period_with_the_error() {
    let _turn = recording();
    let sender = Sender::builder("unused")
        .socket(Broken)
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    for _ in 0..10 {
        sender.send("bad name", 1);
    }
    let refusals = records_containing("invalid metric name");
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].1, "graphyte");
}

#[test]
fn queue_full_drops_are_reported_with_their_count_by_the_worker() {
    let _turn = recording();
    struct Stalled(std::sync::mpsc::Receiver<()>);
    impl SendSocket for Stalled {
        fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }
    }
    let (release, stalled) = std::sync::mpsc::channel();
    let sender = Sender::builder("unused")
        .socket(Stalled(stalled))
        .queue_capacity(2)
        .batch_size(1)
        .interval(Duration::from_millis(20))
        .build()
        .unwrap();
    for i in 0..50 {
        sender.send("flood", i);
    }
    let dropped = sender.stats().dropped;
    assert!(dropped > 0);
    for _ in 0..60 {
        let _ = release.send(());
    }
    assert!(support::wait_until(Duration::from_secs(10), || {
        !records_containing("queue full").is_empty()
    }));
    let reports = records_containing("queue full");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].2.contains(&format!("{dropped} metrics dropped")),
        "{reports:?}"
    );
    drop(release);
}
