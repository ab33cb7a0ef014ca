//! Several destinations on one sender: carbon_ch places every series where carbon-c-relay
//! does, and failover moves to the next carbon-cache when one dies and back when it returns,
//! all with real carbon-caches.

mod support;

use std::thread;
use std::time::Duration;

use graphyte::{Error, Mode, Protocol, Sender};
use support::relay::{Relayed, fetch_each_since};
use support::{Carbon, recent_second, wait_until};

/// A destination list for `caches`, named a, b, ... as `scripts/carbon-relay` names them.
fn destinations(caches: &[&Carbon]) -> Vec<String> {
    caches
        .iter()
        .zip(["a", "b"])
        .map(|(cache, instance)| format!("127.0.0.1:{}={instance}", cache.line_port))
        .collect()
}

/// Which of `caches` holds a point since `since` for each of `names`: `Some(index)` when
/// exactly one does, `None` when none or both do. Read from both caches at once.
fn holders(caches: [&Carbon; 2], names: &[String], since: u32) -> Vec<Option<usize>> {
    let [a, b] = thread::scope(|s| {
        let in_b = s.spawn(|| fetch_each_since(caches[1], names, since));
        [
            fetch_each_since(caches[0], names, since),
            in_b.join().unwrap(),
        ]
    });
    a.iter()
        .zip(&b)
        .map(|(a, b)| match (a.is_empty(), b.is_empty()) {
            (false, true) => Some(0),
            (true, false) => Some(1),
            _ => None,
        })
        .collect()
}

/// Waits until every one of `names` is in exactly one of `caches` (or 60 s pass); returns
/// where each is.
fn wait_for_holders(caches: [&Carbon; 2], names: &[String], since: u32) -> Vec<Option<usize>> {
    let mut held = Vec::new();
    wait_until(Duration::from_secs(60), || {
        held = holders(caches, names, since);
        held.iter().all(Option::is_some)
    });
    held
}

fn sender_to(destinations: &[String], mode: Mode, queue: usize) -> Sender {
    Sender::builder("unused")
        .destinations(destinations, mode)
        .interval(Duration::from_millis(50))
        .backoff(Duration::from_millis(10), Duration::from_millis(200))
        .queue_capacity(queue)
        .build()
        .unwrap()
}

#[test]
fn carbon_ch_puts_every_series_on_the_cache_carbon_c_relay_puts_it_on() {
    const SERIES: usize = 10_000;
    let t0 = recent_second();
    let relayed = Relayed::start();
    let direct = [Carbon::start(), Carbon::start()];
    let names: Vec<String> = (0..SERIES).map(|i| format!("dest.ch.s{i:05}")).collect();

    let through_relay = Sender::builder("127.0.0.1")
        .port(relayed.relay.line_port)
        .interval(Duration::from_millis(50))
        .queue_capacity(2 * SERIES)
        .build()
        .unwrap();
    let spread = sender_to(
        &destinations(&[&direct[0], &direct[1]]),
        Mode::CarbonCh,
        2 * SERIES,
    );
    for (i, name) in names.iter().enumerate() {
        through_relay.send_at(name, i as f64, t0);
        spread.send_at(name, i as f64, t0);
    }
    through_relay.flush().unwrap();
    spread.flush().unwrap();
    for stats in [through_relay.stats(), spread.stats()] {
        assert_eq!((stats.sent, stats.failed), (SERIES as u64, 0), "{stats:?}");
    }

    let [relay_a, relay_b] = &relayed.caches;
    let by_relay = wait_for_holders([relay_a, relay_b], &names, t0);
    let directly = wait_for_holders([&direct[0], &direct[1]], &names, t0);
    let differ: Vec<_> = names
        .iter()
        .zip(by_relay.iter().zip(&directly))
        .filter(|(_, (relay, direct))| relay.is_none() || relay != direct)
        .map(|(name, (relay, direct))| format!("{name}: relay {relay:?}, direct {direct:?}"))
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {SERIES} series differ (None: in neither or both), e.g. {:?}\n{}",
        differ.len(),
        &differ[..differ.len().min(10)],
        relayed.log()
    );
    let on_a = directly.iter().filter(|h| **h == Some(0)).count();
    eprintln!(
        "both ways: {on_a} series on cache a, {} on b",
        SERIES - on_a
    );
    assert!((3_000..=7_000).contains(&on_a), "lopsided: {on_a} on a");
}

