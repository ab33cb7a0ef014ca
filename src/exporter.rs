//! A [`metrics`](https://docs.rs/metrics) recorder that aggregates in the process and sends
//! through a [`Sender`] once per interval (feature `metrics`).
//!
//! Carbon keeps one value per time slot: forwarding every `counter.increment(1)` as a line
//! would keep the last increment of each slot and lose the others. So the recorder adds up
//! what is recorded during an interval, and a flush thread sends one line per series at the
//! end of each interval, stamped with that end.
//!
//! ```no_run
//! use std::time::Duration;
//! use graphyte::exporter::GraphiteExporter;
//!
//! fn main() -> Result<(), graphyte::Error> {
//!     // Keep the exporter until the end of main: dropping it sends the interval under way
//!     // and stops the flush thread.
//!     let _exporter = GraphiteExporter::builder(
//!         graphyte::Sender::builder("carbon.example.com").prefix("myapp"),
//!     )
//!     .interval(Duration::from_secs(10))
//!     .install()?;
//!
//!     metrics::counter!("requests", "route" => "/login").increment(1);
//!     metrics::gauge!("queue.depth").set(7.0);
//!     metrics::histogram!("latency.seconds").record(0.125);
//!     Ok(())
//! }
//! ```
//!
//! # What is sent
//!
//! At each boundary of the interval (every multiple of it since the Unix epoch, by the wall
//! clock: 12:00:00, 12:00:10, ... for 10 s), every registered metric is sent, stamped with
//! the boundary: **a point stamped 12:00:10 describes the interval that ended at 12:00:10**.
//! Set the finest retention of these series in Carbon's `storage-schemas.conf` to the
//! interval.
//!
//! | kind | lines | when nothing was recorded in the interval |
//! |---|---|---|
//! | counter, [`CounterMode::Delta`] (default) | `name` = the increase during the interval | `name 0` |
//! | counter, [`CounterMode::Total`] | `name` = the total since the counter was registered | the same total again |
//! | gauge | `name` = its value (`set`, with `increment`s and `decrement`s applied; it can be negative) | the same value again |
//! | histogram | `name.count`, `name.sum`, `name.min`, `name.max`, `name.mean`, then one line per percentile, `name.p50`, `name.p90`, `name.p99` by default | `name.count 0` only |
//!
//! A counter or gauge is sent from its registration (its first use) on, every interval. A
//! gauge never set is 0, as `metrics` defines it; a gauge set to NaN or an infinity is not
//! sent (Carbon cannot store it), nor are NaN or infinite histogram samples recorded.
//! `counter.absolute(n)` raises the total to `n` if it is below (a counter never goes
//! down).
//!
//! A histogram's statistics describe **this interval's samples only**: no decaying
//! reservoir keeps stale percentiles alive, and an interval without samples sends just its
//! zero count. Percentiles are samples by nearest rank (the smallest sample at or above
//! the given fraction of them: for samples 1 to 100, p50 is 50 and p99 is 99), exact while
//! an interval has at most [`max_samples`](ExporterBuilder::max_samples) samples (262,144
//! by default); past that, count, sum, min, max and mean stay exact and the percentiles
//! come from a uniform sample of the interval's samples, so a busy histogram's memory stays
//! bounded (8 bytes a sample).
//!
//! A percentile's segment is `p` and the quantile's digits after `0.`, at least two: 0.5
//! is `p50`, 0.95 `p95`, 0.999 `p999`, 0.05 `p05`; 0 is `p0` and 1 is `p100`.
//!
//! In Carbon's `storage-aggregation.conf`, roll up delta counters and `.count` and `.sum`
//! with `sum`, `.min` with `min`, `.max` with `max`, and the rest with `average`; running
//! totals ([`CounterMode::Total`]) with `max` (read them with `nonNegativeDerivative`).
//!
//! # Names and labels
//!
//! A name's `.`-separated segments are each cleaned with the [`NameEncoder`] (by default
//! [`NameEncoder::Strict`]: anything but `A-Z a-z 0-9 _ -` becomes `_`, an empty segment
//! `_`), so `"http requests.total"` is sent as `http_requests.total`: no name that
//! `metrics` allows makes a line Carbon misreads. The exporter's
//! [`prefix`](ExporterBuilder::prefix) comes first; the sender's own prefix and default
//! tags apply as to any metric it sends.
//!
//! Labels are, by [`LabelMode`]:
//!
//! - [`LabelMode::Tags`] (default): Graphite tags, `name;method=GET;status=200`. A key or
//!   value the tag rules refuse is cleaned with the encoder (`GET /a b` becomes `GET__a_b`);
//!   a label named `name`, which Carbon reserves, is sent as `name_`.
//! - [`LabelMode::Path`]: the values, sorted by their keys, each cleaned into one segment
//!   after the name: `name.GET.200`, and for a histogram `name.GET.200.p99`. Two label sets
//!   with the same values under other keys share a path.
//!
//! Two keys cleaned into the same name are logged (once), as Carbon would keep only one
//! of their values per slot.
//!
//! # Costs and delivery
//!
//! An update through a handle (`counter.increment(1)`, `gauge.set(x)`,
//! `histogram.record(x)`) is an atomic operation on that metric alone, or for a histogram
//! a lock of its own per thread (its samples are kept in up to 8 shards, one per
//! recording thread); once a histogram's buffer has grown to an interval's samples,
//! recording allocates nothing. Only registering a new key (a macro's first call with it)
//! takes the registry's write lock; the macros look their key up under a read lock at every
//! call, so keep the handle where a call is hot: `let hits = metrics::counter!("hits");`.
//!
//! The flush thread hands each interval to the sender as one batch
//! ([`Sender::send_batch`]): in background mode, a send never waits for the network.
//! A batch larger than the sender's queue ([`Builder::queue_capacity`](crate::Builder::queue_capacity),
//! 16,384 lines by default) can lose lines unless the sender blocks
//! ([`FullQueue::Block`](crate::FullQueue::Block)); what happened to each line is counted in
//! [`Sender::stats`].
//!
//! When the exporter is dropped or [shut down](GraphiteExporter::shutdown), it sends the
//! interval under way at once, stamped with the end that interval would have had (up to one
//! interval ahead), and waits for the sender to write it: the last interval is not lost.
//! Metrics recorded after that are not sent.

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel as channel;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::builder::Builder;
use crate::error::Error;
use crate::point::metric::Timestamp;
use crate::point::names::NameEncoder;
use crate::point::validate;
use crate::report::report;
use crate::sender::{BatchOutcome, Sender};

