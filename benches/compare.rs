//! graphyte side by side with what users would pick instead, measured in one run.
//!
//! Run through `scripts/bench`, which installs Python graphyte 1.7.1 into a venv and passes
//! its interpreter in `GRAPHYTE_BENCH_PYTHON`. Each client runs in a child process of its own
//! (this binary again, or Python), so its CPU time and peak memory are its own; a sink in this
//! process counts the lines it receives over TCP and UDP and discards them. Each end-to-end
//! client runs several times; its row gives the median and the range.
//!
//! One more table, right after the first: stream mode (`graphyte send -`) against `nc -N`
//! (OpenBSD netcat), each moving the same file of pre-formatted lines from stdin to a loopback
//! sink, the two alternating in the same run. It needs the command-line tool: `scripts/bench`
//! builds it (`cargo build --release --features cli`) and passes its path in
//! `GRAPHYTE_BENCH_CLI`; without it the table is skipped with a note.
//!
//! `GRAPHYTE_BENCH_ONLY=stream` runs that table alone (a few seconds):
//!
//! ```text
//! cargo build --release --features cli
//! GRAPHYTE_BENCH_CLI=$PWD/target/release/graphyte GRAPHYTE_BENCH_ONLY=stream cargo bench --bench compare
//! ```

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use graphyte::{FullQueue, Sender, Transport};

/// Lines per end-to-end run, for the Rust clients and for Python (which is ~100× slower).
const RUST_LINES: u64 = 2_000_000;
const PYTHON_LINES: u64 = 100_000;
/// End-to-end runs per client. One run on a busy machine (two cores here, shared by client,
/// worker and sink) can be several times slower than the next; one figure hides that.
const RUNS: usize = 5;
/// Sends timed one at a time, 100 µs apart.
const SPORADIC_SENDS: u64 = 5_000;
const SPORADIC_PAUSE: Duration = Duration::from_micros(100);
const OVERLOAD_FOR: Duration = Duration::from_secs(10);
/// Pre-formatted lines that stream mode and `nc` each move from stdin to the sink (~85 MB).
const STREAM_LINES: u64 = 2_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--client") {
        return client(&args[at + 1..]);
    }
    if args.iter().any(|a| a == "--list") {
        return; // Asked for a list of benchmarks: this is one report, not a list.
    }
    parent();
}

// ---------------------------------------------------------------------------------------------
// The parent: sinks, children, table.

/// Counts newlines received; remembers when the last one arrived.
#[derive(Default)]
struct Counter {
    lines: AtomicU64,
    last_micros: AtomicU64,
}

impl Counter {
    fn add(&self, bytes: &[u8]) {
        let n = count_newlines(bytes);
        if n > 0 {
            self.lines.fetch_add(n, Ordering::Relaxed);
            self.last_micros.store(wall_micros(), Ordering::Relaxed);
        }
    }

    fn reset(&self) {
        self.lines.store(0, Ordering::Relaxed);
    }

    /// Waits until `expected` lines arrived or none arrived for two seconds.
    fn wait(&self, expected: u64) -> u64 {
        let mut seen = (self.lines.load(Ordering::Relaxed), Instant::now());
        loop {
            let now = self.lines.load(Ordering::Relaxed);
            if now >= expected {
                return now;
            }
            if now != seen.0 {
                seen = (now, Instant::now());
            } else if seen.1.elapsed() > Duration::from_secs(2) {
                return now;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Newlines in `bytes`, 16 bytes at a step: the sink shares the cores with the client, and a
/// byte-at-a-time count (~1.6 GB/s here) took as long as `nc` itself to move the stream row's
/// 85 MB, which held `nc` back more than graphyte and flattered the ratio.
#[cfg(target_arch = "x86_64")]
fn count_newlines(bytes: &[u8]) -> u64 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cvtsi128_si64, _mm_extract_epi16, _mm_loadu_si128, _mm_sad_epu8,
        _mm_set1_epi8, _mm_setzero_si128, _mm_sub_epi8,
    };
    // 255 blocks of 16 bytes: a byte lane counts at most one newline a block, so up to 255.
    let mut runs = bytes.chunks_exact(16 * 255);
    let mut n = 0u64;
    // SAFETY: SSE2 is part of x86_64; each load reads 16 bytes inside `block`, unaligned.
    unsafe {
        let newline = _mm_set1_epi8(b'\n' as i8);
        for run in &mut runs {
            let mut lanes = _mm_setzero_si128();
            for block in run.chunks_exact(16) {
                let v = _mm_loadu_si128(block.as_ptr().cast());
                // A match is 0xFF, -1: subtracting it adds one.
                lanes = _mm_sub_epi8(lanes, _mm_cmpeq_epi8(v, newline));
            }
            // Two sums of 8 lanes each, in the low 16 bits of each 64-bit half.
            let sums = _mm_sad_epu8(lanes, _mm_setzero_si128());
            n += _mm_cvtsi128_si64(sums) as u64 + _mm_extract_epi16(sums, 4) as u64;
        }
    }
    n + runs.remainder().iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(not(target_arch = "x86_64"))]
fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn wall_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A TCP sink: every connection read by its own thread, as fast as it can, or throttled.
fn tcp_sink(counter: Arc<Counter>, throttle: Option<Duration>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = counter.clone();
            thread::spawn(move || {
                let mut stream = stream;
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    counter.add(&buf[..n]);
                    if let Some(pause) = throttle {
                        thread::sleep(pause);
                    }
                }
            });
        }
    });
    port
}

