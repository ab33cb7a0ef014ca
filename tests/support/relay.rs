//! A real carbon-c-relay (Debian's) in front of real carbon-caches, spreading the series over
//! them by consistent hashing (`carbon_ch`, as carbon's own relay does): started by
//! `scripts/carbon-relay`, stopped (by PID) when dropped.

use super::{Carbon, wait_until};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// Two carbon-caches behind one carbon-c-relay: send to `relay`, read from `caches` (each
/// series lands in exactly one of them; `caches[0]` is the ring's instance `a`, `caches[1]`
/// instance `b`).
pub struct Relayed {
    pub caches: [Carbon; 2],
    pub relay: Relay,
}

impl Relayed {
    /// Starts two carbon-caches and a relay in front of them; fails the test loudly if any
    /// cannot start.
    pub fn start() -> Relayed {
        let caches = [Carbon::start(), Carbon::start()];
        let relay = Relay::start(&caches);
        Relayed { caches, relay }
    }

    /// The points since `since` (a Unix second) each cache holds for each of `names` (cache
    /// and whisper file): `[points in caches[0], points in caches[1]]`, name by name. One
    /// Python process per cache, the two read at once; see [`fetch_each_since`].
    pub fn fetch_each(&self, names: &[String], since: u32) -> [Vec<Vec<(u32, f64)>>; 2] {
        let [a, b] = &self.caches;
        thread::scope(|s| {
            let in_b = s.spawn(|| fetch_each_since(b, names, since));
            let in_a = fetch_each_since(a, names, since);
            [in_a, in_b.join().expect("reading the second cache")]
        })
    }

    /// Waits until the two caches together hold at least `count` points since `since` for
    /// each of `names` (or `timeout` passes), and returns what each holds, as `fetch_each`
    /// does. Checks nothing itself: the caller judges the split.
    pub fn wait_for_each(
        &self,
        names: &[String],
        count: usize,
        since: u32,
        timeout: Duration,
    ) -> [Vec<Vec<(u32, f64)>>; 2] {
        let mut held = [Vec::new(), Vec::new()];
        wait_until(timeout, || {
            held = self.fetch_each(names, since);
            let [a, b] = &held;
            a.iter().zip(b).all(|(a, b)| a.len() + b.len() >= count)
        });
        held
    }

    /// The end of the relay's log and of both caches' logs, for failure messages (a cache logs
    /// a line per series it creates: thousands).
    pub fn log(&self) -> String {
        format!(
            "relay log (end):\n{}\ncache a log (end):\n{}\ncache b log (end):\n{}",
            tail(&self.relay.log(), 40),
            tail(&self.caches[0].log(), 40),
            tail(&self.caches[1].log(), 40)
        )
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Relayed {
    fn drop(&mut self) {
        // The relay first: once a cache is gone another test's carbon-cache may take its port,
        // and the relay must not deliver anything left in its queues there.
        self.relay.stop();
    }
}

/// The points since `since` (a Unix second) `carbon` holds for each of `names` (cache and
/// whisper file), name by name, as (timestamp, value): what `Carbon::fetch_each` gives for
/// the points from `since` on, fast enough for thousands of names. One Python process; the
/// cache read with one bulk query, then each whisper file read over `since..now` only:
/// `Carbon::fetch_each` reads a file's whole day (86,400 slots, ~17 ms a file here), this
/// ~0.15 ms.
pub fn fetch_each_since(carbon: &Carbon, names: &[String], since: u32) -> Vec<Vec<(u32, f64)>> {
    let args = [
        carbon.dir.join("storage/whisper").display().to_string(),
        carbon.query_port.to_string(),
        since.to_string(),
    ];
    super::points_each(FETCH_EACH_SINCE, &args, names)
}

/// Prints, for each name read from stdin (one a line), its point count since `since`, then
/// its points, "ts value" a line (as `scripts/carbon-fetch.py` does, names and paths alike).
const FETCH_EACH_SINCE: &str = r#"
import os, pickle, socket, struct, sys, time
import whisper
from carbon.util import TaggedSeries

whisper_dir, port, since = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = sys.stdin.read().splitlines()
series = [TaggedSeries.parse(name).path if ";" in name else name for name in names]

def read_exactly(conn, size):
    data = bytearray()
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError("cache query connection closed")
        data += chunk
    return bytes(data)

# The cache first, then the files: carbon's writer takes a metric's points out of the cache and
# then writes them, so a point that left the cache after this read is in its file by the time
# the file is read (unless that write is under way then: the caller polls).
request = pickle.dumps({"type": "cache-query-bulk", "metrics": series}, protocol=2)
with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
    conn.sendall(struct.pack("!L", len(request)) + request)
    size = struct.unpack("!L", read_exactly(conn, 4))[0]
    cached = pickle.loads(read_exactly(conn, size))["datapointsByMetric"]

def disk_points(name):
    path = os.path.join(whisper_dir, TaggedSeries.encode(name, os.sep, hash_only=True) + ".wsp")
    if not os.path.exists(path):
        return []
    # A file being created can lack its header or archives for a moment.
    deadline = time.monotonic() + 5
    while True:
        try:
            # whisper returns the slots after its from time: since - 1 includes since.
            (start, _end, step), values = whisper.fetch(path, since - 1)
            break
        except (whisper.CorruptWhisperFile, struct.error):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    return [(start + i * step, v) for i, v in enumerate(values) if v is not None]

out = []
for name in series:
    points = dict(disk_points(name))
    points.update((int(ts), value) for ts, value in cached.get(name, []))
    kept = sorted(ts for ts in points if ts >= since)
    out.append(str(len(kept)))
    out.extend("%d %r" % (ts, points[ts]) for ts in kept)
print("\n".join(out))
"#;

/// A carbon-c-relay of our own on 127.0.0.1 (plaintext lines over TCP and UDP).
pub struct Relay {
    pub line_port: u16,
    pub udp_port: u16,
    pub pid: u32,
    dir: PathBuf,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/carbon-relay")
}

impl Relay {
    /// Starts carbon-c-relay in front of `caches` (instance `a`, `b`, ... in this order),
    /// sending every line to one of them by consistent hashing; fails the test loudly if it
    /// cannot start.
    pub fn start(caches: &[Carbon]) -> Relay {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "graphyte-relay-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let out = Command::new(script())
            .arg("start")
            .arg(&dir)
            .args(caches.iter().map(|cache| &cache.dir))
            // A killed test run leaves no relay behind.
            .env("GRAPHYTE_WATCH_PID", std::process::id().to_string())
            .output()
            .unwrap_or_else(|err| panic!("running {}: {err}", script().display()));
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            panic!(
                "carbon-c-relay did not start (install it with `scripts/carbon-relay install`):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let env = String::from_utf8(out.stdout).unwrap();
        let value = |key: &str| -> String {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing from {env}"))
                .to_owned()
        };
        Relay {
            line_port: value("LINE_PORT").parse().unwrap(),
            udp_port: value("UDP_PORT").parse().unwrap(),
            pid: value("PID").parse().unwrap(),
            dir,
        }
    }

    /// Stops the relay (it drains its queues briefly on SIGTERM); stopping again does nothing.
    pub fn stop(&self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }

    /// The relay's own output: its parsed configuration, connection errors, drops.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("relay.log")).unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
