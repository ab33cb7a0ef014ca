//! The process-wide default sender: [`init`] installs it, the free functions use it.
//!
//! Like the `log` crate's global logger, but replaceable: each thread keeps a clone of the
//! current default and a generation number, and takes the lock only when `init` or
//! `shutdown` has changed the default since it last looked. The hot path is one atomic load.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::builder::Builder;
use crate::delivery::stats::Stats;
use crate::error::Error;
use crate::point::metric::{Metric, Name, Timestamp, Value};
use crate::report::report;
use crate::sender::{BatchOutcome, Sender};

static DEFAULT: RwLock<Option<Sender>> = RwLock::new(None);
/// Bumped after every change of `DEFAULT`.
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static CACHED: RefCell<(u64, Option<Sender>)> = const { RefCell::new((u64::MAX, None)) };
}

/// Runs `f` with the default sender, if one is installed.
fn with_default<R>(f: impl FnOnce(&Sender) -> R) -> Option<R> {
    let generation = GENERATION.load(Ordering::Acquire);
    let mut f = Some(f);
    let cached = CACHED.try_with(|cell| {
        // Busy when a send re-enters from inside a send (a logger that sends metrics).
        let mut cached = cell.try_borrow_mut().ok()?;
        if cached.0 != generation {
            *cached = (generation, DEFAULT.read().clone());
        }
        Some(
            cached
                .1
                .as_ref()
                .map(|sender| (f.take().expect("called once"))(sender)),
        )
    });
    match cached {
        Ok(Some(result)) => result,
        // Thread-local storage is being torn down, or busy: use the lock.
        _ => {
            let sender = DEFAULT.read().clone();
            sender.as_ref().map(f.take().expect("called once"))
        }
    }
}

fn replace_default(sender: Option<Sender>) -> Option<Sender> {
    let old = std::mem::replace(&mut *DEFAULT.write(), sender);
    GENERATION.fetch_add(1, Ordering::AcqRel);
    old
}

/// Builds a sender and installs it as the process-wide default used by [`send`] and the
/// other free functions.
///
/// The default stays installed until [`shutdown`] (or the next `init`, which replaces it and
/// flushes the old one). The returned guard only flushes: dropping it writes what is queued
/// and waits for it (up to the sender's timeout). Keep it in `main` until the end, so that
/// the last metrics are written before the process exits; a guard dropped early (`let _ =
/// graphyte::init(..)`) costs only that final flush, as sends go on working.
///
/// ```no_run
/// use std::time::Duration;
/// fn main() -> Result<(), graphyte::Error> {
///     let _guard = graphyte::init(
///         graphyte::Sender::builder("carbon.example.com")
///             .prefix("myapp")
///             .interval(Duration::from_secs(10)),
///     )?;
///     graphyte::send("requests.ok", 42);
///     Ok(())
/// } // _guard dropped here: queued metrics are written before the program exits
/// ```
///
/// # Errors
///
/// What [`Builder::build`] returns for an unusable configuration; the previous default, if
/// any, then stays installed.
pub fn init(builder: Builder) -> Result<DefaultGuard, Error> {
    let sender = builder.build()?;
    if let Some(Err(err)) = replace_default(Some(sender.clone())).map(|old| old.flush()) {
        report!(Warn, "flushing the replaced default sender: {err}");
    }
    Ok(DefaultGuard { sender })
}

/// Returned by [`init`]: dropping it writes what the sender has queued and waits for it, up
/// to the sender's timeout. It does not stop or uninstall the default sender (only
/// [`shutdown`] does), so dropping it early loses nothing but that final flush.
#[must_use = "dropping the guard flushes at once; keep it until the end of main so that the \
              last metrics are written before the process exits"]
#[derive(Debug)]
pub struct DefaultGuard {
    sender: Sender,
}

impl DefaultGuard {
    /// The sender this guard flushes, for its [`stats`](Sender::stats) or to hand it around.
    ///
    /// ```
    /// # struct Discard;
    /// # impl graphyte::SendSocket for Discard {
    /// #     fn send(&mut self, buf: &[u8]) -> std::io::Result<usize> { Ok(buf.len()) }
    /// # }
    /// let guard = graphyte::init(graphyte::Sender::builder("unused").socket(Discard))?;
    /// println!("{:?}", guard.sender().stats());
    /// # graphyte::shutdown(std::time::Duration::from_secs(1))?;
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    pub fn sender(&self) -> &Sender {
        &self.sender
    }
}