mod cells;
mod flush;
mod registry;
mod series;

use flush::Flusher;
use registry::Registry;
use series::Naming;

/// Default interval between flushes: 10 seconds, Carbon's most common finest retention.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// Default percentiles of a histogram: p50, p90 and p99.
pub const DEFAULT_PERCENTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// Default most samples a histogram keeps per interval for its percentiles (2 MiB).
pub const DEFAULT_MAX_SAMPLES: usize = 1 << 18;

/// Longest interval a builder accepts: one day.
const MAX_INTERVAL_SECS: u64 = 86_400;

/// Most shards a histogram's samples are split into.
const MAX_SHARDS: usize = 8;

/// What a counter's line says each interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CounterMode {
    /// The increase during the interval (0 when nothing happened), as statsd sends it.
    /// Sum it over time (`summarize(..., "sum")`); roll it up with `sum`.
    #[default]
    Delta,
    /// The total since the counter was registered, as Dropwizard's reporter sends it.
    /// Read it with `nonNegativeDerivative`; it survives a missed interval or a roll-up by
    /// `max`/`last`.
    Total,
}

/// Where a metric's `metrics` labels go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LabelMode {
    /// Graphite 1.1 tags: `name;key=value` (needs a Carbon with tags, as any tagged send).
    #[default]
    Tags,
    /// The values, sorted by label key, as path segments after the name: `name.value1.value2`.
    Path,
}

/// Where the exporter sends: a [`Sender`] (shared with the caller), a sender's
/// [`Builder`] (built by the exporter's [`build`](ExporterBuilder::build)), or a host name
/// (a sender with the default options).
///
/// ```
/// use graphyte::exporter::Destination;
/// let _ = Destination::from("carbon.example.com");
/// let _ = Destination::from(graphyte::Sender::builder("carbon.example.com").port(2013));
/// ```
pub struct Destination(Target);

enum Target {
    Sender(Sender),
    Builder(Box<Builder>),
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Target::Sender(sender) => f.debug_tuple("Destination").field(sender).finish(),
            Target::Builder(builder) => f.debug_tuple("Destination").field(builder).finish(),
        }
    }
}

impl From<Sender> for Destination {
    fn from(sender: Sender) -> Self {
        Destination(Target::Sender(sender))
    }
}

impl From<Builder> for Destination {
    fn from(builder: Builder) -> Self {
        Destination(Target::Builder(Box::new(builder)))
    }
}