fn udp_sink(counter: Arc<Counter>) -> u16 {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    let _ = socket.set_recv_buffer_size(16 << 20);
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let socket: UdpSocket = socket.into();
    let port = socket.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = socket.recv(&mut buf) {
            counter.add(&buf[..n]);
        }
    });
    port
}

/// What a client child reports on its last line of output.
#[derive(Debug, Default, Clone)]
struct Report {
    values: Vec<(String, f64)>,
}

impl Report {
    fn get(&self, key: &str) -> f64 {
        self.values
            .iter()
            .find(|(k, _)| k == key)
            .map_or(f64::NAN, |(_, v)| *v)
    }
}

fn run(program: &str, args: &[String]) -> Report {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(out.status.success(), "{program} {args:?} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("REPORT"))
        .unwrap_or_else(|| panic!("no report from {program} {args:?}: {text}"));
    Report {
        values: line
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(f64::NAN)))
            .collect(),
    }
}

fn me() -> String {
    std::env::current_exe()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn rust_client(kind: &str, port: u16, lines: u64) -> Report {
    run(
        &me(),
        &[
            "--client".into(),
            kind.into(),
            port.to_string(),
            lines.to_string(),
        ],
    )
}

fn python_client(python: &str, kind: &str, port: u16, lines: u64) -> Report {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/compare_graphyte_py.py"
    );
    run(
        python,
        &[
            script.into(),
            kind.into(),
            port.to_string(),
            lines.to_string(),
        ],
    )
}

struct Row {
    client: String,
    caller_ns: f64,
    sporadic_ns: f64,
    lines_per_s: Spread,
    /// The worst run's share.
    received: f64,
    /// The largest of the runs.
    rss_mb: f64,
    cpu_s_per_m: Spread,
}

/// Median and range of one figure over the runs.
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Spread {
        values.sort_by(f64::total_cmp);
        Spread {
            median: values[values.len() / 2],
            min: values[0],
            max: values[values.len() - 1],
        }
    }
}

/// `RUNS` end-to-end runs: the child sends `lines`, the sink counts them. The caller cost is
/// the child's own; the sporadic cost is measured apart.
fn end_to_end(client: &str, counter: &Counter, lines: u64, run_child: impl Fn() -> Report) -> Row {
    let (mut lines_per_s, mut cpu, mut caller_ns) = (vec![], vec![], vec![]);
    let (mut received, mut rss_mb) = (1.0f64, 0.0f64);
    for run in 1..=RUNS {
        counter.reset();
        let report = run_child();
        let got = counter.wait(lines);
        let start = report.get("start_us");
        let last = counter.last_micros.load(Ordering::Relaxed) as f64;
        lines_per_s.push(got as f64 / ((last - start) / 1e6));
        cpu.push(report.get("cpu_s") / lines as f64 * 1e6);
        caller_ns.push(report.get("caller_ns"));
        received = received.min(got as f64 / lines as f64);
        rss_mb = rss_mb.max(report.get("rss_kb") / 1024.0);
        // Each run, so that a bimodal client shows which runs were slow.
        eprintln!(
            "  run {run}/{RUNS}: {:.2} M lines/s, {:.3} s CPU per 1M lines",
            lines_per_s[run - 1] / 1e6,
            cpu[run - 1]
        );
    }
    Row {
        client: client.into(),
        caller_ns: Spread::of(caller_ns).median,
        sporadic_ns: f64::NAN,
        lines_per_s: Spread::of(lines_per_s),
        received,
        rss_mb,
        cpu_s_per_m: Spread::of(cpu),
    }
}

