//! Forwarding plaintext lines (`Sender::line_batch`, `LineBatch`): each line is checked by
//! `parse_line` and the sender's rules when pushed; plaintext goes out byte for byte as it came
//! (a missing timestamp appended, the path rewritten only for a prefix or default tags); a
//! background sender queues a batch as one slot; a synchronous one writes it at once; pickle
//! turns each line into a point; and every line is accounted for in `Stats`.

mod support;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use graphyte::{BatchOutcome, Error, LineBatch, MAX_PATH_LEN, Protocol, SendSocket, Sender};
use graphyte::{MAX_LINE_LEN, Transport};
use support::hostile::Refused;
use support::pickle::{PyNum, unpickle_frame};
use support::{Capture, TcpSink, UdpSink, lines_of, unix_now, wait_until};

const TS: u32 = 1_700_000_000;
const HOUR: Duration = Duration::from_secs(3600);
const WAIT: Duration = Duration::from_secs(10);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The outcome's counts, for one readable assertion.
fn counts(outcome: &BatchOutcome) -> (usize, usize, usize) {
    (outcome.accepted, outcome.refused, outcome.lost)
}

/// Pushes every line, failing the test on the first refusal.
fn push_all(batch: &mut LineBatch, lines: &[&[u8]]) {
    for line in lines {
        batch
            .push(line)
            .unwrap_or_else(|err| panic!("{:?} refused: {err}", text(line)));
    }
}

/// The stream a set of lines should make: each line once, ending in one `\n`.
fn stream_of(lines: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
        out.push(b'\n');
    }
    out
}

/// `count` distinct plain lines with their timestamps, as one expected stream.
fn numbered_lines(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("forward.m{} {i}.5 {TS}", i % 97).into_bytes())
        .collect()
}

/// A background sender on `socket` that writes only when asked (or a batch is full).
fn background(socket: impl SendSocket) -> graphyte::Builder {
    Sender::builder("unused").socket(socket).interval(HOUR)
}

/// A socket whose every `send` waits until the test drops the matching `mpsc::Sender` (the
/// release), so the worker cannot take from the queue meanwhile. Counts the calls it entered
/// and keeps what it was given.
struct Gate {
    entered: Arc<AtomicUsize>,
    release: mpsc::Receiver<()>,
    written: Capture,
}

impl Gate {
    fn new() -> (Gate, mpsc::Sender<()>, Arc<AtomicUsize>, Capture) {
        let (release, gate) = mpsc::channel();
        let entered = Arc::new(AtomicUsize::new(0));
        let written = Capture::default();
        let socket = Gate {
            entered: Arc::clone(&entered),
            release: gate,
            written: written.clone(),
        };
        (socket, release, entered, written)
    }
}

impl SendSocket for Gate {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        // Returns once the release is dropped (the channel is then disconnected).
        while self.release.recv().is_ok() {}
        self.written.send(buf)
    }
}

/// A background sender with a queue of one slot whose worker is held inside a write (of the
/// point `held.by.the.worker`) until `release` is dropped.
fn held_sender() -> (Sender, mpsc::Sender<()>, Capture) {
    let (socket, release, entered, written) = Gate::new();
    let sender = background(socket)
        .queue_capacity(1)
        .batch_size(1)
        .build()
        .unwrap();
    sender.send("held.by.the.worker", 0);
    assert!(
        wait_until(WAIT, || entered.load(Ordering::SeqCst) >= 1),
        "the worker never wrote the first point"
    );
    (sender, release, written)
}

// Plaintext goes out byte for byte.

/// Lines of every shape a forwarder may be handed, each one Carbon takes.
const SHAPES: &[&[u8]] = &[
    b"disk.free 12.50 1700000000\n",
    b"a.float 42.0 1700000000",
    b"a.negative.zero -0 1700000000",
    b"a.exponent 1e3 1700000000",
    b"a.plus +1 1700000000",
    b"a.leading.zeros 007 1700000000",
    b"a.point .5 1700000000",
    b"a.tabs\t7\t1700000000",
    b"a.double.spaces  5   1700000000",
    b"  a.leading.space 3 1700000000",
    b"a.fractional.time 1 1700000000.75",
    b"disk.used;mount=var;host=db1 87.5 1700000000",
    "h\u{e9}llo.w\u{f6}rld 1 1700000000".as_bytes(),
];

#[test]
fn lines_of_every_shape_pass_through_a_dry_run_byte_for_byte() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    push_all(&mut batch, SHAPES);
    let outcome = batch.send();
    assert_eq!(counts(&outcome), (SHAPES.len(), 0, 0));
    assert_eq!(text(&dry.take()), text(&stream_of(SHAPES)));
}

