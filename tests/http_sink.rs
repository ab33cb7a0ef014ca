//! The HTTP sink (feature `http`): frames of lines POSTed through a real `Sender` to a
//! loopback HTTP server whose answers each test writes, with the three outcomes of a write
//! (sent, failed for now, refused for good), gzip, and the key kept out of every text.

mod support;

use std::io::{self, Read as _};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use graphyte::{Error, HttpSocket, Metric, Name, Protocol, Sender};
use support::http::{Answer, HttpStub, Request, answer};
use support::{unused_port, wait_until};

const HOUR: Duration = Duration::from_secs(3600);
const WAIT: Duration = Duration::from_secs(10);
const TS: u32 = 1_700_000_000;

/// Hosted Graphite's path.
const SINK_PATH: &str = "/api/v1/sink";

/// Every log record of this test binary: (level, target, message).
static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Recorder;

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

/// Installs the recorder (once for the binary; tests run in parallel and share it, so each
/// looks for text of its own). Up to `debug`: ureq logs requests there, with only the
/// headers it knows to be harmless. Its `trace` level dumps the wire unredacted, which the
/// socket's documentation warns of; it is not what this test binary checks.
fn record_logs() {
    let _ = log::set_logger(&Recorder);
    log::set_max_level(log::LevelFilter::Debug);
}

fn logs_containing(text: &str) -> Vec<(log::Level, String, String)> {
    RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, message)| message.contains(text))
        .cloned()
        .collect()
}

/// A stub that answers 202 Accepted with an empty body, as Hosted Graphite does.
fn accepting_stub() -> HttpStub {
    HttpStub::start(|_| accepted())
}

fn accepted() -> Answer {
    answer(202, "text/plain", b"")
}

fn sink_url(stub: &HttpStub) -> String {
    format!("{}{SINK_PATH}", stub.url)
}

/// A synchronous sender POSTing to `socket`: each send's outcome is known when it returns.
fn synchronous(socket: HttpSocket) -> Sender {
    Sender::builder("unused")
        .synchronous()
        .socket(socket)
        .build()
        .unwrap()
}

/// A background sender POSTing to `socket`, retrying quickly; it writes at `flush`, which
/// waits at most 200 ms (the tests wait on what they expect instead).
fn background(socket: HttpSocket) -> Sender {
    Sender::builder("unused")
        .interval(HOUR)
        .timeout(Duration::from_millis(200))
        .backoff(Duration::from_millis(5), Duration::from_millis(20))
        .socket(socket)
        .build()
        .unwrap()
}

fn lines(names: &[&str]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name} {i} {TS}\n"))
        .collect()
}

fn metrics<'a>(names: &[&'a str]) -> Vec<Metric<'a>> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| Metric::new(Name::borrowed(name), i as u64).timestamp(TS))
        .collect()
}

fn body_of(request: &Request) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

fn io_error(err: Error) -> io::Error {
    match err {
        Error::Io(err) => err,
        other => panic!("not an I/O error: {other:?}"),
    }
}

#[test]
fn a_post_carries_the_lines_to_the_urls_path_with_the_key_as_basic_auth_user() {
    let stub = accepting_stub();
    let socket = HttpSocket::builder(sink_url(&stub))
        .api_key("hg-test-key-auth")
        .build()
        .unwrap();
    let sender = synchronous(socket);
    let names = ["app.requests.ok", "app.latency"];
    let outcome = sender.send_batch(metrics(&names));
    assert!(outcome.is_complete(), "{outcome:?}");

    let requests = stub.requests();
    assert_eq!(requests.len(), 1, "one batch, one POST: {requests:?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, SINK_PATH);
    // base64("hg-test-key-auth:"): the key as the user, an empty password.
    assert_eq!(
        request.header("Authorization"),
        Some("Basic aGctdGVzdC1rZXktYXV0aDo=")
    );
    // Lines, not a form: a form reader would decode the `%XX` of escaped names.
    let content_type = request.header("Content-Type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(request.header("Content-Encoding"), None);
    assert_eq!(body_of(request), lines(&names));
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.failed, stats.errors), (2, 0, 0));
}

/// A background sender's batch answered `status` once, then 202: the same lines go out
/// again, counted sent once, the failed attempt counted as an error.
fn a_transient_answer_is_retried_and_the_lines_delivered_once(status: u16) {
    let answered = AtomicUsize::new(0);
    let stub = HttpStub::start(move |_| {
        if answered.fetch_add(1, Ordering::SeqCst) == 0 {
            answer(status, "text/plain", b"try again later")
        } else {
            accepted()
        }
    });
    let sender = background(HttpSocket::builder(sink_url(&stub)).build().unwrap());
    let names = ["jobs.done", "jobs.failed"];
    sender.send_batch(metrics(&names));
    let _ = sender.flush();
    assert!(
        wait_until(WAIT, || sender.stats().sent == 2),
        "{:?}",
        sender.stats()
    );

    let requests = stub.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(body_of(&requests[0]), lines(&names));
    assert_eq!(body_of(&requests[1]), lines(&names));
    let stats = sender.stats();
    assert_eq!(
        (stats.sent, stats.errors, stats.failed),
        (2, 1, 0),
        "{stats:?}"
    );
}

