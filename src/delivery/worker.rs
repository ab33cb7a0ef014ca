//! The background worker: takes points off the queue, hands them to the link to encode, and
//! has it write batches.
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender as ChannelSender, TryRecvError};

use crate::delivery::link::{Link, Report};
use crate::delivery::shared::Shared;
use crate::delivery::stats::Counters;
use crate::error::Error;
use crate::point::clock::later;
use crate::point::metric::Point;
use crate::report::{LogLimit, panic_message, report};

/// What travels on a sender's queue.
pub(crate) enum Msg {
    Point(Point),
    /// Plaintext lines in their final form, forwarded whole (see `LineBatch`). Boxed, as
    /// controls are.
    Lines(Box<Lines>),
    /// Boxed, so a queue slot stays the size of a point.
    Control(Box<Control>),
}

impl Msg {
    /// The points this message carries.
    pub(crate) fn points(&self) -> usize {
        match self {
            Msg::Point(_) => 1,
            Msg::Lines(lines) => lines.count,
            Msg::Control(_) => 0,
        }
    }
}

/// Checked plaintext lines, each ending in `\n`, and how many.
pub(crate) struct Lines {
    pub(crate) bytes: Vec<u8>,
    pub(crate) count: usize,
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

/// Batches written in one go before the worker looks at its wake-ups again.
const MAX_BATCHES_PER_ROUND: usize = 64;

pub(crate) struct Worker {
    pub(crate) queue: Receiver<Msg>,
    pub(crate) wakes: Receiver<()>,
    pub(crate) shared: Arc<Shared>,
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
            next_flush: later(Instant::now(), self.interval),
            drops_reported: 0,
            drop_log: LogLimit::new(self.interval),
            reports: Vec::new(),
        };
        loop {
            match catch_unwind(AssertUnwindSafe(|| self.step(&mut state))) {
                Ok(Step::Continue) => {}
                Ok(Step::Stop) => return,
                Err(panic) => return self.die(&panic_message(&*panic)),
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
            if let Some(control) = self.fill() {
                return Round::Control(control);
            }
            let held = self.link.held();
            let full = held >= self.batch_size;
            // Points left by a failed write go out when the backoff ends, not at the next flush.
            let retrying = self.link.retry_at().is_some();
            let due = (flush_due || retrying) && held > 0;
            if !(full || due) {
                return Round::Idle;
            }
            // A flush under way wants its points now, backoff or not, or its answer.
            let force = self.shared.flushes.any();
            if let Err(err) = self.link.deliver(force, &mut state.reports)
                && force
                && self.link.held() > 0
            {
                self.shared.flushes.fail_all(&err);
            }
            self.report(state);
            if self.in_backoff() {
                // Nothing can go out until the backoff ends: spare the senders their wake-ups.
                self.shared.wake_pending.store(true, Ordering::Release);
                return Round::Idle;
            }
        }
        Round::More
    }

    fn in_backoff(&self) -> bool {
        self.link.held() > 0 && self.link.retry_at().is_some_and(|at| Instant::now() < at)
    }

