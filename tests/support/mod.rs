//! Shared test helpers: a real carbon-cache, loopback sinks, and deadline polling.
#![allow(dead_code)]

pub mod alloc;
pub mod graphite_web;
pub mod hostile;
pub mod http;
pub mod pickle;
pub mod process;
pub mod relay;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A socket that keeps every byte it is given.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<u8>>>);

impl graphyte::SendSocket for Capture {
    fn send(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
}

impl Capture {
    /// The bytes so far, emptying the capture.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.lock().unwrap())
    }

    pub fn is_empty(&self) -> bool {
        self.0.lock().unwrap().is_empty()
    }

    pub fn lines(&self) -> Vec<String> {
        lines_of(&self.0.lock().unwrap())
    }

    /// A synchronous sender writing into this capture: each send is in it when it returns.
    pub fn synchronous_sender(&self) -> graphyte::Sender {
        graphyte::Sender::builder("unused")
            .synchronous()
            .socket(self.clone())
            .build()
            .unwrap()
    }
}

/// A socket that accepts and discards everything.
pub struct Discard;

impl graphyte::SendSocket for Discard {
    fn send(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A carbon-cache of our own on 127.0.0.1, started by `scripts/carbon-server` and stopped
/// (by PID) when dropped.
pub struct Carbon {
    dir: PathBuf,
    pub line_port: u16,
    pub udp_port: u16,
    pub pickle_port: u16,
    query_port: u16,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/carbon-server")
}

impl Carbon {
    /// Starts carbon-cache, failing the test loudly if it cannot.
    pub fn start() -> Carbon {
        Self::start_with_env(&[])
    }

    /// Starts carbon-cache with these variables in `scripts/carbon-server`'s environment (such
    /// as `GRAPHITE_URL`, which turns tags on), failing the test loudly if it cannot.
    pub fn start_with_env(vars: &[(&str, &str)]) -> Carbon {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "graphyte-carbon-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            // Tags stay off unless asked for here, whatever the test's own environment says.
            .env_remove("GRAPHITE_URL")
            .env("GRAPHYTE_WATCH_PID", std::process::id().to_string())
            .envs(vars.iter().copied())
            .output()
            .expect("running scripts/carbon-server");
        assert!(
            out.status.success(),
            "carbon-cache did not start (install it with `scripts/carbon-server install`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8(out.stdout).unwrap();
        let port = |key: &str| -> u16 {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing from {env}"))
                .parse()
                .unwrap()
        };
        Carbon {
            line_port: port("LINE_PORT"),
            udp_port: port("UDP_PORT"),
            pickle_port: port("PICKLE_PORT"),
            query_port: port("QUERY_PORT"),
            dir,
        }
    }

    /// The points carbon holds for `name` (cache and whisper file), as (timestamp, value).
    pub fn fetch(&self, name: &str) -> Vec<(u32, f64)> {
        self.points("fetch", name)
    }

    /// The points of `name` that reached its whisper file on disk (not the cache).
    pub fn stored(&self, name: &str) -> Vec<(u32, f64)> {
        self.points("stored", name)
    }

    /// Runs `scripts/carbon-server COMMAND DIR NAME` and reads its "ts value" lines.
    fn points(&self, command: &str, name: &str) -> Vec<(u32, f64)> {
        let out = Command::new(script())
            .arg(command)
            .arg(&self.dir)
            .arg(name)
            .output()
            .unwrap_or_else(|err| panic!("running scripts/carbon-server {command}: {err}"));
        assert!(
            out.status.success(),
            "{command} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|line| {
                let (ts, value) = line.split_once(' ').unwrap();
                (ts.parse().unwrap(), value.parse().unwrap())
            })
            .collect()
    }

    /// Waits until carbon holds `count` points for `name`, and returns them.
    pub fn wait_for(&self, name: &str, count: usize) -> Vec<(u32, f64)> {
        let mut points = Vec::new();
        wait_until(Duration::from_secs(15), || {
            points = self.fetch(name);
            points.len() >= count
        });
        assert_eq!(
            points.len(),
            count,
            "points for {name}: {points:?}\ncarbon log:\n{}",
            self.log()
        );
        points
    }

    /// The points carbon holds for each of `names` (cache and whisper file), in one Python
    /// process: what `fetch` gives for each, without paying carbon's import time (~0.7 s)
    /// once per name.
    pub fn fetch_each(&self, names: &[String]) -> Vec<Vec<(u32, f64)>> {
        let args = [
            script()
                .with_file_name("carbon-fetch.py")
                .display()
                .to_string(),
            self.dir.join("storage/whisper").display().to_string(),
            self.query_port.to_string(),
        ];
        points_each(FETCH_EACH, &args, names)
    }

    /// Waits until carbon holds `count` points for each of `names` (or 15 seconds pass), and
    /// returns them, name by name; fails if any name has another number of points.
    pub fn wait_for_each(&self, names: &[String], count: usize) -> Vec<Vec<(u32, f64)>> {
        let mut points = Vec::new();
        wait_until(Duration::from_secs(15), || {
            points = self.fetch_each(names);
            points.iter().all(|p| p.len() >= count)
        });
        let wrong: Vec<_> = names
            .iter()
            .zip(&points)
            .filter(|(_, p)| p.len() != count)
            .map(|(name, p)| format!("{name}: {} points", p.len()))
            .collect();
        assert!(
            wrong.is_empty(),
            "expected {count} points for each of {} series; {} differ: {:?}\ncarbon log:\n{}",
            names.len(),
            wrong.len(),
            &wrong[..wrong.len().min(10)],
            self.log()
        );
        points
    }

    /// Kills carbon-cache at once (SIGKILL), as a crash would.
    pub fn kill(&self) {
        let status = Command::new(script())
            .arg("kill")
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Starts carbon-cache again on the same ports, with the data it had stored (and the
    /// GRAPHITE_URL it had, if any).
    pub fn restart(&self) {
        let out = Command::new(script())
            .arg("start")
            .arg(&self.dir)
            .env_remove("GRAPHITE_URL")
            .env("GRAPHYTE_WATCH_PID", std::process::id().to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "carbon-cache did not restart:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How many points carbon holds for each of `names`, in all.
    pub fn count(&self, names: &[String]) -> usize {
        let out = Command::new(script())
            .arg("count")
            .arg(&self.dir)
            .args(names)
            .output()
            .expect("running scripts/carbon-server count");
        assert!(
            out.status.success(),
            "count failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<usize>().unwrap())
            .sum()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/console.log")).unwrap_or_default()
    }
}

/// Prints, for each name read from stdin (one a line), its point count, then its points as
/// `carbon-server fetch` does: carbon-fetch.py's own reader, imported once.
const FETCH_EACH: &str = r#"
import importlib.util, sys
spec = importlib.util.spec_from_file_location("carbon_fetch", sys.argv[1])
fetch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch)
whisper_dir, port = sys.argv[2], int(sys.argv[3])
out = []
for name in sys.stdin.read().splitlines():
    points = fetch.points_of(whisper_dir, port, name)
    out.append(str(len(points)))
    out.extend("%d %r" % (ts, points[ts]) for ts in sorted(points))
print("\n".join(out))
"#;

impl Drop for Carbon {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback TCP server that keeps every byte it receives and counts connections.
pub struct TcpSink {
    pub port: u16,
    pub received: Arc<Mutex<Vec<u8>>>,
    pub connections: Arc<AtomicUsize>,
}

impl TcpSink {
    pub fn start() -> TcpSink {
        Self::start_on(0)
    }

    /// A sink on a given port (0 for any free one).
    pub fn start_on(port: u16) -> TcpSink {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (bytes, count) = (received.clone(), connections.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let bytes = bytes.clone();
                thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        bytes.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                });
            }
        });
        TcpSink {
            port,
            received,
            connections,
        }
    }

    pub fn lines(&self) -> Vec<String> {
        lines_of(&self.received.lock().unwrap())
    }

    /// Waits until the bytes received satisfy `done` (or ten seconds pass) and returns them.
    pub fn received_when(&self, mut done: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
        wait_until(Duration::from_secs(10), || {
            done(&self.received.lock().unwrap())
        });
        self.received.lock().unwrap().clone()
    }

    /// Waits until `count` lines have arrived and returns them.
    pub fn wait_for_lines(&self, count: usize) -> Vec<String> {
        wait_until(Duration::from_secs(10), || self.lines().len() >= count);
        let lines = self.lines();
        assert_eq!(lines.len(), count, "lines received");
        lines
    }
}

/// A loopback UDP server that keeps every datagram.
pub struct UdpSink {
    pub port: u16,
    /// The kernel's receive buffer for this socket, in bytes.
    pub recv_buffer: usize,
    pub datagrams: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl UdpSink {
    pub fn start() -> UdpSink {
        // A large receive buffer, so a burst is not lost while this thread catches up.
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let _ = socket.set_recv_buffer_size(8 << 20);
        let recv_buffer = socket.recv_buffer_size().unwrap();
        socket
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let socket: UdpSocket = socket.into();
        let port = socket.local_addr().unwrap().port();
        let datagrams = Arc::new(Mutex::new(Vec::new()));
        let kept = datagrams.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = socket.recv(&mut buf) {
                kept.lock().unwrap().push(buf[..n].to_vec());
            }
        });
        UdpSink {
            port,
            datagrams,
            recv_buffer,
        }
    }

    pub fn lines(&self) -> Vec<String> {
        lines_of(&self.datagrams.lock().unwrap().concat())
    }
}

pub fn lines_of(bytes: &[u8]) -> Vec<String> {
    String::from_utf8(bytes.to_vec())
        .expect("stream is UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Where the examples cargo built for this test run live (`target/<profile>/examples`).
pub fn example_path(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

/// A loopback port that nothing listens on (for now).
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback port whose connection attempts hang until they time out: a listener with a
/// backlog of 0 whose one queued connection (made here) is never accepted, so the kernel drops
/// every further SYN. Connecting to it neither succeeds nor is refused: a call that waited on
/// the network here would take the whole connect timeout.
pub struct HangingListener {
    pub port: u16,
    /// The listener and the connection filling its queue, kept open for as long as this lives.
    _sockets: [socket2::Socket; 2],
}

impl HangingListener {
    pub fn start() -> HangingListener {
        use socket2::{Domain, Socket, Type};
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener
            .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let filler = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        filler.connect(&addr).unwrap();
        HangingListener {
            port: addr.as_socket().unwrap().port(),
            _sockets: [listener, filler],
        }
    }
}

/// Runs `script` in Debian's Python with `args`, feeds it `names` (one a line), and reads back,
/// for each name in order, a count and then that many "ts value" lines: how the tests read
/// many series of carbon's in one process.
pub fn points_each(script: &str, args: &[String], names: &[String]) -> Vec<Vec<(u32, f64)>> {
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running Debian's /usr/bin/python3 (needed to read carbon's points)");
    let input: String = names.iter().map(|name| format!("{name}\n")).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    assert!(
        out.status.success(),
        "reading carbon's points failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let points = names
        .iter()
        .map(|name| {
            let count: usize = lines
                .next()
                .unwrap_or_else(|| panic!("no count for {name}"))
                .parse()
                .unwrap();
            (0..count)
                .map(|_| {
                    let (ts, value) = lines.next().unwrap().split_once(' ').unwrap();
                    (ts.parse().unwrap(), value.parse().unwrap())
                })
                .collect()
        })
        .collect();
    assert_eq!(lines.next(), None, "more output than names");
    points
}

/// The current Unix second.
pub fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// A second well inside carbon's one-day retention, so whisper keeps points before it too.
pub fn recent_second() -> u32 {
    unix_now() - 600
}
