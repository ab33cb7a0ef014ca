//! The HTTP sink (feature `http`): each frame of plaintext lines is POSTed to a URL, as
//! Hosted Graphite's (MetricFire's) `/api/v1/sink` takes them, over ureq (rustls for https).

use std::fmt;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use ureq::Agent;
use ureq::http::{Response, StatusCode, Uri};

use crate::error::Error;
use crate::report::report;
use crate::transport::SendSocket;
use crate::web::{base64, percent_decode};

/// How long one POST may take, answer included, unless set with the builder's `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A longer timeout is taken as "practically forever": ureq adds it to the current time,
/// which must not overflow.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The most of an answer's body read (for its reason, or to reuse the connection).
const MAX_ANSWER: u64 = 64 * 1024;

/// The most characters of a server's reason kept in an error message.
const MAX_REASON: usize = 300;

/// The body's type. Not a form (`application/x-www-form-urlencoded`, what `curl --data`
/// sends): a server reading a form would decode `%XX` and `+` in the lines, which mangles
/// the names that [`NameEncoder::Escape`](crate::NameEncoder::Escape) writes. UTF-8, as
/// [`NameEncoder::Compatible`](crate::NameEncoder::Compatible) keeps non-ASCII letters.
const CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Shown instead of a secret.
const HIDDEN: &str = "<hidden>";

