//! The `graphyte` command-line tool, run as a user runs it: the real binary, its arguments,
//! environment and stdin, against loopback sinks and a real carbon-cache. Each test checks
//! the exit status and what the tool printed, and what reached the other end.
//!
//! Nothing waits on the clock: a run is waited for until it exits (and failed if it takes
//! longer than `RUN_LIMIT`), and a sink until its bytes or Carbon's points are there.
#![cfg(feature = "cli")]

mod support;

use std::ffi::OsStr;
use std::io::{BufRead, ErrorKind, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::hostile::{HOSTILE_LINES, long_lines};
use support::pickle::{PyNum, unpickle_frame};
use support::process::{Finished, run_to_end};
use support::{
    Carbon, HangingListener, TcpSink, UdpSink, recent_second, unix_now, unused_port, wait_until,
};

const TS: u32 = 1_700_000_000;

/// The longest a run may take: past it, the run is killed and the test fails (a hang is a
/// bug). Far more than any run here needs.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// The binary, with GRAPHITE_HOST and GRAPHITE_PORT cleared so the caller's environment
/// does not choose the server.
fn graphyte<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_graphyte"));
    command
        .args(args)
        .env_remove("GRAPHITE_HOST")
        .env_remove("GRAPHITE_PORT");
    command
}

/// `-s 127.0.0.1 -p PORT`.
fn server(port: u16) -> [String; 4] {
    [
        "-s".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
    ]
}

/// A finished run of the binary.
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
    took: Duration,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }

    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// The exit status is `code`, and nothing panicked.
    fn assert_exit(&self, code: i32) {
        assert!(
            !self.stderr.contains("panicked"),
            "graphyte panicked:\n{}",
            self.stderr
        );
        assert_eq!(
            self.code,
            code,
            "exit status; stderr:\n{}\nstdout:\n{}",
            self.stderr,
            String::from_utf8_lossy(&self.stdout)
        );
    }

    /// Exit status 2 with clap's kind of report: a first line `error: …` naming the problem
    /// (`about`), nothing on stdout.
    fn assert_usage_error(&self, about: &str) {
        self.assert_exit(2);
        let first = self.stderr_lines().first().copied().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains(about),
            "first stderr line {first:?} should be `error: …{about}…`; stderr:\n{}",
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {:?}", self.stdout());
    }

    /// Stderr is one line, `graphyte: …` containing `about`.
    fn assert_one_complaint(&self, about: &str) {
        assert_eq!(
            self.stderr_lines().len(),
            1,
            "one line on stderr:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.starts_with("graphyte: ") && self.stderr.contains(about),
            "stderr should be `graphyte: …{about}…`: {:?}",
            self.stderr
        );
    }
}

/// Runs `command` with nothing on stdin.
fn run(command: Command) -> Run {
    finish(command, None)
}

/// Runs `command` with `input` on stdin.
fn run_with_input(command: Command, input: Vec<u8>) -> Run {
    finish(command, Some(input))
}

fn finish(command: Command, input: Option<Vec<u8>>) -> Run {
    let Finished {
        code,
        stdout,
        stderr,
        took,
    } = run_to_end(command, input, RUN_LIMIT);
    Run {
        code,
        stdout,
        stderr,
        took,
    }
}

/// A loopback listener read only once graphyte has exited. By then every connection it made
/// waits in the listener's queue (connecting completes in the kernel before `connect`
/// returns) and holds every byte it was given, up to the end graphyte's exit put to it: what
/// is read is exactly what was sent, and an empty queue means no connection was made.
///
/// For small outputs only (nothing reads while graphyte runs); `TcpSink` takes the big ones.
struct ExitSink {
    listener: TcpListener,
    port: u16,
}

impl ExitSink {
    fn start() -> ExitSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        ExitSink { listener, port }
    }

    /// The bytes of each connection graphyte made. Call only once it has exited.
    fn connections(&self) -> Vec<Vec<u8>> {
        self.listener.set_nonblocking(true).unwrap();
        let mut connections = Vec::new();
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let mut bytes = Vec::new();
                    stream
                        .read_to_end(&mut bytes)
                        .expect("the connection of an exited graphyte reads to its end");
                    connections.push(bytes);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => return connections,
                Err(err) => panic!("accepting: {err}"),
            }
        }
    }

    /// What graphyte sent, as text: the bytes of its one connection.
    fn sent(&self) -> String {
        let connections = self.connections();
        assert_eq!(connections.len(), 1, "connections: {connections:?}");
        String::from_utf8(connections[0].clone()).expect("sent bytes are UTF-8")
    }

    /// Graphyte made no connection at all.
    fn assert_untouched(&self) {
        assert_eq!(
            self.connections(),
            Vec::<Vec<u8>>::new(),
            "connections made"
        );
    }
}