#[test]
fn a_503_is_retried_and_the_lines_are_delivered_once_on_the_next_attempt() {
    a_transient_answer_is_retried_and_the_lines_delivered_once(503);
}

#[test]
fn a_429_is_retried_like_a_503() {
    a_transient_answer_is_retried_and_the_lines_delivered_once(429);
}

#[test]
fn a_500_on_every_attempt_is_given_up_after_five_attempts() {
    let stub = HttpStub::start(|_| answer(500, "text/plain", b"internal error"));
    let sender = background(HttpSocket::builder(sink_url(&stub)).build().unwrap());
    sender.send_at("poison.batch", 1, TS);
    let _ = sender.flush();
    assert!(
        wait_until(WAIT, || sender.stats().failed == 1),
        "{:?}",
        sender.stats()
    );
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.errors), (0, 5), "{stats:?}");
    assert_eq!(stub.requests().len(), 5);
}

#[test]
fn a_400_drops_that_batch_counts_it_failed_logs_the_reason_and_the_next_batch_goes_out() {
    record_logs();
    let stub = HttpStub::start(|request| {
        if body_of(request).contains("refused.metric") {
            let reason = b"  Invalid metric line\r\n 'refused.metric 0 1700000000' (tags-in-400)\n";
            answer(400, "text/plain", reason)
        } else {
            accepted()
        }
    });
    let sender = synchronous(HttpSocket::builder(sink_url(&stub)).build().unwrap());

    let err = sender
        .try_send(Metric::new("refused.metric", 0).timestamp(TS))
        .unwrap_err();
    let err = io_error(err);
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "refused for good");
    let message = err.to_string();
    assert!(message.contains("400 Bad Request"), "{message}");
    assert!(
        message.contains("Invalid metric line 'refused.metric 0 1700000000' (tags-in-400)"),
        "the reason, on one line: {message}"
    );
    let stats = sender.stats();
    assert_eq!((stats.failed, stats.errors), (1, 0), "{stats:?}");
    let logged = logs_containing("(tags-in-400)");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].0, log::Level::Warn);

    sender
        .try_send(Metric::new("next.metric", 1).timestamp(TS))
        .unwrap();
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(body_of(&requests[1]), "next.metric 1 1700000000\n");
    assert_eq!(sender.stats().sent, 1);
}

#[test]
fn gzip_bodies_decompress_to_exactly_the_lines_and_say_content_encoding_gzip() {
    let stub = accepting_stub();
    let socket = HttpSocket::builder(sink_url(&stub))
        .gzip(true)
        .build()
        .unwrap();
    let sender = synchronous(socket);
    let names: Vec<String> = (0..200).map(|i| format!("hosts.web{i}.cpu")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert!(sender.send_batch(metrics(&names)).is_complete());

    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("Content-Encoding"), Some("gzip"));
    let mut decompressed = String::new();
    flate2::read::GzDecoder::new(&requests[0].body[..])
        .read_to_string(&mut decompressed)
        .unwrap();
    assert_eq!(decompressed, lines(&names));
    assert!(requests[0].body.len() < decompressed.len() / 4);
}