/// Carbon's plaintext lines, POSTed over HTTP(S): Hosted Graphite's (MetricFire's) HTTP API,
/// or any sink that takes lines in a request body. A [`SendSocket`]: give it to
/// [`Builder::socket`](crate::Builder::socket). Built by [`HttpSocket::builder`]; the
/// feature `http` adds it.
///
/// ```no_run
/// use graphyte::{HttpSocket, Sender};
///
/// let key = std::env::var("HOSTEDGRAPHITE_APIKEY").expect("an API key");
/// let sender = Sender::builder("unused") // host and port are unused with a socket of one's own
///     .socket(HttpSocket::builder(HttpSocket::HOSTED_GRAPHITE).api_key(&key).build()?)
///     .build()?;
/// sender.send("requests.ok", 42);
/// sender.flush()?;
/// # Ok::<(), graphyte::Error>(())
/// ```
///
/// # Options
///
/// Set on the builder [`HttpSocket::builder`] returns, then `build()`:
///
/// | Call | Default | What it does |
/// |---|---|---|
/// | `.api_key(key)` | none | Hosted Graphite's key: the basic-auth user, with an empty password; never shown |
/// | `.basic_auth(user, password)` | none | basic auth for other sinks (Grafana Cloud: instance ID and token); neither is shown. An empty password makes the user an API key |
/// | `.header(name, value)` | none | a header on every POST (`Authorization: Bearer ...`); its value is never shown |
/// | `.timeout(d)` | 10 s | bounds one POST, from connecting to reading the answer |
/// | `.gzip(bool)` | off | `Content-Encoding: gzip` bodies, turned off if the server refuses them |
///
/// `build()` returns [`Error::Config`] for a URL that is not `http` or `https` with a host,
/// an empty key, an invalid header, or a zero timeout. It logs a warning, once, when
/// credentials (a key, basic auth or an `Authorization` header) would go over plain `http`
/// to a host that is not loopback (see [Logs and secrets](#logs-and-secrets)).
///
/// # Batches
///
/// One frame is one POST, its body the frame's lines exactly (`name value timestamp\n`
/// each). A frame holds at most the sender's
/// [`batch_size`](crate::Builder::batch_size) metrics (default 1000) and at most its
/// [`max_frame`](crate::Builder::max_frame) bytes (default 1 MiB): lower these if the server
/// limits the size of a request (it answers 413). A background sender POSTs what was queued
/// within an interval together; a synchronous one POSTs every send, and every batch of
/// [`send_batch`](crate::Sender::send_batch), on its own.
///
/// The sender's host, port, transport and `max_datagram` are then unused, and its
/// [`timeout`](crate::Builder::timeout) bounds only flush and shutdown: a POST is bounded by
/// this socket's own `.timeout(d)`.
///
/// **Plaintext only.** A sink takes lines, and a pickle frame is not lines: with
/// [`Protocol::Pickle`](crate::Protocol::Pickle) every frame is refused for good (an error of
/// kind [`InvalidInput`](io::ErrorKind::InvalidInput), counted in
/// [`Stats::failed`](crate::Stats::failed) and logged). The socket cannot ask the sender its
/// protocol, so this is found at the first batch, not when building: leave the protocol at
/// its default.
///
/// # What an answer means
///
/// Each POST ends in one of the three outcomes of a [`SendSocket`] write:
///
/// | Answer | Outcome | Error kind |
/// |---|---|---|
/// | 2xx (Hosted Graphite: 202 Accepted) | sent | — |
/// | 3xx (not followed: the body is not POSTed again elsewhere, nothing goes to its `Location`) | refused for good: the URL is wrong | `InvalidData` |
/// | 408 Request Timeout | failed for now, kept while it lasts | `TimedOut` |
/// | 429 Too Many Requests | failed for now, kept while it lasts | `WouldBlock` |
/// | 415 Unsupported Media Type to a gzip body | gzip off from then on; the same lines POSTed again at once, uncompressed, and that answer counts | — |
/// | any other 4xx: 400 (with Hosted Graphite's reason), 401/403 (a bad key), 404, 413, 415 to a plain body, … | refused for good: dropped, counted as failed, the next frames go on; never POSTed again | `InvalidData` |
/// | 504 Gateway Timeout | failed for now, kept while it lasts | `TimedOut` |
/// | 500, 502, 503 and every other 5xx (or a status outside 200–599) | failed for now, kept while it lasts | `WouldBlock` |
/// | a refused connection | failed for now, kept while it lasts | `ConnectionRefused` |
/// | a host that does not resolve | failed for now, kept while it lasts | `NotFound` |
/// | an unreachable host or network | failed for now, kept while it lasts | `HostUnreachable`, `NetworkUnreachable` |
/// | no answer within the timeout | failed for now, kept while it lasts | `TimedOut` |
/// | a TLS failure (an untrusted certificate, a failed handshake), a connection reset or closed before the answer, a proxy that failed | failed for now, kept while it lasts | `NotConnected` |
/// | an answer that is not HTTP (malformed, truncated headers) | failed for now, kept while it lasts | `WouldBlock` |
/// | the client's own errors (a URL or header ureq will not send) | failed for now: retried, given up after 5 in a row | `Other` |
///
/// A refusal is of the whole POST: its frame's metrics are all counted as failed, whatever
/// the server may have kept of them, where Carbon over TCP would skip only a bad line. Hosted
/// Graphite's name rules leave out `;`, so Graphite's tags may be refused there.
///
/// "Failed for now" means what it means for TCP: the lines are kept and POSTed again after
/// the sender's backoff (100 ms doubling to 5 s by default), counted in
/// [`Stats::errors`](crate::Stats::errors) each time. 429 is retried rather than refused:
/// the server asks to slow down, not to drop the lines, and the backoff does slow down
/// (`Retry-After` is not read). "Kept while it lasts" means the error says the server is
/// unreachable, failing or slow (the kinds [`SendSocket`] documents as such), so an HTTP
/// outage keeps the lines however long it lasts (newer metrics queue up to the sender's
/// capacity behind them, then are dropped and counted in
/// [`Stats::dropped`](crate::Stats::dropped)), as a TCP outage does: every answer and
/// failure that is the server's or the network's is of such a kind. The other side of it: a
/// frame the server fails on every time (a 500 the lines themselves cause) holds up the
/// frames behind it until the server is fixed, where a 4xx would have dropped it. Only the
/// client's own errors count toward giving a frame up after 5 failures in a row.
///
/// A POST that fails after its body went out (a timeout, a reset before the answer) may
/// have been stored all the same: its retry can store the lines twice, as a resent TCP
/// write can. An answer is never followed by a second POST of the same lines, but for the
/// 415 above (the server stored nothing it could not decode).
///
/// In synchronous mode, as over TCP, nothing retries: a failed POST's error goes back to the
/// caller, its metrics are counted as failed, and sends during the backoff that follows fail
/// at once without a request.
///
/// An error's message holds the URL (without credentials or query), the status and the
/// server's reason, on one line and at most 300 characters. It never holds the API key, the
/// basic-auth user or password, their base64 (the `Authorization` header's) or a header's
/// value: they are cut out of the reason and of the transport's error too, should they
/// echo them.
///
/// # gzip
///
/// With `.gzip(true)`, bodies are compressed and sent with `Content-Encoding: gzip`. It is
/// off by default: a server that does not decode it would read compressed bytes as lines,
/// and store nothing. When the server answers 415 Unsupported Media Type to a compressed
/// body, the socket turns gzip off for good, logs a warning once, and POSTs the same lines
/// again uncompressed at once. Only a 415 does: a 400 is a refusal of the lines, whatever
/// its reason says (it may quote a metric such as `app.compress.ratio`), and the server may
/// have stored some of them, so they are never POSTed again and gzip stays on.
///
/// # Connections
///
/// One ureq agent for the socket's life: connections are kept alive and reused, the host
/// resolved again for each new one. Redirects are not followed. A proxy named by the
/// environment (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`) is used as ureq uses it. The
/// sender's `reconnects` counter stays at 0 with this socket (it cannot tell when ureq opens
/// a new connection).
///
/// # Logs and secrets
///
/// graphyte's log lines and this socket's errors and `Debug` never hold the key, the
/// basic-auth user or password, or a header's value; `Debug` shows only which kind of
/// credentials is set (`ApiKey(<hidden>)`, `Basic(<hidden>)`). ureq logs requests at `debug`
/// level with only the headers it knows to be harmless; at `trace` level (targets `ureq` and
/// `ureq_proto`) it dumps every byte on the wire unredacted, the `Authorization` header
/// included: never turn `trace` on for those targets where the logs are kept.
///
/// Over plain `http://` the credentials cross the network as they are (basic auth is
/// base64, not encryption). `build()` does not refuse it, for a sink on a trusted network,
/// but logs a warning once when a key, basic auth or an `Authorization` header would go to
/// a host that is not loopback (`localhost`, `127.0.0.0/8`, `[::1]`). Use `https`.
pub struct HttpSocket {
    url: String,
    agent: Agent,
    auth: Auth,
    /// The `Authorization` header's value, if any.
    authorization: Option<String>,
    headers: Vec<(String, String)>,
    /// What [`HttpSocket::redact`] cuts out: see [`secrets_of`].
    secrets: Vec<String>,
    timeout: Duration,
    gzip: bool,
    /// The compressed body, reused from one POST to the next.
    compressed: Vec<u8>,
}

/// The credentials: the API key, or a user and a password.
#[derive(Clone, Default)]
enum Auth {
    #[default]
    None,
    /// Hosted Graphite's: the key as the basic-auth user, an empty password.
    ApiKey(String),
    /// A user and a non-empty password.
    Basic { user: String, password: String },
}

impl Auth {
    /// Basic auth with `user` and `password`: a user with an empty password is an API key
    /// (Hosted Graphite's `https://KEY:@host`, or `.basic_auth(key, "")`), kept as secret as
    /// one.
    fn basic(user: String, password: String) -> Auth {
        if password.is_empty() {
            Auth::ApiKey(user)
        } else {
            Auth::Basic { user, password }
        }
    }

    /// The `Authorization` header for these credentials.
    fn header(&self) -> Option<String> {
        let userinfo = match self {
            Auth::None => return None,
            Auth::ApiKey(key) => format!("{key}:"),
            Auth::Basic { user, password } => format!("{user}:{password}"),
        };
        Some(format!("Basic {}", base64(userinfo.as_bytes())))
    }

