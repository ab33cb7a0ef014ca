//! The one writer: points are encoded into frames, and frames are delivered over a
//! [`SendSocket`] with the three outcomes of a write (written, failed for now, refused for
//! good), backoff, a bound on a batch that keeps failing, a socket's panics caught, and
//! counting in points, whatever the protocol. Owned by the worker (background mode) or behind
//! the sender's lock (synchronous mode); nothing else writes bytes.
//!
//! It never logs: what happened comes back as [`Report`]s, which the caller logs once it
//! holds no lock (a logger may send metrics).

use std::collections::VecDeque;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::delivery::backoff::Backoff;
use crate::delivery::shared::Shared;
use crate::delivery::stats::Counters;
use crate::error::copy_of;
use crate::point::metric::Point;
use crate::protocol::{Encode, Encoder, Frames};
use crate::report::{LogLimit, panic_message, report};
use crate::transport::SendSocket;

/// How long carbon-cache may hold received points in memory before they are on disk (its
/// writer sleeps a second when idle), plus a margin. Points written on a connection within
/// this time before its last write are counted as possibly lost when it breaks.
pub(crate) const POSSIBLY_LOST_WINDOW: Duration = Duration::from_secs(2);

/// Failed writes in a row on working connections after which a batch is given up.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// How long frames written on a connection are kept, by default, to be written again on the
/// next connection should this one break: carbon-cache may hold points in memory for about a
/// second before they are on disk, and a break is found at the next write (at most one flush
/// interval, 1 s by default, later); 5 s covers both with a margin, half carbon-relay-ng's
/// 10 s keepSafe.
pub(crate) const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(5);

/// The most bytes of frames kept for replay (4 MiB: about 80,000 plaintext lines, 5 s at
/// 16,000 lines a second); beyond it the oldest are forgotten.
pub(crate) const REPLAY_MAX_BYTES: usize = 4 << 20;

pub(crate) struct Link {
    socket: Box<dyn SendSocket>,
    encoder: Encoder,
    frames: Frames,
    shared: Arc<Shared>,
    backoff: Backoff,
    /// Whether a connection has been opened and not yet found broken.
    connected: bool,
    connected_once: bool,
    /// What was written on the current connection, and what is to be written again. Boxed:
    /// the link lives inline in a synchronous sender.
    written: Box<Written>,
    /// Failed writes in a row, on connections that opened, that delivered nothing.
    fruitless: u32,
    log_sends: bool,
    failure_log: LogLimit,
}

/// How a link is set up.
pub(crate) struct LinkSettings {
    pub(crate) backoff: (Duration, Duration),
    pub(crate) log_period: Duration,
    pub(crate) log_sends: bool,
    /// Bytes the frame buffer reserves up front.
    pub(crate) reserve: usize,
    /// How long written frames are kept to be written again after a break; `None`: never
    /// (a datagram socket, whose `max_payload` is set, never replays either).
    pub(crate) replay: Option<Duration>,
}

/// Something worth a log line, logged by whoever called [`Link::deliver`] once it holds no
/// lock.
#[derive(Debug)]
pub(crate) enum Report {
    Sent {
        points: usize,
        bytes: usize,
        took: Duration,
    },
    Recovered {
        failures: u64,
    },
    Failed {
        error: io::Error,
        unsent: usize,
        suppressed: u64,
    },
    Refused {
        error: io::Error,
        points: usize,
        suppressed: u64,
    },
    GaveUp {
        error: io::Error,
        points: usize,
        suppressed: u64,
    },
    Panicked {
        message: String,
        points: usize,
        suppressed: u64,
    },
}

impl Report {
    pub(crate) fn log(&self) {
        match self {
            Report::Sent {
                points,
                bytes,
                took,
            } => {
                report!(Info, "sent {points} metrics ({bytes} bytes) in {took:?}")
            }
            Report::Recovered { failures } => {
                report!(
                    Info,
                    "carbon reachable again after {failures} failed attempts"
                )
            }
            Report::Failed {
                error,
                unsent,
                suppressed,
            } => report!(
                Warn,
                "sending to carbon failed: {error}; {unsent} metrics not written yet, to be \
                 retried{}",
                held_back(*suppressed)
            ),
            Report::Refused {
                error,
                points,
                suppressed,
            } => report!(
                Warn,
                "the socket refused {points} metrics for good ({error}); they are dropped{}",
                held_back(*suppressed)
            ),
            Report::GaveUp {
                error,
                points,
                suppressed,
            } => report!(
                Warn,
                "gave up {points} metrics after {MAX_ATTEMPTS} failed writes on working \
                 connections (last error: {error}){}",
                held_back(*suppressed)
            ),
            Report::Panicked {
                message,
                points,
                suppressed,
            } => report!(
                Error,
                "the socket panicked ({message}); {points} metrics dropped, carrying on{}",
                held_back(*suppressed)
            ),
        }
    }
}

fn held_back(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} similar reports held back)")
    }
}

