//! The process-wide default sender: [`init`] installs it, the free functions use it.
//!
//! Like the `log` crate's global logger, but replaceable: each thread keeps a clone of the
//! current default and a generation number, and takes the lock only when `init` or
//! `shutdown` has changed the default since it last looked. The hot path is one atomic load.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::{Builder, Error, Metric, Sender, Stats, Timestamp, Value};

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
/// Calling it again replaces the default, flushing the old one first. Keep the returned
/// guard alive for as long as the program sends metrics: bind it in `main` to a named
/// variable such as `_guard` (not to `_`, which drops it at once). Dropping it writes what is
/// queued and stops the worker.
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
pub fn init(builder: Builder) -> Result<DefaultGuard, Error> {
    let sender = builder.build()?;
    if let Some(Err(err)) = replace_default(Some(sender.clone())).map(|old| old.flush()) {
        log::warn!(target: "graphyte", "flushing the replaced default sender: {err}");
    }
    Ok(DefaultGuard { sender })
}

/// Keeps the default sender installed by [`init`]; dropping it uninstalls the sender (if it is
/// still the default), writes what is queued, and joins the worker, waiting at most the
/// sender's timeout.
#[must_use = "dropping the guard stops the default sender at once"]
#[derive(Debug)]
pub struct DefaultGuard {
    sender: Sender,
}

impl DefaultGuard {
    /// The sender this guard keeps, for its [`stats`](Sender::stats) or to hand it around.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }
}

impl Drop for DefaultGuard {
    fn drop(&mut self) {
        {
            let mut default = DEFAULT.write();
            if default.as_ref().is_some_and(|d| d.same_as(&self.sender)) {
                *default = None;
                GENERATION.fetch_add(1, Ordering::AcqRel);
            }
        }
        if let Err(err) = self.sender.shutdown(self.sender.timeout()) {
            log::error!(target: "graphyte", "stopping the default sender: {err}");
        }
    }
}

/// Sends `value` for `name` through the default sender, stamped now. See [`Sender::send`].
///
/// Before [`init`] (or after [`shutdown`]) this does nothing.
pub fn send(name: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
    with_default(|sender| sender.send(name, value));
}

/// Sends `value` for `name` at `timestamp` through the default sender. See [`Sender::send_at`].
pub fn send_at(
    name: impl Into<Cow<'static, str>>,
    value: impl Into<Value>,
    timestamp: impl Into<Timestamp>,
) {
    with_default(|sender| sender.send_at(name, value, timestamp));
}

/// Sends `value` for `name` with tags through the default sender. See [`Sender::send_tagged`].
pub fn send_tagged(
    name: impl Into<Cow<'static, str>>,
    value: impl Into<Value>,
    tags: &[(&str, &str)],
) {
    with_default(|sender| sender.send_tagged(name, value, tags));
}

/// Sends a [`Metric`] through the default sender. See [`Sender::send_metric`].
pub fn send_metric(metric: Metric<'_>) {
    with_default(|sender| sender.send_metric(metric));
}

/// Sends a [`Metric`] through the default sender and says what happened to it; before
/// [`init`] that is [`Error::NoDefaultSender`]. See [`Sender::try_send`].
pub fn try_send(metric: Metric<'_>) -> Result<(), Error> {
    with_default(|sender| sender.try_send(metric)).unwrap_or(Err(Error::NoDefaultSender))
}

/// Writes what the default sender has queued and waits for it. Does nothing before [`init`].
pub fn flush() -> Result<(), Error> {
    let sender = DEFAULT.read().clone();
    sender.map_or(Ok(()), |sender| sender.flush())
}

/// Uninstalls the default sender and stops it like [`Sender::shutdown`]. Later sends through
/// the free functions do nothing. Does nothing when no default is installed.
pub fn shutdown(timeout: Duration) -> Result<(), Error> {
    replace_default(None).map_or(Ok(()), |sender| sender.shutdown(timeout))
}

/// The default sender's counters, if one is installed.
pub fn stats() -> Option<Stats> {
    DEFAULT.read().as_ref().map(Sender::stats)
}
