//! What a send costs the caller: in bursts, and one at a time with the worker idle.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use graphyte::Sender;
use support::Discard;

/// Sends are timed in chunks that fit the queue; the queue is emptied between chunks, untimed,
/// so every timed send takes the normal path (never the queue-full one).
const CHUNK: u64 = graphyte::DEFAULT_QUEUE_CAPACITY as u64;

fn queued_sender() -> Sender {
    Sender::builder("unused")
        .socket(Discard)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap()
}

fn time_sends(sender: &Sender, iters: u64, mut send: impl FnMut(&Sender, u64)) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = CHUNK.min(iters - done);
        let start = Instant::now();
        for i in 0..n {
            send(sender, i);
        }
        total += start.elapsed();
        sender.flush().unwrap();
        done += n;
    }
    assert_eq!(sender.stats().dropped, 0);
    total
}

fn send(c: &mut Criterion) {
    let mut group = c.benchmark_group("send");
    let sender = queued_sender();
    group.bench_function("static_name", |b| {
        b.iter_custom(|iters| time_sends(&sender, iters, |s, i| s.send("app.requests.ok", i)))
    });
    let names: Vec<String> = (0..1000).map(|i| format!("app.host{i}.cpu.user")).collect();
    group.bench_function("dynamic_name", |b| {
        b.iter_custom(|iters| {
            // Cloning the String is the caller's own cost; it is part of what they pay.
            time_sends(&sender, iters, |s, i| {
                s.send(names[i as usize % 1000].clone(), i)
            })
        })
    });
    group.finish();
}

/// Metrics per batch: what a caller reporting a set of stats at once might send.
const BATCH: u64 = 100;

/// The same 100 metrics sent one by one and as one batch; criterion reports the time per
/// metric.
fn batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(BATCH));
    let sender = queued_sender();
    let items: Vec<(&'static str, u64)> = (0..BATCH).map(|i| ("app.requests.ok", i)).collect();
    let time_batches = |iters: u64, send: &dyn Fn(&Sender)| {
        let per_chunk = CHUNK / BATCH;
        let mut total = Duration::ZERO;
        let mut done = 0;
        while done < iters {
            let n = per_chunk.min(iters - done);
            let start = Instant::now();
            for _ in 0..n {
                send(&sender);
            }
            total += start.elapsed();
            sender.flush().unwrap();
            done += n;
        }
        assert_eq!(sender.stats().dropped, 0);
        total
    };
    group.bench_function("single_sends", |b| {
        b.iter_custom(|iters| {
            time_batches(iters, &|s| {
                for &(name, value) in &items {
                    s.send(name, value);
                }
            })
        })
    });
    group.bench_function("send_batch", |b| {
        b.iter_custom(|iters| {
            time_batches(iters, &|s| {
                black_box(s.send_batch(items.iter().copied()));
            })
        })
    });
    group.finish();
}

/// Lines per batch in the `lines` group: about what `graphyte send -` checks per read.
const LINES: usize = 4096;

/// Forwarding formatted lines ([`graphyte::LineBatch`]): checking and keeping each line,
/// per line (`push`), for plain lines (the fast path) and tagged ones (parsed in full); and
/// a whole chunk of plain lines at once (`push_lines`, what `graphyte send -` does per read:
/// checked where they lie, 64 bytes at a time on x86_64). Then handing the batch to a
/// synchronous sender that discards it.
fn lines(c: &mut Criterion) {
    let mut group = c.benchmark_group("lines");
    group.throughput(Throughput::Elements(LINES as u64));
    let sender = Sender::builder("unused")
        .socket(Discard)
        .synchronous()
        .build()
        .unwrap();
    let text = |tags: &str| -> Vec<Vec<u8>> {
        (0..LINES)
            .map(|i| {
                format!(
                    "app.server{}.requests.count{tags} {} 1700000000",
                    i % 100,
                    i % 1000
                )
                .into_bytes()
            })
            .collect()
    };
    for (name, lines) in [
        ("push_plain", text("")),
        ("push_tagged", text(";dc=eu;host=web1")),
    ] {
        group.bench_function(name, |b| {
            let mut batch = sender.line_batch();
            b.iter(|| {
                for line in &lines {
                    black_box(batch.push(line)).unwrap();
                }
                batch.send();
            })
        });
    }
    let mut chunk = text("").join(&b'\n');
    chunk.push(b'\n');
    group.bench_function("push_lines_plain", |b| {
        let mut batch = sender.line_batch();
        b.iter(|| {
            let seen = batch.push_lines(black_box(&chunk), |_, _, _| true);
            assert_eq!((seen, batch.len()), (LINES, LINES));
            batch.send();
        })
    });
    group.finish();
}

/// Pause between sporadic sends: long enough for a worker that blocked on the queue to have
/// gone to sleep, so a send that had to wake it would pay for that here.
const PAUSE: Duration = Duration::from_micros(100);

fn spin(pause: Duration) {
    let start = Instant::now();
    while start.elapsed() < pause {
        std::hint::spin_loop();
    }
}

/// One send every 100 µs, each timed on its own (so the timer's own cost is included:
/// `sporadic/timer_only` measures it, to subtract; `static_name_no_pause` is the same timing
/// without the pause).
fn sporadic(c: &mut Criterion) {
    let mut group = c.benchmark_group("sporadic");
    group.sample_size(20);
    let sender = queued_sender();
    for (name, pause) in [
        ("static_name", PAUSE),
        ("static_name_no_pause", Duration::ZERO),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    spin(pause);
                    let start = Instant::now();
                    sender.send("app.requests.ok", i);
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.bench_function("timer_only", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                spin(PAUSE);
                let start = Instant::now();
                black_box(i);
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, send, batch, lines, sporadic);
criterion_main!(benches);
