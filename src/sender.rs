//! `Sender`: what a send does on the caller's thread (check, stamp, queue), and flush and
//! shutdown.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crossbeam_channel::{self as channel, TrySendError, select};
use parking_lot::Mutex;

use crate::delivery::link::{Link, LinkSettings, Report};
use crate::delivery::shared::Shared;
use crate::delivery::stats::{Counters, Stats};
use crate::delivery::worker::{Control, Lines, Msg, Worker};
use crate::error::Error;
use crate::point::clock::{self, later, now_secs};
use crate::point::metric::{Metric, Name, Point, Timestamp, Value, tag_suffix};
use crate::point::validate::{self, Prefix};
use crate::protocol::{Encoder, PathStyle, Protocol};
use crate::report::{LogLimit, report};
use crate::transport::SendSocket;

/// Wake-ups the worker's wake channel holds; a wake finding it full is not needed anyway.
const WAKE_CAPACITY: usize = 64;

/// How often errors of synchronous mode and refused metrics may be logged.
const SYNC_LOG_PERIOD: Duration = Duration::from_secs(10);

/// A little past a shutdown's deadline, for the worker to count and report what it gave up.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);

/// How long a blocked send waits for room before it looks for a shutdown again.
const BLOCKED_SEND_SLICE: Duration = Duration::from_millis(10);

/// The most bytes the worker's frame buffer reserves up front, whatever the batch size.
const MAX_BATCH_RESERVE: usize = 1 << 20;

/// The most points a synchronous batch holds on the caller's thread before writing them,
/// whatever the batch size.
const MAX_SYNC_CHUNK: usize = 1 << 14;

/// What a send does when the background queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FullQueue {
    /// Drop the metric and count it in [`Stats::dropped`] (the default): the caller never
    /// waits.
    #[default]
    Drop,
    /// Wait until the worker makes room. The caller can then be held up by a slow or
    /// unreachable Carbon. A send that returns `Ok` is then always written, or counted as
    /// failed if Carbon cannot be reached by the shutdown deadline; never dropped.
    Block,
}

/// What a batch send did with its metrics (see [`Sender::send_batch`]).
///
/// ```
/// # let sender = graphyte::Sender::builder("localhost").build()?;
/// let outcome = sender.send_batch([("a.b", 1), ("a c", 2)]);
/// assert!(!outcome.is_complete());
/// assert!(outcome.first_error.unwrap().is_invalid_input());
/// # Ok::<(), graphyte::Error>(())
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BatchOutcome {
    /// Metrics accepted: queued for the worker or, in synchronous mode, written.
    pub accepted: usize,
    /// Metrics refused as invalid, each also counted in [`Stats::refused`].
    pub refused: usize,
    /// Metrics lost after they were checked: dropped (queue full, sender shut down) or, in
    /// synchronous mode, not written; also counted in [`Stats`].
    pub lost: usize,
    /// The first error met, if any: what refused or lost a metric.
    pub first_error: Option<Error>,
}

impl BatchOutcome {
    /// True when every metric of the batch was accepted.
    pub fn is_complete(&self) -> bool {
        self.first_error.is_none()
    }

    /// `Ok(accepted)` when every metric was accepted.
    ///
    /// # Errors
    ///
    /// The first error met when a metric was refused or lost.
    ///
    /// ```
    /// # let sender = graphyte::Sender::builder("localhost").build()?;
    /// let accepted = sender.send_batch([("a.b", 1), ("a.c", 2)]).into_result()?;
    /// assert_eq!(accepted, 2);
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn into_result(self) -> Result<usize, Error> {
        match self.first_error {
            Some(err) => Err(err),
            None => Ok(self.accepted),
        }
    }

    /// Nothing sent, nothing looked at: there is no sender.
    pub(crate) fn no_sender() -> Self {
        BatchOutcome {
            first_error: Some(Error::NoDefaultSender),
            ..BatchOutcome::default()
        }
    }

    fn lose(&mut self, count: usize, err: Error) {
        self.lost += count;
        self.first_error.get_or_insert(err);
    }
}

/// What a sender is made of: a checked configuration, with its socket (see `Builder::build`).
pub(crate) struct Parts {
    pub(crate) socket: Box<dyn SendSocket>,
    pub(crate) protocol: Protocol,
    pub(crate) max_frame: usize,
    /// The socket's `max_payload`: the most bytes one write may carry.
    pub(crate) max_write: Option<usize>,
    pub(crate) prefix: Option<String>,
    pub(crate) tags: Vec<(String, String)>,
    /// `None` for synchronous mode.
    pub(crate) interval: Option<Duration>,
    pub(crate) timeout: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) batch_size: usize,
    pub(crate) full_queue: FullQueue,
    pub(crate) backoff: (Duration, Duration),
    pub(crate) log_sends: bool,
    /// How long written frames are kept for replay after a break; `None`: never.
    pub(crate) replay: Option<Duration>,
}

