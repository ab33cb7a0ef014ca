//! The TLS transport (feature `tls`), driven through a real `Sender` against an in-process
//! rustls server in front of a byte sink, on 127.0.0.1. Certificates (a CA for servers, one
//! for clients, and the leaves they issue) are made at run time with rcgen. No test needs the
//! network, and none sleeps: each waits on an event (a handshake reported by the server, bytes
//! received, a connection closed) with a deadline.
//!
//! No test in this process reads the system's trust store (`TlsConfig::native_roots`) or
//! changes the environment: the one test of the system roots runs in a child process of its
//! own, whose `SSL_CERT_FILE` is set when it starts.

mod support;

use std::io::{self, Read as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use graphyte::{Error, Metric, Protocol, Sender, TlsConfig};
use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P384_SHA384,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use support::pickle::{PyNum, unpickle_frame};
use support::wait_until;

const WAIT: Duration = Duration::from_secs(10);
const HOUR: Duration = Duration::from_secs(3600);
const TS: u32 = 1_700_000_000;

/// A certificate authority made for one test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A certificate an authority issued, with its key, in PEM.
struct Leaf {
    cert_pem: String,
    key_pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut distinguished_name = DistinguishedName::new();
        distinguished_name.push(DnType::CommonName, name);
        Self::named(distinguished_name, KeyPair::generate().unwrap())
    }

    /// A CA with this exact name (its DER encoding is what certificates it issues name as
    /// their issuer) and key.
    fn named(distinguished_name: DistinguishedName, key: KeyPair) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = distinguished_name;
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        let common_name = names.first().map_or("graphyte test client", String::as_str);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server certificate for `names`.
    fn server(&self, names: &[&str]) -> Leaf {
        self.issue(names, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate, for mutual TLS.
    fn client(&self) -> Leaf {
        self.issue(&[], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// The names the test server's certificate is usually for.
const LOCAL_NAMES: &[&str] = &["localhost", "127.0.0.1"];

/// What the test server does with a connection once the handshake is done.
#[derive(Clone, Copy, PartialEq)]
enum After {
    /// Keeps everything it reads until the client closes.
    Read,
    /// Keeps what its first read brings, then closes the connection (`close_notify`).
    HangUpAfterFirstRead,
    /// Never reads: holds the connection open, unread, for as long as the process lives.
    StopReading,
}

/// A rustls server on 127.0.0.1 in front of a byte sink.
struct TlsServer {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
    /// How each handshake ended, as the server saw it, in order.
    handshakes: mpsc::Receiver<Result<(), String>>,
    connections: Arc<AtomicUsize>,
    /// Connections the server has closed.
    closed: Arc<AtomicUsize>,
}

impl TlsServer {
    /// Serves `leaf` to any client.
    fn start(leaf: &Leaf) -> TlsServer {
        Self::with(leaf, None, After::Read)
    }

    /// Serves `leaf`, requiring a client certificate issued by `client_ca`.
    fn requiring_client_certificates(leaf: &Leaf, client_ca: &Ca) -> TlsServer {
        Self::with(leaf, Some(client_ca), After::Read)
    }

    fn with(leaf: &Leaf, client_ca: Option<&Ca>, after: After) -> TlsServer {
        let config = server_config(leaf, client_ca);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (handshake_tx, handshakes) = mpsc::channel();
        {
            let (received, connections, closed) =
                (received.clone(), connections.clone(), closed.clone());
            thread::spawn(move || {
                for tcp in listener.incoming().flatten() {
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (config, received, closed, handshake_tx) = (
                        config.clone(),
                        received.clone(),
                        closed.clone(),
                        handshake_tx.clone(),
                    );
                    thread::spawn(move || {
                        serve(tcp, config, after, &received, &handshake_tx);
                        closed.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
        }
        TlsServer {
            port,
            received,
            handshakes,
            connections,
            closed,
        }
    }

    /// How the next handshake ended, as the server saw it.
    fn next_handshake(&self) -> Result<(), String> {
        self.handshakes
            .recv_timeout(WAIT)
            .expect("no handshake reached the server")
    }

    fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `len` bytes have arrived, and returns them all.
    fn wait_for_bytes(&self, len: usize) -> Vec<u8> {
        wait_until(WAIT, || self.received.lock().unwrap().len() >= len);
        self.received()
    }
}

fn server_config(leaf: &Leaf, client_ca: Option<&Ca>) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
                .unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let chain = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    Arc::new(builder.with_single_cert(chain, key).unwrap())
}

/// One connection: the handshake (its outcome reported), then the plaintext into `received`.
fn serve(
    mut tcp: TcpStream,
    config: Arc<ServerConfig>,
    after: After,
    received: &Mutex<Vec<u8>>,
    handshakes: &mpsc::Sender<Result<(), String>>,
) {
    let mut tls = ServerConnection::new(config).unwrap();
    while tls.is_handshaking() {
        // On failure rustls has sent the client its alert by the time this returns.
        if let Err(err) = tls.complete_io(&mut tcp) {
            let _ = handshakes.send(Err(err.to_string()));
            return;
        }
    }
    let _ = handshakes.send(Ok(()));
    if after == After::StopReading {
        // The client's writes fill the kernel's buffers, and then wait.
        let _held = (tls, tcp);
        loop {
            thread::park();
        }
    }
    let mut stream = StreamOwned::new(tls, tcp);
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                received.lock().unwrap().extend_from_slice(&buf[..n]);
                if after == After::HangUpAfterFirstRead {
                    stream.conn.send_close_notify();
                    let _ = stream.conn.complete_io(&mut stream.sock);
                    return;
                }
            }
        }
    }
}

/// A builder for a sender over TLS to `host:port`, with a short backoff.
fn tls_sender(host: &str, port: u16, config: TlsConfig) -> graphyte::Builder {
    Sender::builder(host)
        .port(port)
        .tls(config)
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
}

/// What a synchronous send of `name` to `server`, reached as `host` with `config`, says
/// when the handshake is refused; the server saw no handshake and received nothing.
fn refused(server: &TlsServer, host: &str, config: TlsConfig, name: &'static str) -> String {
    let sender = tls_sender(host, server.port, config)
        .synchronous()
        .build()
        .unwrap();
    let message = io_error(sender.try_send(metric(name, 1))).to_string();
    assert!(
        server.next_handshake().is_err(),
        "the server saw a handshake"
    );
    assert_eq!(server.received(), b"", "bytes reached the server");
    assert_eq!(sender.stats().sent, 0);
    message
}

/// The I/O error a synchronous send reports.
fn io_error(result: Result<(), Error>) -> io::Error {
    match result {
        Err(Error::Io(err)) => err,
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

fn metric(name: &'static str, value: u64) -> Metric<'static> {
    Metric::new(name, value).timestamp(TS)
}

#[test]
fn lines_arrive_byte_for_byte_over_tls_verified_with_a_custom_ca() {
    let ca = Ca::new("graphyte test CA");
    let server = TlsServer::start(&ca.server(LOCAL_NAMES));
    let sender = tls_sender("localhost", server.port, TlsConfig::new().ca_pem(&ca.pem))
        .interval(HOUR)
        .build()
        .unwrap();
    // About 60 KB: several TLS records.
    let mut expected = Vec::new();
    for i in 0..2000u64 {
        sender.send_at(format!("tls.custom_ca.m{i}"), i, TS);
        expected.extend_from_slice(format!("tls.custom_ca.m{i} {i} {TS}\n").as_bytes());
    }
    sender.flush().unwrap();
    assert_eq!(server.next_handshake(), Ok(()));
    assert_eq!(server.wait_for_bytes(expected.len()), expected);
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.errors), (2000, 0), "{stats:?}");
}

#[test]
fn an_untrusted_certificate_is_refused_with_an_error_naming_it_and_nothing_is_written() {
    let unknown_ca = Ca::new("a CA the client does not trust");
    let server = TlsServer::start(&unknown_ca.server(LOCAL_NAMES));
    // Only the bundled public roots: the test CA is not among them.
    let message = refused(&server, "localhost", TlsConfig::new(), "tls.untrusted");
    assert!(
        message.contains(&format!(
            "TLS handshake with localhost:{} failed: invalid peer certificate: UnknownIssuer",
            server.port
        )),
        "{message}"
    );
}

#[test]
fn a_certificate_for_another_host_name_is_refused() {
    let ca = Ca::new("graphyte test CA");
    let server = TlsServer::start(&ca.server(&["carbon.example.com"]));
    let message = refused(
        &server,
        "localhost",
        TlsConfig::new().ca_pem(&ca.pem),
        "tls.wrong_name",
    );
    assert!(
        message.contains("invalid peer certificate: certificate not valid for name \"localhost\""),
        "{message}"
    );
}

#[test]
fn server_name_verifies_the_certificate_against_the_name_given_instead_of_the_host() {
    let ca = Ca::new("graphyte test CA");
    let server = TlsServer::start(&ca.server(&["carbon.example.com"]));
    let config = TlsConfig::new()
        .ca_pem(&ca.pem)
        .server_name("carbon.example.com");
    let sender = tls_sender("127.0.0.1", server.port, config)
        .synchronous()
        .build()
        .unwrap();
    sender.try_send(metric("tls.server_name", 1)).unwrap();
    assert_eq!(server.next_handshake(), Ok(()));
    let line = format!("tls.server_name 1 {TS}\n");
    assert_eq!(server.wait_for_bytes(line.len()), line.as_bytes());
}

#[test]
fn the_explicit_opt_out_accepts_an_untrusted_test_server() {
    let unknown_ca = Ca::new("a CA the client does not trust");
    let server = TlsServer::start(&unknown_ca.server(&["somewhere.else.example"]));
    let sender = tls_sender(
        "localhost",
        server.port,
        TlsConfig::new().danger_accept_invalid_certs(),
    )
    .synchronous()
    .build()
    .unwrap();
    sender.try_send(metric("tls.opt_out", 1)).unwrap();
    assert_eq!(server.next_handshake(), Ok(()));
    let line = format!("tls.opt_out 1 {TS}\n");
    assert_eq!(server.wait_for_bytes(line.len()), line.as_bytes());
}

#[test]
fn mutual_tls_delivers_when_the_client_presents_its_certificate() {
    let server_ca = Ca::new("graphyte test server CA");
    let client_ca = Ca::new("graphyte test client CA");
    let client = client_ca.client();
    let server =
        TlsServer::requiring_client_certificates(&server_ca.server(LOCAL_NAMES), &client_ca);
    let config = TlsConfig::new()
        .ca_pem(&server_ca.pem)
        .client_auth_pem(&client.cert_pem, &client.key_pem);
    let sender = tls_sender("localhost", server.port, config)
        .synchronous()
        .build()
        .unwrap();
    sender.try_send(metric("tls.mutual", 1)).unwrap();
    assert_eq!(server.next_handshake(), Ok(()));
    let line = format!("tls.mutual 1 {TS}\n");
    assert_eq!(server.wait_for_bytes(line.len()), line.as_bytes());
}

#[test]
fn mutual_tls_fails_with_an_error_naming_it_when_the_client_presents_no_certificate() {
    let server_ca = Ca::new("graphyte test server CA");
    let client_ca = Ca::new("graphyte test client CA");
    let server =
        TlsServer::requiring_client_certificates(&server_ca.server(LOCAL_NAMES), &client_ca);
    let sender = tls_sender(
        "localhost",
        server.port,
        TlsConfig::new().ca_pem(&server_ca.pem),
    )
    .synchronous()
    .build()
    .unwrap();
    // In TLS 1.3 the server refuses after the client's side of the handshake is done: the
    // first write can succeed locally, and the refusal comes with the next send.
    let first = sender.try_send(metric("tls.no_client_cert", 1));
    let refused = server.next_handshake().unwrap_err();
    assert!(refused.contains("peer sent no certificates"), "{refused}");
    let err = match first {
        Err(err) => io_error(Err(err)),
        Ok(()) => io_error(sender.try_send(metric("tls.no_client_cert", 2))),
    };
    let message = err.to_string();
    assert!(
        message.contains("received fatal alert: CertificateRequired"),
        "{message}"
    );
    assert_eq!(server.received(), b"", "bytes reached the sink");
}

#[test]
fn a_server_that_never_completes_the_handshake_does_not_hold_a_send_past_the_timeout() {
    // Connections are accepted by the kernel (the listener's queue) and never answered.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let timeout = Duration::from_millis(300);
    let sender = tls_sender("127.0.0.1", port, TlsConfig::new())
        .timeout(timeout)
        .synchronous()
        .build()
        .unwrap();
    let started = Instant::now();
    let err = io_error(sender.try_send(metric("tls.silent", 1)));
    let took = started.elapsed();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    // Generous: the bound is the timeout, the margin is for a busy machine.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    drop(listener);
}

#[test]
fn the_sender_reconnects_after_the_server_closes_the_connection() {
    let ca = Ca::new("graphyte test CA");
    let server = TlsServer::with(&ca.server(LOCAL_NAMES), None, After::HangUpAfterFirstRead);
    // Reconnection, not replay (tests/replay.rs): without it, each round's bytes are exact.
    let sender = tls_sender("localhost", server.port, TlsConfig::new().ca_pem(&ca.pem))
        .interval(HOUR)
        .replay(Duration::ZERO)
        .build()
        .unwrap();
    let mut expected = Vec::new();
    for i in 0..3u64 {
        sender.send_at("tls.reconnect", i, TS);
        expected.extend_from_slice(format!("tls.reconnect {i} {TS}\n").as_bytes());
        sender.flush().unwrap();
        assert_eq!(server.wait_for_bytes(expected.len()), expected, "round {i}");
        // The server has closed this connection: the next round must notice and open another.
        assert!(
            wait_until(WAIT, || server.closed.load(Ordering::SeqCst)
                == i as usize + 1),
            "round {i}: the server did not close its connection"
        );
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 3);
    let stats = sender.stats();
    assert_eq!((stats.reconnects, stats.errors), (2, 0), "{stats:?}");
}

fn config_problem(config: TlsConfig) -> &'static str {
    match Sender::builder("localhost").port(20030).tls(config).build() {
        Err(Error::Config(problem)) => problem,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn a_ca_that_is_not_a_pem_certificate_is_refused_when_building() {
    let problem = config_problem(TlsConfig::new().ca_pem("not a certificate"));
    assert!(problem.contains("ca_pem"), "{problem}");
    assert!(problem.contains("no certificate found"), "{problem}");
}

#[test]
fn a_client_certificate_without_its_key_is_refused_when_building() {
    let client = Ca::new("graphyte test client CA").client();
    let problem = config_problem(TlsConfig::new().client_auth_pem(&client.cert_pem, ""));
    assert!(problem.contains("client_auth_pem"), "{problem}");
    assert!(problem.contains("no private key found"), "{problem}");
}

#[test]
fn a_client_key_that_is_not_the_certificates_is_refused_when_building() {
    let ca = Ca::new("graphyte test client CA");
    let (client, other) = (ca.client(), ca.client());
    let problem =
        config_problem(TlsConfig::new().client_auth_pem(&client.cert_pem, &other.key_pem));
    assert!(problem.contains("not the certificate's"), "{problem}");
}

#[test]
fn a_ca_file_that_cannot_be_read_is_refused_naming_the_file() {
    let path = std::env::temp_dir().join("graphyte-tls-test-no-such-ca.pem");
    let result = Sender::builder("localhost")
        .tls(TlsConfig::new().ca_file(&path))
        .build();
    match result {
        Err(Error::Io(err)) => {
            assert_eq!(err.kind(), io::ErrorKind::NotFound);
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

/// A CA that takes the name of a root bundled in webpki-roots (ISRG Root X2: C=US,
/// O=Internet Security Research Group, CN=ISRG Root X2, each a PrintableString, as in that
/// root's certificate) with a key of its own: what it signs names that root as its issuer, and
/// does not verify against the root's key.
fn impostor_of_a_bundled_root() -> Ca {
    let mut name = DistinguishedName::new();
    let printable = |text: &str| DnValue::PrintableString(PrintableString::try_from(text).unwrap());
    name.push(DnType::CountryName, printable("US"));
    name.push(
        DnType::OrganizationName,
        printable("Internet Security Research Group"),
    );
    name.push(DnType::CommonName, printable("ISRG Root X2"));
    // The root's key type (ECDSA P-384), so the signature is checked, not refused for its
    // algorithm.
    Ca::named(
        name,
        KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).unwrap(),
    )
}

#[test]
fn the_bundled_roots_are_what_the_default_config_verifies_against() {
    // With no bundled roots (an empty store) the verifier would find no issuer for this
    // certificate (UnknownIssuer, as for any unknown CA). With them it finds ISRG Root X2 by
    // name, checks the signature with that root's key, and the signature is wrong.
    let server = TlsServer::start(&impostor_of_a_bundled_root().server(LOCAL_NAMES));
    let message = refused(&server, "localhost", TlsConfig::new(), "tls.bundled_roots");
    assert!(
        message.contains(&format!(
            "TLS handshake with localhost:{} failed: invalid peer certificate: BadSignature",
            server.port
        )),
        "{message}"
    );
}

#[test]
fn an_ip_address_host_refuses_a_certificate_that_names_only_localhost() {
    let ca = Ca::new("graphyte test CA");
    let server = TlsServer::start(&ca.server(&["localhost"]));
    // No server_name: the certificate must hold the IP address connected to.
    let message = refused(
        &server,
        "127.0.0.1",
        TlsConfig::new().ca_pem(&ca.pem),
        "tls.ip_host",
    );
    assert!(
        message.contains("invalid peer certificate: certificate not valid for name \"127.0.0.1\""),
        "{message}"
    );
}

#[test]
fn an_ip_address_host_accepts_a_certificate_that_lists_that_ip_address() {
    let ca = Ca::new("graphyte test CA");
    // An IP address SAN only: no DNS name the host could match instead.
    let server = TlsServer::start(&ca.server(&["127.0.0.1"]));
    let sender = tls_sender("127.0.0.1", server.port, TlsConfig::new().ca_pem(&ca.pem))
        .synchronous()
        .build()
        .unwrap();
    sender.try_send(metric("tls.ip_host", 1)).unwrap();
    assert_eq!(server.next_handshake(), Ok(()));
    let line = format!("tls.ip_host 1 {TS}\n");
    assert_eq!(server.wait_for_bytes(line.len()), line.as_bytes());
}

#[test]
fn pickle_frames_arrive_whole_over_tls() {
    let ca = Ca::new("graphyte test CA");
    let server = TlsServer::start(&ca.server(LOCAL_NAMES));
    let sender = tls_sender("localhost", server.port, TlsConfig::new().ca_pem(&ca.pem))
        .protocol(Protocol::Pickle)
        .interval(HOUR)
        .build()
        .unwrap();
    // Three batches of 1000 (the default batch size): three frames, each larger than one TLS
    // record (16 KiB), so each is split across records.
    let count = 3 * graphyte::DEFAULT_BATCH_SIZE;
    let mut expected = Vec::new();
    for i in 0..count as u64 {
        let name = format!("tls.pickle.metric_with_a_longer_name_{i}");
        sender.send_at(name.clone(), i, TS);
        expected.push((name, PyNum::Int(TS.into()), PyNum::Int(i.into())));
    }
    sender.flush().unwrap();
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.errors), (count as u64, 0), "{stats:?}");
    let received = server.wait_for_bytes(stats.sent_bytes as usize);
    assert_eq!(received.len() as u64, stats.sent_bytes, "bytes received");
    // Each frame: a 4-byte big-endian length, then that many bytes of pickle.
    let (mut points, mut lengths, mut at) = (Vec::new(), Vec::new(), 0);
    while at < received.len() {
        let header: [u8; 4] = received[at..at + 4].try_into().unwrap();
        let len = u32::from_be_bytes(header) as usize;
        assert!(
            at + 4 + len <= received.len(),
            "the frame at {at} says {len} bytes, {} are left",
            received.len() - at - 4
        );
        points.extend(unpickle_frame(&received[at..at + 4 + len]));
        lengths.push(len);
        at += 4 + len;
    }
    assert_eq!(
        lengths.iter().map(|len| 4 + len).sum::<usize>() as u64,
        stats.sent_bytes,
        "the frames ({lengths:?}) are everything the sender wrote"
    );
    assert!(
        lengths.len() >= 3 && lengths.iter().all(|&len| len > 16 * 1024),
        "frame lengths {lengths:?}"
    );
    assert_eq!(points, expected);
}

#[test]
fn a_server_that_stops_reading_never_blocks_sends_and_the_timed_out_write_is_retried() {
    let ca = Ca::new("graphyte test CA");
    let server = TlsServer::with(&ca.server(LOCAL_NAMES), None, After::StopReading);
    let timeout = Duration::from_secs(3);
    // The timed-out write and its retry, not replay (which would fill the new connection
    // with the frames of the stalled one first).
    let sender = tls_sender("localhost", server.port, TlsConfig::new().ca_pem(&ca.pem))
        .timeout(timeout)
        .interval(Duration::from_millis(10))
        .queue_capacity(100_000)
        .replay(Duration::ZERO)
        .build()
        .unwrap();
    // Bursts until the kernel's buffers (the client's send buffer, the server's receive
    // buffer: a few MB on loopback) are full and a write waits; each send timed.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut next = 0u64;
    let stalled_burst = loop {
        assert!(
            started.elapsed() < 3 * WAIT,
            "no write failed in {:?}: {:?}",
            started.elapsed(),
            sender.stats()
        );
        let burst = Instant::now();
        for _ in 0..50_000 {
            let send = Instant::now();
            sender.send_at("tls.stalled.metric_with_a_longer_name", next, TS);
            slowest = slowest.max(send.elapsed());
            next += 1;
        }
        // Until the worker has written it all, or a write failed.
        wait_until(WAIT, || {
            let stats = sender.stats();
            stats.errors > 0 || stats.sent + stats.failed >= stats.queued
        });
        if sender.stats().errors > 0 {
            break burst;
        }
    };
    let failed_after = stalled_burst.elapsed();
    let at_error = sender.stats();
    eprintln!(
        "a write failed {failed_after:?} after the last burst began; slowest send {slowest:?}; \
         {at_error:?}"
    );
    // Blocking on the network would take the write timeout (3 s); a single call can still be
    // preempted on a loaded machine, hence a bound that only proves "does not block".
    assert!(
        slowest < Duration::from_millis(1500),
        "a send took {slowest:?}"
    );
    // One send's write (a TLS record, in several system calls when the server takes a little
    // of it now and then) waits at most the timeout in all, not the timeout per call (three
    // calls, three timeouts, were seen); a write with no timeout would wait for ever. The
    // margin is for the burst itself and a busy machine.
    assert!(
        failed_after < timeout + Duration::from_millis(1500),
        "the write failed {failed_after:?} after the burst that filled the buffers began"
    );
    // Retried on a new connection: more is written (to its empty buffers) after the error.
    assert!(
        wait_until(WAIT, || server.connections.load(Ordering::SeqCst) >= 2
            && sender.stats().sent > at_error.sent),
        "not retried on a new connection: {:?}, {} connections",
        sender.stats(),
        server.connections.load(Ordering::SeqCst)
    );
    let stats = sender.stats();
    assert_eq!(stats.failed, 0, "metrics given up: {stats:?}");
    // The worker is still waiting on the server: do not wait for it.
    let _ = sender.shutdown(Duration::from_millis(100));
}

/// The test that runs in a child process with `SSL_CERT_FILE` set (by
/// `native_roots_trust_the_ca_in_ssl_cert_file_and_refuse_a_server_whose_ca_is_not_in_it`).
const NATIVE_ROOTS_CHILD: &str = "native_roots_in_a_child_process_whose_ssl_cert_file_is_set";
/// The variable that tells that child the file it may write `SSL_CERT_FILE`'s CAs to.
const NATIVE_ROOTS_FILE: &str = "GRAPHYTE_TEST_NATIVE_ROOTS_FILE";

#[test]
fn native_roots_trust_the_ca_in_ssl_cert_file_and_refuse_a_server_whose_ca_is_not_in_it() {
    // The environment is the process's: rather than change it under the other tests' threads
    // (getaddrinfo reads it), run the test in a child process of this test binary, started
    // with SSL_CERT_FILE set (and SSL_CERT_DIR unset, so only that file is read).
    let file = std::env::temp_dir().join(format!(
        "graphyte-tls-native-roots-{}.pem",
        std::process::id()
    ));
    let output = Command::new(std::env::current_exe().unwrap())
        .args([NATIVE_ROOTS_CHILD, "--exact", "--ignored", "--nocapture"])
        .env("SSL_CERT_FILE", &file)
        .env(NATIVE_ROOTS_FILE, &file)
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "the child test failed or did not run ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[test]
#[ignore = "run in a child process, with SSL_CERT_FILE set, by \
            native_roots_trust_the_ca_in_ssl_cert_file_and_refuse_a_server_whose_ca_is_not_in_it"]
fn native_roots_in_a_child_process_whose_ssl_cert_file_is_set() {
    let file = PathBuf::from(std::env::var_os(NATIVE_ROOTS_FILE).unwrap_or_else(|| {
        panic!(
            "{NATIVE_ROOTS_FILE} is not set: this test runs only in the child process that \
             native_roots_trust_the_ca_in_ssl_cert_file_and_refuse_a_server_whose_ca_is_not_in_it \
             starts"
        )
    }));
    assert_eq!(
        std::env::var_os("SSL_CERT_FILE"),
        Some(file.clone().into_os_string()),
        "SSL_CERT_FILE is the file this test writes"
    );
    assert_eq!(std::env::var_os("SSL_CERT_DIR"), None);
    let ca = Ca::new("graphyte test CA in the system store");
    let other = Ca::new("another CA in the system store");
    let server = TlsServer::start(&ca.server(LOCAL_NAMES));
    let send = |value: u64| {
        // The trust store is read when the sender is built.
        let sender = tls_sender("localhost", server.port, TlsConfig::new().native_roots())
            .synchronous()
            .build()
            .unwrap();
        sender.try_send(metric("tls.native_roots", value))
    };

    // The file holds the server's CA: accepted.
    std::fs::write(&file, &ca.pem).unwrap();
    send(1).unwrap();
    assert_eq!(server.next_handshake(), Ok(()));
    let line = format!("tls.native_roots 1 {TS}\n");
    assert_eq!(server.wait_for_bytes(line.len()), line.as_bytes());

    // The file holds another CA only: refused, as not signed by a trusted CA.
    std::fs::write(&file, &other.pem).unwrap();
    let message = io_error(send(2)).to_string();
    assert!(
        message.contains("invalid peer certificate: UnknownIssuer"),
        "{message}"
    );
    assert!(
        server.next_handshake().is_err(),
        "the server saw a handshake"
    );
    assert_eq!(
        server.received(),
        line.as_bytes(),
        "bytes reached the server"
    );
}
