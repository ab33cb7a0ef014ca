//! The batch API (`Sender::send_batch`, `Sender::send_batch_at`, `graphyte::send_batch`): what
//! it takes, that each metric is checked on its own, how the common timestamp applies, and
//! what a batch's outcome and the sender's stats say in background mode, in synchronous mode,
//! after a failed write and after a shutdown.
//!
//! This binary never installs a default sender: the free function is tested here only before
//! `init`.

mod support;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use graphyte::{BatchOutcome, Error, Metric, SendSocket, Sender};
use support::{Capture, Discard, lines_of, unix_now, wait_until};

const TS: u32 = 1_700_000_000;

/// The lines of `bytes`, sorted (a map's entries come in no particular order).
fn sorted_lines(bytes: &[u8]) -> Vec<String> {
    let mut lines = lines_of(bytes);
    lines.sort();
    lines
}

/// The outcome's counts, for one readable assertion.
fn counts(outcome: &BatchOutcome) -> (usize, usize, usize) {
    (outcome.accepted, outcome.refused, outcome.lost)
}

/// A socket that counts its `send` calls and keeps what it is given; from call number
/// `fail_from` on (counting from 1), every call fails with `error_kind`.
#[derive(Clone)]
struct Counting {
    calls: Arc<AtomicUsize>,
    bytes: Arc<Mutex<Vec<u8>>>,
    fail_from: usize,
    error_kind: io::ErrorKind,
}

impl Counting {
    fn new() -> Self {
        Self::failing_from(usize::MAX, io::ErrorKind::ConnectionReset)
    }

    fn failing_from(fail_from: usize, error_kind: io::ErrorKind) -> Self {
        Counting {
            calls: Arc::default(),
            bytes: Arc::default(),
            fail_from,
            error_kind,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn lines(&self) -> Vec<String> {
        lines_of(&self.bytes.lock().unwrap())
    }

    fn synchronous(&self, batch_size: usize) -> Sender {
        Sender::builder("unused")
            .synchronous()
            .batch_size(batch_size)
            .socket(self.clone())
            .build()
            .unwrap()
    }
}

impl SendSocket for Counting {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call >= self.fail_from {
            return Err(io::Error::new(self.error_kind, "injected by the test"));
        }
        self.bytes.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
}

/// A socket whose every `send` waits until the test drops the matching `mpsc::Sender` (the
/// release), so the worker cannot drain the queue meanwhile. Counts the calls it entered.
struct Gate {
    entered: Arc<AtomicUsize>,
    release: mpsc::Receiver<()>,
}

impl Gate {
    fn new() -> (Gate, mpsc::Sender<()>, Arc<AtomicUsize>) {
        let (release, gate) = mpsc::channel();
        let entered = Arc::new(AtomicUsize::new(0));
        let socket = Gate {
            entered: Arc::clone(&entered),
            release: gate,
        };
        (socket, release, entered)
    }
}

impl SendSocket for Gate {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        // Returns once the release is dropped (the channel is then disconnected).
        while self.release.recv().is_ok() {}
        Ok(buf.len())
    }
}

// What a batch takes.

#[test]
fn two_tuples_are_accepted_and_written_in_order_with_the_common_timestamp() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let outcome = sender.send_batch_at([("a.b", 1), ("a.c", -2), ("a.d", 3)], TS);
    assert_eq!(counts(&outcome), (3, 0, 0));
    assert!(outcome.is_complete());
    assert!(outcome.first_error.is_none());
    assert_eq!(
        capture.lines(),
        ["a.b 1 1700000000", "a.c -2 1700000000", "a.d 3 1700000000"]
    );
}

#[test]
fn three_tuples_are_accepted_and_keep_their_own_timestamps() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let outcome = sender.send_batch([
        ("x.one", 1.5, 1_600_000_001u32),
        ("x.two", 2.25, 1_600_000_002u32),
    ]);
    assert_eq!(counts(&outcome), (2, 0, 0));
    assert_eq!(
        capture.lines(),
        ["x.one 1.5 1600000001", "x.two 2.25 1600000002"]
    );
}

