//! `Sender`, its `Builder`, and what a send does on the caller's thread: check, stamp, queue.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{self as channel, SendTimeoutError, TrySendError};
use parking_lot::Mutex;

use crate::clock::now_secs;
use crate::encode::{LineFormat, tag_suffix};
use crate::link::{Batch, Link, LogLimit};
use crate::metric::{Metric, Point, Timestamp, Value};
use crate::socket::{DEFAULT_MAX_DATAGRAM, TcpSocket, UdpSocket};
use crate::stats::{Counters, Stats};
use crate::validate::{self, LINE_OVERHEAD, MAX_LINE_LEN};
use crate::worker::{Command, Shared, Worker};
use crate::{Error, SendSocket};

/// Default Carbon plaintext port.
pub const DEFAULT_PORT: u16 = 2003;
/// Default timeout for connecting, writing, flushing and shutting down.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default flush interval of background mode.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Default queue capacity of background mode, in metrics (112 bytes each: about 1.8 MB,
/// allocated up front).
pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;
/// Default number of lines per batch.
pub const DEFAULT_BATCH_SIZE: usize = 1000;

/// The transport a [`Builder`] sets up when no custom [`SendSocket`] is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// One persistent TCP connection (the default).
    #[default]
    Tcp,
    /// UDP datagrams of whole lines (see [`Builder::max_datagram`]).
    Udp,
}

/// What a background-mode send does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullQueue {
    /// Drop the metric and count it in [`Stats::dropped`] (the default): the caller never
    /// waits.
    #[default]
    Drop,
    /// Wait until the worker makes room. The caller can then be held up by a slow or
    /// unreachable Carbon.
    Block,
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
    host: String,
    port: u16,
    prefix: Option<String>,
    timeout: Duration,
    interval: Option<Duration>,
    queue_capacity: usize,
    batch_size: usize,
    tags: Vec<(String, String)>,
    transport: Transport,
    max_datagram: usize,
    log_sends: bool,
    full_queue: FullQueue,
    backoff: (Duration, Duration),
    socket: Option<Box<dyn SendSocket>>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("prefix", &self.prefix)
            .field("interval", &self.interval)
            .field("transport", &self.transport)
            .field("custom_socket", &self.socket.is_some())
            .finish_non_exhaustive()
    }
}

impl Builder {
    fn new(host: String) -> Self {
        Builder {
            host,
            port: DEFAULT_PORT,
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
            socket: None,
        }
    }

    /// Carbon's port (default 2003).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Put before every metric name, joined with a `.`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Timeout for connecting and writing, and for flush and shutdown (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Background mode (the default, every 1 s): sends only queue the metric; a worker
    /// thread writes a batch whenever `batch_size` lines are waiting, and whatever is waiting
    /// at least every `interval`.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Synchronous mode: every send formats and writes its line on the calling thread, and
    /// [`Sender::try_send`] reports I/O errors. The caller waits for the network.
    pub fn synchronous(mut self) -> Self {
        self.interval = None;
        self
    }

    /// How many metrics the background queue holds (default 16,384).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Most lines in one write (default 1000).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Adds a default tag, put on every metric that does not set the same tag itself.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// TCP (default) or UDP.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Most bytes per UDP datagram (default 1432, at most 8192). A line longer than this is
    /// refused over UDP.
    pub fn max_datagram(mut self, bytes: usize) -> Self {
        self.max_datagram = bytes;
        self
    }

    /// Log every successful write at `info` level (target `graphyte`).
    pub fn log_sends(mut self, log_sends: bool) -> Self {
        self.log_sends = log_sends;
        self
    }

    /// What a send does when the background queue is full (default: drop and count).
    pub fn full_queue(mut self, policy: FullQueue) -> Self {
        self.full_queue = policy;
        self
    }