fn parent() {
    let cli = std::env::var("GRAPHYTE_BENCH_CLI").ok();
    match std::env::var("GRAPHYTE_BENCH_ONLY").ok().as_deref() {
        None | Some("") => {}
        Some("stream") => {
            let cli = cli.unwrap_or_else(|| {
                panic!(
                    "GRAPHYTE_BENCH_ONLY=stream needs GRAPHYTE_BENCH_CLI, the path to the \
                     command-line tool (cargo build --release --features cli; \
                     GRAPHYTE_BENCH_CLI=$PWD/target/release/graphyte)"
                )
            });
            return stream_vs_nc(&cli);
        }
        Some(other) => panic!("GRAPHYTE_BENCH_ONLY={other}: the only choice is `stream`"),
    }
    let python = std::env::var("GRAPHYTE_BENCH_PYTHON").ok();
    let tcp = Arc::new(Counter::default());
    let udp = Arc::new(Counter::default());
    let slow = Arc::new(Counter::default());
    let tcp_port = tcp_sink(tcp.clone(), None);
    let udp_port = udp_sink(udp.clone());
    let slow_port = tcp_sink(slow.clone(), Some(Duration::from_millis(10)));
    let mut rows = Vec::new();

    eprintln!("graphyte over TCP...");
    // The end-to-end child waits when the queue is full; its caller cost is measured apart,
    // with a queue that never fills.
    let caller = rust_client("graphyte-caller", tcp_port, RUST_LINES);
    let sporadic = rust_client("graphyte-sporadic", tcp_port, SPORADIC_SENDS);
    rows.push(Row {
        caller_ns: caller.get("caller_ns"),
        sporadic_ns: sporadic.get("sporadic_ns"),
        ..end_to_end("graphyte (TCP)", &tcp, RUST_LINES, || {
            rust_client("graphyte-tcp", tcp_port, RUST_LINES)
        })
    });

    eprintln!("graphyte over UDP...");
    rows.push(Row {
        caller_ns: f64::NAN,
        ..end_to_end("graphyte (UDP)", &udp, RUST_LINES, || {
            rust_client("graphyte-udp", udp_port, RUST_LINES)
        })
    });

    eprintln!("cadence 1.x, QueuingMetricSink over UDP...");
    let sporadic = rust_client("cadence-sporadic", udp_port, SPORADIC_SENDS);
    udp.wait(SPORADIC_SENDS);
    rows.push(Row {
        sporadic_ns: sporadic.get("sporadic_ns"),
        ..end_to_end("cadence (UDP, StatsD)", &udp, RUST_LINES, || {
            rust_client("cadence-udp", udp_port, RUST_LINES)
        })
    });

    match &python {
        Some(python) => {
            eprintln!("Python graphyte 1.7.1, interval mode...");
            let sporadic = python_client(python, "sporadic", tcp_port, SPORADIC_SENDS);
            tcp.wait(SPORADIC_SENDS);
            rows.push(Row {
                sporadic_ns: sporadic.get("sporadic_ns"),
                ..end_to_end("graphyte-py 1.7.1 (TCP)", &tcp, PYTHON_LINES, || {
                    python_client(python, "tcp", tcp_port, PYTHON_LINES)
                })
            });
        }
        None => eprintln!(
            "GRAPHYTE_BENCH_PYTHON not set: Python graphyte not measured (use scripts/bench)"
        ),
    }

    print_table(&rows);

    match &cli {
        Some(cli) => stream_vs_nc(cli),
        None => {
            eprintln!(
                "GRAPHYTE_BENCH_CLI not set: stream mode (graphyte send -) not measured against nc \
                 (scripts/bench was not used; it builds the command-line tool and sets it)"
            );
            println!(
                "\nstream stdin→TCP sink: graphyte send - vs nc: skipped, GRAPHYTE_BENCH_CLI not \
                 set (run scripts/bench)"
            );
        }
    }

    eprintln!(
        "overload: {}s against a throttled sink...",
        OVERLOAD_FOR.as_secs()
    );
    let overload = rust_client("graphyte-overload", slow_port, 0);
    print_overload(&overload);

    carbon_cpu(&rows[0]);
}