/// Sends one metric `NAME VALUE -t TS` to a fresh sink, with the `send` subcommand or in the
/// bare form; returns the run and what the sink received.
fn one_shot(subcommand: bool, name: &str, value: &str, extra: &[&str]) -> (Run, String) {
    let sink = ExitSink::start();
    let mut args: Vec<String> = Vec::new();
    if subcommand {
        args.push("send".into());
    }
    args.extend([name.into(), value.into(), "-t".into(), TS.to_string()]);
    args.extend(server(sink.port));
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = run(graphyte(args));
    let sent = if run.code == 0 {
        sink.sent()
    } else {
        String::new()
    };
    (run, sent)
}

// One metric.

#[test]
fn send_writes_name_value_and_timestamp_as_one_line() {
    let (run, sent) = one_shot(true, "cli.one", "42", &[]);
    run.assert_exit(0);
    assert_eq!(sent, "cli.one 42 1700000000\n");
    assert!(
        run.stderr
            .starts_with("graphyte: sent 1 metric to 127.0.0.1:"),
        "stderr: {:?}",
        run.stderr
    );
    assert!(run.stdout.is_empty());
}

#[test]
fn the_bare_form_sends_the_same_bytes_as_send() {
    let (send, by_send) = one_shot(true, "cli.bare", "7", &[]);
    let (bare, by_bare) = one_shot(false, "cli.bare", "7", &[]);
    send.assert_exit(0);
    bare.assert_exit(0);
    assert_eq!(by_send, "cli.bare 7 1700000000\n");
    assert_eq!(by_bare, by_send);
}

#[test]
fn values_are_sent_as_written() {
    for value in ["42.0", "1e3", "-7", ".5", "0.125"] {
        let (run, sent) = one_shot(true, "cli.value", value, &[]);
        run.assert_exit(0);
        assert_eq!(sent, format!("cli.value {value} 1700000000\n"));
    }
}

#[test]
fn prefix_and_tags_rewrite_the_path_with_the_tags_sorted_by_key() {
    let (run, sent) = one_shot(
        true,
        "x",
        "5",
        &["--prefix", "app", "--tag", "b=2", "--tag", "a=1"],
    );
    run.assert_exit(0);
    assert_eq!(sent, "app.x;a=1;b=2 5 1700000000\n");
}

#[test]
fn a_metric_without_a_timestamp_is_stamped_with_the_current_second() {
    let sink = ExitSink::start();
    let before = unix_now();
    let run = run(graphyte(
        ["send", "cli.now", "1"]
            .map(String::from)
            .into_iter()
            .chain(server(sink.port)),
    ));
    let after = unix_now();
    run.assert_exit(0);
    let sent = sink.sent();
    let ts: u32 = sent
        .strip_prefix("cli.now 1 ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("sent {sent:?}"))
        .parse()
        .unwrap();
    assert!(
        (before..=after).contains(&ts),
        "{ts} not in {before}..={after}"
    );
}

/// Sends `cli.udp 3 -t TS` with `protocol` to a UDP sink; returns the run and the datagrams.
fn udp_one_shot(protocol: &[&str]) -> (Run, Vec<Vec<u8>>) {
    let sink = UdpSink::start();
    let args = ["send", "cli.udp", "3", "-t", &TS.to_string()]
        .map(String::from)
        .into_iter()
        .chain(server(sink.port))
        .chain(protocol.iter().map(|s| s.to_string()));
    let run = run(graphyte(args));
    // Sent on loopback before graphyte exited: the datagrams are the sink's to read.
    wait_until(Duration::from_secs(10), || {
        !sink.datagrams.lock().unwrap().is_empty()
    });
    let datagrams = sink.datagrams.lock().unwrap().clone();
    (run, datagrams)
}

#[test]
fn dash_u_sends_the_line_in_one_udp_datagram() {
    let (run, datagrams) = udp_one_shot(&["-u"]);
    run.assert_exit(0);
    assert_eq!(datagrams, [b"cli.udp 3 1700000000\n".to_vec()]);
}

#[test]
fn protocol_udp_sends_the_line_in_one_udp_datagram() {
    let (run, datagrams) = udp_one_shot(&["--protocol", "udp"]);
    run.assert_exit(0);
    assert_eq!(datagrams, [b"cli.udp 3 1700000000\n".to_vec()]);
}

#[test]
fn a_pickled_metric_is_stored_by_carbon() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let run = run(graphyte(
        ["send", "cli.pickled", "1.5", "--protocol", "pickle", "-t"]
            .map(String::from)
            .into_iter()
            .chain([t0.to_string()])
            .chain(server(carbon.pickle_port)),
    ));
    run.assert_exit(0);
    assert_eq!(carbon.wait_for("cli.pickled", 1), [(t0, 1.5)]);
}