#[test]
fn lines_of_every_shape_reach_a_tcp_server_byte_for_byte_through_a_background_sender() {
    let sink = TcpSink::start();
    let sender = Sender::builder("127.0.0.1")
        .port(sink.port)
        .interval(HOUR)
        .build()
        .unwrap();
    let mut batch = sender.line_batch();
    push_all(&mut batch, SHAPES);
    assert_eq!(counts(&batch.send()), (SHAPES.len(), 0, 0));
    sender.flush().unwrap();
    let expected = stream_of(SHAPES);
    let received = sink.received_when(|bytes| bytes.len() >= expected.len());
    assert_eq!(text(&received), text(&expected));
}

// Timestamps.

#[test]
fn a_line_without_timestamp_gets_the_default_timestamp_appended() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    push_all(
        &mut batch,
        &[b"a.plain 42.0\n", b"a.tabs\t1e3", b"a.tagged;k=v -0"],
    );
    batch.send();
    assert_eq!(
        text(&dry.take()),
        "a.plain 42.0 1700000000\na.tabs\t1e3 1700000000\na.tagged;k=v -0 1700000000\n"
    );
}

#[test]
fn a_line_without_timestamp_is_stamped_with_the_time_it_was_pushed() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    let before = unix_now();
    push_all(&mut batch, &[b"a.plain 42.0", b"a.tabs\t1e3"]);
    let after = unix_now();
    batch.send();
    let lines = lines_of(&dry.take());
    assert_eq!(lines.len(), 2);
    for (line, kept) in lines.iter().zip(["a.plain 42.0 ", "a.tabs\t1e3 "]) {
        let stamp: u32 = line
            .strip_prefix(kept)
            .unwrap_or_else(|| panic!("{line:?} does not keep {kept:?}"))
            .parse()
            .unwrap_or_else(|err| panic!("{line:?}: no timestamp appended ({err})"));
        // The sender's clock ticks at second boundaries: allow it one second of lag.
        assert!(
            before - 1 <= stamp && stamp <= after,
            "{line:?} is not stamped at its push ({before}..={after})"
        );
    }
}

#[test]
fn a_lines_own_timestamp_wins_over_the_default_timestamp() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    push_all(
        &mut batch,
        &[b"a.own 1 1600000000", b"a.own\t2\t1600000001"],
    );
    batch.send();
    assert_eq!(
        text(&dry.take()),
        "a.own 1 1600000000\na.own\t2\t1600000001\n"
    );
}

#[test]
fn default_timestamp_applies_only_to_lines_pushed_after_it() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    let before = unix_now();
    batch.push(b"a.before 1").unwrap();
    let after = unix_now();
    batch.default_timestamp(TS).unwrap();
    batch.push(b"a.after 2").unwrap();
    batch.send();
    let lines = lines_of(&dry.take());
    let stamp: u32 = lines[0]
        .strip_prefix("a.before 1 ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        before - 1 <= stamp && stamp <= after,
        "{:?} is not stamped at its push ({before}..={after})",
        lines[0]
    );
    assert_eq!(lines[1], "a.after 2 1700000000");
    assert_eq!(lines.len(), 2);
}

#[test]
fn an_invalid_default_timestamp_is_refused_and_the_previous_one_is_kept() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    for bad in [0i64, -5, 1_700_000_000_000, 4_294_967_296] {
        let err = batch.default_timestamp(bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidTimestamp { .. }),
            "{bad}: {err:?}"
        );
    }
    batch.push(b"a.b 1").unwrap();
    batch.send();
    assert_eq!(text(&dry.take()), "a.b 1 1700000000\n");
}

#[test]
fn a_line_without_timestamp_is_refused_when_the_appended_timestamp_takes_it_over_16384_bytes() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    // A long value Carbon reads as 0.0; " 1700000000\n" adds 12 bytes.
    let line = |len: usize| format!("a.b 0.{}", "0".repeat(len - "a.b 0.".len()));
    let fits = line(MAX_LINE_LEN - 12);
    let over = line(MAX_LINE_LEN - 11);
    batch.push(fits.as_bytes()).unwrap();
    let err = batch.push(over.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LineTooLong {
                max: MAX_LINE_LEN,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(batch.len(), 1);
    batch.send();
    assert_eq!(dry.take(), format!("{fits} {TS}\n").into_bytes());
    assert_eq!(dry.sender().stats().refused, 1);
}

#[test]
fn a_line_of_exactly_16384_bytes_with_its_newline_is_kept_and_one_byte_more_is_refused() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    // "a.b 0.000…0 1700000000": the value pads the line to `len` bytes, newline excluded.
    let line = |len: usize| {
        let pad = len - "a.b 0. 1700000000".len();
        format!("a.b 0.{} {TS}", "0".repeat(pad))
    };
    let longest = line(MAX_LINE_LEN - 1);
    let too_long = line(MAX_LINE_LEN);
    batch.push(longest.as_bytes()).unwrap();
    let err = batch.push(too_long.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LineTooLong {
                max: MAX_LINE_LEN,
                ..
            }
        ),
        "{err:?}"
    );
    batch.send();
    let written = dry.take();
    assert_eq!(written.len(), MAX_LINE_LEN);
    assert_eq!(written, format!("{longest}\n").into_bytes());
}

