//! Formatting one line, by kind of value (runs with `--features bench-internals`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use graphyte::bench_internals::LineEncoder;

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let plain = LineEncoder::new("app", &[]);
    let tagged = LineEncoder::new("app", &[("env", "prod"), ("host", "web1")]);
    let mut out = Vec::with_capacity(256);
    group.bench_function("int", |b| {
        b.iter(|| {
            out.clear();
            plain.encode(
                "requests.ok",
                black_box(1_234_567i64),
                1_700_000_000,
                &mut out,
            );
        })
    });
    group.bench_function("float", |b| {
        b.iter(|| {
            out.clear();
            plain.encode(
                "latency.p99",
                black_box(0.123_456_789f64),
                1_700_000_000,
                &mut out,
            );
        })
    });
    group.bench_function("tagged", |b| {
        b.iter(|| {
            out.clear();
            tagged.encode("requests.ok", black_box(42i64), 1_700_000_000, &mut out);
        })
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
