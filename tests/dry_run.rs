//! Dry run (`Builder::dry_run`): the exact bytes a sender would write, frame by frame, made by
//! the same checks and encoder as a real sender, with nothing sent over the network.

mod support;

use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::time::Duration;

use graphyte::{Error, Metric, Protocol, Sender, Transport};
use support::pickle::{PyNum, PyPoint, unpickle_frame};
use support::{TcpSink, lines_of};

const TS: u32 = 1_700_000_000;

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("frames are UTF-8")
}

/// Checks that `frame` is whole plaintext lines, each one the parser accepts; returns them.
fn whole_lines(frame: &[u8]) -> Vec<String> {
    assert_eq!(frame.last(), Some(&b'\n'), "frame {:?}", text(frame));
    let lines = lines_of(frame);
    for line in &lines {
        graphyte::parse_line(line.as_bytes())
            .unwrap_or_else(|err| panic!("{line:?} in a frame is not a whole line: {err}"));
    }
    lines
}

// Plaintext.

#[test]
fn plaintext_lines_carry_the_prefix_and_the_default_tags_sorted_by_name() {
    let dry = Sender::builder("unused")
        .prefix("app")
        .tag("host", "web1")
        .tag("env", "prod")
        .dry_run()
        .unwrap();
    let sender = dry.sender();
    sender.send_at("requests.ok", 42, TS);
    let own = [("host", "web2"), ("route", "login")];
    sender
        .try_send(Metric::new("latency", 0.125).timestamp(TS).tags(&own))
        .unwrap();
    sender.send_at("neg", -7, TS + 1);
    sender.send_at("big", u64::MAX, TS);
    sender.send_at("tiny", 0.1f32, TS);
    sender.send_at("huge", 1e20, TS);
    assert_eq!(
        text(&dry.take()),
        "app.requests.ok;env=prod;host=web1 42 1700000000\n\
         app.latency;env=prod;host=web2;route=login 0.125 1700000000\n\
         app.neg;env=prod;host=web1 -7 1700000001\n\
         app.big;env=prod;host=web1 18446744073709551615 1700000000\n\
         app.tiny;env=prod;host=web1 0.1 1700000000\n\
         app.huge;env=prod;host=web1 1e20 1700000000\n"
    );
}

#[test]
fn each_synchronous_send_is_one_frame_and_take_joins_and_empties_them() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    dry.sender().send_at("a.one", 1, TS);
    dry.sender().send_at("a.two", 2, TS);
    assert_eq!(
        dry.take_frames(),
        [
            b"a.one 1 1700000000\n".to_vec(),
            b"a.two 2 1700000000\n".to_vec()
        ]
    );
    assert!(dry.take_frames().is_empty(), "taken frames are gone");
    dry.sender().send_at("a.three", 3, TS);
    dry.sender().send_at("a.four", 4, TS);
    assert_eq!(dry.take(), b"a.three 3 1700000000\na.four 4 1700000000\n");
    assert!(dry.take().is_empty());
}

#[test]
fn a_batch_is_one_frame_per_chunk_of_the_batch_size() {
    let dry = Sender::builder("unused").batch_size(3).dry_run().unwrap();
    let outcome = dry
        .sender()
        .send_batch_at((0..7).map(|i| (format!("chunk.m{i}"), i)), TS);
    assert_eq!(outcome.accepted, 7);
    let frames = dry.take_frames();
    let sizes: Vec<usize> = frames.iter().map(|f| whole_lines(f).len()).collect();
    assert_eq!(sizes, [3, 3, 1]);
    let lines: Vec<String> = frames.iter().flat_map(|f| whole_lines(f)).collect();
    let expected: Vec<String> = (0..7).map(|i| format!("chunk.m{i} {i} {TS}")).collect();
    assert_eq!(lines, expected);
}

#[test]
fn udp_frames_fit_max_datagram_and_hold_whole_lines_packed_in_order() {
    const MAX: usize = 100;
    let dry = Sender::builder("unused")
        .transport(Transport::Udp)
        .max_datagram(MAX)
        .dry_run()
        .unwrap();
    // Lines of 21 to 45 bytes.
    let expected: Vec<String> = (0..40)
        .map(|i| format!("udp.{}.m{i} {} {TS}", "x".repeat(i % 20 + 1), i * 1111))
        .collect();
    let outcome = dry.sender().send_batch_at(
        (0..40).map(|i| (format!("udp.{}.m{i}", "x".repeat(i % 20 + 1)), i * 1111)),
        TS,
    );
    assert_eq!(outcome.accepted, 40, "{:?}", outcome.first_error);
    let frames = dry.take_frames();
    assert!(frames.len() > 1);
    let mut lines = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        assert!(frame.len() <= MAX, "frame {i} is {} bytes", frame.len());
        let frame_lines = whole_lines(frame);
        // Packed: the next frame's first line would not have fitted in this one.
        if let Some(next) = frames.get(i + 1) {
            let first = next.iter().position(|&b| b == b'\n').unwrap() + 1;
            assert!(
                frame.len() + first > MAX,
                "frame {i} could have taken a line more"
            );
        }
        lines.extend(frame_lines);
    }
    assert_eq!(lines, expected);
}