// Refusals.

/// Lines Carbon would drop, misread or drop the connection over, and why each is refused.
fn hostile_lines() -> Vec<(Vec<u8>, Refused)> {
    let over_16384 = format!("{} 1 {TS}", vec!["y".repeat(200); 90].join("."));
    let long_segment = format!("{}.a 1 {TS}", "x".repeat(256));
    let long_last_segment = format!("a.{} 1 {TS}", "x".repeat(252));
    let cases: Vec<(&[u8], Refused)> = vec![
        (b"", Refused::Line),
        (b"\n", Refused::Line),
        (b"a.b", Refused::Line),
        (b"a.b 1 1700000000 extra", Refused::Line),
        (b"a b 1 1700000000", Refused::Line),
        (b"a.\xff 1 1700000000", Refused::Line),
        (b"a.b nan 1700000000", Refused::Value),
        (b"a.b NaN", Refused::Value),
        (b"a.b inf 1700000000", Refused::Value),
        (b"a.b -inf", Refused::Value),
        (b"a.b 1e400 1700000000", Refused::Value),
        (b"a.b 0x10 1700000000", Refused::Value),
        (b"a.b 1_000 1700000000", Refused::Value),
        (b"a.b 1\r", Refused::Value),
        (b";k=v 1 1700000000", Refused::Name),
        (b"a..b 1 1700000000", Refused::Name),
        (b".a 1 1700000000", Refused::Name),
        (b"a. 1 1700000000", Refused::Name),
        (b"/ 1 1700000000", Refused::Name),
        (b"a/b.c 1 1700000000", Refused::Name),
        (b"a\rb 1 1700000000", Refused::Name),
        (b"a\x00b 1 1700000000", Refused::Name),
        (b"a\x0bb 1 1700000000", Refused::Name),
        ("a\u{a0}b 1 1700000000".as_bytes(), Refused::Name),
        (b"~a 1 1700000000", Refused::Name),
        (b"~a.b;k=v 1 1700000000", Refused::Name),
        (b"a{x=\"1\"} 1 1700000000", Refused::Name),
        (long_segment.as_bytes(), Refused::Name),
        (long_last_segment.as_bytes(), Refused::Name),
        (b"a;=x 1 1700000000", Refused::Tag),
        (b"a;k= 1 1700000000", Refused::Tag),
        (b"a;k 1 1700000000", Refused::Tag),
        (b"a;k=~v 1 1700000000", Refused::Tag),
        (b"a;name=x 1 1700000000", Refused::Tag),
        (b"a;k!=v 1 1700000000", Refused::Tag),
        (b"a;k=x\"} 1 1700000000", Refused::Tag),
        ("a;k=v\u{a0}x 1 1700000000".as_bytes(), Refused::Tag),
        ("a;k\u{2028}=v 1 1700000000".as_bytes(), Refused::Tag),
        (b"a.b 1 1700000000\r\n", Refused::Timestamp),
        (b"a.b 1 0", Refused::Timestamp),
        (b"a.b 1 -5", Refused::Timestamp),
        (b"a.b 1 1700000000000", Refused::Timestamp),
        (b"a.b 1 1.7e12", Refused::Timestamp),
        (b"a.b 1 4294967296", Refused::Timestamp),
        (b"a.b 1 17000\xff", Refused::Line),
        (over_16384.as_bytes(), Refused::TooLong),
    ];
    cases
        .into_iter()
        .map(|(line, why)| (line.to_vec(), why))
        .collect()
}

#[test]
fn every_hostile_line_is_refused_with_its_error_and_counted_and_not_kept() {
    for protocol in [Protocol::Plaintext, Protocol::Pickle] {
        let dry = Sender::builder("unused")
            .protocol(protocol)
            .dry_run()
            .unwrap();
        let sender = dry.sender();
        let mut batch = sender.line_batch();
        for (refused, (line, why)) in hostile_lines().into_iter().enumerate() {
            let shown: String = text(&line).chars().take(60).collect();
            match batch.push(&line) {
                Err(err) => assert!(
                    why.matches(&err),
                    "{protocol:?} {shown:?}: expected {why:?}, got {err:?}"
                ),
                Ok(()) => panic!("{protocol:?} {shown:?}: accepted"),
            }
            assert_eq!(batch.len(), 0, "{protocol:?} {shown:?}: kept");
            assert_eq!(
                sender.stats().refused,
                refused as u64 + 1,
                "{protocol:?} {shown:?}: counted once in refused"
            );
        }
        assert_eq!(counts(&batch.send()), (0, 0, 0), "{protocol:?}");
        assert!(dry.take_frames().is_empty(), "{protocol:?}: bytes written");
    }
}