// ---------------------------------------------------------------------------------------------
// Stream mode against nc: the same file of pre-formatted lines from stdin to a loopback sink.

/// `graphyte send -` and `nc -N` move the same file of pre-formatted lines from their stdin to
/// a TCP sink in this process, the two alternating, `RUNS` times each. A run's time is from
/// spawning the client until the sink has counted every line.
///
/// The sink (one thread per connection, counting newlines) runs in this process and shares the
/// machine's cores with the client: the same for both clients, so the ratio is fair, but both
/// rates are below what either client would reach with a sink on a machine of its own.
fn stream_vs_nc(cli: &str) {
    check_nc();
    let dir = TempDir::new("graphyte-bench-stream");
    let file = dir.0.join("lines.txt");
    let bytes = write_stream_file(&file, STREAM_LINES);
    let counter = Arc::new(Counter::default());
    let port = tcp_sink(counter.clone(), None);
    let port_arg = port.to_string();
    let nc = ("nc -N", "nc", vec!["-N", "127.0.0.1", port_arg.as_str()]);
    let ours = (
        "graphyte send -",
        cli,
        vec![
            "send",
            "-",
            "-p",
            port_arg.as_str(),
            "-s",
            "127.0.0.1",
            "-q",
        ],
    );

    eprintln!(
        "stream mode: {STREAM_LINES} lines ({:.1} MB) from stdin to a TCP sink, graphyte send - \
         and nc -N alternating...",
        bytes as f64 / 1e6
    );
    let (mut nc_rates, mut our_rates, mut ratios) = (vec![], vec![], vec![]);
    for run in 1..=RUNS {
        // Who goes first alternates too, so that neither always runs on the other's heels.
        let measure = |(label, program, args): &(&str, &str, Vec<&str>)| {
            stream_run(label, program, args, &file, &counter, STREAM_LINES)
        };
        let (nc_rate, our_rate) = if run % 2 == 1 {
            let nc_rate = measure(&nc);
            (nc_rate, measure(&ours))
        } else {
            let our_rate = measure(&ours);
            (measure(&nc), our_rate)
        };
        nc_rates.push(nc_rate);
        our_rates.push(our_rate);
        ratios.push(our_rate / nc_rate);
        eprintln!(
            "  run {run}/{RUNS}: nc {:.2} M lines/s, graphyte {:.2} M lines/s, graphyte/nc {:.2}",
            nc_rate / 1e6,
            our_rate / 1e6,
            our_rate / nc_rate
        );
    }
    drop(dir);

    let (nc_rates, our_rates, ratios) = (
        Spread::of(nc_rates),
        Spread::of(our_rates),
        Spread::of(ratios),
    );
    let mb_per_line = bytes as f64 / STREAM_LINES as f64 / 1e6;
    println!();
    println!(
        "stream stdin→TCP sink: graphyte send - vs nc ({STREAM_LINES} pre-formatted lines, \
         {:.1} MB, stdin from a file; the two alternate, {RUNS} runs each; sink in the bench \
         process, on the same cores)",
        bytes as f64 / 1e6
    );
    println!();
    println!(
        "| client | M lines/s, median (min–max) of {RUNS} | MB/s, median (min–max) | graphyte/nc (medians; per-run range) |"
    );
    println!("|---|---:|---:|---|");
    println!(
        "| nc -N (OpenBSD netcat) | {} | {} | (anchor) |",
        fmt_spread(nc_rates, 1e-6, 2),
        fmt_spread(nc_rates, mb_per_line, 0),
    );
    println!(
        "| graphyte send - | {} | {} | {:.2}× ({:.2}–{:.2}×) |",
        fmt_spread(our_rates, 1e-6, 2),
        fmt_spread(our_rates, mb_per_line, 0),
        our_rates.median / nc_rates.median,
        ratios.min,
        ratios.max,
    );
}