#[test]
fn failover_continues_into_the_second_cache_when_the_first_dies_mid_stream() {
    let t0 = recent_second();
    let caches = [Carbon::start(), Carbon::start()];
    let sender = sender_to(
        &destinations(&[&caches[0], &caches[1]]),
        Mode::Failover,
        10_000,
    );
    let before: Vec<String> = (0..200).map(|i| format!("dest.fo.before{i}")).collect();
    let after: Vec<String> = (0..200).map(|i| format!("dest.fo.after{i}")).collect();
    for name in &before {
        sender.send_at(name, 1, t0);
    }
    sender.flush().unwrap();
    let held = wait_for_holders([&caches[0], &caches[1]], &before, t0);
    assert!(held.iter().all(|h| *h == Some(0)), "before: {held:?}");

    caches[0].kill();
    for name in &after {
        sender.send_at(name, 2, t0);
    }
    sender.flush().unwrap();
    let points = wait_for(&caches[1], &after, t0);
    let missing: Vec<_> = after
        .iter()
        .zip(&points)
        .filter(|(_, p)| p.as_slice() != [(t0, 2.0)])
        .map(|(name, p)| format!("{name}: {p:?}"))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} later points not in the second cache, e.g. {:?}; {:?}",
        missing.len(),
        after.len(),
        &missing[..missing.len().min(5)],
        sender.stats()
    );
}

/// Waits until `carbon` holds a point since `since` for each of `names` (or 30 s pass); returns
/// them, name by name.
fn wait_for(carbon: &Carbon, names: &[String], since: u32) -> Vec<Vec<(u32, f64)>> {
    let mut points = Vec::new();
    wait_until(Duration::from_secs(30), || {
        points = fetch_each_since(carbon, names, since);
        points.iter().all(|p| !p.is_empty())
    });
    points
}

#[test]
fn failover_returns_to_the_first_cache_once_it_is_back() {
    let t0 = recent_second();
    let caches = [Carbon::start(), Carbon::start()];
    let sender = sender_to(
        &destinations(&[&caches[0], &caches[1]]),
        Mode::Failover,
        10_000,
    );
    caches[0].kill();
    let mut sent = Vec::new();
    let send = |name: &str, sent: &mut Vec<String>| {
        sender.send_at(name.to_owned(), 3, t0);
        sender.flush().unwrap();
        sent.push(name.to_owned());
    };
    send("dest.back.while_down", &mut sent);
    assert_eq!(
        wait_for(&caches[1], &sent, t0),
        [[(t0, 3.0)]],
        "not in the second"
    );

    caches[0].restart();
    // A point a round, until one lands in the first: the sender goes back at a batch after
    // its background check saw the first accept a connection.
    let mut round = 0;
    let back = wait_until(Duration::from_secs(30), || {
        round += 1;
        let name = format!("dest.back.round{round}");
        send(&name, &mut sent);
        !fetch_each_since(&caches[0], &[name], t0)[0].is_empty()
    });
    assert!(back, "no point reached the restarted first cache in 30 s");

    let later: Vec<String> = (0..100).map(|i| format!("dest.back.later{i}")).collect();
    for name in &later {
        sender.send_at(name, 3, t0);
    }
    sender.flush().unwrap();
    let held = wait_for_holders([&caches[0], &caches[1]], &later, t0);
    assert!(held.iter().all(|h| *h == Some(0)), "later: {held:?}");
    // Nothing lost on the way: every point of the switch-over is in one cache or both (the
    // sender may replay the last points written before a new connection).
    let mut missing = Vec::new();
    wait_until(Duration::from_secs(30), || {
        let [a, b] = [0, 1].map(|i| fetch_each_since(&caches[i], &sent, t0));
        missing = (0..sent.len())
            .filter(|&i| a[i].is_empty() && b[i].is_empty())
            .map(|i| sent[i].clone())
            .collect();
        missing.is_empty()
    });
    assert!(missing.is_empty(), "lost: {missing:?}");
}

#[test]
fn a_destination_list_that_cannot_be_used_is_a_configuration_error() {
    let build = |list: &[&str], mode| Sender::builder("unused").destinations(list, mode).build();
    for list in [
        &[][..],
        &["carbon"],
        &["carbon:"],
        &["carbon:http"],
        &["carbon:0"],
    ] {
        let err = build(list, Mode::Failover).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{list:?}: {err:?}");
    }
    let same_host = build(&["carbon:2003", "carbon:2103"], Mode::CarbonCh).unwrap_err();
    assert!(matches!(same_host, Error::Config(m) if m.contains("instance")));
    let pickle = Sender::builder("unused")
        .protocol(Protocol::Pickle)
        .destinations(&["a:2004=a", "b:2004=b"], Mode::CarbonCh)
        .build()
        .unwrap_err();
    assert!(matches!(pickle, Error::Config(m) if m.contains("pickle")));
    assert!(build(&["carbon:2003", "carbon:2103"], Mode::Failover).is_ok());
}