#[test]
fn lines_around_refused_lines_go_out_unchanged_and_only_they_do() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    let good: Vec<Vec<u8>> = (0..=hostile_lines().len())
        .map(|i| format!("good.m{i} {i}.0 {TS}").into_bytes())
        .collect();
    batch.push(&good[0]).unwrap();
    for (i, (line, _)) in hostile_lines().iter().enumerate() {
        assert!(batch.push(line).is_err(), "{:?} accepted", text(line));
        batch.push(&good[i + 1]).unwrap();
    }
    let outcome = batch.send();
    assert_eq!(counts(&outcome), (good.len(), 0, 0));
    assert!(outcome.is_complete());
    let good: Vec<&[u8]> = good.iter().map(Vec::as_slice).collect();
    assert_eq!(text(&dry.take()), text(&stream_of(&good)));
}

#[test]
fn a_line_with_a_second_newline_never_writes_a_broken_or_empty_line() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    let mut accepted = 0;
    for line in [&b"a.b 1 1700000000\n\n"[..], b"a.c 2\n\n", b"a.d\t3\n\n"] {
        if batch.push(line).is_ok() {
            accepted += 1;
        }
    }
    let outcome = batch.send();
    assert_eq!(outcome.accepted, accepted);
    let written = dry.take();
    let lines = lines_of(&written);
    for line in &lines {
        let parsed = graphyte::parse_line(line.as_bytes())
            .unwrap_or_else(|err| panic!("{line:?} written in {:?}: {err}", text(&written)));
        assert!(
            parsed.timestamp().is_some(),
            "{line:?} written without a timestamp in {:?}",
            text(&written)
        );
    }
    assert_eq!(
        lines.len(),
        accepted,
        "one line written per line accepted: {:?}",
        text(&written)
    );
}

// Prefix and default tags.

#[test]
fn a_prefix_rewrites_the_path_and_keeps_the_rest_of_the_line() {
    let dry = Sender::builder("unused").prefix("app").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    push_all(
        &mut batch,
        &[
            b"disk.free 12.50 1700000000",
            b"a.tabs\t1e3\t1700000000",
            b"  a.spaces  42.0",
            b"a.tagged;z=1;k=2 -0 1700000000",
        ],
    );
    batch.send();
    assert_eq!(
        text(&dry.take()),
        "app.disk.free 12.50 1700000000\n\
         app.a.tabs\t1e3\t1700000000\n\
         app.a.spaces  42.0 1700000000\n\
         app.a.tagged;k=2;z=1 -0 1700000000\n"
    );
}

#[test]
fn default_tags_are_added_sorted_to_the_path_and_the_rest_of_the_line_is_kept() {
    let dry = Sender::builder("unused")
        .prefix("app")
        .tag("host", "web1")
        .tag("env", "prod")
        .dry_run()
        .unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    push_all(
        &mut batch,
        &[
            b"disk.free 12.50 1700000000",
            b"a.tabs\t1e3",
            b"a.b  -0  1600000000",
        ],
    );
    batch.send();
    assert_eq!(
        text(&dry.take()),
        "app.disk.free;env=prod;host=web1 12.50 1700000000\n\
         app.a.tabs;env=prod;host=web1\t1e3 1700000000\n\
         app.a.b;env=prod;host=web1  -0  1600000000\n"
    );
}

#[test]
fn a_tagged_line_merges_its_tags_over_the_default_tags_and_wins_on_a_clash() {
    let dry = Sender::builder("unused")
        .prefix("app")
        .tag("host", "web1")
        .tag("env", "prod")
        .dry_run()
        .unwrap();
    let mut batch = dry.sender().line_batch();
    batch
        .push(b"disk.used;mount=var;host=db2 87.5 1700000000")
        .unwrap();
    batch.send();
    assert_eq!(
        text(&dry.take()),
        "app.disk.used;env=prod;host=db2;mount=var 87.5 1700000000\n"
    );
}

#[test]
fn a_name_that_fits_alone_is_refused_when_the_prefix_makes_it_too_long() {
    // Untagged, exactly as long as Carbon can store, in segments of at most 249 bytes.
    let name = format!("{}.{}", vec!["x".repeat(249); 15].join("."), "y".repeat(65));
    let name = format!("{name}.{}", "z".repeat(MAX_PATH_LEN - name.len() - 1));
    assert_eq!(name.len(), MAX_PATH_LEN);
    let line = format!("{name} 1 {TS}");

    let alone = Sender::builder("unused").dry_run().unwrap();
    let mut batch = alone.sender().line_batch();
    batch.push(line.as_bytes()).unwrap();
    batch.send();
    assert_eq!(alone.take(), format!("{line}\n").into_bytes());

    let prefixed = Sender::builder("unused").prefix("app").dry_run().unwrap();
    let mut batch = prefixed.sender().line_batch();
    let err = batch.push(line.as_bytes()).unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    assert!(batch.is_empty());
    assert_eq!(prefixed.sender().stats().refused, 1);
    batch.send();
    assert!(prefixed.take_frames().is_empty());
}