impl Drop for DefaultGuard {
    fn drop(&mut self) {
        if let Err(err) = self.sender.flush() {
            report!(Error, "flushing the default sender: {err}");
        }
    }
}

/// Sends `value` for `name` through the default sender, stamped now. See [`Sender::send`].
///
/// Before [`init`] (or after [`shutdown`]) this does nothing.
///
/// ```
/// graphyte::send("requests.ok", 42);
/// ```
pub fn send<'a>(name: impl Into<Name<'a>>, value: impl Into<Value>) {
    with_default(|sender| sender.send(name, value));
}

/// Sends `value` for `name` at `timestamp` through the default sender. See [`Sender::send_at`].
///
/// ```
/// graphyte::send_at("batch.rows", 1500, std::time::SystemTime::now());
/// ```
pub fn send_at<'a>(
    name: impl Into<Name<'a>>,
    value: impl Into<Value>,
    timestamp: impl Into<Timestamp>,
) {
    with_default(|sender| sender.send_at(name, value, timestamp));
}

/// Sends `value` for `name` with tags through the default sender. See [`Sender::send_tagged`].
///
/// ```
/// graphyte::send_tagged("queue.depth", 7, &[("queue", "mail")]);
/// ```
pub fn send_tagged<'a>(name: impl Into<Name<'a>>, value: impl Into<Value>, tags: &[(&str, &str)]) {
    with_default(|sender| sender.send_tagged(name, value, tags));
}

/// Sends a [`Metric`] through the default sender. See [`Sender::send_metric`].
///
/// ```
/// graphyte::send_metric(graphyte::Metric::new("disk.free", 12.5));
/// ```
pub fn send_metric(metric: Metric<'_>) {
    with_default(|sender| sender.send_metric(metric));
}

/// Sends many metrics in one call through the default sender. See [`Sender::send_batch`]:
/// each metric is checked on its own. Before [`init`] nothing is sent and the metrics are not
/// even looked at: the outcome counts none, with [`Error::NoDefaultSender`].
///
/// ```
/// let outcome = graphyte::send_batch([("disk.free", 12.5), ("disk.used", 87.5)]);
/// assert!(matches!(outcome.first_error, Some(graphyte::Error::NoDefaultSender)));
/// ```
pub fn send_batch<'a, M: Into<Metric<'a>>>(metrics: impl IntoIterator<Item = M>) -> BatchOutcome {
    with_default(|sender| sender.send_batch(metrics)).unwrap_or_else(BatchOutcome::no_sender)
}

/// Sends a [`Metric`] through the default sender and says what happened to it. See
/// [`Sender::try_send`].
///
/// # Errors
///
/// [`Error::NoDefaultSender`] before [`init`] or after [`shutdown`]; otherwise what
/// [`Sender::try_send`] returns.
///
/// ```
/// let result = graphyte::try_send(graphyte::Metric::new("a.b", 1));
/// assert!(matches!(result, Err(graphyte::Error::NoDefaultSender)));
/// ```
pub fn try_send(metric: Metric<'_>) -> Result<(), Error> {
    with_default(|sender| sender.try_send(metric)).unwrap_or(Err(Error::NoDefaultSender))
}

/// Writes what the default sender has queued and waits for it. Does nothing before [`init`].
///
/// # Errors
///
/// What [`Sender::flush`] returns.
///
/// ```no_run
/// graphyte::flush()?;
/// # Ok::<(), graphyte::Error>(())
/// ```
pub fn flush() -> Result<(), Error> {
    let sender = DEFAULT.read().clone();
    sender.map_or(Ok(()), |sender| sender.flush())
}

/// Uninstalls the default sender and stops it like [`Sender::shutdown`]: what was queued is
/// written, and later sends through the free functions do nothing. Does nothing when no
/// default is installed.
///
/// # Errors
///
/// What [`Sender::shutdown`] returns.
///
/// ```no_run
/// graphyte::shutdown(std::time::Duration::from_secs(2))?;
/// # Ok::<(), graphyte::Error>(())
/// ```
pub fn shutdown(timeout: Duration) -> Result<(), Error> {
    replace_default(None).map_or(Ok(()), |sender| sender.shutdown(timeout))
}

/// The default sender's counters, if one is installed.
///
/// ```
/// if let Some(stats) = graphyte::stats() {
///     println!("{} metrics sent", stats.sent);
/// }
/// ```
#[must_use]
pub fn stats() -> Option<Stats> {
    DEFAULT.read().as_ref().map(Sender::stats)
}
