//! The `metrics` exporter, driven through the `metrics` macros: the exact lines a sink
//! receives, interval by interval. Flushes are made with `flush_at` (no flush thread, no
//! sleeping), except where the flush thread itself is under test.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use graphyte::Sender;
use graphyte::exporter::{
    CounterMode, ExporterBuilder, GraphiteExporter, GraphiteRecorder, LabelMode,
};
use metrics::{counter, gauge, histogram, with_local_recorder};
use support::alloc::{Counting, allocations};
use support::{Capture, TcpSink, wait_until};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Interval ends: multiples of the default 10 s interval.
const T1: u64 = 1_700_000_010;
const T2: u64 = 1_700_000_020;
const T3: u64 = 1_700_000_030;

/// An exporter without a flush thread writing through a synchronous sender into a capture:
/// each flush's lines are in the capture when `flush_at` returns.
fn exporter(
    configure: impl FnOnce(ExporterBuilder) -> ExporterBuilder,
) -> (GraphiteRecorder, GraphiteExporter, Capture) {
    let capture = Capture::default();
    let builder = GraphiteExporter::builder(capture.synchronous_sender()).flush_thread(false);
    let (recorder, exporter) = configure(builder).build().unwrap();
    (recorder, exporter, capture)
}

/// Flushes the interval ending at `end`; returns the lines sent.
fn flush(exporter: &GraphiteExporter, capture: &Capture, end: u64) -> Vec<String> {
    let outcome = exporter.flush_at(end).unwrap();
    assert!(outcome.is_complete(), "{outcome:?}");
    support::lines_of(&capture.take())
}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// A line's parts: name (with tags), value, timestamp.
fn parts(line: &str) -> (&str, &str, u64) {
    let mut fields = line.split(' ');
    let (name, value, ts) = (fields.next(), fields.next(), fields.next());
    (name.unwrap(), value.unwrap(), ts.unwrap().parse().unwrap())
}

#[test]
fn delta_counters_send_each_intervals_increase_and_zero_when_idle() {
    let (recorder, exporter, capture) = exporter(|b| b);
    with_local_recorder(&recorder, || {
        counter!("jobs.done").increment(3);
        counter!("jobs.done").increment(2);
        counter!("jobs.failed").increment(1);
    });
    assert_eq!(
        flush(&exporter, &capture, T1),
        ["jobs.done 5 1700000010", "jobs.failed 1 1700000010"]
    );
    with_local_recorder(&recorder, || counter!("jobs.done").increment(4));
    assert_eq!(
        flush(&exporter, &capture, T2),
        ["jobs.done 4 1700000020", "jobs.failed 0 1700000020"]
    );
}

#[test]
fn running_total_counters_send_the_total_so_far() {
    let (recorder, exporter, capture) = exporter(|b| b.counter_mode(CounterMode::Total));
    with_local_recorder(&recorder, || {
        counter!("jobs.done").increment(3);
        counter!("jobs.done").increment(2);
        counter!("jobs.failed").increment(1);
    });
    assert_eq!(
        flush(&exporter, &capture, T1),
        ["jobs.done 5 1700000010", "jobs.failed 1 1700000010"]
    );
    with_local_recorder(&recorder, || {
        counter!("jobs.done").increment(4);
        // Absolute raises the total, never lowers it.
        counter!("jobs.failed").absolute(0);
    });
    assert_eq!(
        flush(&exporter, &capture, T2),
        ["jobs.done 9 1700000020", "jobs.failed 1 1700000020"]
    );
}

#[test]
fn gauges_keep_their_last_value_with_increments_and_decrements_applied_below_zero() {
    let (recorder, exporter, capture) = exporter(|b| b);
    with_local_recorder(&recorder, || {
        gauge!("queue.depth").set(3.0);
        gauge!("queue.depth").increment(2.5);
        gauge!("queue.depth").decrement(10);
        gauge!("temperature").set(-12.25);
    });
    assert_eq!(
        flush(&exporter, &capture, T1),
        [
            "queue.depth -4.5 1700000010",
            "temperature -12.25 1700000010"
        ]
    );
    with_local_recorder(&recorder, || gauge!("queue.depth").increment(1));
    assert_eq!(
        flush(&exporter, &capture, T2),
        [
            "queue.depth -3.5 1700000020",
            "temperature -12.25 1700000020"
        ]
    );
}