#[test]
fn a_line_that_joins_the_prefix_into_an_openmetrics_name_is_refused() {
    // Fine alone; Carbon would read `app{host.x="y"}` as the tagged series `app;host.x=y`.
    let line = b"x=\"y\"} 1 1700000000";
    assert!(graphyte::parse_line(line).is_ok());
    let dry = Sender::builder("unused")
        .prefix("app{host")
        .dry_run()
        .unwrap();
    let mut batch = dry.sender().line_batch();
    let err = batch.push(line).unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    assert!(batch.is_empty());
    assert_eq!(dry.sender().stats().refused, 1);
}

// UDP: datagrams of whole lines.

#[test]
fn over_udp_a_line_longer_than_a_datagram_is_refused_and_one_that_fits_is_kept() {
    const MAX: usize = 100;
    let dry = Sender::builder("unused")
        .transport(Transport::Udp)
        .max_datagram(MAX)
        .dry_run()
        .unwrap();
    let mut batch = dry.sender().line_batch();
    // "x…x 1 1700000000": with its newline, `len` bytes.
    let line = |len: usize| format!("{} 1 {TS}", "x".repeat(len - " 1 1700000000\n".len()));
    let fits = line(MAX);
    batch.push(fits.as_bytes()).unwrap();
    let err = batch.push(line(MAX + 1).as_bytes()).unwrap_err();
    assert!(
        matches!(err, Error::LineTooLong { max: MAX, .. }),
        "{err:?}"
    );
    assert_eq!(dry.sender().stats().refused, 1);
    batch.send();
    assert_eq!(dry.take_frames(), [format!("{fits}\n").into_bytes()]);
}

#[test]
fn whether_a_line_fits_a_datagram_does_not_depend_on_its_separators() {
    let dry = Sender::builder("unused")
        .transport(Transport::Udp)
        .max_datagram(100)
        .dry_run()
        .unwrap();
    let mut batch = dry.sender().line_batch();
    // 84 bytes with its newline either way: within a datagram of 100.
    let name = "n".repeat(70);
    let spaces = batch.push(format!("{name} 1 {TS}").as_bytes());
    let tabs = batch.push(format!("{name}\t1\t{TS}").as_bytes());
    assert_eq!(
        spaces.is_ok(),
        tabs.is_ok(),
        "spaces: {spaces:?}, tabs: {tabs:?}"
    );
}

#[test]
fn udp_frames_hold_whole_lines_each_within_max_datagram_all_in_order() {
    const MAX: usize = 100;
    let dry = Sender::builder("unused")
        .transport(Transport::Udp)
        .max_datagram(MAX)
        .dry_run()
        .unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    // Lines of 16 to 60 bytes, some stamped by the batch, some with tabs.
    let lines: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            let name = format!("udp.x{}.m{i}", "x".repeat(i % 40));
            match i % 3 {
                0 => format!("{name} {i} {TS}"),
                1 => format!("{name}\t{i}.0"),
                _ => format!("{name} 1e{}", i % 5),
            }
            .into_bytes()
        })
        .collect();
    let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    push_all(&mut batch, &lines);
    assert_eq!(batch.send().accepted, lines.len());
    let frames = dry.take_frames();
    assert!(frames.len() > 1, "{} frames", frames.len());
    for (i, frame) in frames.iter().enumerate() {
        assert!(frame.len() <= MAX, "frame {i} is {} bytes", frame.len());
        assert_eq!(frame.last(), Some(&b'\n'), "frame {i} ends mid-line");
        // Packed: the next frame's first line would not have fitted in this one.
        if let Some(next) = frames.get(i + 1) {
            let first = next.iter().position(|&b| b == b'\n').unwrap() + 1;
            assert!(
                frame.len() + first > MAX,
                "frame {i} could take a line more"
            );
        }
    }
    let mut expected = Vec::new();
    for line in &lines {
        expected.extend_from_slice(line);
        if !line.ends_with(format!(" {TS}").as_bytes()) {
            expected.extend_from_slice(format!(" {TS}").as_bytes());
        }
        expected.push(b'\n');
    }
    assert_eq!(text(&frames.concat()), text(&expected));
}