    /// Wait between failed attempts to reach Carbon: starts at `min`, doubles up to `max`
    /// (default 100 ms to 5 s).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff = (min, max.max(min));
        self
    }

    /// Sends through `socket` instead of the built-in transport; host, port, transport and
    /// max_datagram are then unused.
    pub fn socket(mut self, socket: impl SendSocket) -> Self {
        self.socket = Some(Box::new(socket));
        self
    }

    /// Checks the configuration and starts the worker (background mode). Nothing is
    /// connected yet: the first batch connects, so this succeeds while Carbon is down.
    pub fn build(self) -> Result<Sender, Error> {
        crate::clock::start();
        if self.batch_size == 0 {
            return Err(Error::Config("batch_size must be at least 1"));
        }
        if self.queue_capacity == 0 {
            return Err(Error::Config("queue_capacity must be at least 1"));
        }
        if self.interval.is_some_and(|i| i.is_zero()) {
            return Err(Error::Config("interval must be more than zero"));
        }
        let prefix = match &self.prefix {
            Some(prefix) => {
                validate::check_name(prefix)?;
                validate::check_tagged_name(prefix)?;
                format!("{prefix}.")
            }
            None => String::new(),
        };
        for (key, value) in &self.tags {
            validate::check_tag(key, value)?;
        }
        let socket: Box<dyn SendSocket> = match self.socket {
            Some(socket) => socket,
            None => match self.transport {
                Transport::Tcp => Box::new(TcpSocket::new(&self.host, self.port, self.timeout)),
                Transport::Udp => {
                    Box::new(UdpSocket::new(&self.host, self.port, self.max_datagram))
                }
            },
        };
        let format = LineFormat {
            prefix: prefix.into(),
            default_tags: tag_suffix(self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .into(),
        };
        let rules = Rules {
            max_line: socket
                .max_payload()
                .map_or(MAX_LINE_LEN, |m| m.min(MAX_LINE_LEN)),
            overhead: format.prefix.len() + LINE_OVERHEAD,
            prefixed: !format.prefix.is_empty(),
            default_tags: self.tags,
            default_tags_len: format.default_tags.len(),
        };
        let shared = Arc::new(Shared::default());
        let link = Link::new(
            socket,
            Arc::clone(&shared),
            self.backoff,
            self.interval.unwrap_or(SYNC_LOG_PERIOD),
            self.log_sends,
        );
        let mode = match self.interval {
            None => Mode::Sync(Mutex::new(SyncLink {
                link,
                format,
                batch: Batch::default(),
            })),
            Some(interval) => {
                let (points, queued) = channel::bounded(self.queue_capacity);
                // Bounded, so sending a command never allocates; a wake finding it full is
                // not needed anyway.
                let (commands, command_rx) = channel::bounded(COMMAND_CAPACITY);
                let worker = Worker {
                    points: queued.clone(),
                    commands: command_rx,
                    shared: Arc::clone(&shared),
                    format,
                    link,
                    batch_size: self.batch_size,
                    interval,
                }
                .spawn()?;
                let wake_threshold = self.batch_size.min(self.queue_capacity / 2).max(1);
                Mode::Background(Background {
                    points,
                    queued,
                    commands,
                    worker: Mutex::new(Some(worker)),
                    block: self.full_queue == FullQueue::Block,
                    wake_threshold,
                    check_mask: if wake_threshold >= 128 { 63 } else { 0 },
                })
            }
        };
        Ok(Sender {
            inner: Arc::new(Inner {
                rules,
                shared,
                timeout: self.timeout,
                refusals: Mutex::new(LogLimit::new(SYNC_LOG_PERIOD)),
                mode,
            }),
        })
    }
}

/// Commands the worker's command channel holds: wakes, flushes and a shutdown.
const COMMAND_CAPACITY: usize = 64;

/// How often errors of synchronous mode and refused metrics may be logged.
const SYNC_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Sends metrics to Carbon. Cheap to clone: clones share one queue, worker and connection.
///
/// The worker stops when the last clone is dropped (after writing what is queued, within the
/// timeout) or at [`shutdown`](Sender::shutdown); dropping one clone never stops it.
///
/// ```no_run
/// use std::time::Duration;
/// let sender = graphyte::Sender::builder("carbon.example.com").prefix("myapp").build()?;
/// sender.send("requests.ok", 42);
/// sender.send_tagged("latency", 0.125, &[("route", "login")]);
/// sender.shutdown(Duration::from_secs(2))?;
/// # Ok::<(), graphyte::Error>(())
/// ```
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("stats", &self.stats())
            .finish()
    }
}

