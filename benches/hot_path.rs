//! What a send costs the caller, and what the worker costs per line.

use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use graphyte::{SendSocket, Sender};

/// Discards everything: measures the client alone.
struct Discard;

impl SendSocket for Discard {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(black_box(buf).len())
    }
}

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

criterion_group!(benches, send);
criterion_main!(benches);
