//! Delivery over a [`SendSocket`]: whole lines only, the three outcomes of a write (written,
//! failed for now, refused for good), backoff, a bound on a batch that keeps failing, a
//! socket's panics caught, and counting. Owned by the worker (background mode) or behind the
//! sender's lock (synchronous mode); nothing else writes bytes.
//!
//! It never logs: what happened comes back as [`Report`]s, which the caller logs once it
//! holds no lock (a logger may send metrics).

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::SendSocket;
use crate::clock::later;
use crate::report::{LogLimit, report};
use crate::stats::Counters;
use crate::worker::Shared;

/// How long carbon-cache may hold received points in memory before they are on disk (its
/// writer sleeps a second when idle), plus a margin. Lines written on a connection within
/// this time before its last write are counted as possibly lost when it breaks.
pub(crate) const POSSIBLY_LOST_WINDOW: Duration = Duration::from_secs(2);

/// Failed writes in a row on working connections after which a batch is given up.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

pub(crate) struct Link {
    socket: Box<dyn SendSocket>,
    shared: Arc<Shared>,
    backoff: Backoff,
    /// Whether a connection has been opened and not yet found broken.
    connected: bool,
    connected_once: bool,
    /// Writes on the current connection within `POSSIBLY_LOST_WINDOW` of the latest one:
    /// (when, lines).
    recent: VecDeque<(Instant, usize)>,
    /// Failed writes in a row, on connections that opened, that delivered nothing.
    fruitless: u32,
    log_sends: bool,
    failure_log: LogLimit,
}

/// Something worth a log line, logged by whoever called [`Link::deliver`] once it holds no
/// lock.
#[derive(Debug)]
pub(crate) enum Report {
    Sent {
        lines: usize,
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
        lines: usize,
        suppressed: u64,
    },
    GaveUp {
        error: io::Error,
        lines: usize,
        suppressed: u64,
    },
    Panicked {
        message: String,
        lines: usize,
        suppressed: u64,
    },
}

impl Report {
    pub(crate) fn log(&self) {
        match self {
            Report::Sent { lines, bytes, took } => {
                report!(Info, "sent {lines} lines ({bytes} bytes) in {took:?}")
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
                "sending to carbon failed: {error}; {unsent} lines not written yet, to be retried{}",
                held_back(*suppressed)
            ),
            Report::Refused {
                error,
                lines,
                suppressed,
            } => report!(
                Warn,
                "the socket refused {lines} lines for good ({error}); they are dropped{}",
                held_back(*suppressed)
            ),
            Report::GaveUp {
                error,
                lines,
                suppressed,
            } => report!(
                Warn,
                "gave up {lines} lines after {MAX_ATTEMPTS} failed writes on working \
                 connections (last error: {error}){}",
                held_back(*suppressed)
            ),
            Report::Panicked {
                message,
                lines,
                suppressed,
            } => report!(
                Error,
                "the socket panicked ({message}); {lines} lines dropped, carrying on{}",
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

/// How one attempt at writing a buffer ended.
enum Attempt {
    Written,
    /// Failed for now; `connected` when the socket's connect succeeded first.
    Failed {
        error: io::Error,
        connected: bool,
    },
    /// The bytes up to `end` (whole lines) will never be taken.
    Refused {
        error: io::Error,
        end: usize,
    },
    /// The socket panicked: the batch is dropped.
    Panicked {
        message: String,
    },
}

impl Link {
    pub(crate) fn new(
        socket: Box<dyn SendSocket>,
        shared: Arc<Shared>,
        backoff: (Duration, Duration),
        log_period: Duration,
        log_sends: bool,
    ) -> Self {
        Link {
            socket,
            shared,
            backoff: Backoff::new(backoff.0, backoff.1),
            connected: false,
            connected_once: false,
            recent: VecDeque::new(),
            fruitless: 0,
            log_sends,
            failure_log: LogLimit::new(log_period),
        }
    }

    /// When the next attempt may be made, if a failure put the link in backoff.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.backoff.retry_at
    }

    /// Writes the lines of `batch`, removing what the socket took and what it refused for
    /// good (counted as failed). After a failure the lines not fully written stay in the
    /// batch for a later attempt, and the link is in backoff: nothing is tried before
    /// [`retry_at`](Link::retry_at), unless `force`.
    ///
    /// Returns the failure, or else the last refusal, if any.
    pub(crate) fn deliver(
        &mut self,
        batch: &mut Batch,
        force: bool,
        reports: &mut Vec<Report>,
    ) -> io::Result<()> {
        let now = Instant::now();
        if !force && self.backoff.retry_at.is_some_and(|at| now < at) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "carbon unreachable; waiting before the next attempt",
            ));
        }
        let mut refused = None;
        while batch.lines > 0 {
            let (written, attempt) = self.attempt(&batch.bytes);
            match attempt {
                Attempt::Written => {
                    let lines = batch.lines;
                    self.sent(batch, written, now);
                    self.succeeded(reports, lines, written, now);
                }
                Attempt::Refused { error, end } => {
                    let start = line_start(&batch.bytes, written);
                    self.sent(batch, start, now);
                    if start < written {
                        // Part of a line is on the wire: end it with the connection.
                        self.drop_connection();
                    }
                    let lines = self.give_up(batch, end - start);
                    self.report_failure(now, reports, |suppressed| Report::Refused {
                        error: copy_of(&error),
                        lines,
                        suppressed,
                    });
                    refused = Some(error);
                }
                Attempt::Panicked { message } => {
                    let start = line_start(&batch.bytes, written);
                    self.sent(batch, start, now);
                    self.drop_connection();
                    // A socket that panicked on these lines would likely panic again.
                    let lines = self.give_up(batch, batch.bytes.len());
                    self.report_failure(now, reports, |suppressed| Report::Panicked {
                        message,
                        lines,
                        suppressed,
                    });
                    refused = Some(io::Error::other("the socket panicked"));
                }
                Attempt::Failed { error, connected } => {
                    return Err(self.failed(batch, written, error, connected, now, reports));
                }
            }
        }
        refused.map_or(Ok(()), Err)
    }