/// How writing the front frame ended.
enum Attempt {
    Written,
    /// Failed for now, after `written` bytes of the frame; `connected` when the socket's
    /// connect succeeded first.
    Failed {
        error: io::Error,
        written: usize,
        connected: bool,
    },
    /// The rest of the frame, from `written`, will never be taken.
    Refused {
        error: io::Error,
        written: usize,
    },
    /// The socket panicked, after `written` bytes: the batch is dropped.
    Panicked {
        message: String,
        written: usize,
    },
}

impl Link {
    pub(crate) fn new(
        socket: Box<dyn SendSocket>,
        encoder: Encoder,
        shared: Arc<Shared>,
        settings: LinkSettings,
    ) -> Self {
        // A datagram socket has no connection to break, and nothing to write again on.
        let datagrams = guarded(|| socket.max_payload()).map_or(true, |max| max.is_some());
        let replay = match settings.replay {
            Some(window) if !datagrams => Replay::new(window, REPLAY_MAX_BYTES),
            _ => Replay::new(Duration::ZERO, 0),
        };
        let written = Box::new(Written {
            recent: RecentWrites::new(),
            replay,
        });
        Link {
            socket,
            encoder,
            frames: Frames::with_capacity(settings.reserve),
            shared,
            backoff: Backoff::new(settings.backoff.0, settings.backoff.1),
            connected: false,
            connected_once: false,
            written,
            fruitless: 0,
            log_sends: settings.log_sends,
            failure_log: LogLimit::new(settings.log_period),
        }
    }

    /// Encodes a point into the frames waiting to be written.
    #[inline]
    pub(crate) fn push(&mut self, point: &Point) {
        self.encoder.push(point, &mut self.frames);
    }

    /// Appends `count` plaintext lines in their final form. Only a plaintext link is given
    /// lines; should another be, they are counted as failed, never written. The buffer they
    /// came in, or one the link is done with, goes to the sender's spares.
    pub(crate) fn push_lines(&mut self, mut lines: Vec<u8>, count: usize) {
        if !self.encoder.push_lines(&mut lines, count, &mut self.frames) {
            debug_assert!(false, "lines given to a {:?} link", self.encoder.protocol());
            Counters::add(&self.shared.counters.failed, count as u64);
        }
        self.shared.spares.put(lines);
    }

    /// Points waiting to be written: in new frames, and in frames of a broken connection
    /// waiting to be written again.
    #[inline]
    pub(crate) fn held(&self) -> usize {
        self.frames.points() + self.written.replay.pending_points
    }