impl From<&str> for Destination {
    fn from(host: &str) -> Self {
        Sender::builder(host).into()
    }
}

impl From<String> for Destination {
    fn from(host: String) -> Self {
        Sender::builder(host).into()
    }
}

/// A running exporter: its flush thread, and what [`install`](ExporterBuilder::install) or
/// [`build`](ExporterBuilder::build) returns to stop it.
///
/// Dropping it, or calling [`shutdown`](GraphiteExporter::shutdown), sends the interval under
/// way and stops the flush thread: keep it until the end of `main`.
///
/// ```no_run
/// use graphyte::exporter::GraphiteExporter;
/// let exporter = GraphiteExporter::builder("carbon.example.com").install()?;
/// metrics::counter!("jobs.done").increment(1);
/// exporter.shutdown()?; // sends the interval under way, and waits for the sender
/// # Ok::<(), graphyte::Error>(())
/// ```
#[must_use = "dropping the exporter stops it: keep it until the end of main"]
pub struct GraphiteExporter {
    shared: Arc<Shared>,
    /// Dropped to stop the flush thread.
    stop: Option<channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    stopped: bool,
}

/// The [`metrics::Recorder`] of a [`GraphiteExporter`]: install it with
/// [`metrics::set_global_recorder`], or use it with [`metrics::with_local_recorder`].
///
/// ```
/// # struct Discard;
/// # impl graphyte::SendSocket for Discard {
/// #     fn send(&mut self, buf: &[u8]) -> std::io::Result<usize> { Ok(buf.len()) }
/// # }
/// use graphyte::exporter::GraphiteExporter;
/// let sender = graphyte::Sender::builder("unused").socket(Discard).build()?;
/// let (recorder, exporter) = GraphiteExporter::builder(sender).build()?;
/// metrics::with_local_recorder(&recorder, || metrics::counter!("jobs.done").increment(1));
/// # drop(exporter);
/// # Ok::<(), graphyte::Error>(())
/// ```
pub struct GraphiteRecorder {
    shared: Arc<Shared>,
}

/// What the recorder, the exporter and the flush thread share.
#[derive(Debug)]
struct Shared {
    registry: Registry,
    flusher: Flusher,
}

impl Shared {
    fn flush(&self, end: u64) -> BatchOutcome {
        self.flusher.flush(&self.registry, end)
    }
}

/// Configures and builds a [`GraphiteExporter`]. Created by [`GraphiteExporter::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use graphyte::exporter::{CounterMode, GraphiteExporter, LabelMode};
/// let exporter = GraphiteExporter::builder("carbon.example.com")
///     .interval(Duration::from_secs(60))
///     .counter_mode(CounterMode::Total)
///     .label_mode(LabelMode::Path)
///     .percentiles(&[0.5, 0.99, 0.999])
///     .prefix("metrics")
///     .install()?;
/// # Ok::<(), graphyte::Error>(())
/// ```
#[must_use = "a builder does nothing until built or installed"]
pub struct ExporterBuilder {
    destination: Destination,
    interval: Duration,
    counter_mode: CounterMode,
    label_mode: LabelMode,
    percentiles: Vec<f64>,
    prefix: Option<String>,
    encoder: NameEncoder,
    max_samples: usize,
    flush_thread: bool,
}

impl fmt::Debug for ExporterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExporterBuilder")
            .field("destination", &self.destination)
            .field("interval", &self.interval)
            .field("counter_mode", &self.counter_mode)
            .field("label_mode", &self.label_mode)
            .field("percentiles", &self.percentiles)
            .field("prefix", &self.prefix)
            .field("encoder", &self.encoder)
            .field("max_samples", &self.max_samples)
            .field("flush_thread", &self.flush_thread)
            .finish()
    }
}