    /// The credentials' parts, to cut out of anything shown.
    fn parts(&self) -> Vec<&str> {
        match self {
            Auth::None => Vec::new(),
            Auth::ApiKey(key) => vec![key],
            Auth::Basic { user, password } => vec![user, password],
        }
    }
}

impl fmt::Debug for Auth {
    /// Which kind of credentials are set; never the key, the user or the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::ApiKey(_) => write!(f, "ApiKey({HIDDEN})"),
            Auth::Basic { .. } => write!(f, "Basic({HIDDEN})"),
        }
    }
}

/// Every text to cut out of what is shown: the credentials' parts, each in base64 too, the
/// `Authorization` header's credentials (base64 of `user:password`), and the headers'
/// values. Longest first, so that a secret holding another is cut out whole; none shorter
/// than 4 bytes (too short to be a secret worth hiding, and hiding it would hide everything).
fn secrets_of(
    auth: &Auth,
    authorization: Option<&str>,
    headers: &[(String, String)],
) -> Vec<String> {
    let parts = auth.parts();
    let mut secrets: Vec<String> = parts
        .iter()
        .map(|part| (*part).to_owned())
        .chain(parts.iter().map(|part| base64(part.as_bytes())))
        .chain(authorization.map(|a| a.trim_start_matches("Basic ").to_owned()))
        .chain(headers.iter().map(|(_, value)| value.clone()))
        .filter(|secret| secret.len() >= 4)
        .collect();
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    secrets.dedup();
    secrets
}

/// Headers shown by name only: their values may be secrets (a bearer token).
struct HeaderNames<'a>(&'a [(String, String)]);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| format!("{name}: {HIDDEN}")))
            .finish()
    }
}

impl fmt::Debug for HttpSocket {
    /// The URL (without credentials or query), whether credentials are set, and the headers'
    /// names; never the key, the password or a header's value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSocket")
            .field("url", &shown_url(&self.url))
            .field("auth", &self.auth)
            .field("headers", &HeaderNames(&self.headers))
            .field("timeout", &self.timeout)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

/// How to reach an HTTP sink: see [`HttpSocket::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use graphyte::HttpSocket;
///
/// let socket = HttpSocket::builder("https://www.hostedgraphite.com/api/v1/sink")
///     .api_key(&std::env::var("HOSTEDGRAPHITE_APIKEY").unwrap_or_default())
///     .timeout(Duration::from_secs(5))
///     .gzip(true)
///     .build()?;
/// # Ok::<(), graphyte::Error>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct HttpSocketBuilder {
    url: String,
    auth: Auth,
    headers: Vec<(String, String)>,
    timeout: Duration,
    gzip: bool,
}

impl fmt::Debug for HttpSocketBuilder {
    /// The URL (without credentials or query), whether credentials are set, and the headers'
    /// names; never the key, the password or a header's value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSocketBuilder")
            .field("url", &shown_url(&self.url))
            .field("auth", &self.auth)
            .field("headers", &HeaderNames(&self.headers))
            .field("timeout", &self.timeout)
            .field("gzip", &self.gzip)
            .finish()
    }
}

impl HttpSocket {
    /// Hosted Graphite's (MetricFire's) HTTP sink:
    /// `https://www.hostedgraphite.com/api/v1/sink`. It answers 202 Accepted to lines it
    /// takes, and 400 with a reason to lines it does not. Metric names go without the API key
    /// in front (unlike over TCP or UDP): the key goes in `.api_key(key)`.
    pub const HOSTED_GRAPHITE: &'static str = "https://www.hostedgraphite.com/api/v1/sink";

    /// A socket that POSTs to `url` (`http` or `https`, with the sink's path), to be set up
    /// and built: see the methods of the builder it returns. Nothing is checked or connected
    /// until `build` and the first batch.
    ///
    /// Credentials in the URL (`https://KEY@www.hostedgraphite.com/api/v1/sink`, as Hosted
    /// Graphite's curl examples write it) are taken out of it and sent as basic auth: the user
    /// alone, or with an empty password (`https://KEY:@...`), as an API key, `user:password`
    /// as `.basic_auth(user, password)`. An explicit `.api_key` or `.basic_auth` overrides
    /// them.
    ///
    /// ```no_run
    /// use graphyte::{HttpSocket, Sender};
    ///
    /// // Grafana Cloud's Graphite endpoint: an instance ID and a token.
    /// let socket = HttpSocket::builder("https://graphite-prod-01-eu-west-0.grafana.net/graphite/metrics")
    ///     .basic_auth("123456", &std::env::var("GRAFANA_TOKEN").unwrap_or_default())
    ///     .build()?;
    /// let sender = Sender::builder("unused").socket(socket).build()?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn builder(url: impl Into<String>) -> HttpSocketBuilder {
        HttpSocketBuilder {
            url: url.into(),
            auth: Auth::None,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            gzip: false,
        }
    }

    /// The URL POSTed to, without credentials.
    ///
    /// ```
    /// let socket = graphyte::HttpSocket::builder("https://KEY@sink.example.com/api/v1/sink").build()?;
    /// assert_eq!(socket.url(), "https://sink.example.com/api/v1/sink");
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether bodies are compressed: set by the builder's `.gzip(true)`, turned off for
    /// good when the server refuses a compressed body.
    ///
    /// ```
    /// let socket = graphyte::HttpSocket::builder("http://localhost:8080/sink").gzip(true).build()?;
    /// assert!(socket.gzip());
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    #[must_use]
    pub fn gzip(&self) -> bool {
        self.gzip
    }
}