struct Inner {
    rules: Rules,
    shared: Arc<Shared>,
    timeout: Duration,
    refusals: Mutex<LogLimit>,
    mode: Mode,
}

/// What the caller's thread checks before queueing.
struct Rules {
    max_line: usize,
    /// Line bytes besides name and tags, at their longest.
    overhead: usize,
    prefixed: bool,
    default_tags: Vec<(String, String)>,
    default_tags_len: usize,
}

enum Mode {
    Background(Background),
    Sync(Mutex<SyncLink>),
}

struct Background {
    points: channel::Sender<Point>,
    /// A receiver kept so that, after shutdown, points left on the queue can be counted.
    queued: channel::Receiver<Point>,
    commands: channel::Sender<Command>,
    worker: Mutex<Option<JoinHandle<()>>>,
    block: bool,
    /// Queue length at which a sender wakes the worker.
    wake_threshold: usize,
    /// The queue length is looked at when a thread's send count has these bits clear.
    check_mask: u32,
}

struct SyncLink {
    link: Link,
    format: LineFormat,
    batch: Batch,
}

impl Sender {
    /// Starts configuring a sender for Carbon at `host` (a name or an IP address).
    pub fn builder(host: impl Into<String>) -> Builder {
        Builder::new(host.into())
    }

    /// Sends `value` for `name`, stamped now. Never fails: a refused or dropped metric is
    /// counted in [`stats`](Sender::stats) and logged (rate-limited).
    ///
    /// A `&'static str` name costs no allocation; pass a `String` for a built name.
    #[inline]
    pub fn send(&self, name: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        if let Err(err) = self.submit(name.into(), value.into(), None, &[]) {
            self.inner.log_failed_send(&err);
        }
    }

    /// Sends `value` for `name` at `timestamp` (see [`Timestamp`] for units and rounding).
    pub fn send_at(
        &self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Value>,
        timestamp: impl Into<Timestamp>,
    ) {
        self.send_metric(Metric::new(name, value).timestamp(timestamp));
    }

    /// Sends `value` for `name` with tags, which override default tags of the same name.
    pub fn send_tagged(
        &self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Value>,
        tags: &[(&str, &str)],
    ) {
        self.send_metric(Metric::new(name, value).tags(tags));
    }

    /// Sends a [`Metric`]; like [`send`](Sender::send), errors are counted and logged.
    #[inline]
    pub fn send_metric(&self, metric: Metric<'_>) {
        if let Err(err) = self.try_send(metric) {
            self.inner.log_failed_send(&err);
        }
    }

    /// Sends a [`Metric`] and says what happened to it.
    ///
    /// Errors: the input is invalid ([`Error::is_invalid_input`]); in background mode the
    /// queue is full ([`Error::QueueFull`]) or the sender was shut down ([`Error::Closed`]);
    /// in synchronous mode writing failed ([`Error::Io`]).
    ///
    /// ```
    /// use graphyte::{Error, Metric, Sender};
    /// let sender = Sender::builder("localhost").build()?;
    /// let err = sender.try_send(Metric::new("bad name", 1)).unwrap_err();
    /// assert!(matches!(err, Error::InvalidName { .. }));
    /// # Ok::<(), Error>(())
    /// ```
    #[inline]
    pub fn try_send(&self, metric: Metric<'_>) -> Result<(), Error> {
        let Metric {
            name,
            value,
            timestamp,
            tags,
        } = metric;
        self.submit(name, value, timestamp, tags)
    }

    /// What every send does: check on this thread, then queue (or write, synchronously).
    #[inline]
    fn submit(
        &self,
        name: Cow<'static, str>,
        value: Value,
        timestamp: Option<Timestamp>,
        tags: &[(&str, &str)],
    ) -> Result<(), Error> {
        let inner = &*self.inner;
        let (timestamp, tags) = match inner.check(&name, value, timestamp, tags) {
            Ok(checked) => checked,
            Err(err) => return Err(inner.refused(err)),
        };
        let point = Point::new(name, tags, value.0, timestamp);
        match &inner.mode {
            Mode::Background(background) => background.send(point, &inner.shared),
            Mode::Sync(link) => link.lock().send(point, &inner.shared),
        }
    }

