//! Carbon over TLS (feature `tls`): the TCP transport's connections, with a rustls session on
//! top.

use std::borrow::Cow;
use std::fmt;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::Error;
use crate::transport::tcp::{Connector, without_blocking};
use crate::transport::{SendSocket, Target};

/// How a [`TlsSocket`] verifies the server and, for mutual TLS, proves who the client is.
/// Given to [`Builder::tls`](crate::Builder::tls) or [`TlsSocket::new`].
///
/// By default the server's certificate must chain to one of the Mozilla roots bundled with
/// the crate (`webpki-roots`) and be valid for the host name the sender connects to.
/// [`native_roots`](TlsConfig::native_roots) uses the system's trust store instead;
/// [`ca_pem`](TlsConfig::ca_pem) and [`ca_file`](TlsConfig::ca_file) add a private CA;
/// [`client_auth_pem`](TlsConfig::client_auth_pem) presents a client certificate. Nothing is
/// read or checked until the sender is built: [`Builder::build`](crate::Builder::build)
/// returns what is wrong.
///
/// ```no_run
/// use graphyte::{Sender, TlsConfig};
///
/// let sender = Sender::builder("carbon.example.com")
///     .port(20030)
///     .tls(TlsConfig::new().ca_file("/etc/graphyte/carbon-ca.pem"))
///     .build()?;
/// sender.send("requests.ok", 42);
/// # Ok::<(), graphyte::Error>(())
/// ```
#[derive(Clone, Default)]
#[must_use = "a TLS configuration does nothing until given to a builder or a TlsSocket"]
pub struct TlsConfig {
    native_roots: bool,
    cas: Vec<Pem>,
    client_auth: Option<(Pem, Pem)>,
    server_name: Option<String>,
    accept_invalid_certs: bool,
}

/// PEM text, given or to be read from a file when the sender is built.
#[derive(Clone)]
enum Pem {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl fmt::Debug for TlsConfig {
    /// Shows what is configured, never the client's key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field(
                "roots",
                &if self.native_roots {
                    "system"
                } else {
                    "webpki-roots"
                },
            )
            .field("extra_cas", &self.cas.len())
            .field("client_auth", &self.client_auth.is_some())
            .field("server_name", &self.server_name)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish()
    }
}

impl TlsConfig {
    /// Verifies the server against the Mozilla roots bundled with the crate, and presents no
    /// client certificate.
    ///
    /// ```
    /// let config = graphyte::TlsConfig::new();
    /// # let _ = config;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies the server against the system's trust store (on Debian,
    /// `/etc/ssl/certs` from `ca-certificates`) instead of the bundled roots: for a CA your
    /// administrators install on every machine. Read when the sender is built.
    ///
    /// ```
    /// let config = graphyte::TlsConfig::new().native_roots();
    /// # let _ = config;
    /// ```
    pub fn native_roots(mut self) -> Self {
        self.native_roots = true;
        self
    }

    /// Also trusts the CA certificates in `pem` (one or more `-----BEGIN CERTIFICATE-----`
    /// blocks): for a Carbon whose certificate comes from a private CA. May be called more
    /// than once.
    ///
    /// ```
    /// # let ca_pem = b"-----BEGIN CERTIFICATE-----\n...";
    /// let config = graphyte::TlsConfig::new().ca_pem(ca_pem);
    /// # let _ = config;
    /// ```
    pub fn ca_pem(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.cas.push(Pem::Bytes(pem.as_ref().to_vec()));
        self
    }