/// A directory of its own under the system's temporary one, removed when dropped (a failed
/// run's panic included: the stream file is 85 MB).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fails unless `nc` is OpenBSD netcat, the one with `-N` (shut the socket down at the end of
/// stdin, so that the sink sees the end and `nc` exits).
fn check_nc() {
    let install = "install OpenBSD netcat: apt-get install netcat-openbsd (scripts/bench does)";
    let out = Command::new("nc")
        .arg("-h")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("nc: {e}; {install}"));
    let help =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("OpenBSD netcat"),
        "nc is not OpenBSD netcat (no -N); {install}\n{help}"
    );
}

/// `lines` lines `name value timestamp`, 100 names; returns the file's size in bytes.
fn write_stream_file(path: &Path, lines: u64) -> u64 {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    for i in 0..lines {
        writeln!(
            out,
            "app.server{}.requests.count {} 1700000000",
            i % 100,
            i % 1000
        )
        .unwrap();
    }
    out.into_inner().unwrap().sync_all().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// One client run: spawned with `file` as its stdin; lines per second from the spawn until the
/// sink counted all `lines`. Panics if lines are missing or the client fails.
fn stream_run(
    label: &str,
    program: &str,
    args: &[&str],
    file: &Path,
    counter: &Counter,
    lines: u64,
) -> f64 {
    counter.reset();
    let stdin = File::open(file).unwrap();
    let start = wall_micros();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{label}: running {program}: {e}"));
    let got = counter.wait(lines);
    let last = counter.last_micros.load(Ordering::Relaxed);
    let status = wait_child(&mut child, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("{label}: {program} still running 30 s after its last line"));
    assert!(
        status.success(),
        "{label}: {program} {args:?} failed: {status}"
    );
    assert_eq!(
        got, lines,
        "{label}: the sink counted {got} of {lines} lines"
    );
    // Lines arriving after the count was taken (there should be none).
    let after = counter.lines.load(Ordering::Relaxed);
    assert_eq!(
        after, lines,
        "{label}: the sink counted {after} lines, {lines} sent"
    );
    lines as f64 / ((last - start) as f64 / 1e6)
}

/// The child's exit status, or `None` (the child killed) if it runs past `limit`.
fn wait_child(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

fn fmt(v: f64, digits: usize) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.digits$}")
    }
}

/// "median (min–max)", the median alone when the runs agree to the digits shown.
fn fmt_spread(spread: Spread, scale: f64, digits: usize) -> String {
    let [median, min, max] =
        [spread.median, spread.min, spread.max].map(|v| fmt(v * scale, digits));
    if min == max {
        median
    } else {
        format!("{median} ({min}–{max})")
    }
}

fn ratio(ours: f64, theirs: f64, higher_is_better: bool) -> String {
    if ours.is_nan() || theirs.is_nan() {
        return "—".into();
    }
    let r = if higher_is_better {
        ours / theirs
    } else {
        theirs / ours
    };
    format!("{r:.1}×")
}

fn print_table(rows: &[Row]) {
    let ours = &rows[0];
    println!();
    println!(
        "| client | caller ns/send (burst) | caller ns/send (sporadic, median) | end-to-end M lines/s, median (min–max) of {RUNS} | received (worst) | peak RSS MB | CPU s per 1M lines, median (min–max) | graphyte's advantage (burst ns, lines/s, CPU; medians) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {}% | {} | {} | {} |",
            row.client,
            fmt(row.caller_ns, 1),
            fmt(row.sporadic_ns, 1),
            fmt_spread(row.lines_per_s, 1e-6, 2),
            fmt(row.received * 100.0, 1),
            fmt(row.rss_mb, 1),
            fmt_spread(row.cpu_s_per_m, 1.0, 3),
            if std::ptr::eq(row, ours) {
                "(anchor)".to_owned()
            } else {
                format!(
                    "{}, {}, {}",
                    ratio(ours.caller_ns, row.caller_ns, false),
                    ratio(ours.lines_per_s.median, row.lines_per_s.median, true),
                    ratio(ours.cpu_s_per_m.median, row.cpu_s_per_m.median, false)
                )
            }
        );
    }
}