    /// When the next attempt may be made, if a failure put the link in backoff.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.backoff.retry_at
    }

    /// Drops every point waiting in new frames, counted as failed; returns how many. Frames
    /// waiting to be written again stay: they were sent already (a synchronous sender gives
    /// up its frames after every failed write, and replays on its next one).
    pub(crate) fn give_up_all(&mut self) -> usize {
        let points = self.frames.clear();
        Counters::add(&self.shared.counters.failed, points as u64);
        points
    }

    /// Writes the frames waiting, removing what the socket took and what it refused for good
    /// (counted as failed). After a failure the points not fully written stay for a later
    /// attempt, and the link is in backoff: nothing is tried before
    /// [`retry_at`](Link::retry_at), unless `force`.
    ///
    /// Returns the failure, or else the last refusal, if any.
    pub(crate) fn deliver(&mut self, force: bool, reports: &mut Vec<Report>) -> io::Result<()> {
        let now = Instant::now();
        if !force && self.backoff.retry_at.is_some_and(|at| now < at) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "carbon unreachable; waiting before the next attempt",
            ));
        }
        self.encoder.close(&mut self.frames);
        let mut refused = None;
        let mut sent = (0, 0);
        // The socket is asked to connect before the first frame, and again after a frame
        // ended its connection.
        let mut ready = false;
        while self.written.replay.pending_points > 0 || self.frames.front().is_some() {
            let (attempt, replaying) = self.attempt(&mut ready);
            if replaying {
                if let Err(error) = self.replayed(attempt, now, &mut ready, reports) {
                    self.report_sent(reports, sent, now);
                    return Err(error);
                }
                continue;
            }
            match attempt {
                Attempt::Written => {
                    let (frame, _) = self.frames.front().expect("a frame was written");
                    self.sent(frame.len, frame.points, now);
                    sent = (sent.0 + frame.points, sent.1 + frame.len);
                    self.fruitless = 0;
                    if let Some(failures) = self.backoff.succeeded() {
                        reports.push(Report::Recovered { failures });
                    }
                }
                Attempt::Refused { error, written } => {
                    let whole = self.sent_part(written, now);
                    if whole < written {
                        // Part of a point is on the wire: end it with the connection.
                        self.drop_connection();
                        ready = false;
                    }
                    let points = self.give_up_front();
                    self.report_failure(now, reports, |suppressed| Report::Refused {
                        error: copy_of(&error),
                        points,
                        suppressed,
                    });
                    refused = Some(error);
                }
                Attempt::Panicked { message, written } => {
                    self.sent_part(written, now);
                    self.drop_connection();
                    // A socket that panicked on these points would likely panic again.
                    self.give_up_replay();
                    let points = self.give_up_all();
                    self.report_failure(now, reports, |suppressed| Report::Panicked {
                        message,
                        points,
                        suppressed,
                    });
                    refused = Some(io::Error::other("the socket panicked"));
                }
                Attempt::Failed {
                    error,
                    written,
                    connected,
                } => {
                    self.report_sent(reports, sent, now);
                    return Err(self.failed(written, error, connected, now, reports));
                }
            }
        }
        self.report_sent(reports, sent, now);
        refused.map_or(Ok(()), Err)
    }

    /// What to do after an attempt to write the front frame waiting to be written again.
    /// Written: counted in `replayed` (and `sent_bytes`), never again in `sent`, and never
    /// written a third time; not progress (no reset of `fruitless`, nor of the backoff: only
    /// new frames written are). Failed: the
    /// whole frame is kept for the next connection. Refused: dropped, counted as possibly lost.
    fn replayed(
        &mut self,
        attempt: Attempt,
        now: Instant,
        ready: &mut bool,
        reports: &mut Vec<Report>,
    ) -> io::Result<()> {
        match attempt {
            Attempt::Written => {
                let (bytes, points) = self.written.replay.rewrote();
                Counters::add(&self.shared.counters.replayed, points as u64);
                Counters::add(&self.shared.counters.sent_bytes, bytes as u64);
                // Possibly lost if this connection breaks too. Not progress: a connection
                // that takes the replay and breaks on the next new frame is no recovery, and
                // must not keep a batch from being given up.
                self.written.recent.wrote(now, points);
            }
            Attempt::Refused { error: _, written } => {
                // Removed first: dropping the connection puts what was written again on it
                // back in front of the pending entries.
                let points = self.written.replay.drop_pending_front();
                Counters::add(&self.shared.counters.possibly_lost, points as u64);
                if written > 0 {
                    self.drop_connection();
                    *ready = false;
                }
            }
            Attempt::Panicked {
                message,
                written: _,
            } => {
                self.drop_connection();
                self.give_up_replay();
                let points = self.give_up_all();
                self.report_failure(now, reports, |suppressed| Report::Panicked {
                    message,
                    points,
                    suppressed,
                });
                return Err(io::Error::other("the socket panicked"));
            }
            Attempt::Failed {
                error, connected, ..
            } => {
                // Written again whole on the next connection: a point twice is harmless.
                return Err(self.failed(0, error, connected, now, reports));
            }
        }
        Ok(())
    }

    /// Drops the frames waiting to be written again, counted as possibly lost.
    fn give_up_replay(&mut self) {
        let points = self.written.replay.clear();
        Counters::add(&self.shared.counters.possibly_lost, points as u64);
    }

    fn report_sent(
        &self,
        reports: &mut Vec<Report>,
        (points, bytes): (usize, usize),
        now: Instant,
    ) {
        if self.log_sends && points > 0 {
            reports.push(Report::Sent {
                points,
                bytes,
                took: now.elapsed(),
            });
        }
    }

    /// What to do after a failed attempt: keep what was not written, back off, and give the
    /// batch up after `MAX_ATTEMPTS` fruitless writes on working connections.
    fn failed(
        &mut self,
        written: usize,
        error: io::Error,
        connected: bool,
        now: Instant,
        reports: &mut Vec<Report>,
    ) -> io::Error {
        // Bytes of a point cut short went to a connection now abandoned: resend the point.
        let delivered = self.sent_part(written, now);
        self.drop_connection();
        Counters::add(&self.shared.counters.errors, 1);
        // From the failure, not the attempt's start: a write can hang up to the timeout.
        self.backoff.failed(Instant::now());
        if delivered > 0 {
            self.fruitless = 0;
        } else if connected && !says_unreachable(error.kind()) {
            self.fruitless += 1;
        }
        if self.fruitless >= MAX_ATTEMPTS {
            self.fruitless = 0;
            self.give_up_replay();
            let points = self.give_up_all();
            self.report_failure(now, reports, |suppressed| Report::GaveUp {
                error: copy_of(&error),
                points,
                suppressed,
            });
        } else {
            let unsent = self.frames.points();
            self.report_failure(now, reports, |suppressed| Report::Failed {
                error: copy_of(&error),
                unsent,
                suppressed,
            });
        }
        error
    }

    /// Queues a failure's report, unless one went out within the last log period (it is
    /// then counted in the next one's `suppressed`).
    fn report_failure(
        &self,
        now: Instant,
        reports: &mut Vec<Report>,
        report: impl FnOnce(u64) -> Report,
    ) {
        if let Some(suppressed) = self.failure_log.allow(now) {
            reports.push(report(suppressed));
        }
    }

    /// Connects if needed (once per delivery, and after a dropped connection) and writes the
    /// front frame, as much of it as the socket takes: a frame of a broken connection waiting
    /// to be written again (then `true`), or else the oldest new frame.
    fn attempt(&mut self, ready: &mut bool) -> (Attempt, bool) {
        if let Err(attempt) = self.connect(ready) {
            return (attempt, false);
        }
        if let Some(frame) = self.written.replay.pending_front() {
            return (send_all(&mut *self.socket, frame), true);
        }
        (self.attempt_new(), false)
    }

    /// Connects if needed; the failed attempt, if that failed.
    fn connect(&mut self, ready: &mut bool) -> Result<(), Attempt> {
        if !*ready {
            match guarded(|| self.socket.connect()) {
                Ok(Ok(true)) if self.connected_once => {
                    // The socket found its connection closed by the peer, or we had dropped it.
                    self.connection_lost();
                    Counters::add(&self.shared.counters.reconnects, 1);
                }
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    // Not even connected: an outage, never a refusal of these points.
                    return Err(Attempt::Failed {
                        error,
                        written: 0,
                        connected: false,
                    });
                }
                Err(message) => {
                    return Err(Attempt::Panicked {
                        message,
                        written: 0,
                    });
                }
            }
            self.connected = true;
            self.connected_once = true;
            *ready = true;
        }
        Ok(())
    }

    /// Writes the oldest new frame, as much of it as the socket takes.
    fn attempt_new(&mut self) -> Attempt {
        let max = match guarded(|| self.socket.max_payload()) {
            Ok(max) => max.unwrap_or(usize::MAX),
            Err(message) => {
                return Attempt::Panicked {
                    message,
                    written: 0,
                };
            }
        };
        let Some((_, frame)) = self.frames.front() else {
            return Attempt::Written;
        };
        if frame.len() > max {
            let error = io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame longer than the socket's max_payload",
            );
            return Attempt::Refused { error, written: 0 };
        }
        send_all(&mut *self.socket, frame)
    }

    /// Counts the whole points among the first `written` bytes of the front frame as sent
    /// and removes them; returns how many bytes they were.
    fn sent_part(&mut self, written: usize, now: Instant) -> usize {
        let Some((_, frame)) = self.frames.front() else {
            return 0;
        };
        let (bytes, points) = self.encoder.whole_points(frame, written);
        self.sent(bytes, points, now);
        bytes
    }

    /// Removes the first `bytes` of the front frame, `points` whole points, counted as sent.
    fn sent(&mut self, bytes: usize, points: usize, now: Instant) {
        if bytes == 0 {
            return;
        }
        if let Some((_, frame)) = self.frames.front() {
            self.written.replay.wrote(now, &frame[..bytes], points);
        }
        self.frames.consume_front(bytes, points);
        Counters::add(&self.shared.counters.sent, points as u64);
        Counters::add(&self.shared.counters.sent_bytes, bytes as u64);
        self.wrote(now, points);
    }

    /// Drops what is left of the front frame, counted as failed; returns how many points.
    fn give_up_front(&mut self) -> usize {
        let Some((frame, _)) = self.frames.front() else {
            return 0;
        };
        self.frames.consume_front(frame.len, frame.points);
        Counters::add(&self.shared.counters.failed, frame.points as u64);
        frame.points
    }

    /// Drops a connection found broken, or left with part of a point on it.
    fn drop_connection(&mut self) {
        let _ = guarded(|| self.socket.disconnect());
        self.connection_lost();
    }

    /// Closes the connection when the sender stops. Unlike a connection found broken
    /// (`drop_connection`), this one was fine: nothing written on it is counted as possibly
    /// lost, nor kept for replay. Frames of an earlier, broken connection still waiting to be
    /// written again are dropped, counted as possibly lost.
    pub(crate) fn close(&mut self) {
        let _ = guarded(|| self.socket.disconnect());
        self.connected = false;
        self.written.recent.clear();
        self.give_up_replay();
    }

    /// Remembers a write on the current connection, forgetting the ones too old to matter.
    fn wrote(&mut self, now: Instant, points: usize) {
        self.written.recent.wrote(now, points);
    }

    /// The current connection broke: what was written on it shortly before its last write
    /// may not have reached the server's disk. What is kept for replay is written again on
    /// the next connection, before anything new; the rest of it is counted as possibly lost.
    fn connection_lost(&mut self) {
        if self.connected {
            // Both are the latest writes on this connection: the ones not kept for replay
            // (beyond its window or byte cap, or replay off) are the ones possibly lost.
            let points = self
                .written
                .recent
                .points()
                .saturating_sub(self.written.replay.kept_points());
            Counters::add(&self.shared.counters.possibly_lost, points as u64);
            self.written.replay.broke();
        }
        self.connected = false;
        self.written.recent.clear();
    }
}

