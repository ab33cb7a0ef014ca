//! The background worker: takes points off the queue, formats them, and writes batches.
//!
//! It sleeps until its next deadline (the flush interval, or the end of a backoff) on a
//! command channel, never on the queue itself: a thread blocked on the queue would make every
//! `send` pay for waking it. Senders wake it only when a batch is waiting (see
//! `Background::after_send`), so sporadic sends cost what bursty ones do.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender as ChannelSender, TryRecvError};

use crate::encode::LineFormat;
use crate::link::{Batch, Link, LogLimit};
use crate::metric::Point;
use crate::stats::Counters;

/// What the handles and the worker share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) counters: Counters,
    /// Set while the worker has been asked to wake (or cannot take points anyway), so that
    /// senders do not wake it again.
    pub(crate) wake_pending: AtomicBool,
    /// Set by the worker once it has taken its last point.
    pub(crate) stopped: AtomicBool,
}

pub(crate) enum Command {
    /// A batch is waiting on the queue.
    Wake,
    /// Write everything queued so far, then answer.
    Flush(ChannelSender<io::Result<()>>),
    /// Write everything queued, giving up at the deadline, then answer and stop.
    Shutdown {
        deadline: Instant,
        done: ChannelSender<()>,
    },
}

/// Batches written in one go before the worker looks at its commands again, so a flood of
/// points cannot starve a shutdown.
const MAX_BATCHES_PER_ROUND: usize = 64;

pub(crate) struct Worker {
    pub(crate) points: Receiver<Point>,
    pub(crate) commands: Receiver<Command>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) format: LineFormat,
    pub(crate) link: Link,
    pub(crate) batch_size: usize,
    pub(crate) interval: Duration,
}

struct State {
    batch: Batch,
    next_flush: Instant,
    drops_reported: u64,
    drop_log: LogLimit,
}

impl Worker {
    pub(crate) fn spawn(self) -> io::Result<thread::JoinHandle<()>> {
        thread::Builder::new()
            .name("graphyte-worker".into())
            .spawn(move || self.run())
    }

    fn run(mut self) {
        let mut state = State {
            batch: Batch::with_capacity(self.batch_size * 64),
            next_flush: Instant::now() + self.interval,
            drops_reported: 0,
            drop_log: LogLimit::new(self.interval),
        };
        loop {
            let more = self.round(&mut state);
            self.report_drops(&mut state);
            let command = if more {
                match self.commands.try_recv() {
                    Ok(command) => Some(command),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match self.commands.recv_deadline(self.next_wake(&state)) {
                    Ok(command) => Some(command),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            match command {
                None | Some(Command::Wake) => {}
                Some(Command::Flush(done)) => {
                    let _ = done.send(self.flush(&mut state));
                }
                Some(Command::Shutdown { deadline, done }) => {
                    self.finish(&mut state, deadline);
                    let _ = done.send(());
                    return;
                }
            }
        }
        // Every handle is gone without a shutdown: still deliver what we can.
        self.finish(&mut state, Instant::now() + self.interval);
    }

    fn next_wake(&self, state: &State) -> Instant {
        match self.link.retry_at() {
            Some(retry) if state.batch.lines > 0 => retry.min(state.next_flush),
            _ => state.next_flush,
        }
    }

    /// Takes points and writes full batches; at the flush deadline, the partial one too.
    /// Returns true when it stopped with work still waiting.
    fn round(&mut self, state: &mut State) -> bool {
        let now = Instant::now();
        let flush_due = now >= state.next_flush;
        if flush_due {
            state.next_flush = now + self.interval;
        }
        self.shared.wake_pending.store(false, Ordering::Release);
        for _ in 0..MAX_BATCHES_PER_ROUND {
            self.fill(state, usize::MAX);
            let full = state.batch.lines >= self.batch_size;
            // Lines left by a failed write go out when the backoff ends, not at the next flush.
            let retrying = self.link.retry_at().is_some();
            let due = (flush_due || retrying) && state.batch.lines > 0;
            if !(full || due) {
                return false;
            }
            if self.write(state, false).is_err() {
                // Nothing can go out until the backoff ends: spare the senders their wake-ups.
                self.shared.wake_pending.store(true, Ordering::Release);
                return false;
            }
        }
        true
    }

    /// Formats points from the queue into the batch until it is full, the queue is empty, or
    /// `limit` points were taken. Returns how many were taken.
    fn fill(&mut self, state: &mut State, limit: usize) -> usize {
        let room = self.batch_size.saturating_sub(state.batch.lines).min(limit);
        let mut taken = 0;
        while taken < room {
            match self.points.try_recv() {
                Ok(point) => {
                    self.format.write_line(&point, &mut state.batch.bytes);
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        state.batch.lines += taken;
        Counters::add(&self.shared.counters.taken, taken as u64);
        taken
    }

    fn write(&mut self, state: &mut State, force: bool) -> io::Result<()> {
        self.link.deliver(&mut state.batch, force)
    }

    /// Writes what was queued before the flush was asked for, trying even during a backoff.
    fn flush(&mut self, state: &mut State) -> io::Result<()> {
        let mut left = self.points.len();
        loop {
            left -= self.fill(state, left);
            if state.batch.lines == 0 {
                return Ok(());
            }
            self.write(state, true)?;
        }
    }

    /// Writes everything still queued, retrying after backoffs until `deadline`; what cannot
    /// be written by then is counted as failed.
    fn finish(&mut self, state: &mut State, deadline: Instant) {
        while Instant::now() < deadline {
            self.fill(state, usize::MAX);
            if state.batch.lines == 0 {
                break;
            }
            if self.write(state, false).is_ok() {
                continue;
            }
            match self.link.retry_at() {
                Some(retry) if retry < deadline => {
                    thread::sleep(retry.saturating_duration_since(Instant::now()))
                }
                _ => break,
            }
        }
        // Points still queued now will never be written: take them so they count as failed.
        let left = self.points.try_iter().take(self.points.len()).count() as u64;
        Counters::add(&self.shared.counters.taken, left);
        let failed = state.batch.lines as u64 + left;
        self.shared.stopped.store(true, Ordering::Release);
        if failed > 0 {
            Counters::add(&self.shared.counters.failed, failed);
            log::error!(target: "graphyte", "shutting down: {failed} metrics could not be sent to carbon");
        }
        self.report_drops(state);
        self.link.disconnect();
    }

    fn report_drops(&mut self, state: &mut State) {
        let dropped = self.shared.counters.dropped.load(Ordering::Relaxed);
        if dropped > state.drops_reported && state.drop_log.allow(Instant::now()).is_some() {
            log::warn!(
                target: "graphyte",
                "queue full: {} metrics dropped since the last report ({dropped} in all); \
                 raise queue_capacity or lower the send rate",
                dropped - state.drops_reported
            );
            state.drops_reported = dropped;
        }
    }
}