impl GraphiteExporter {
    /// Starts configuring an exporter that sends through `destination`: a [`Sender`], a
    /// sender's [`Builder`], or a host name (see [`Destination`]).
    ///
    /// ```no_run
    /// use graphyte::{Sender, exporter::GraphiteExporter};
    /// let exporter = GraphiteExporter::builder(Sender::builder("carbon.example.com").port(2003))
    ///     .install()?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn builder(destination: impl Into<Destination>) -> ExporterBuilder {
        ExporterBuilder {
            destination: destination.into(),
            interval: DEFAULT_INTERVAL,
            counter_mode: CounterMode::default(),
            label_mode: LabelMode::default(),
            percentiles: DEFAULT_PERCENTILES.to_vec(),
            prefix: None,
            encoder: NameEncoder::Strict,
            max_samples: DEFAULT_MAX_SAMPLES,
            flush_thread: true,
        }
    }

    /// Sends the interval ending at `end` now, as the flush thread does at each boundary:
    /// every metric's lines for what was recorded since the last flush, stamped `end` (see
    /// [`Timestamp`]). For tests, and for programs that schedule flushes themselves
    /// ([`ExporterBuilder::flush_thread`]). A later scheduled flush sends only what comes
    /// after this one.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTimestamp`] if `end` is not a valid timestamp; nothing is sent then,
    /// and nothing is reset. What became of the lines is in the [`BatchOutcome`].
    ///
    /// ```
    /// # struct Discard;
    /// # impl graphyte::SendSocket for Discard {
    /// #     fn send(&mut self, buf: &[u8]) -> std::io::Result<usize> { Ok(buf.len()) }
    /// # }
    /// use graphyte::exporter::GraphiteExporter;
    /// let sender = graphyte::Sender::builder("unused").socket(Discard).synchronous().build()?;
    /// let (recorder, exporter) = GraphiteExporter::builder(sender).flush_thread(false).build()?;
    /// metrics::with_local_recorder(&recorder, || metrics::counter!("jobs").increment(3));
    /// let outcome = exporter.flush_at(1_700_000_010)?; // "jobs 3 1700000010"
    /// assert_eq!(outcome.accepted, 1);
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn flush_at(&self, end: impl Into<Timestamp>) -> Result<BatchOutcome, Error> {
        let end = end.into().to_secs()?;
        Ok(self.shared.flush(u64::from(end)))
    }

    /// The sender the exporter sends through, for its [`stats`](Sender::stats).
    pub fn sender(&self) -> &Sender {
        &self.shared.flusher.sender
    }

    /// Stops the flush thread, sends the interval under way (stamped with the end it would
    /// have had), and waits for the sender to write it ([`Sender::flush`], within the
    /// sender's timeout). Dropping the exporter does the same and logs what went wrong.
    ///
    /// # Errors
    ///
    /// The first error of the last interval's lines (one refused, or lost to a full queue or
    /// a sender shut down), else what [`Sender::flush`] returns.
    ///
    /// ```no_run
    /// # let exporter = graphyte::exporter::GraphiteExporter::builder("localhost").install()?;
    /// exporter.shutdown()?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn shutdown(mut self) -> Result<(), Error> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), Error> {
        if std::mem::replace(&mut self.stopped, true) {
            return Ok(());
        }
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let end = self.shared.flusher.current_end(SystemTime::now());
        let outcome = self.shared.flush(end);
        let flushed = self.shared.flusher.sender.flush();
        match outcome.first_error {
            Some(err) => Err(err),
            None => flushed,
        }
    }
}

impl Drop for GraphiteExporter {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            report!(Error, "sending the metrics exporter's last interval: {err}");
        }
    }
}

impl fmt::Debug for GraphiteExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphiteExporter")
            .field("interval", &self.shared.flusher.interval)
            .field("flush_thread", &self.thread.is_some())
            .field("sender", &self.shared.flusher.sender)
            .finish_non_exhaustive()
    }
}

impl ExporterBuilder {
    /// Time between flushes (default 10 s): a whole number of seconds, from 1 s to a day.
    /// Flushes happen at the multiples of the interval since the Unix epoch; make it
    /// Carbon's finest retention for these series.
    ///
    /// ```
    /// let builder = graphyte::exporter::GraphiteExporter::builder("localhost")
    ///     .interval(std::time::Duration::from_secs(60));
    /// # let _ = builder;
    /// ```
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// What a counter sends each interval: its increase (default) or its total.
    ///
    /// ```
    /// use graphyte::exporter::{CounterMode, GraphiteExporter};
    /// let builder = GraphiteExporter::builder("localhost").counter_mode(CounterMode::Total);
    /// # let _ = builder;
    /// ```
    pub fn counter_mode(mut self, mode: CounterMode) -> Self {
        self.counter_mode = mode;
        self
    }

    /// Where labels go: Graphite tags (default) or path segments.
    ///
    /// ```
    /// use graphyte::exporter::{GraphiteExporter, LabelMode};
    /// let builder = GraphiteExporter::builder("localhost").label_mode(LabelMode::Path);
    /// # let _ = builder;
    /// ```
    pub fn label_mode(mut self, mode: LabelMode) -> Self {
        self.label_mode = mode;
        self
    }

