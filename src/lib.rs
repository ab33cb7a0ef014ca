//! A Graphite (Carbon) client that stays out of the caller's way.
//!
//! Call [`init`] once at start-up and [`send`] anywhere. A send checks the metric, stamps it,
//! and puts it on a bounded queue; a worker thread encodes the points (plaintext lines, or
//! Carbon's pickle frames, see [`Protocol`]) and writes them to Carbon in batches over one
//! persistent connection. Nothing a send lets through can break Carbon's protocol or be filed
//! under another name, and no send panics.
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
//! - [`LineBatch`] forwards plaintext lines read elsewhere, checked and byte for byte (the
//!   `graphyte` command-line tool's stream mode, built with the `cli` feature).
//! - Errors are logged through the `log` crate, target `graphyte`, rate-limited; a logger
//!   that sends metrics is fine (no lock is held while logging).
#![warn(missing_docs)]
#![warn(clippy::missing_errors_doc)]

mod builder;
mod delivery;
mod dry_run;
mod error;
mod forward;
mod global;
mod parse;
mod point;
mod protocol;
mod report;
mod sender;
mod transport;
#[cfg(any(feature = "render", feature = "http"))]
mod web;

#[cfg(feature = "render")]
pub mod render;

#[cfg(feature = "metrics")]
pub mod exporter;

pub use builder::{
    Builder, DEFAULT_BATCH_SIZE, DEFAULT_INTERVAL, DEFAULT_PORT, DEFAULT_QUEUE_CAPACITY,
    DEFAULT_TIMEOUT, MAX_QUEUE_CAPACITY,
};
pub use delivery::stats::Stats;
pub use dry_run::DryRun;
pub use error::Error;
pub use forward::LineBatch;
pub use global::{
    DefaultGuard, flush, init, send, send_at, send_batch, send_metric, send_tagged, shutdown,
    stats, try_send,
};
pub use parse::{Line, parse_line};
pub use point::metric::{Metric, Name, Timestamp, Value};
pub use point::names::{NameEncoder, split_escaped, unescape};
pub use point::validate::{MAX_LAST_SEGMENT_LEN, MAX_PATH_LEN, MAX_SEGMENT_LEN};
pub use protocol::{DEFAULT_MAX_FRAME, MAX_LINE_LEN, Protocol};
pub use sender::{BatchOutcome, FullQueue, Sender};
pub use transport::{DEFAULT_MAX_DATAGRAM, SendSocket, TcpSocket, Transport, UdpSocket};
#[cfg(feature = "http")]
pub use transport::{HttpSocket, HttpSocketBuilder};
pub use transport::{Mode, SeveralSocket};
#[cfg(feature = "tls")]
pub use transport::{TlsConfig, TlsSocket};

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Internals exposed for the crate's own benchmarks and fuzz targets only: not a public API,
/// no stability.
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals {
    use crate::point::metric::{Name, Point};
    use crate::protocol::{Encode, Encoder, Frames, PathStyle, Protocol};

    /// The worker's encoding, for a protocol, a prefix and default tags.
    pub struct FrameEncoder {
        encoder: Encoder,
        frames: Frames,
    }

    impl FrameEncoder {
        /// An encoder for `protocol`, `prefix` and default `tags`, with 1 MiB frames.
        pub fn new(protocol: Protocol, prefix: &str, tags: &[(&str, &str)]) -> Self {
            let tags = crate::point::metric::tag_suffix(tags.iter().copied());
            let style = PathStyle::new(Some(prefix), &tags);
            FrameEncoder {
                encoder: Encoder::new(protocol, style, crate::DEFAULT_MAX_FRAME, None),
                frames: Frames::default(),
            }
        }

        /// Encodes one point into the open frame.
        pub fn encode(
            &mut self,
            name: &'static str,
            value: impl Into<crate::Value>,
            timestamp: u32,
        ) {
            let point = Point::new(Name::from(name), None, value.into().0, timestamp);
            self.encoder.push(&point, &mut self.frames);
        }

        /// Closes the frames and drops them; returns how many bytes they were.
        pub fn finish(&mut self) -> usize {
            self.encoder.close(&mut self.frames);
            let mut bytes = 0;
            while let Some((frame, _)) = self.frames.front() {
                bytes += frame.len;
                self.frames.consume_front(frame.len, frame.points);
            }
            bytes
        }
    }

    /// Reads `answer` as each kind of graphite-web answer the render client reads; returns
    /// how many read. What a fuzz target drives: any bytes, no panic.
    #[cfg(feature = "render")]
    pub fn read_render_answers(answer: &[u8]) -> usize {
        crate::render::read_each_kind(answer)
    }
}