#[test]
fn udp_refuses_a_line_that_cannot_fit_one_datagram() {
    let dry = Sender::builder("unused")
        .transport(Transport::Udp)
        .max_datagram(100)
        .dry_run()
        .unwrap();
    let err = dry
        .sender()
        .try_send(Metric::new("x".repeat(100), 1).timestamp(TS))
        .unwrap_err();
    assert!(
        matches!(err, Error::LineTooLong { max: 100, .. }),
        "{err:?}"
    );
    assert!(dry.take_frames().is_empty());
    assert_eq!(dry.sender().stats().refused, 1);
}

#[test]
fn tcp_plaintext_frames_fit_max_frame_and_hold_whole_lines() {
    let dry = Sender::builder("unused").max_frame(256).dry_run().unwrap();
    let outcome = dry
        .sender()
        .send_batch_at((0..100).map(|i| (format!("tcp.frame.m{i}"), i)), TS);
    assert_eq!(outcome.accepted, 100);
    let frames = dry.take_frames();
    assert!(frames.len() > 1);
    let mut lines = Vec::new();
    for frame in &frames {
        assert!(frame.len() <= 256, "{} bytes", frame.len());
        lines.extend(whole_lines(frame));
    }
    let expected: Vec<String> = (0..100)
        .map(|i| format!("tcp.frame.m{i} {i} {TS}"))
        .collect();
    assert_eq!(lines, expected);
}

// Pickle.

#[test]
fn a_pickle_frame_has_a_header_giving_its_payload_length_and_reads_back_as_the_points() {
    let dry = Sender::builder("unused")
        .protocol(Protocol::Pickle)
        .prefix("app")
        .tag("env", "prod")
        .dry_run()
        .unwrap();
    let own = [("env", "dev")];
    let outcome = dry.sender().send_batch_at(
        [
            Metric::new("small", 7),
            Metric::new("short", 300),
            Metric::new("negative", -1),
            Metric::new("min", i64::MIN),
            Metric::new("max", u64::MAX),
            Metric::new("float", 0.125),
            Metric::new("single", 0.1f32),
            Metric::new("late", 1).timestamp(u32::MAX),
            Metric::new("tagged", 2).tags(&own),
        ],
        TS,
    );
    assert_eq!(outcome.accepted, 9);
    let frames = dry.take_frames();
    assert_eq!(frames.len(), 1, "one batch, one frame");
    let ts = PyNum::Int(i128::from(TS));
    let path = |name: &str| format!("app.{name};env=prod");
    assert_eq!(
        unpickle_frame(&frames[0]),
        [
            (path("small"), ts, PyNum::Int(7)),
            (path("short"), ts, PyNum::Int(300)),
            (path("negative"), ts, PyNum::Int(-1)),
            (path("min"), ts, PyNum::Int(i128::from(i64::MIN))),
            (path("max"), ts, PyNum::Int(i128::from(u64::MAX))),
            (path("float"), ts, PyNum::Float(0.125)),
            (path("single"), ts, PyNum::Float(0.1)),
            (
                path("late"),
                PyNum::Int(i128::from(u32::MAX)),
                PyNum::Int(1)
            ),
            ("app.tagged;env=dev".to_string(), ts, PyNum::Int(2)),
        ]
    );
}

#[test]
fn a_pickle_batch_over_max_frame_is_split_into_frames_each_with_its_own_header() {
    let dry = Sender::builder("unused")
        .protocol(Protocol::Pickle)
        .max_frame(256)
        .dry_run()
        .unwrap();
    let outcome = dry
        .sender()
        .send_batch_at((0..50).map(|i| (format!("pickle.split.m{i}"), i)), TS);
    assert_eq!(outcome.accepted, 50);
    let frames = dry.take_frames();
    assert!(frames.len() > 1);
    let mut points = Vec::new();
    for frame in &frames {
        assert!(
            frame.len() - 4 <= 256,
            "payload of {} bytes",
            frame.len() - 4
        );
        points.extend(unpickle_frame(frame));
    }
    let expected: Vec<PyPoint> = (0..50)
        .map(|i| {
            (
                format!("pickle.split.m{i}"),
                PyNum::Int(i128::from(TS)),
                PyNum::Int(i),
            )
        })
        .collect();
    assert_eq!(points, expected);
}