/// Writes `frame` whole, as much as the socket takes at each call.
fn send_all(socket: &mut dyn SendSocket, frame: &[u8]) -> Attempt {
    let mut pos = 0;
    while pos < frame.len() {
        match guarded(|| socket.send(&frame[pos..])) {
            Ok(Ok(0)) => {
                return Attempt::Failed {
                    error: io::ErrorKind::WriteZero.into(),
                    written: pos,
                    connected: true,
                };
            }
            Ok(Ok(n)) => pos += n.min(frame.len() - pos),
            Ok(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(error)) if is_refusal(error.kind()) => {
                return Attempt::Refused {
                    error,
                    written: pos,
                };
            }
            Ok(Err(error)) => {
                return Attempt::Failed {
                    error,
                    written: pos,
                    connected: true,
                };
            }
            Err(message) => {
                return Attempt::Panicked {
                    message,
                    written: pos,
                };
            }
        }
    }
    Attempt::Written
}

/// What was written on the current connection, and what is to be written again.
#[derive(Debug)]
struct Written {
    /// Writes on the current connection within `POSSIBLY_LOST_WINDOW` of the latest one.
    recent: RecentWrites,
    /// Frames written on the current connection within the replay window, and those of a
    /// broken connection waiting to be written again.
    replay: Replay,
}

