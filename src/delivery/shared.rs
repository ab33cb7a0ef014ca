//! What a sender's handles and its worker share: the counters and the flags of their
//! handshakes.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender as ChannelSender;
use parking_lot::{Condvar, Mutex};

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
    /// Points the worker holds in its batch while it sleeps.
    pub(crate) held: AtomicUsize,
    /// Set when shutdown begins (or the worker died): sends are refused from then on.
    pub(crate) closed: AtomicBool,
    /// Set once the worker has taken its last point: what is still queued is dropped.
    pub(crate) stopped: AtomicBool,
    /// Set when the worker panicked.
    pub(crate) dead: AtomicBool,
    /// Chunks of lines on the queue, and the lines they carry: with the queue's length, how
    /// many points are queued. Counted in once on the queue, so the worker may count one out
    /// first: signed, and read clamped.
    pub(crate) queued_chunks: AtomicIsize,
    pub(crate) queued_lines: AtomicIsize,
    /// Sends under `FullQueue::Block` in progress; a shutdown waits for them.
    pub(crate) blocking_sends: AtomicUsize,
    /// Where sends under `FullQueue::Block` wait for the worker to make room.
    pub(crate) room: Room,
    /// Buffers of lines the worker is done with, for the next [`LineBatch`]es to fill.
    ///
    /// [`LineBatch`]: crate::LineBatch
    pub(crate) spares: Spares,
    /// Flushes waiting for their answer. The worker tries to write at once while there are
    /// any, and answers them all when that fails, even before it reaches their controls.
    pub(crate) flushes: FlushWaiters,
    /// Makes the worker's next round panic: how unit tests reach the path of a worker lost
    /// to a bug, which nothing else can take any more.
    #[cfg(test)]
    pub(crate) panic_next_round: AtomicBool,
}

impl Shared {
    /// Counts a chunk of `lines` lines put on the queue.
    pub(crate) fn chunk_in(&self, lines: usize) {
        self.queued_lines
            .fetch_add(lines as isize, Ordering::AcqRel);
        self.queued_chunks.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts a chunk of `lines` lines taken off the queue.
    pub(crate) fn chunk_out(&self, lines: usize) {
        self.queued_chunks.fetch_sub(1, Ordering::AcqRel);
        self.queued_lines
            .fetch_sub(lines as isize, Ordering::AcqRel);
    }

    /// Points in `messages` messages on the queue, a chunk counting its lines. Exact when the
    /// queue is still; close to it while chunks come and go.
    pub(crate) fn points_queued(&self, messages: usize) -> usize {
        let chunks = self.queued_chunks.load(Ordering::Acquire).max(0) as usize;
        let lines = self.queued_lines.load(Ordering::Acquire).max(0) as usize;
        messages.saturating_sub(chunks) + lines
    }
}

/// Emptied buffers of lines, kept for reuse: a fresh buffer for each chunk of a stream costs
/// a page fault for every 4 KiB filled, more than the copying. A few are kept, not too
/// small to matter nor so large that an idle sender holds much memory.
#[derive(Debug, Default)]
pub(crate) struct Spares(Mutex<Vec<Vec<u8>>>);

impl Spares {
    /// Buffers kept at most.
    const KEPT: usize = 4;
    /// The room a buffer must have, at least and at most, to be kept.
    const SIZES: std::ops::RangeInclusive<usize> = 4096..=(1 << 20);

    /// Keeps `buffer` emptied, if it is worth it and there is room.
    pub(crate) fn put(&self, mut buffer: Vec<u8>) {
        if !Self::SIZES.contains(&buffer.capacity()) {
            return;
        }
        buffer.clear();
        let mut kept = self.0.lock();
        if kept.len() < Self::KEPT {
            kept.push(buffer);
        }
    }

    /// A buffer kept, if any.
    pub(crate) fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().pop()
    }
}

/// Where sends that found the queue full (`FullQueue::Block`) wait: until the worker has
/// taken it below the queue threshold, not for one free slot. Refilling each slot as it frees
/// (what the channel's own blocking send does) keeps the queue full and both threads on its
/// head, the sender spinning there while the worker takes point after point: the worker slows
/// down, so the queue stays full, and a run that falls into this stays in it at several times
/// the CPU per line.
#[derive(Debug, Default)]
pub(crate) struct Room {
    waiting: AtomicUsize,
    lock: Mutex<()>,
    made: Condvar,
}

impl Room {
    /// Waits while `no_room` holds, until the worker says there is room, for at most `slice`.
    pub(crate) fn wait(&self, no_room: impl Fn() -> bool, slice: Duration) {
        let mut guard = self.lock.lock();
        // Counted before looking (`SeqCst`, as the worker's taking is): either the worker sees
        // a waiter after it took, or this sees what it took.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        if no_room() {
            self.made.wait_for(&mut guard, slice);
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes the waiting sends, if any, once `room` holds.
    pub(crate) fn made(&self, room: impl Fn() -> bool) {
        if self.waiting.load(Ordering::SeqCst) > 0 && room() {
            let _guard = self.lock.lock();
            self.made.notify_all();
        }
    }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::thread;
    use std::time::Instant;

    use super::*;

    /// Long enough that a waiter returning sooner was woken, not timed out.
    const LONG: Duration = Duration::from_secs(30);

    #[test]
    fn a_blocked_send_does_not_wait_when_there_is_room_already() {
        let room = Room::default();
        let started = Instant::now();
        room.wait(|| false, LONG);
        assert!(started.elapsed() < LONG / 2);
    }

    #[test]
    fn a_blocked_send_is_woken_as_soon_as_the_worker_makes_room() {
        let room = Arc::new(Room::default());
        let full = Arc::new(AtomicBool::new(true));
        let waiter = {
            let (room, full) = (Arc::clone(&room), Arc::clone(&full));
            thread::spawn(move || {
                let started = Instant::now();
                room.wait(|| full.load(Ordering::SeqCst), LONG);
                started.elapsed()
            })
        };
        while room.waiting.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        full.store(false, Ordering::SeqCst);
        room.made(|| true);
        assert!(waiter.join().unwrap() < LONG / 2);
    }

    #[test]
    fn a_blocked_send_keeps_waiting_while_the_queue_is_above_the_threshold() {
        let room = Arc::new(Room::default());
        let slice = Duration::from_millis(200);
        let waiter = {
            let room = Arc::clone(&room);
            thread::spawn(move || {
                let started = Instant::now();
                room.wait(|| true, slice);
                started.elapsed()
            })
        };
        while room.waiting.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        // The worker took a point, but the queue is still above its threshold.
        room.made(|| false);
        assert!(waiter.join().unwrap() >= slice);
    }
}
