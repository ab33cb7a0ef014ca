use std::time::{Duration, SystemTime};

fn main() -> Result<(), graphyte::Error> {
    // graphyte reports errors through the `log` crate: without a logger they are invisible.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();

    // Where Carbon listens: GRAPHITE_HOST (default localhost), GRAPHITE_PORT (default 2003).
    let host = std::env::var("GRAPHITE_HOST").unwrap_or_else(|_| "localhost".into());
    let port = match std::env::var("GRAPHITE_PORT") {
        Ok(port) => port.parse().expect("GRAPHITE_PORT is a port number"),
        Err(_) => graphyte::DEFAULT_PORT,
    };

    // Once, at start-up. Keep the guard until the end of main: dropping it writes what is
    // queued. The default sender runs until graphyte::shutdown() or the end of the process.
    let _guard = graphyte::init(
        graphyte::Sender::builder(host)
            .port(port)
            .prefix("myapp")
            .interval(Duration::from_secs(10)),
    )?;

    // Anywhere, any thread.
    graphyte::send("requests.ok", 42);
    graphyte::send("latency.p99", 0.125);
    graphyte::send_tagged("queue.depth", 7, &[("queue", "mail")]);
    graphyte::send_at("batch.rows", 1500, SystemTime::now());

    println!("sent 4 metrics; the guard writes them as main returns");
    Ok(())
}
