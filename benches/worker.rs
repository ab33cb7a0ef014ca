//! What the worker costs per point: take points off the queue, encode them (plaintext lines or
//! pickle frames), write batches to a socket that discards them.

mod support;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use graphyte::{Protocol, Sender};
use support::Discard;

/// Points queued before each timed drain; under the worker's wake-up threshold, so it does not
/// start before it is asked to.
const QUEUED: u64 = 30_000;

fn drain_and_write(c: &mut Criterion) {
    let mut group = c.benchmark_group("worker");
    group.throughput(Throughput::Elements(1));
    for (protocol, label) in [(Protocol::Plaintext, ""), (Protocol::Pickle, "pickle_")] {
        let sender = Sender::builder("unused")
            .socket(Discard)
            .protocol(protocol)
            .prefix("bench")
            .queue_capacity(65_536)
            .batch_size(65_536)
            .interval(Duration::from_secs(3600))
            .build()
            .unwrap();
        let mut run = |name: &str, send: &dyn Fn(&Sender, u64)| {
            group.bench_function(format!("{label}{name}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        let n = QUEUED.min(iters - done);
                        (0..n).for_each(|i| send(&sender, i));
                        let start = Instant::now();
                        sender.flush().unwrap();
                        total += start.elapsed();
                        done += n;
                    }
                    total
                })
            });
        };
        run("int_lines", &|s, i| s.send("app.requests.ok", i));
        run("float_lines", &|s, i| {
            s.send("app.latency", i as f64 * 0.001)
        });
        run("tagged_lines", &|s, i| {
            s.send_tagged("app.requests", i, &[("host", "web1")])
        });
    }
    group.finish();
}

criterion_group!(benches, drain_and_write);
criterion_main!(benches);