#[test]
fn plaintext_metrics_in_both_forms_are_stored_by_carbon() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let send = run(graphyte(
        ["send", "cli.plain.send", "42", "-t"]
            .map(String::from)
            .into_iter()
            .chain([t0.to_string()])
            .chain(server(carbon.line_port)),
    ));
    let bare = run(graphyte(
        ["cli.plain.bare", "-7.25", "-t"]
            .map(String::from)
            .into_iter()
            .chain([(t0 + 1).to_string()])
            .chain(server(carbon.line_port)),
    ));
    send.assert_exit(0);
    bare.assert_exit(0);
    assert_eq!(carbon.wait_for("cli.plain.send", 1), [(t0, 42.0)]);
    assert_eq!(carbon.wait_for("cli.plain.bare", 1), [(t0 + 1, -7.25)]);
}

// The environment.

#[test]
fn graphite_host_and_graphite_port_choose_the_server() {
    let sink = ExitSink::start();
    let mut command = graphyte(["send", "cli.env", "1", "-t", "1700000000"]);
    command
        .env("GRAPHITE_HOST", "127.0.0.1")
        .env("GRAPHITE_PORT", sink.port.to_string());
    let run = run(command);
    run.assert_exit(0);
    assert_eq!(sink.sent(), "cli.env 1 1700000000\n");
    assert_eq!(
        run.stderr,
        format!(
            "graphyte: sent 1 metric to 127.0.0.1:{} over TCP\n",
            sink.port
        )
    );
}

#[test]
fn graphite_host_is_the_server_connected_to() {
    let mut command = graphyte(["send", "cli.env", "1"]);
    command.env("GRAPHITE_HOST", "no-such-host.invalid");
    let run = run(command);
    run.assert_exit(3);
    run.assert_one_complaint("no-such-host.invalid");
}

#[test]
fn dash_p_overrides_graphite_port() {
    let sink = ExitSink::start();
    let mut command = graphyte(
        ["send", "cli.env", "2", "-t", "1700000000", "-p"]
            .map(String::from)
            .into_iter()
            .chain([sink.port.to_string()]),
    );
    command
        .env("GRAPHITE_HOST", "127.0.0.1")
        .env("GRAPHITE_PORT", unused_port().to_string());
    let run = run(command);
    run.assert_exit(0);
    assert_eq!(sink.sent(), "cli.env 2 1700000000\n");
}

#[test]
fn dash_s_overrides_graphite_host() {
    let sink = ExitSink::start();
    let mut command = graphyte([
        "send",
        "cli.env",
        "3",
        "-t",
        "1700000000",
        "-s",
        "127.0.0.1",
    ]);
    command
        .env("GRAPHITE_HOST", "no-such-host.invalid")
        .env("GRAPHITE_PORT", sink.port.to_string());
    let run = run(command);
    run.assert_exit(0);
    assert_eq!(sink.sent(), "cli.env 3 1700000000\n");
}

// Dry run.

#[test]
fn dry_run_prints_the_exact_line_and_sends_nothing() {
    let sink = ExitSink::start();
    let run = run(graphyte(
        ["send", "cli.dry", "42.0", "-t", "1700000000", "--dry-run"]
            .map(String::from)
            .into_iter()
            .chain(server(sink.port)),
    ));
    run.assert_exit(0);
    assert_eq!(run.stdout(), "cli.dry 42.0 1700000000\n");
    assert_eq!(run.stderr, "");
    sink.assert_untouched();
}

