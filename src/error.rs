//! The crate's one error type.

use std::fmt;
use std::io;

/// Everything that can go wrong in graphyte.
///
/// Input errors (`InvalidName`, `InvalidTag`, `InvalidValue`, `InvalidTimestamp`, `LineTooLong`)
/// are detected on the caller's thread before anything is queued: nothing reaches the stream.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A metric name (or the configured prefix) would break Carbon's line protocol.
    InvalidName {
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A tag name or tag value breaks Graphite's tag rules.
    InvalidTag {
        /// The tag as `key=value`.
        tag: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The value is NaN or infinite; Carbon would drop or mangle it.
    InvalidValue {
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The timestamp is not a Unix time in whole seconds between 1 and 4294967295.
    InvalidTimestamp {
        /// The timestamp as given, in its own unit.
        given: String,
    },
    /// A plaintext line given to [`parse_line`](crate::parse_line) is not of the form
    /// `name[;tags] value [timestamp]`.
    InvalidLine {
        /// The line as given (invalid UTF-8 replaced).
        line: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The metric would not fit: its plaintext line would be longer than Carbon (or the
    /// datagram size) accepts, or its pickled point would not fit in one frame.
    LineTooLong {
        /// The longest the line, or the frame of this one point, could be.
        len: usize,
        /// The limit that applies.
        max: usize,
    },
    /// Background mode: the queue was full and the metric was dropped (and counted).
    QueueFull,
    /// The sender was shut down; the metric was dropped (and counted).
    Closed,
    /// No default sender is installed: call [`init`](crate::init) first.
    NoDefaultSender,
    /// Synchronous mode: the send was made from inside this sender's own write (by its
    /// socket, or a logger its socket calls); it was dropped (and counted) instead of waiting
    /// for itself.
    Reentrant,
    /// The sender's worker thread panicked and stopped; what it held was counted as failed,
    /// and nothing more is sent. This is a bug in graphyte: please report it.
    WorkerPanicked,
    /// A flush or shutdown did not finish within its timeout.
    Timeout,
    /// The configuration is not usable.
    Config(&'static str),
    /// Writing to Carbon failed.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName { name, reason } => {
                write!(f, "invalid metric name {name:?}: {reason}")
            }
            Error::InvalidTag { tag, reason } => write!(f, "invalid tag {tag:?}: {reason}"),
            Error::InvalidValue { reason } => write!(f, "invalid value: {reason}"),
            Error::InvalidTimestamp { given } => write!(
                f,
                "invalid timestamp {given}: expected Unix seconds from 1 to 4294967295 \
                 (milliseconds are not accepted)"
            ),
            Error::InvalidLine { line, reason } => write!(f, "invalid line {line:?}: {reason}"),
            Error::LineTooLong { len, max } => write!(
                f,
                "metric of up to {len} bytes encoded exceeds the limit of {max} bytes; shorten the name or tags"
            ),
            Error::QueueFull => f.write_str(
                "queue full, metric dropped; raise queue_capacity or choose FullQueue::Block",
            ),
            Error::Closed => f.write_str("sender was shut down, metric dropped"),
            Error::NoDefaultSender => {
                f.write_str("no default sender installed; call graphyte::init first")
            }
            Error::Reentrant => f.write_str(
                "metric dropped: sent from inside the same synchronous sender's own write",
            ),
            Error::WorkerPanicked => {
                f.write_str("the sender's worker thread panicked and stopped; nothing more is sent")
            }
            Error::Timeout => f.write_str("timed out waiting for the worker"),
            Error::Config(msg) => write!(f, "invalid configuration: {msg}"),
            Error::Io(err) => write!(f, "sending to carbon failed: {err}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Error::Io(err)
    }
}

impl Error {
    /// True for errors caused by the metric itself (name, tag, value, timestamp, length).
    ///
    /// ```
    /// let sender = graphyte::Sender::builder("localhost").build()?;
    /// let err = sender.try_send(graphyte::Metric::new("a b", 1)).unwrap_err();
    /// assert!(err.is_invalid_input());
    /// # Ok::<(), graphyte::Error>(())
    /// ```
    #[must_use]
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidName { .. }
                | Error::InvalidTag { .. }
                | Error::InvalidValue { .. }
                | Error::InvalidTimestamp { .. }
                | Error::InvalidLine { .. }
                | Error::LineTooLong { .. }
        )
    }
}

/// A copy of an I/O error (kind and message), for a report and a caller that both need one.
pub(crate) fn copy_of(error: &io::Error) -> io::Error {
    io::Error::new(error.kind(), error.to_string())
}
