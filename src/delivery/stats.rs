//! Counters of what a sender did with the metrics it was given.

use std::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Release};

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
    /// Metrics the socket accepted, in whole frames or whole lines (for TCP: written to the
    /// kernel).
    pub sent: u64,
    /// Bytes the socket accepted.
    pub sent_bytes: u64,
    /// Metrics lost because the queue was full or the sender was shut down (or, in
    /// synchronous mode, sent from inside the sender's own write).
    pub dropped: u64,
    /// Metrics refused as invalid (bad name, tag, value, timestamp or length).
    pub refused: u64,
    /// Queued metrics given up: unsent at shutdown, refused for good by the socket, given up
    /// after repeated failed writes, dropped with a panicking socket or a dead worker, or
    /// failed in synchronous mode.
    pub failed: u64,
    /// Connections opened after the first one.
    pub reconnects: u64,
    /// Failed attempts to connect or write; each one is followed by a backoff.
    pub errors: u64,
    /// Metrics counted in `sent` that may not have been stored: those written on a connection
    /// in the 2 seconds up to its last write, when it later turned out broken. TCP cannot tell
    /// which of them the server had processed, and carbon-cache keeps points in memory for
    /// about a second before writing them to disk. An upper estimate, not a count of losses.
    ///
    /// With replay on (the default over TCP, see [`Builder::replay`](crate::Builder::replay)),
    /// the points kept for replay are written again on the next connection and are not
    /// counted here: only those written in those 2 seconds beyond the replay window or its
    /// byte cap are, and those kept for replay but dropped before they could be written again
    /// (at shutdown, or with a batch given up).
    pub possibly_lost: u64,
    /// Metrics written again on a new connection after the one they were first written on
    /// broke (see [`Builder::replay`](crate::Builder::replay)). Counted in `sent` once, when
    /// first written, and here each time they are written again; their bytes count in
    /// `sent_bytes` each time.
    pub replayed: u64,
}

/// The live counters behind [`Stats`], shared by the handles and the worker. The sending
/// thread touches them only on its error paths.
///
/// A point is counted `taken` before it is counted `sent` or `failed`, and lines are counted
/// `possibly_lost` after `sent`; increments publish with `Release` and a snapshot reads the
/// other way round with `Acquire`, so no snapshot shows more sent than queued.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Points the worker took off the queue (background), or handed to the link
    /// (synchronous).
    pub(crate) taken: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) sent_bytes: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) possibly_lost: AtomicU64,
    pub(crate) replayed: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Release);
        }
    }

    /// A snapshot. `queue` says how many points are still on the queue and whether the
    /// worker has stopped: then no worker will take them, and they count as dropped.
    pub(crate) fn snapshot(&self, queue: impl FnOnce() -> (u64, bool)) -> Stats {
        let possibly_lost = self.possibly_lost.load(Acquire);
        let replayed = self.replayed.load(Acquire);
        let sent = self.sent.load(Acquire);
        let sent_bytes = self.sent_bytes.load(Acquire);
        let failed = self.failed.load(Acquire);
        let dropped = self.dropped.load(Acquire);
        let taken = self.taken.load(Acquire);
        let (waiting, stopped) = queue();
        let (queued_extra, dropped_extra) = if stopped { (0, waiting) } else { (waiting, 0) };
        Stats {
            queued: taken + queued_extra,
            sent,
            sent_bytes,
            dropped: dropped + dropped_extra,
            refused: self.refused.load(Acquire),
            failed,
            reconnects: self.reconnects.load(Acquire),
            errors: self.errors.load(Acquire),
            possibly_lost,
            replayed,
        }
    }
}
