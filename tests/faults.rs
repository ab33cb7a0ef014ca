//! Delivery when Carbon is down, killed, or stalled, and under concurrent load: nothing lost
//! that could be kept, everything else counted.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use graphyte::{Metric, Sender};
use support::{Carbon, Discard, TcpSink, unused_port, wait_until};

/// A generous deadline for events that take a second or two.
const WAIT: Duration = Duration::from_secs(30);

/// Failed writes on working connections after which graphyte gives a batch up. Refused
/// connects during an outage must not count toward them.
const GIVE_UP_AFTER: u64 = 5;

fn quick_retries(builder: graphyte::Builder) -> graphyte::Builder {
    builder
        .interval(Duration::from_millis(100))
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
}

#[test]
fn metrics_sent_while_the_server_is_down_are_delivered_when_it_comes_up() {
    let port = unused_port();
    let sender = quick_retries(Sender::builder("127.0.0.1").port(port))
        .build()
        .unwrap();
    // Points before the first failed attempt, and after it.
    for i in 0..100 {
        sender.send("outage.m", i);
    }
    assert!(wait_until(WAIT, || sender.stats().errors >= 1));
    for i in 100..200 {
        sender.send("outage.m", i);
    }
    // The outage outlasts more refused attempts than a batch failing on working connections
    // is given (about 1.4 s with this backoff): it is an outage, and nothing is given up.
    wait_until(WAIT, || {
        let stats = sender.stats();
        stats.errors > GIVE_UP_AFTER || stats.failed > 0
    });
    let stats = sender.stats();
    assert!(stats.errors > GIVE_UP_AFTER, "{stats:?}");
    assert_eq!((stats.sent, stats.failed), (0, 0), "{stats:?}");
    let sink = TcpSink::start_on(port);
    let lines = sink.wait_for_lines(200);
    let stats = sender.stats();
    assert_eq!(
        (stats.queued, stats.sent, stats.dropped, stats.failed),
        (200, 200, 0, 0),
        "{stats:?}"
    );
    assert!(
        lines[0].starts_with("outage.m 0 ") && lines[199].starts_with("outage.m 199 "),
        "in the order sent"
    );
}

#[test]
fn an_outage_keeps_the_queue_and_one_batch_and_drops_the_rest() {
    let port = unused_port();
    let sender = quick_retries(Sender::builder("127.0.0.1").port(port))
        .queue_capacity(100)
        .batch_size(10)
        .build()
        .unwrap();
    // The worker takes one batch, fails to write it, and takes no more until it can.
    for i in 0..10 {
        sender.send("bound.m", i);
    }
    assert!(wait_until(Duration::from_secs(10), || sender
        .stats()
        .errors
        >= 1));
    for i in 10..500 {
        sender.send("bound.m", i);
    }
    let sink = TcpSink::start_on(port);
    let lines = sink.wait_for_lines(110);
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.dropped), (110, 390));
    assert!(
        lines[0].starts_with("bound.m 0 ") && lines[109].starts_with("bound.m 109 "),
        "the oldest are kept"
    );
}

#[test]
fn a_killed_carbon_is_reconnected_and_every_point_is_stored_or_counted_as_possibly_lost() {
    let carbon = Carbon::start();
    // Without replay (tests/replay.rs has it), what carbon loses must be counted.
    let sender = quick_retries(
        Sender::builder("127.0.0.1")
            .port(carbon.line_port)
            .replay(Duration::ZERO),
    )
    .build()
    .unwrap();
    const SERIES: u64 = 50;
    const LINES: u64 = 10_000;
    let names: Vec<String> = (0..SERIES).map(|i| format!("killed.s{i}")).collect();
    let base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    // Every series' file exists before carbon is killed: a carbon-cache killed while it creates
    // a whisper file leaves it without its header, and then drops every later point of that
    // series itself, whatever the client counts.
    for name in &names {
        sender.send_at(name.clone(), -1, base - 1);
    }
    carbon.wait_for_each(&names, 1);
    let total = LINES + SERIES;
    // Paced, because the bound on what is counted as possibly lost is two seconds of lines at
    // this rate: about 2,000 lines a second for five seconds; carbon dies after the first 2,000.
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
        (total, 0, 0),
        "{stats:?}"
    );
    assert!(stats.reconnects >= 1, "{stats:?}");
    // Carbon holds a point once it has read it: wait until it holds every point not counted
    // as possibly lost.
    let total = total as usize;
    let mut held = 0;
    let enough = wait_until(WAIT, || {
        held = carbon.count(&names);
        total - held.min(total) <= stats.possibly_lost as usize
    });
    let lost = total - held.min(total);
    eprintln!(
        "carbon killed mid-stream: {held} of {total} stored, {lost} lost at most, {} counted as possibly lost",
        stats.possibly_lost
    );
    assert!(
        enough,
        "carbon holds {held} of {total}; {lost} lost but only {} counted as possibly lost",
        stats.possibly_lost
    );
    // The bound: two seconds of lines at this rate (about 4,000), plus a batch.
    assert!(stats.possibly_lost <= 5_000, "{stats:?}");
}

#[test]
fn eight_threads_on_a_small_queue_account_for_every_send_exactly() {
    let sender = Sender::builder("unused")
        .socket(Discard)
        .queue_capacity(64)
        .batch_size(16)
        .build()
        .unwrap();
    const THREADS: u64 = 8;
    const SENDS: u64 = 100_000;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let sender = sender.clone();
            thread::spawn(move || {
                for i in 0..SENDS {
                    if i % 1000 == 0 {
                        sender.send("bad name", i);
                    } else {
                        sender.send_metric(Metric::new("threads.ok", t * SENDS + i));
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    sender.shutdown(Duration::from_secs(10)).unwrap();
    let s = sender.stats();
    assert_eq!(s.refused, THREADS * SENDS / 1000);
    assert_eq!(s.failed, 0);
    assert_eq!(s.sent + s.dropped + s.refused, THREADS * SENDS, "{s:?}");
    assert_eq!(s.queued, s.sent);
}

#[test]
fn a_send_racing_a_shutdown_is_sent_or_counted_as_dropped() {
    let sender = Sender::builder("unused")
        .socket(Discard)
        .queue_capacity(1024)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (sender, stop) = (sender.clone(), stop.clone());
        thread::spawn(move || {
            let mut attempted = 0u64;
            while !stop.load(Ordering::Relaxed) {
                sender.send("race", attempted);
                attempted += 1;
            }
            attempted
        })
    };
    assert!(wait_until(Duration::from_secs(10), || sender.stats().sent > 10_000));
    sender.shutdown(Duration::from_secs(5)).unwrap();
    stop.store(true, Ordering::Relaxed);
    let attempted = producer.join().unwrap();
    let s = sender.stats();
    assert_eq!(s.sent + s.failed + s.dropped, attempted, "{s:?}");
}
