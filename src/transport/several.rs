//! Several Carbon destinations behind one socket: failover to the first that answers, or
//! series spread over all of them by carbon-c-relay's `carbon_ch` consistent hash.

use std::io::{self, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::transport::tcp::{Connector, without_blocking};
use crate::transport::{SendSocket, Target};

/// How a [`SeveralSocket`] uses its destinations (see
/// [`Builder::destinations`](crate::Builder::destinations)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Everything to the first destination that accepts a connection; on a failed write or
    /// connection, the next one. While a later one is in use, a background thread tries to
    /// open (and at once closes) a connection to each earlier one every second, sending no
    /// data; the next batch goes back to the earliest that accepted.
    Failover,
    /// Each series to one destination, chosen as carbon-c-relay's `carbon_ch` cluster (and
    /// carbon's own relay) chooses it, so a graphite-web listing the same caches in
    /// `CARBONLINK_HOSTS` finds it. Plaintext only.
    CarbonCh,
}

/// How often [`Mode::Failover`] checks whether an earlier destination is back.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Points on carbon_ch's ring per destination: carbon's default, which carbon-c-relay fixes.
const REPLICAS: u32 = 100;

/// One destination: its ring name and its connection.
#[derive(Debug)]
struct Destination {
    /// The host as written: part of the ring key.
    host: String,
    instance: Option<String>,
    socket: Link,
}

/// One TCP connection, opened as [`TcpSocket`](crate::TcpSocket) opens its own.
#[derive(Debug)]
struct Link {
    connector: Connector,
    stream: Option<TcpStream>,
}

impl Link {
    /// Opens a connection unless the one it has is still open; `true` when it opened one.
    fn connect(&mut self) -> io::Result<bool> {
        if self.stream.as_ref().is_some_and(is_open) {
            return Ok(false);
        }
        self.stream = None;
        self.stream = Some(self.connector.open(self.connector.deadline())?);
        Ok(true)
    }

    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.stream {
            Some(stream) => stream.write(buf),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn disconnect(&mut self) {
        self.stream = None;
    }

    fn is_connected(&self) -> bool {
        self.stream.is_some()
    }
}

/// True while the peer has not closed the connection (Carbon never writes on it).
fn is_open(stream: &TcpStream) -> bool {
    let peeked = without_blocking(stream, |stream| match stream.peek(&mut [0u8; 1]) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(err) => Err(err),
    });
    peeked.unwrap_or(false)
}

/// A [`SendSocket`] over several TCP destinations (plaintext or, with [`Mode::Failover`],
/// pickle), each reached as [`TcpSocket`](crate::TcpSocket) reaches one.
///
/// A destination is written `host:port` or `host:port=instance`, as in carbon-c-relay's
/// configuration. The instance matters to [`Mode::CarbonCh`] only: a destination's place on
/// the ring is computed from its host, as written (a name is not resolved for it), and its
/// instance (none if not given), never its port. To land every series where a relay or a
/// graphite-web expects it, list the destinations with the same hosts and instances as their
/// configuration: carbon-c-relay's `cluster NAME carbon_ch 10.0.0.1:2003=a 10.0.0.2:2003=b`
/// is `["10.0.0.1:2003=a", "10.0.0.2:2003=b"]`; graphite-web's `CARBONLINK_HOSTS =
/// ['10.0.0.1:7002:a', ...]` names the same instances. Destinations sharing a host need
/// distinct instances.
///
/// # Failover
///
/// Each batch goes to one destination. A write that fails is reported as failed for now: the
/// sender keeps the unwritten points and, after its backoff, sends them from the next
/// destination on. Points written to a destination shortly before it died may be lost with
/// it (counted as possibly lost, as with one destination).
///
/// # carbon_ch
///
/// Each line goes to the destination its name (everything before the first space, tags
/// included, as carbon-c-relay hashes it) falls on, a frame's lines for one destination in one
/// write. Pickle frames are refused ([`InvalidInput`](io::ErrorKind::InvalidInput)):
/// carbon-c-relay reads no pickle, so there is no placement to match, and
/// [`Builder::build`](crate::Builder::build) refuses the combination up front.
///
/// A batch needs every destination: while one cannot be connected to, the whole stream waits
/// (the sender keeps it, within its queue, as it does when one Carbon is down), so a series
/// never lands anywhere but its own destination. A send reports the longest run of lines, from
/// the start of the frame, that all reached their destinations; the rest is sent again, so
/// lines after a failure that did reach other destinations arrive twice (Carbon keeps one
/// point per series and second: harmless).
#[derive(Debug)]
pub struct SeveralSocket {
    mode: Mode,
    destinations: Vec<Destination>,
    state: State,
}

