//! What a sender's handles and its worker share: the counters and the flags of their
//! handshakes.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_channel::Sender as ChannelSender;
use parking_lot::Mutex;

use crate::delivery::stats::Counters;
use crate::error::{Error, copy_of};

/// What the handles and the worker share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) counters: Counters,
    /// Set while a wake-up is on its way (or the worker cannot take points anyway), so that
    /// senders do not send another.
    pub(crate) wake_pending: AtomicBool,
    /// Set while the worker waits with nothing to do.
    pub(crate) sleeping: AtomicBool,
    /// Lines the worker holds in its batch while it sleeps.
    pub(crate) held: AtomicUsize,
    /// Set when shutdown begins (or the worker died): sends are refused from then on.
    pub(crate) closed: AtomicBool,
    /// Set once the worker has taken its last point: what is still queued is dropped.
    pub(crate) stopped: AtomicBool,
    /// Set when the worker panicked.
    pub(crate) dead: AtomicBool,
    /// Sends under `FullQueue::Block` in progress; a shutdown waits for them.
    pub(crate) blocking_sends: AtomicUsize,
    /// Flushes waiting for their answer. The worker tries to write at once while there are
    /// any, and answers them all when that fails, even before it reaches their controls.
    pub(crate) flushes: FlushWaiters,
    /// Makes the worker's next round panic: how unit tests reach the path of a worker lost
    /// to a bug, which nothing else can take any more.
    #[cfg(test)]
    pub(crate) panic_next_round: AtomicBool,
}

/// The answer channels of the flushes under way.
#[derive(Debug, Default)]
pub(crate) struct FlushWaiters {
    count: AtomicUsize,
    waiters: Mutex<Vec<ChannelSender<Result<(), Error>>>>,
}

impl FlushWaiters {
    pub(crate) fn add(&self, done: &ChannelSender<Result<(), Error>>) {
        self.waiters.lock().push(done.clone());
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn remove(&self, done: &ChannelSender<Result<(), Error>>) {
        let mut waiters = self.waiters.lock();
        let before = waiters.len();
        waiters.retain(|waiter| !waiter.same_channel(done));
        self.count
            .fetch_sub(before - waiters.len(), Ordering::AcqRel);
    }

    pub(crate) fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Answers every waiting flush with `error`.
    pub(crate) fn fail_all(&self, error: &io::Error) {
        let waiters = std::mem::take(&mut *self.waiters.lock());
        self.count.fetch_sub(waiters.len(), Ordering::AcqRel);
        for waiter in waiters {
            let _ = waiter.try_send(Err(Error::Io(copy_of(error))));
        }
    }
}
