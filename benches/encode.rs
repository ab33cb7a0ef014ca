//! Encoding one point, by protocol and kind of value (runs with `--features bench-internals`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use graphyte::Protocol;
use graphyte::bench_internals::FrameEncoder;

/// Points encoded before the frames are closed and dropped, as a batch would be.
const BATCH: u32 = 1000;

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (protocol, label) in [
        (Protocol::Plaintext, "plaintext"),
        (Protocol::Pickle, "pickle"),
    ] {
        let mut run = |kind: &str, tags: &[(&str, &str)], name: &'static str, value: f64| {
            let mut encoder = FrameEncoder::new(protocol, "app", tags);
            let mut n = 0u32;
            group.bench_function(format!("{label}_{kind}"), |b| {
                b.iter(|| {
                    if value.fract() == 0.0 {
                        encoder.encode(name, black_box(value as i64), 1_700_000_000);
                    } else {
                        encoder.encode(name, black_box(value), 1_700_000_000);
                    }
                    n += 1;
                    if n == BATCH {
                        n = 0;
                        black_box(encoder.finish());
                    }
                })
            });
        };
        run("int", &[], "requests.ok", 1_234_567.0);
        run("float", &[], "latency.p99", 0.123_456_789);
        run(
            "tagged",
            &[("env", "prod"), ("host", "web1")],
            "requests.ok",
            42.0,
        );
    }
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