#[test]
fn histogram_statistics_and_percentiles_come_from_one_interval_only() {
    let (recorder, exporter, capture) = exporter(|b| b);
    with_local_recorder(&recorder, || {
        for ms in 1..=100 {
            histogram!("latency.ms").record(ms);
        }
    });
    assert_eq!(
        flush(&exporter, &capture, T1),
        [
            "latency.ms.count 100 1700000010",
            "latency.ms.sum 5050 1700000010",
            "latency.ms.min 1 1700000010",
            "latency.ms.max 100 1700000010",
            "latency.ms.mean 50.5 1700000010",
            "latency.ms.p50 50 1700000010",
            "latency.ms.p90 90 1700000010",
            "latency.ms.p99 99 1700000010",
        ]
    );
    // The first interval's hundred samples play no part in the second's statistics.
    with_local_recorder(&recorder, || {
        for ms in [3000, 1000, 2000] {
            histogram!("latency.ms").record(ms);
        }
    });
    assert_eq!(
        flush(&exporter, &capture, T2),
        [
            "latency.ms.count 3 1700000020",
            "latency.ms.sum 6000 1700000020",
            "latency.ms.min 1000 1700000020",
            "latency.ms.max 3000 1700000020",
            "latency.ms.mean 2000 1700000020",
            "latency.ms.p50 2000 1700000020",
            "latency.ms.p90 3000 1700000020",
            "latency.ms.p99 3000 1700000020",
        ]
    );
}

#[test]
fn an_idle_histogram_sends_only_a_zero_count() {
    let (recorder, exporter, capture) = exporter(|b| b.percentiles(&[0.999]));
    with_local_recorder(&recorder, || histogram!("size").record(-2.5));
    assert_eq!(
        flush(&exporter, &capture, T1),
        [
            "size.count 1 1700000010",
            "size.sum -2.5 1700000010",
            "size.min -2.5 1700000010",
            "size.max -2.5 1700000010",
            "size.mean -2.5 1700000010",
            "size.p999 -2.5 1700000010",
        ]
    );
    assert_eq!(flush(&exporter, &capture, T2), ["size.count 0 1700000020"]);
}

#[test]
fn labels_become_graphite_tags_cleaned_where_the_tag_rules_refuse_them() {
    let (recorder, exporter, capture) = exporter(|b| b);
    with_local_recorder(&recorder, || {
        counter!("requests", "route" => "/login", "method" => "GET").increment(1);
        // The same labels in another order: the same series.
        counter!("requests", "method" => "GET", "route" => "/login").increment(1);
        counter!("requests", "method" => "POST", "route" => "/a b;c").increment(5);
        gauge!("pool.size", "name" => "db").set(4);
    });
    assert_eq!(
        flush(&exporter, &capture, T1),
        [
            "requests;method=GET;route=/login 2 1700000010",
            "requests;method=POST;route=_a_b_c 5 1700000010",
            "pool.size;name_=db 4 1700000010",
        ]
    );
    with_local_recorder(&recorder, || {
        counter!("requests", "method" => "POST", "route" => "/a b;c").increment(1);
    });
    assert_eq!(
        flush(&exporter, &capture, T2),
        [
            "requests;method=GET;route=/login 0 1700000020",
            "requests;method=POST;route=_a_b_c 1 1700000020",
            "pool.size;name_=db 4 1700000020",
        ]
    );
}

#[test]
fn labels_fold_into_the_path_as_values_sorted_by_key() {
    let (recorder, exporter, capture) =
        exporter(|b| b.label_mode(LabelMode::Path).percentiles(&[0.5]));
    with_local_recorder(&recorder, || {
        counter!("requests", "status" => "200", "method" => "GET").increment(2);
        histogram!("latency", "host" => "web1.example.com").record(5);
    });
    assert_eq!(
        flush(&exporter, &capture, T1),
        [
            "requests.GET.200 2 1700000010",
            "latency.web1_example_com.count 1 1700000010",
            "latency.web1_example_com.sum 5 1700000010",
            "latency.web1_example_com.min 5 1700000010",
            "latency.web1_example_com.max 5 1700000010",
            "latency.web1_example_com.mean 5 1700000010",
            "latency.web1_example_com.p50 5 1700000010",
        ]
    );
    with_local_recorder(&recorder, || {
        counter!("requests", "method" => "GET", "status" => "200").increment(1);
    });
    assert_eq!(
        flush(&exporter, &capture, T2),
        [
            "requests.GET.200 1 1700000020",
            "latency.web1_example_com.count 0 1700000020",
        ]
    );
}