// What a dry run refuses, sends and counts.

#[test]
fn dry_run_writes_the_same_frames_as_a_real_synchronous_sender_with_the_same_settings() {
    let own = [("zone", "b")];
    let batch = || {
        vec![
            Metric::new("same.a", 1),
            Metric::new("bad name", 2),
            Metric::new("same.b", 2.5).tags(&own),
            Metric::new("x".repeat(300), 3),
            Metric::new("same.c", -3).timestamp(TS - 60),
            Metric::new("same.d", 4),
        ]
    };
    for protocol in [Protocol::Plaintext, Protocol::Pickle] {
        let configure = || {
            Sender::builder("unused")
                .protocol(protocol)
                .prefix("app")
                .tag("env", "prod")
                .batch_size(2)
                .max_frame(256)
        };
        let dry = configure().dry_run().unwrap();
        let capture = support::Capture::default();
        let real = configure()
            .synchronous()
            .socket(capture.clone())
            .build()
            .unwrap();
        let dry_outcome = dry.sender().send_batch_at(batch(), TS);
        let real_outcome = real.send_batch_at(batch(), TS);
        assert_eq!(
            (dry_outcome.accepted, dry_outcome.refused, dry_outcome.lost),
            (
                real_outcome.accepted,
                real_outcome.refused,
                real_outcome.lost
            ),
            "{protocol:?}"
        );
        assert_eq!((dry_outcome.accepted, dry_outcome.refused), (4, 2));
        assert_eq!(dry.take(), capture.take(), "{protocol:?}");
        assert_eq!(dry.sender().stats(), real.stats(), "{protocol:?}");
    }
}

/// Makes the same builder twice: once to build, once for a dry run.
type MakeBuilder = fn() -> graphyte::Builder;

#[test]
fn dry_run_refuses_what_build_refuses_with_the_same_error() {
    let cases: Vec<(&str, MakeBuilder)> = vec![
        ("prefix with a space", || {
            Sender::builder("unused").prefix("a b")
        }),
        ("prefix with a leading tilde", || {
            Sender::builder("unused").prefix("~app")
        }),
        ("prefix with an empty segment", || {
            Sender::builder("unused").prefix("a..b")
        }),
        ("default tag with a space", || {
            Sender::builder("unused").tag("ho st", "x")
        }),
        ("reserved default tag", || {
            Sender::builder("unused").tag("name", "x")
        }),
        ("pickle over UDP", || {
            Sender::builder("unused")
                .protocol(Protocol::Pickle)
                .transport(Transport::Udp)
        }),
        ("zero batch size", || {
            Sender::builder("unused").batch_size(0)
        }),
        ("zero datagram", || {
            Sender::builder("unused")
                .transport(Transport::Udp)
                .max_datagram(0)
        }),
        ("datagram over 8192", || {
            Sender::builder("unused").max_datagram(8193)
        }),
        ("frame under 256", || {
            Sender::builder("unused").max_frame(255)
        }),
        ("zero timeout", || {
            Sender::builder("unused").timeout(Duration::ZERO)
        }),
    ];
    for (what, builder) in cases {
        let built = builder().build().expect_err(what);
        let dry = builder().dry_run().expect_err(what);
        assert_eq!(
            std::mem::discriminant(&built),
            std::mem::discriminant(&dry),
            "{what}: build gave {built:?}, dry_run {dry:?}"
        );
        let expected = match what {
            w if w.starts_with("prefix") => matches!(dry, Error::InvalidName { .. }),
            w if w.contains("default tag") => matches!(dry, Error::InvalidTag { .. }),
            _ => matches!(dry, Error::Config(_)),
        };
        assert!(expected, "{what}: {dry:?}");
    }
}

#[test]
fn dry_run_accepts_what_build_accepts() {
    let dry = Sender::builder("unused")
        .prefix("app.web1")
        .tag("env", "prod")
        .protocol(Protocol::Pickle)
        .max_frame(4096)
        .batch_size(10)
        .timeout(Duration::from_millis(1))
        .dry_run();
    assert!(dry.is_ok(), "{dry:?}");
    let dry = Sender::builder("unused")
        .transport(Transport::Udp)
        .max_datagram(8192)
        .dry_run();
    assert!(dry.is_ok(), "{dry:?}");
}

