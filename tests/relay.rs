//! Scale-out: points sent through a `Sender` to a real carbon-c-relay arrive, whole, in the two
//! real carbon-caches behind it, each series in exactly one of them (consistent hashing).

mod support;

use std::time::{Duration, Instant};

use graphyte::Sender;
use support::recent_second;
use support::relay::Relayed;

const SERIES: usize = 10_000;

#[test]
fn ten_thousand_series_sent_through_carbon_c_relay_arrive_complete_split_across_both_caches() {
    let began = Instant::now();
    let t0 = recent_second();
    let relayed = Relayed::start();
    let started = began.elapsed();

    // Distinct values too (negative, fractional), so a series holding another's point shows.
    let names: Vec<String> = (0..SERIES)
        .map(|i| format!("relay.split.s{i:05}"))
        .collect();
    let value = |i: usize| i as f64 * 1.5 - 2500.25;
    let sender = Sender::builder("127.0.0.1")
        .port(relayed.relay.line_port)
        .interval(Duration::from_millis(100))
        .queue_capacity(2 * SERIES)
        .build()
        .unwrap();
    for (i, name) in names.iter().enumerate() {
        sender.send_at(name, value(i), t0);
    }
    sender.flush().unwrap();
    let stats = sender.stats();
    assert_eq!(
        (stats.sent, stats.dropped, stats.refused, stats.failed),
        (SERIES as u64, 0, 0, 0),
        "{stats:?}"
    );
    let sent = began.elapsed();

    // Carbon has a point in its cache within milliseconds and on disk about a second later;
    // the readers look at both.
    let held = relayed.wait_for_each(&names, 1, t0, Duration::from_secs(40));
    let arrived = began.elapsed();

    // One more read of all 10,000 series in both caches, timed: the readers stay batched.
    // (Only timed: while carbon's writer is still creating files, a point it has taken from
    // its cache and not yet written is briefly in neither place, and the poll above waited
    // for a read with every point in it.)
    let reread = Instant::now();
    relayed.fetch_each(&names, t0);
    let read_time = reread.elapsed();
    eprintln!(
        "caches and relay up in {started:.2?}, sent by {sent:.2?}, all arrived by {arrived:.2?}; \
         reading {SERIES} series from both caches took {read_time:.2?}"
    );

    let [in_a, in_b] = &held;
    let mut missing = Vec::new();
    let mut in_both = Vec::new();
    let mut wrong = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (a, b) = (&in_a[i], &in_b[i]);
        match (a.is_empty(), b.is_empty()) {
            (true, true) => missing.push(name.as_str()),
            (false, false) => in_both.push(format!("{name}: a {a:?}, b {b:?}")),
            _ => {
                let points = if a.is_empty() { b } else { a };
                if points.as_slice() != [(t0, value(i))] {
                    wrong.push(format!("{name}: {points:?}, want [({t0}, {})]", value(i)));
                }
            }
        }
    }
    let count_a = in_a.iter().filter(|p| !p.is_empty()).count();
    let count_b = in_b.iter().filter(|p| !p.is_empty()).count();
    eprintln!("split: cache a holds {count_a} series, cache b {count_b}");
    assert!(
        missing.is_empty() && in_both.is_empty() && wrong.is_empty(),
        "{} of {SERIES} series missing (e.g. {:?}), {} in both caches (e.g. {:?}), {} with \
         wrong points (e.g. {:?})\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        in_both.len(),
        &in_both[..in_both.len().min(5)],
        wrong.len(),
        &wrong[..wrong.len().min(5)],
        relayed.log()
    );
    assert_eq!(count_a + count_b, SERIES);
    assert!(
        count_a > 0 && count_b > 0,
        "one cache holds every series: a {count_a}, b {count_b}"
    );
    // Consistent hashing over two members splits these names 4,799/5,201 (the ring depends
    // on the names and the instance names only, not on the ports): far off that, the relay is
    // not hashing per series.
    assert!(
        (3_000..=7_000).contains(&count_a),
        "lopsided split: a {count_a}, b {count_b}"
    );

    assert!(
        read_time < Duration::from_secs(20),
        "reading {SERIES} series from both caches took {read_time:.2?}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "the whole test took {:.2?}",
        began.elapsed()
    );
}