/// Errors by which a socket says "never these bytes": drop them and go on.
fn is_refusal(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
    )
}

/// Errors that say the server cannot be reached, or is slow: an outage, which keeps the
/// batch however long it lasts, not a sign that the batch itself is at fault.
fn says_unreachable(kind: io::ErrorKind) -> bool {
    use io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | NotConnected
            | HostUnreachable
            | NetworkUnreachable
            | AddrNotAvailable
            | NotFound
            | TimedOut
            | WouldBlock
    )
}

/// The writes on a connection within [`POSSIBLY_LOST_WINDOW`] of the latest one, in steps of
/// [`RecentWrites::STEP`]: a burst of small writes (a synchronous sender's, thousands a
/// second) takes a few dozen entries, not one each. A step is forgotten with its last write,
/// so a write may be counted up to a step longer than the window, never shorter.
#[derive(Debug)]
struct RecentWrites(VecDeque<Step>);

#[derive(Debug)]
struct Step {
    first: Instant,
    last: Instant,
    points: usize,
}

impl RecentWrites {
    const STEP: Duration = Duration::from_millis(POSSIBLY_LOST_WINDOW.as_millis() as u64 / 32);
    /// The most entries there can be: steps start at least a step apart, so a window holds
    /// 32 starts after the oldest step's, and one more comes before the oldest goes.
    const ENTRIES: usize = 34;

    fn new() -> Self {
        RecentWrites(VecDeque::with_capacity(Self::ENTRIES))
    }

    fn wrote(&mut self, now: Instant, points: usize) {
        match self.0.back_mut() {
            Some(step) if now.saturating_duration_since(step.first) < Self::STEP => {
                step.last = step.last.max(now);
                step.points += points;
            }
            _ => self.0.push_back(Step {
                first: now,
                last: now,
                points,
            }),
        }
        while self
            .0
            .front()
            .is_some_and(|step| now.saturating_duration_since(step.last) > POSSIBLY_LOST_WINDOW)
        {
            self.0.pop_front();
        }
    }

