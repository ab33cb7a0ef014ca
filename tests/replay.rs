//! Replay after a broken connection: the frames written on a connection in the last few
//! seconds are written again on the next one, so a carbon-cache killed mid-stream loses
//! nothing that was sent.

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use graphyte::Sender;
use support::{Carbon, lines_of, wait_until};

/// A generous deadline for events that take a second or two.
const WAIT: Duration = Duration::from_secs(30);

fn quick_retries(builder: graphyte::Builder) -> graphyte::Builder {
    builder
        .interval(Duration::from_millis(100))
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
}

/// A loopback server that keeps the bytes of each connection apart, and closes its first
/// connection when told to.
struct BreakingSink {
    port: u16,
    connections: Arc<Mutex<Vec<Vec<u8>>>>,
    close_first: Arc<AtomicBool>,
    first_closed: Arc<AtomicBool>,
}

impl BreakingSink {
    fn start() -> BreakingSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let close_first = Arc::new(AtomicBool::new(false));
        let first_closed = Arc::new(AtomicBool::new(false));
        let (kept, close, closed) = (
            connections.clone(),
            close_first.clone(),
            first_closed.clone(),
        );
        thread::spawn(move || {
            for (index, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                kept.lock().unwrap().push(Vec::new());
                let (kept, close, closed) = (kept.clone(), close.clone(), closed.clone());
                thread::spawn(move || {
                    stream
                        .set_read_timeout(Some(Duration::from_millis(5)))
                        .unwrap();
                    let mut buf = [0u8; 65536];
                    loop {
                        if index == 0 && close.load(Ordering::SeqCst) {
                            drop(stream);
                            closed.store(true, Ordering::SeqCst);
                            return;
                        }
                        match stream.read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => kept.lock().unwrap()[index].extend_from_slice(&buf[..n]),
                            Err(_) => {}
                        }
                    }
                });
            }
        });
        BreakingSink {
            port,
            connections,
            close_first,
            first_closed,
        }
    }

    fn connection(&self, index: usize) -> Vec<u8> {
        self.connections
            .lock()
            .unwrap()
            .get(index)
            .cloned()
            .unwrap_or_default()
    }

    fn wait_for_lines(&self, index: usize, count: usize) -> Vec<u8> {
        let arrived = wait_until(WAIT, || lines_of(&self.connection(index)).len() >= count);
        let bytes = self.connection(index);
        assert!(
            arrived && lines_of(&bytes).len() == count,
            "connection {index}: {} lines, {count} expected",
            lines_of(&bytes).len()
        );
        bytes
    }

    /// Closes the first connection once it holds `count` lines.
    fn break_first_after(&self, count: usize) -> Vec<u8> {
        let before = self.wait_for_lines(0, count);
        self.close_first.store(true, Ordering::SeqCst);
        assert!(wait_until(WAIT, || self
            .first_closed
            .load(Ordering::SeqCst)));
        before
    }
}

fn send_lines(sender: &Sender, name: &'static str, range: std::ops::Range<u64>) {
    for i in range {
        sender.send_at(name, i, 1_700_000_000 + i);
    }
    sender.flush().unwrap();
}

/// Sends 100 lines, has the sink close the connection, sends 100 more; returns what the
/// first connection got and what the second got.
fn break_between_two_batches(sender: &Sender, sink: &BreakingSink, second: usize) -> [Vec<u8>; 2] {
    send_lines(sender, "replay.a", 0..100);
    let first = sink.break_first_after(100);
    send_lines(sender, "replay.b", 100..200);
    [first, sink.wait_for_lines(1, second)]
}

#[test]
fn frames_written_before_a_break_arrive_again_on_the_next_connection_byte_for_byte() {
    let sink = BreakingSink::start();
    let sender = quick_retries(Sender::builder("127.0.0.1").port(sink.port))
        .build()
        .unwrap();
    let [first, second] = break_between_two_batches(&sender, &sink, 200);
    assert_eq!(
        &second[..first.len()],
        &first[..],
        "replayed first, unchanged"
    );
    let new = lines_of(&second[first.len()..]);
    assert!(
        new.iter().all(|line| line.starts_with("replay.b ")),
        "{new:?}"
    );
    let stats = sender.stats();
    assert_eq!(
        (stats.sent, stats.replayed, stats.possibly_lost),
        (200, 100, 0),
        "{stats:?}"
    );
    assert_eq!(stats.sent_bytes, (first.len() + second.len()) as u64);
}

#[test]
fn a_synchronous_sender_replays_after_a_break_too() {
    let sink = BreakingSink::start();
    let sender = Sender::builder("127.0.0.1")
        .port(sink.port)
        .synchronous()
        .build()
        .unwrap();
    let [first, second] = break_between_two_batches(&sender, &sink, 200);
    assert_eq!(&second[..first.len()], &first[..]);
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.replayed), (200, 100), "{stats:?}");
}

