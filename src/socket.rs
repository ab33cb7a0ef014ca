//! The seam through which bytes leave: the [`SendSocket`] trait and its TCP and UDP transports.

use std::fmt;
use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket as StdUdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::clock::later;

/// Where a [`Sender`](crate::Sender)'s bytes go. Implement it to replace how they leave: write
/// to a file, wrap a TLS stream, or capture lines in a test.
///
/// Only [`send`](SendSocket::send) is required. The worker (or, in synchronous mode, the
/// sending thread) calls [`connect`](SendSocket::connect) before every batch, then `send` until
/// the batch is written. Buffers always hold whole lines.
///
/// # What a send reports
///
/// - `Ok(n)`: the first `n` bytes are written; the rest comes in the next call.
/// - An error of kind [`InvalidInput`](io::ErrorKind::InvalidInput) or
///   [`InvalidData`](io::ErrorKind::InvalidData): **refused for good**. The server will never
///   take these lines (an HTTP 4xx, say): they are dropped, counted in
///   [`Stats::failed`](crate::Stats::failed), and the next lines go on.
/// - Any other error: **failed for now**. The socket is
///   [`disconnect`](SendSocket::disconnect)ed, the unsent lines are kept, and they are tried
///   again after a backoff, for as long as Carbon cannot be reached. A batch whose writes fail
///   5 times in a row on connections that `connect` opened without error, with an error that
///   does not say the server is unreachable or slow (refused, not connected, unreachable,
///   timed out, would block), is given up and counted as failed, so one poisoned batch cannot
///   stall the stream.
/// - A panic is caught: the lines of that call are dropped and counted as failed, the panic is
///   logged, the socket is disconnected, and the worker carries on.
///
/// Calls come from one thread at a time, never with a lock of graphyte's held.
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

    /// The most bytes one `send` may carry (a datagram's size), or `None` for a stream. Lines
    /// are never split across two sends; a line longer than this is refused for good.
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

/// Carbon's plaintext protocol over one persistent TCP connection.
///
/// The host is resolved again at every connection, so a moved server is found, and each of
/// its addresses is tried in turn, all within one timeout. Connections have `TCP_NODELAY` and
/// a write timeout. Before each batch the connection is checked, so one that Carbon closed
/// while idle is replaced before any line is written to it.
#[derive(Debug)]
pub struct TcpSocket {
    target: Target,
    timeout: Duration,
    stream: Option<TcpStream>,
}

impl TcpSocket {
    /// A socket for `host:port`; nothing is resolved or connected until the first batch.
    /// `timeout` bounds a whole connection attempt, over every address of the host, and each
    /// write.
    pub fn new(host: impl Into<String>, port: u16, timeout: Duration) -> Self {
        Self::to(Target::Host(host.into(), port), timeout)
    }

    fn to(target: Target, timeout: Duration) -> Self {
        TcpSocket {
            target,
            // The system refuses a zero timeout.
            timeout: timeout.max(Duration::from_millis(1)),
            stream: None,
        }
    }

    fn open(&self) -> io::Result<TcpStream> {
        let deadline = later(Instant::now(), self.timeout);
        let mut last_error = None;
        for addr in self.target.resolve()? {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last_error = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to {}: no address answered in time", self.target),
                ));
                break;
            }
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_tcp_nodelay(true)?;
            socket.set_write_timeout(Some(self.timeout))?;
            match socket.connect_timeout(&addr.into(), left) {
                Ok(()) => return Ok(socket.into()),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| no_address(&self.target)))
    }
}

/// True while the peer has not closed the connection. Carbon never writes on this port, so a
/// readable socket means end of stream or an error.
fn is_open(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let open = match stream.peek(&mut [0u8; 1]) {
        Ok(0) => false,
        Ok(_) => true,
        Err(err) => err.kind() == io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).is_ok() && open
}

impl SendSocket for TcpSocket {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stream {
            Some(stream) => stream.write(buf),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn connect(&mut self) -> io::Result<bool> {
        if self.stream.as_ref().is_some_and(is_open) {
            return Ok(false);
        }
        self.stream = None;
        self.stream = Some(self.open()?);
        Ok(true)
    }

    fn disconnect(&mut self) {
        self.stream = None;
    }
}

/// Default datagram size for [`UdpSocket`]: fits one Ethernet frame with IPv6 headers, so no
/// datagram is fragmented (a lost fragment loses the whole datagram).
pub const DEFAULT_MAX_DATAGRAM: usize = 1432;

/// Carbon's plaintext protocol over UDP: whole lines packed into datagrams of at most
/// `max_datagram` bytes. Carbon truncates datagrams over 8,192 bytes, so that is the most
/// this accepts.
///
/// The host is resolved again at every connection and its addresses tried in turn; after a
/// failure (an ICMP "port unreachable" reported by the next send, say), the next connection
/// starts at the following address.
#[derive(Debug)]
pub struct UdpSocket {
    target: Target,
    max_datagram: usize,
    socket: Option<StdUdpSocket>,
    /// Where the next connection starts in the host's list of addresses.
    next_address: usize,
}

impl UdpSocket {
    /// Largest datagram Carbon's UDP listener reads whole.
    pub const MAX_DATAGRAM: usize = 8192;

