//! The HTTP sink (feature `http`): frames of lines POSTed through a real `Sender` to a
//! loopback HTTP server whose answers each test writes, with the three outcomes of a write
//! (sent, failed for now, refused for good), gzip, and the key kept out of every text.

mod support;

use std::io::{self, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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

/// A background sender's batch that fails `failures` times in a row (each time as `fail`
/// answers), more than the 5 failures after which a batch failing for its own sake is given
/// up, then is answered 202: the lines are kept through the outage and delivered once.
fn an_outage_keeps_the_batch_until_it_is_delivered(
    failures: usize,
    fail: impl Fn() -> Answer + Send + Sync + 'static,
) {
    let answered = AtomicUsize::new(0);
    let stub = HttpStub::start(move |_| {
        if answered.fetch_add(1, Ordering::SeqCst) < failures {
            fail()
        } else {
            accepted()
        }
    });
    let sender = background(HttpSocket::builder(sink_url(&stub)).build().unwrap());
    sender.send_at("kept.through.outage", 1, TS);
    let _ = sender.flush();
    let settled = || {
        let stats = sender.stats();
        stats.sent == 1 || stats.failed > 0
    };
    assert!(wait_until(WAIT, settled), "{:?}", sender.stats());
    let stats = sender.stats();
    assert_eq!(
        (stats.sent, stats.failed, stats.errors),
        (1, 0, failures as u64),
        "{stats:?}"
    );
    let requests = stub.requests();
    assert_eq!(requests.len(), failures + 1, "{requests:?}");
    assert!(
        requests
            .iter()
            .all(|request| body_of(request) == "kept.through.outage 1 1700000000\n")
    );
}

#[test]
fn a_500_seven_times_in_a_row_keeps_the_batch_and_the_next_202_delivers_it() {
    an_outage_keeps_the_batch_until_it_is_delivered(7, || {
        answer(500, "text/plain", b"internal error")
    });
}

#[test]
fn a_507_seven_times_in_a_row_keeps_the_batch_like_any_5xx() {
    an_outage_keeps_the_batch_until_it_is_delivered(7, || {
        answer(507, "text/plain", b"insufficient storage")
    });
}

#[test]
fn a_connection_closed_before_an_answer_seven_times_keeps_the_batch() {
    an_outage_keeps_the_batch_until_it_is_delivered(7, || Answer::Raw(Vec::new()));
}

#[test]
fn a_connection_reset_before_an_answer_seven_times_keeps_the_batch() {
    an_outage_keeps_the_batch_until_it_is_delivered(7, || {
        Answer::Stream(Box::new(|stream: &mut TcpStream| {
            // A zero linger makes the close a reset (RST), not an orderly end of stream.
            let _ = socket2::SockRef::from(&*stream).set_linger(Some(Duration::ZERO));
        }))
    });
}

#[test]
fn a_truncated_answer_seven_times_keeps_the_batch() {
    an_outage_keeps_the_batch_until_it_is_delivered(7, || {
        Answer::Raw(b"HTTP/1.1 202 Acc".to_vec())
    });
}

#[test]
fn an_answer_that_is_not_http_seven_times_keeps_the_batch() {
    an_outage_keeps_the_batch_until_it_is_delivered(7, || {
        Answer::Raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec())
    });
}

/// A background sender whose every attempt fails: after more attempts than a batch failing
/// for its own sake is allowed (5), its lines are still held, neither sent nor failed.
fn assert_kept_while_failing(sender: &Sender) {
    let settled = || {
        let stats = sender.stats();
        stats.errors >= 8 || stats.failed > 0
    };
    assert!(wait_until(WAIT, settled), "{:?}", sender.stats());
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.failed), (0, 0), "{stats:?}");
    assert!(stats.errors >= 8, "{stats:?}");
}

/// A loopback server that answers every connection with a plain-HTTP answer at once, before
/// reading anything: to a TLS client, a handshake that fails. Returns its port and how many
/// connections it has had.
fn plain_http_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, connections)
}