#[test]
fn a_name_carbon_would_reject_is_cleaned_into_a_valid_path() {
    let (recorder, exporter, capture) = exporter(|b| b);
    with_local_recorder(&recorder, || {
        counter!("http requests/total..x").increment(1);
        gauge!("~tmp;a=b").set(1);
        gauge!("").set(2);
        counter!("Zürich.{\"a\"}").increment(3);
    });
    let lines = flush(&exporter, &capture, T1);
    assert_eq!(
        lines,
        [
            "http_requests_total._.x 1 1700000010",
            "Z_rich.__a__ 3 1700000010",
            "_tmp_a_b 1 1700000010",
            "_ 2 1700000010",
        ]
    );
    for line in &lines {
        graphyte::parse_line(line.as_bytes()).unwrap();
    }
    assert_eq!(exporter.sender().stats().refused, 0);
}

#[test]
fn the_exporters_prefix_comes_after_the_senders() {
    let capture = Capture::default();
    let sender = Sender::builder("unused")
        .synchronous()
        .socket(capture.clone())
        .prefix("web1")
        .build()
        .unwrap();
    let (recorder, exporter) = GraphiteExporter::builder(sender)
        .prefix("metrics")
        .flush_thread(false)
        .build()
        .unwrap();
    with_local_recorder(&recorder, || counter!("jobs").increment(1));
    assert_eq!(
        flush(&exporter, &capture, T1),
        ["web1.metrics.jobs 1 1700000010"]
    );
}

#[test]
fn the_flush_thread_stamps_each_interval_with_its_end_aligned_to_the_interval() {
    const INTERVAL: u64 = 2;
    let capture = Capture::default();
    let (recorder, exporter) = GraphiteExporter::builder(capture.synchronous_sender())
        .interval(Duration::from_secs(INTERVAL))
        .build()
        .unwrap();
    let before = unix_now();
    with_local_recorder(&recorder, || counter!("ticks").increment(1));
    let registered = unix_now();
    assert!(wait_until(Duration::from_secs(10), || !capture.is_empty()));
    with_local_recorder(&recorder, || counter!("ticks").increment(2));
    // Another flush may pass before the increment lands: read until it is in.
    assert!(wait_until(Duration::from_secs(10), || {
        capture.lines().iter().any(|line| parts(line).1 == "2")
    }));
    let received = unix_now();
    let lines = capture.lines();
    drop(exporter);
    let points: Vec<(&str, &str, u64)> = lines.iter().map(|line| parts(line)).collect();
    let first = points[0].2;
    // The first line ends the interval the counter was registered in.
    assert_eq!(first % INTERVAL, 0, "{lines:?}");
    assert!(Duration::from_secs(first + 1) > before, "{lines:?}");
    assert!(Duration::from_secs(first) <= registered + Duration::from_secs(INTERVAL));
    let mut total = 0;
    for (i, &(name, value, ts)) in points.iter().enumerate() {
        assert_eq!(name, "ticks");
        // One flush per interval, each stamped with the next boundary: no drift, no gap.
        assert_eq!(ts, first + INTERVAL * i as u64, "{lines:?}");
        total += value.parse::<u64>().unwrap();
    }
    assert_eq!(total, 3, "{lines:?}");
    // Sent once its interval had ended: stamped no later than it arrived.
    assert!(Duration::from_secs(points.last().unwrap().2) <= received);
}