#[derive(Debug)]
enum State {
    Failover(Failover),
    CarbonCh(Ring),
}

/// Which destination failover uses, and the thread looking for an earlier one.
#[derive(Debug, Default)]
struct Failover {
    current: usize,
    /// The current destination failed a write: move on at the next connect.
    failed: bool,
    prober: Option<Prober>,
}

/// A thread trying to connect to the destinations before the current one, every
/// [`PROBE_INTERVAL`]; it stops once one accepts, or when its `stop` sender is dropped.
#[derive(Debug)]
struct Prober {
    /// Dropped to stop the thread.
    _stop: mpsc::Sender<()>,
    /// The earliest destination that accepted a connection, or `usize::MAX`.
    back: Arc<AtomicUsize>,
    /// The destinations it tries: `0..before`.
    before: usize,
}

impl SeveralSocket {
    /// A socket for `destinations` (`host:port` or `host:port=instance`, at least one), in
    /// `mode`; nothing is resolved or connected until the first batch. `timeout` bounds each
    /// connection attempt and each write, as for
    /// [`TcpSocket::new`](crate::TcpSocket::new).
    ///
    /// # Errors
    ///
    /// What is wrong with the list: empty, a destination that is not `host:port[=instance]`
    /// with a port from 1 to 65535, or (for [`Mode::CarbonCh`]) two destinations with the same
    /// host and instance.
    pub fn new<S: AsRef<str>>(
        destinations: &[S],
        mode: Mode,
        timeout: Duration,
    ) -> Result<Self, &'static str> {
        if destinations.is_empty() {
            return Err("destinations: give at least one host:port");
        }
        let destinations = destinations
            .iter()
            .map(|d| {
                let (host, port, instance) = parse_destination(d.as_ref())?;
                let target = Target::Host(unbracket(&host).to_owned(), port);
                Ok(Destination::new(host, instance, target, timeout))
            })
            .collect::<Result<Vec<_>, &'static str>>()?;
        Self::of(destinations, mode)
    }

    fn of(destinations: Vec<Destination>, mode: Mode) -> Result<Self, &'static str> {
        let state = match mode {
            Mode::Failover => State::Failover(Failover::default()),
            Mode::CarbonCh => {
                let nodes: Vec<_> = destinations
                    .iter()
                    .map(|d| (d.host.as_str(), d.instance.as_deref()))
                    .collect();
                for (i, node) in nodes.iter().enumerate() {
                    if nodes[..i].contains(node) {
                        return Err("destinations: with carbon_ch, destinations on one host \
                                    need distinct instances (host:port=instance)");
                    }
                }
                State::CarbonCh(Ring::new(&nodes))
            }
        };
        Ok(SeveralSocket {
            mode,
            destinations,
            state,
        })
    }

    /// The mode this socket was built with.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

impl Destination {
    fn new(host: String, instance: Option<String>, target: Target, timeout: Duration) -> Self {
        Destination {
            host,
            instance,
            socket: Link {
                connector: Connector::new(target, timeout),
                stream: None,
            },
        }
    }
}

/// Splits `host:port[=instance]`.
fn parse_destination(text: &str) -> Result<(String, u16, Option<String>), &'static str> {
    const BAD: &str = "destinations: each must be host:port or host:port=instance, with a port \
                       from 1 to 65535";
    let (address, instance) = match text.split_once('=') {
        Some((address, instance)) => (address, Some(instance)),
        None => (text, None),
    };
    let (host, port) = address.rsplit_once(':').ok_or(BAD)?;
    let port: u16 = port.parse().map_err(|_| BAD)?;
    let bad_text = |s: &str| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '\'');
    if port == 0
        || bad_text(host)
        || instance.is_some_and(bad_text)
        || (host.contains(':') && !(host.starts_with('[') && host.ends_with(']')))
    {
        return Err(BAD);
    }
    Ok((host.to_owned(), port, instance.map(str::to_owned)))
}