    fn points(&self) -> usize {
        self.0.iter().map(|step| step.points).sum()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// Frames written on the current connection within `window` of the latest write, at most
/// `max_bytes` of them (the latest first), kept to be written again on the next connection if
/// this one breaks: carbon keeps the last value written for each time slot, so a point
/// written twice is stored once. A frame is kept whole (a pickle frame is never split), or
/// the whole points written of a frame cut short. Writes close in time share an entry, so a
/// synchronous sender's thousands of small writes a second take a few dozen entries.
///
/// `kept` holds what was written on the current connection; when it breaks, `kept` goes in
/// front of `pending`, which the link writes before any new frame. A pending entry written
/// again is forgotten: an entry is replayed at most once, so a server that breaks every
/// connection (crashing, or closing it on reading some frame) is not sent the same frames
/// for ever; if the new connection breaks too, its points count as possibly lost.
#[derive(Debug)]
struct Replay {
    window: Duration,
    max_bytes: usize,
    kept: VecDeque<Kept>,
    pending: VecDeque<Kept>,
    /// Bytes in `kept` and `pending`.
    bytes: usize,
    kept_points: usize,
    pending_points: usize,
    /// Emptied buffers, for the next entries.
    spares: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct Kept {
    first: Instant,
    last: Instant,
    bytes: Vec<u8>,
    points: usize,
}

impl Replay {
    /// Writes starting within this of an entry's first one join it.
    const STEP: Duration = Duration::from_millis(50);
    /// The most bytes writes are joined into (a larger frame takes an entry of its own).
    const CHUNK: usize = 64 << 10;
    /// Emptied buffers kept for reuse.
    const SPARES: usize = 8;

    /// A zero `window` or `max_bytes` keeps nothing.
    fn new(window: Duration, max_bytes: usize) -> Self {
        Replay {
            window,
            max_bytes,
            kept: VecDeque::new(),
            pending: VecDeque::new(),
            bytes: 0,
            kept_points: 0,
            pending_points: 0,
            spares: Vec::new(),
        }
    }

    fn is_on(&self) -> bool {
        !self.window.is_zero() && self.max_bytes > 0
    }

    /// Keeps `frame` (`points` whole points), written at `now`, forgetting what is now too
    /// old or beyond the byte cap.
    fn wrote(&mut self, now: Instant, frame: &[u8], points: usize) {
        if !self.is_on() {
            return;
        }
        if frame.len() > self.max_bytes {
            // Not even this frame fits: nothing before it may be kept either.
            self.forget_kept(|_| true);
            return;
        }
        match self.kept.back_mut() {
            Some(back)
                if now.saturating_duration_since(back.first) < Self::STEP
                    && back.bytes.len() + frame.len() <= Self::CHUNK =>
            {
                back.bytes.extend_from_slice(frame);
                back.last = back.last.max(now);
                back.points += points;
            }
            _ => {
                let mut bytes = self.spares.pop().unwrap_or_default();
                bytes.extend_from_slice(frame);
                self.kept.push_back(Kept {
                    first: now,
                    last: now,
                    bytes,
                    points,
                });
            }
        }
        self.bytes += frame.len();
        self.kept_points += points;
        self.trim(now);
    }

    /// Forgets kept entries older than the window before `now`, and the oldest beyond the
    /// byte cap.
    fn trim(&mut self, now: Instant) {
        let window = self.window;
        let over = self.bytes.saturating_sub(self.max_bytes);
        let mut dropped = 0;
        self.forget_kept(|entry| {
            let forget = dropped < over || now.saturating_duration_since(entry.last) > window;
            dropped += entry.bytes.len();
            forget
        });
    }

    /// Forgets kept entries from the oldest while `forget` says so.
    fn forget_kept(&mut self, mut forget: impl FnMut(&Kept) -> bool) {
        while let Some(front) = self.kept.front() {
            if !forget(front) {
                break;
            }
            let entry = self.kept.pop_front().expect("a front entry");
            self.bytes -= entry.bytes.len();
            self.kept_points -= entry.points;
            self.recycle(entry.bytes);
        }
    }

    fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.spares.len() < Self::SPARES && bytes.capacity() <= Self::CHUNK * 2 {
            bytes.clear();
            self.spares.push(bytes);
        }
    }

    /// Points kept from the current connection.
    fn kept_points(&self) -> usize {
        self.kept_points
    }

    /// The connection broke: what was written on it is to be written again first.
    fn broke(&mut self) {
        while let Some(entry) = self.kept.pop_back() {
            self.pending.push_front(entry);
        }
        self.pending_points += self.kept_points;
        self.kept_points = 0;
    }

    /// The bytes of the next entry to write again.
    fn pending_front(&self) -> Option<&[u8]> {
        self.pending.front().map(|entry| entry.bytes.as_slice())
    }

    /// The next entry to write again was written whole: it is forgotten, never replayed
    /// twice. Returns its bytes and points.
    fn rewrote(&mut self) -> (usize, usize) {
        let bytes = self.pending.front().map_or(0, |entry| entry.bytes.len());
        (bytes, self.drop_pending_front())
    }

    /// Drops the next entry to write again; returns its points.
    fn drop_pending_front(&mut self) -> usize {
        let Some(entry) = self.pending.pop_front() else {
            return 0;
        };
        self.bytes -= entry.bytes.len();
        self.pending_points -= entry.points;
        self.recycle(entry.bytes);
        entry.points
    }

    /// Forgets everything; returns how many points were waiting to be written again.
    fn clear(&mut self) -> usize {
        let points = self.pending_points;
        while !self.pending.is_empty() {
            self.drop_pending_front();
        }
        self.forget_kept(|_| true);
        points
    }
}

/// Runs a call into the user's socket, turning a panic into its message.
fn guarded<R>(call: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(call)).map_err(|panic| panic_message(&*panic))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending_bytes(replay: &mut Replay) -> Vec<u8> {
        let mut bytes = Vec::new();
        while let Some(front) = replay.pending_front() {
            bytes.extend_from_slice(front);
            replay.drop_pending_front();
        }
        bytes
    }

    #[test]
    fn after_a_break_the_frames_of_the_window_are_pending_whole_and_in_order() {
        let start = Instant::now();
        let mut replay = Replay::new(Duration::from_secs(5), 1 << 20);
        replay.wrote(start, b"a 1 1\n", 1);
        replay.wrote(start + Duration::from_secs(1), b"b 2 2\nc 3 3\n", 2);
        assert_eq!(replay.kept_points(), 3);
        replay.broke();
        assert_eq!((replay.kept_points(), replay.pending_points), (0, 3));
        assert_eq!(pending_bytes(&mut replay), b"a 1 1\nb 2 2\nc 3 3\n");
        assert_eq!((replay.pending_points, replay.bytes), (0, 0));
    }

    #[test]
    fn frames_beyond_the_byte_cap_are_not_replayed() {
        let start = Instant::now();
        let cap = 3 * Replay::CHUNK;
        let mut replay = Replay::new(Duration::from_secs(5), cap);
        let frame = vec![b'x'; Replay::CHUNK];
        for i in 0..10 {
            // Each frame a step apart: an entry of its own.
            replay.wrote(start + Replay::STEP * i, &frame, 1);
            assert!(replay.bytes <= cap);
        }
        assert_eq!(replay.kept_points(), 3);
        // A frame larger than the cap is not kept, nor anything before it.
        replay.wrote(start + Replay::STEP * 11, &vec![b'y'; cap + 1], 1);
        assert_eq!((replay.kept_points(), replay.bytes), (0, 0));
    }

    #[test]
    fn frames_older_than_the_window_before_the_latest_write_are_not_replayed() {
        let start = Instant::now();
        let window = Duration::from_secs(5);
        let mut replay = Replay::new(window, 1 << 20);
        replay.wrote(start, b"old 1 1\n", 1);
        replay.wrote(start + window + Replay::STEP, b"new 2 2\n", 1);
        replay.broke();
        assert_eq!(pending_bytes(&mut replay), b"new 2 2\n");
    }

    #[test]
    fn frames_written_again_are_not_kept_for_the_next_break() {
        let start = Instant::now();
        let mut replay = Replay::new(Duration::from_secs(5), 1 << 20);
        replay.wrote(start, b"a 1 1\n", 1);
        replay.wrote(start + Replay::STEP, b"b 2 2\n", 1);
        replay.broke();
        assert_eq!(replay.rewrote(), (6, 1));
        replay.broke();
        assert_eq!((replay.pending_points, replay.kept_points()), (1, 0));
        assert_eq!(pending_bytes(&mut replay), b"b 2 2\n");
        assert_eq!(replay.bytes, 0);
    }

    /// What a [`ScriptedSocket`] does, shared with the test.
    #[derive(Default)]
    struct Script {
        /// Bytes taken, one entry per connection.
        connections: Vec<Vec<u8>>,
        connected: bool,
        /// The peer closed the connection: the next `connect` opens a new one.
        closed_by_peer: bool,
        /// The connection breaks (`BrokenPipe`) when a send reaches these bytes.
        break_at: Option<&'static [u8]>,
        /// From the second connection on, these bytes are refused (`InvalidData`).
        refuse_again: Option<&'static [u8]>,
        /// Sends refused.
        refusals: usize,
    }

    struct ScriptedSocket(Arc<std::sync::Mutex<Script>>);

    impl SendSocket for ScriptedSocket {
        fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut script = self.0.lock().unwrap();
            let find = |needle: &[u8]| buf.windows(needle.len()).position(|w| w == needle);
            let refuse = script
                .refuse_again
                .filter(|_| script.connections.len() > 1)
                .and_then(find);
            let (stop, kind) = match (script.break_at.and_then(find), refuse) {
                (Some(at), _) => (Some(at), io::ErrorKind::BrokenPipe),
                (None, Some(at)) => (Some(at), io::ErrorKind::InvalidData),
                (None, None) => (None, io::ErrorKind::Other),
            };
            let take = stop.unwrap_or(buf.len());
            if take == 0 {
                if kind == io::ErrorKind::InvalidData {
                    script.refusals += 1;
                } else {
                    script.connected = false;
                }
                return Err(kind.into());
            }
            script
                .connections
                .last_mut()
                .unwrap()
                .extend_from_slice(&buf[..take]);
            Ok(take)
        }

        fn connect(&mut self) -> io::Result<bool> {
            let mut script = self.0.lock().unwrap();
            if script.connected && !script.closed_by_peer {
                return Ok(false);
            }
            script.connected = true;
            script.closed_by_peer = false;
            script.connections.push(Vec::new());
            Ok(true)
        }

        fn disconnect(&mut self) {
            self.0.lock().unwrap().connected = false;
        }
    }