    /// Writes everything queued so far and waits for it (up to the timeout). In synchronous
    /// mode there is nothing to flush.
    pub fn flush(&self) -> Result<(), Error> {
        let Mode::Background(background) = &self.inner.mode else {
            return Ok(());
        };
        if self.inner.shared.stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        let (done, answer) = channel::bounded(1);
        let deadline = Instant::now() + self.inner.timeout;
        match background
            .commands
            .send_deadline(Command::Flush(done), deadline)
        {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => return Err(Error::Timeout),
            Err(SendTimeoutError::Disconnected(_)) => return Err(Error::Closed),
        }
        match answer.recv_deadline(deadline) {
            Ok(result) => result.map_err(Error::Io),
            Err(channel::RecvTimeoutError::Timeout) => Err(Error::Timeout),
            Err(channel::RecvTimeoutError::Disconnected) => Ok(()),
        }
    }

    /// Stops the worker shared by all clones: writes what is queued, giving up after
    /// `timeout` (what is left is counted as failed), and joins the thread. Later sends are
    /// dropped and counted. Returns [`Error::Timeout`] if the worker did not finish in time
    /// (it is then left to finish on its own). Calling it again does nothing.
    pub fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        self.inner.shutdown(timeout)
    }

    /// A snapshot of this sender's counters (shared by all clones).
    pub fn stats(&self) -> Stats {
        let shared = &self.inner.shared;
        match &self.inner.mode {
            Mode::Background(background) => shared.counters.snapshot(
                background.queued.len() as u64,
                shared.stopped.load(Ordering::Acquire),
            ),
            Mode::Sync(_) => shared.counters.snapshot(0, false),
        }
    }

    /// True when both handles share one sender (one queue and worker).
    pub(crate) fn same_as(&self, other: &Sender) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.inner.timeout
    }
}

impl Inner {
    /// Checks a metric: every error is found on the caller's thread, before anything is
    /// queued. Returns its timestamp and, if the call has its own tags, their suffix.
    #[inline]
    #[expect(
        clippy::ptr_arg,
        reason = "a borrowed name is 'static: its check is remembered"
    )]
    fn check(
        &self,
        name: &Cow<'static, str>,
        value: Value,
        timestamp: Option<Timestamp>,
        tags: &[(&str, &str)],
    ) -> Result<(u32, Option<Box<str>>), Error> {
        if !value.is_finite() {
            return Err(Error::InvalidValue {
                reason: "NaN and infinite values are not accepted",
            });
        }
        let timestamp = match timestamp {
            None => now_secs(),
            Some(timestamp) => timestamp.to_secs()?,
        };
        match name {
            Cow::Borrowed(name) => validate::check_static_name(name)?,
            Cow::Owned(name) => validate::check_name(name)?,
        }
        let tags = if tags.is_empty() {
            None
        } else {
            Some(self.merge_tags(tags)?)
        };
        let tags_len = tags
            .as_ref()
            .map_or(self.rules.default_tags_len, |t| t.len());
        // A prefix was checked for this when the sender was built.
        if tags_len > 0 && !self.rules.prefixed {
            validate::check_tagged_name(name)?;
        }
        let len = self.rules.overhead + name.len() + tags_len;
        if len > self.rules.max_line {
            return Err(Error::LineTooLong {
                len,
                max: self.rules.max_line,
            });
        }
        Ok((timestamp, tags))
    }

    #[cold]
    fn refused(&self, err: Error) -> Error {
        Counters::add(&self.shared.counters.refused, 1);
        err
    }

    /// The tag suffix for a call's own tags merged over the defaults.
    #[inline(never)]
    fn merge_tags(&self, tags: &[(&str, &str)]) -> Result<Box<str>, Error> {
        for (key, value) in tags {
            validate::check_tag(key, value)?;
        }
        let defaults = self
            .rules
            .default_tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        Ok(tag_suffix(defaults.chain(tags.iter().copied())).into_boxed_str())
    }

    #[cold]
    fn log_failed_send(&self, err: &Error) {
        // Queue-full drops are reported by the worker, once per interval.
        if matches!(err, Error::QueueFull) {
            return;
        }
        if let Some(suppressed) = self.refusals.lock().allow(Instant::now()) {
            let counters = &self.shared.counters;
            log::warn!(
                target: "graphyte",
                "metric not sent: {err} ({} refused, {} dropped, {} failed in all; {suppressed} not logged since the last report)",
                counters.refused.load(Ordering::Relaxed),
                counters.dropped.load(Ordering::Relaxed),
                counters.failed.load(Ordering::Relaxed),
            );
        }
    }

    fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        let background = match &self.mode {
            Mode::Background(background) => background,
            Mode::Sync(link) => {
                link.lock().link.disconnect();
                return Ok(());
            }
        };
        let Some(worker) = background.worker.lock().take() else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        let (done, finished) = channel::bounded(1);
        match background
            .commands
            .send_deadline(Command::Shutdown { deadline, done }, deadline)
        {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => return Err(Error::Timeout),
            Err(SendTimeoutError::Disconnected(_)) => return Ok(()),
        }
        // A little past the deadline, for the worker to count and report what it gave up.
        match finished.recv_deadline(deadline + Duration::from_millis(100)) {
            Ok(()) | Err(channel::RecvTimeoutError::Disconnected) => {
                let _ = worker.join();
                Ok(())
            }
            Err(channel::RecvTimeoutError::Timeout) => Err(Error::Timeout),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown(self.timeout) {
            log::error!(target: "graphyte", "shutting down the last sender handle: {err}");
        }
    }
}