/// The bytes of the `# 000000  00 00 …` rows of a pickle rendering.
fn hex_rows(rendering: &str) -> Vec<u8> {
    rendering
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        .filter(|row| row.len() > 8 && row[..6].bytes().all(|b| b.is_ascii_hexdigit()))
        .flat_map(|row| {
            row[8..]
                .split(' ')
                .map(|byte| u8::from_str_radix(byte, 16).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_pickle_dry_run_prints_the_frame_as_a_list_and_its_exact_bytes_and_sends_nothing() {
    let sink = ExitSink::start();
    let run = run(graphyte(
        [
            "send",
            "a.b",
            "42",
            "-t",
            "1700000000",
            "--protocol",
            "pickle",
            "--dry-run",
        ]
        .map(String::from)
        .into_iter()
        .chain(server(sink.port)),
    ));
    run.assert_exit(0);
    let shown = run.stdout();
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        lines[0].starts_with("# pickle frame: "),
        "rendering:\n{shown}"
    );
    assert_eq!(
        lines[1], r#"[("a.b", (1700000000, 42))]"#,
        "rendering:\n{shown}"
    );
    // The hex rows are the frame the library makes for the same metric, byte for byte.
    let dry = graphyte::Sender::builder("unused")
        .protocol(graphyte::Protocol::Pickle)
        .dry_run()
        .unwrap();
    dry.sender().send_at("a.b", 42, TS);
    let frame = hex_rows(&shown);
    assert_eq!(frame, dry.take_frames().concat(), "rendering:\n{shown}");
    assert_eq!(
        unpickle_frame(&frame),
        [("a.b".to_owned(), PyNum::Int(i128::from(TS)), PyNum::Int(42))]
    );
    assert_eq!(run.stderr, "");
    sink.assert_untouched();
}

#[test]
fn a_stream_dry_run_prints_the_good_lines_and_sends_nothing() {
    let sink = ExitSink::start();
    let run = run_with_input(
        graphyte(
            ["send", "-", "-t", "1700000009", "--dry-run", "-q"]
                .map(String::from)
                .into_iter()
                .chain(server(sink.port)),
        ),
        b"cli.a 1 1700000000\ncli.b 2\n".to_vec(),
    );
    run.assert_exit(0);
    assert_eq!(run.stdout(), "cli.a 1 1700000000\ncli.b 2 1700000009\n");
    sink.assert_untouched();
}

// Stream mode.

/// `send - -s 127.0.0.1 -p PORT`, then `extra`.
fn stream_to(port: u16, extra: &[&str]) -> Command {
    graphyte(
        ["send", "-"]
            .map(String::from)
            .into_iter()
            .chain(server(port))
            .chain(extra.iter().map(|s| s.to_string())),
    )
}

/// The summary line's start: `graphyte: R lines read, S sent, F refused, D dropped in `.
fn summary(read: u64, sent: u64, refused: u64, dropped: u64) -> String {
    format!("graphyte: {read} lines read, {sent} sent, {refused} refused, {dropped} dropped in ")
}

#[test]
fn a_hundred_thousand_lines_from_stdin_arrive_in_order_byte_for_byte_and_are_summarised() {
    const LINES: u64 = 100_000;
    let input: String = (0..LINES)
        .map(|i| format!("cli.stream.m{i} {i} {}\n", u64::from(TS) + i % 3600))
        .collect();
    let sink = TcpSink::start();
    let run = run_with_input(stream_to(sink.port, &[]), input.clone().into_bytes());
    run.assert_exit(0);
    let received = sink.received_when(|bytes| bytes.len() >= input.len());
    if received != input.as_bytes() {
        let at = received
            .iter()
            .zip(input.as_bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(received.len().min(input.len()));
        panic!(
            "received {} bytes of {}; first difference at byte {at}: {:?} vs {:?}",
            received.len(),
            input.len(),
            String::from_utf8_lossy(&received[at..received.len().min(at + 60)]),
            &input[at..input.len().min(at + 60)],
        );
    }
    // The summary and nothing else: no progress line when stderr is not a terminal.
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "stderr:\n{}", run.stderr);
    assert!(
        lines[0].starts_with(&summary(LINES, LINES, 0, 0)),
        "summary: {:?}",
        lines[0]
    );
}

#[test]
fn stream_lines_without_a_timestamp_get_the_one_of_dash_t() {
    let sink = ExitSink::start();
    let run = run_with_input(
        stream_to(sink.port, &["-t", "1700000009"]),
        b"cli.a 1\ncli.b 2 1700000000\ncli.c;k=v 3\n".to_vec(),
    );
    run.assert_exit(0);
    assert_eq!(
        sink.sent(),
        "cli.a 1 1700000009\ncli.b 2 1700000000\ncli.c;k=v 3 1700000009\n"
    );
}

#[test]
fn stream_lines_without_a_timestamp_get_the_current_second() {
    let sink = ExitSink::start();
    let before = unix_now();
    let run = run_with_input(stream_to(sink.port, &[]), b"cli.a 1\ncli.b 2\n".to_vec());
    let after = unix_now();
    run.assert_exit(0);
    let sent = sink.sent();
    let lines: Vec<&str> = sent.lines().collect();
    assert_eq!(lines.len(), 2, "sent {sent:?}");
    for (line, start) in lines.iter().zip(["cli.a 1 ", "cli.b 2 "]) {
        let ts: u32 = line
            .strip_prefix(start)
            .unwrap_or_else(|| panic!("sent {sent:?}"))
            .parse()
            .unwrap();
        assert!(
            (before..=after).contains(&ts),
            "{ts} not in {before}..={after}"
        );
    }
}

#[test]
fn a_last_line_without_a_newline_is_sent() {
    let sink = ExitSink::start();
    let run = run_with_input(
        stream_to(sink.port, &[]),
        b"cli.a 1 1700000000\ncli.b 2 1700000000".to_vec(),
    );
    run.assert_exit(0);
    assert_eq!(sink.sent(), "cli.a 1 1700000000\ncli.b 2 1700000000\n");
}

#[test]
fn empty_lines_are_skipped_silently_and_not_counted() {
    let sink = ExitSink::start();
    let run = run_with_input(
        stream_to(sink.port, &[]),
        b"\ncli.a 1 1700000000\n\n\ncli.b 2 1700000000\n\n".to_vec(),
    );
    run.assert_exit(0);
    assert_eq!(sink.sent(), "cli.a 1 1700000000\ncli.b 2 1700000000\n");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "stderr:\n{}", run.stderr);
    assert!(lines[0].starts_with(&summary(2, 2, 0, 0)), "{:?}", lines[0]);
}

#[test]
fn quiet_leaves_out_the_stream_summary() {
    let sink = ExitSink::start();
    let run = run_with_input(
        stream_to(sink.port, &["-q"]),
        b"cli.a 1 1700000000\n".to_vec(),
    );
    run.assert_exit(0);
    assert_eq!(run.stderr, "");
    assert_eq!(sink.sent(), "cli.a 1 1700000000\n");
}

#[test]
fn ten_thousand_streamed_points_are_stored_by_carbon_exactly() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let names: Vec<String> = (0..100).map(|s| format!("cli.carbon.s{s:02}")).collect();
    let mut input = String::new();
    // Point by point, across the series, as a program would write them.
    for j in 0..100u32 {
        for (s, name) in names.iter().enumerate() {
            let k = s as u32 * 100 + j;
            let value = if j % 2 == 0 {
                k.to_string()
            } else {
                format!("-{k}.5")
            };
            input.push_str(&format!("{name} {value} {}\n", t0 - 100 + j));
        }
    }
    let run = run_with_input(stream_to(carbon.line_port, &[]), input.into_bytes());
    run.assert_exit(0);
    assert!(
        run.stderr.starts_with(&summary(10_000, 10_000, 0, 0)),
        "stderr: {}",
        run.stderr
    );
    let held = carbon.wait_for_each(&names, 100);
    for (s, points) in held.iter().enumerate() {
        let want: Vec<(u32, f64)> = (0..100u32)
            .map(|j| {
                let k = f64::from(s as u32 * 100 + j);
                (t0 - 100 + j, if j % 2 == 0 { k } else { -k - 0.5 })
            })
            .collect();
        assert_eq!(points, &want, "{}", names[s]);
    }
}

#[test]
fn bad_lines_are_reported_by_number_and_skipped_and_the_good_ones_around_them_arrive() {
    let long = format!("cli.{} 1 1700000000", "x".repeat(20_000 - 17));
    assert_eq!(long.len(), 20_000);
    // Each line, and for a bad one a word of its report.
    let table: Vec<(Vec<u8>, Option<&str>)> = vec![
        (b"cli.good.first 1 1700000000".to_vec(), None),
        (b"cli.nan nan 1700000000".to_vec(), Some("value")),
        (b"a..b 1".to_vec(), Some("empty path segment")),
        (b"cli.good.second 2 1700000000".to_vec(), None),
        (b"a/b 1".to_vec(), Some("'/'")),
        (b"a b c d".to_vec(), Some("three fields")),
        (b"cli.\xff\xfe 1".to_vec(), Some("UTF-8")),
        (b"cli.cr 1 1700000000\r".to_vec(), Some("carriage return")),
        (b"cli.ms 1 1700000000000".to_vec(), Some("milliseconds")),
        (b"~a 1".to_vec(), Some("'~'")),
        (long.into_bytes(), Some("16384")),
        (b"cli.good.last 3 1700000000".to_vec(), None),
    ];
    let mut input = Vec::new();
    for (line, _) in &table {
        input.extend_from_slice(line);
        input.push(b'\n');
    }
    let sink = ExitSink::start();
    let run = run_with_input(stream_to(sink.port, &[]), input);
    run.assert_exit(1);
    assert_eq!(
        sink.sent(),
        "cli.good.first 1 1700000000\ncli.good.second 2 1700000000\ncli.good.last 3 1700000000\n"
    );
    let bad: Vec<(usize, &str)> = table
        .iter()
        .enumerate()
        .filter_map(|(i, (_, word))| word.map(|word| (i + 1, word)))
        .collect();
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), bad.len() + 1, "stderr:\n{}", run.stderr);
    for ((number, word), report) in bad.iter().zip(&lines) {
        assert!(
            report.starts_with(&format!("graphyte: line {number}: ")) && report.contains(word),
            "report {report:?} should be `graphyte: line {number}: …{word}…`"
        );
    }
    assert!(
        lines[bad.len()].starts_with(&summary(12, 3, 9, 0)),
        "summary: {:?}",
        lines[bad.len()]
    );
}