    fn scripted_link(script: Script) -> (Link, Arc<std::sync::Mutex<Script>>, Arc<Shared>) {
        let script = Arc::new(std::sync::Mutex::new(script));
        let shared = Arc::new(Shared::default());
        let encoder = Encoder::new(
            crate::protocol::Protocol::Plaintext,
            crate::protocol::PathStyle::new(None, ""),
            1 << 16,
            None,
        );
        let settings = LinkSettings {
            backoff: (Duration::from_millis(1), Duration::from_millis(2)),
            log_period: Duration::ZERO,
            log_sends: false,
            reserve: 0,
            replay: Some(DEFAULT_REPLAY_WINDOW),
        };
        let socket = Box::new(ScriptedSocket(Arc::clone(&script)));
        let link = Link::new(socket, encoder, Arc::clone(&shared), settings);
        (link, script, shared)
    }

    fn deliver_lines(link: &mut Link, lines: &[u8], reports: &mut Vec<Report>) -> io::Result<()> {
        let count = lines.iter().filter(|&&b| b == b'\n').count();
        link.push_lines(lines.to_vec(), count);
        link.deliver(true, reports)
    }

    #[test]
    fn a_batch_that_breaks_every_connection_is_given_up_and_what_came_before_is_replayed_once() {
        let (mut link, script, shared) = scripted_link(Script {
            break_at: Some(b"bad"),
            ..Script::default()
        });
        let mut reports = Vec::new();
        deliver_lines(&mut link, b"good 1 1\n", &mut reports).unwrap();
        let mut failures = 0;
        link.push_lines(b"bad 2 2\n".to_vec(), 1);
        while link.held() > 0 && failures < 3 * MAX_ATTEMPTS {
            if link.deliver(true, &mut reports).is_err() {
                failures += 1;
            }
        }
        let stats = shared.counters.snapshot(|| (0, false));
        assert_eq!(link.held(), 0, "the batch is still held");
        assert_eq!(failures, MAX_ATTEMPTS);
        assert_eq!((stats.sent, stats.failed), (1, 1));
        assert!(stats.replayed <= 1, "replayed {} times", stats.replayed);
        let good = script
            .lock()
            .unwrap()
            .connections
            .iter()
            .filter(|c| c.starts_with(b"good"))
            .count();
        assert!(good <= 2, "\"good\" written on {good} connections");
        assert!(
            !reports
                .iter()
                .any(|r| matches!(r, Report::Recovered { .. })),
            "{reports:?}"
        );
    }