#[test]
fn an_https_url_to_a_server_that_does_not_speak_tls_keeps_the_batch_while_retrying() {
    let (port, connections) = plain_http_server();
    let url = format!("https://127.0.0.1:{port}{SINK_PATH}");
    let sender = background(HttpSocket::builder(url).build().unwrap());
    sender.send_at("kept.while.tls.fails", 1, TS);
    let _ = sender.flush();
    assert_kept_while_failing(&sender);
    assert!(connections.load(Ordering::SeqCst) >= 8);
}

/// A loopback TLS server whose certificate (self-signed, for `localhost`) no client trusts.
/// Returns its port and how many handshakes have failed on it.
#[cfg(feature = "tls")]
fn untrusted_tls_server() -> (u16, Arc<AtomicUsize>) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let failed = Arc::new(AtomicUsize::new(0));
    let counted = failed.clone();
    thread::spawn(move || {
        for mut tcp in listener.incoming().flatten() {
            let mut tls = rustls::ServerConnection::new(config.clone()).unwrap();
            while tls.is_handshaking() {
                if tls.complete_io(&mut tcp).is_err() {
                    counted.fetch_add(1, Ordering::SeqCst);
                    break;
                }
            }
        }
    });
    (port, failed)
}

#[cfg(feature = "tls")]
#[test]
fn an_https_url_whose_certificate_is_untrusted_keeps_the_batch_while_retrying() {
    let (port, failed_handshakes) = untrusted_tls_server();
    let url = format!("https://localhost:{port}{SINK_PATH}");
    let sender = background(HttpSocket::builder(url).build().unwrap());
    sender.send_at("kept.while.untrusted", 1, TS);
    let _ = sender.flush();
    assert_kept_while_failing(&sender);
    let failed = || failed_handshakes.load(Ordering::SeqCst);
    assert!(wait_until(WAIT, || failed() >= 8), "{}", failed());
}

#[test]
fn a_failed_tls_handshake_is_a_not_connected_error_not_a_refusal() {
    // Without the `tls` feature's test server: a server that answers a TLS client in plain
    // HTTP fails the handshake the same way (rustls reports both as I/O errors of kind
    // InvalidData, which must not read as a refusal of the lines).
    let (port, _) = plain_http_server();
    let url = format!("https://127.0.0.1:{port}{SINK_PATH}");
    let sender = synchronous(HttpSocket::builder(url).build().unwrap());
    let err = io_error(
        sender
            .try_send(Metric::new("tls.fails", 1).timestamp(TS))
            .unwrap_err(),
    );
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
}

#[test]
fn a_server_that_never_answers_fails_the_post_with_timed_out_within_the_timeout() {
    let stub = HttpStub::start(|_| Answer::Silent);
    let socket = HttpSocket::builder(sink_url(&stub))
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let sender = synchronous(socket);
    let started = Instant::now();
    let err = io_error(
        sender
            .try_send(Metric::new("never.answered", 1).timestamp(TS))
            .unwrap_err(),
    );
    let took = started.elapsed();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    // A generous bound: the POST is cut at 200 ms, far from the default 10 s.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(wait_until(WAIT, || stub.requests().len() == 1));
}

#[test]
fn a_server_that_never_answers_keeps_the_batch_while_retrying() {
    let stub = HttpStub::start(|_| Answer::Silent);
    let socket = HttpSocket::builder(sink_url(&stub))
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let sender = background(socket);
    sender.send_at("kept.while.silent", 1, TS);
    let _ = sender.flush();
    assert_kept_while_failing(&sender);
    assert!(wait_until(WAIT, || stub.requests().len() >= 8));
}

