//! Input that would break Carbon's line protocol is refused with a typed error, and nothing of
//! it reaches the stream.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use graphyte::{Error, Metric, Sender};
use support::Capture;
use support::hostile::{HOSTILE_LINES, Refused, long_lines};

const T: u32 = 1_700_000_000;

fn name(n: &str) -> Metric<'static> {
    Metric::new(n.to_owned(), 1).timestamp(T)
}

fn tag(key: &'static str, value: &'static str) -> Metric<'static> {
    let tags: &'static [(&'static str, &'static str)] = Box::leak(Box::new([(key, value)]));
    Metric::new("a.b", 1).timestamp(T).tags(tags)
}

fn value(v: impl Into<graphyte::Value>) -> Metric<'static> {
    Metric::new("a.b", v).timestamp(T)
}

fn at(ts: impl Into<graphyte::Timestamp>) -> Metric<'static> {
    Metric::new("a.b", 1).timestamp(ts)
}

fn hostile_cases() -> Vec<(&'static str, Metric<'static>, Refused)> {
    let long_segment = format!("{}.a", "x".repeat(256));
    let long_last_segment = format!("a.{}", "x".repeat(252));
    let long_path = vec!["p".repeat(200); 21].join(".");
    // Tagged, so the path limits (which do not apply to tagged series) leave the line's.
    let long_line: &'static str = Box::leak(vec!["y".repeat(200); 90].join(".").into_boxed_str());
    vec![
        ("empty name", name(""), Refused::Name),
        ("space in name", name("a b"), Refused::Name),
        ("tab in name", name("a\tb"), Refused::Name),
        ("newline in name", name("a\nb.c 1 2"), Refused::Name),
        ("carriage return in name", name("a\rb"), Refused::Name),
        ("CRLF at end of name", name("a.b\r\n"), Refused::Name),
        ("NUL in name", name("a\0b"), Refused::Name),
        ("DEL in name", name("a\u{7f}b"), Refused::Name),
        (
            "escape sequence in name",
            name("a\u{1b}[31m"),
            Refused::Name,
        ),
        ("no-break space in name", name("a\u{a0}b"), Refused::Name),
        ("line separator in name", name("a\u{2028}b"), Refused::Name),
        (
            "ideographic space in name",
            name("a\u{3000}b"),
            Refused::Name,
        ),
        ("leading dot", name(".a.b"), Refused::Name),
        ("trailing dot", name("a.b."), Refused::Name),
        ("double dot", name("a..b"), Refused::Name),
        ("lone dot", name("."), Refused::Name),
        (
            "tags smuggled in the name",
            name("a.b;host=x"),
            Refused::Name,
        ),
        ("segment over 255 bytes", name(&long_segment), Refused::Name),
        (
            "last segment over 251 bytes (Carbon adds .wsp)",
            name(&long_last_segment),
            Refused::Name,
        ),
        (
            "untagged name over the storable path",
            name(&long_path),
            Refused::Name,
        ),
        (
            "leading tilde (Carbon strips it)",
            name("~a.b"),
            Refused::Name,
        ),
        ("leading tildes", name("~~a.b"), Refused::Name),
        (
            "slash in an untagged name (Carbon files a/b as a.b)",
            name("a/b.c"),
            Refused::Name,
        ),
        (
            "OpenMetrics-looking name",
            name("a{b=\"c\"}"),
            Refused::Name,
        ),
        (
            "line over 16384 bytes",
            Metric::new(long_line, 1).timestamp(T).tags(&[("k", "v")]),
            Refused::TooLong,
        ),
        ("empty tag name", tag("", "v"), Refused::Tag),
        ("empty tag value", tag("k", ""), Refused::Tag),
        ("semicolon in tag name", tag("k;x", "v"), Refused::Tag),
        (
            "tag injection through the value",
            tag("k", "v;admin=1"),
            Refused::Tag,
        ),
        ("equals sign in tag name", tag("k=x", "v"), Refused::Tag),
        ("exclamation mark in tag name", tag("k!", "v"), Refused::Tag),
        ("caret in tag name", tag("k^", "v"), Refused::Tag),
        (
            "tag value starting with tilde",
            tag("k", "~v"),
            Refused::Tag,
        ),
        ("reserved tag name", tag("name", "x"), Refused::Tag),
        ("space in tag value", tag("k", "a b"), Refused::Tag),
        ("newline in tag name", tag("k\n", "v"), Refused::Tag),
        ("tab in tag value", tag("k", "a\tb"), Refused::Tag),
        (
            "tagged name starting with tilde",
            Metric::new("~a", 1).timestamp(T).tags(&[("k", "v")]),
            Refused::Name,
        ),
        ("NaN", value(f64::NAN), Refused::Value),
        ("infinity", value(f64::INFINITY), Refused::Value),
        (
            "negative infinity",
            value(f64::NEG_INFINITY),
            Refused::Value,
        ),
        ("f32 NaN", value(f32::NAN), Refused::Value),
        ("zero timestamp", at(0), Refused::Timestamp),
        ("negative timestamp", at(-5), Refused::Timestamp),
        (
            "millisecond timestamp",
            at(1_700_000_000_000i64),
            Refused::Timestamp,
        ),
        (
            "timestamp past 2106",
            at(4_294_967_296i64),
            Refused::Timestamp,
        ),
        ("huge timestamp", at(u64::MAX), Refused::Timestamp),
        ("NaN timestamp", at(f64::NAN), Refused::Timestamp),
        ("infinite timestamp", at(f64::INFINITY), Refused::Timestamp),
        (
            "time before the epoch",
            at(UNIX_EPOCH - Duration::from_secs(1)),
            Refused::Timestamp,
        ),
        (
            "float millisecond timestamp",
            at(1.7e12),
            Refused::Timestamp,
        ),
        ("most negative timestamp", at(i64::MIN), Refused::Timestamp),
        ("form feed in name", name("a\x0cb"), Refused::Name),
        ("vertical tab in name", name("a\x0bb"), Refused::Name),
        ("C1 control in name", name("a\u{9b}b"), Refused::Name),
        ("tab at the end of the name", name("a.b\t"), Refused::Name),
        ("bell in tag value", tag("k", "a\x07"), Refused::Tag),
        (
            "tag value ending like OpenMetrics",
            tag("k", "x\"}"),
            Refused::Tag,
        ),
    ]
}