impl HttpSocketBuilder {
    /// Hosted Graphite's API key: sent as the basic-auth user, with an empty password, on
    /// every POST. Never shown by `Debug`, an error or a log line.
    ///
    /// ```no_run
    /// let socket = graphyte::HttpSocket::builder(graphyte::HttpSocket::HOSTED_GRAPHITE)
    ///     .api_key(&std::env::var("HOSTEDGRAPHITE_APIKEY").expect("an API key"))
    ///     .build()?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn api_key(mut self, key: &str) -> HttpSocketBuilder {
        self.auth = Auth::ApiKey(key.to_owned());
        self
    }

    /// HTTP basic authentication with a user and a password, for other sinks (Grafana
    /// Cloud's Graphite endpoint takes an instance ID and a token). Replaces an
    /// `.api_key(key)`. Neither the user nor the password is shown by `Debug`, an error or a
    /// log line. A user with an empty password is an API key, as `.api_key(user)` sets it.
    ///
    /// ```
    /// let socket = graphyte::HttpSocket::builder("https://sink.example.com/metrics")
    ///     .basic_auth("123456", "glc_token")
    ///     .build()?;
    /// let shown = format!("{socket:?}");
    /// assert!(!shown.contains("glc_token") && !shown.contains("123456"));
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn basic_auth(mut self, user: &str, password: &str) -> HttpSocketBuilder {
        self.auth = Auth::basic(user.to_owned(), password.to_owned());
        self
    }

    /// A header sent with every POST, such as `Authorization: Bearer <token>` for a sink
    /// that takes a token instead of basic auth. Its value is never shown by `Debug`, an
    /// error or a log line. `Content-Type`, `Content-Encoding` and `Content-Length` are the
    /// socket's own.
    ///
    /// ```
    /// let socket = graphyte::HttpSocket::builder("https://sink.example.com/metrics")
    ///     .header("Authorization", "Bearer 123456:glc_token")
    ///     .build()?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> HttpSocketBuilder {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// How long one POST may take, from connecting to reading the answer (default 10 s).
    /// In synchronous mode a send waits up to this long. A huge value is taken as "no
    /// limit".
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = graphyte::HttpSocket::builder("https://sink.example.com/metrics")
    ///     .timeout(Duration::from_secs(30));
    /// # let _ = builder;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> HttpSocketBuilder {
        self.timeout = timeout;
        self
    }

    /// Compresses bodies with gzip (`Content-Encoding: gzip`); off by default. Turn it on
    /// for a server known to decode it: lines compress to a fifth or less. If the server
    /// refuses a compressed body (415 Unsupported Media Type), the socket turns it off and
    /// sends uncompressed from then on (see [`HttpSocket`]).
    ///
    /// ```
    /// let builder = graphyte::HttpSocket::builder("https://sink.example.com/metrics").gzip(true);
    /// # let _ = builder;
    /// ```
    pub fn gzip(mut self, gzip: bool) -> HttpSocketBuilder {
        self.gzip = gzip;
        self
    }

    /// The socket, ready to give to [`Builder::socket`](crate::Builder::socket). Nothing is
    /// connected until the first batch.
    ///
    /// ```
    /// let err = graphyte::HttpSocket::builder("carbon.example.com:2003").build().unwrap_err();
    /// assert!(matches!(err, graphyte::Error::Config(_)));
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the URL is not an `http` or `https` URL with a host (or has a
    /// `#fragment`), the API key is empty, a header is not a valid HTTP header or is one of
    /// the socket's own (`Content-Type`, `Content-Encoding`, `Content-Length`), an
    /// `Authorization` header is given along with an API key or basic auth, or the timeout
    /// is zero.
    ///
    /// Credentials (an API key, basic auth, an `Authorization` header) for a plain `http://`
    /// URL whose host is not loopback (`localhost`, `127.0.0.0/8`, `[::1]`) are not an error,
    /// but a warning is logged here, once: anyone on the path can read them. Use `https`.
    pub fn build(self) -> Result<HttpSocket, Error> {
        let SinkUrl {
            url,
            auth: url_auth,
            plain_remote,
        } = sink_url(&self.url)?;
        let auth = match self.auth {
            Auth::None => url_auth,
            auth => auth,
        };
        if matches!(&auth, Auth::ApiKey(key) if key.is_empty()) {
            return Err(Error::Config(
                "HTTP sink: the API key (or the basic-auth user with an empty password) is empty",
            ));
        }
        for (name, value) in &self.headers {
            let valid = ureq::http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && ureq::http::HeaderValue::from_str(value).is_ok();
            if !valid {
                return Err(Error::Config(
                    "HTTP sink: a header is not a valid HTTP header name and value",
                ));
            }
            let own = ["content-type", "content-encoding", "content-length"];
            if own.iter().any(|own| name.eq_ignore_ascii_case(own)) {
                return Err(Error::Config(
                    "HTTP sink: Content-Type, Content-Encoding and Content-Length are set by \
                     the socket, not by a header",
                ));
            }
            if name.eq_ignore_ascii_case("authorization") && !matches!(auth, Auth::None) {
                return Err(Error::Config(
                    "HTTP sink: an Authorization header along with an API key or basic auth; \
                     use one",
                ));
            }
        }
        if self.timeout.is_zero() {
            return Err(Error::Config("HTTP sink: a zero timeout"));
        }
        let has_authorization = self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("authorization"));
        if plain_remote && (!matches!(auth, Auth::None) || has_authorization) {
            report!(
                Warn,
                "HTTP sink {}: credentials will be sent over plain http to a host that is not \
                 loopback, readable by anyone on the path; use an https URL",
                shown_url(&url)
            );
        }
        let agent: Agent = Agent::config_builder()
            .timeout_global(Some(self.timeout.min(LONGEST_TIMEOUT)))
            .http_status_as_error(false)
            // A redirected POST would go without its body or its credentials.
            .max_redirects(0)
            .user_agent(concat!("graphyte/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let authorization = auth.header();
        Ok(HttpSocket {
            url,
            agent,
            secrets: secrets_of(&auth, authorization.as_deref(), &self.headers),
            authorization,
            auth,
            headers: self.headers,
            timeout: self.timeout,
            gzip: self.gzip,
            compressed: Vec::new(),
        })
    }
}

/// A sink's URL, read by [`sink_url`].
struct SinkUrl {
    /// The URL without credentials.
    url: String,
    /// The credentials it held.
    auth: Auth,
    /// Whether it is plain `http` to a host that is not loopback: credentials sent there
    /// can be read on the way.
    plain_remote: bool,
}

/// The URL without credentials, and the credentials it held (the user alone, or a user with
/// an empty password, is an API key).
fn sink_url(url: &str) -> Result<SinkUrl, Error> {
    let uri: Uri = url.parse().map_err(|_| {
        Error::Config("HTTP sink URL: not a URL (e.g. https://www.hostedgraphite.com/api/v1/sink)")
    })?;
    let scheme = uri.scheme_str().unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        return Err(Error::Config(
            "HTTP sink URL: it must start with http:// or https://",
        ));
    }
    let Some(authority) = uri.authority() else {
        return Err(Error::Config("HTTP sink URL: no host"));
    };
    if url.contains('#') {
        return Err(Error::Config(
            "HTTP sink URL: a URL to POST to takes no #fragment",
        ));
    }
    let (auth, host) = match authority.as_str().rsplit_once('@') {
        Some((userinfo, host)) => {
            let auth = match userinfo.split_once(':') {
                Some((user, password)) => {
                    Auth::basic(percent_decode(user), percent_decode(password))
                }
                None => Auth::ApiKey(percent_decode(userinfo)),
            };
            (auth, host)
        }
        None => (Auth::None, authority.as_str()),
    };
    if host.is_empty() || host.starts_with(':') {
        return Err(Error::Config("HTTP sink URL: no host"));
    }
    // After an IPv6 address's brackets, if any: `:port`.
    let after_address = host.rsplit_once(']').map_or(host, |(_, rest)| rest);
    if let Some((_, port)) = after_address.rsplit_once(':')
        && port.parse::<u16>().is_err()
    {
        return Err(Error::Config(
            "HTTP sink URL: the port is not a number from 0 to 65535",
        ));
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let path = if path.is_empty() { "/" } else { path };
    Ok(SinkUrl {
        url: format!("{scheme}://{host}{path}"),
        auth,
        plain_remote: scheme == "http" && !is_loopback(host),
    })
}

/// Whether a URL's `host[:port]` names this machine: `localhost`, an address in
/// `127.0.0.0/8`, or `[::1]` (or an IPv4-mapped loopback address). Other names are not
/// resolved to find out.
fn is_loopback(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed
            .split_once(']')
            .map_or(bracketed, |(host, _)| host),
        None => host_port
            .rsplit_once(':')
            .map_or(host_port, |(host, _)| host),
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// A URL as shown by `Debug` and in errors: without credentials (`user:password@`) or a
/// query (`?token=...`), either of which may be a secret. Textual, so that it works on a URL
/// that does not parse too.
fn shown_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = rest
        .find(['/', '?', '#'])
        .map_or((rest, ""), |at| rest.split_at(at));
    let host = authority
        .rsplit_once('@')
        .map_or(authority.to_owned(), |(_, host)| format!("{HIDDEN}@{host}"));
    let path = match path.find(['?', '#']) {
        Some(at) => format!("{}?{HIDDEN}", &path[..at]),
        None => path.to_owned(),
    };
    let scheme = if url.contains("://") {
        format!("{scheme}://")
    } else {
        String::new()
    };
    format!("{scheme}{host}{path}")
}

/// What the server answered to one POST.
struct Answer {
    status: u16,
    /// The answer's body (its beginning), for a reason.
    body: Vec<u8>,
    /// Where a redirect points.
    location: Option<String>,
}

impl HttpSocket {
    /// POSTs `body` and reads the answer; an error when there is none.
    fn post(&self, body: &[u8], gzip: bool) -> io::Result<Answer> {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", CONTENT_TYPE);
        if gzip {
            request = request.header("Content-Encoding", "gzip");
        }
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request.send(body).map_err(|err| self.request_error(err))?;
        Ok(read_answer(response))
    }

    /// An error without an answer, as an I/O error that never reads as a refusal: the lines
    /// are not at fault when the server could not be asked. See [`request_error_kind`].
    fn request_error(&self, err: ureq::Error) -> io::Error {
        let kind = request_error_kind(&err);
        let detail = match err {
            ureq::Error::Timeout(_) => format!("no answer within {:?}", self.timeout),
            ureq::Error::HostNotFound => "the host name does not resolve".to_owned(),
            err => err.to_string(),
        };
        io::Error::new(
            kind,
            format!(
                "HTTP sink {}: {}",
                shown_url(&self.url),
                self.redact(&detail)
            ),
        )
    }

    /// What an answer means: `Ok` for 2xx, else an error whose kind says refused for good or
    /// failed for now (see [`HttpSocket`]).
    fn outcome(&self, answer: &Answer) -> io::Result<()> {
        use io::ErrorKind::*;
        let status = answer.status;
        let kind = match status {
            200..=299 => return Ok(()),
            408 | 504 => TimedOut,
            429 => WouldBlock,
            300..=499 => InvalidData,
            // Every 5xx, and a status no server should send: the server is failing, not the
            // lines, and an outage must not drop them however long it lasts.
            _ => WouldBlock,
        };
        let hint = match status {
            300..=399 => match &answer.location {
                Some(location) => {
                    format!(" (redirected to {}: use that URL)", self.redact(location))
                }
                None => " (a redirect, not followed: check the URL)".to_owned(),
            },
            401 | 403 => " (check the API key or credentials)".to_owned(),
            404 => " (check the URL)".to_owned(),
            413 => " (lower the sender's max_frame or batch_size)".to_owned(),
            _ => String::new(),
        };
        let reason = self.reason(answer);
        let separator = if reason.is_empty() { "" } else { ": " };
        Err(io::Error::new(
            kind,
            format!(
                "HTTP sink {} answered {status} {}{hint}{separator}{reason}",
                shown_url(&self.url),
                StatusCode::from_u16(status)
                    .ok()
                    .and_then(|code| code.canonical_reason())
                    .unwrap_or(""),
            ),
        ))
    }

    /// The server's reason: its answer's text on one line, trimmed, cut to `MAX_REASON`
    /// characters, with the secrets cut out.
    fn reason(&self, answer: &Answer) -> String {
        let text = String::from_utf8_lossy(&answer.body);
        let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let line = self.redact(&line);
        match line.char_indices().nth(MAX_REASON) {
            Some((at, _)) => format!("{}…", &line[..at]),
            None => line,
        }
    }

    /// `text` with every secret (the key, the password, the `Authorization` header, the
    /// headers' values) replaced by `<hidden>`.
    fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), HIDDEN);
            }
        }
        text
    }

    /// Whether the server refused a compressed body because it was compressed: only a 415
    /// Unsupported Media Type says so. A 400 never does, whatever its reason names (it may
    /// quote a line, `app.compress.ratio ...`), and the server may have stored some of the
    /// lines before refusing the rest: POSTing them again would store them twice.
    fn refuses_gzip(answer: &Answer) -> bool {
        answer.status == 415
    }

    /// `buf` compressed into `self.compressed`.
    fn compress(&mut self, buf: &[u8]) -> io::Result<()> {
        self.compressed.clear();
        let mut encoder = GzEncoder::new(&mut self.compressed, Compression::default());
        encoder.write_all(buf)?;
        encoder.finish()?;
        Ok(())
    }
}