#[test]
fn a_redirect_is_not_followed_and_its_location_receives_no_request() {
    let elsewhere = accepting_stub();
    let location = sink_url(&elsewhere);
    let stub = HttpStub::start(move |_| {
        Answer::Raw(
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .into_bytes(),
        )
    });
    let socket = HttpSocket::builder(sink_url(&stub))
        .api_key("hg-key-not-for-elsewhere")
        .build()
        .unwrap();
    let sender = synchronous(socket);
    let err = io_error(
        sender
            .try_send(Metric::new("redirected", 1).timestamp(TS))
            .unwrap_err(),
    );
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains(&elsewhere.url), "{err}");
    assert_eq!(stub.requests().len(), 1);
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
    assert_eq!(sender.stats().failed, 1);
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

/// A stub that answers a gzip body with a 400 whose reason quotes a metric named like
/// compression (as a reason quoting a refused line does), and a plain body with 202.
fn stub_refusing_gzip_bodies_with_a_400() -> HttpStub {
    HttpStub::start(|request| {
        if request.header("Content-Encoding").is_some() {
            let reason = b"Invalid metric line 'app.compress.ratio gzip 1700000000'";
            answer(400, "text/plain", reason)
        } else {
            accepted()
        }
    })
}

#[test]
fn a_400_to_a_gzip_body_is_never_posted_again_whatever_its_reason_names() {
    let stub = stub_refusing_gzip_bodies_with_a_400();
    let socket = HttpSocket::builder(sink_url(&stub))
        .gzip(true)
        .build()
        .unwrap();
    let sender = synchronous(socket);
    let err = io_error(
        sender
            .try_send(Metric::new("app.compress.ratio", 1).timestamp(TS))
            .unwrap_err(),
    );
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let requests = stub.requests();
    assert_eq!(
        requests.len(),
        1,
        "a 400 may have stored some lines: {requests:?}"
    );
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.failed), (0, 1), "{stats:?}");
}

#[test]
fn a_400_to_a_gzip_body_leaves_gzip_on() {
    let stub = stub_refusing_gzip_bodies_with_a_400();
    let socket = HttpSocket::builder(sink_url(&stub))
        .gzip(true)
        .build()
        .unwrap();
    let sender = synchronous(socket);
    let _ = sender.try_send(Metric::new("app.compress.ratio", 1).timestamp(TS));
    let _ = sender.try_send(Metric::new("next.metric", 2).timestamp(TS));
    let requests = stub.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[1].header("Content-Encoding"), Some("gzip"));
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

/// What a sender over `builder` lets out about its credentials: the builder's and the
/// socket's `Debug`, and the error (text and `Debug`) of a POST answered 401 by a server that
/// echoes everything it was given.
fn shown_on_a_401(builder: graphyte::HttpSocketBuilder) -> Vec<String> {
    let mut shown = vec![format!("{builder:?}"), format!("{builder:#?}")];
    let socket = builder.build().unwrap();
    shown.push(format!("{socket:?}"));
    shown.push(format!("{socket:#?}"));
    let sender = synchronous(socket);
    let err = sender
        .try_send(Metric::new("unauthorized", 1).timestamp(TS))
        .unwrap_err();
    shown.push(err.to_string());
    shown.push(format!("{err:?}"));
    shown
}

/// A stub answering 401 with a reason that echoes the `Authorization` header and the
/// credentials it decodes to, as a careless server might.
fn echoing_401_stub() -> HttpStub {
    HttpStub::start(|request| {
        let authorization = request.header("Authorization").unwrap_or_default();
        let decoded = authorization
            .strip_prefix("Basic ")
            .map(base64_decode)
            .unwrap_or_default();
        let reason = format!("bad credentials {decoded} (you sent Authorization: {authorization})");
        answer(401, "text/plain", reason.as_bytes())
    })
}

fn base64_decode(text: &str) -> String {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|&b| b != b'=') {
        let digit = DIGITS.iter().position(|&d| d == byte).unwrap() as u32;
        bits = bits << 6 | digit;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn assert_never_shown(shown: &[String], secrets: &[&str]) {
    let logs: Vec<String> = RECORDS
        .lock()
        .unwrap()
        .iter()
        .map(|(_, target, message)| format!("{target}: {message}"))
        .collect();
    for text in shown.iter().chain(&logs) {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in: {text}");
        }
    }
}

