//! The background worker: takes points off the queue, formats them, and writes batches.
//!
//! The queue carries points and, in order with them, the controls that must see exactly what
//! came before them (as tracing-appender's `Msg::Shutdown`): a flush writes what was queued
//! before it; a shutdown writes that and stops. The worker sleeps until its next deadline on
//! a second channel that only carries wake-ups, never on the queue itself: a thread blocked
//! on the queue would make every `send` pay for waking it. A sender wakes it only when it is
//! asleep and a full batch is waiting (see `Background::after_send`), checked with a
//! handshake on `Shared::sleeping` so that no full batch is left waiting.
//!
//! The worker survives a panicking socket (the link catches it); any other panic stops it
//! visibly: what it held is counted as failed, later sends are refused, and flush and
//! shutdown report [`Error::WorkerPanicked`].

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender as ChannelSender, TryRecvError};
use parking_lot::Mutex;

use crate::Error;
use crate::clock::later;
use crate::encode::LineFormat;
use crate::link::{Batch, Link, Report, copy_of, panic_message};
use crate::metric::Point;
use crate::report::{LogLimit, report};
use crate::stats::Counters;

/// What travels on a sender's queue.
pub(crate) enum Msg {
    Point(Point),
    /// Boxed, so a queue slot stays the size of a point.
    Control(Box<Control>),
}

pub(crate) enum Control {
    /// Write everything queued before this, then answer.
    Flush(ChannelSender<Result<(), Error>>),
    /// Write everything queued before this, retrying until the deadline, then stop.
    Shutdown {
        deadline: Instant,
        done: ChannelSender<()>,
    },
}

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

    fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Answers every waiting flush with `error`.
    fn fail_all(&self, error: &io::Error) {
        let waiters = std::mem::take(&mut *self.waiters.lock());
        self.count.fetch_sub(waiters.len(), Ordering::AcqRel);
        for waiter in waiters {
            let _ = waiter.try_send(Err(Error::Io(copy_of(error))));
        }
    }
}

/// Batches written in one go before the worker looks at its wake-ups again.
const MAX_BATCHES_PER_ROUND: usize = 64;

/// The most bytes a batch reserves up front, whatever the batch size.
const MAX_BATCH_RESERVE: usize = 1 << 20;

pub(crate) struct Worker {
    pub(crate) queue: Receiver<Msg>,
    pub(crate) wakes: Receiver<()>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) format: LineFormat,
    pub(crate) link: Link,
    pub(crate) batch_size: usize,
    pub(crate) interval: Duration,
    /// Queue length at which a batch is due whatever the worker holds.
    pub(crate) queue_threshold: usize,
    /// How long to keep trying when every handle is gone without a shutdown.
    pub(crate) timeout: Duration,
    /// Never sent on: dropped when the worker ends, which tells every waiter.
    #[expect(dead_code, reason = "held only to be dropped when the worker ends")]
    pub(crate) exit: ChannelSender<()>,
}

struct State {
    batch: Batch,
    next_flush: Instant,
    drops_reported: u64,
    drop_log: LogLimit,
    reports: Vec<Report>,
}

enum Step {
    Continue,
    Stop,
}

/// How a round of taking and writing ended.
enum Round {
    /// Nothing is due: sleep.
    Idle,
    /// More is waiting: go again without sleeping.
    More,
    /// A control came up: everything before it is in the batch.
    Control(Box<Control>),
}

impl Worker {
    pub(crate) fn spawn(self) -> io::Result<thread::JoinHandle<()>> {
        thread::Builder::new()
            .name("graphyte-worker".into())
            .spawn(move || self.run())
    }