#[test]
fn a_415_to_a_gzip_body_is_resent_uncompressed_and_later_bodies_stay_uncompressed() {
    record_logs();
    let stub = HttpStub::start(|request| {
        if request.header("Content-Encoding").is_some() {
            answer(
                415,
                "text/plain",
                b"Content-Encoding not supported (gzip-415)",
            )
        } else {
            accepted()
        }
    });
    let socket = HttpSocket::builder(sink_url(&stub))
        .gzip(true)
        .build()
        .unwrap();
    let sender = synchronous(socket);

    sender
        .try_send(Metric::new("first", 1).timestamp(TS))
        .unwrap();
    let requests = stub.requests();
    assert_eq!(
        requests.len(),
        2,
        "the gzip POST, then the same lines plain"
    );
    assert_eq!(requests[0].header("Content-Encoding"), Some("gzip"));
    assert_eq!(requests[1].header("Content-Encoding"), None);
    assert_eq!(body_of(&requests[1]), "first 1 1700000000\n");
    let logged = logs_containing("(gzip-415)");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(
        logged[0].2.contains("uncompressed from now on"),
        "{logged:?}"
    );

    sender
        .try_send(Metric::new("second", 2).timestamp(TS))
        .unwrap();
    let requests = stub.requests();
    assert_eq!(requests.len(), 3, "no gzip attempt any more");
    assert_eq!(requests[2].header("Content-Encoding"), None);
    assert_eq!(body_of(&requests[2]), "second 2 1700000000\n");
    let stats = sender.stats();
    assert_eq!(
        (stats.sent, stats.failed, stats.errors),
        (2, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn a_closed_port_is_retried_not_dropped() {
    let url = format!("http://127.0.0.1:{}{SINK_PATH}", unused_port());
    let sender = background(HttpSocket::builder(url).build().unwrap());
    sender.send_at("kept.while.down", 1, TS);
    let _ = sender.flush();
    // More failures than a batch failing for its own sake is allowed (5): an outage keeps
    // its lines however long it lasts.
    assert!(
        wait_until(WAIT, || sender.stats().errors >= 8),
        "{:?}",
        sender.stats()
    );
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.failed), (0, 0), "{stats:?}");
}

#[test]
fn a_pickle_sender_has_every_frame_refused_without_a_request() {
    let stub = accepting_stub();
    let sender = Sender::builder("unused")
        .synchronous()
        .protocol(Protocol::Pickle)
        .socket(HttpSocket::builder(sink_url(&stub)).build().unwrap())
        .build()
        .unwrap();
    let err = io_error(
        sender
            .try_send(Metric::new("a.b", 1).timestamp(TS))
            .unwrap_err(),
    );
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("plaintext"), "{err}");
    assert_eq!(sender.stats().failed, 1);
    assert!(stub.requests().is_empty());
}

#[test]
fn the_key_appears_in_no_error_debug_output_or_log_line() {
    record_logs();
    const KEY: &str = "hg-key-never-shown-7f3a";
    // base64("hg-key-never-shown-7f3a:"), the Authorization header's credentials.
    const CREDENTIALS: &str = "aGcta2V5LW5ldmVyLXNob3duLTdmM2E6";
    // A careless server echoing the key, and the header, in its reasons.
    let stub = HttpStub::start(|request| {
        let body = String::from_utf8_lossy(&request.body);
        if request.header("Content-Encoding").is_some() {
            answer(415, "text/plain", format!("no gzip for {KEY}").as_bytes())
        } else if body.contains("unauthorized") {
            answer(401, "text/plain", format!("invalid key {KEY}").as_bytes())
        } else if body.contains("unavailable") {
            let echo = format!("down; you sent Authorization: Basic {CREDENTIALS}");
            answer(503, "text/plain", echo.as_bytes())
        } else {
            accepted()
        }
    });
    let builder = HttpSocket::builder(sink_url(&stub)).api_key(KEY).gzip(true);
    let socket = builder.clone().build().unwrap();
    let mut shown = vec![
        format!("{builder:?}"),
        format!("{builder:#?}"),
        format!("{socket:?}"),
        format!("{socket:#?}"),
    ];
    // The key in the URL, as Hosted Graphite's curl examples write it.
    let in_url = HttpSocket::builder(format!("https://{KEY}@sink.example.com{SINK_PATH}"));
    shown.push(format!("{in_url:?}"));
    shown.push(format!("{:?}", in_url.build().unwrap()));

    let sender = synchronous(socket);
    sender
        .try_send(Metric::new("gzip.refused", 1).timestamp(TS))
        .unwrap();
    for name in ["unauthorized", "unavailable"] {
        let err = sender
            .try_send(Metric::new(name, 1).timestamp(TS))
            .unwrap_err();
        shown.push(err.to_string());
        shown.push(format!("{err:?}"));
    }
    let closed = format!("http://127.0.0.1:{}{SINK_PATH}", unused_port());
    let closed = synchronous(HttpSocket::builder(closed).api_key(KEY).build().unwrap());
    let err = closed
        .try_send(Metric::new("closed", 1).timestamp(TS))
        .unwrap_err();
    shown.push(err.to_string());
    shown.push(format!("{err:?}"));
    assert_eq!(stub.requests().len(), 4, "gzip, plain, 401, 503");

    let logs: Vec<String> = RECORDS
        .lock()
        .unwrap()
        .iter()
        .map(|(_, target, message)| format!("{target}: {message}"))
        .collect();
    assert!(
        logs.iter()
            .any(|line| line.contains("invalid key <hidden>")),
        "the 401 is logged, its reason without the key: {logs:#?}"
    );
    for text in shown.iter().chain(&logs) {
        assert!(!text.contains(KEY), "the key in: {text}");
        assert!(!text.contains(CREDENTIALS), "the credentials in: {text}");
    }
}