#[test]
fn a_key_given_as_a_user_with_an_empty_password_is_never_shown() {
    record_logs();
    const KEY: &str = "hg-key-as-empty-password-user-51c2";
    // base64("hg-key-as-empty-password-user-51c2:")
    const CREDENTIALS: &str = "aGcta2V5LWFzLWVtcHR5LXBhc3N3b3JkLXVzZXItNTFjMjo=";
    let stub = echoing_401_stub();
    let in_url = format!("http://{KEY}:@127.0.0.1:{}{SINK_PATH}", stub_port(&stub));
    let mut shown = shown_on_a_401(HttpSocket::builder(in_url));
    shown.extend(shown_on_a_401(
        HttpSocket::builder(sink_url(&stub)).basic_auth(KEY, ""),
    ));
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        let sent = format!("Basic {CREDENTIALS}");
        assert_eq!(request.header("Authorization"), Some(sent.as_str()));
    }
    assert!(shown.iter().any(|text| text.contains("401")), "{shown:#?}");
    assert_never_shown(&shown, &[KEY, CREDENTIALS]);
}

#[test]
fn a_basic_auth_user_and_password_are_never_shown() {
    record_logs();
    const USER: &str = "grafana-instance-user-7d1e";
    const PASSWORD: &str = "glc-password-9b0f";
    // base64("grafana-instance-user-7d1e:glc-password-9b0f")
    const CREDENTIALS: &str = "Z3JhZmFuYS1pbnN0YW5jZS11c2VyLTdkMWU6Z2xjLXBhc3N3b3JkLTliMGY=";
    let stub = echoing_401_stub();
    let in_url = format!(
        "http://{USER}:{PASSWORD}@127.0.0.1:{}{SINK_PATH}",
        stub_port(&stub)
    );
    let mut shown = shown_on_a_401(HttpSocket::builder(in_url));
    shown.extend(shown_on_a_401(
        HttpSocket::builder(sink_url(&stub)).basic_auth(USER, PASSWORD),
    ));
    assert_eq!(stub.requests().len(), 2);
    assert!(shown.iter().any(|text| text.contains("401")), "{shown:#?}");
    assert_never_shown(&shown, &[USER, PASSWORD, CREDENTIALS]);
}

fn stub_port(stub: &HttpStub) -> u16 {
    stub.url.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[test]
fn credentials_over_plain_http_to_a_remote_host_are_warned_about_once_at_build() {
    record_logs();
    let builder = HttpSocket::builder("http://sink.example.com/warned-plain-http-remote")
        .api_key("hg-key-over-plain-http-3e9a");
    let _socket = builder.build().unwrap();
    let logged = logs_containing("/warned-plain-http-remote");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].0, log::Level::Warn);
    assert!(logged[0].2.contains("https"), "{logged:?}");
    assert!(!logged[0].2.contains("hg-key-over-plain-http-3e9a"));
}

#[test]
fn credentials_over_plain_http_to_loopback_are_not_warned_about() {
    record_logs();
    for url in [
        "http://127.0.0.1:8080/silent-plain-http-loopback-v4",
        "http://127.3.2.1:8080/silent-plain-http-loopback-v4-range",
        "http://[::1]:8080/silent-plain-http-loopback-v6",
        "http://localhost:8080/silent-plain-http-loopback-name",
        "http://LOCALHOST./silent-plain-http-loopback-name-dot",
    ] {
        HttpSocket::builder(url)
            .api_key("k3y-loopback")
            .build()
            .unwrap();
    }
    let logged = logs_containing("/silent-plain-http-loopback");
    assert!(logged.is_empty(), "{logged:?}");
}

#[test]
fn credentials_over_https_are_not_warned_about() {
    record_logs();
    HttpSocket::builder("https://sink.example.com/silent-https-remote")
        .api_key("k3y-https")
        .build()
        .unwrap();
    let logged = logs_containing("/silent-https-remote");
    assert!(logged.is_empty(), "{logged:?}");
}
