//! Counters of what a sender did with the metrics it was given.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of a [`Sender`](crate::Sender)'s counters, all since it was built.
///
/// Every metric given to a sender ends up in exactly one of `refused`, `dropped` or `queued`;
/// every queued metric is, once the queue is empty, either `sent` or `failed`:
///
/// ```text
/// attempted = refused + dropped + queued
/// queued    = sent + failed + (still in the queue or the worker's buffer)
/// ```
///
/// ```
/// let sender = graphyte::Sender::builder("localhost").build()?;
/// let stats = sender.stats();
/// assert_eq!(stats.queued, 0);
/// # Ok::<(), graphyte::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Metrics accepted: put on the queue (background mode) or handed to the socket
    /// (synchronous mode).
    pub queued: u64,
    /// Lines the socket accepted (for TCP: written to the kernel).
    pub sent: u64,
    /// Bytes the socket accepted.
    pub sent_bytes: u64,
    /// Metrics lost because the queue was full or the sender was shut down.
    pub dropped: u64,
    /// Metrics refused as invalid (bad name, tag, value, timestamp or length).
    pub refused: u64,
    /// Queued metrics given up after I/O errors: unsent at shutdown, or failed in
    /// synchronous mode.
    pub failed: u64,
    /// Connections opened after the first one.
    pub reconnects: u64,
    /// Failed attempts to connect or write; each one is followed by a backoff.
    pub errors: u64,
    /// Lines counted in `sent` that may not have been stored: those written on a connection
    /// in the 2 seconds up to its last write, when it later turned out broken. TCP cannot tell
    /// which of them the server had processed, and carbon-cache keeps points in memory for
    /// about a second before writing them to disk. An upper estimate, not a count of losses.
    pub possibly_lost: u64,
}

/// The live counters behind [`Stats`], shared by the handles and the worker. The sending
/// thread touches them only on its error paths.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Points the worker took off the queue (background), or lines written (synchronous).
    pub(crate) taken: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) sent_bytes: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) possibly_lost: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// A snapshot; `waiting` is how many points are still on the queue, and counted as
    /// dropped when the sender was shut down (no worker will take them).
    pub(crate) fn snapshot(&self, waiting: u64, closed: bool) -> Stats {
        let (queued_extra, dropped_extra) = if closed { (0, waiting) } else { (waiting, 0) };
        Stats {
            queued: self.taken.load(Relaxed) + queued_extra,
            sent: self.sent.load(Relaxed),
            sent_bytes: self.sent_bytes.load(Relaxed),
            dropped: self.dropped.load(Relaxed) + dropped_extra,
            refused: self.refused.load(Relaxed),
            failed: self.failed.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            errors: self.errors.load(Relaxed),
            possibly_lost: self.possibly_lost.load(Relaxed),
        }
    }
}