#[test]
fn metrics_with_tags_and_timestamps_are_accepted_with_their_tags_merged_over_the_defaults() {
    let capture = Capture::default();
    let sender = Sender::builder("unused")
        .synchronous()
        .tag("env", "prod")
        .tag("host", "web1")
        .socket(capture.clone())
        .build()
        .unwrap();
    let tags = [("host", "web2"), ("zone", "a")];
    let outcome = sender.send_batch([
        Metric::new("m.tagged", 1).timestamp(TS).tags(&tags),
        Metric::new("m.plain", 2).timestamp(TS + 1),
    ]);
    assert_eq!(counts(&outcome), (2, 0, 0));
    assert_eq!(
        capture.lines(),
        [
            "m.tagged;env=prod;host=web2;zone=a 1 1700000000",
            "m.plain;env=prod;host=web1 2 1700000001",
        ]
    );
}

#[test]
fn a_hashmap_by_reference_is_accepted_and_every_entry_arrives() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let map: HashMap<String, f64> = HashMap::from([
        ("map.a".to_string(), 0.5),
        ("map.b".to_string(), 12.0),
        ("map.c".to_string(), -3.75),
    ]);
    let outcome = sender.send_batch_at(&map, TS);
    assert_eq!(counts(&outcome), (3, 0, 0));
    assert_eq!(
        sorted_lines(&capture.take()),
        [
            "map.a 0.5 1700000000",
            "map.b 12 1700000000",
            "map.c -3.75 1700000000"
        ]
    );
    assert_eq!(map.len(), 3, "the map is still the caller's");
}

#[test]
fn a_hashmap_of_str_keys_by_reference_is_accepted() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let map: HashMap<&str, u64> = HashMap::from([("keys.a", 1), ("keys.b", u64::MAX)]);
    let outcome = sender.send_batch_at(&map, TS);
    assert_eq!(counts(&outcome), (2, 0, 0));
    assert_eq!(
        sorted_lines(&capture.take()),
        [
            "keys.a 1 1700000000",
            "keys.b 18446744073709551615 1700000000"
        ]
    );
}

#[test]
fn a_hashmap_by_value_is_accepted_and_every_entry_arrives() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let map: HashMap<String, i32> =
        HashMap::from([("owned.a".to_string(), 7), ("owned.b".to_string(), -7)]);
    let outcome = sender.send_batch_at(map, TS);
    assert_eq!(counts(&outcome), (2, 0, 0));
    assert_eq!(
        sorted_lines(&capture.take()),
        ["owned.a 7 1700000000", "owned.b -7 1700000000"]
    );
}

#[test]
fn owned_names_from_a_lazy_iterator_are_accepted() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let outcome = sender.send_batch_at((0..3).map(|i| (format!("hosts.web{i}.load"), i)), TS);
    assert_eq!(counts(&outcome), (3, 0, 0));
    assert_eq!(
        capture.lines(),
        [
            "hosts.web0.load 0 1700000000",
            "hosts.web1.load 1 1700000000",
            "hosts.web2.load 2 1700000000",
        ]
    );
}

#[test]
fn a_batch_through_the_background_worker_arrives_after_a_flush() {
    let capture = Capture::default();
    let sender = Sender::builder("unused")
        .interval(Duration::from_secs(3600))
        .socket(capture.clone())
        .build()
        .unwrap();
    let outcome = sender.send_batch_at([("bg.a", 1), ("bg.b", 2)], TS);
    assert_eq!(counts(&outcome), (2, 0, 0));
    sender.flush().unwrap();
    assert_eq!(capture.lines(), ["bg.a 1 1700000000", "bg.b 2 1700000000"]);
    let stats = sender.stats();
    assert_eq!((stats.queued, stats.sent), (2, 2));
}