    /// Also trusts the CA certificates of the PEM file at `path`, read when the sender is
    /// built. May be called more than once.
    ///
    /// ```
    /// let config = graphyte::TlsConfig::new().ca_file("/etc/graphyte/carbon-ca.pem");
    /// # let _ = config;
    /// ```
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cas.push(Pem::File(path.into()));
        self
    }

    /// Mutual TLS: presents the client certificate `cert_chain` (PEM: the client's
    /// certificate first, then any intermediates) with its private `key` (PEM: PKCS#8,
    /// PKCS#1 RSA or SEC1 EC) to a server that asks for one.
    ///
    /// ```
    /// # let (cert_pem, key_pem) = (b"-----BEGIN CERTIFICATE-----\n...", b"-----BEGIN PRIVATE KEY-----\n...");
    /// let config = graphyte::TlsConfig::new().client_auth_pem(cert_pem, key_pem);
    /// # let _ = config;
    /// ```
    pub fn client_auth_pem(mut self, cert_chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Self {
        self.client_auth = Some((
            Pem::Bytes(cert_chain.as_ref().to_vec()),
            Pem::Bytes(key.as_ref().to_vec()),
        ));
        self
    }

    /// Mutual TLS, as [`client_auth_pem`](TlsConfig::client_auth_pem), from PEM files read
    /// when the sender is built.
    ///
    /// ```
    /// let config = graphyte::TlsConfig::new()
    ///     .client_auth_files("/etc/graphyte/client.pem", "/etc/graphyte/client.key");
    /// # let _ = config;
    /// ```
    pub fn client_auth_files(
        mut self,
        cert_chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.client_auth = Some((Pem::File(cert_chain.into()), Pem::File(key.into())));
        self
    }

    /// The name the server's certificate must be valid for, and sent as SNI, when it is not
    /// the host connected to: connecting by IP address or through a tunnel to a server whose
    /// certificate names `carbon.example.com`, say. A DNS name or an IP address.
    ///
    /// ```
    /// let config = graphyte::TlsConfig::new().server_name("carbon.example.com");
    /// let sender = graphyte::Sender::builder("10.0.0.7").port(20030).tls(config).build()?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// **For test servers only.** Accepts any server certificate: self-signed, expired,
    /// issued for another name, by anyone. The connection is still encrypted, but anyone on
    /// the path can read and change the metrics by posing as the server. Use
    /// [`ca_pem`](TlsConfig::ca_pem) with the test server's certificate instead wherever you
    /// can.
    ///
    /// ```
    /// let config = graphyte::TlsConfig::new().danger_accept_invalid_certs();
    /// # let _ = config;
    /// ```
    pub fn danger_accept_invalid_certs(mut self) -> Self {
        self.accept_invalid_certs = true;
        self
    }

    /// The rustls configuration, with ring as its provider (no process-wide default needed),
    /// the roots and certificates read and checked.
    fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|_| Error::Config("TLS: the ring provider supports no TLS version"))?;
        let roots = self.roots()?;
        let builder = if self.accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        } else {
            builder.with_root_certificates(roots)
        };
        let config = match &self.client_auth {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => {
                let chain =
                    chain.read("the client certificate file (TlsConfig::client_auth_files)")?;
                let key = key.read("the client key file (TlsConfig::client_auth_files)")?;
                let chain = certificates(
                    &chain,
                    "TLS client certificate (client_auth_pem or client_auth_files): the \
                     certificate chain is not valid PEM; give the client's certificate, then \
                     its intermediates, as -----BEGIN CERTIFICATE----- blocks",
                    "TLS client certificate (client_auth_pem or client_auth_files): no \
                     certificate found; give the client's certificate, then its \
                     intermediates, as -----BEGIN CERTIFICATE----- blocks",
                )?;
                let key = PrivateKeyDer::from_pem_slice(&key).map_err(|err| {
                    Error::Config(match err {
                        pem::Error::NoItemsFound => {
                            "TLS client key (client_auth_pem or client_auth_files): no private \
                             key found; give the key as a -----BEGIN PRIVATE KEY----- (PKCS#8), \
                             RSA PRIVATE KEY or EC PRIVATE KEY block"
                        }
                        _ => {
                            "TLS client key (client_auth_pem or client_auth_files): not valid \
                             PEM; give the key as a -----BEGIN PRIVATE KEY----- (PKCS#8), RSA \
                             PRIVATE KEY or EC PRIVATE KEY block"
                        }
                    })
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|err| Error::Config(client_auth_problem(&err)))?
            }
        };
        Ok(Arc::new(config))
    }

    /// The trust anchors: the bundled or the system's, and the extra CAs.
    fn roots(&self) -> Result<RootCertStore, Error> {
        let mut roots = RootCertStore::empty();
        if self.native_roots {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(Error::Config(
                    "TlsConfig::native_roots: the system's trust store holds no usable CA \
                     certificate (on Debian: apt-get install ca-certificates); or leave \
                     native_roots out to use the bundled roots",
                ));
            }
        } else {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for ca in &self.cas {
            let pem = ca.read("the CA file (TlsConfig::ca_file)")?;
            let certs = certificates(
                &pem,
                "TLS CA (ca_pem or ca_file): not valid PEM; give the CA's certificate as a \
                 -----BEGIN CERTIFICATE----- block",
                "TLS CA (ca_pem or ca_file): no certificate found; give the CA's certificate \
                 as a -----BEGIN CERTIFICATE----- block",
            )?;
            for cert in certs {
                roots.add(cert).map_err(|_| {
                    Error::Config(
                        "TLS CA (ca_pem or ca_file): a certificate cannot be used as a CA \
                         (it is not a valid X.509 certificate)",
                    )
                })?;
            }
        }
        Ok(roots)
    }

    /// The name to verify the server's certificate against: the override, or the host.
    fn name_for(&self, host: &str) -> Result<ServerName<'static>, Error> {
        match &self.server_name {
            Some(name) => ServerName::try_from(name.clone()).map_err(|_| {
                Error::Config("TlsConfig::server_name: not a valid DNS name or IP address")
            }),
            None => ServerName::try_from(host.to_owned()).map_err(|_| {
                Error::Config(
                    "TLS: the host is not a valid DNS name or IP address to verify the \
                     server's certificate against; give the name its certificate holds with \
                     TlsConfig::server_name",
                )
            }),
        }
    }
}

