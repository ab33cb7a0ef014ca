//! The TLS transport (feature `tls`), driven through a real `Sender` against an in-process
//! rustls server in front of a byte sink, on 127.0.0.1. Certificates (a CA for servers, one
//! for clients, and the leaves they issue) are made at run time with rcgen. No test needs the
//! network, and none sleeps: each waits on an event (a handshake reported by the server, bytes
//! received, a connection closed) with a deadline.

mod support;

use std::io::{self, Read as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use graphyte::{Error, Metric, Sender, TlsConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};
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
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
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
    let sender = tls_sender("localhost", server.port, TlsConfig::new())
        .synchronous()
        .build()
        .unwrap();
    let err = io_error(sender.try_send(metric("tls.untrusted", 1)));
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "TLS handshake with localhost:{} failed: invalid peer certificate: UnknownIssuer",
            server.port
        )),
        "{message}"
    );
    assert!(
        server.next_handshake().is_err(),
        "the server saw a handshake"
    );
    assert_eq!(server.received(), b"", "bytes reached the server");
    assert_eq!(sender.stats().sent, 0);
}

#[test]
fn a_certificate_for_another_host_name_is_refused() {
    let ca = Ca::new("graphyte test CA");
    let server = TlsServer::start(&ca.server(&["carbon.example.com"]));
    let sender = tls_sender("localhost", server.port, TlsConfig::new().ca_pem(&ca.pem))
        .synchronous()
        .build()
        .unwrap();
    let message = io_error(sender.try_send(metric("tls.wrong_name", 1))).to_string();
    assert!(
        message.contains("invalid peer certificate: certificate not valid for name \"localhost\""),
        "{message}"
    );
    assert!(
        server.next_handshake().is_err(),
        "the server saw a handshake"
    );
    assert_eq!(server.received(), b"", "bytes reached the server");
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
    let sender = tls_sender("localhost", server.port, TlsConfig::new().ca_pem(&ca.pem))
        .interval(HOUR)
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

#[test]
fn the_bundled_roots_load_without_connecting() {
    // Building reads the roots; nothing connects until the first batch.
    let sender = Sender::builder("carbon.example.com")
        .port(20030)
        .tls(TlsConfig::new())
        .build()
        .unwrap();
    assert_eq!(sender.stats().reconnects, 0);
}