/// The library's whole table of hostile lines, each between two good lines: only the good
/// lines reach the sink, byte for byte. (A table line holding a newline is two lines in a
/// stream; each part is refused or empty.)
#[test]
fn no_line_of_the_hostile_input_table_is_forwarded_in_stream_mode() {
    let long = long_lines();
    let hostile: Vec<&[u8]> = HOSTILE_LINES
        .iter()
        .copied()
        .chain(long.iter().map(Vec::as_slice))
        .collect();
    let mut input = Vec::new();
    let mut good = String::new();
    for (i, line) in hostile.iter().enumerate() {
        let ok = format!("cli.good.m{i} {i} 1700000000\n");
        input.extend_from_slice(ok.as_bytes());
        good.push_str(&ok);
        input.extend_from_slice(line);
        input.push(b'\n');
    }
    let sink = ExitSink::start();
    let run = run_with_input(stream_to(sink.port, &[]), input);
    run.assert_exit(1);
    assert_eq!(sink.sent(), good);
    let reports = run
        .stderr_lines()
        .iter()
        .filter(|line| line.starts_with("graphyte: line "))
        .count();
    let empty = hostile
        .iter()
        .filter(|line| line.is_empty() || **line == b"\n")
        .count();
    assert_eq!(reports, hostile.len() - empty, "stderr:\n{}", run.stderr);
}