    /// The percentiles each histogram sends, as quantiles from 0 to 1 (default 0.5, 0.9,
    /// 0.99); none for count, sum, min, max and mean only.
    ///
    /// ```
    /// let builder = graphyte::exporter::GraphiteExporter::builder("localhost")
    ///     .percentiles(&[0.5, 0.95, 0.999]);
    /// # let _ = builder;
    /// ```
    pub fn percentiles(mut self, quantiles: &[f64]) -> Self {
        self.percentiles = quantiles.to_vec();
        self
    }

    /// Put before every path the exporter sends, joined with a `.` (after the sender's own
    /// prefix, if it has one).
    ///
    /// ```
    /// let builder = graphyte::exporter::GraphiteExporter::builder("localhost").prefix("app.metrics");
    /// # let _ = builder;
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// How names, and labels the tag rules refuse, are cleaned (default
    /// [`NameEncoder::Strict`]).
    ///
    /// ```
    /// use graphyte::{NameEncoder, exporter::GraphiteExporter};
    /// let builder = GraphiteExporter::builder("localhost").name_encoder(NameEncoder::Escape);
    /// # let _ = builder;
    /// ```
    pub fn name_encoder(mut self, encoder: NameEncoder) -> Self {
        self.encoder = encoder;
        self
    }

    /// Most samples a histogram keeps per interval for its percentiles (default 262,144,
    /// 2 MiB; at least 1). Past it, the percentiles come from a uniform sample of the
    /// interval's samples; count, sum, min, max and mean stay exact.
    ///
    /// ```
    /// let builder = graphyte::exporter::GraphiteExporter::builder("localhost").max_samples(10_000);
    /// # let _ = builder;
    /// ```
    pub fn max_samples(mut self, samples: usize) -> Self {
        self.max_samples = samples;
        self
    }

    /// Whether a thread flushes at each boundary of the interval (default: yes). Without
    /// it, nothing is sent until [`GraphiteExporter::flush_at`] (or the exporter's drop):
    /// for tests, and programs that schedule flushes themselves.
    ///
    /// ```
    /// let builder = graphyte::exporter::GraphiteExporter::builder("localhost").flush_thread(false);
    /// # let _ = builder;
    /// ```
    pub fn flush_thread(mut self, enabled: bool) -> Self {
        self.flush_thread = enabled;
        self
    }

    /// Checks the configuration, builds the sender if it was given as a builder or a host,
    /// and starts the flush thread. Returns the recorder, to install or use locally, and the
    /// exporter, which stops it all when dropped.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an interval that is not a whole number of seconds from 1 s to a
    /// day, a percentile outside 0 to 1, or `max_samples(0)`; [`Error::InvalidName`] for a
    /// prefix Carbon cannot take; what [`Builder::build`] returns when it builds the sender;
    /// [`Error::Io`] if the flush thread cannot be started.
    ///
    /// ```
    /// use graphyte::exporter::GraphiteExporter;
    /// let err = GraphiteExporter::builder("localhost")
    ///     .interval(std::time::Duration::from_millis(1500))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, graphyte::Error::Config(_)));
    /// ```
    pub fn build(self) -> Result<(GraphiteRecorder, GraphiteExporter), Error> {
        let interval = self.interval.as_secs();
        if self.interval.subsec_nanos() != 0 || !(1..=MAX_INTERVAL_SECS).contains(&interval) {
            return Err(Error::Config(
                "the exporter's interval must be a whole number of seconds, from 1 s to a day",
            ));
        }
        if self.percentiles.iter().any(|q| !(0.0..=1.0).contains(q)) {
            return Err(Error::Config(
                "percentiles must be quantiles from 0 to 1 (0.99 for p99)",
            ));
        }
        if self.max_samples == 0 {
            return Err(Error::Config("max_samples must be at least 1"));
        }
        if let Some(prefix) = &self.prefix {
            validate::check_prefix(prefix)?;
        }
        // One percentile per path segment: 0.5 and 0.50 are the same line.
        let mut percentiles: Vec<f64> = Vec::new();
        for &q in &self.percentiles {
            let segment = series::percentile_segment(q);
            if !percentiles
                .iter()
                .any(|&p| series::percentile_segment(p) == segment)
            {
                percentiles.push(q);
            }
        }
        let sender = match self.destination.0 {
            Target::Sender(sender) => sender,
            Target::Builder(builder) => builder.build()?,
        };
        let shards = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_SHARDS)
            .next_power_of_two();
        let naming = Naming {
            prefix: self.prefix,
            labels: self.label_mode,
            encoder: self.encoder,
        };
        let shared = Arc::new(Shared {
            registry: Registry::new(naming, &percentiles, shards, self.max_samples),
            flusher: Flusher::new(sender, self.counter_mode, percentiles.into(), interval),
        });
        let (stop, thread) = if self.flush_thread {
            let (stop, stopped) = channel::bounded(1);
            let thread = flush::spawn(Arc::clone(&shared), stopped)?;
            (Some(stop), Some(thread))
        } else {
            (None, None)
        };
        let recorder = GraphiteRecorder {
            shared: Arc::clone(&shared),
        };
        let exporter = GraphiteExporter {
            shared,
            stop,
            thread,
            stopped: false,
        };
        Ok((recorder, exporter))
    }

    /// [`build`](ExporterBuilder::build)s the exporter and installs its recorder as the
    /// process's global `metrics` recorder ([`metrics::set_global_recorder`]). Keep the
    /// exporter it returns until the end of `main`.
    ///
    /// # Errors
    ///
    /// What [`build`](ExporterBuilder::build) returns; [`Error::Config`] if a global
    /// `metrics` recorder is installed already (by this or any other exporter: there can be
    /// one per process). Nothing is left running then.
    ///
    /// ```no_run
    /// use graphyte::exporter::GraphiteExporter;
    /// let exporter = GraphiteExporter::builder("carbon.example.com").install()?;
    /// assert!(GraphiteExporter::builder("carbon.example.com").install().is_err());
    /// # drop(exporter);
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn install(self) -> Result<GraphiteExporter, Error> {
        let (recorder, exporter) = self.build()?;
        match metrics::set_global_recorder(recorder) {
            Ok(()) => Ok(exporter),
            Err(_) => Err(Error::Config(
                "a global metrics recorder is installed already (there can be one per process)",
            )),
        }
    }
}