/// `[::1]` as `::1`; anything else as it is.
fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn is_refusal(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
    )
}

impl SendSocket for SeveralSocket {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.state {
            State::Failover(failover) => {
                let result = self.destinations[failover.current].socket.send(buf);
                if let Err(err) = &result
                    && !is_refusal(err.kind())
                    && err.kind() != io::ErrorKind::Interrupted
                {
                    failover.failed = true;
                }
                result
            }
            State::CarbonCh(ring) => send_spread(ring, &mut self.destinations, buf),
        }
    }

    fn connect(&mut self) -> io::Result<bool> {
        match &mut self.state {
            State::Failover(failover) => failover.connect(&mut self.destinations),
            State::CarbonCh(_) => {
                let mut opened = false;
                let mut failure = None;
                for destination in &mut self.destinations {
                    match destination.socket.connect() {
                        Ok(new) => opened |= new,
                        Err(err) => {
                            failure.get_or_insert(err);
                        }
                    }
                }
                failure.map_or(Ok(opened), Err)
            }
        }
    }

    fn disconnect(&mut self) {
        // Only the connection in use by failover; carbon_ch drops each as it fails.
        if let State::Failover(failover) = &self.state {
            self.destinations[failover.current].socket.disconnect();
        }
    }
}

impl Failover {
    /// Connects to the destination to use: an earlier one the prober found back, else the
    /// current one (unless it failed a write), else the next that accepts, in order.
    ///
    /// A planned return to an earlier destination, from one that had not failed, closes the
    /// old connection cleanly (what it took is flushed by the kernel and delivered) and is
    /// not a break: it returns `false`, so the link neither replays nor counts as possibly
    /// lost what the old destination took. Any other switch or new connection returns `true`.
    fn connect(&mut self, destinations: &mut [Destination]) -> io::Result<bool> {
        let count = destinations.len();
        let mut switched = false;
        let mut planned = false;
        let back = self
            .prober
            .as_ref()
            .map_or(usize::MAX, |p| p.back.load(Ordering::Acquire));
        if back < self.current {
            destinations[self.current].socket.disconnect();
            self.current = back;
            planned = !self.failed;
            self.failed = false;
            switched = true;
        }
        let start = if self.failed {
            destinations[self.current].socket.disconnect();
            self.failed = false;
            (self.current + 1) % count
        } else {
            self.current
        };
        let mut last_error = None;
        for step in 0..count {
            let index = (start + step) % count;
            match destinations[index].socket.connect() {
                Ok(new) => {
                    if index != self.current {
                        destinations[self.current].socket.disconnect();
                        self.current = index;
                        switched = true;
                    }
                    // A prober for exactly the destinations before this one, while any are.
                    let stale = self.prober.as_ref().is_some_and(|p| {
                        p.before != self.current || p.back.load(Ordering::Acquire) != usize::MAX
                    });
                    if stale {
                        self.prober = None;
                    }
                    if self.current > 0 && self.prober.is_none() {
                        self.prober = Some(Prober::start(&destinations[..self.current]));
                    }
                    return Ok(!planned && (new || switched));
                }
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or_else(|| io::ErrorKind::NotConnected.into()))
    }
}

impl Prober {
    fn start(earlier: &[Destination]) -> Prober {
        let connectors: Vec<Connector> =
            earlier.iter().map(|d| d.socket.connector.clone()).collect();
        let (stop, stopped) = mpsc::channel::<()>();
        let back = Arc::new(AtomicUsize::new(usize::MAX));
        let found = back.clone();
        let probe = move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(PROBE_INTERVAL) {
                for (index, connector) in connectors.iter().enumerate() {
                    // A connection opened and closed at once: no byte is sent on it.
                    if connector.open(connector.deadline()).is_ok() {
                        found.store(index, Ordering::Release);
                        return;
                    }
                }
            }
        };
        let spawned = thread::Builder::new()
            .name("graphyte-failover-probe".into())
            .spawn(probe);
        if let Err(err) = spawned {
            log::warn!(target: "graphyte", "cannot start the failover probe thread: {err}");
        }
        Prober {
            _stop: stop,
            back,
            before: earlier.len(),
        }
    }
}