/// An error's text, cut to a readable length (some names here are kilobytes long).
fn short(err: &Error) -> String {
    err.to_string().chars().take(120).collect()
}

#[test]
fn hostile_inputs_are_refused_with_a_typed_error_and_nothing_reaches_the_stream() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let cases = hostile_cases();
    assert!(cases.len() >= 50);
    for (what, metric, expected) in cases.clone() {
        match sender.try_send(metric) {
            Err(err) => assert!(
                expected.matches(&err),
                "{what}: expected {expected:?}, got {}",
                short(&err)
            ),
            Ok(()) => panic!("{what}: accepted"),
        }
    }
    assert!(
        capture.0.lock().unwrap().is_empty(),
        "bytes reached the stream"
    );
    let stats = sender.stats();
    assert_eq!(
        (stats.refused, stats.queued, stats.sent),
        (cases.len() as u64, 0, 0)
    );
}

#[test]
fn hostile_inputs_are_refused_in_background_mode_too() {
    let capture = Capture::default();
    let sender = Sender::builder("unused")
        .socket(capture.clone())
        .build()
        .unwrap();
    for (what, metric, expected) in hostile_cases() {
        let err = sender.try_send(metric).expect_err(what);
        assert!(expected.matches(&err), "{what}: got {}", short(&err));
    }
    sender.send("ok.metric", 1);
    sender.shutdown(Duration::from_secs(5)).unwrap();
    let bytes = capture.0.lock().unwrap().clone();
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(text.starts_with("ok.metric 1 "), "{text:?}");
}

#[test]
fn send_counts_refused_input_instead_of_failing() {
    let sender = Sender::builder("unused")
        .synchronous()
        .socket(Capture::default())
        .build()
        .unwrap();
    sender.send("bad name", 1);
    sender.send("good.name", f64::NAN);
    assert_eq!(sender.stats().refused, 2);
}

#[test]
fn udp_refuses_a_line_longer_than_one_datagram() {
    let sender = Sender::builder("127.0.0.1")
        .transport(graphyte::Transport::Udp)
        .max_datagram(100)
        .build()
        .unwrap();
    let err = sender.try_send(name(&"z".repeat(80))).unwrap_err();
    assert!(
        matches!(err, Error::LineTooLong { max: 100, .. }),
        "{err:?}"
    );
}

#[test]
fn hostile_prefix_is_refused_when_building() {
    for prefix in ["a b", "a..b", "a;k=v", "", "~x", "a\n", "a/b"] {
        let err = Sender::builder("h").prefix(prefix).build().unwrap_err();
        assert!(
            matches!(err, Error::InvalidName { .. }),
            "{prefix:?}: {err:?}"
        );
    }
}

#[test]
fn a_prefix_and_a_name_that_join_into_an_openmetrics_name_are_refused() {
    // Carbon would read `app{host.x="y"}` as the tagged series `app;host.x=y`.
    let capture = Capture::default();
    let sender = Sender::builder("unused")
        .prefix("app{host")
        .synchronous()
        .socket(capture.clone())
        .build()
        .unwrap();
    let err = sender.try_send(name("x=\"y\"}")).unwrap_err();
    assert!(matches!(err, Error::InvalidName { .. }), "{err:?}");
    sender.try_send(name("x.y")).unwrap();
    assert_eq!(capture.lines(), [format!("app{{host.x.y 1 {T}")]);
}

#[test]
fn the_leading_tilde_rule_applies_to_the_joined_path() {
    let capture = Capture::default();
    let sender = Sender::builder("unused")
        .prefix("app")
        .synchronous()
        .socket(capture.clone())
        .build()
        .unwrap();
    // `app.~x` keeps its tilde in Carbon: only a leading one is stripped.
    sender.try_send(name("~x")).unwrap();
    assert_eq!(capture.lines(), [format!("app.~x 1 {T}")]);
}

