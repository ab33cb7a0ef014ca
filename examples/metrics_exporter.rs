//! Reports `metrics` counters, gauges and histograms to Carbon through graphyte's exporter:
//! a few seconds of simulated requests, then the exporter's shutdown sends the interval
//! under way.
//!
//! `GRAPHITE_HOST=carbon.example.com cargo run --example metrics_exporter --features metrics`
//! (GRAPHITE_PORT defaults to 2003). Carbon needs tags on (graphite-web's tag database) for
//! the labelled series; `.label_mode(LabelMode::Path)` folds labels into paths instead.

use std::time::{Duration, Instant};

use graphyte::Sender;
use graphyte::exporter::{CounterMode, GraphiteExporter};

fn main() -> Result<(), graphyte::Error> {
    // graphyte reports errors through the `log` crate: without a logger they are invisible.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();

    let host = std::env::var("GRAPHITE_HOST").unwrap_or_else(|_| "localhost".into());
    let port = match std::env::var("GRAPHITE_PORT") {
        Ok(port) => port.parse().expect("GRAPHITE_PORT is a port number"),
        Err(_) => graphyte::DEFAULT_PORT,
    };

    // Once, at start-up. Every 10 s (at :00, :10, :20, ...) the exporter sends what was
    // recorded during the interval, stamped with the interval's end.
    let exporter = GraphiteExporter::builder(Sender::builder(host).port(port).prefix("myapp"))
        .interval(Duration::from_secs(10))
        .counter_mode(CounterMode::Delta)
        .percentiles(&[0.5, 0.9, 0.99])
        .install()?;

    // Where a call is hot, keep the handle: an update is then one atomic operation.
    let requests = metrics::counter!("http.requests", "route" => "/login");
    let latency = metrics::histogram!("http.latency.seconds", "route" => "/login");

    let start = Instant::now();
    let mut served = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        let began = Instant::now();
        std::thread::sleep(Duration::from_millis(5 + served % 20)); // "serving a request"
        requests.increment(1);
        latency.record(began.elapsed());
        metrics::gauge!("http.in_flight").set((served % 7) as f64);
        served += 1;
    }
    metrics::counter!("http.errors", "route" => "/login").increment(0);

    // Sends the interval under way (it would otherwise be lost at exit) and waits for the
    // sender to write it.
    exporter.shutdown()?;
    println!("recorded {served} requests; the last interval was sent at shutdown");
    Ok(())
}