/// carbon_ch's send: each line of `buf` to its destination, reporting the whole lines from the
/// start that were all written.
fn send_spread(ring: &Ring, destinations: &mut [Destination], buf: &[u8]) -> io::Result<usize> {
    if !buf.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "carbon_ch takes whole plaintext lines (carbon-c-relay reads no pickle)",
        ));
    }
    let mut groups: Vec<Vec<u8>> = vec![Vec::new(); destinations.len()];
    // For each destination, each of its lines: where it starts in `buf` and where it ends in
    // the destination's group.
    let mut lines: Vec<Vec<(usize, usize)>> = vec![Vec::new(); destinations.len()];
    let mut cut = buf.len();
    let mut failure = None;
    let mut offset = 0;
    for line in buf.split_inclusive(|&b| b == b'\n') {
        let key_end = line
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or(line.len() - 1);
        let index = ring.node(&line[..key_end]);
        let destination = &destinations[index];
        if !destination.socket.is_connected() {
            // Nothing from this line on is sent: a series never waits behind its own later
            // points.
            cut = offset;
            failure = Some(io::Error::new(
                io::ErrorKind::NotConnected,
                format!(
                    "carbon_ch destination {}{} is not connected",
                    destination.socket.connector.target,
                    instance_suffix(destination)
                ),
            ));
            break;
        }
        groups[index].extend_from_slice(line);
        lines[index].push((offset, groups[index].len()));
        offset += line.len();
    }
    let mut written_to = cut;
    for (index, group) in groups.iter().enumerate() {
        let mut done = 0;
        while done < group.len() {
            match destinations[index].socket.send(&group[done..]) {
                Ok(0) => {
                    failure.get_or_insert(io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => done += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    failure.get_or_insert(err);
                    break;
                }
            }
        }
        if done < group.len() {
            // This connection may hold part of a line: drop it (the next connect opens a new
            // one). The frame is whole up to this destination's first line not fully written.
            destinations[index].socket.disconnect();
            if let Some(&(start, _)) = lines[index].iter().find(|&&(_, end)| end > done) {
                written_to = written_to.min(start);
            }
        }
    }
    match failure {
        Some(err) if written_to == 0 => Err(err),
        _ => Ok(written_to),
    }
}

fn instance_suffix(destination: &Destination) -> String {
    destination
        .instance
        .as_ref()
        .map_or_else(String::new, |i| format!("={i}"))
}

/// carbon-c-relay's `carbon_ch` ring: [`REPLICAS`] positions per destination, each the first
/// two bytes (big-endian) of the MD5 of `('HOST', 'INSTANCE'):N` (`None` unquoted without an
/// instance: Python's rendering of carbon's node tuple), N from 0. Sorted by position, then
/// host, then instance (a missing one last); where positions are equal, the first of the run
/// owns them all. A name goes to the first position at or after its own hash, wrapping round.
/// Unlike carbon's Python ring, equal positions are not moved apart: carbon-c-relay does not
/// do it, and placements are matched with carbon-c-relay.
#[derive(Debug)]
struct Ring {
    /// (position, destination index), sorted by position.
    points: Vec<(u16, usize)>,
}