/// The kind of error for a POST that got no answer. The network's and the server's failures
/// (no connection, a reset, an end of stream before the answer, a TLS handshake that failed,
/// an answer that could not be read, a timeout) are kinds the sender keeps a batch through
/// for as long as they last (`SendSocket`'s "unreachable or slow"), never a refusal:
///
/// - an I/O error that already says so keeps its kind (`ConnectionRefused`,
///   `HostUnreachable`, `NetworkUnreachable`, `AddrNotAvailable`, `NotFound`, `TimedOut`);
///   a socket's read timeout (`WouldBlock`) is `TimedOut`; any other I/O error (a reset, an
///   end of stream, a TLS error, which rustls reports as `InvalidData`) is `NotConnected`;
/// - a timeout is `TimedOut`; a name that does not resolve, `NotFound`; a connection, TLS or
///   proxy failure, `NotConnected`; an answer that is not HTTP, `WouldBlock` (the server is
///   failing, as with a 5xx);
/// - the rest, the client's own errors (a URL or header ureq will not send, say), are
///   `Other`: retried, and a batch that meets one 5 times in a row is given up.
fn request_error_kind(err: &ureq::Error) -> io::ErrorKind {
    use io::ErrorKind::*;
    match err {
        ureq::Error::Io(io) => match io.kind() {
            kind @ (ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable
            | NotFound | TimedOut) => kind,
            WouldBlock => TimedOut,
            // A reset, an end of stream before the answer, a TLS handshake or record that
            // failed, a pipe broken: the connection's fault. Never `InvalidData` (a
            // refusal), nor `Interrupted` (which would POST again at once).
            _ => NotConnected,
        },
        ureq::Error::Timeout(_) => TimedOut,
        ureq::Error::HostNotFound => NotFound,
        ureq::Error::ConnectionFailed
        | ureq::Error::Tls(_)
        | ureq::Error::Rustls(_)
        | ureq::Error::ConnectProxyFailed(_)
        | ureq::Error::BodyStalled => NotConnected,
        ureq::Error::Protocol(_) | ureq::Error::LargeResponseHeader(..) => WouldBlock,
        _ => Other,
    }
}