fn print_overload(report: &Report) {
    let slot_bytes = 112.0;
    let bound_mb = graphyte::DEFAULT_QUEUE_CAPACITY as f64 * slot_bytes / 1048576.0;
    println!();
    println!(
        "overload ({} s, producer as fast as it can, sink throttled): sent {} lines, delivered {}, \
         dropped {}; peak RSS {:.1} MB = {:.1} MB before the sender was built + {:.1} MB \
         (queue bound: {} × {} B = {:.1} MB)",
        OVERLOAD_FOR.as_secs(),
        report.get("attempted"),
        report.get("sent"),
        report.get("dropped"),
        report.get("rss_kb") / 1024.0,
        report.get("base_rss_kb") / 1024.0,
        (report.get("rss_kb") - report.get("base_rss_kb")) / 1024.0,
        graphyte::DEFAULT_QUEUE_CAPACITY,
        slot_bytes,
        bound_mb,
    );
}

/// CPU that a real carbon-cache spends ingesting lines, next to the client's.
fn carbon_cpu(ours: &Row) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/carbon-server");
    let dir = std::env::temp_dir().join(format!("graphyte-bench-carbon-{}", std::process::id()));
    let out = Command::new(script)
        .arg("start")
        .arg(&dir)
        .output()
        .unwrap();
    if !out.status.success() {
        println!(
            "\ncarbon-cache did not start: CPU comparison skipped\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let env = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_owned()
    };
    let (pid, port): (u32, u16) = (
        get("PID").parse().unwrap(),
        get("LINE_PORT").parse().unwrap(),
    );
    let lines = 500_000;
    let before = process_cpu(pid);
    let client = rust_client("graphyte-carbon", port, lines);
    // Ingesting is done when carbon's CPU stops growing (cache flushed to whisper files).
    let mut last = process_cpu(pid);
    loop {
        thread::sleep(Duration::from_millis(1500));
        let now = process_cpu(pid);
        if now - last < 0.02 {
            break;
        }
        last = now;
    }
    let carbon = (last - before) / lines as f64 * 1e6;
    let client_cpu = client.get("cpu_s") / lines as f64 * 1e6;
    let _ = Command::new(script).arg("stop").arg(&dir).status();
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    println!(
        "CPU per 1M lines into a real carbon-cache ({lines} lines, 1,000 series): client {:.3} s, \
         carbon-cache {:.3} s; the client costs {:.1}% of the server (client on a discard sink, median: {:.3} s)",
        client_cpu,
        carbon,
        client_cpu / carbon * 100.0,
        ours.cpu_s_per_m.median
    );
}

/// User + system CPU seconds of a process, all its threads.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, r)| r.split_whitespace().collect());
    let ticks: f64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

// ---------------------------------------------------------------------------------------------
// The children: one client each, reporting on one line.

/// This process's CPU seconds (user + system, all threads, finished ones included) and peak
/// resident memory in KiB.
fn self_usage() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        secs(usage.ru_utime) + secs(usage.ru_stime),
        usage.ru_maxrss as f64,
    )
}

fn report(pairs: &[(&str, f64)]) {
    let (cpu, rss) = self_usage();
    let mut line = String::from("REPORT");
    for (k, v) in pairs.iter().chain(&[("cpu_s", cpu), ("rss_kb", rss)]) {
        line.push_str(&format!(" {k}={v}"));
    }
    println!("{line}");
}

fn spin(pause: Duration) {
    let start = Instant::now();
    while start.elapsed() < pause {
        std::hint::spin_loop();
    }
}