impl Pem {
    /// The PEM text, read from its file now if it is one; `file` names that file's role in
    /// the error.
    fn read(&self, file: &str) -> Result<Cow<'_, [u8]>, Error> {
        match self {
            Pem::Bytes(bytes) => Ok(Cow::Borrowed(bytes)),
            Pem::File(path) => fs::read(path).map(Cow::Owned).map_err(|err| {
                Error::Io(io::Error::new(
                    err.kind(),
                    format!("reading {file} {}: {err}", path.display()),
                ))
            }),
        }
    }
}

/// Every certificate of `pem`; `bad` when it is not PEM, `none` when it holds no certificate.
fn certificates(
    pem: &[u8],
    bad: &'static str,
    none: &'static str,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::Config(bad))?;
    if certs.is_empty() {
        return Err(Error::Config(none));
    }
    Ok(certs)
}

/// What to fix when rustls refuses the client's certificate and key.
fn client_auth_problem(error: &rustls::Error) -> &'static str {
    match error {
        rustls::Error::InconsistentKeys(_) => {
            "TLS client certificate (client_auth_pem or client_auth_files): the private key \
             is not the certificate's; give the key the client's certificate was issued for"
        }
        _ => {
            "TLS client key (client_auth_pem or client_auth_files): the key cannot be used; \
             give an RSA, ECDSA (P-256 or P-384) or Ed25519 private key"
        }
    }
}

/// The verifier of [`TlsConfig::danger_accept_invalid_certs`]: any certificate is taken, but
/// the handshake's signatures are still checked against it.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Carbon's plaintext or pickle protocol inside TLS (rustls), over one persistent TCP
/// connection: what Hosted Graphite's port 20030, or stunnel in front of carbon-cache, reads.
///
/// Connections are opened as [`TcpSocket`](crate::TcpSocket)'s are, by the same code: the
/// host resolved again at every connection, each address tried in turn, `TCP_NODELAY`. The
/// TLS handshake follows within the same timeout, so a whole connection attempt (every
/// address, then the handshake) takes at most `timeout`, and a server that accepts the
/// connection but never completes the handshake cannot hold the sender longer. Before each
/// batch the connection is checked without waiting, as TCP's is: one the server closed
/// (`close_notify`, or end of stream) is replaced before any line is written to it.
///
/// # Errors it reports
///
/// Every failure to connect is "failed for now" (see [`SendSocket`]): the batch is kept and
/// tried again after a backoff, so a fixed certificate is picked up without a restart. The
/// error's message says what failed, such as `TLS handshake with carbon.example.com:20030
/// failed: invalid peer certificate: UnknownIssuer (...)`. A refused certificate is of kind
/// [`io::ErrorKind::Other`] (its message is the useful part), a handshake not completed in
/// time [`io::ErrorKind::TimedOut`], a server that hangs up during the handshake
/// [`io::ErrorKind::ConnectionAborted`]. Errors while writing are never "refused for good":
/// no frame of metrics is at fault for a broken TLS session.
///
/// In TLS 1.3 a server that requires a client certificate refuses a missing or untrusted
/// one after the client's side of the handshake is done: the first write then succeeds
/// locally and is lost with the connection (counted as
/// [`possibly_lost`](crate::Stats::possibly_lost)), and the server's alert (`received fatal
/// alert: CertificateRequired`, say) is reported by the next batch's check.
///
/// ```no_run
/// use std::time::Duration;
/// use graphyte::{Sender, TlsConfig, TlsSocket};
///
/// let socket = TlsSocket::new("carbon.example.com", 20030, Duration::from_secs(5), &TlsConfig::new())?;
/// let sender = Sender::builder("unused").socket(socket).build()?;
/// # Ok::<(), graphyte::Error>(())
/// ```
pub struct TlsSocket {
    connector: Connector,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    session: Option<Session>,
}

