//! Carbon's plaintext protocol over UDP.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};

use crate::transport::{SendSocket, Target, no_address};

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

#[cfg(test)]
mod tests {
    use std::net::UdpSocket as StdUdp;

    use super::*;

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
}