#[test]
fn lines_sent_over_udp_arrive_in_datagrams_of_whole_lines_within_max_datagram() {
    const MAX: usize = 120;
    let sink = UdpSink::start();
    let sender = Sender::builder("127.0.0.1")
        .port(sink.port)
        .transport(Transport::Udp)
        .max_datagram(MAX)
        .interval(HOUR)
        .build()
        .unwrap();
    let lines = numbered_lines(50);
    let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let mut batch = sender.line_batch();
    push_all(&mut batch, &lines);
    assert_eq!(batch.send().accepted, lines.len());
    sender.flush().unwrap();
    let expected = stream_of(&lines);
    let arrived = || sink.datagrams.lock().unwrap().concat().len() >= expected.len();
    assert!(wait_until(WAIT, arrived), "{:?}", sink.lines().len());
    let datagrams = sink.datagrams.lock().unwrap().clone();
    assert!(datagrams.len() > 1, "{} datagrams", datagrams.len());
    for (i, datagram) in datagrams.iter().enumerate() {
        assert!(
            datagram.len() <= MAX,
            "datagram {i}: {} bytes",
            datagram.len()
        );
        assert_eq!(datagram.last(), Some(&b'\n'), "datagram {i} ends mid-line");
    }
    assert_eq!(text(&datagrams.concat()), text(&expected));
}

// Pickle: each line becomes a point.

#[test]
fn over_pickle_each_line_becomes_a_point_with_the_prefix_and_tags() {
    let dry = Sender::builder("unused")
        .protocol(Protocol::Pickle)
        .prefix("app")
        .tag("env", "prod")
        .dry_run()
        .unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS + 9).unwrap();
    push_all(
        &mut batch,
        &[
            b"a.int 42 1700000000\n",
            b"a.float 42.0 1700000001",
            b"a.exp\t1e3\t1700000002",
            b"a.zero -0 1700000003",
            b"a.tagged;host=db2;env=dev 5 1700000004",
            b"a.stamped 7",
        ],
    );
    assert_eq!(batch.len(), 6);
    assert_eq!(counts(&batch.send()), (6, 0, 0));
    let frames = dry.take_frames();
    assert_eq!(frames.len(), 1, "one batch, one frame");
    let points = unpickle_frame(&frames[0]);
    let int = |v: i64| PyNum::Int(v.into());
    let point = |path: &str, ts: u32, value: PyNum| (path.to_owned(), int(ts.into()), value);
    assert_eq!(
        points,
        [
            point("app.a.int;env=prod", TS, int(42)),
            point("app.a.float;env=prod", TS + 1, PyNum::Float(42.0)),
            point("app.a.exp;env=prod", TS + 2, PyNum::Float(1000.0)),
            point("app.a.zero;env=prod", TS + 3, PyNum::Float(-0.0)),
            point("app.a.tagged;env=dev;host=db2", TS + 4, int(5)),
            point("app.a.stamped;env=prod", TS + 9, int(7)),
        ]
    );
    match points[3].2 {
        PyNum::Float(zero) => assert!(zero.is_sign_negative(), "-0 lost its sign"),
        other => panic!("-0 became {other:?}"),
    }
}

// Synchronous mode.

#[test]
fn push_writes_nothing_and_a_synchronous_send_writes_every_line_at_once() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let mut batch = sender.line_batch();
    push_all(&mut batch, SHAPES);
    assert!(capture.is_empty(), "written before send");
    let outcome = batch.send();
    assert_eq!(counts(&outcome), (SHAPES.len(), 0, 0));
    assert_eq!(text(&capture.take()), text(&stream_of(SHAPES)));
    let stats = sender.stats();
    assert_eq!(
        (stats.queued, stats.sent),
        (SHAPES.len() as u64, SHAPES.len() as u64)
    );
}

#[test]
fn a_synchronous_batch_within_one_frame_is_one_write() {
    let dry = Sender::builder("unused").batch_size(2).dry_run().unwrap();
    let lines = numbered_lines(10);
    let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let mut batch = dry.sender().line_batch();
    push_all(&mut batch, &lines);
    batch.send();
    assert_eq!(dry.take_frames(), [stream_of(&lines)]);
}

// The batch itself.

#[test]
fn len_counts_the_lines_kept_and_send_empties_the_batch_for_the_next_lines() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    assert!(batch.is_empty());
    push_all(
        &mut batch,
        &[b"a.one 1 1700000000", b"a.two\t2\t1700000000"],
    );
    assert_eq!((batch.len(), batch.is_empty()), (2, false));
    assert_eq!(batch.send().accepted, 2);
    assert_eq!((batch.len(), batch.is_empty()), (0, true));
    batch.push(b"a.three 3 1700000000").unwrap();
    assert_eq!(batch.send().accepted, 1);
    assert_eq!(
        dry.take_frames(),
        [
            b"a.one 1 1700000000\na.two\t2\t1700000000\n".to_vec(),
            b"a.three 3 1700000000\n".to_vec()
        ]
    );
}