/// One TLS connection: the rustls state and the TCP stream under it.
struct Session {
    tls: ClientConnection,
    tcp: TcpStream,
    /// A write failed part way: a record may be cut short, so no `close_notify` can follow.
    broken: bool,
}

/// Most plaintext bytes one `send` takes: one TLS record's worth, so that a failed write
/// loses no more than the bytes it was given, and what `send` reports written reached the
/// socket.
const MAX_RECORD: usize = 16 * 1024;

impl fmt::Debug for TlsSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSocket")
            .field("target", &self.connector.target)
            .field("server_name", &self.server_name)
            .field("connected", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsSocket {
    /// A socket for `host:port` verifying and authenticating as `config` says; nothing is
    /// resolved or connected until the first batch. `timeout` bounds a whole connection
    /// attempt (every address of the host, then the handshake) and each write (one record, in
    /// however many system calls the server's pace takes).
    /// [`Builder::tls`](crate::Builder::tls) makes one of these.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let config = graphyte::TlsConfig::new().ca_file("/etc/graphyte/carbon-ca.pem");
    /// let socket = graphyte::TlsSocket::new("carbon.example.com", 20030, Duration::from_secs(5), &config)?;
    /// # let _ = socket;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`], with a message naming what to fix, for a CA or client certificate
    /// or key that is not usable PEM, a key that is not the certificate's, an empty system
    /// trust store, or a host (or [`server_name`](TlsConfig::server_name)) that is neither
    /// a DNS name nor an IP address; [`Error::Io`], naming the file, for a file that cannot
    /// be read.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        timeout: Duration,
        config: &TlsConfig,
    ) -> Result<Self, Error> {
        let host = host.into();
        let server_name = config.name_for(&host)?;
        Ok(TlsSocket {
            connector: Connector::new(Target::Host(host, port), timeout),
            config: config.client_config()?,
            server_name,
            session: None,
        })
    }

    /// Opens a TCP connection by the shared connect logic and completes the handshake on it,
    /// all before one deadline.
    fn open(&self) -> io::Result<Session> {
        let deadline = self.connector.deadline();
        let tcp = self.connector.open(deadline)?;
        let target = &self.connector.target;
        let tls = ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
            .map_err(|err| handshake_failed(target, &err))?;
        let mut session = Session {
            tls,
            tcp,
            broken: false,
        };
        session.handshake(deadline, target, self.connector.timeout)?;
        // From now on reads only happen in `check`, without blocking; writes have the timeout.
        session.tcp.set_read_timeout(None)?;
        session
            .tcp
            .set_write_timeout(Some(self.connector.timeout))?;
        Ok(session)
    }
}

impl Session {
    /// Drives the handshake until it is complete and flushed, each read and write bounded by
    /// what is left before `deadline`.
    fn handshake(
        &mut self,
        deadline: Instant,
        target: &Target,
        timeout: Duration,
    ) -> io::Result<()> {
        let timed_out = || {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "TLS handshake with {target} timed out: the server did not complete it \
                     within the timeout ({timeout:?}); is this a TLS port?"
                ),
            )
        };
        let io_failed = |err: io::Error| {
            io::Error::new(
                err.kind(),
                format!("TLS handshake with {target} failed: {err}"),
            )
        };
        while self.tls.is_handshaking() || self.tls.wants_write() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            if self.tls.wants_write() {
                self.tcp.set_write_timeout(Some(left))?;
                match self.tls.write_tls(&mut self.tcp) {
                    Ok(_) => continue,
                    Err(err) if is_timeout(&err) => return Err(timed_out()),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(io_failed(err)),
                }
            }
            self.tcp.set_read_timeout(Some(left))?;
            match self.tls.read_tls(&mut self.tcp) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!(
                            "TLS handshake with {target} failed: the server closed the \
                             connection; is this a TLS port?"
                        ),
                    ));
                }
                Ok(_) => {}
                Err(err) if is_timeout(&err) => return Err(timed_out()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(io_failed(err)),
            }
            if let Err(err) = self.tls.process_new_packets() {
                // Tell the server why, if it listens.
                let _ = self.tls.write_tls(&mut self.tcp);
                return Err(handshake_failed(target, &err));
            }
        }
        Ok(())
    }

    /// Reads, without waiting, what the server sent since the last look: `Ok(true)` while the
    /// connection is open, `Ok(false)` once the server closed it, an error for a fatal alert
    /// (the server refused something) or a broken TLS stream. Session tickets and anything
    /// else the server sends are consumed and dropped.
    fn check(&mut self, target: &Target) -> io::Result<bool> {
        let Session { tls, tcp, .. } = self;
        without_blocking(tcp, |mut tcp| {
            loop {
                let read = tls.read_tls(&mut tcp);
                let state = tls.process_new_packets().map_err(|err| {
                    io::Error::other(format!(
                        "the TLS connection to {target} was ended by the server: {err}{}",
                        hint(&err)
                    ))
                })?;
                let waiting = state.plaintext_bytes_to_read();
                if waiting > 0 {
                    io::copy(&mut tls.reader().take(waiting as u64), &mut io::sink())?;
                }
                if state.peer_has_closed() {
                    return Ok(false);
                }
                match read {
                    Ok(0) => return Ok(false),
                    Ok(_) => {}
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Ok(false),
                }
            }
        })
    }

    /// Writes everything rustls holds for the server before `deadline`. Each write waits at
    /// most what is left until then: a server that takes a few bytes now and then (a full
    /// receive window) cannot hold the caller for a timeout per write.
    fn flush(&mut self, deadline: Instant, target: &Target, timeout: Duration) -> io::Result<()> {
        while self.tls.wants_write() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "TLS write to {target} timed out: the server did not take the data \
                         within the timeout ({timeout:?})"
                    ),
                ));
            }
            self.tcp.set_write_timeout(Some(left))?;
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// A read or write that ran into its timeout (Unix says `WouldBlock`, Windows `TimedOut`).
fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A handshake refused by either side: what failed, with a hint on what to fix.
fn handshake_failed(target: &Target, err: &rustls::Error) -> io::Error {
    io::Error::other(format!(
        "TLS handshake with {target} failed: {err}{}",
        hint(err)
    ))
}

