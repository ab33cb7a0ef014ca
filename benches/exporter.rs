//! What an update through a registered `metrics` handle costs the recording thread:
//! graphyte's recorder next to metrics-exporter-prometheus's, in the same run.
//!
//! `cargo bench --features metrics --bench exporter`. After the criterion groups, a table
//! of both, from a timing loop of its own (the median of several runs, the two recorders
//! taking turns), with their ratio.

mod support;

use std::any::Any;
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::Criterion;
use graphyte::Sender;
use graphyte::exporter::GraphiteExporter;
use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram, with_local_recorder};
use metrics_exporter_prometheus::PrometheusBuilder;
use support::Discard;

/// Updates are timed in chunks; between chunks, untimed, the recorder ends its interval
/// (graphyte flushes, Prometheus runs its upkeep, which drains histograms), so that
/// histogram samples do not pile up beyond what an interval holds.
const CHUNK: u64 = 10_000;

/// One recorder's handles, and how to end an interval.
struct Subject {
    name: &'static str,
    counter: Counter,
    gauge: Gauge,
    histogram: Histogram,
    end_interval: Box<dyn Fn()>,
    /// What must live as long as the handles are used.
    _keep: Box<dyn Any>,
}

fn graphyte() -> Subject {
    let sender = Sender::builder("unused")
        .socket(Discard)
        .synchronous()
        .build()
        .unwrap();
    let (recorder, exporter) = GraphiteExporter::builder(sender)
        .flush_thread(false)
        .build()
        .unwrap();
    let (counter, gauge, histogram) = with_local_recorder(&recorder, || {
        (
            counter!("bench.counter"),
            gauge!("bench.gauge"),
            histogram!("bench.histogram"),
        )
    });
    Subject {
        name: "graphyte",
        counter,
        gauge,
        histogram,
        end_interval: Box::new(move || {
            exporter.flush_at(1_700_000_000).unwrap();
        }),
        _keep: Box::new(recorder),
    }
}

fn prometheus() -> Subject {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let (counter, gauge, histogram) = with_local_recorder(&recorder, || {
        (
            counter!("bench.counter"),
            gauge!("bench.gauge"),
            histogram!("bench.histogram"),
        )
    });
    Subject {
        name: "prometheus",
        counter,
        gauge,
        histogram,
        end_interval: Box::new(move || handle.run_upkeep()),
        _keep: Box::new(recorder),
    }
}

/// An update made with the `i`-th value.
type Update = fn(&Subject, u64);

/// The updates measured, by name.
const UPDATES: [(&str, Update); 3] = [
    ("counter.increment(1)", |s, _| s.counter.increment(1)),
    ("gauge.set(x)", |s, i| s.gauge.set(i as f64)),
    ("histogram.record(x)", |s, i| {
        s.histogram.record((i % 1000) as f64)
    }),
];

/// Times `iters` updates, in chunks, ending an interval after each chunk (untimed).
fn time_updates(subject: &Subject, iters: u64, update: Update) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = CHUNK.min(iters - done);
        let start = Instant::now();
        for i in done..done + n {
            update(black_box(subject), i);
        }
        total += start.elapsed();
        (subject.end_interval)();
        done += n;
    }
    total
}

fn criterion_groups(c: &mut Criterion, subjects: &[Subject]) {
    for (name, update) in UPDATES {
        let mut group = c.benchmark_group(name);
        for subject in subjects {
            group.bench_function(subject.name, |b| {
                b.iter_custom(|iters| time_updates(subject, iters, update))
            });
        }
        group.finish();
    }
}

/// `threads` threads recording into one histogram at once, `per_thread` samples each;
/// returns the nanoseconds per sample on one thread (the slowest thread's).
fn time_contended(subject: &Subject, threads: usize, per_thread: u64) -> f64 {
    let barrier = Barrier::new(threads);
    let slowest = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let histogram = subject.histogram.clone();
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..per_thread {
                        histogram.record(((i + t as u64) % 1000) as f64);
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .max()
            .unwrap()
    });
    (subject.end_interval)();
    slowest.as_nanos() as f64 / per_thread as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `median (min–max)` of `values`.
fn spread(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2} ({min:.2}–{max:.2})", median(values.to_vec()))
}

/// The side-by-side table: the median of `runs` runs of `per_run` updates each, the two
/// recorders taking turns.
fn ratios(subjects: &[Subject], runs: usize, per_run: u64) {
    let [graphyte, prometheus] = subjects else {
        unreachable!()
    };
    println!();
    println!(
        "update through a registered handle, ns per call (median of {runs} runs of {per_run}, \
         taking turns, same process)"
    );
    println!(
        "{:<34} {:>22} {:>22} {:>22}",
        "", "graphyte", "prometheus", "graphyte/prometheus"
    );
    // Medians, with the spread over the runs; the ratio's spread is over each run's pair.
    let row = |name: &str, ours: Vec<f64>, theirs: Vec<f64>| {
        let each: Vec<f64> = ours.iter().zip(&theirs).map(|(o, t)| o / t).collect();
        println!(
            "{name:<34} {:>22} {:>22} {:>22}",
            spread(&ours),
            spread(&theirs),
            spread(&each)
        );
    };
    for (name, update) in UPDATES {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let ns = |s| time_updates(s, per_run, update).as_nanos() as f64 / per_run as f64;
            ours.push(ns(graphyte));
            theirs.push(ns(prometheus));
        }
        row(name, ours, theirs);
    }
    let threads = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4);
    let per_thread = (per_run / 10).max(1000);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let ns = |s| time_contended(s, threads, per_thread);
        ours.push(ns(graphyte));
        theirs.push(ns(prometheus));
    }
    row(
        &format!("histogram.record(x), {threads} threads"),
        ours,
        theirs,
    );
}

fn main() {
    let subjects = [graphyte(), prometheus()];
    let mut criterion = Criterion::default().configure_from_args();
    criterion_groups(&mut criterion, &subjects);
    criterion.final_summary();
    // `cargo bench` passes --bench; `cargo test --benches` runs this once, quickly.
    if std::env::args().any(|arg| arg == "--bench") {
        ratios(&subjects, 7, 1_000_000);
    } else {
        ratios(&subjects, 1, 10_000);
    }
}