/// Sends metrics to Carbon. Cheap to clone: clones share one queue, worker and connection.
///
/// The worker stops when the last clone is dropped (after writing what is queued, within the
/// timeout) or at [`shutdown`](Sender::shutdown); dropping one clone never stops it.
///
/// A send can block or touch the network in two cases only: synchronous mode
/// ([`Builder::synchronous`](crate::Builder::synchronous)) writes on the caller's thread, and [`FullQueue::Block`] waits
/// for room in a full queue. Otherwise it checks, stamps and queues the metric, and returns.
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
    /// Most points a synchronous batch writes at once.
    sync_chunk: usize,
    shared: Arc<Shared>,
    timeout: Duration,
    refusals: LogLimit,
    mode: Mode,
}

/// What the caller's thread checks before queueing.
struct Rules {
    /// Asked whether a point fits in a frame; a copy of the one the link encodes with.
    encoder: Encoder,
    prefix: Prefix,
    default_tags: Vec<(String, String)>,
    default_tags_len: usize,
}

enum Mode {
    Background(Background),
    Sync(Mutex<Link>),
}

struct Background {
    queue: channel::Sender<Msg>,
    /// Kept so that points left on the queue after the worker stopped can still be counted.
    queued: channel::Receiver<Msg>,
    wakes: channel::Sender<()>,
    worker: Mutex<Option<JoinHandle<()>>>,
    worker_id: ThreadId,
    /// Disconnected when the worker has ended.
    exit: channel::Receiver<()>,
    block: bool,
    batch_size: usize,
    /// Queue length at which a sender wakes the worker whatever it holds.
    queue_threshold: usize,
}

impl Sender {
    /// Starts a sender from the parts of a checked configuration.
    pub(crate) fn start(parts: Parts) -> Result<Sender, Error> {
        clock::start();
        let prefix = match &parts.prefix {
            Some(prefix) => validate::check_prefix(prefix)?,
            None => Prefix::default(),
        };
        for (key, value) in &parts.tags {
            validate::check_tag(key, value)?;
        }
        let default_tags = tag_suffix(parts.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let style = PathStyle::new(parts.prefix.as_deref(), &default_tags);
        let encoder = Encoder::new(parts.protocol, style, parts.max_frame, parts.max_write);
        let rules = Rules {
            encoder: encoder.clone(),
            prefix,
            default_tags_len: default_tags.len(),
            default_tags: parts.tags,
        };
        let shared = Arc::new(Shared::default());
        let reserve = match parts.interval {
            Some(_) => parts.batch_size.saturating_mul(64).min(MAX_BATCH_RESERVE),
            None => 0,
        };
        let settings = LinkSettings {
            backoff: parts.backoff,
            log_period: parts.interval.unwrap_or(SYNC_LOG_PERIOD),
            log_sends: parts.log_sends,
            reserve,
            replay: parts.replay,
        };
        let link = Link::new(parts.socket, encoder, Arc::clone(&shared), settings);
        let mode = match parts.interval {
            None => Mode::Sync(Mutex::new(link)),
            Some(interval) => {
                let (queue, queued) = channel::bounded(parts.queue_capacity);
                let (wakes, wake_rx) = channel::bounded(WAKE_CAPACITY);
                let (exit_tx, exit) = channel::bounded(0);
                let queue_threshold = (parts.queue_capacity / 2).max(1);
                let worker = Worker {
                    queue: queued.clone(),
                    wakes: wake_rx,
                    shared: Arc::clone(&shared),
                    link,
                    batch_size: parts.batch_size,
                    interval,
                    queue_threshold,
                    timeout: parts.timeout,
                    exit: exit_tx,
                }
                .spawn()?;
                Mode::Background(Background {
                    queue,
                    queued,
                    wakes,
                    worker_id: worker.thread().id(),
                    worker: Mutex::new(Some(worker)),
                    exit,
                    block: parts.full_queue == FullQueue::Block,
                    batch_size: parts.batch_size,
                    queue_threshold,
                })
            }
        };
        Ok(Sender {
            inner: Arc::new(Inner {
                rules,
                sync_chunk: parts.batch_size.min(MAX_SYNC_CHUNK),
                shared,
                timeout: parts.timeout,
                refusals: LogLimit::new(SYNC_LOG_PERIOD),
                mode,
            }),
        })
    }

    /// Sends `value` for `name`, stamped now. Never fails: a refused or dropped metric is
    /// counted in [`stats`](Sender::stats) and logged (rate-limited).
    ///
    /// A `&'static str` name costs no allocation, nor does a borrowed one of up to 56 bytes
    /// (see [`Name`]).
    ///
    /// ```
    /// # let sender = graphyte::Sender::builder("localhost").build()?;
    /// sender.send("requests.ok", 42);
    /// sender.send(format!("hosts.{}.load", "web1"), 0.5);
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    #[inline]
    pub fn send<'a>(&self, name: impl Into<Name<'a>>, value: impl Into<Value>) {
        if let Err(err) = self.submit(name.into(), value.into(), None, &[]) {
            self.inner.log_failed_send(&err);
        }
    }