/// What to do about the common TLS failures, for the message that reports them.
fn hint(err: &rustls::Error) -> &'static str {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            " (the server's certificate is not signed by a trusted CA: add its CA with \
             TlsConfig::ca_pem or ca_file)"
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            " (connect by a name the certificate holds, or set it with \
             TlsConfig::server_name)"
        }
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            " (the server requires a client certificate: set TlsConfig::client_auth_pem or \
             client_auth_files)"
        }
        rustls::Error::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown,
        ) => " (the server refused the client certificate)",
        _ => "",
    }
}

impl SendSocket for TlsSocket {
    /// Encrypts and writes up to one TLS record (16 KiB) of `buf`, within the timeout.
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(session) = &mut self.session else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let deadline = self.connector.deadline();
        let chunk = &buf[..buf.len().min(MAX_RECORD)];
        let written = session.tls.writer().write(chunk).map_err(failed_for_now)?;
        let (target, timeout) = (&self.connector.target, self.connector.timeout);
        if let Err(err) = session.flush(deadline, target, timeout) {
            session.broken = true;
            return Err(failed_for_now(err));
        }
        Ok(written)
    }

    fn connect(&mut self) -> io::Result<bool> {
        if let Some(session) = &mut self.session {
            match session.check(&self.connector.target) {
                Ok(true) => return Ok(false),
                Ok(false) => {}
                Err(err) => {
                    self.session = None;
                    return Err(err);
                }
            }
        }
        self.session = None;
        self.session = Some(self.open()?);
        Ok(true)
    }

    /// Ends the session with a `close_notify`, without waiting for the server, and closes the
    /// connection.
    fn disconnect(&mut self) {
        if let Some(mut session) = self.session.take() {
            if session.broken {
                return;
            }
            session.tls.send_close_notify();
            let Session { tls, tcp, .. } = &mut session;
            let _ = without_blocking(tcp, |mut tcp| tls.write_tls(&mut tcp));
        }
    }
}

impl Drop for TlsSocket {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// The error of a write, never of a kind that says "refused for good": a broken TLS session
/// says nothing against the metrics being written.
fn failed_for_now(err: io::Error) -> io::Error {
    match err.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("TLS write failed: {err}"),
        ),
        _ => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA certificate, in PEM.
    fn ca_pem() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "graphyte unit test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn the_default_roots_are_every_root_bundled_in_webpki_roots() {
        let roots = TlsConfig::new().roots().unwrap();
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        assert_eq!(roots.roots, webpki_roots::TLS_SERVER_ROOTS);
    }

    #[test]
    fn a_custom_ca_is_trusted_besides_the_bundled_roots() {
        let roots = TlsConfig::new().ca_pem(ca_pem()).roots().unwrap();
        let bundled = webpki_roots::TLS_SERVER_ROOTS;
        assert_eq!(roots.len(), bundled.len() + 1);
        assert_eq!(&roots.roots[..bundled.len()], bundled);
    }
}