    /// What to do after a failed attempt: keep what was not written, back off, and give the
    /// batch up after `MAX_ATTEMPTS` fruitless writes on working connections.
    fn failed(
        &mut self,
        batch: &mut Batch,
        written: usize,
        error: io::Error,
        connected: bool,
        now: Instant,
        reports: &mut Vec<Report>,
    ) -> io::Error {
        // Bytes of a line cut short went to a connection now abandoned: resend the whole line.
        let delivered = line_start(&batch.bytes, written);
        self.sent(batch, delivered, now);
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
            let lines = self.give_up(batch, batch.bytes.len());
            self.report_failure(now, reports, |suppressed| Report::GaveUp {
                error: copy_of(&error),
                lines,
                suppressed,
            });
        } else {
            let unsent = batch.lines;
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

    fn succeeded(
        &mut self,
        reports: &mut Vec<Report>,
        lines: usize,
        bytes: usize,
        started: Instant,
    ) {
        self.fruitless = 0;
        if let Some(failures) = self.backoff.succeeded() {
            reports.push(Report::Recovered { failures });
        }
        if self.log_sends {
            reports.push(Report::Sent {
                lines,
                bytes,
                took: started.elapsed(),
            });
        }
    }

    /// Connects if needed and writes as much of `buf` as the socket takes; returns how many
    /// bytes it took and how the attempt ended.
    fn attempt(&mut self, buf: &[u8]) -> (usize, Attempt) {
        match guarded(|| self.socket.connect()) {
            Ok(Ok(true)) if self.connected_once => {
                // The socket found its connection closed by the peer, or we had dropped it.
                self.connection_lost();
                Counters::add(&self.shared.counters.reconnects, 1);
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                // Not even connected: an outage, never a refusal of these lines.
                let attempt = Attempt::Failed {
                    error,
                    connected: false,
                };
                return (0, attempt);
            }
            Err(message) => return (0, Attempt::Panicked { message }),
        }
        self.connected = true;
        self.connected_once = true;
        let max = match guarded(|| self.socket.max_payload()) {
            Ok(max) => max.unwrap_or(usize::MAX),
            Err(message) => return (0, Attempt::Panicked { message }),
        };
        let mut pos = 0;
        while pos < buf.len() {
            let end = chunk_end(buf, pos, max);
            if end == pos {
                let error = io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "line longer than the socket's max_payload",
                );
                let end = line_end(buf, pos);
                return (pos, Attempt::Refused { error, end });
            }
            while pos < end {
                match guarded(|| self.socket.send(&buf[pos..end])) {
                    Ok(Ok(0)) => {
                        let attempt = Attempt::Failed {
                            error: io::ErrorKind::WriteZero.into(),
                            connected: true,
                        };
                        return (pos, attempt);
                    }
                    Ok(Ok(n)) => pos += n.min(end - pos),
                    Ok(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {}
                    Ok(Err(error)) if is_refusal(error.kind()) => {
                        return (pos, Attempt::Refused { error, end });
                    }
                    Ok(Err(error)) => {
                        let attempt = Attempt::Failed {
                            error,
                            connected: true,
                        };
                        return (pos, attempt);
                    }
                    Err(message) => return (pos, Attempt::Panicked { message }),
                }
            }
        }
        (pos, Attempt::Written)
    }

    /// Counts the first `bytes` of the batch (whole lines) as sent and removes them.
    fn sent(&mut self, batch: &mut Batch, bytes: usize, now: Instant) {
        if bytes == 0 {
            return;
        }
        let lines = batch.remove_front(bytes);
        Counters::add(&self.shared.counters.sent, lines as u64);
        Counters::add(&self.shared.counters.sent_bytes, bytes as u64);
        self.wrote(now, lines);
    }

    /// Drops the first `bytes` of the batch (whole lines), counted as failed; returns how
    /// many lines that was.
    fn give_up(&mut self, batch: &mut Batch, bytes: usize) -> usize {
        let lines = batch.remove_front(bytes);
        Counters::add(&self.shared.counters.failed, lines as u64);
        lines
    }

    fn drop_connection(&mut self) {
        let _ = guarded(|| self.socket.disconnect());
        self.connection_lost();
    }

    pub(crate) fn disconnect(&mut self) {
        let _ = guarded(|| self.socket.disconnect());
        self.connected = false;
        self.recent.clear();
    }

    /// Remembers a write on the current connection, forgetting the ones too old to matter.
    fn wrote(&mut self, now: Instant, lines: usize) {
        self.recent.push_back((now, lines));
        while self
            .recent
            .front()
            .is_some_and(|&(at, _)| now.duration_since(at) > POSSIBLY_LOST_WINDOW)
        {
            self.recent.pop_front();
        }
    }

    /// The current connection broke: what was written on it shortly before its last write
    /// may not have reached the server's disk.
    fn connection_lost(&mut self) {
        if self.connected {
            let lines: usize = self.recent.iter().map(|&(_, lines)| lines).sum();
            Counters::add(&self.shared.counters.possibly_lost, lines as u64);
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

/// A copy of an I/O error (kind and message), for a report and a caller that both need one.
pub(crate) fn copy_of(error: &io::Error) -> io::Error {
    io::Error::new(error.kind(), error.to_string())
}

/// Runs a call into the user's socket, turning a panic into its message.
fn guarded<R>(call: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(call)).map_err(|panic| panic_message(&*panic))
}

/// The text of a panic's payload, when it has one.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// End of the next chunk starting at `pos`: all of the rest if it fits in `max`, otherwise up
/// to the last newline within `max` bytes (never splitting a line). Returns `pos` if the first
/// line alone exceeds `max`.
fn chunk_end(buf: &[u8], pos: usize, max: usize) -> usize {
    if buf.len() - pos <= max {
        return buf.len();
    }
    buf[pos..pos + max]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(pos, |i| pos + i + 1)
}

/// Start of the line that `pos` falls in (`pos` itself at a line start).
fn line_start(buf: &[u8], pos: usize) -> usize {
    buf[..pos]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

/// End of the line that starts at `pos`, its newline included.
fn line_end(buf: &[u8], pos: usize) -> usize {
    buf[pos..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(buf.len(), |i| pos + i + 1)
}

fn count_lines(buf: &[u8]) -> usize {
    buf.iter().filter(|&&b| b == b'\n').count()
}

/// Formatted lines waiting to be written, and how many there are.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) bytes: Vec<u8>,
    pub(crate) lines: usize,
}

impl Batch {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Batch {
            bytes: Vec::with_capacity(bytes),
            lines: 0,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.lines = 0;
    }

    /// Removes the first `bytes` (whole lines, at most all); returns how many lines they were.
    fn remove_front(&mut self, bytes: usize) -> usize {
        let bytes = bytes.min(self.bytes.len());
        let lines = if bytes == self.bytes.len() {
            self.lines
        } else {
            count_lines(&self.bytes[..bytes])
        };
        self.lines -= lines;
        self.bytes.drain(..bytes);
        lines
    }
}

/// Capped exponential backoff between failed attempts.
struct Backoff {
    min: Duration,
    max: Duration,
    delay: Duration,
    failures: u64,
    retry_at: Option<Instant>,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            delay: min,
            failures: 0,
            retry_at: None,
        }
    }

    fn failed(&mut self, now: Instant) {
        self.failures += 1;
        self.retry_at = Some(later(now, self.delay));
        self.delay = self.delay.saturating_mul(2).min(self.max);
    }

    /// Resets; returns how many failures preceded this success, if any.
    fn succeeded(&mut self) -> Option<u64> {
        self.retry_at = None;
        self.delay = self.min;
        let failures = std::mem::take(&mut self.failures);
        (failures > 0).then_some(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_on_a_line_boundary() {
        let buf = b"aaa\nbbb\nccc\n";
        assert_eq!(chunk_end(buf, 0, 9), 8);
        assert_eq!(chunk_end(buf, 8, 9), 12);
        assert_eq!(chunk_end(buf, 0, 3), 0);
    }

    #[test]
    fn line_bounds_are_found_around_a_position() {
        let buf = b"aaa\nbbb\nccc\n";
        assert_eq!(line_start(buf, 5), 4);
        assert_eq!(line_start(buf, 4), 4);
        assert_eq!(line_start(buf, 2), 0);
        assert_eq!(line_end(buf, 4), 8);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));
        let now = Instant::now();
        let delays: Vec<_> = (0..4)
            .map(|_| {
                backoff.failed(now);
                backoff.retry_at.unwrap() - now
            })
            .collect();
        assert_eq!(delays, [100, 200, 300, 300].map(Duration::from_millis));
        assert_eq!(backoff.succeeded(), Some(4));
        assert_eq!(backoff.retry_at, None);
    }

    #[test]
    fn a_backoff_of_duration_max_saturates_instead_of_overflowing() {
        let mut backoff = Backoff::new(Duration::MAX, Duration::MAX);
        let now = Instant::now();
        backoff.failed(now);
        backoff.failed(now);
        assert!(backoff.retry_at.unwrap() > now + Duration::from_secs(3600));
    }
}