#[test]
fn the_last_interval_is_sent_when_the_exporter_shuts_down() {
    let (recorder, exporter, capture) = exporter(|b| b.percentiles(&[]));
    with_local_recorder(&recorder, || {
        counter!("jobs").increment(7);
        histogram!("rows").record(12);
    });
    let before = unix_now();
    exporter.shutdown().unwrap();
    let after = unix_now();
    let lines = capture.lines();
    let end = parts(&lines[0]).2;
    // Stamped with the end of the interval under way: a boundary, up to 10 s ahead.
    assert_eq!(end % 10, 0);
    assert!(
        Duration::from_secs(end) >= before
            && Duration::from_secs(end) <= after + Duration::from_secs(10)
    );
    assert_eq!(
        lines,
        [
            format!("jobs 7 {end}"),
            format!("rows.count 1 {end}"),
            format!("rows.sum 12 {end}"),
            format!("rows.min 12 {end}"),
            format!("rows.max 12 {end}"),
            format!("rows.mean 12 {end}"),
        ]
    );
}

#[test]
fn an_update_through_a_handle_allocates_nothing() {
    let (recorder, exporter, _capture) = exporter(|b| b);
    let (requests, depth, latency) = with_local_recorder(&recorder, || {
        (counter!("requests"), gauge!("depth"), histogram!("latency"))
    });
    let updates = |n: u32| {
        for i in 0..n {
            requests.increment(1);
            requests.absolute(u64::from(i));
            depth.set(i);
            depth.increment(1.5);
            depth.decrement(2);
            latency.record(i);
        }
    };
    // The histogram's buffer grows in the first interval, and keeps its size after.
    updates(10_000);
    exporter.flush_at(T1).unwrap();
    assert_eq!(allocations(|| updates(10_000)), 0);
    exporter.flush_at(T2).unwrap();
    assert_eq!(allocations(|| updates(5_000)), 0);
}

#[test]
fn a_macro_call_with_a_registered_static_key_allocates_nothing() {
    let (recorder, exporter, _capture) = exporter(|b| b);
    with_local_recorder(&recorder, || {
        let calls = |n: u32| {
            for i in 0..n {
                counter!("requests", "route" => "/").increment(1);
                gauge!("depth").set(i);
                histogram!("latency").record(i);
            }
        };
        calls(1000);
        // The histogram's buffer grew in the first interval, and keeps its size after.
        exporter.flush_at(T1).unwrap();
        assert_eq!(allocations(|| calls(1000)), 0);
    });
}

#[test]
fn installing_a_second_global_recorder_fails_clearly() {
    let capture = Capture::default();
    let exporter = GraphiteExporter::builder(capture.synchronous_sender())
        .flush_thread(false)
        .install()
        .unwrap();
    let second = GraphiteExporter::builder(Capture::default().synchronous_sender())
        .flush_thread(false)
        .install();
    match second {
        Err(graphyte::Error::Config(problem)) => {
            assert!(problem.contains("installed already"), "{problem}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    // The first one is in place, and works.
    counter!("installed").increment(1);
    assert_eq!(flush(&exporter, &capture, T1), ["installed 1 1700000010"]);
}

#[test]
fn lines_reach_a_tcp_server_interval_by_interval() {
    let sink = TcpSink::start();
    let (recorder, exporter) =
        GraphiteExporter::builder(Sender::builder("127.0.0.1").port(sink.port))
            .flush_thread(false)
            .percentiles(&[0.5])
            .build()
            .unwrap();
    with_local_recorder(&recorder, || {
        counter!("requests", "route" => "/").increment(2);
        histogram!("latency").record(0.25);
    });
    exporter.flush_at(T1).unwrap();
    with_local_recorder(&recorder, || gauge!("depth").set(-1));
    exporter.flush_at(T2).unwrap();
    exporter.flush_at(T3).unwrap();
    exporter.sender().flush().unwrap();
    assert_eq!(
        sink.wait_for_lines(13),
        [
            "requests;route=/ 2 1700000010",
            "latency.count 1 1700000010",
            "latency.sum 0.25 1700000010",
            "latency.min 0.25 1700000010",
            "latency.max 0.25 1700000010",
            "latency.mean 0.25 1700000010",
            "latency.p50 0.25 1700000010",
            "requests;route=/ 0 1700000020",
            "depth -1 1700000020",
            "latency.count 0 1700000020",
            "requests;route=/ 0 1700000030",
            "depth -1 1700000030",
            "latency.count 0 1700000030",
        ][..]
    );
}
