//! A Graphite (Carbon) client that stays out of the caller's way.
//!
//! Call [`init`] once at start-up and [`send`] anywhere. A send checks the metric, stamps it,
//! and puts it on a bounded queue; a worker thread formats the lines and writes them to Carbon
//! in batches over one persistent connection. Nothing a send lets through can break or
//! misfile Carbon's lines, and no send panics.
//!
//! A send blocks or touches the network in exactly two cases, both chosen when building: in
//! synchronous mode ([`Builder::synchronous`]) it writes on the caller's thread and waits for
//! Carbon, and with [`FullQueue::Block`] it waits for room in a full queue. In the default
//! background mode it never does; [`Sender::flush`], [`Sender::shutdown`] and dropping the
//! [`DefaultGuard`] wait for the worker, each at most its timeout.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! fn main() -> Result<(), graphyte::Error> {
//!     let _guard = graphyte::init(
//!         graphyte::Sender::builder("carbon.example.com")
//!             .prefix("myapp")
//!             .interval(Duration::from_secs(10)),
//!     )?;
//!     graphyte::send("requests.ok", 42);
//!     graphyte::send("latency.p99", 0.125);
//!     graphyte::send_tagged("queue.depth", 7, &[("queue", "mail")]);
//!     Ok(())
//! }
//! ```
//!
//! - [`Sender`] is the explicit form: build as many as you need with [`Sender::builder`].
//! - [`SendSocket`] is where bytes leave; plug your own in with [`Builder::socket`].
//! - [`Stats`] counts what was queued, sent, dropped, refused and failed.
//! - Errors are logged through the `log` crate, target `graphyte`, rate-limited; a logger
//!   that sends metrics is fine (no lock is held while logging).
#![warn(missing_docs)]
#![warn(clippy::missing_errors_doc)]

mod builder;
mod clock;
mod encode;
mod error;
mod global;
mod link;
mod metric;
mod parse;
mod report;
mod sender;
mod socket;
mod stats;
mod validate;
mod worker;

pub use builder::{
    Builder, DEFAULT_BATCH_SIZE, DEFAULT_INTERVAL, DEFAULT_PORT, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_TIMEOUT, FullQueue, MAX_QUEUE_CAPACITY, Transport,
};
pub use error::Error;
pub use global::{
    DefaultGuard, flush, init, send, send_at, send_metric, send_tagged, shutdown, stats, try_send,
};
pub use metric::{Metric, Name, Timestamp, Value};
pub use parse::{Line, parse_line};
pub use sender::Sender;
pub use socket::{DEFAULT_MAX_DATAGRAM, SendSocket, TcpSocket, UdpSocket};
pub use stats::Stats;
pub use validate::{MAX_LAST_SEGMENT_LEN, MAX_LINE_LEN, MAX_PATH_LEN, MAX_SEGMENT_LEN};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Internals exposed for the crate's own benchmarks only: not a public API, no stability.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals {
    use crate::encode::{LineFormat, tag_suffix};
    use crate::metric::{Name, Point};

    /// The worker's line formatting, for a prefix and default tags.
    pub struct LineEncoder(LineFormat);

    impl LineEncoder {
        /// An encoder for `prefix` and default `tags`.
        pub fn new(prefix: &str, tags: &[(&str, &str)]) -> Self {
            LineEncoder(LineFormat {
                prefix: format!("{prefix}.").into(),
                default_tags: tag_suffix(tags.iter().copied()).into(),
            })
        }

        /// Appends one line to `out`.
        pub fn encode(
            &self,
            name: &'static str,
            value: impl Into<crate::Value>,
            timestamp: u32,
            out: &mut Vec<u8>,
        ) {
            let point = Point::new(Name::from(name), None, value.into().0, timestamp);
            self.0.write_line(&point, out);
        }
    }
}