    /// A socket for `host:port`; `max_datagram` is clamped to 1..=[`UdpSocket::MAX_DATAGRAM`].
    pub fn new(host: impl Into<String>, port: u16, max_datagram: usize) -> Self {
        Self::to(Target::Host(host.into(), port), max_datagram)
    }

    fn to(target: Target, max_datagram: usize) -> Self {
        UdpSocket {
            target,
            max_datagram: max_datagram.clamp(1, Self::MAX_DATAGRAM),
            socket: None,
            next_address: 0,
        }
    }

    fn open(addr: SocketAddr) -> io::Result<StdUdpSocket> {
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = StdUdpSocket::bind(local)?;
        // A connected UDP socket reports ICMP errors (nobody listening) on the next send.
        socket.connect(addr)?;
        Ok(socket)
    }
}

impl SendSocket for UdpSocket {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.socket {
            Some(socket) => socket.send(buf),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn connect(&mut self) -> io::Result<bool> {
        if self.socket.is_some() {
            return Ok(false);
        }
        let addrs = self.target.resolve()?;
        let mut last_error = None;
        for i in 0..addrs.len() {
            let at = (self.next_address + i) % addrs.len();
            match Self::open(addrs[at]) {
                Ok(socket) => {
                    self.socket = Some(socket);
                    self.next_address = at;
                    return Ok(true);
                }
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| no_address(&self.target)))
    }

    fn disconnect(&mut self) {
        if self.socket.take().is_some() {
            // Called after a failure: start with the next address.
            self.next_address = self.next_address.wrapping_add(1);
        }
    }

    fn max_payload(&self) -> Option<usize> {
        Some(self.max_datagram)
    }
}

/// Where a socket connects: a host name (resolved at every connection) or, in tests, fixed
/// addresses.
#[derive(Debug, Clone)]
enum Target {
    Host(String, u16),
    #[cfg(test)]
    Addrs(Vec<SocketAddr>),
}

impl Target {
    fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match self {
            Target::Host(host, port) => Ok((host.as_str(), *port).to_socket_addrs()?.collect()),
            #[cfg(test)]
            Target::Addrs(addrs) => Ok(addrs.clone()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Host(host, port) => write!(f, "{host}:{port}"),
            #[cfg(test)]
            Target::Addrs(addrs) => write!(f, "{addrs:?}"),
        }
    }
}

fn no_address(target: &Target) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{target} resolved to no address"),
    )
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, UdpSocket as StdUdp};

    use super::*;

    /// A loopback address whose connection attempts hang: a listener with a backlog of 0
    /// whose one queued connection is never accepted, so the kernel drops further SYNs.
    fn hanging_address() -> (SocketAddr, Vec<Socket>) {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let filler = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        filler.connect(&addr.into()).unwrap();
        (addr, vec![listener, filler])
    }

    fn refused_address() -> SocketAddr {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    #[test]
    fn a_tcp_connect_tries_every_address_until_one_answers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = vec![refused_address(), listener.local_addr().unwrap()];
        let mut socket = TcpSocket::to(Target::Addrs(addrs), Duration::from_secs(5));
        assert!(socket.connect().unwrap());
        socket.send(b"a.b 1 1700000000\n").unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let mut line = [0u8; 17];
        io::Read::read_exact(&mut accepted, &mut line).unwrap();
        assert_eq!(&line, b"a.b 1 1700000000\n");
    }

    #[test]
    fn a_whole_tcp_connect_attempt_is_bounded_by_the_timeout_over_every_address() {
        let hanging: Vec<_> = (0..4).map(|_| hanging_address()).collect();
        let addrs = hanging.iter().map(|(addr, _)| *addr).collect();
        let timeout = Duration::from_millis(400);
        let mut socket = TcpSocket::to(Target::Addrs(addrs), timeout);
        let started = Instant::now();
        let err = socket.connect().unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        // One timeout per address would take 1.6 s.
        assert!(took < Duration::from_millis(1200), "took {took:?}");
    }

    #[test]
    fn udp_moves_to_the_next_address_after_a_failure() {
        let sink = StdUdp::bind("127.0.0.1:0").unwrap();
        let closed = StdUdp::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let addrs = vec![closed, sink.local_addr().unwrap()];
        let mut socket = UdpSocket::to(Target::Addrs(addrs), 1432);
        assert!(socket.connect().unwrap());
        // Nobody listens: the ICMP answer to the first datagram fails a later send.
        let failed = (0..50).find_map(|_| socket.send(b"lost 1 1700000000\n").err());
        assert_eq!(
            failed.map(|err| err.kind()),
            Some(io::ErrorKind::ConnectionRefused)
        );
        socket.disconnect();
        assert!(socket.connect().unwrap());
        socket.send(b"a.b 1 1700000000\n").unwrap();
        let mut buf = [0u8; 64];
        let n = sink.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"a.b 1 1700000000\n");
    }

    #[test]
    fn a_huge_timeout_does_not_overflow() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = vec![listener.local_addr().unwrap()];
        let mut socket = TcpSocket::to(Target::Addrs(addrs), Duration::MAX);
        assert!(socket.connect().unwrap());
    }
}