#[test]
fn an_empty_batch_is_complete_and_writes_nothing() {
    let socket = Counting::new();
    let sender = socket.synchronous(10);
    let outcome = sender.send_batch(Vec::<(&str, i32)>::new());
    assert_eq!(counts(&outcome), (0, 0, 0));
    assert!(outcome.is_complete());
    assert_eq!(outcome.into_result().unwrap(), 0);
    assert_eq!(socket.calls(), 0);
}

// Each metric is checked on its own.

#[test]
fn an_invalid_metric_is_refused_alone_and_the_others_are_written() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let outcome = sender.send_batch_at([("good.one", 1), ("bad name", 2), ("good.two", 3)], TS);
    assert_eq!(counts(&outcome), (2, 1, 0));
    assert!(!outcome.is_complete());
    match &outcome.first_error {
        Some(Error::InvalidName { name, .. }) => assert_eq!(name, "bad name"),
        other => panic!("expected InvalidName for \"bad name\", got {other:?}"),
    }
    assert_eq!(
        capture.lines(),
        ["good.one 1 1700000000", "good.two 3 1700000000"]
    );
    let stats = sender.stats();
    assert_eq!(
        (stats.refused, stats.queued, stats.sent, stats.dropped),
        (1, 2, 2, 0)
    );
}

#[test]
fn the_first_error_is_the_first_refusal_and_every_refusal_is_counted() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let outcome = sender.send_batch_at(
        [
            Metric::new("ok.a", 1),
            Metric::new("nan.value", f64::NAN),
            Metric::new("bad..name", 2),
            Metric::new("ms.timestamp", 3).timestamp(1_700_000_000_000i64),
            Metric::new("ok.b", 4),
        ],
        TS,
    );
    assert_eq!(counts(&outcome), (2, 3, 0));
    assert!(
        matches!(outcome.first_error, Some(Error::InvalidValue { .. })),
        "{:?}",
        outcome.first_error
    );
    assert_eq!(capture.lines(), ["ok.a 1 1700000000", "ok.b 4 1700000000"]);
    assert_eq!(sender.stats().refused, 3);
}

#[test]
fn an_invalid_tag_refuses_only_its_metric() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let bad = [("k", "~v")];
    let outcome = sender.send_batch_at(
        [Metric::new("t.good", 1), Metric::new("t.bad", 2).tags(&bad)],
        TS,
    );
    assert_eq!(counts(&outcome), (1, 1, 0));
    assert!(matches!(
        outcome.first_error,
        Some(Error::InvalidTag { .. })
    ));
    assert_eq!(capture.lines(), ["t.good 1 1700000000"]);
}

#[test]
fn refusals_are_checked_the_same_way_in_background_mode() {
    let capture = Capture::default();
    let sender = Sender::builder("unused")
        .interval(Duration::from_secs(3600))
        .socket(capture.clone())
        .build()
        .unwrap();
    let outcome = sender.send_batch_at([("good.one", 1), ("bad name", 2), ("good.two", 3)], TS);
    assert_eq!(counts(&outcome), (2, 1, 0));
    assert!(matches!(
        outcome.first_error,
        Some(Error::InvalidName { ref name, .. }) if name == "bad name"
    ));
    sender.flush().unwrap();
    assert_eq!(
        capture.lines(),
        ["good.one 1 1700000000", "good.two 3 1700000000"]
    );
    assert_eq!(sender.stats().refused, 1);
}

#[test]
fn into_result_gives_the_count_when_complete_and_the_first_error_otherwise() {
    let sender = Sender::builder("unused")
        .synchronous()
        .socket(Discard)
        .build()
        .unwrap();
    assert_eq!(
        sender
            .send_batch_at([("a.b", 1), ("a.c", 2)], TS)
            .into_result()
            .unwrap(),
        2
    );
    let err = sender
        .send_batch_at([("a.b", 1), ("a c", 2), ("a;d", 3)], TS)
        .into_result()
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidName { ref name, .. } if name == "a c"),
        "{err:?}"
    );
}

// Timestamps.

