//! `Builder`: a sender's options, and the checks that refuse an unusable configuration.

use std::fmt;
use std::time::Duration;

use crate::delivery::link::DEFAULT_REPLAY_WINDOW;
use crate::error::Error;
use crate::protocol::{DEFAULT_MAX_FRAME, MAX_FRAME, MIN_FRAME, Protocol};
use crate::sender::{FullQueue, Parts, Sender};
use crate::transport::{DEFAULT_MAX_DATAGRAM, SendSocket, TcpSocket, Transport, UdpSocket};
use crate::transport::{Mode, SeveralSocket};
#[cfg(feature = "tls")]
use crate::transport::{TlsConfig, TlsSocket};

/// Default Carbon plaintext port (pickle: 2004, see [`Protocol::default_port`]).
pub const DEFAULT_PORT: u16 = Protocol::Plaintext.default_port();
/// Default timeout for connecting, writing, flushing and shutting down.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default flush interval of background mode.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Default queue capacity of background mode, in metrics (112 bytes each: about 1.8 MB,
/// allocated up front).
pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;
/// Default number of metrics per batch.
pub const DEFAULT_BATCH_SIZE: usize = 1000;
/// Largest queue capacity a builder accepts (about 470 MB, allocated up front).
pub const MAX_QUEUE_CAPACITY: usize = 1 << 22;
/// Longest replay window a builder accepts.
const MAX_REPLAY_WINDOW: Duration = Duration::from_secs(60);

impl Sender {
    /// Starts configuring a sender for Carbon at `host` (a name or an IP address).
    ///
    /// ```
    /// let sender = graphyte::Sender::builder("carbon.example.com").build()?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn builder(host: impl Into<String>) -> Builder {
        Builder::new(host.into())
    }
}

/// Configures and builds a [`Sender`]. Created by [`Sender::builder`].
///
/// ```
/// use std::time::Duration;
/// let sender = graphyte::Sender::builder("carbon.example.com")
///     .port(2003)
///     .prefix("myapp")
///     .tag("host", "web1")
///     .interval(Duration::from_secs(10))
///     .build()?;
/// # Ok::<(), graphyte::Error>(())
/// ```
#[must_use = "a builder does nothing until built"]
pub struct Builder {
    pub(crate) host: String,
    /// `None`: the protocol's default port.
    pub(crate) port: Option<u16>,
    pub(crate) protocol: Protocol,
    /// `None`: the default for the protocol and transport.
    pub(crate) max_frame: Option<usize>,
    pub(crate) prefix: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) interval: Option<Duration>,
    pub(crate) queue_capacity: usize,
    pub(crate) batch_size: usize,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) transport: Transport,
    pub(crate) max_datagram: usize,
    pub(crate) log_sends: bool,
    pub(crate) full_queue: FullQueue,
    pub(crate) backoff: (Duration, Duration),
    /// `None`: replay's default (on for the TCP transport, off for UDP and a custom socket).
    pub(crate) replay: Option<Duration>,
    pub(crate) socket: Option<Box<dyn SendSocket>>,
    /// Several destinations instead of host and port, when set.
    pub(crate) destinations: Option<(Vec<String>, Mode)>,
    /// TLS over the TCP transport, when set.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<TlsConfig>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut builder = f.debug_struct("Builder");
        builder
            .field("host", &self.host)
            .field("port", &self.port)
            .field("protocol", &self.protocol)
            .field("prefix", &self.prefix)
            .field("interval", &self.interval)
            .field("transport", &self.transport)
            .field("custom_socket", &self.socket.is_some());
        #[cfg(feature = "tls")]
        builder.field("tls", &self.tls);
        builder.finish_non_exhaustive()
    }
}

impl Builder {
    pub(crate) fn new(host: String) -> Self {
        Builder {
            host,
            port: None,
            protocol: Protocol::Plaintext,
            max_frame: None,
            prefix: None,
            timeout: DEFAULT_TIMEOUT,
            interval: Some(DEFAULT_INTERVAL),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            batch_size: DEFAULT_BATCH_SIZE,
            tags: Vec::new(),
            transport: Transport::Tcp,
            max_datagram: DEFAULT_MAX_DATAGRAM,
            log_sends: false,
            full_queue: FullQueue::Drop,
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            replay: None,
            socket: None,
            destinations: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Carbon's port (default: the protocol's, 2003 for plaintext and 2004 for pickle).
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").port(2013);
    /// # let _ = builder;
    /// ```
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The wire format: plaintext lines (the default) or Carbon's pickle protocol (TCP only;
    /// carbon-c-relay does not read it). See [`Protocol`].
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").protocol(graphyte::Protocol::Pickle);
    /// # let _ = builder;
    /// ```
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Most bytes in one frame, the unit of a write: a chunk of whole plaintext lines, or one
    /// pickle frame's payload (default and Carbon's cap: 1 MiB, [`DEFAULT_MAX_FRAME`]; from
    /// 256 bytes to 1 GiB). A batch larger than this is split across frames. Raise it only
    /// for a receiver that takes larger frames (go-carbon: 64 MiB). Over UDP a frame is a
    /// datagram, at most [`max_datagram`](Builder::max_datagram) bytes.
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost")
    ///     .protocol(graphyte::Protocol::Pickle)
    ///     .max_frame(256 * 1024);
    /// # let _ = builder;
    /// ```
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = Some(bytes);
        self
    }