/// The status, the beginning of the body, and a redirect's target. The body is read so
/// that the connection can be reused; an error reading it leaves the reason empty.
fn read_answer(mut response: Response<ureq::Body>) -> Answer {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_vec()
        .unwrap_or_default();
    Answer {
        status,
        body,
        location,
    }
}

impl SendSocket for HttpSocket {
    /// POSTs the whole of `buf`, one frame of lines; `Ok(buf.len())` when the server
    /// answers 2xx.
    ///
    /// # Errors
    ///
    /// Refused for good ([`InvalidData`](io::ErrorKind::InvalidData)): a 3xx or 4xx answer
    /// (but 408 and 429); [`InvalidInput`](io::ErrorKind::InvalidInput): `buf` is not lines
    /// (a pickle frame). Failed for now, kept while it lasts: a 5xx or 429
    /// ([`WouldBlock`](io::ErrorKind::WouldBlock)), a 408 or 504 or no answer in time
    /// ([`TimedOut`](io::ErrorKind::TimedOut)), a connection refused
    /// ([`ConnectionRefused`](io::ErrorKind::ConnectionRefused)), a TLS failure, a reset or a
    /// connection closed before the answer ([`NotConnected`](io::ErrorKind::NotConnected)).
    /// See [`HttpSocket`] for the whole table.
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Lines end with a newline; a pickle frame ends with its STOP opcode, `.`.
        if buf.last() != Some(&b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "HTTP sink {}: takes plaintext lines, and this frame is not lines (pickle \
                     cannot be POSTed to a sink: leave the protocol at plaintext)",
                    shown_url(&self.url)
                ),
            ));
        }
        if self.gzip {
            self.compress(buf)?;
            let answer = self.post(&self.compressed, true)?;
            if !Self::refuses_gzip(&answer) {
                return self.outcome(&answer).map(|()| buf.len());
            }
            self.gzip = false;
            let refusal = self.outcome(&answer).unwrap_err();
            report!(
                Warn,
                "{refusal}; the server does not take gzip bodies: sending uncompressed from now on"
            );
        }
        let answer = self.post(buf, false)?;
        self.outcome(&answer).map(|()| buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_encodes_as_http_basic_auth_does() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn a_url_that_is_not_http_with_a_host_is_refused() {
        for url in [
            "",
            "www.hostedgraphite.com",
            "carbon.example.com:2003",
            "ftp://h/sink",
            "http://",
            "http://h:99999/sink",
            "http://h/sink#part",
            "https://key@:443/sink",
        ] {
            let result = HttpSocket::builder(url).build();
            assert!(matches!(result, Err(Error::Config(_))), "{url:?}");
        }
    }

    #[test]
    fn the_url_keeps_its_path_and_query_and_loses_its_credentials() {
        let cases = [
            ("http://h:8080", "http://h:8080/"),
            ("https://h/api/v1/sink", "https://h/api/v1/sink"),
            ("https://k3y@h/api/v1/sink", "https://h/api/v1/sink"),
            ("https://u:p@h/sink?x=1", "https://h/sink?x=1"),
            ("http://[::1]:8080/sink", "http://[::1]:8080/sink"),
        ];
        for (given, posted) in cases {
            assert_eq!(HttpSocket::builder(given).build().unwrap().url(), posted);
        }
    }

    #[test]
    fn credentials_in_the_url_are_an_api_key_or_a_user_and_password() {
        let socket = HttpSocket::builder("https://my%2Bkey@h/sink")
            .build()
            .unwrap();
        assert_eq!(
            socket.authorization.as_deref(),
            Some(format!("Basic {}", base64(b"my+key:")).as_str())
        );
        let socket = HttpSocket::builder("https://u:p%40ss@h/sink")
            .build()
            .unwrap();
        assert_eq!(
            socket.authorization.as_deref(),
            Some(format!("Basic {}", base64(b"u:p@ss")).as_str())
        );
        let socket = HttpSocket::builder("https://old@h/sink")
            .api_key("new")
            .build()
            .unwrap();
        assert_eq!(
            socket.authorization.as_deref(),
            Some(format!("Basic {}", base64(b"new:")).as_str())
        );
    }

    #[test]
    fn unusable_settings_are_refused_when_building() {
        let sink = || HttpSocket::builder("https://h/sink");
        let refused = [
            sink().api_key(""),
            sink().timeout(Duration::ZERO),
            sink().header("bad name", "x"),
            sink().header("X-Ok", "bad\nvalue"),
            sink().header("content-encoding", "br"),
            sink().header("Content-Type", "application/json"),
            sink().api_key("k3y").header("Authorization", "Bearer t"),
            sink()
                .basic_auth("u", "p")
                .header("authorization", "Bearer t"),
        ];
        for builder in refused {
            let shown = format!("{builder:?}");
            assert!(matches!(builder.build(), Err(Error::Config(_))), "{shown}");
        }
        assert!(sink().header("Authorization", "Bearer t").build().is_ok());
        assert!(sink().timeout(Duration::MAX).build().is_ok());
    }

    #[test]
    fn debug_shows_the_url_and_that_a_key_is_set_but_no_secret() {
        let secrets = [
            "s3cret-key",
            "pa55word",
            "t0ken-value",
            "qu3ry-token",
            "us3r-name",
        ];
        let builders = [
            HttpSocket::builder("https://h/sink").api_key("s3cret-key"),
            HttpSocket::builder("https://s3cret-key@h/sink"),
            HttpSocket::builder("https://s3cret-key:@h/sink"),
            HttpSocket::builder("https://h/sink").basic_auth("s3cret-key", ""),
            HttpSocket::builder("https://us3r-name:pa55word@h/sink"),
            HttpSocket::builder("https://h/sink")
                .basic_auth("us3r-name", "pa55word")
                .header("X-Token", "t0ken-value"),
            HttpSocket::builder("https://h/sink?token=qu3ry-token"),
            HttpSocket::builder("not a url s3cret-key@h/sink?t0ken-value"),
        ];
        for builder in builders {
            let mut shown = vec![format!("{builder:?}"), format!("{builder:#?}")];
            if let Ok(socket) = builder.build() {
                shown.push(format!("{socket:?}"));
                shown.push(format!("{socket:#?}"));
            }
            for text in shown {
                for secret in secrets {
                    assert!(!text.contains(secret), "{secret} in {text}");
                }
                assert!(text.contains("h/sink"), "{text}");
            }
        }
        let socket = HttpSocket::builder("https://h/sink")
            .api_key("s3cret-key")
            .build()
            .unwrap();
        assert!(format!("{socket:?}").contains("ApiKey(<hidden>)"));
        let socket = HttpSocket::builder("https://h/sink")
            .basic_auth("us3r-name", "pa55word")
            .build()
            .unwrap();
        assert!(format!("{socket:?}").contains("Basic(<hidden>)"));
    }

    #[test]
    fn a_reason_is_one_trimmed_line_cut_short_without_secrets() {
        let socket = HttpSocket::builder("https://h/sink")
            .api_key("s3cret-key")
            .build()
            .unwrap();
        let answer = |body: &str| Answer {
            status: 400,
            body: body.as_bytes().to_vec(),
            location: None,
        };
        assert_eq!(
            socket.reason(&answer("  invalid line:\n  'a b'\r\n")),
            "invalid line: 'a b'"
        );
        assert_eq!(
            socket.reason(&answer("unknown key s3cret-key")),
            "unknown key <hidden>"
        );
        // base64("s3cret-key:"), as a server might echo the header.
        assert_eq!(
            socket.reason(&answer("bad credentials czNjcmV0LWtleTo=")),
            "bad credentials <hidden>"
        );
        let basic = HttpSocket::builder("https://h/sink")
            .basic_auth("us3r-name", "pa55word")
            .build()
            .unwrap();
        // The user, the password, each in base64, and base64("us3r-name:pa55word").
        assert_eq!(
            basic.reason(&answer(
                "us3r-name pa55word dXMzci1uYW1l cGE1NXdvcmQ= dXMzci1uYW1lOnBhNTV3b3Jk"
            )),
            "<hidden> <hidden> <hidden> <hidden> <hidden>"
        );
        let long = socket.reason(&answer(&"é".repeat(1000)));
        assert_eq!(long.chars().count(), MAX_REASON + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn each_status_has_its_outcome() {
        use io::ErrorKind::*;
        let socket = HttpSocket::builder("https://h/sink").build().unwrap();
        let kind = |status: u16| {
            let answer = Answer {
                status,
                body: Vec::new(),
                location: None,
            };
            socket.outcome(&answer).err().map(|err| err.kind())
        };
        assert_eq!(kind(200), None);
        assert_eq!(kind(202), None);
        for refused in [301, 307, 400, 401, 403, 404, 413, 415, 422] {
            assert_eq!(kind(refused), Some(InvalidData), "{refused}");
        }
        for (status, outage) in [(408, TimedOut), (429, WouldBlock), (502, WouldBlock)] {
            assert_eq!(kind(status), Some(outage), "{status}");
        }
        assert_eq!(kind(504), Some(TimedOut));
        for failing in [500, 501, 503, 505, 507, 599] {
            assert_eq!(kind(failing), Some(WouldBlock), "{failing}");
        }
    }

    #[test]
    fn only_a_415_refuses_gzip_whatever_a_400_names() {
        let refuses = |status: u16, body: &str| {
            HttpSocket::refuses_gzip(&Answer {
                status,
                body: body.as_bytes().to_vec(),
                location: None,
            })
        };
        assert!(refuses(415, ""));
        assert!(!refuses(400, "Unsupported Content-Encoding: gzip"));
        assert!(!refuses(
            400,
            "invalid metric line 'app.compress.ratio 1 1700000000'"
        ));
        assert!(!refuses(401, "gzip"));
        assert!(!refuses(503, "content-encoding"));
    }

    #[test]
    fn a_user_with_an_empty_password_is_the_api_key() {
        let sockets = [
            HttpSocket::builder("https://k3y-as-user:@h/sink"),
            HttpSocket::builder("https://h/sink").basic_auth("k3y-as-user", ""),
        ];
        for builder in sockets {
            let socket = builder.build().unwrap();
            assert!(
                matches!(&socket.auth, Auth::ApiKey(key) if key == "k3y-as-user"),
                "{socket:?}"
            );
            assert_eq!(
                socket.authorization.as_deref(),
                Some(format!("Basic {}", base64(b"k3y-as-user:")).as_str())
            );
        }
        for empty in [
            HttpSocket::builder("https://:@h/sink"),
            HttpSocket::builder("https://h/sink").basic_auth("", ""),
        ] {
            assert!(matches!(empty.build(), Err(Error::Config(_))));
        }
    }

    #[test]
    fn transport_failures_are_kinds_kept_while_they_last() {
        use io::ErrorKind::*;
        let io_error = |kind: io::ErrorKind| ureq::Error::Io(io::Error::new(kind, "x"));
        let kept = [
            (io_error(ConnectionRefused), ConnectionRefused),
            (io_error(ConnectionReset), NotConnected),
            (io_error(ConnectionAborted), NotConnected),
            (io_error(BrokenPipe), NotConnected),
            (io_error(UnexpectedEof), NotConnected),
            (io_error(Interrupted), NotConnected),
            // rustls's errors (an untrusted certificate, a corrupt record).
            (io_error(InvalidData), NotConnected),
            (io_error(InvalidInput), NotConnected),
            (io_error(Other), NotConnected),
            (io_error(HostUnreachable), HostUnreachable),
            (io_error(NetworkUnreachable), NetworkUnreachable),
            (io_error(TimedOut), TimedOut),
            (io_error(WouldBlock), TimedOut),
            (ureq::Error::Timeout(ureq::Timeout::Global), TimedOut),
            (ureq::Error::HostNotFound, NotFound),
            (ureq::Error::ConnectionFailed, NotConnected),
            (ureq::Error::Tls("handshake"), NotConnected),
            (ureq::Error::LargeResponseHeader(1, 1), WouldBlock),
        ];
        for (err, kind) in kept {
            assert_eq!(request_error_kind(&err), kind, "{err:?}");
        }
        assert_eq!(
            request_error_kind(&ureq::Error::BadUri("x".to_owned())),
            Other
        );
    }

    #[test]
    fn loopback_hosts_are_told_from_remote_ones() {
        for host in [
            "localhost",
            "LocalHost:8080",
            "localhost.",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:80",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "sink.example.com",
            "localhost.example.com:80",
            "10.0.0.1",
            "128.0.0.1:80",
            "[::2]:80",
            "[fe80::1]",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn a_frame_that_is_not_lines_is_refused_for_good_without_a_request() {
        // Port 9 (discard) on loopback: nothing is asked of it, the frame is refused first.
        let mut socket = HttpSocket::builder("http://127.0.0.1:9/sink")
            .build()
            .unwrap();
        let pickle_frame = b"\x00\x00\x00\x05\x80\x02]q\x00.";
        let err = socket.send(pickle_frame).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("plaintext"), "{err}");
    }

    #[test]
    fn shown_urls_hide_credentials_and_queries() {
        assert_eq!(
            shown_url("https://k@h/s?t=1"),
            "https://<hidden>@h/s?<hidden>"
        );
        assert_eq!(shown_url("https://h:1/s"), "https://h:1/s");
        assert_eq!(shown_url("k@h"), "<hidden>@h");
    }
}