    #[test]
    fn a_replayed_frame_refused_part_way_is_dropped_not_the_one_replayed_before_it() {
        let (mut link, script, shared) = scripted_link(Script {
            refuse_again: Some(b"bad"),
            ..Script::default()
        });
        let mut reports = Vec::new();
        deliver_lines(&mut link, b"a 1 1\n", &mut reports).unwrap();
        // Written a step later: an entry of its own.
        std::thread::sleep(Replay::STEP * 2);
        deliver_lines(&mut link, b"b 2 2\nbad 3 3\n", &mut reports).unwrap();
        script.lock().unwrap().closed_by_peer = true;
        let _ = deliver_lines(&mut link, b"c 4 4\n", &mut reports);
        let script = script.lock().unwrap();
        assert_eq!(script.refusals, 1, "{:?}", script.connections);
        assert_eq!(link.held(), 0);
        let all: Vec<u8> = script.connections[1..].concat();
        assert!(all.starts_with(b"a 1 1\nb 2 2\n"), "{all:?}");
        assert!(all.ends_with(b"c 4 4\n"), "{all:?}");
        assert_eq!(
            all.windows(5).filter(|w| w == b"b 2 2").count(),
            1,
            "{all:?}"
        );
        assert_eq!(shared.counters.snapshot(|| (0, false)).sent, 4);
    }

    #[test]
    fn replay_off_keeps_nothing() {
        let mut replay = Replay::new(Duration::ZERO, 1 << 20);
        replay.wrote(Instant::now(), b"a 1 1\n", 1);
        replay.broke();
        assert_eq!((replay.pending_points, replay.bytes), (0, 0));
    }

    #[test]
    fn a_burst_of_writes_takes_a_few_entries_and_keeps_every_point() {
        let start = Instant::now();
        let mut recent = RecentWrites::new();
        for i in 0..100_000u32 {
            // Spread over the window, as a synchronous sender's writes are.
            recent.wrote(start + POSSIBLY_LOST_WINDOW * i / 100_000, 3);
        }
        assert_eq!(recent.points(), 300_000);
        assert!(
            recent.0.len() < RecentWrites::ENTRIES,
            "{} entries",
            recent.0.len()
        );
    }

    #[test]
    fn a_burst_over_ten_windows_keeps_a_bounded_record_of_the_last_window_only() {
        let start = Instant::now();
        let mut recent = RecentWrites::new();
        let writes = 100_000u32;
        let span = POSSIBLY_LOST_WINDOW * 10;
        let mut latest = start;
        for i in 0..writes {
            latest = start + span * i / writes;
            recent.wrote(latest, 1);
            assert!(recent.0.len() <= RecentWrites::ENTRIES);
        }
        // Every write within the window of the latest is counted; none older than a step
        // more than the window.
        let within = (0..writes)
            .filter(|&i| latest - (start + span * i / writes) <= POSSIBLY_LOST_WINDOW)
            .count();
        let within_a_step_more = (0..writes)
            .filter(|&i| {
                latest - (start + span * i / writes) <= POSSIBLY_LOST_WINDOW + RecentWrites::STEP
            })
            .count();
        assert!(
            (within..=within_a_step_more).contains(&recent.points()),
            "{} points, {within}..={within_a_step_more} expected",
            recent.points()
        );
    }

    #[test]
    fn a_step_whose_last_write_is_within_the_window_is_kept_whole() {
        let start = Instant::now();
        let mut recent = RecentWrites::new();
        recent.wrote(start, 5);
        recent.wrote(start + RecentWrites::STEP / 2, 7);
        recent.wrote(start + RecentWrites::STEP / 2 + POSSIBLY_LOST_WINDOW, 1);
        assert_eq!(recent.points(), 13);
    }

    #[test]
    fn writes_just_past_the_window_before_the_latest_are_forgotten() {
        let start = Instant::now();
        let mut recent = RecentWrites::new();
        recent.wrote(start, 5);
        recent.wrote(start + POSSIBLY_LOST_WINDOW + Duration::from_millis(1), 7);
        assert_eq!(recent.points(), 7);
    }

    #[test]
    fn writes_longer_than_the_window_before_the_latest_are_forgotten() {
        let start = Instant::now();
        let mut recent = RecentWrites::new();
        recent.wrote(start, 5);
        recent.wrote(start + POSSIBLY_LOST_WINDOW + RecentWrites::STEP, 7);
        assert_eq!(recent.points(), 7);
    }

    #[test]
    fn writes_within_the_window_before_the_latest_are_kept() {
        let start = Instant::now();
        let mut recent = RecentWrites::new();
        recent.wrote(start, 5);
        recent.wrote(start + POSSIBLY_LOST_WINDOW, 7);
        assert_eq!(recent.points(), 12);
    }
}