#[test]
fn an_empty_batch_sends_nothing_and_is_complete() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let outcome = dry.sender().line_batch().send();
    assert_eq!(counts(&outcome), (0, 0, 0));
    assert!(outcome.is_complete());
    assert!(dry.take_frames().is_empty());
    assert_eq!(dry.sender().stats().queued, 0);
}

// Background mode.

#[test]
fn a_background_batch_of_ten_thousand_lines_takes_one_queue_slot() {
    let (sender, release, _) = held_sender();
    let lines = numbered_lines(10_000);
    let mut batch = sender.line_batch();
    for line in &lines {
        batch.push(line).unwrap();
    }
    // The queue has one slot, and the worker cannot take from it: the whole batch is in it.
    let outcome = batch.send();
    assert_eq!(counts(&outcome), (10_000, 0, 0));
    assert!(outcome.is_complete(), "{:?}", outcome.first_error);
    assert_eq!(sender.stats().queued, 1 + 10_000);
    // And that slot is the queue's only one.
    let err = sender
        .try_send(graphyte::Metric::new("after.the.batch", 1))
        .unwrap_err();
    assert!(matches!(err, Error::QueueFull), "{err:?}");
    drop(release);
}

#[test]
fn after_a_flush_every_line_of_a_batch_cut_into_many_frames_is_counted_sent() {
    let capture = Capture::default();
    let sender = background(capture.clone()).max_frame(4096).build().unwrap();
    let lines = numbered_lines(10_000);
    let lines: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let mut batch = sender.line_batch();
    push_all(&mut batch, &lines);
    assert_eq!(batch.send().accepted, 10_000);
    sender.flush().unwrap();
    let expected = stream_of(&lines);
    let stats = sender.stats();
    assert_eq!(
        (stats.queued, stats.sent, stats.failed, stats.dropped),
        (10_000, 10_000, 0, 0)
    );
    assert_eq!(stats.sent_bytes, expected.len() as u64);
    assert!(capture.take() == expected, "the stream differs");
}

#[test]
fn a_batch_that_finds_the_queue_full_is_dropped_whole_and_counted() {
    let (sender, release, written) = held_sender();
    // Fills the queue's one slot.
    sender
        .try_send(graphyte::Metric::new("fills.the.queue", 1).timestamp(TS))
        .unwrap();
    let lines = numbered_lines(500);
    let mut batch = sender.line_batch();
    for line in &lines {
        batch.push(line).unwrap();
    }
    let outcome = batch.send();
    assert_eq!(counts(&outcome), (0, 0, 500));
    assert!(
        matches!(outcome.first_error, Some(Error::QueueFull)),
        "{:?}",
        outcome.first_error
    );
    assert_eq!(sender.stats().dropped, 500);
    drop(release);
    sender.flush().unwrap();
    assert_eq!(
        lines_of(&written.take())
            .iter()
            .filter(|l| l.starts_with("forward."))
            .count(),
        0,
        "a dropped line was written"
    );
    let stats = sender.stats();
    assert_eq!((stats.queued, stats.sent, stats.dropped), (2, 2, 500));
}

#[test]
fn a_batch_sent_after_shutdown_is_lost_and_counted_as_dropped() {
    let capture = Capture::default();
    let sender = background(capture.clone()).build().unwrap();
    sender.shutdown(Duration::from_secs(5)).unwrap();
    let mut batch = sender.line_batch();
    push_all(&mut batch, &[b"late.a 1 1700000000", b"late.b\t2"]);
    let outcome = batch.send();
    assert_eq!(counts(&outcome), (0, 0, 2));
    assert!(
        matches!(outcome.first_error, Some(Error::Closed)),
        "{:?}",
        outcome.first_error
    );
    let stats = sender.stats();
    assert_eq!((stats.dropped, stats.queued, stats.sent), (2, 0, 0));
    assert!(capture.is_empty());
}

#[test]
fn queued_equals_sent_plus_failed_after_a_flush_of_single_sends_and_line_batches() {
    let capture = Capture::default();
    let sender = background(capture.clone()).max_frame(1024).build().unwrap();
    let mut batch = sender.line_batch();
    let mut accepted = 0;
    for round in 0..20 {
        sender.send_at("single.send", round, TS);
        accepted += 1;
        for i in 0..(round * 37) {
            batch
                .push(format!("batched.r{round} {i} {TS}").as_bytes())
                .unwrap();
        }
        assert!(batch.push(b"refused nan").is_err());
        accepted += batch.send().accepted;
    }
    sender.flush().unwrap();
    let stats = sender.stats();
    assert_eq!(stats.queued, accepted as u64);
    assert_eq!(stats.queued, stats.sent + stats.failed, "{stats:?}");
    assert_eq!(stats.refused, 20);
    assert_eq!(capture.lines().len(), accepted);
}

// push_lines: a chunk of a stream at once.

