//! Points sent through a `Sender` arrive in a real carbon-cache with the right names, values
//! and timestamps, over TCP and UDP, with and without tags.

mod support;

use std::time::Duration;

use graphyte::{Sender, Transport};
use support::{Carbon, recent_second, unix_now};

fn tcp(carbon: &Carbon) -> graphyte::Builder {
    Sender::builder("127.0.0.1")
        .port(carbon.line_port)
        .interval(Duration::from_millis(100))
}

#[test]
fn tcp_points_arrive_with_their_names_values_and_timestamps() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let sender = tcp(&carbon).prefix("rt").build().unwrap();
    sender.send_at("tcp.int", 42, t0);
    sender.send_at("tcp.int", -7, t0 + 1);
    sender.send_at("tcp.float", 0.125, t0);
    sender.send_at("tcp.big", 1e20, t0);
    sender.flush().unwrap();

    assert_eq!(
        carbon.wait_for("rt.tcp.int", 2),
        [(t0, 42.0), (t0 + 1, -7.0)]
    );
    assert_eq!(carbon.wait_for("rt.tcp.float", 1), [(t0, 0.125)]);
    assert_eq!(carbon.wait_for("rt.tcp.big", 1), [(t0, 1e20)]);
}

#[test]
fn points_without_a_timestamp_are_stamped_with_the_current_second() {
    let carbon = Carbon::start();
    let sender = tcp(&carbon).build().unwrap();
    let before = unix_now();
    sender.send("rt.now", 1);
    sender.flush().unwrap();
    let points = carbon.wait_for("rt.now", 1);
    assert!((before..=unix_now()).contains(&points[0].0), "{points:?}");
}

#[test]
fn udp_points_arrive_with_their_names_values_and_timestamps() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let sender = Sender::builder("127.0.0.1")
        .port(carbon.udp_port)
        .transport(Transport::Udp)
        .interval(Duration::from_millis(100))
        .build()
        .unwrap();
    for i in 0..50 {
        sender.send_at("rt.udp.series", i, t0 + i as u32);
    }
    sender.flush().unwrap();
    let points = carbon.wait_for("rt.udp.series", 50);
    let expected: Vec<(u32, f64)> = (0..50).map(|i| (t0 + i, f64::from(i))).collect();
    assert_eq!(points, expected);
}

#[test]
fn tagged_points_arrive_under_carbons_normalized_series_name() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let sender = tcp(&carbon).tag("env", "test").build().unwrap();
    sender.send_metric(
        graphyte::Metric::new("rt.tagged", 5)
            .timestamp(t0)
            .tags(&[("zone", "b"), ("host", "web1")]),
    );
    sender.flush().unwrap();
    assert_eq!(
        carbon.wait_for("rt.tagged;env=test;host=web1;zone=b", 1),
        [(t0, 5.0)]
    );
}

#[test]
fn call_tags_override_default_tags_in_carbon() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let sender = tcp(&carbon).tag("env", "test").build().unwrap();
    sender.send_metric(
        graphyte::Metric::new("rt.override", 3)
            .timestamp(t0)
            .tags(&[("env", "prod")]),
    );
    sender.flush().unwrap();
    assert_eq!(carbon.wait_for("rt.override;env=prod", 1), [(t0, 3.0)]);
}

#[test]
fn tagged_points_arrive_over_udp() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let sender = Sender::builder("127.0.0.1")
        .port(carbon.udp_port)
        .transport(Transport::Udp)
        .synchronous()
        .build()
        .unwrap();
    sender
        .try_send(
            graphyte::Metric::new("rt.udp.tagged", 9)
                .timestamp(t0)
                .tags(&[("k", "v")]),
        )
        .unwrap();
    assert_eq!(carbon.wait_for("rt.udp.tagged;k=v", 1), [(t0, 9.0)]);
}

#[test]
fn synchronous_mode_writes_before_returning() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let sender = tcp(&carbon).synchronous().build().unwrap();
    sender
        .try_send(graphyte::Metric::new("rt.sync", 77).timestamp(t0))
        .unwrap();
    assert_eq!(sender.stats().sent, 1);
    assert_eq!(carbon.wait_for("rt.sync", 1), [(t0, 77.0)]);
}

#[test]
fn a_thousand_metrics_in_one_burst_all_arrive() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let sender = tcp(&carbon).batch_size(100).build().unwrap();
    for i in 0..1000 {
        sender.send_at(format!("rt.burst.m{i}"), i, t0);
    }
    sender.shutdown(Duration::from_secs(5)).unwrap();
    let stats = sender.stats();
    assert_eq!((stats.sent, stats.dropped, stats.failed), (1000, 0, 0));
    for i in [0, 499, 999] {
        assert_eq!(
            carbon.wait_for(&format!("rt.burst.m{i}"), 1),
            [(t0, f64::from(i))]
        );
    }
}

#[test]
fn the_longest_names_graphyte_accepts_untagged_are_stored_on_disk_by_carbon() {
    let t0 = recent_second();
    let carbon = Carbon::start();
    let sender = tcp(&carbon).build().unwrap();
    let longest_last = format!("rt.{}", "l".repeat(graphyte::MAX_LAST_SEGMENT_LEN));
    let longest_directory = format!("{}.d", "r".repeat(graphyte::MAX_SEGMENT_LEN));
    for name in [&longest_last, &longest_directory] {
        sender
            .try_send(graphyte::Metric::new(name, 1).timestamp(t0))
            .unwrap();
    }
    let tagged_long = format!("rt.{}", "t".repeat(600));
    sender
        .try_send(
            graphyte::Metric::new(&tagged_long, 2)
                .timestamp(t0)
                .tags(&[("k", "v")]),
        )
        .unwrap();
    sender.flush().unwrap();
    let on_disk = |name: &str| {
        let mut points = Vec::new();
        support::wait_until(Duration::from_secs(15), || {
            points = carbon.stored(name);
            !points.is_empty()
        });
        points
    };
    assert_eq!(on_disk(&longest_last), [(t0, 1.0)], "{}", carbon.log());
    assert_eq!(on_disk(&longest_directory), [(t0, 1.0)], "{}", carbon.log());
    assert_eq!(
        on_disk(&format!("{tagged_long};k=v")),
        [(t0, 2.0)],
        "{}",
        carbon.log()
    );
}

#[test]
fn carbon_files_a_name_with_a_slash_under_another_name_so_graphyte_refuses_it() {
    use std::io::Write;
    let t0 = recent_second();
    let carbon = Carbon::start();
    // Written by hand: graphyte itself will not write it.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", carbon.line_port)).unwrap();
    writeln!(raw, "rt/slash.x 7 {t0}").unwrap();
    drop(raw);
    let mut stored = Vec::new();
    support::wait_until(Duration::from_secs(15), || {
        stored = carbon.stored("rt.slash.x");
        !stored.is_empty()
    });
    assert_eq!(
        stored,
        [(t0, 7.0)],
        "stored as rt.slash.x: {}",
        carbon.log()
    );
    let sender = tcp(&carbon).build().unwrap();
    let refused = sender.try_send(graphyte::Metric::new("rt/slash.x", 7).timestamp(t0));
    assert!(matches!(refused, Err(graphyte::Error::InvalidName { .. })));
}
