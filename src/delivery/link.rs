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

pub(crate) struct Link {
    socket: Box<dyn SendSocket>,
    encoder: Encoder,
    frames: Frames,
    shared: Arc<Shared>,
    backoff: Backoff,
    /// Whether a connection has been opened and not yet found broken.
    connected: bool,
    connected_once: bool,
    /// Writes on the current connection within `POSSIBLY_LOST_WINDOW` of the latest one.
    recent: RecentWrites,
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
        Link {
            socket,
            encoder,
            frames: Frames::with_capacity(settings.reserve),
            shared,
            backoff: Backoff::new(settings.backoff.0, settings.backoff.1),
            connected: false,
            connected_once: false,
            recent: RecentWrites::new(),
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

    /// Points waiting to be written.
    #[inline]
    pub(crate) fn held(&self) -> usize {
        self.frames.points()
    }

    /// When the next attempt may be made, if a failure put the link in backoff.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.backoff.retry_at
    }

    /// Drops every point waiting, counted as failed; returns how many.
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
        while self.frames.front().is_some() {
            let attempt = self.attempt(&mut ready);
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
    /// front frame, as much of it as the socket takes.
    fn attempt(&mut self, ready: &mut bool) -> Attempt {
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
                    return Attempt::Failed {
                        error,
                        written: 0,
                        connected: false,
                    };
                }
                Err(message) => {
                    return Attempt::Panicked {
                        message,
                        written: 0,
                    };
                }
            }
            self.connected = true;
            self.connected_once = true;
            *ready = true;
        }
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
        let mut pos = 0;
        while pos < frame.len() {
            match guarded(|| self.socket.send(&frame[pos..])) {
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
    /// lost.
    pub(crate) fn close(&mut self) {
        let _ = guarded(|| self.socket.disconnect());
        self.connected = false;
        self.recent.clear();
    }

    /// Remembers a write on the current connection, forgetting the ones too old to matter.
    fn wrote(&mut self, now: Instant, points: usize) {
        self.recent.wrote(now, points);
    }

    /// The current connection broke: what was written on it shortly before its last write
    /// may not have reached the server's disk.
    fn connection_lost(&mut self) {
        if self.connected {
            let points = self.recent.points();
            Counters::add(&self.shared.counters.possibly_lost, points as u64);
        }
        self.connected = false;
        self.recent.clear();
    }
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

/// Runs a call into the user's socket, turning a panic into its message.
fn guarded<R>(call: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(call)).map_err(|panic| panic_message(&*panic))
}

#[cfg(test)]
mod tests {
    use super::*;

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