#[test]
fn the_common_timestamp_applies_only_to_metrics_without_their_own() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let outcome = sender.send_batch_at(
        [
            Metric::from(("c.a", 1)),
            Metric::from(("c.b", 2, 1_600_000_000)),
            Metric::new("c.c", 3).timestamp(1_650_000_000u64),
            Metric::from(("c.d", 4)),
        ],
        TS,
    );
    assert_eq!(counts(&outcome), (4, 0, 0));
    assert_eq!(
        capture.lines(),
        [
            "c.a 1 1700000000",
            "c.b 2 1600000000",
            "c.c 3 1650000000",
            "c.d 4 1700000000",
        ]
    );
}

#[test]
fn a_three_tuple_timestamp_does_not_leak_into_later_two_tuples() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let before = unix_now();
    let outcome = sender.send_batch([
        Metric::from(("leak.first", 1, 1_000_000_000)),
        Metric::from(("leak.second", 2)),
        Metric::from(("leak.third", 3)),
    ]);
    let after = unix_now();
    assert_eq!(counts(&outcome), (3, 0, 0));
    let lines = capture.lines();
    assert_eq!(lines[0], "leak.first 1 1000000000");
    for line in &lines[1..] {
        let stamp = graphyte::parse_line(line.as_bytes())
            .unwrap()
            .timestamp()
            .unwrap();
        // The sender's clock ticks at second boundaries: allow it one second of lag.
        assert!(
            before - 1 <= stamp && stamp <= after,
            "{line:?} is not stamped now ({before}..={after})"
        );
    }
}

#[test]
fn a_three_tuple_timestamp_does_not_leak_into_later_two_tuples_under_a_common_timestamp() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let outcome = sender.send_batch_at(
        [
            Metric::from(("leak.first", 1, 1_000_000_000)),
            Metric::from(("leak.second", 2)),
        ],
        TS,
    );
    assert_eq!(counts(&outcome), (2, 0, 0));
    assert_eq!(
        capture.lines(),
        ["leak.first 1 1000000000", "leak.second 2 1700000000"]
    );
}

#[test]
fn an_invalid_common_timestamp_refuses_only_the_metrics_that_use_it() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let outcome = sender.send_batch_at(
        [
            Metric::from(("own.stamp", 1, 1_600_000_000)),
            Metric::from(("no.stamp", 2)),
        ],
        1_700_000_000_000u64,
    );
    assert_eq!(counts(&outcome), (1, 1, 0));
    assert!(matches!(
        outcome.first_error,
        Some(Error::InvalidTimestamp { .. })
    ));
    assert_eq!(capture.lines(), ["own.stamp 1 1600000000"]);
}

// Background mode: each point is queued like a single send.

#[test]
fn a_full_queue_drops_the_rest_of_a_batch_counted_as_lost_and_dropped() {
    const CAPACITY: usize = 8;
    const BATCH: usize = 100;
    let (socket, release, entered) = Gate::new();
    let sender = Sender::builder("unused")
        .interval(Duration::from_secs(3600))
        .queue_capacity(CAPACITY)
        .batch_size(1)
        .socket(socket)
        .build()
        .unwrap();
    // Keep the worker busy in a write that does not return until released.
    sender.send("held.by.the.worker", 0);
    assert!(
        wait_until(Duration::from_secs(10), || entered.load(Ordering::SeqCst)
            >= 1),
        "the worker never wrote the first point"
    );
    let outcome = sender.send_batch_at((0..BATCH).map(|i| ("full.queue", i)), TS);
    assert_eq!(counts(&outcome), (CAPACITY, 0, BATCH - CAPACITY));
    assert_eq!(outcome.accepted + outcome.lost, BATCH);
    assert!(
        matches!(outcome.first_error, Some(Error::QueueFull)),
        "{:?}",
        outcome.first_error
    );
    assert_eq!(sender.stats().dropped, (BATCH - CAPACITY) as u64);

    drop(release);
    sender.flush().unwrap();
    let stats = sender.stats();
    assert_eq!(
        (stats.queued, stats.sent, stats.dropped, stats.failed),
        (
            1 + CAPACITY as u64,
            1 + CAPACITY as u64,
            (BATCH - CAPACITY) as u64,
            0
        )
    );
}