impl fmt::Debug for GraphiteRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphiteRecorder").finish_non_exhaustive()
    }
}

/// Descriptions and units are not sent: Graphite has no place for them.
impl Recorder for GraphiteRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.shared.registry.counter(key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.shared.registry.gauge(key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.shared.registry.histogram(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::SendSocket;

    struct Discard;

    impl SendSocket for Discard {
        fn send(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
    }

    fn builder() -> ExporterBuilder {
        let sender = Sender::builder("unused")
            .socket(Discard)
            .synchronous()
            .build()
            .unwrap();
        GraphiteExporter::builder(sender).flush_thread(false)
    }

    fn config_error(builder: ExporterBuilder) -> &'static str {
        match builder.build() {
            Err(Error::Config(problem)) => problem,
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn nonsense_settings_are_refused_with_a_message_naming_them() {
        let secs = Duration::from_secs;
        assert!(config_error(builder().interval(Duration::ZERO)).contains("interval"));
        assert!(config_error(builder().interval(Duration::from_millis(10))).contains("interval"));
        assert!(config_error(builder().interval(secs(86_401))).contains("interval"));
        assert!(config_error(builder().percentiles(&[1.5])).contains("percentiles"));
        assert!(config_error(builder().percentiles(&[f64::NAN])).contains("percentiles"));
        assert!(config_error(builder().max_samples(0)).contains("max_samples"));
        assert!(matches!(
            builder().prefix("a..b").build(),
            Err(Error::InvalidName { .. })
        ));
        assert!(builder().interval(secs(86_400)).build().is_ok());
    }

    #[test]
    fn percentiles_given_twice_are_sent_once() {
        let (recorder, exporter) = builder().percentiles(&[0.5, 0.50, 0.9]).build().unwrap();
        let histogram = recorder.shared.registry.histogram(&Key::from_name("h"));
        let paths: Vec<&str> = histogram.paths.iter().map(|p| &**p).collect();
        assert_eq!(
            paths,
            [
                "h.count", "h.sum", "h.min", "h.max", "h.mean", "h.p50", "h.p90"
            ]
        );
        drop(exporter);
    }

    #[test]
    fn the_flush_thread_ends_when_the_exporter_is_dropped() {
        let (_recorder, exporter) = builder().flush_thread(true).build().unwrap();
        assert!(exporter.thread.is_some());
        // Returns at once, not at the next boundary: joining the thread does not wait.
        let started = std::time::Instant::now();
        drop(exporter);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