impl Ring {
    /// A ring over `(host, instance)` nodes, destination `i` being `nodes[i]`.
    fn new(nodes: &[(&str, Option<&str>)]) -> Ring {
        let mut entries: Vec<(u16, usize)> = Vec::with_capacity(nodes.len() * REPLICAS as usize);
        for (index, (host, instance)) in nodes.iter().enumerate() {
            let instance = match instance {
                Some(instance) => format!("'{instance}'"),
                None => "None".to_owned(),
            };
            for replica in 0..REPLICAS {
                let key = format!("('{host}', {instance}):{replica}");
                entries.push((position(key.as_bytes()), index));
            }
        }
        entries.sort_by(|&(pos_a, a), &(pos_b, b)| {
            let (host_a, inst_a) = nodes[a];
            let (host_b, inst_b) = nodes[b];
            pos_a
                .cmp(&pos_b)
                .then_with(|| host_a.as_bytes().cmp(host_b.as_bytes()))
                .then_with(|| match (inst_a, inst_b) {
                    (Some(x), Some(y)) => x.as_bytes().cmp(y.as_bytes()),
                    (x, y) => y.is_some().cmp(&x.is_some()),
                })
        });
        for i in 1..entries.len() {
            if entries[i].0 == entries[i - 1].0 {
                entries[i].1 = entries[i - 1].1;
            }
        }
        Ring { points: entries }
    }

    /// The destination of the series named `key`.
    fn node(&self, key: &[u8]) -> usize {
        let pos = position(key);
        let at = self.points.partition_point(|&(p, _)| p < pos);
        self.points[at % self.points.len()].1
    }
}

/// A key's place on the ring: the first two bytes of its MD5, big-endian.
fn position(key: &[u8]) -> u16 {
    let digest = md5(key);
    u16::from_be_bytes([digest[0], digest[1]])
}