#[test]
fn a_huge_lazy_batch_in_background_mode_returns_promptly_and_accounts_for_every_point() {
    const N: usize = 1_000_000;
    let sender = Sender::builder("unused")
        .interval(Duration::from_secs(3600))
        .socket(Discard)
        .build()
        .unwrap();
    let start = Instant::now();
    let outcome = sender.send_batch((0..N).map(|i| ("huge.batch", i)));
    let took = start.elapsed();
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert_eq!(outcome.refused, 0);
    assert_eq!(outcome.accepted + outcome.lost, N);
    if outcome.lost > 0 {
        assert!(matches!(outcome.first_error, Some(Error::QueueFull)));
    }
    sender.flush().unwrap();
    let stats = sender.stats();
    assert_eq!(stats.queued, outcome.accepted as u64);
    assert_eq!(stats.dropped, outcome.lost as u64);
    assert_eq!(stats.sent, outcome.accepted as u64);
}

// Synchronous mode: written in chunks of up to the batch size.

#[test]
fn a_synchronous_batch_of_n_points_takes_ceil_n_over_batch_size_writes() {
    for (n, batch_size, writes) in [(25, 10, 3), (30, 10, 3), (1, 10, 1), (1000, 1000, 1)] {
        let socket = Counting::new();
        let sender = socket.synchronous(batch_size);
        let outcome = sender.send_batch_at((0..n).map(|i| (format!("sync.m{i}"), i)), TS);
        assert_eq!(counts(&outcome), (n, 0, 0), "{n} points");
        assert_eq!(
            socket.calls(),
            writes,
            "{n} points in chunks of {batch_size}"
        );
        let lines = socket.lines();
        assert_eq!(lines.len(), n);
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(line, &format!("sync.m{i} {i} 1700000000"));
        }
        let stats = sender.stats();
        assert_eq!((stats.queued, stats.sent), (n as u64, n as u64));
    }
}

#[test]
fn refused_metrics_do_not_count_towards_a_synchronous_chunk() {
    let socket = Counting::new();
    let sender = socket.synchronous(2);
    let outcome = sender.send_batch_at(
        [
            ("c.a", 1),
            ("bad name", 0),
            ("c.b", 2),
            ("bad name", 0),
            ("c.c", 3),
        ],
        TS,
    );
    assert_eq!(counts(&outcome), (3, 2, 0));
    assert_eq!(socket.calls(), 2, "3 valid points in chunks of 2");
}

#[test]
fn a_failed_synchronous_write_loses_the_batch_as_io_counted_as_failed() {
    let socket = Counting::failing_from(1, io::ErrorKind::ConnectionReset);
    let sender = socket.synchronous(1000);
    let outcome = sender.send_batch_at((0..10).map(|i| ("fails", i)), TS);
    assert_eq!(counts(&outcome), (0, 0, 10));
    assert!(
        matches!(outcome.first_error, Some(Error::Io(_))),
        "{:?}",
        outcome.first_error
    );
    assert_eq!(socket.calls(), 1, "one write for the whole batch");
    let stats = sender.stats();
    assert_eq!(
        (stats.failed, stats.sent, stats.dropped, stats.refused),
        (10, 0, 0, 0)
    );
}

#[test]
fn a_failed_synchronous_write_loses_its_chunk_and_the_later_ones_but_not_the_earlier() {
    // The first write succeeds, the second fails; the third chunk finds the link in backoff.
    let socket = Counting::failing_from(2, io::ErrorKind::ConnectionReset);
    let sender = socket.synchronous(2);
    let outcome = sender.send_batch_at((0..6).map(|i| (format!("chunk.m{i}"), i)), TS);
    assert_eq!(counts(&outcome), (2, 0, 4));
    assert!(matches!(outcome.first_error, Some(Error::Io(_))));
    assert_eq!(
        socket.lines(),
        ["chunk.m0 0 1700000000", "chunk.m1 1 1700000000"]
    );
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.failed), (2, 4));
}