#[test]
fn strict_stops_at_the_first_bad_line_after_sending_the_lines_before_it() {
    let sink = ExitSink::start();
    let run = run_with_input(
        stream_to(sink.port, &["--strict"]),
        b"cli.a 1 1700000000\ncli.b 2 1700000000\na..b 3\ncli.d 4 1700000000\nc..d 5\n".to_vec(),
    );
    run.assert_exit(1);
    assert_eq!(sink.sent(), "cli.a 1 1700000000\ncli.b 2 1700000000\n");
    let lines = run.stderr_lines();
    assert!(
        lines[0].starts_with("graphyte: line 3: ") && lines[0].contains("\"a..b 3\""),
        "stderr:\n{}",
        run.stderr
    );
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("graphyte: --strict: stopped at line 3")),
        "stderr:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("line 5"),
        "read past the stop:\n{}",
        run.stderr
    );
}

#[test]
fn streamed_lines_over_udp_arrive_whole_in_datagrams_within_the_size_limit() {
    const LINES: usize = 1_000;
    let input: String = (0..LINES)
        .map(|i| format!("cli.udp.m{i} {i} 1700000000\n"))
        .collect();
    let sink = UdpSink::start();
    let run = run_with_input(stream_to(sink.port, &["-u"]), input.clone().into_bytes());
    run.assert_exit(0);
    wait_until(Duration::from_secs(10), || sink.lines().len() >= LINES);
    let datagrams = sink.datagrams.lock().unwrap().clone();
    assert_eq!(String::from_utf8(datagrams.concat()).unwrap(), input);
    for datagram in &datagrams {
        assert!(
            datagram.len() <= graphyte::DEFAULT_MAX_DATAGRAM && datagram.ends_with(b"\n"),
            "a datagram of {} bytes: {:?}",
            datagram.len(),
            String::from_utf8_lossy(datagram)
        );
    }
}

