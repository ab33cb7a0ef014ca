//! The quick start: install a default sender, send a few metrics, exit cleanly.
//!
//! ```text
//! cargo run --example quickstart -- [HOST] [PORT]     # default 127.0.0.1 2003
//! ```

use std::time::Duration;

fn main() -> Result<(), graphyte::Error> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".into());
    let port = args
        .next()
        .map_or(Ok(2003), |p| p.parse())
        .expect("PORT is a number");

    // Once, at start-up. Keep the guard: dropping it writes what is queued.
    let _guard = graphyte::init(
        graphyte::Sender::builder(host)
            .port(port)
            .prefix("quickstart")
            .interval(Duration::from_secs(10)),
    )?;

    // Anywhere, any thread.
    graphyte::send("requests.ok", 42);
    graphyte::send("latency.p99", 0.125);
    graphyte::send_tagged("queue.depth", 7, &[("queue", "mail")]);
    graphyte::send_at("batch.rows", 1500, std::time::SystemTime::now());

    println!("sent 4 metrics; the guard writes them as main returns");
    Ok(())
}
