//! Transports: where bytes leave. The [`SendSocket`] trait, and the TCP, UDP and (feature
//! `tls`) TLS sockets a builder sets up when none is given.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

#[cfg(feature = "http")]
mod http;
mod several;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
mod udp;

#[cfg(feature = "http")]
pub use http::{HttpSocket, HttpSocketBuilder};
pub use several::{Mode, SeveralSocket};
pub use tcp::TcpSocket;
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsSocket};
pub use udp::{DEFAULT_MAX_DATAGRAM, UdpSocket};

/// The transport a [`Builder`](crate::Builder) sets up when no custom [`SendSocket`] is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// One persistent TCP connection (the default).
    #[default]
    Tcp,
    /// UDP datagrams of whole lines (see [`Builder::max_datagram`](crate::Builder::max_datagram)).
    /// Plaintext only: Carbon has no pickle receiver on UDP.
    Udp,
}

/// Where a [`Sender`](crate::Sender)'s bytes go. Implement it to replace how they leave: write
/// to a file, wrap a TLS stream, or capture lines in a test.
///
/// Only [`send`](SendSocket::send) is required. The worker (or, in synchronous mode, the
/// sending thread) calls [`connect`](SendSocket::connect) before every batch, then `send` until
/// the batch is written, one frame at a time: a chunk of whole plaintext lines, or one whole
/// pickle frame. A buffer given to `send` is always the rest of one frame.
///
/// # What a send reports
///
/// - `Ok(n)`: the first `n` bytes are written; the rest comes in the next call.
/// - An error of kind [`InvalidInput`](io::ErrorKind::InvalidInput) or
///   [`InvalidData`](io::ErrorKind::InvalidData): **refused for good**. The server will never
///   take this frame (an HTTP 4xx, say): its metrics are dropped, counted in
///   [`Stats::failed`](crate::Stats::failed), and the next frames go on.
/// - Any other error: **failed for now**. The socket is
///   [`disconnect`](SendSocket::disconnect)ed, the unsent metrics are kept, and they are tried
///   again after a backoff, for as long as Carbon cannot be reached. A batch whose writes fail
///   5 times in a row on connections that `connect` opened without error, with an error that
///   does not say the server is unreachable or slow (refused, not connected, unreachable,
///   timed out, would block), is given up and counted as failed, so one poisoned batch cannot
///   stall the stream.
/// - A panic is caught: the metrics of that batch are dropped and counted as failed, the panic
///   is logged, the socket is disconnected, and the worker carries on.
///
/// Calls come from one thread at a time. In background mode that is the worker, holding no
/// lock of graphyte's. In synchronous mode it is the sending thread, holding the sender's
/// lock: a socket must not wait for another thread that sends through the same sender (a send
/// from the socket's own thread is refused with [`Error::Reentrant`](crate::Error::Reentrant)
/// instead of waiting).
///
/// ```
/// use std::io;
/// use std::sync::{Arc, Mutex};
///
/// /// Keeps every byte it is given.
/// struct Capture(Arc<Mutex<Vec<u8>>>);
///
/// impl graphyte::SendSocket for Capture {
///     fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
///         self.0.lock().unwrap().extend_from_slice(buf);
///         Ok(buf.len())
///     }
/// }
///
/// let lines = Arc::new(Mutex::new(Vec::new()));
/// let sender = graphyte::Sender::builder("unused")
///     .synchronous()
///     .socket(Capture(lines.clone()))
///     .build()?;
/// sender.send_at("a.b", 1, 1_700_000_000);
/// assert_eq!(&*lines.lock().unwrap(), b"a.b 1 1700000000\n");
/// # Ok::<(), graphyte::Error>(())
/// ```
pub trait SendSocket: Send + 'static {
    /// Sends a prefix of `buf` and returns its length, like [`std::io::Write::write`]: fewer
    /// bytes than given is fine (the rest comes in the next call). An error means nothing of
    /// `buf` was sent; its kind says whether to retry (see [the trait](SendSocket)).
    ///
    /// # Errors
    ///
    /// Refused for good: [`io::ErrorKind::InvalidInput`] or [`io::ErrorKind::InvalidData`].
    /// Anything else: failed for now, retried after a backoff.
    fn send(&mut self, buf: &[u8]) -> io::Result<usize>;

    /// Makes the socket ready to send, opening a connection if it has none or if its
    /// connection was closed by the peer. Returns `true` when it opened a new one (counted in
    /// [`Stats::reconnects`](crate::Stats::reconnects) after the first). The default does
    /// nothing.
    ///
    /// # Errors
    ///
    /// The connection could not be opened; the batch is kept and tried again after a backoff.
    fn connect(&mut self) -> io::Result<bool> {
        Ok(false)
    }

    /// Drops the connection after an error; the next [`connect`](SendSocket::connect) opens a
    /// new one. The default does nothing.
    fn disconnect(&mut self) {}

    /// The most bytes one `send` may carry (a datagram's size), or `None` for a stream. Frames
    /// are built to fit it, so a frame is never split across two sends; a metric that cannot
    /// fit is refused when it is sent.
    fn max_payload(&self) -> Option<usize> {
        None
    }
}

impl<S: SendSocket + ?Sized> SendSocket for Box<S> {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        (**self).send(buf)
    }
    fn connect(&mut self) -> io::Result<bool> {
        (**self).connect()
    }
    fn disconnect(&mut self) {
        (**self).disconnect()
    }
    fn max_payload(&self) -> Option<usize> {
        (**self).max_payload()
    }
}

/// Where a socket connects: a host name (resolved at every connection) or, in tests, fixed
/// addresses.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Host(String, u16),
    #[cfg(test)]
    Addrs(Vec<SocketAddr>),
    /// A name whose addresses a test changes, as DNS would when a server moves.
    #[cfg(test)]
    Moving(std::sync::Arc<std::sync::Mutex<Vec<SocketAddr>>>),
}

impl Target {
    pub(crate) fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match self {
            Target::Host(host, port) => Ok((host.as_str(), *port).to_socket_addrs()?.collect()),
            #[cfg(test)]
            Target::Addrs(addrs) => Ok(addrs.clone()),
            #[cfg(test)]
            Target::Moving(addrs) => Ok(addrs.lock().unwrap().clone()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Host(host, port) => write!(f, "{host}:{port}"),
            #[cfg(test)]
            Target::Addrs(addrs) => write!(f, "{addrs:?}"),
            #[cfg(test)]
            Target::Moving(addrs) => write!(f, "{:?}", addrs.lock().unwrap()),
        }
    }
}

pub(crate) fn no_address(target: &Target) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{target} resolved to no address"),
    )
}