/// A chunk mixing plain lines, lines the fast path leaves to the parser, bad and empty lines,
/// and a last line without its newline.
const CHUNK: &[u8] = b"a.b 1 1700000000\n\
    a.c 2\n\
    bad value 1700000000\n\
    \n\
    a.d;t=1 3 1700000000\n\
    a.e\t4 1700000000\n\
    a..f 5 1700000000\n\
    a.g 6 1700000000\n\
    a.h 7 1700000000";

/// What `push` line by line keeps and refuses for CHUNK, through a sender from `builder`.
fn line_by_line(builder: graphyte::Builder) -> (Vec<u8>, Vec<usize>) {
    let dry = builder.dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    let mut refused = Vec::new();
    for (index, line) in CHUNK.split(|&b| b == b'\n').enumerate() {
        if !line.is_empty() && batch.push(line).is_err() {
            refused.push(index);
        }
    }
    batch.send();
    (dry.take(), refused)
}

fn chunk_at_once(builder: graphyte::Builder) -> (Vec<u8>, Vec<usize>, usize) {
    let dry = builder.dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    let mut refused = Vec::new();
    let seen = batch.push_lines(CHUNK, |index, _, _| {
        refused.push(index);
        true
    });
    batch.send();
    (dry.take(), refused, seen)
}

#[test]
fn push_lines_keeps_and_refuses_exactly_what_push_does_line_by_line() {
    for builder in [
        || Sender::builder("unused"),
        || Sender::builder("unused").prefix("app"),
        || Sender::builder("unused").tag("env", "prod"),
        || Sender::builder("unused").protocol(Protocol::Pickle),
    ] {
        let (expected, expected_refused) = line_by_line(builder());
        let (kept, refused, seen) = chunk_at_once(builder());
        assert_eq!(text(&kept), text(&expected));
        assert_eq!(refused, expected_refused);
        assert_eq!(refused, [2, 6], "the bad value and the empty segment");
        assert_eq!(seen, 9, "every line looked at, the empty one included");
    }
}

#[test]
fn push_lines_passes_lines_through_unchanged_and_stamps_those_without_a_timestamp() {
    let (kept, _, _) = chunk_at_once(Sender::builder("unused"));
    assert_eq!(
        text(&kept),
        "a.b 1 1700000000\na.c 2 1700000000\na.d;t=1 3 1700000000\na.e\t4 1700000000\n\
         a.g 6 1700000000\na.h 7 1700000000\n"
    );
}

#[test]
fn push_lines_stops_after_the_refused_line_when_told_to() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    let mut refusals = Vec::new();
    let seen = batch.push_lines(CHUNK, |index, line, err| {
        refusals.push((index, line.to_vec(), err.is_invalid_input()));
        false
    });
    assert_eq!(refusals, [(2, b"bad value 1700000000".to_vec(), true)]);
    assert_eq!((seen, batch.len()), (3, 2));
    batch.send();
    assert_eq!(text(&dry.take()), "a.b 1 1700000000\na.c 2 1700000000\n");
}

#[test]
fn a_batch_waiting_for_room_is_not_counted_as_queued_until_it_is() {
    let (socket, release, entered, _) = Gate::new();
    let sender = background(socket)
        .queue_capacity(1)
        .batch_size(1)
        .full_queue(graphyte::FullQueue::Block)
        .build()
        .unwrap();
    sender.send("held.by.the.worker", 0);
    assert!(wait_until(WAIT, || entered.load(Ordering::SeqCst) >= 1));
    sender.send("fills.the.queue", 1);
    let (sending, about_to_send) = mpsc::channel();
    let waiting = {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut batch = sender.line_batch();
            for line in numbered_lines(500) {
                batch.push(&line).unwrap();
            }
            sending.send(()).unwrap();
            batch.send()
        })
    };
    about_to_send.recv().unwrap();
    // However long it waits, the batch is not on the queue: 2 points are (one held by the
    // worker, one in the queue's slot).
    for _ in 0..200 {
        assert_eq!(sender.stats().queued, 2);
        std::thread::yield_now();
    }
    drop(release);
    let outcome = waiting.join().unwrap();
    assert_eq!(counts(&outcome), (500, 0, 0));
    sender.flush().unwrap();
    let stats = sender.stats();
    assert_eq!((stats.queued, stats.sent), (502, 502));
}

#[test]
fn a_line_without_timestamp_ending_in_spaces_gets_its_timestamp_after_one_space() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    let mut batch = dry.sender().line_batch();
    batch.default_timestamp(TS).unwrap();
    batch.push(b"a.b 1  \t").unwrap();
    batch.push(b"a.c\t2 ").unwrap();
    batch.send();
    assert_eq!(text(&dry.take()), "a.b 1 1700000000\na.c\t2 1700000000\n");
}
