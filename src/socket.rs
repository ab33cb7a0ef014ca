//! The seam through which bytes leave: the [`SendSocket`] trait and its TCP and UDP transports.

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket as StdUdpSocket};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Where a [`Sender`](crate::Sender)'s bytes go. Implement it to replace how they leave: write
/// to a file, wrap a TLS stream, or capture lines in a test.
///
/// Only [`send`](SendSocket::send) is required. The worker (or, in synchronous mode, the
/// sending thread) calls [`connect`](SendSocket::connect) before every batch, then `send` until
/// the batch is written. On an error it calls [`disconnect`](SendSocket::disconnect), keeps the
/// unsent lines, and tries again after a backoff. Buffers always hold whole lines.
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
    /// bytes than given is fine (the rest comes in the next call); an error means nothing of
    /// `buf` was sent.
    fn send(&mut self, buf: &[u8]) -> io::Result<usize>;

    /// Makes the socket ready to send, opening a connection if it has none or if its
    /// connection was closed by the peer. Returns `true` when it opened a new one (counted in
    /// [`Stats::reconnects`](crate::Stats::reconnects) after the first). The default does
    /// nothing.
    fn connect(&mut self) -> io::Result<bool> {
        Ok(false)
    }

    /// Drops the connection after an error; the next [`connect`](SendSocket::connect) opens a
    /// new one. The default does nothing.
    fn disconnect(&mut self) {}

    /// The most bytes one `send` may carry (a datagram's size), or `None` for a stream. Lines
    /// are never split across two sends; a line longer than this is refused when sent.
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
/// The host is resolved again at every connection, so a moved server is found. Connections
/// have `TCP_NODELAY`, and connect and write timeouts. Before each batch the connection is
/// checked, so one that Carbon closed while idle is replaced before any line is written to it.
#[derive(Debug)]
pub struct TcpSocket {
    host: String,
    port: u16,
    timeout: Duration,
    stream: Option<TcpStream>,
}

impl TcpSocket {
    /// A socket for `host:port`; nothing is resolved or connected until the first batch.
    pub fn new(host: impl Into<String>, port: u16, timeout: Duration) -> Self {
        TcpSocket {
            host: host.into(),
            port,
            timeout,
            stream: None,
        }
    }

    fn open(&self) -> io::Result<TcpStream> {
        let mut last_error = None;
        for addr in resolve(&self.host, self.port)? {
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_tcp_nodelay(true)?;
            socket.set_write_timeout(Some(self.timeout))?;
            match socket.connect_timeout(&addr.into(), self.timeout) {
                Ok(()) => return Ok(socket.into()),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| no_address(&self.host)))
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
#[derive(Debug)]
pub struct UdpSocket {
    host: String,
    port: u16,
    max_datagram: usize,
    socket: Option<StdUdpSocket>,
}

impl UdpSocket {
    /// Largest datagram Carbon's UDP listener reads whole.
    pub const MAX_DATAGRAM: usize = 8192;

    /// A socket for `host:port`; `max_datagram` is capped at [`UdpSocket::MAX_DATAGRAM`].
    pub fn new(host: impl Into<String>, port: u16, max_datagram: usize) -> Self {
        UdpSocket {
            host: host.into(),
            port,
            max_datagram: max_datagram.clamp(1, Self::MAX_DATAGRAM),
            socket: None,
        }
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
        let addr = resolve(&self.host, self.port)?
            .next()
            .ok_or_else(|| no_address(&self.host))?;
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = StdUdpSocket::bind(local)?;
        // A connected UDP socket reports ICMP errors (nobody listening) on the next send.
        socket.connect(addr)?;
        self.socket = Some(socket);
        Ok(true)
    }

    fn disconnect(&mut self) {
        self.socket = None;
    }

    fn max_payload(&self) -> Option<usize> {
        Some(self.max_datagram)
    }
}

fn resolve(host: &str, port: u16) -> io::Result<std::vec::IntoIter<SocketAddr>> {
    (host, port).to_socket_addrs()
}

fn no_address(host: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{host} resolved to no address"),
    )
}