#[test]
fn dry_run_to_a_listening_tcp_port_sends_nothing_over_the_network() {
    let sink = TcpSink::start();
    let dry = Sender::builder("127.0.0.1")
        .port(sink.port)
        .dry_run()
        .unwrap();
    for i in 0..5 {
        dry.sender().send_at("net.single", i, TS);
    }
    let outcome = dry
        .sender()
        .send_batch_at((0..5).map(|i| ("net.batch", i)), TS);
    assert_eq!(outcome.accepted, 5);
    dry.sender().flush().unwrap();
    dry.sender().shutdown(Duration::from_secs(1)).unwrap();
    // A probe connects after the dry run is done: had the dry run connected, the sink
    // would have accepted that connection first, and would count two.
    let _probe = std::net::TcpStream::connect(("127.0.0.1", sink.port)).unwrap();
    assert!(support::wait_until(Duration::from_secs(10), || {
        sink.connections.load(Ordering::SeqCst) >= 1
    }));
    assert_eq!(
        sink.connections.load(Ordering::SeqCst),
        1,
        "the dry run connected"
    );
    assert!(sink.received.lock().unwrap().is_empty(), "bytes arrived");
    assert_eq!(lines_of(&dry.take()).len(), 10);
    let stats = dry.sender().stats();
    assert_eq!((stats.sent, stats.errors, stats.reconnects), (10, 0, 0));
}

#[test]
fn dry_run_to_a_listening_udp_port_sends_nothing_over_the_network() {
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Only a bound for a broken test: the probe below always arrives.
    listener
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let dry = Sender::builder("127.0.0.1")
        .port(listener.local_addr().unwrap().port())
        .transport(Transport::Udp)
        .dry_run()
        .unwrap();
    let outcome = dry
        .sender()
        .send_batch_at((0..5).map(|i| ("net.udp", i)), TS);
    assert_eq!(outcome.accepted, 5);
    // A probe sent after the dry run is done is the first datagram to arrive: on loopback a
    // datagram is queued at the receiver when it is sent.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .send_to(b"probe", listener.local_addr().unwrap())
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = listener.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"probe", "the dry run sent a datagram first");
    assert_eq!(dry.sender().stats().sent, 5);
}

#[test]
fn dry_run_to_a_host_that_does_not_resolve_counts_no_error() {
    let dry = Sender::builder("no-such-host.invalid").dry_run().unwrap();
    let outcome = dry
        .sender()
        .send_batch_at((0..3).map(|i| ("nowhere", i)), TS);
    assert_eq!((outcome.accepted, outcome.lost), (3, 0));
    assert!(outcome.first_error.is_none());
    let stats = dry.sender().stats();
    assert_eq!((stats.sent, stats.errors, stats.failed), (3, 0, 0));
}

#[test]
fn stats_count_the_kept_frames_points_as_sent_and_their_bytes() {
    for protocol in [Protocol::Plaintext, Protocol::Pickle] {
        let dry = Sender::builder("unused")
            .protocol(protocol)
            .batch_size(4)
            .dry_run()
            .unwrap();
        let outcome = dry.sender().send_batch_at(
            (0..10)
                .map(|i| (format!("stats.m{i}"), i))
                .chain([("bad name".to_string(), 0)]),
            TS,
        );
        assert_eq!((outcome.accepted, outcome.refused), (10, 1), "{protocol:?}");
        dry.sender().send_at("stats.single", 1, TS);
        let frames = dry.take_frames();
        assert_eq!(frames.len(), 4, "{protocol:?}: chunks of 4, 4, 2, then 1");
        let bytes: usize = frames.iter().map(Vec::len).sum();
        let stats = dry.sender().stats();
        assert_eq!(
            (
                stats.queued,
                stats.sent,
                stats.sent_bytes,
                stats.refused,
                stats.dropped,
                stats.failed,
                stats.errors
            ),
            (11, 11, bytes as u64, 1, 0, 0, 0),
            "{protocol:?}"
        );
    }
}

#[test]
fn a_dry_run_shut_down_keeps_nothing_more_and_counts_the_rest_as_dropped() {
    let dry = Sender::builder("unused").dry_run().unwrap();
    dry.sender().send_at("before", 1, TS);
    dry.sender().shutdown(Duration::from_secs(1)).unwrap();
    let err = dry
        .sender()
        .try_send(Metric::new("after", 2).timestamp(TS))
        .unwrap_err();
    assert!(matches!(err, Error::Closed), "{err:?}");
    assert_eq!(dry.take(), b"before 1 1700000000\n");
    let stats = dry.sender().stats();
    assert_eq!((stats.sent, stats.dropped), (1, 1));
}