    /// Sends `value` for `name` at `timestamp` (see [`Timestamp`] for units and rounding).
    ///
    /// ```
    /// # let sender = graphyte::Sender::builder("localhost").build()?;
    /// sender.send_at("batch.rows", 1500, std::time::SystemTime::now());
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn send_at<'a>(
        &self,
        name: impl Into<Name<'a>>,
        value: impl Into<Value>,
        timestamp: impl Into<Timestamp>,
    ) {
        self.send_metric(Metric::new(name, value).timestamp(timestamp));
    }

    /// Sends `value` for `name` with tags, which override default tags of the same name.
    ///
    /// ```
    /// # let sender = graphyte::Sender::builder("localhost").build()?;
    /// sender.send_tagged("queue.depth", 7, &[("queue", "mail")]);
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn send_tagged<'a>(
        &self,
        name: impl Into<Name<'a>>,
        value: impl Into<Value>,
        tags: &[(&str, &str)],
    ) {
        self.send_metric(Metric::new(name, value).tags(tags));
    }

    /// Sends a [`Metric`]; like [`send`](Sender::send), errors are counted and logged.
    ///
    /// ```
    /// # let sender = graphyte::Sender::builder("localhost").build()?;
    /// sender.send_metric(graphyte::Metric::new("disk.free", 12.5).tags(&[("mount", "/var")]));
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    #[inline]
    pub fn send_metric(&self, metric: Metric<'_>) {
        if let Err(err) = self.try_send(metric) {
            self.inner.log_failed_send(&err);
        }
    }

    /// Sends a [`Metric`] and says what happened to it.
    ///
    /// # Errors
    ///
    /// The input is invalid ([`Error::is_invalid_input`]); in background mode the queue is
    /// full ([`Error::QueueFull`]) or the sender was shut down ([`Error::Closed`]); in
    /// synchronous mode writing failed ([`Error::Io`]), the sender was shut down, or the send
    /// came from inside the sender's own write ([`Error::Reentrant`]).
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
        name: Name<'_>,
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
            Mode::Sync(link) => inner.write_now(link, 1, |link| link.push(&point)).1,
        }
    }

    /// Sends many metrics in one call: `(name, value)` and `(name, value, timestamp)` tuples,
    /// [`Metric`]s, or a map's entries. Like [`send`](Sender::send), it never fails as a whole;
    /// the [`BatchOutcome`] says what became of the metrics.
    ///
    /// **Each metric is checked on its own**, not all or nothing: an invalid one is refused
    /// (and counted in [`Stats::refused`]) and the others are sent, as Carbon itself takes a
    /// stream line by line. In background mode each point is queued as a single send would
    /// be (under [`FullQueue::Drop`], those that find the queue full are dropped and
    /// counted); a batch costs less per metric than single sends. In synchronous mode the
    /// batch is written together, in chunks of up to the batch size (at most 16,384), so one
    /// write carries many metrics.
    ///
    /// ```
    /// # let sender = graphyte::Sender::builder("localhost").build()?;
    /// use std::collections::HashMap;
    /// let outcome = sender.send_batch([("disk.free", 12.5), ("disk.used", 87.5)]);
    /// assert_eq!(outcome.accepted, 2);
    ///
    /// let counts = HashMap::from([("jobs.done".to_string(), 3), ("jobs.failed".to_string(), 0)]);
    /// sender.send_batch(&counts);
    ///
    /// let outcome = sender.send_batch([("ok", 1), ("not ok", 2)]);
    /// assert_eq!((outcome.accepted, outcome.refused), (1, 1));
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn send_batch<'a, M: Into<Metric<'a>>>(
        &self,
        metrics: impl IntoIterator<Item = M>,
    ) -> BatchOutcome {
        self.submit_batch(metrics.into_iter().map(Into::into), None)
    }

    /// Like [`send_batch`](Sender::send_batch), with one timestamp for every metric that has
    /// none of its own (a metric's own timestamp is kept).
    ///
    /// ```
    /// # let sender = graphyte::Sender::builder("localhost").build()?;
    /// let now = std::time::SystemTime::now();
    /// sender.send_batch_at([("cpu.user", 12.0), ("cpu.system", 3.5)], now);
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn send_batch_at<'a, M: Into<Metric<'a>>>(
        &self,
        metrics: impl IntoIterator<Item = M>,
        timestamp: impl Into<Timestamp>,
    ) -> BatchOutcome {
        self.submit_batch(metrics.into_iter().map(Into::into), Some(timestamp.into()))
    }

    fn submit_batch<'a>(
        &self,
        metrics: impl Iterator<Item = Metric<'a>>,
        common: Option<Timestamp>,
    ) -> BatchOutcome {
        let inner = &*self.inner;
        let mut outcome = BatchOutcome::default();
        let mut chunk = Vec::new();
        for Metric {
            name,
            value,
            timestamp,
            tags,
        } in metrics
        {
            let (timestamp, tags) = match inner.check(&name, value, timestamp.or(common), tags) {
                Ok(checked) => checked,
                Err(err) => {
                    outcome.refused += 1;
                    outcome.first_error.get_or_insert(inner.refused(err));
                    continue;
                }
            };
            let point = Point::new(name, tags, value.0, timestamp);
            inner.hand_over(point, &mut chunk, &mut outcome);
        }
        inner.hand_over_rest(&mut chunk, &mut outcome);
        if let Some(err) = &outcome.first_error {
            inner.log_failed_send(err);
        }
        outcome
    }

    // What a `LineBatch` uses.

    /// The encoder this sender's lines are checked for and written with.
    pub(crate) fn encoder(&self) -> &Encoder {
        &self.inner.rules.encoder
    }

    /// Checks a metric as a send does; returns its timestamp and, if it has its own tags,
    /// their suffix merged over the defaults. A refusal is counted. With `fits: false` the
    /// caller checks the encoded length itself, exactly (a line already formatted).
    pub(crate) fn check_metric(
        &self,
        metric: &Metric<'_>,
        fits: bool,
    ) -> Result<(u32, Option<Box<str>>), Error> {
        self.inner
            .check_rules(
                &metric.name,
                metric.value,
                metric.timestamp,
                metric.tags,
                fits,
            )
            .map_err(|err| self.inner.refused(err))
    }

    /// Counts a refusal found outside [`check_metric`](Sender::check_metric).
    pub(crate) fn refuse(&self, err: Error) -> Error {
        self.inner.refused(err)
    }

    /// A buffer for lines that the worker is done with, if one is kept.
    pub(crate) fn spare_buffer(&self) -> Option<Vec<u8>> {
        self.inner.shared.spares.take()
    }

    /// Hands over `count` plaintext lines in their final form, in one piece: one queue slot,
    /// or one synchronous write.
    pub(crate) fn submit_lines(&self, bytes: Vec<u8>, count: usize) -> BatchOutcome {
        let inner = &*self.inner;
        let mut outcome = BatchOutcome::default();
        if count == 0 {
            return outcome;
        }
        let (lost, result) = match &inner.mode {
            Mode::Background(background) => {
                match background.send_lines(Lines { bytes, count }, &inner.shared) {
                    Ok(()) => (0, Ok(())),
                    Err(err) => (count, Err(err)),
                }
            }
            Mode::Sync(link) => inner.write_now(link, count, |link| {
                link.push_lines(bytes, count);
            }),
        };
        outcome.accepted = count - lost;
        if let Err(err) = result {
            outcome.lose(lost, err);
        }
        if let Some(err) = &outcome.first_error {
            inner.log_failed_send(err);
        }
        outcome
    }

    /// Hands over points already checked, as [`send_batch`](Sender::send_batch) does.
    pub(crate) fn submit_points(&self, points: impl Iterator<Item = Point>) -> BatchOutcome {
        let inner = &*self.inner;
        let mut outcome = BatchOutcome::default();
        let mut chunk = Vec::new();
        for point in points {
            inner.hand_over(point, &mut chunk, &mut outcome);
        }
        inner.hand_over_rest(&mut chunk, &mut outcome);
        if let Some(err) = &outcome.first_error {
            inner.log_failed_send(err);
        }
        outcome
    }

    /// Writes everything queued so far and waits for it, up to the sender's timeout. In
    /// synchronous mode, and after a shutdown, there is nothing to flush.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if Carbon could not be written to (what was not written stays queued
    /// and is retried); [`Error::Timeout`] if the worker did not finish in time, or if this
    /// is called on the worker's own thread (from a logger), which cannot wait for itself;
    /// [`Error::Closed`] if the sender was shut down meanwhile; [`Error::WorkerPanicked`].
    ///
    /// ```no_run
    /// # let sender = graphyte::Sender::builder("localhost").build()?;
    /// sender.send("deploys", 1);
    /// sender.flush()?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn flush(&self) -> Result<(), Error> {
        let Mode::Background(background) = &self.inner.mode else {
            return Ok(());
        };
        background.flush(&self.inner.shared, self.inner.timeout)
    }

    /// Stops the worker shared by all clones: writes what was queued before this call,
    /// retrying until `timeout`, counts what it could not write as failed, and joins the
    /// thread. Later sends are refused with [`Error::Closed`] and counted as dropped.
    /// Calling it again does nothing. In synchronous mode it closes the connection.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the worker did not finish in time (it is then left to finish on
    /// its own), or if the queue stayed full until the timeout (then nothing was stopped and
    /// it may be called again); [`Error::WorkerPanicked`] if the worker had died.
    ///
    /// ```no_run
    /// # let sender = graphyte::Sender::builder("localhost").build()?;
    /// sender.shutdown(std::time::Duration::from_secs(2))?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        self.inner.shutdown(timeout)
    }

    /// A snapshot of this sender's counters (shared by all clones).
    ///
    /// ```
    /// let sender = graphyte::Sender::builder("localhost").build()?;
    /// assert_eq!(sender.stats().queued, 0);
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    #[must_use]
    pub fn stats(&self) -> Stats {
        let shared = &self.inner.shared;
        shared.counters.snapshot(|| match &self.inner.mode {
            Mode::Background(background) => (
                shared.points_queued(background.queued.len()) as u64,
                shared.stopped.load(Ordering::Acquire),
            ),
            Mode::Sync(_) => (0, false),
        })
    }
}