#[test]
fn hostile_default_tag_is_refused_when_building() {
    for (key, value) in [
        ("k", "v;x=y"),
        ("", "v"),
        ("k", "~v"),
        ("k=", "v"),
        ("name", "x"),
    ] {
        let err = Sender::builder("h").tag(key, value).build().unwrap_err();
        assert!(
            matches!(err, Error::InvalidTag { .. }),
            "{key}={value}: {err:?}"
        );
    }
}

#[test]
fn accepted_edge_cases_make_exactly_one_well_formed_line_each() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let accepted: Vec<Metric<'_>> = vec![
        name(&format!("{}.a", "s".repeat(255))),
        name(&format!("a.{}", "s".repeat(251))),
        name(&vec!["p".repeat(200); 20].join(".")),
        name("a.~b"),
        Metric::new(format!("a.{}", "s".repeat(600)), 1)
            .timestamp(T)
            .tags(&[("k", "v")]),
        name("héllo.wörld"),
        name("a=b.c~d"),
        Metric::new("t", 1)
            .timestamp(T)
            .tags(&[("k", "a=b"), ("k2", "ü")]),
        value(i64::MIN),
        value(u64::MAX),
        value(f64::MIN_POSITIVE),
        value(-0.0),
        at(1),
        at(u32::MAX),
        at(SystemTime::UNIX_EPOCH + Duration::from_secs(T as u64)),
    ];
    let count = accepted.len();
    for metric in accepted {
        sender.try_send(metric).unwrap();
    }
    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), count);
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 3, "{line:?}");
        assert!(
            fields[1].parse::<f64>().is_ok_and(f64::is_finite),
            "{line:?}"
        );
        assert!(fields[2].parse::<u32>().is_ok_and(|t| t > 0), "{line:?}");
    }
}

#[test]
fn the_line_parser_refuses_every_hostile_line() {
    let long = long_lines();
    let lines: Vec<&[u8]> = HOSTILE_LINES
        .iter()
        .copied()
        .chain(long.iter().map(Vec::as_slice))
        .collect();
    assert!(lines.len() >= 50);
    for line in lines {
        match graphyte::parse_line(line) {
            Err(err) => assert!(
                err.is_invalid_input(),
                "{:?}: {err:?}",
                String::from_utf8_lossy(line)
            ),
            Ok(parsed) => panic!("{:?} accepted as {parsed:?}", String::from_utf8_lossy(line)),
        }
    }
}

#[test]
fn the_line_parser_reads_what_carbon_reads() {
    let line = graphyte::parse_line(b"a.b;zone=eu;host=x  1.5e3\t1700000000.9\n").unwrap();
    assert_eq!(line.name(), "a.b");
    assert_eq!(line.tags(), [("zone", "eu"), ("host", "x")]);
    assert_eq!(line.value(), graphyte::Value::from(1500.0));
    assert_eq!(line.timestamp(), Some(1_700_000_000));
    assert_eq!(graphyte::parse_line(b"a.b -7").unwrap().timestamp(), None);
}

#[test]
fn a_parsed_line_forwarded_through_a_sender_is_written_as_carbon_normalizes_it() {
    let capture = Capture::default();
    let sender = capture.synchronous_sender();
    let line = graphyte::parse_line(b"a.b;zone=eu;host=x 42 1700000000").unwrap();
    sender.try_send(line.to_metric()).unwrap();
    assert_eq!(
        &*capture.0.lock().unwrap(),
        b"a.b;host=x;zone=eu 42 1700000000\n"
    );
}

#[test]
fn the_stream_never_carries_a_malformed_line() {
    let sink = support::TcpSink::start();
    let sender = Sender::builder("127.0.0.1")
        .port(sink.port)
        .build()
        .unwrap();
    let mut accepted = 0;
    for (_, metric, _) in hostile_cases() {
        assert!(sender.try_send(metric).is_err());
    }
    for line in HOSTILE_LINES {
        if let Ok(parsed) = graphyte::parse_line(line) {
            sender.send_metric(parsed.to_metric());
        }
    }
    for name in ["ok.a", "ok.b;k=v", "héllo.wörld"] {
        let line = format!("{name} 1.25 1700000000");
        sender
            .try_send(graphyte::parse_line(line.as_bytes()).unwrap().to_metric())
            .unwrap();
        accepted += 1;
    }
    sender.send_tagged("ok.tagged", -3, &[("k", "a=b")]);
    sender.send_at("ok.big", u64::MAX, 1_700_000_000);
    accepted += 2;
    sender.shutdown(Duration::from_secs(5)).unwrap();
    let received =
        sink.received_when(|bytes| bytes.iter().filter(|&&b| b == b'\n').count() >= accepted);
    let mut count = 0;
    for line in received.split_inclusive(|&b| b == b'\n') {
        assert!(
            line.ends_with(b"\n"),
            "a line cut short: {:?}",
            String::from_utf8_lossy(line)
        );
        graphyte::parse_line(line)
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(line)));
        count += 1;
    }
    assert_eq!(count, accepted);
}
