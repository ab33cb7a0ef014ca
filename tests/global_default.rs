//! The process-wide default sender: `init`, the free functions, replacing it, and its guard.
//!
//! These tests share one process-wide default, so they take turns, and each turn ends by
//! shutting the default down (a guard never uninstalls it).

mod support;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use graphyte::{Error, Metric, Sender};
use support::Capture;

static TURN: Mutex<()> = Mutex::new(());

/// This test's turn at the process-wide default; uninstalls whatever default is left.
struct Turn(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = graphyte::shutdown(Duration::from_secs(5));
    }
}

fn turn() -> Turn {
    let turn = Turn(TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    let _ = graphyte::shutdown(Duration::from_secs(5));
    turn
}

fn builder(capture: &Capture) -> graphyte::Builder {
    Sender::builder("unused")
        .socket(capture.clone())
        .interval(Duration::from_secs(3600))
}

#[test]
fn sends_before_init_do_nothing_and_never_panic() {
    let _turn = turn();
    graphyte::send("nobody.listens", 1);
    graphyte::send_at("nobody.listens", 1, 1_700_000_000);
    graphyte::send_tagged("nobody.listens", 1, &[("k", "v")]);
    assert!(matches!(
        graphyte::try_send(Metric::new("nobody.listens", 1)),
        Err(Error::NoDefaultSender)
    ));
    assert!(graphyte::flush().is_ok());
    assert!(graphyte::stats().is_none());
}

#[test]
fn init_installs_the_sender_that_the_free_functions_use() {
    let _turn = turn();
    let capture = Capture::default();
    let _guard = graphyte::init(builder(&capture).prefix("app")).unwrap();
    graphyte::send_at("a", 1, 1_700_000_000);
    graphyte::send_tagged("b", 2, &[("k", "v")]);
    graphyte::flush().unwrap();
    let lines = capture.lines();
    assert_eq!(lines[0], "app.a 1 1700000000");
    assert!(lines[1].starts_with("app.b;k=v 2 "), "{lines:?}");
    assert_eq!(graphyte::stats().unwrap().sent, 2);
}

#[test]
fn free_functions_work_from_any_thread() {
    let _turn = turn();
    let capture = Capture::default();
    let _guard = graphyte::init(builder(&capture)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                (0..250).for_each(|i| graphyte::send("threads", t * 1000 + i))
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    graphyte::flush().unwrap();
    assert_eq!(capture.lines().len(), 1000);
}

#[test]
fn a_second_init_replaces_the_default_and_flushes_the_old_one() {
    let _turn = turn();
    let (first, second) = (Capture::default(), Capture::default());
    let _first_guard = graphyte::init(builder(&first)).unwrap();
    graphyte::send("to.first", 1);
    let _second_guard = graphyte::init(builder(&second)).unwrap();
    assert_eq!(first.lines().len(), 1, "the old default was flushed");
    graphyte::send("to.second", 2);
    graphyte::flush().unwrap();
    assert_eq!((first.lines().len(), second.lines().len()), (1, 1));
}

#[test]
fn dropping_the_guard_writes_the_queue_and_keeps_the_default_installed() {
    let _turn = turn();
    let capture = Capture::default();
    let guard = graphyte::init(builder(&capture)).unwrap();
    for i in 0..100 {
        graphyte::send("guarded", i);
    }
    drop(guard);
    assert_eq!(capture.lines().len(), 100, "the drop flushed");
    graphyte::send("after.guard", 1);
    graphyte::flush().unwrap();
    assert_eq!(
        capture.lines().len(),
        101,
        "sends after the drop still go out"
    );
}

#[test]
fn a_guard_dropped_at_once_costs_nothing_but_the_final_flush() {
    let _turn = turn();
    let capture = Capture::default();
    // What rustc suggests for an unused #[must_use] value: the guard is dropped right here.
    let _ = graphyte::init(builder(&capture)).unwrap();
    graphyte::send("after.dropped.guard", 1);
    graphyte::flush().unwrap();
    assert_eq!(capture.lines().len(), 1);
    assert!(graphyte::try_send(Metric::new("still.installed", 2)).is_ok());
}

#[test]
fn dropping_the_newer_guard_while_the_older_lives_keeps_the_newer_default() {
    let _turn = turn();
    let (older, newer) = (Capture::default(), Capture::default());
    let _older_guard = graphyte::init(builder(&older)).unwrap();
    let newer_guard = graphyte::init(builder(&newer)).unwrap();
    drop(newer_guard);
    graphyte::send("to.newer", 1);
    graphyte::flush().unwrap();
    assert_eq!((older.lines().len(), newer.lines().len()), (0, 1));
}

#[test]
fn dropping_the_older_guard_does_not_disturb_the_newer_default() {
    let _turn = turn();
    let (older, newer) = (Capture::default(), Capture::default());
    let older_guard = graphyte::init(builder(&older)).unwrap();
    let _newer_guard = graphyte::init(builder(&newer)).unwrap();
    drop(older_guard);
    graphyte::send("to.newer", 1);
    graphyte::flush().unwrap();
    assert_eq!((older.lines().len(), newer.lines().len()), (0, 1));
}

#[test]
fn shutdown_writes_the_queue_and_uninstalls_the_default() {
    let _turn = turn();
    let capture = Capture::default();
    let guard = graphyte::init(builder(&capture)).unwrap();
    graphyte::send("before.shutdown", 1);
    graphyte::shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(capture.lines().len(), 1);
    assert!(matches!(
        graphyte::try_send(Metric::new("after.shutdown", 1)),
        Err(Error::NoDefaultSender)
    ));
    assert_eq!(guard.sender().stats().sent, 1);
    assert!(
        matches!(
            guard.sender().try_send(Metric::new("after.shutdown", 1)),
            Err(Error::Closed)
        ),
        "the sender itself is stopped"
    );
}

#[test]
fn init_with_an_invalid_configuration_returns_the_error_and_keeps_the_old_default() {
    let _turn = turn();
    let capture = Capture::default();
    let _guard = graphyte::init(builder(&capture)).unwrap();
    assert!(graphyte::init(Sender::builder("h").prefix("bad prefix")).is_err());
    graphyte::send("still.here", 1);
    graphyte::flush().unwrap();
    assert_eq!(capture.lines().len(), 1);
}