impl Inner {
    /// Checks a metric: every error is found on the caller's thread, before anything is
    /// queued. Returns its timestamp and, if the call has its own tags, their suffix.
    #[inline]
    fn check(
        &self,
        name: &Name<'_>,
        value: Value,
        timestamp: Option<Timestamp>,
        tags: &[(&str, &str)],
    ) -> Result<(u32, Option<Box<str>>), Error> {
        self.check_rules(name, value, timestamp, tags, true)
    }

    /// [`check`](Inner::check), with the frame-fit check left to a caller that knows the
    /// exact encoded length (`fits: false`).
    #[inline]
    fn check_rules(
        &self,
        name: &Name<'_>,
        value: Value,
        timestamp: Option<Timestamp>,
        tags: &[(&str, &str)],
        fits: bool,
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
        let tags = if tags.is_empty() {
            None
        } else {
            Some(self.merge_tags(tags)?)
        };
        let tags_len = tags
            .as_ref()
            .map_or(self.rules.default_tags_len, |t| t.len());
        validate::check_name(self.rules.prefix, name, tags_len > 0)?;
        if fits {
            self.rules
                .encoder
                .check_fits(name.as_str().len(), tags_len)?;
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
        if let Some(suppressed) = self.refusals.allow(Instant::now()) {
            let counters = &self.shared.counters;
            report!(
                Warn,
                "metric not sent: {err} ({} refused, {} dropped, {} failed in all; \
                 {suppressed} not logged since the last report)",
                counters.refused.load(Ordering::Relaxed),
                counters.dropped.load(Ordering::Relaxed),
                counters.failed.load(Ordering::Relaxed),
            );
        }
    }

    /// Synchronous mode: encodes and writes `points` (`count` of them) on this thread,
    /// through the same link the worker uses. What the write has to report is logged once
    /// the lock is released, as a logger may send metrics through this sender. Returns how
    /// many points were lost, and what went wrong.
    fn write_now(
        &self,
        link: &Mutex<Link>,
        count: usize,
        fill: impl FnOnce(&mut Link),
    ) -> (usize, Result<(), Error>) {
        if self.shared.closed.load(Ordering::Acquire) {
            return (count, Err(dropped(&self.shared, count, Error::Closed)));
        }
        if self.writing_on_this_thread() {
            // Our own socket sends through us: waiting for the lock would wait for ourselves.
            return (count, Err(dropped(&self.shared, count, Error::Reentrant)));
        }
        let me = self as *const Inner as usize;
        let outer = SYNC_WRITING.try_with(|writing| writing.replace(me)).ok();
        let mut reports = Vec::new();
        let result = write_points(&mut link.lock(), count, fill, &self.shared, &mut reports);
        if let Some(outer) = outer {
            let _ = SYNC_WRITING.try_with(|writing| writing.set(outer));
        }
        for report in &reports {
            report.log();
        }
        result
    }

    /// Queues a checked point of a batch or, in synchronous mode, adds it to the chunk to
    /// write, writing the chunk once it is full.
    fn hand_over(&self, point: Point, chunk: &mut Vec<Point>, outcome: &mut BatchOutcome) {
        match &self.mode {
            Mode::Background(background) => match background.send(point, &self.shared) {
                Ok(()) => outcome.accepted += 1,
                Err(err) => outcome.lose(1, err),
            },
            Mode::Sync(link) => {
                chunk.push(point);
                if chunk.len() >= self.sync_chunk {
                    self.write_chunk(link, chunk, outcome);
                }
            }
        }
    }

    /// Synchronous mode: writes what is left of a batch's chunk.
    fn hand_over_rest(&self, chunk: &mut Vec<Point>, outcome: &mut BatchOutcome) {
        if let Mode::Sync(link) = &self.mode
            && !chunk.is_empty()
        {
            self.write_chunk(link, chunk, outcome);
        }
    }

    /// Synchronous mode: writes a batch's chunk of points, and accounts for them.
    fn write_chunk(&self, link: &Mutex<Link>, chunk: &mut Vec<Point>, outcome: &mut BatchOutcome) {
        let count = chunk.len();
        let (lost, result) = self.write_now(link, count, |link| {
            for point in chunk.drain(..) {
                link.push(&point);
            }
        });
        outcome.accepted += count - lost;
        if let Err(err) = result {
            outcome.lose(lost, err);
        }
    }

    /// True inside this (synchronous) sender's own write, on the thread making it.
    fn writing_on_this_thread(&self) -> bool {
        let me = self as *const Inner as usize;
        SYNC_WRITING.try_with(Cell::get).ok() == Some(me)
    }

    fn shutdown(&self, timeout: Duration) -> Result<(), Error> {
        match &self.mode {
            Mode::Background(background) => background.shutdown(&self.shared, timeout),
            Mode::Sync(link) => {
                self.shared.closed.store(true, Ordering::Release);
                // From inside this sender's own write the lock is ours already: the write in
                // progress is the last, and the connection closes with the sender.
                if !self.writing_on_this_thread() {
                    link.lock().close();
                }
                Ok(())
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(err) = self.shutdown(self.timeout) {
            report!(Error, "shutting down the last sender handle: {err}");
        }
    }
}

thread_local! {
    /// The synchronous sender this thread is writing with, if any (its address).
    static SYNC_WRITING: Cell<usize> = const { Cell::new(0) };
}

impl Background {
    #[inline]
    fn send(&self, point: Point, shared: &Shared) -> Result<(), Error> {
        if shared.closed.load(Ordering::Relaxed) {
            return Err(dropped(shared, 1, Error::Closed));
        }
        if self.block {
            return self.send_or_wait(point, shared);
        }
        match self.queue.try_send(Msg::Point(point)) {
            Ok(()) => {
                self.after_send(shared);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.wake(shared);
                Err(dropped(shared, 1, Error::QueueFull))
            }
            Err(TrySendError::Disconnected(_)) => Err(dropped(shared, 1, Error::Closed)),
        }
    }

    /// Queues a chunk of lines: one slot, whatever its size. The worker is woken for it, as a
    /// chunk is worth a write of its own.
    fn send_lines(&self, lines: Lines, shared: &Shared) -> Result<(), Error> {
        let count = lines.count;
        if shared.closed.load(Ordering::Relaxed) {
            return Err(dropped(shared, count, Error::Closed));
        }
        let msg = Msg::Lines(Box::new(lines));
        let result = if self.block {
            shared.blocking_sends.fetch_add(1, Ordering::SeqCst);
            let result = self.queue_or_wait(msg, shared);
            shared.blocking_sends.fetch_sub(1, Ordering::Release);
            result
        } else {
            match self.queue.try_send(msg) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(dropped(shared, count, Error::QueueFull)),
                Err(TrySendError::Disconnected(_)) => Err(dropped(shared, count, Error::Closed)),
            }
        };
        if result.is_ok() {
            // Counted once on the queue, never while waiting for room or when dropped.
            shared.chunk_in(count);
        }
        self.wake(shared);
        result
    }

    /// Wakes the worker when it sleeps and a full batch is waiting. A sender reads the queue
    /// length only while the worker sleeps, when the queue's head does not move, so it costs
    /// a few loads from the sender's own cache.
    ///
    /// No full batch waits for the interval: the queueing above is a `SeqCst` read-modify-
    /// write of the queue's tail, and the worker stores `sleeping` (`SeqCst`) before it looks
    /// at the queue one last time, so either this sees it asleep or it sees this point.
    #[inline]
    fn after_send(&self, shared: &Shared) {
        if shared.sleeping.load(Ordering::SeqCst)
            && !shared.wake_pending.load(Ordering::Relaxed)
            && self.batch_due(shared)
        {
            self.wake(shared);
        }
    }

    #[inline]
    fn batch_due(&self, shared: &Shared) -> bool {
        let queued = self.queue.len();
        queued >= self.queue_threshold
            || queued + shared.held.load(Ordering::Relaxed) >= self.batch_size
    }

    fn wake(&self, shared: &Shared) {
        if !shared.wake_pending.load(Ordering::Relaxed)
            && !shared.wake_pending.swap(true, Ordering::AcqRel)
        {
            let _ = self.wakes.try_send(());
        }
    }

    /// Wakes the worker whatever it is doing, for a control on the queue.
    fn wake_now(&self) {
        let _ = self.wakes.try_send(());
    }

    fn on_worker_thread(&self) -> bool {
        thread::current().id() == self.worker_id
    }

    /// `FullQueue::Block`: waits for room. Counted in `blocking_sends` for as long as it
    /// runs, so that a shutdown lets it finish before it queues its own control: a point
    /// whose send returned `Ok` is then always before the shutdown, and written.
    fn send_or_wait(&self, point: Point, shared: &Shared) -> Result<(), Error> {
        shared.blocking_sends.fetch_add(1, Ordering::SeqCst);
        let result = self.queue_or_wait(Msg::Point(point), shared);
        shared.blocking_sends.fetch_sub(1, Ordering::Release);
        result
    }

    fn queue_or_wait(&self, mut msg: Msg, shared: &Shared) -> Result<(), Error> {
        let points = msg.points();
        if shared.closed.load(Ordering::SeqCst) {
            return Err(dropped(shared, points, Error::Closed));
        }
        match self.queue.try_send(msg) {
            Ok(()) => {
                self.after_send(shared);
                return Ok(());
            }
            Err(TrySendError::Full(back)) => msg = back,
            Err(TrySendError::Disconnected(_)) => {
                return Err(dropped(shared, points, Error::Closed));
            }
        }
        // The worker never waits for its own queue (its logger may send metrics).
        if self.on_worker_thread() {
            return Err(dropped(shared, points, Error::QueueFull));
        }
        // Waits for the worker to take the queue below its threshold, not for one slot (see
        // `Room`): then this thread fills half a queue while the worker takes the other half.
        loop {
            self.wake(shared);
            shared.room.wait(
                || self.queue.len() >= self.queue_threshold,
                BLOCKED_SEND_SLICE,
            );
            match self.queue.try_send(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) if !shared.closed.load(Ordering::SeqCst) => {
                    msg = back;
                }
                Err(_) => return Err(dropped(shared, points, Error::Closed)),
            }
        }
    }

    fn flush(&self, shared: &Shared, timeout: Duration) -> Result<(), Error> {
        if shared.dead.load(Ordering::Acquire) {
            return Err(Error::WorkerPanicked);
        }
        if shared.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.on_worker_thread() {
            return Err(Error::Timeout);
        }
        let deadline = later(Instant::now(), timeout);
        let (done, answer) = channel::bounded(1);
        shared.flushes.add(&done);
        let control = Msg::Control(Box::new(Control::Flush(done.clone())));
        let result = if self.queue.send_deadline(control, deadline).is_err() {
            Err(Error::Timeout)
        } else {
            self.wake_now();
            let left = deadline.saturating_duration_since(Instant::now());
            select! {
                recv(answer) -> result => result.unwrap_or_else(|_| Err(stopped_error(shared))),
                recv(self.exit) -> _ => {
                    answer.try_recv().unwrap_or_else(|_| Err(stopped_error(shared)))
                }
                default(left) => Err(Error::Timeout),
            }
        };
        shared.flushes.remove(&done);
        result
    }

    fn shutdown(&self, shared: &Shared, timeout: Duration) -> Result<(), Error> {
        let deadline = later(Instant::now(), timeout);
        let Some(worker) = self.worker.lock().take() else {
            // Stopped already, or another shutdown is under way: wait for the worker to end
            // (that call may give up and put it back), never report it stopped before it is.
            if !self.on_worker_thread() {
                let left = deadline.saturating_duration_since(Instant::now());
                select! {
                    recv(self.exit) -> _ => {}
                    default(left) => return Err(Error::Timeout),
                }
            }
            return if shared.dead.load(Ordering::Acquire) {
                Err(Error::WorkerPanicked)
            } else {
                Ok(())
            };
        };
        shared.closed.store(true, Ordering::SeqCst);
        let (done, finished) = channel::bounded(1);
        let control = Msg::Control(Box::new(Control::Shutdown { deadline, done }));
        if self.on_worker_thread() {
            // From a logger on the worker: it stops once the logger returns; nothing to join.
            let queued = self.queue.try_send(control).is_ok();
            self.wake_now();
            return if queued { Ok(()) } else { Err(Error::Timeout) };
        }
        // Sends waiting for room see `closed` within a slice, or get in before the control.
        while shared.blocking_sends.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        if let Err(err) = self.queue.send_deadline(control, deadline) {
            // The queue stayed full: keep the worker, so a later shutdown can try again.
            drop(err);
            *self.worker.lock() = Some(worker);
            return Err(Error::Timeout);
        }
        self.wake_now();
        let left = later(deadline, SHUTDOWN_GRACE).saturating_duration_since(Instant::now());
        select! {
            recv(finished) -> _ => {}
            recv(self.exit) -> _ => {}
            default(left) => return Err(Error::Timeout),
        }
        let _ = worker.join();
        if shared.dead.load(Ordering::Acquire) {
            return Err(Error::WorkerPanicked);
        }
        Ok(())
    }
}

/// Why a control was not answered: the worker stopped, or died.
fn stopped_error(shared: &Shared) -> Error {
    if shared.dead.load(Ordering::Acquire) {
        Error::WorkerPanicked
    } else {
        Error::Closed
    }
}

#[cold]
fn dropped(shared: &Shared, count: usize, err: Error) -> Error {
    Counters::add(&shared.counters.dropped, count as u64);
    err
}

/// Synchronous mode, under the sender's lock: the same encoding and delivery as the worker,
/// then whatever was not written is given up, as nothing retries it. Returns how many points
/// were lost, and what went wrong.
fn write_points(
    link: &mut Link,
    count: usize,
    fill: impl FnOnce(&mut Link),
    shared: &Shared,
    reports: &mut Vec<Report>,
) -> (usize, Result<(), Error>) {
    // A shutdown may have come while this thread waited for the lock.
    if shared.closed.load(Ordering::Acquire) {
        return (count, Err(dropped(shared, count, Error::Closed)));
    }
    // Always empty here, unless a panic cut the last write short: never let its partial
    // frame out.
    link.give_up_all();
    Counters::add(&shared.counters.taken, count as u64);
    fill(link);
    // Only this link counts failures, and it is ours while the lock is held.
    let failed_before = shared.counters.failed.load(Ordering::Relaxed);
    let result = link.deliver(false, reports);
    link.give_up_all();
    let lost = shared.counters.failed.load(Ordering::Relaxed) - failed_before;
    (lost as usize, result.map_err(Error::Io))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Discard;

    impl SendSocket for Discard {
        fn send(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
    }

    /// Polls `condition` for up to 10 s.
    fn wait_until(condition: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Takes nothing until the test lets go.
    struct Held(channel::Receiver<()>);

    impl SendSocket for Held {
        fn send(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }
    }

    #[test]
    fn a_shutdown_while_another_is_under_way_does_not_report_the_worker_stopped() {
        let (release, held) = channel::unbounded();
        let sender = Sender::builder("unused")
            .socket(Held(held))
            .interval(Duration::from_millis(1))
            .queue_capacity(1)
            .build()
            .unwrap();
        // The worker is stuck writing the first point; the second fills the queue, so a
        // shutdown cannot queue its control and holds the worker until its deadline.
        sender.send("a", 1);
        let Mode::Background(background) = &sender.inner.mode else {
            unreachable!()
        };
        assert!(wait_until(|| background.queued.is_empty()));
        sender.send("b", 2);
        let first = {
            let sender = sender.clone();
            thread::spawn(move || sender.shutdown(Duration::from_millis(500)))
        };
        assert!(wait_until(|| background.worker.lock().is_none()));
        let second = sender.shutdown(Duration::from_millis(100));
        assert!(matches!(second, Err(Error::Timeout)), "{second:?}");
        assert!(matches!(first.join().unwrap(), Err(Error::Timeout)));
        drop(release);
    }

    #[test]
    fn a_worker_lost_to_a_panic_refuses_later_sends_and_fails_flush_and_shutdown() {
        let sender = Sender::builder("unused")
            .socket(Discard)
            .interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        for i in 0..10 {
            sender.send("before.the.panic", i);
        }
        sender
            .inner
            .shared
            .panic_next_round
            .store(true, Ordering::Relaxed);
        assert!(matches!(sender.flush(), Err(Error::WorkerPanicked)));
        assert!(matches!(
            sender.try_send(Metric::new("after.the.panic", 1)),
            Err(Error::Closed)
        ));
        let stats = sender.stats();
        assert_eq!(
            (stats.queued, stats.sent, stats.failed, stats.dropped),
            (10, 0, 10, 1),
            "what the worker held is failed, the later send dropped"
        );
        assert!(matches!(
            sender.shutdown(Duration::from_secs(1)),
            Err(Error::WorkerPanicked)
        ));
    }
}