#[test]
fn with_replay_off_nothing_is_written_again_and_the_last_lines_count_as_possibly_lost() {
    let sink = BreakingSink::start();
    let sender = quick_retries(Sender::builder("127.0.0.1").port(sink.port))
        .replay(Duration::ZERO)
        .build()
        .unwrap();
    let [_, second] = break_between_two_batches(&sender, &sink, 100);
    let lines = lines_of(&second);
    assert!(
        lines.iter().all(|l| l.starts_with("replay.b ")),
        "{lines:?}"
    );
    let stats = sender.stats();
    assert_eq!(
        (stats.sent, stats.replayed, stats.possibly_lost),
        (200, 0, 100),
        "{stats:?}"
    );
}

#[test]
fn frames_older_than_the_window_before_the_last_write_are_not_replayed() {
    let sink = BreakingSink::start();
    let window = Duration::from_millis(300);
    let sender = quick_retries(Sender::builder("127.0.0.1").port(sink.port))
        .replay(window)
        .build()
        .unwrap();
    send_lines(&sender, "replay.old", 0..100);
    let written = Instant::now();
    sink.wait_for_lines(0, 100);
    // Waits on the clock itself: the next write must come more than a window later.
    assert!(wait_until(WAIT, || written.elapsed() > window * 2));
    send_lines(&sender, "replay.a", 100..150);
    let first = sink.break_first_after(150);
    send_lines(&sender, "replay.b", 150..200);
    let second = sink.wait_for_lines(1, 100);
    let lines = lines_of(&second);
    assert!(lines[..50].iter().all(|l| l.starts_with("replay.a ")));
    assert!(lines[50..].iter().all(|l| l.starts_with("replay.b ")));
    assert!(first.ends_with(&second[..second.len() - lines_of_len(&lines[50..])]));
    assert_eq!(sender.stats().replayed, 50, "{:?}", sender.stats());
}

/// Bytes of `lines`, each with its newline.
fn lines_of_len(lines: &[String]) -> usize {
    lines.iter().map(|l| l.len() + 1).sum()
}

#[test]
fn a_clean_shutdown_replays_nothing() {
    let sink = BreakingSink::start();
    let sender = quick_retries(Sender::builder("127.0.0.1").port(sink.port))
        .build()
        .unwrap();
    send_lines(&sender, "replay.a", 0..100);
    sender.shutdown(Duration::from_secs(5)).unwrap();
    sink.wait_for_lines(0, 100);
    let stats = sender.stats();
    assert_eq!(
        (stats.sent, stats.replayed, stats.possibly_lost),
        (100, 0, 0),
        "{stats:?}"
    );
    assert_eq!(sink.connections.lock().unwrap().len(), 1);
}

#[test]
fn a_carbon_cache_killed_mid_stream_and_restarted_stores_every_point_sent() {
    let carbon = Carbon::start();
    let sender = quick_retries(Sender::builder("127.0.0.1").port(carbon.line_port))
        .build()
        .unwrap();
    const SERIES: u64 = 50;
    const LINES: u64 = 10_000;
    const PER_SERIES: usize = (LINES / SERIES) as usize;
    let names: Vec<String> = (0..SERIES).map(|i| format!("replayed.s{i}")).collect();
    let base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    // Every series' file exists before carbon is killed: a carbon-cache killed while it creates
    // a whisper file leaves it without its header, and then drops every later point of that
    // series itself, whatever the client sends (seen once in CI).
    for name in &names {
        sender.send_at(name.clone(), -1, base - 1);
    }
    carbon.wait_for_each(&names, 1);
    // Each series gets one point a second, each value distinct: a point written twice is
    // stored once, a point lost leaves its slot empty. Paced at about 2,000 lines a second;
    // carbon dies after the first 2,000.
    for i in 0..LINES {
        sender.send_at(names[(i % SERIES) as usize].clone(), i, base + i / SERIES);
        if i % 20 == 19 {
            thread::sleep(Duration::from_millis(10));
        }
        if i == 2_000 {
            carbon.kill();
            carbon.restart();
        }
    }
    sender.shutdown(Duration::from_secs(10)).unwrap();
    let stats = sender.stats();
    assert_eq!(
        (stats.sent, stats.failed, stats.dropped),
        (LINES + SERIES, 0, 0),
        "{stats:?}"
    );
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(stats.replayed > 0, "{stats:?}");
    let stored = carbon.wait_for_each(&names, PER_SERIES + 1);
    for (s, points) in stored.iter().enumerate() {
        let first = ((base - 1) as u32, -1.0);
        let expected: Vec<(u32, f64)> = std::iter::once(first)
            .chain((0..PER_SERIES as u64).map(|k| {
                let i = k * SERIES + s as u64;
                ((base + k) as u32, i as f64)
            }))
            .collect();
        assert_eq!(points, &expected, "{}", names[s]);
    }
    eprintln!("carbon killed mid-stream: every point stored; {stats:?}");
}