/// A socket that takes the first `take` bytes of its first call and fails every later call.
struct CutShort {
    take: usize,
    calls: usize,
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl SendSocket for CutShort {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls > 1 {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        let n = self.take.min(buf.len());
        self.bytes.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

#[test]
fn a_write_cut_short_counts_its_whole_lines_as_accepted_and_the_rest_as_lost() {
    let bytes = Arc::default();
    let sender = Sender::builder("unused")
        .synchronous()
        .socket(CutShort {
            take: 30,
            calls: 0,
            bytes: Arc::clone(&bytes),
        })
        .build()
        .unwrap();
    // Lines of 18 bytes: the 30 bytes written hold one whole line and part of the next.
    let outcome = sender.send_batch_at((0..4).map(|i| (format!("p.m{i}"), i)), TS);
    assert_eq!(counts(&outcome), (1, 0, 3));
    assert!(matches!(outcome.first_error, Some(Error::Io(_))));
    assert!(bytes.lock().unwrap().starts_with(b"p.m0 0 1700000000\n"));
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.sent_bytes, stats.failed), (1, 18, 3));
}

#[test]
fn a_synchronous_write_refused_for_good_loses_the_chunk_as_io() {
    let socket = Counting::failing_from(1, io::ErrorKind::InvalidData);
    let sender = socket.synchronous(1000);
    let outcome = sender.send_batch_at((0..5).map(|i| ("refused.for.good", i)), TS);
    assert_eq!(counts(&outcome), (0, 0, 5));
    match &outcome.first_error {
        Some(Error::Io(err)) => assert_eq!(err.kind(), io::ErrorKind::InvalidData),
        other => panic!("expected Io(InvalidData), got {other:?}"),
    }
    assert_eq!(sender.stats().failed, 5);
}

// After a shutdown.

#[test]
fn after_a_synchronous_shutdown_every_metric_of_a_batch_is_lost_as_closed() {
    let socket = Counting::new();
    let sender = socket.synchronous(1000);
    sender.shutdown(Duration::from_secs(1)).unwrap();
    let outcome = sender.send_batch_at((0..7).map(|i| ("after.shutdown", i)), TS);
    assert_eq!(counts(&outcome), (0, 0, 7));
    assert!(
        matches!(outcome.first_error, Some(Error::Closed)),
        "{:?}",
        outcome.first_error
    );
    assert_eq!(socket.calls(), 0);
    let stats = sender.stats();
    assert_eq!((stats.dropped, stats.queued, stats.sent), (7, 0, 0));
}

#[test]
fn after_a_background_shutdown_every_metric_of_a_batch_is_lost_as_closed() {
    let capture = Capture::default();
    let sender = Sender::builder("unused")
        .socket(capture.clone())
        .build()
        .unwrap();
    sender.shutdown(Duration::from_secs(2)).unwrap();
    let outcome = sender.send_batch_at((0..7).map(|i| ("after.shutdown", i)), TS);
    assert_eq!(counts(&outcome), (0, 0, 7));
    assert!(
        matches!(outcome.first_error, Some(Error::Closed)),
        "{:?}",
        outcome.first_error
    );
    assert!(capture.is_empty());
    let stats = sender.stats();
    assert_eq!((stats.dropped, stats.queued), (7, 0));
}

// The process-wide default (never installed in this binary).

#[test]
fn the_free_send_batch_without_a_default_sender_sends_nothing_and_does_not_consume_the_metrics() {
    // An endless iterator: counting it would never return.
    let outcome = graphyte::send_batch((0..).map(|i| ("no.default", i)));
    assert_eq!(counts(&outcome), (0, 0, 0));
    assert!(!outcome.is_complete());
    assert!(
        matches!(outcome.first_error, Some(Error::NoDefaultSender)),
        "{:?}",
        outcome.first_error
    );
    assert!(matches!(outcome.into_result(), Err(Error::NoDefaultSender)));
}