    fn run(mut self) {
        let mut state = State {
            batch: Batch::with_capacity(self.batch_size.saturating_mul(64).min(MAX_BATCH_RESERVE)),
            next_flush: later(Instant::now(), self.interval),
            drops_reported: 0,
            drop_log: LogLimit::new(self.interval),
            reports: Vec::new(),
        };
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.step(&mut state))) {
                Ok(Step::Continue) => {}
                Ok(Step::Stop) => return,
                Err(panic) => return self.die(&mut state, &panic_message(&*panic)),
            }
        }
    }

    fn step(&mut self, state: &mut State) -> Step {
        let round = self.round(state);
        self.report(state);
        match round {
            Round::Control(control) => self.obey(*control, state),
            Round::More => match self.wakes.try_recv() {
                Ok(()) | Err(TryRecvError::Empty) => Step::Continue,
                Err(TryRecvError::Disconnected) => self.orphaned(state),
            },
            Round::Idle => self.sleep(state),
        }
    }

    /// Takes points and writes full batches; at the flush deadline, the partial one too.
    fn round(&mut self, state: &mut State) -> Round {
        #[cfg(test)]
        if self.shared.panic_next_round.swap(false, Ordering::Relaxed) {
            panic!("injected by a test");
        }
        let now = Instant::now();
        let flush_due = now >= state.next_flush;
        if flush_due {
            state.next_flush = later(now, self.interval);
        }
        self.shared.wake_pending.store(false, Ordering::Release);
        for _ in 0..MAX_BATCHES_PER_ROUND {
            if let Some(control) = self.fill(state) {
                return Round::Control(control);
            }
            let full = state.batch.lines >= self.batch_size;
            // Lines left by a failed write go out when the backoff ends, not at the next flush.
            let retrying = self.link.retry_at().is_some();
            let due = (flush_due || retrying) && state.batch.lines > 0;
            if !(full || due) {
                return Round::Idle;
            }
            // A flush under way wants its lines now, backoff or not, or its answer.
            let force = self.shared.flushes.any();
            if let Err(err) = self
                .link
                .deliver(&mut state.batch, force, &mut state.reports)
                && force
                && state.batch.lines > 0
            {
                self.shared.flushes.fail_all(&err);
            }
            self.report(state);
            if self.in_backoff(state) {
                // Nothing can go out until the backoff ends: spare the senders their wake-ups.
                self.shared.wake_pending.store(true, Ordering::Release);
                return Round::Idle;
            }
        }
        Round::More
    }

    fn in_backoff(&self, state: &State) -> bool {
        state.batch.lines > 0 && self.link.retry_at().is_some_and(|at| Instant::now() < at)
    }

    /// Formats points from the queue into the batch until it is full or the queue is empty;
    /// stops at a control, which it returns. Once the sender is closed, the queue gets no new
    /// points, so it takes all of them: the shutdown's control must be reached even when
    /// Carbon cannot be written to.
    fn fill(&mut self, state: &mut State) -> Option<Box<Control>> {
        let mut taken = 0u64;
        let mut control = None;
        let limit = if self.shared.closed.load(Ordering::Acquire) {
            usize::MAX
        } else {
            self.batch_size
        };
        while state.batch.lines < limit {
            match self.queue.try_recv() {
                Ok(Msg::Point(point)) => {
                    self.format.write_line(&point, &mut state.batch.bytes);
                    state.batch.lines += 1;
                    taken += 1;
                }
                Ok(Msg::Control(next)) => {
                    control = Some(next);
                    break;
                }
                Err(_) => break,
            }
        }
        Counters::add(&self.shared.counters.taken, taken);
        control
    }

    fn obey(&mut self, control: Control, state: &mut State) -> Step {
        match control {
            Control::Flush(done) => {
                let result = self.write_all(state);
                self.report(state);
                self.shared.flushes.remove(&done);
                let _ = done.try_send(result.map_err(Error::Io));
                Step::Continue
            }
            Control::Shutdown { deadline, done } => {
                self.finish(state, deadline, false);
                let _ = done.send(());
                Step::Stop
            }
        }
    }

    /// Writes the whole batch now, even during a backoff; stops at the first failure.
    fn write_all(&mut self, state: &mut State) -> io::Result<()> {
        let mut refused = Ok(());
        while state.batch.lines > 0 {
            if let Err(err) = self
                .link
                .deliver(&mut state.batch, true, &mut state.reports)
            {
                if state.batch.lines > 0 {
                    return Err(err);
                }
                refused = Err(err);
            }
        }
        refused
    }

    /// Sleeps until the next deadline or a wake-up. Before sleeping it says so, then looks
    /// at the queue once more: a sender that queued a full batch in between either sees
    /// `sleeping` and wakes it, or was seen here.
    fn sleep(&mut self, state: &mut State) -> Step {
        let deadline = match self.link.retry_at() {
            Some(retry) if state.batch.lines > 0 => retry.min(state.next_flush),
            _ => state.next_flush,
        };
        if !self.in_backoff(state) {
            self.shared.held.store(state.batch.lines, Ordering::Relaxed);
            self.shared.sleeping.store(true, Ordering::SeqCst);
            let queued = self.queue.len();
            if queued >= self.queue_threshold || queued + state.batch.lines >= self.batch_size {
                self.shared.sleeping.store(false, Ordering::Relaxed);
                return Step::Continue;
            }
        }
        let woke = self.wakes.recv_deadline(deadline);
        self.shared.sleeping.store(false, Ordering::Relaxed);
        match woke {
            Ok(()) | Err(RecvTimeoutError::Timeout) => Step::Continue,
            Err(RecvTimeoutError::Disconnected) => self.orphaned(state),
        }
    }

    /// Every handle is gone without a shutdown: still deliver what is queued, for as long
    /// as a shutdown would try.
    fn orphaned(&mut self, state: &mut State) -> Step {
        self.finish(state, later(Instant::now(), self.timeout), true);
        Step::Stop
    }

    /// Writes what is in the batch (and, with `take_rest`, what is queued), retrying after
    /// backoffs until `deadline`; what cannot be written by then is counted as failed. Then
    /// stops: what is still queued came after the shutdown, and is dropped and counted.
    fn finish(&mut self, state: &mut State, deadline: Instant, take_rest: bool) {
        self.report_drops(state);
        loop {
            if take_rest && let Some(control) = self.fill(state) {
                answer_refused(*control, &Error::Closed);
                continue;
            }
            if state.batch.lines == 0 || Instant::now() >= deadline {
                break;
            }
            let _ = self
                .link
                .deliver(&mut state.batch, false, &mut state.reports);
            self.report(state);
            match self.link.retry_at() {
                Some(retry) if state.batch.lines > 0 && retry >= deadline => break,
                Some(retry) if state.batch.lines > 0 => {
                    thread::sleep(retry.saturating_duration_since(Instant::now()));
                }
                _ => {}
            }
        }
        let failed = state.batch.lines as u64;
        Counters::add(&self.shared.counters.failed, failed);
        state.batch.clear();
        self.shared.stopped.store(true, Ordering::Release);
        let late = self.drop_the_rest(Error::Closed);
        if failed > 0 {
            report!(
                Error,
                "shutting down: {failed} metrics could not be sent to carbon in time"
            );
        }
        if late > 0 {
            report!(
                Warn,
                "shutting down: {late} metrics sent while the sender was stopping were dropped"
            );
        }
        self.link.disconnect();
    }

    /// Drops what is left on the queue, counting it, and answers the controls among it.
    /// Returns how many points it dropped.
    fn drop_the_rest(&mut self, reason: Error) -> u64 {
        let mut dropped = 0;
        for msg in self.queue.try_iter() {
            match msg {
                Msg::Point(_) => dropped += 1,
                Msg::Control(control) => answer_refused(*control, &reason),
            }
        }
        Counters::add(&self.shared.counters.dropped, dropped);
        dropped
    }

    /// A panic escaped a step: stop, visibly. What the worker held or was queued is counted
    /// as failed; from now on sends are refused and flush and shutdown say what happened.
    fn die(&mut self, state: &mut State, message: &str) {
        self.shared.dead.store(true, Ordering::SeqCst);
        self.shared.closed.store(true, Ordering::SeqCst);
        let mut lost = state.batch.lines as u64;
        state.batch.clear();
        for msg in self.queue.try_iter() {
            match msg {
                Msg::Point(_) => {
                    Counters::add(&self.shared.counters.taken, 1);
                    lost += 1;
                }
                Msg::Control(control) => answer_refused(*control, &Error::WorkerPanicked),
            }
        }
        Counters::add(&self.shared.counters.failed, lost);
        self.shared.stopped.store(true, Ordering::Release);
        report!(
            Error,
            "the worker thread panicked ({message}) and stopped: {lost} metrics lost, \
             later sends are refused"
        );
    }

    fn report(&mut self, state: &mut State) {
        for report in state.reports.drain(..) {
            report.log();
        }
        self.report_drops(state);
    }

    fn report_drops(&mut self, state: &mut State) {
        let dropped = self.shared.counters.dropped.load(Ordering::Relaxed);
        if dropped > state.drops_reported && state.drop_log.allow(Instant::now()).is_some() {
            report!(
                Warn,
                "queue full: {} metrics dropped since the last report ({dropped} in all); \
                 raise queue_capacity or lower the send rate",
                dropped - state.drops_reported
            );
            state.drops_reported = dropped;
        }
    }
}

/// Answers a control that will not be carried out.
fn answer_refused(control: Control, reason: &Error) {
    match control {
        Control::Flush(done) => {
            let error = match reason {
                Error::WorkerPanicked => Error::WorkerPanicked,
                _ => Error::Closed,
            };
            let _ = done.try_send(Err(error));
        }
        Control::Shutdown { done, .. } => {
            let _ = done.send(());
        }
    }
}