/// Median of `sends` sends, each timed alone after a pause, less the timer's own cost.
fn sporadic(sends: u64, mut send: impl FnMut(u64)) -> f64 {
    let mut times = Vec::with_capacity(sends as usize);
    let mut empty = Vec::with_capacity(sends as usize);
    for i in 0..sends {
        spin(SPORADIC_PAUSE);
        let start = Instant::now();
        send(i);
        times.push(start.elapsed().as_nanos() as f64);
        let start = Instant::now();
        empty.push(start.elapsed().as_nanos() as f64);
    }
    median(&mut times) - median(&mut empty)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn graphyte(port: u16) -> graphyte::Builder {
    Sender::builder("127.0.0.1").port(port).prefix("bench")
}

fn client(args: &[String]) {
    let kind = args[0].as_str();
    let port: u16 = args[1].parse().unwrap();
    let lines: u64 = args[2].parse().unwrap();
    match kind {
        // Caller cost alone: timed in chunks that fit the queue, emptied between chunks.
        "graphyte-caller" => {
            let sender = graphyte(port).build().unwrap();
            let chunk = graphyte::DEFAULT_QUEUE_CAPACITY as u64;
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < lines {
                let n = chunk.min(lines - done);
                let start = Instant::now();
                for i in done..done + n {
                    sender.send("requests.ok", i);
                }
                total += start.elapsed();
                sender.flush().unwrap();
                done += n;
            }
            assert_eq!(sender.stats().dropped, 0);
            report(&[("caller_ns", total.as_nanos() as f64 / lines as f64)]);
        }
        "graphyte-sporadic" => {
            let sender = graphyte(port).build().unwrap();
            let ns = sporadic(lines, |i| sender.send("requests.ok", i));
            report(&[("sporadic_ns", ns)]);
        }
        // End to end: every line delivered (the producer waits when the queue is full).
        "graphyte-tcp" | "graphyte-udp" | "graphyte-carbon" => {
            let transport = if kind == "graphyte-udp" {
                Transport::Udp
            } else {
                Transport::Tcp
            };
            let sender = graphyte(port)
                .transport(transport)
                .max_datagram(8192)
                .full_queue(FullQueue::Block)
                .build()
                .unwrap();
            let start_us = wall_micros() as f64;
            let start = Instant::now();
            if kind == "graphyte-carbon" {
                let names: Vec<String> = (0..1000).map(|i| format!("series{i}")).collect();
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                for i in 0..lines {
                    let ts = now - 3600 + i / 1000;
                    sender.send_at(names[(i % 1000) as usize].clone(), i, ts);
                }
            } else {
                for i in 0..lines {
                    sender.send("requests.ok", i);
                }
            }
            let caller = start.elapsed();
            sender.shutdown(Duration::from_secs(30)).unwrap();
            assert_eq!(sender.stats().sent, lines);
            report(&[
                ("start_us", start_us),
                ("caller_ns", caller.as_nanos() as f64 / lines as f64),
            ]);
        }
        "graphyte-overload" => {
            let (_, base_rss) = self_usage();
            let sender = graphyte(port).build().unwrap();
            let start = Instant::now();
            let mut attempted = 0u64;
            while start.elapsed() < OVERLOAD_FOR {
                for _ in 0..1000 {
                    sender.send("overload", attempted);
                    attempted += 1;
                }
            }
            let _ = sender.shutdown(Duration::from_secs(1));
            let stats = sender.stats();
            report(&[
                ("attempted", attempted as f64),
                ("sent", stats.sent as f64),
                ("dropped", stats.dropped as f64),
                ("base_rss_kb", base_rss),
            ]);
        }
        "cadence-udp" | "cadence-sporadic" => cadence_client(kind, port, lines),
        other => panic!("unknown client {other}"),
    }
}

fn cadence_client(kind: &str, port: u16, lines: u64) {
    use cadence::prelude::*;
    use cadence::{BufferedUdpMetricSink, QueuingMetricSink, StatsdClient};

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp = BufferedUdpMetricSink::from(("127.0.0.1", port), socket).unwrap();
    let capacity = if kind == "cadence-udp" {
        lines as usize
    } else {
        1 << 16
    };
    let queuing = Arc::new(QueuingMetricSink::with_capacity(udp, capacity));
    let client = StatsdClient::from_sink("bench", Shared(queuing.clone()));
    if kind == "cadence-sporadic" {
        let ns = sporadic(lines, |i| {
            let _ = client.gauge("requests.ok", i);
        });
        client.flush().ok();
        report(&[("sporadic_ns", ns)]);
        return;
    }
    let start_us = wall_micros() as f64;
    let start = Instant::now();
    for i in 0..lines {
        let _ = client.gauge("requests.ok", i);
    }
    let caller = start.elapsed();
    // cadence's drop does not wait for its worker: wait for the queue to empty, then give the
    // worker a moment to flush its last buffer.
    while queuing.queued() > 0 {
        thread::sleep(Duration::from_millis(5));
    }
    drop(client);
    drop(queuing);
    thread::sleep(Duration::from_millis(200));
    report(&[
        ("start_us", start_us),
        ("caller_ns", caller.as_nanos() as f64 / lines as f64),
    ]);
}

/// Lets the bench keep a handle on cadence's queuing sink (to see when it has drained).
struct Shared(Arc<cadence::QueuingMetricSink>);

impl cadence::MetricSink for Shared {
    fn emit(&self, metric: &str) -> std::io::Result<usize> {
        self.0.emit(metric)
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}