/// A port whose connections are made but never read: they complete into the queue of a
/// listener that never accepts, and their bytes fill the kernel's buffers. Kept open for as
/// long as the listener lives.
fn never_read() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Far more lines (some 33 MB) than the kernel's buffers hold for a connection never read.
fn more_than_buffers_hold() -> Vec<u8> {
    (0..1_000_000)
        .map(|i| format!("cli.stalled.m{i} {i} 1700000000\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn a_stream_to_a_carbon_that_takes_nothing_gives_up_after_the_timeout_and_exits_1() {
    let (_listener, port) = never_read();
    let run = run_with_input(
        stream_to(port, &["--timeout", "1"]),
        more_than_buffers_hold(),
    );
    run.assert_exit(1);
    let lines = run.stderr_lines();
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("graphyte: ") && line.contains("gave up")),
        "stderr:\n{}",
        run.stderr
    );
    let last = lines.last().copied().unwrap_or_default();
    assert!(
        last.starts_with("graphyte: ") && last.ends_with("; stopped early"),
        "summary: {last:?}"
    );
}

/// The worker is still stuck on Carbon after the summary: the process must not wait for it
/// again (it did, when a second shutdown raced the watchdog's and reported the worker
/// stopped).
#[test]
fn a_stream_that_gave_up_exits_as_soon_as_it_has_printed_its_summary() {
    const TIMEOUT_SECS: u64 = 2;
    let (_listener, port) = never_read();
    let mut child = stream_to(port, &["--timeout", &TIMEOUT_SECS.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = more_than_buffers_hold();
    let writer = thread::spawn(move || drop(stdin.write_all(&input)));
    // Each line of stderr as it comes: the summary is the last one graphyte prints.
    let mut summary_at = None;
    let mut stderr = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains(" lines read, ") {
            summary_at = Some(Instant::now());
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let mut status = None;
    let exited = wait_until(RUN_LIMIT, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let exit_at = Instant::now();
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        panic!("graphyte did not exit within {RUN_LIMIT:?}");
    }
    writer.join().unwrap();
    assert_eq!(status.unwrap().code(), Some(1), "stderr:\n{stderr}");
    let summary_at = summary_at.unwrap_or_else(|| panic!("no summary; stderr:\n{stderr}"));
    let lingered = exit_at - summary_at;
    assert!(
        lingered < Duration::from_secs(TIMEOUT_SECS) / 2,
        "graphyte exited {lingered:?} after its summary (--timeout {TIMEOUT_SECS}); stderr:\n{stderr}"
    );
}

#[test]
fn a_server_that_never_completes_the_connection_exits_3_at_the_timeout() {
    let hanging = HangingListener::start();
    let run = run(graphyte(
        ["send", "cli.a", "1", "--timeout", "1"]
            .map(String::from)
            .into_iter()
            .chain(server(hanging.port)),
    ));
    run.assert_exit(3);
    run.assert_one_complaint("within 1s");
    assert!(
        (Duration::from_secs(1)..Duration::from_secs(10)).contains(&run.took),
        "took {:?}",
        run.took
    );
}

#[test]
fn a_stream_to_a_closed_port_exits_3() {
    let run = run_with_input(
        stream_to(unused_port(), &[]),
        b"cli.a 1 1700000000\n".to_vec(),
    );
    run.assert_exit(3);
    run.assert_one_complaint("cannot connect");
}

// Exit statuses and errors.

#[test]
fn a_refused_value_exits_1_with_one_line_and_sends_nothing() {
    let sink = ExitSink::start();
    let run = run(graphyte(
        ["send", "cli.bad", "x"]
            .map(String::from)
            .into_iter()
            .chain(server(sink.port)),
    ));
    run.assert_exit(1);
    run.assert_one_complaint("refused");
    let sent: Vec<u8> = sink.connections().concat();
    assert_eq!(String::from_utf8_lossy(&sent), "");
}

/// Runs `args` (then `-s 127.0.0.1 -p PORT` of a sink) and checks it is a usage error about
/// `about` that made no connection.
fn assert_usage_error(args: &[&str], about: &str) {
    let sink = ExitSink::start();
    let run = run(graphyte(
        args.iter().map(|s| s.to_string()).chain(server(sink.port)),
    ));
    run.assert_usage_error(about);
    sink.assert_untouched();
}

#[test]
fn a_name_without_a_value_is_a_usage_error() {
    assert_usage_error(&["send", "cli.a"], "VALUE");
    assert_usage_error(&["cli.a"], "VALUE");
}

#[test]
fn an_unknown_option_is_a_usage_error() {
    assert_usage_error(&["send", "cli.a", "1", "--bogus"], "--bogus");
}

#[test]
fn a_tag_without_an_equals_sign_is_a_usage_error() {
    assert_usage_error(&["send", "cli.a", "1", "--tag", "novalue"], "novalue");
}

#[test]
fn a_timeout_that_is_not_positive_seconds_is_a_usage_error() {
    for timeout in ["0", "-1", "soon", "86401"] {
        let option = format!("--timeout={timeout}");
        assert_usage_error(&["send", "cli.a", "1", &option], "--timeout");
    }
}

#[test]
fn a_timestamp_in_milliseconds_is_a_usage_error() {
    assert_usage_error(
        &["send", "cli.a", "1", "-t", "1700000000000"],
        "1700000000000",
    );
}

#[test]
fn an_invalid_prefix_is_a_usage_error() {
    assert_usage_error(&["send", "cli.a", "1", "--prefix", "a..b"], "--prefix");
}

#[test]
fn a_closed_port_exits_3_with_one_line_naming_it() {
    let port = unused_port();
    let run = run(graphyte(
        ["send", "cli.a", "1"]
            .map(String::from)
            .into_iter()
            .chain(server(port)),
    ));
    run.assert_exit(3);
    run.assert_one_complaint(&format!("127.0.0.1:{port}"));
}

#[test]
fn an_unresolvable_host_exits_3_without_hanging() {
    let run = run(graphyte([
        "send",
        "cli.a",
        "1",
        "-s",
        "no-such-host.invalid",
    ]));
    run.assert_exit(3);
    run.assert_one_complaint("no-such-host.invalid");
    // The connect timeout (5 s by default) bounds it; `run` itself gives up at RUN_LIMIT.
    assert!(run.took < Duration::from_secs(20), "took {:?}", run.took);
}

// Help and completions.

#[test]
fn send_help_shows_examples() {
    let run = run(graphyte(["send", "--help"]));
    run.assert_exit(0);
    assert!(run.stdout().contains("Examples:"), "{}", run.stdout());
}

#[test]
fn top_level_help_shows_examples() {
    let run = run(graphyte(["--help"]));
    run.assert_exit(0);
    assert!(run.stdout().contains("Examples:"), "{}", run.stdout());
}

/// `graphyte completions SHELL` prints a script for that shell (`marker` is a piece of it
/// only that shell's script has) for the command `graphyte`.
fn assert_completions(shell: &str, marker: &str) {
    let run = run(graphyte(["completions", shell]));
    run.assert_exit(0);
    let script = run.stdout();
    assert!(
        script.contains("graphyte") && script.contains(marker),
        "{shell} completions should mention graphyte and {marker:?}:\n{script}"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn bash_completions_are_printed() {
    assert_completions("bash", "complete -F");
}

#[test]
fn zsh_completions_are_printed() {
    assert_completions("zsh", "#compdef graphyte");
}

#[test]
fn fish_completions_are_printed() {
    assert_completions("fish", "complete -c graphyte");
}

/// A closed stderr (`graphyte send - 2>&1 | head`) must not stop or hang the run: every bad
/// line's report then fails to be written. It hung when a report's write panicked on the
/// thread whose turn it was to hand over.
#[test]
fn a_closed_stderr_neither_hangs_nor_crashes_a_stream_with_bad_lines() {
    let mut input = Vec::new();
    for i in 0..200_000 {
        let line = if i % 100 == 0 {
            format!("bad.{i} x 1700000000\n")
        } else {
            format!("cli.closed.m{i} {i} 1700000000\n")
        };
        input.extend_from_slice(line.as_bytes());
    }
    let mut child = graphyte(["send", "-", "--dry-run"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("graphyte still running after {RUN_LIMIT:?} with its stderr closed");
        }
        thread::sleep(Duration::from_millis(10));
    };
    writer.join().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "bad lines refused: exit 1, not a crash"
    );
}