    /// Hands points from the queue to the link until the batch is full or the queue is empty;
    /// stops at a control, which it returns. Once the sender is closed, the queue gets no new
    /// points, so it takes all of them: the shutdown's control must be reached even when
    /// Carbon cannot be written to.
    fn fill(&mut self) -> Option<Box<Control>> {
        let mut taken = Taken {
            counter: &self.shared.counters.taken,
            points: 0,
        };
        let mut control = None;
        let limit = if self.shared.closed.load(Ordering::Acquire) {
            usize::MAX
        } else {
            self.batch_size
        };
        let mut held = self.link.held();
        while held < limit {
            match self.queue.try_recv() {
                Ok(Msg::Point(point)) => {
                    taken.points += 1;
                    self.link.push(&point);
                    held += 1;
                }
                Ok(Msg::Lines(lines)) => {
                    // Off the queue's count now: until `taken` is added, a snapshot shows a
                    // few points less queued, never more sent than queued.
                    self.shared.chunk_out(lines.count);
                    taken.points += lines.count as u64;
                    self.link.push_lines(lines.bytes, lines.count);
                    held += lines.count;
                }
                Ok(Msg::Control(next)) => {
                    control = Some(next);
                    break;
                }
                Err(_) => break,
            }
        }
        let took_any = taken.points > 0;
        drop(taken);
        if took_any {
            self.shared
                .room
                .made(|| self.queue.len() < self.queue_threshold);
        }
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
        while self.link.held() > 0 {
            if let Err(err) = self.link.deliver(true, &mut state.reports) {
                if self.link.held() > 0 {
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
        let held = self.link.held();
        let deadline = match self.link.retry_at() {
            Some(retry) if held > 0 => retry.min(state.next_flush),
            _ => state.next_flush,
        };
        if !self.in_backoff() {
            self.shared.held.store(held, Ordering::Relaxed);
            self.shared.sleeping.store(true, Ordering::SeqCst);
            let queued = self.queue.len();
            if queued >= self.queue_threshold || queued + held >= self.batch_size {
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
            if take_rest && let Some(control) = self.fill() {
                answer_refused(*control, &Error::Closed);
                continue;
            }
            if self.link.held() == 0 || Instant::now() >= deadline {
                break;
            }
            let _ = self.link.deliver(false, &mut state.reports);
            self.report(state);
            match self.link.retry_at() {
                Some(retry) if self.link.held() > 0 && retry >= deadline => break,
                Some(retry) if self.link.held() > 0 => {
                    thread::sleep(retry.saturating_duration_since(Instant::now()));
                }
                _ => {}
            }
        }
        let failed = self.link.give_up_all() as u64;
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
        self.link.close();
    }

    /// Drops what is left on the queue, counting it, and answers the controls among it.
    /// Returns how many points it dropped.
    fn drop_the_rest(&mut self, reason: Error) -> u64 {
        let mut dropped = 0;
        for msg in self.queue.try_iter() {
            match msg {
                Msg::Point(_) => dropped += 1,
                Msg::Lines(lines) => {
                    dropped += lines.count as u64;
                    self.shared.chunk_out(lines.count);
                }
                Msg::Control(control) => answer_refused(*control, &reason),
            }
        }
        Counters::add(&self.shared.counters.dropped, dropped);
        dropped
    }

    /// A panic escaped a step: stop, visibly. What the worker held or was queued is counted
    /// as failed; from now on sends are refused and flush and shutdown say what happened.
    fn die(&mut self, message: &str) {
        self.shared.dead.store(true, Ordering::SeqCst);
        self.shared.closed.store(true, Ordering::SeqCst);
        let mut lost = self.link.give_up_all() as u64;
        for msg in self.queue.try_iter() {
            match msg {
                // Counted before any later control is answered: its caller sees them.
                Msg::Point(_) | Msg::Lines(_) => {
                    let points = msg.points() as u64;
                    if let Msg::Lines(lines) = &msg {
                        self.shared.chunk_out(lines.count);
                    }
                    Counters::add(&self.shared.counters.taken, points);
                    Counters::add(&self.shared.counters.failed, points);
                    lost += points;
                }
                Msg::Control(control) => answer_refused(*control, &Error::WorkerPanicked),
            }
        }
        // A panic inside the loop that takes points can leave some taken and not yet in the
        // link, or in it and not yet counted as taken: every point taken is failed unless sent.
        let counters = &self.shared.counters;
        let taken = counters.taken.load(Ordering::Acquire);
        let accounted =
            counters.sent.load(Ordering::Acquire) + counters.failed.load(Ordering::Acquire);
        let unaccounted = taken.saturating_sub(accounted);
        Counters::add(&counters.failed, unaccounted);
        lost += unaccounted;
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

/// Counts the points taken off the queue when dropped, also when a panic unwinds.
struct Taken<'a> {
    counter: &'a AtomicU64,
    points: u64,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        Counters::add(self.counter, self.points);
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