    /// Put before every metric name, joined with a `.`. Checked, with each name, as the
    /// path Carbon will read.
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").prefix("myapp.web1");
    /// # let _ = builder;
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Bounds a whole connection attempt (over every address of the host), each write, and
    /// [`Sender::flush`] and the guard's drop (default 5 s). A huge value means "wait
    /// practically forever"; zero is refused.
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").timeout(std::time::Duration::from_secs(2));
    /// # let _ = builder;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Background mode (the default, every 1 s): sends only queue the metric; a worker
    /// thread writes a batch whenever `batch_size` metrics are waiting, and whatever is waiting
    /// at least every `interval`.
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").interval(std::time::Duration::from_secs(10));
    /// # let _ = builder;
    /// ```
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Synchronous mode: every send encodes and writes its metric on the calling thread, and
    /// [`Sender::try_send`] reports I/O errors. The caller waits for the network.
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").synchronous();
    /// # let _ = builder;
    /// ```
    pub fn synchronous(mut self) -> Self {
        self.interval = None;
        self
    }

    /// How many metrics the background queue holds (default 16,384; at most
    /// [`MAX_QUEUE_CAPACITY`]).
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").queue_capacity(100_000);
    /// # let _ = builder;
    /// ```
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Metrics written together (default 1000): the worker writes as soon as this many are
    /// waiting.
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").batch_size(500);
    /// # let _ = builder;
    /// ```
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Adds a default tag, put on every metric that does not set the same tag itself.
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").tag("host", "web1").tag("env", "prod");
    /// # let _ = builder;
    /// ```
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// TCP (default) or UDP.
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").transport(graphyte::Transport::Udp);
    /// # let _ = builder;
    /// ```
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Most bytes per UDP datagram (default 1432, from 1 to 8192). A line longer than this
    /// is refused over UDP.
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost")
    ///     .transport(graphyte::Transport::Udp)
    ///     .max_datagram(8192);
    /// # let _ = builder;
    /// ```
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes;
        self
    }

    /// Log every successful write at `info` level (target `graphyte`).
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").log_sends(true);
    /// # let _ = builder;
    /// ```
    pub fn log_sends(mut self, log_sends: bool) -> Self {
        self.log_sends = log_sends;
        self
    }

    /// What a send does when the background queue is full (default: drop and count).
    ///
    /// ```
    /// let builder = graphyte::Sender::builder("localhost").full_queue(graphyte::FullQueue::Block);
    /// # let _ = builder;
    /// ```
    pub fn full_queue(mut self, policy: FullQueue) -> Self {
        self.full_queue = policy;
        self
    }

    /// Wait between failed attempts to reach Carbon: starts at `min`, doubles up to `max`
    /// (default 100 ms to 5 s). `min` must be more than zero and `max` at least `min`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = graphyte::Sender::builder("localhost")
    ///     .backoff(Duration::from_millis(50), Duration::from_secs(30));
    /// # let _ = builder;
    /// ```
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min, max);
        self
    }

    /// Replay after a broken connection: frames written on a connection in the last `window`
    /// (default 5 s, at most 60 s; zero turns replay off), up to 4 MiB of them, are kept, and
    /// when the connection breaks they are written again, before anything new, on the next
    /// one; each at most once (if that one breaks too, they count as possibly lost), and
    /// writing them again is not progress: a batch that breaks every connection is still
    /// given up after the usual attempts. Carbon keeps the last value written for each series and time slot, so a point
    /// written twice is stored once, and a carbon-cache killed mid-stream loses nothing that
    /// was sent. Counted in [`Stats::replayed`](crate::Stats::replayed); the points kept are
    /// no longer counted as [`possibly_lost`](crate::Stats::possibly_lost). Beyond the window
    /// or the 4 MiB, the oldest are forgotten; a clean shutdown keeps nothing.
    ///
    /// On by default over TCP (plaintext and pickle, with or without TLS), where 5 s covers
    /// the second carbon-cache may hold points in memory, plus the time to find the break.
    /// UDP has no connection to break: it never replays, and setting a window with it is
    /// refused. A custom [`socket`](Builder::socket) replays only when a window is set here
    /// (after any failed write, if it has no connections).
    ///
    /// Costs: each frame written is copied into the replay buffer (up to 4 MiB kept, a little
    /// more in allocated buffers), and after a break up to 4 MiB are written again before
    /// anything new. In [`synchronous`](Builder::synchronous) mode both happen on the
    /// sending thread. A break is noticed at the next write: a batch written just before the
    /// server died, with nothing written after it, is not replayed.
    ///
    /// **Not safe where a repeated point counts twice**: turn it off with
    /// `.replay(Duration::ZERO)` in front of carbon-aggregator (it sums or averages every
    /// point it receives in an interval, repeats included) or anything else that sums or
    /// counts points (a StatsD-like relay). Relays forward the repeats: carbon-c-relay and
    /// carbon-relay-ng pass them on, which is harmless for the carbon-caches behind them.
    ///
    /// ```
    /// use std::time::Duration;
    /// // In front of carbon-aggregator: no replay.
    /// let builder = graphyte::Sender::builder("aggregator.example.com").replay(Duration::ZERO);
    /// # let _ = builder;
    /// ```
    pub fn replay(mut self, window: Duration) -> Self {
        self.replay = Some(window);
        self
    }

    /// Sends through `socket` instead of the built-in transport; host, port, transport and
    /// max_datagram are then unused. It is given whole frames of the chosen protocol.
    ///
    /// ```
    /// struct Discard;
    /// impl graphyte::SendSocket for Discard {
    ///     fn send(&mut self, buf: &[u8]) -> std::io::Result<usize> {
    ///         Ok(buf.len())
    ///     }
    /// }
    /// let sender = graphyte::Sender::builder("unused").socket(Discard).build()?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn socket(mut self, socket: impl SendSocket) -> Self {
        self.socket = Some(Box::new(socket));
        self
    }

    /// Sends over TLS (feature `tls`): the TCP transport's connections, each with a TLS
    /// session on top, verified and authenticated as `config` says (see [`TlsSocket`]).
    /// Carbon has no standard TLS port: set the server's with [`port`](Builder::port)
    /// (Hosted Graphite's is 20030). Plaintext and pickle both work; UDP is refused. Unused
    /// with a custom [`socket`](Builder::socket).
    ///
    /// ```no_run
    /// use graphyte::{Sender, TlsConfig};
    ///
    /// let sender = Sender::builder("carbon.example.com")
    ///     .port(20030)
    ///     .tls(TlsConfig::new())
    ///     .build()?;
    /// sender.send("requests.ok", 42);
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Sends to several Carbon destinations instead of `host` and [`port`](Builder::port)
    /// (which are then unused), each `host:port` or `host:port=instance`, over TCP:
    ///
    /// - [`Mode::Failover`]: everything to the first that accepts a connection, the next one
    ///   when it fails, back to the first once it accepts connections again (checked every
    ///   second from a background thread, sending it no data).
    /// - [`Mode::CarbonCh`]: each series to the destination carbon-c-relay's `carbon_ch`
    ///   cluster of the same list would send it to, so a graphite-web finds it where a relay
    ///   would have put it. Name the destinations as the relay does (`10.0.0.1:2003=a`): the
    ///   ring depends on hosts as written and instances, never on ports. Plaintext only.
    ///
    /// See [`SeveralSocket`] for what happens when a destination fails. Unused with a custom
    /// [`socket`](Builder::socket); a list that cannot be parsed, UDP, TLS, or pickle with
    /// `CarbonCh` make [`build`](Builder::build) fail with [`Error::Config`].
    ///
    /// ```
    /// use graphyte::{Mode, Sender};
    ///
    /// let sender = Sender::builder("unused")
    ///     .destinations(&["10.0.0.1:2003=a", "10.0.0.2:2003=b"], Mode::CarbonCh)
    ///     .build()?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn destinations<S: AsRef<str>>(mut self, destinations: &[S], mode: Mode) -> Self {
        let list = destinations.iter().map(|d| d.as_ref().to_owned()).collect();
        self.destinations = Some((list, mode));
        self
    }

    /// Checks the configuration and starts the worker (background mode). Nothing is
    /// connected yet: the first batch connects, so this succeeds while Carbon is down.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unusable setting (a zero batch size, queue capacity,
    /// interval, timeout or datagram size, a datagram over 8192 bytes, a queue over
    /// [`MAX_QUEUE_CAPACITY`], a frame under 256 bytes or over 1 GiB, a backoff whose
    /// minimum is zero or above its maximum, pickle, TLS or a replay window over UDP, a
    /// replay window over 60 s, and with the `tls`
    /// feature what [`TlsSocket::new`](crate::TlsSocket::new) refuses: an unusable
    /// certificate, key or server name);
    /// [`Error::InvalidName`] or [`Error::InvalidTag`] for a bad prefix or default tag;
    /// [`Error::Io`] if the worker thread cannot be started (or, with TLS, a certificate or
    /// key file cannot be read).
    ///
    /// ```
    /// let err = graphyte::Sender::builder("localhost").batch_size(0).build().unwrap_err();
    /// assert!(matches!(err, graphyte::Error::Config(_)));
    /// ```
    pub fn build(mut self) -> Result<Sender, Error> {
        self.check()?;
        // Before the socket is taken: a custom socket replays only when asked to.
        let replay = self.replay_window();
        let port = self.port.unwrap_or(self.protocol.default_port());
        let socket: Box<dyn SendSocket> = match self.socket.take() {
            Some(socket) => socket,
            None if self.destinations.is_some() => self.several_socket()?,
            None => match self.transport {
                Transport::Tcp => self.stream_socket(port)?,
                Transport::Udp => Box::new(UdpSocket::new(&self.host, port, self.max_datagram)),
            },
        };
        let max_frame = self.max_frame.unwrap_or(DEFAULT_MAX_FRAME);
        let max_write = socket.max_payload();
        Sender::start(Parts {
            socket,
            protocol: self.protocol,
            max_frame,
            max_write,
            prefix: self.prefix,
            tags: self.tags,
            interval: self.interval,
            timeout: self.timeout,
            queue_capacity: self.queue_capacity,
            batch_size: self.batch_size,
            full_queue: self.full_queue,
            backoff: self.backoff,
            log_sends: self.log_sends,
            replay,
        })
    }

    /// The socket over [`destinations`](Builder::destinations), checked against the rest of
    /// the configuration.
    fn several_socket(&self) -> Result<Box<dyn SendSocket>, Error> {
        let Some((destinations, mode)) = &self.destinations else {
            return Err(Error::Config("no destinations"));
        };
        if self.transport == Transport::Udp {
            return Err(Error::Config(
                "destinations are TCP: remove .transport(Transport::Udp)",
            ));
        }
        if self.uses_tls() {
            return Err(Error::Config(
                "destinations do not take TLS yet: remove .tls(..)",
            ));
        }
        if *mode == Mode::CarbonCh && self.protocol == Protocol::Pickle {
            return Err(Error::Config(
                "carbon_ch spreads plaintext lines (carbon-c-relay reads no pickle): use \
                 Protocol::Plaintext",
            ));
        }
        let socket =
            SeveralSocket::new(destinations, *mode, self.timeout).map_err(Error::Config)?;
        Ok(Box::new(socket))
    }

    /// The TCP transport's socket: TLS over TCP when configured, else plain TCP.
    fn stream_socket(&self, port: u16) -> Result<Box<dyn SendSocket>, Error> {
        #[cfg(feature = "tls")]
        if let Some(config) = &self.tls {
            return Ok(Box::new(TlsSocket::new(
                &self.host,
                port,
                self.timeout,
                config,
            )?));
        }
        Ok(Box::new(TcpSocket::new(&self.host, port, self.timeout)))
    }

    /// How long written frames are kept for replay; `None`: off.
    fn replay_window(&self) -> Option<Duration> {
        let default = match (&self.socket, self.transport) {
            (None, Transport::Tcp) => DEFAULT_REPLAY_WINDOW,
            _ => Duration::ZERO,
        };
        Some(self.replay.unwrap_or(default)).filter(|window| !window.is_zero())
    }

    /// Whether TLS is configured.
    fn uses_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        return false;
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let (min_backoff, max_backoff) = self.backoff;
        let problem = if self.batch_size == 0 {
            "batch_size must be at least 1"
        } else if !(1..=MAX_QUEUE_CAPACITY).contains(&self.queue_capacity) {
            "queue_capacity must be from 1 to 4,194,304"
        } else if self.interval.is_some_and(|i| i.is_zero()) {
            "interval must be more than zero"
        } else if self.timeout.is_zero() {
            "timeout must be more than zero"
        } else if !(1..=UdpSocket::MAX_DATAGRAM).contains(&self.max_datagram) {
            "max_datagram must be from 1 to 8192 bytes (Carbon truncates larger datagrams)"
        } else if self
            .max_frame
            .is_some_and(|f| !(MIN_FRAME..=MAX_FRAME).contains(&f))
        {
            "max_frame must be from 256 bytes to 1 GiB"
        } else if min_backoff.is_zero() {
            "the backoff's minimum must be more than zero"
        } else if max_backoff < min_backoff {
            "the backoff's maximum must be at least its minimum"
        } else if self.protocol == Protocol::Pickle
            && self.transport == Transport::Udp
            && self.socket.is_none()
        {
            "the pickle protocol needs TCP: Carbon has no pickle receiver on UDP"
        } else if self.uses_tls() && self.transport == Transport::Udp && self.socket.is_none() {
            "TLS runs over TCP: remove .transport(Transport::Udp) or .tls(..)"
        } else if self.replay.is_some_and(|window| window > MAX_REPLAY_WINDOW) {
            "the replay window must be at most 60 seconds (zero turns replay off)"
        } else if self.replay.is_some_and(|window| !window.is_zero())
            && self.transport == Transport::Udp
            && self.socket.is_none()
        {
            "replay needs a connection: UDP has none (remove .replay(..) or use TCP)"
        } else {
            return Ok(());
        };
        Err(Error::Config(problem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(builder: Builder) -> &'static str {
        match builder.check() {
            Err(Error::Config(problem)) => problem,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn nonsense_settings_are_refused_with_a_message_naming_them() {
        let b = || Sender::builder("localhost");
        assert!(problem(b().batch_size(0)).contains("batch_size"));
        assert!(problem(b().queue_capacity(0)).contains("queue_capacity"));
        assert!(problem(b().queue_capacity(usize::MAX)).contains("queue_capacity"));
        assert!(problem(b().max_datagram(0)).contains("max_datagram"));
        assert!(problem(b().max_datagram(8193)).contains("max_datagram"));
        assert!(problem(b().timeout(Duration::ZERO)).contains("timeout"));
        assert!(problem(b().interval(Duration::ZERO)).contains("interval"));
        let second = Duration::from_secs(1);
        assert!(problem(b().backoff(second, second / 2)).contains("maximum"));
        assert!(problem(b().backoff(Duration::ZERO, second)).contains("minimum"));
        assert!(problem(b().max_frame(255)).contains("max_frame"));
        assert!(problem(b().max_frame((1 << 30) + 1)).contains("max_frame"));
        let pickle_over_udp = b().protocol(Protocol::Pickle).transport(Transport::Udp);
        assert!(problem(pickle_over_udp).contains("pickle"));
        assert!(problem(b().replay(Duration::from_secs(61))).contains("replay window"));
        let replay_over_udp = b().transport(Transport::Udp).replay(second);
        assert!(problem(replay_over_udp).contains("replay"));
        #[cfg(feature = "tls")]
        {
            let tls_over_udp = b().tls(TlsConfig::new()).transport(Transport::Udp);
            assert!(problem(tls_over_udp).contains("TLS"));
        }
    }

    #[test]
    fn replay_is_on_for_tcp_and_off_for_udp_a_custom_socket_or_a_zero_window() {
        struct Discard;
        impl SendSocket for Discard {
            fn send(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                Ok(buf.len())
            }
        }
        let b = || Sender::builder("localhost");
        let second = Duration::from_secs(1);
        assert_eq!(b().replay_window(), Some(DEFAULT_REPLAY_WINDOW));
        assert_eq!(b().replay(second).replay_window(), Some(second));
        assert_eq!(b().replay(Duration::ZERO).replay_window(), None);
        assert_eq!(b().transport(Transport::Udp).replay_window(), None);
        let udp_off = b().transport(Transport::Udp).replay(Duration::ZERO);
        assert!(udp_off.check().is_ok());
        assert_eq!(b().socket(Discard).replay_window(), None);
        assert_eq!(
            b().socket(Discard).replay(second).replay_window(),
            Some(second)
        );
    }

    #[test]
    fn huge_settings_are_accepted() {
        let builder = Sender::builder("localhost")
            .timeout(Duration::MAX)
            .interval(Duration::MAX)
            .backoff(Duration::MAX, Duration::MAX)
            .batch_size(usize::MAX / 2)
            .queue_capacity(MAX_QUEUE_CAPACITY);
        assert!(builder.check().is_ok());
    }
}