thread_local! {
    /// Sends made on this thread, to look at the queue length only every so often.
    static SENDS: Cell<u32> = const { Cell::new(0) };
}

impl Background {
    #[inline]
    fn send(&self, point: Point, shared: &Shared) -> Result<(), Error> {
        if shared.stopped.load(Ordering::Relaxed) {
            Counters::add(&shared.counters.dropped, 1);
            return Err(Error::Closed);
        }
        match self.points.try_send(point) {
            Ok(()) => {
                self.after_send(shared);
                Ok(())
            }
            Err(TrySendError::Full(point)) => {
                self.wake(shared);
                if self.block {
                    self.send_blocking(point, shared)
                } else {
                    Counters::add(&shared.counters.dropped, 1);
                    Err(Error::QueueFull)
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                Counters::add(&shared.counters.dropped, 1);
                Err(Error::Closed)
            }
        }
    }

    /// Wakes the worker when a batch is waiting. The queue length is looked at only every
    /// 64 sends of a thread, and the worker woken at most once until it runs.
    fn after_send(&self, shared: &Shared) {
        let due = SENDS
            .try_with(|sends| {
                let n = sends.get().wrapping_add(1);
                sends.set(n);
                n & self.check_mask == 0
            })
            .unwrap_or(true);
        if due && self.points.len() >= self.wake_threshold {
            self.wake(shared);
        }
    }

    fn wake(&self, shared: &Shared) {
        if !shared.wake_pending.load(Ordering::Relaxed)
            && !shared.wake_pending.swap(true, Ordering::AcqRel)
        {
            let _ = self.commands.try_send(Command::Wake);
        }
    }

    fn send_blocking(&self, mut point: Point, shared: &Shared) -> Result<(), Error> {
        loop {
            match self.points.send_timeout(point, Duration::from_millis(50)) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Timeout(back)) if !shared.stopped.load(Ordering::Acquire) => {
                    point = back;
                    self.wake(shared);
                }
                Err(_) => {
                    Counters::add(&shared.counters.dropped, 1);
                    return Err(Error::Closed);
                }
            }
        }
    }
}

impl SyncLink {
    fn send(&mut self, point: Point, shared: &Shared) -> Result<(), Error> {
        self.batch.clear();
        self.format.write_line(&point, &mut self.batch.bytes);
        self.batch.lines = 1;
        Counters::add(&shared.counters.taken, 1);
        self.link.deliver(&mut self.batch, false).map_err(|err| {
            Counters::add(&shared.counters.failed, self.batch.lines as u64);
            self.batch.clear();
            Error::Io(err)
        })
    }
}
