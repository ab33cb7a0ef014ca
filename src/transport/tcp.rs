//! Carbon over one persistent TCP connection, and the connect logic the TLS transport shares
//! ([`Connector`], [`without_blocking`]).

use std::io::{self, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::point::clock::later;
use crate::transport::{SendSocket, Target, no_address};

/// Carbon's plaintext or pickle protocol over one persistent TCP connection.
///
/// The host is resolved again at every connection, so a moved server is found, and each of
/// its addresses is tried in turn, all within one timeout. Connections have `TCP_NODELAY` and
/// a write timeout. Before each batch the connection is checked, so one that Carbon closed
/// while idle is replaced before any line is written to it.
#[derive(Debug)]
pub struct TcpSocket {
    connector: Connector,
    stream: Option<TcpStream>,
}

impl TcpSocket {
    /// A socket for `host:port`; nothing is resolved or connected until the first batch.
    /// `timeout` bounds a whole connection attempt, over every address of the host, and each
    /// write.
    pub fn new(host: impl Into<String>, port: u16, timeout: Duration) -> Self {
        Self::to(Target::Host(host.into(), port), timeout)
    }

    pub(crate) fn to(target: Target, timeout: Duration) -> Self {
        TcpSocket {
            connector: Connector::new(target, timeout),
            stream: None,
        }
    }
}

/// How a connection to Carbon is opened, for every stream transport (TCP, and TLS over it):
/// the host resolved again at every connection, each of its addresses tried in turn, all
/// within one deadline; `TCP_NODELAY`; a write timeout.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    /// Where connections go.
    pub(crate) target: Target,
    /// Bounds a whole connection attempt and each write; at least 1 ms.
    pub(crate) timeout: Duration,
}

impl Connector {
    pub(crate) fn new(target: Target, timeout: Duration) -> Self {
        Connector {
            target,
            // The system refuses a zero timeout.
            timeout: timeout.max(Duration::from_millis(1)),
        }
    }

    /// The deadline of a connection attempt starting now.
    pub(crate) fn deadline(&self) -> Instant {
        later(Instant::now(), self.timeout)
    }

    /// Opens a TCP connection to the first address of the target that answers before
    /// `deadline`, resolving the host now.
    pub(crate) fn open(&self, deadline: Instant) -> io::Result<TcpStream> {
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

/// Runs `probe` on `stream` in non-blocking mode, then puts the stream back in blocking mode:
/// a look at what the peer sent (or whether it closed) that never waits. An error setting
/// either mode is returned as the probe's.
pub(crate) fn without_blocking<T>(
    stream: &TcpStream,
    probe: impl FnOnce(&TcpStream) -> io::Result<T>,
) -> io::Result<T> {
    stream.set_nonblocking(true)?;
    let result = probe(stream);
    let restored = stream.set_nonblocking(false);
    let value = result?;
    restored.map(|()| value)
}

/// True while the peer has not closed the connection. Carbon never writes on this port, so a
/// readable socket means end of stream or an error.
fn is_open(stream: &TcpStream) -> bool {
    let peeked = without_blocking(stream, |stream| match stream.peek(&mut [0u8; 1]) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(err) => Err(err),
    });
    peeked.unwrap_or(false)
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
        self.stream = Some(self.connector.open(self.connector.deadline())?);
        Ok(true)
    }

    fn disconnect(&mut self) {
        self.stream = None;
    }
}

#[cfg(test)]
mod tests {
    use std::net::{SocketAddr, TcpListener};

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
    fn the_host_is_resolved_again_at_every_connection_so_a_moved_server_is_found() {
        let old = TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = std::sync::Arc::new(std::sync::Mutex::new(vec![old.local_addr().unwrap()]));
        let mut socket = TcpSocket::to(Target::Moving(addrs.clone()), Duration::from_secs(5));
        assert!(socket.connect().unwrap());
        drop(old.accept().unwrap());
        // The server moves: its name now resolves to another address, the old one is gone.
        let new = TcpListener::bind("127.0.0.1:0").unwrap();
        *addrs.lock().unwrap() = vec![new.local_addr().unwrap()];
        drop(old);
        socket.disconnect();
        assert!(socket.connect().unwrap());
        socket.send(b"a.b 1 1700000000\n").unwrap();
        let (mut accepted, _) = new.accept().unwrap();
        let mut line = [0u8; 17];
        io::Read::read_exact(&mut accepted, &mut line).unwrap();
        assert_eq!(&line, b"a.b 1 1700000000\n");
    }

    #[test]
    fn a_huge_timeout_does_not_overflow() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = vec![listener.local_addr().unwrap()];
        let mut socket = TcpSocket::to(Target::Addrs(addrs), Duration::MAX);
        assert!(socket.connect().unwrap());
    }
}
