//! Delivery over a [`SendSocket`]: whole lines only, backoff after failures, counting, and
//! rate-limited logging. Owned by the worker (background mode) or behind the sender's lock
//! (synchronous mode); nothing else writes bytes.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::SendSocket;
use crate::stats::Counters;
use crate::worker::Shared;

/// How long carbon-cache may hold received points in memory before they are on disk (its
/// writer sleeps a second when idle), plus a margin. Lines written on a connection within
/// this time before its last write are counted as possibly lost when it breaks.
pub(crate) const POSSIBLY_LOST_WINDOW: Duration = Duration::from_secs(2);

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
    log_sends: bool,
    log: LogLimit,
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
            log_sends,
            log: LogLimit::new(log_period),
        }
    }

    /// When the next attempt may be made, if a failure put the link in backoff.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.backoff.retry_at
    }

    /// Writes the lines of `batch`, removing from it what the socket accepted. On failure
    /// the lines not fully written stay in it for a later attempt. While in backoff nothing
    /// is tried, unless `force`.
    pub(crate) fn deliver(&mut self, batch: &mut Batch, force: bool) -> io::Result<()> {
        if batch.lines == 0 {
            return Ok(());
        }
        let buf = &mut batch.bytes;
        let now = Instant::now();
        if !force && self.backoff.retry_at.is_some_and(|at| now < at) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "carbon unreachable; waiting before the next attempt",
            ));
        }
        let (written, result) = self.write_lines(buf);
        // Bytes of a line cut short went to a connection now abandoned: resend the whole line.
        let delivered = match result {
            Ok(()) => written,
            Err(_) => buf[..written]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1),
        };
        let lines = if delivered == buf.len() {
            batch.lines
        } else {
            count_lines(&buf[..delivered])
        };
        batch.lines -= lines;
        Counters::add(&self.shared.counters.sent, lines as u64);
        Counters::add(&self.shared.counters.sent_bytes, delivered as u64);
        if lines > 0 {
            self.wrote(now, lines);
        }
        buf.drain(..delivered);
        match result {
            Ok(()) => {
                if self.log_sends {
                    log::info!(target: "graphyte", "sent {lines} lines ({delivered} bytes) in {:?}", now.elapsed());
                }
                if let Some(failures) = self.backoff.succeeded() {
                    log::info!(target: "graphyte", "carbon reachable again after {failures} failed attempts");
                }
                Ok(())
            }
            Err(err) => {
                self.socket.disconnect();
                self.connection_lost();
                Counters::add(&self.shared.counters.errors, 1);
                self.backoff.failed(now);
                if let Some(suppressed) = self.log.allow(now) {
                    log::warn!(
                        target: "graphyte",
                        "sending to carbon failed: {err}; {} lines not written{}",
                        batch.lines,
                        if suppressed > 0 { format!(" ({suppressed} similar failures not logged)") } else { String::new() }
                    );
                }
                Err(err)
            }
        }
    }

    /// Connects if needed and writes as much of `buf` as the socket takes; returns how many
    /// bytes were accepted and whether all were.
    fn write_lines(&mut self, buf: &[u8]) -> (usize, io::Result<()>) {
        match self.socket.connect() {
            Ok(true) if self.connected_once => {
                // The socket found its connection closed by the peer, or we had dropped it.
                self.connection_lost();
                Counters::add(&self.shared.counters.reconnects, 1);
            }
            Ok(_) => {}
            Err(err) => return (0, Err(err)),
        }
        self.connected = true;
        self.connected_once = true;
        let max = self.socket.max_payload().unwrap_or(usize::MAX);
        let mut pos = 0;
        while pos < buf.len() {
            let end = chunk_end(buf, pos, max);
            if end == pos {
                return (
                    pos,
                    Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "line longer than the socket's max_payload",
                    )),
                );
            }
            while pos < end {
                match self.socket.send(&buf[pos..end]) {
                    Ok(0) => return (pos, Err(io::ErrorKind::WriteZero.into())),
                    Ok(n) => pos += n,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => return (pos, Err(err)),
                }
            }
        }
        (pos, Ok(()))
    }

    pub(crate) fn disconnect(&mut self) {
        self.socket.disconnect();
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
        self.retry_at = Some(now + self.delay);
        self.delay = (self.delay * 2).min(self.max);
    }

    /// Resets; returns how many failures preceded this success, if any.
    fn succeeded(&mut self) -> Option<u64> {
        self.retry_at = None;
        self.delay = self.min;
        let failures = std::mem::take(&mut self.failures);
        (failures > 0).then_some(failures)
    }
}

/// Lets one log line through per period; counts the ones it held back.
pub(crate) struct LogLimit {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    pub(crate) fn new(period: Duration) -> Self {
        LogLimit {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(number held back since the last line)` when a line may be logged now.
    pub(crate) fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.period)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
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
    fn log_limit_lets_one_line_through_per_period() {
        let mut limit = LogLimit::new(Duration::from_secs(10));
        let now = Instant::now();
        assert_eq!(limit.allow(now), Some(0));
        assert_eq!(limit.allow(now + Duration::from_secs(1)), None);
        assert_eq!(limit.allow(now + Duration::from_secs(2)), None);
        assert_eq!(limit.allow(now + Duration::from_secs(11)), Some(2));
    }
}
