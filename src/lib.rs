//! A Graphite (Carbon) client that stays out of the caller's way.
//!
//! Call [`init`] once at start-up and [`send`] anywhere. A send checks the metric, stamps it,
//! and puts it on a bounded queue; a worker thread formats the lines and writes them to Carbon
//! in batches over one persistent connection. Nothing a send does touches the network, blocks,
//! or panics, and nothing it lets through can break Carbon's line protocol.
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
//! - Errors are logged through the `log` crate, target `graphyte`, rate-limited.
#![warn(missing_docs)]

mod clock;
mod encode;
mod error;
mod global;
mod link;
mod metric;
mod parse;
mod sender;
mod socket;
mod stats;
mod validate;
mod worker;

pub use error::Error;
pub use global::{
    DefaultGuard, flush, init, send, send_at, send_metric, send_tagged, shutdown, stats, try_send,
};
pub use metric::{Metric, Timestamp, Value};
pub use parse::{Line, parse_line};
pub use sender::{
    Builder, DEFAULT_BATCH_SIZE, DEFAULT_INTERVAL, DEFAULT_PORT, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_TIMEOUT, FullQueue, Sender, Transport,
};
pub use socket::{DEFAULT_MAX_DATAGRAM, SendSocket, TcpSocket, UdpSocket};
pub use stats::Stats;
pub use validate::{MAX_LINE_LEN, MAX_SEGMENT_LEN};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Internals exposed for the crate's own benchmarks only: not a public API, no stability.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals {
    use std::borrow::Cow;

    use crate::encode::{LineFormat, tag_suffix};
    use crate::metric::Point;

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
            let point = Point::new(Cow::Borrowed(name), None, value.into().0, timestamp);
            self.0.write_line(&point, out);
        }
    }
}