/// MD5 (RFC 1321): carbon's ring hash. Not used for anything needing security.
fn md5(data: &[u8]) -> [u8; 16] {
    const SHIFTS: [u32; 16] = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    let table: [u32; 64] =
        std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32);
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&(data.len() as u64).wrapping_mul(8).to_le_bytes());
    for block in message.chunks_exact(64) {
        let words: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes([
                block[i * 4],
                block[i * 4 + 1],
                block[i * 4 + 2],
                block[i * 4 + 3],
            ])
        });
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let sum = a
                .wrapping_add(f)
                .wrapping_add(table[i])
                .wrapping_add(words[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(sum.rotate_left(SHIFTS[(i / 16) * 4 + i % 4]));
        }
        for (word, add) in state.iter_mut().zip([a, b, c, d]) {
            *word = word.wrapping_add(add);
        }
    }
    let mut digest = [0u8; 16];
    for (i, word) in state.iter().enumerate() {
        digest[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    digest
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{SocketAddr, TcpListener};
    use std::time::Instant;

    use super::*;

    fn hex(digest: [u8; 16]) -> String {
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn md5_gives_rfc_1321_digests() {
        assert_eq!(hex(md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        let long =
            b"12345678901234567890123456789012345678901234567890123456789012345678901234567890";
        assert_eq!(hex(md5(long)), "57edf4a22be3c955ac49da2e2107b67a");
    }

    /// The destination (host:port) `carbon_ch` over `specs` gives `name`.
    fn placed(specs: &[&str], name: &str) -> String {
        let parsed: Vec<_> = specs
            .iter()
            .map(|s| parse_destination(s).unwrap())
            .collect();
        let nodes: Vec<_> = parsed
            .iter()
            .map(|(h, _, i)| (h.as_str(), i.as_deref()))
            .collect();
        let (host, port, _) = &parsed[Ring::new(&nodes).node(name.as_bytes())];
        format!("{host}:{port}")
    }

    /// Placements read from carbon-c-relay 3.7.3's test mode (`carbon-c-relay -t`, metrics on
    /// its standard input) with these clusters.
    #[test]
    fn the_ring_places_series_where_carbon_c_relay_does() {
        let ab = ["127.0.0.1:2103=a", "127.0.0.1:2203=b"];
        for (name, want) in [
            ("relay.split.s00000", "127.0.0.1:2203"),
            ("relay.split.s00002", "127.0.0.1:2103"),
            ("relay.split.s00004", "127.0.0.1:2103"),
            ("relay.split.s00005", "127.0.0.1:2203"),
            ("foo", "127.0.0.1:2103"),
            ("foo;host=x", "127.0.0.1:2103"),
            // Tags are part of the key: t.m0 alone would go to a.
            ("t.m0;host=h0;env=e", "127.0.0.1:2203"),
        ] {
            assert_eq!(placed(&ab, name), want, "{name}");
        }
        let mixed = ["10.0.0.1:2003=x", "10.0.0.2:2003", "10.0.0.3:2003=z"];
        for (name, want) in [
            ("relay.split.s00000", "10.0.0.2:2003"),
            ("relay.split.s00002", "10.0.0.1:2003"),
            ("relay.split.s00003", "10.0.0.3:2003"),
            ("servers.web1.cpu", "10.0.0.2:2003"),
            ("servers.web2.cpu", "10.0.0.3:2003"),
        ] {
            assert_eq!(placed(&mixed, name), want, "{name}");
        }
        // Host names hashed as written, ports ignored.
        let named = ["carbon1.example.com:2003", "carbon2.example.com:2004"];
        for (name, want) in [
            ("relay.split.s00000", "carbon1.example.com:2003"),
            ("relay.split.s00001", "carbon2.example.com:2004"),
            ("servers.web1.cpu", "carbon1.example.com:2003"),
            ("foo;host=x", "carbon2.example.com:2004"),
        ] {
            assert_eq!(placed(&named, name), want, "{name}");
        }
    }

    #[test]
    fn destination_lists_are_checked() {
        let new = |list: &[&str], mode| SeveralSocket::new(list, mode, Duration::from_secs(1));
        assert!(new(&[], Mode::Failover).is_err());
        for bad in [
            "host",
            "host:",
            ":2003",
            "host:0",
            "host:99999",
            "host:2003=",
            "a b:1",
            "::1:2003",
        ] {
            assert!(new(&[bad], Mode::Failover).is_err(), "{bad}");
        }
        assert!(new(&["[::1]:2003=a", "h:1"], Mode::CarbonCh).is_ok());
        let same_host = ["h:2003", "h:2004"];
        assert!(new(&same_host, Mode::Failover).is_ok());
        assert!(new(&same_host, Mode::CarbonCh).is_err());
        assert!(new(&["h:2003=a", "h:2004=b"], Mode::CarbonCh).is_ok());
    }

    fn listener() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    /// Destinations `127.0.0.1=a`, `=b`, ... at `addrs`.
    fn socket_to(addrs: &[SocketAddr], mode: Mode) -> SeveralSocket {
        let destinations = addrs
            .iter()
            .zip(["a", "b", "c"])
            .map(|(addr, instance)| {
                Destination::new(
                    "127.0.0.1".into(),
                    Some(instance.into()),
                    Target::Addrs(vec![*addr]),
                    Duration::from_secs(2),
                )
            })
            .collect();
        SeveralSocket::of(destinations, mode).unwrap()
    }

    fn read_all(listener: &TcpListener) -> Vec<u8> {
        let (mut stream, _) = listener.accept().unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    }

    fn current(socket: &SeveralSocket) -> usize {
        match &socket.state {
            State::Failover(failover) => failover.current,
            State::CarbonCh(_) => unreachable!(),
        }
    }

    #[test]
    fn carbon_ch_writes_each_line_to_its_destination_and_refuses_pickle() {
        let (a, addr_a) = listener();
        let (b, addr_b) = listener();
        let mut socket = socket_to(&[addr_a, addr_b], Mode::CarbonCh);
        socket.connect().unwrap();
        let frame = b"relay.split.s00000 1 1\nrelay.split.s00002 2 1\nfoo;host=x 3 1\n";
        assert_eq!(socket.send(frame).unwrap(), frame.len());
        let pickle = b"\0\0\0\x05(lp0\n.";
        let refused = socket.send(pickle).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
        drop(socket);
        assert_eq!(read_all(&a), b"relay.split.s00002 2 1\nfoo;host=x 3 1\n");
        assert_eq!(read_all(&b), b"relay.split.s00000 1 1\n");
    }

    #[test]
    fn carbon_ch_reports_only_the_lines_before_a_destination_it_cannot_reach() {
        let (a, addr_a) = listener();
        let (b, addr_b) = listener();
        let mut socket = socket_to(&[addr_a, addr_b], Mode::CarbonCh);
        socket.connect().unwrap();
        socket.destinations[1].socket.disconnect();
        // a's line, b's line, a's line: only the first is reported, and nothing after it sent.
        let frame = b"foo 1 1\nrelay.split.s00000 2 1\nrelay.split.s00002 3 1\n";
        assert_eq!(socket.send(frame).unwrap(), 8);
        let err = socket.send(&frame[8..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
        // Once b is connected again, the rest goes.
        assert!(socket.connect().unwrap());
        assert_eq!(socket.send(&frame[8..]).unwrap(), frame.len() - 8);
        drop(socket);
        assert_eq!(read_all(&a), b"foo 1 1\nrelay.split.s00002 3 1\n");
        assert_eq!(read_all(&b), b"", "the dropped connection carried nothing");
        assert_eq!(read_all(&b), b"relay.split.s00000 2 1\n");
    }

    #[test]
    fn failover_moves_on_when_the_first_refuses_and_returns_once_it_accepts_again() {
        let (first, addr_first) = listener();
        drop(first);
        let (second, addr_second) = listener();
        let mut socket = socket_to(&[addr_first, addr_second], Mode::Failover);
        assert!(socket.connect().unwrap());
        socket.send(b"x 1 1\n").unwrap();
        assert_eq!(current(&socket), 1);
        // The first is back (same port): the prober finds it, and sends it nothing.
        let Ok(first) = TcpListener::bind(addr_first) else {
            return; // The port was taken meanwhile: nothing to check.
        };
        assert_eq!(read_all(&first), b"", "the probe sent data");
        let back = Instant::now();
        while current(&socket) == 1 {
            assert!(back.elapsed() < Duration::from_secs(5), "never went back");
            socket.connect().unwrap();
            thread::sleep(Duration::from_millis(5));
        }
        socket.send(b"y 2 1\n").unwrap();
        drop(socket);
        assert_eq!(read_all(&second), b"x 1 1\n");
        assert_eq!(read_all(&first), b"y 2 1\n");
    }

    #[test]
    fn a_planned_return_to_the_first_is_not_reported_as_a_broken_connection() {
        let (first, addr_first) = listener();
        drop(first);
        let (second, addr_second) = listener();
        let mut socket = socket_to(&[addr_first, addr_second], Mode::Failover);
        assert!(socket.connect().unwrap());
        socket.send(b"x 1 1\n").unwrap();
        let Ok(first) = TcpListener::bind(addr_first) else {
            return; // The port was taken meanwhile: nothing to check.
        };
        assert_eq!(read_all(&first), b"", "the probe sent data");
        let back = Instant::now();
        while current(&socket) == 1 {
            assert!(back.elapsed() < Duration::from_secs(5), "never went back");
            // `true` would tell the link its connection broke: it would replay to the first
            // what the second took fine, and count the rest as possibly lost.
            assert!(
                !socket.connect().unwrap(),
                "the switch reported as a new connection"
            );
            thread::sleep(Duration::from_millis(5));
        }
        socket.send(b"y 2 1\n").unwrap();
        drop(socket);
        assert_eq!(read_all(&second), b"x 1 1\n", "the second closed cleanly");
        assert_eq!(read_all(&first), b"y 2 1\n");
    }

    #[test]
    fn failover_moves_to_the_next_after_a_failed_write() {
        let (first, addr_first) = listener();
        let (second, addr_second) = listener();
        let mut socket = socket_to(&[addr_first, addr_second], Mode::Failover);
        socket.connect().unwrap();
        assert_eq!(current(&socket), 0);
        // A write failure (here: the connection gone) moves the next connect on.
        socket.destinations[0].socket.disconnect();
        assert!(socket.send(b"x 1 1\n").is_err());
        socket.disconnect();
        assert!(socket.connect().unwrap());
        assert_eq!(current(&socket), 1);
        socket.send(b"x 1 1\n").unwrap();
        drop(socket);
        drop(first);
        assert_eq!(read_all(&second), b"x 1 1\n");
    }
}
