//! Sending to Hosted Graphite (MetricFire) over its HTTP API: each batch of plaintext lines
//! is POSTed to `https://www.hostedgraphite.com/api/v1/sink`, with the API key as the
//! basic-auth user. For networks where only HTTPS gets out. Built with the `http` feature.
//!
//! ```text
//! HOSTEDGRAPHITE_APIKEY=... cargo run --features http --example hosted_graphite_http
//! ```
//!
//! `GRAPHYTE_HTTP_URL` sends to another sink that takes lines (a test server, say), and
//! `RUST_LOG=info` shows each batch as it goes.

use std::time::Duration;

use graphyte::{HttpSocket, Sender};

fn main() -> Result<(), graphyte::Error> {
    // graphyte reports errors through the `log` crate: without a logger they are invisible.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();

    let Ok(key) = std::env::var("HOSTEDGRAPHITE_APIKEY") else {
        eprintln!("set HOSTEDGRAPHITE_APIKEY to your Hosted Graphite API key");
        std::process::exit(2);
    };
    let url =
        std::env::var("GRAPHYTE_HTTP_URL").unwrap_or_else(|_| HttpSocket::HOSTED_GRAPHITE.into());

    // The socket replaces the TCP connection: the sender's host and port are unused. Names
    // go without the key in front (the key is in the Authorization header instead), and the
    // protocol stays plaintext: a sink takes lines.
    let socket = HttpSocket::builder(url)
        .api_key(&key)
        .timeout(Duration::from_secs(10))
        .build()?;
    let sender = Sender::builder("unused")
        .prefix("example")
        .interval(Duration::from_secs(10)) // one POST per interval, of what was queued
        .batch_size(1000) // or sooner, once this many are waiting
        .log_sends(true)
        .socket(socket)
        .build()?;

    // Plain names: Hosted Graphite's name rules leave out `;`, so Graphite's tags
    // (`send_tagged`) may be refused there, and a refused line costs its whole batch.
    sender.send("requests.ok", 42);
    sender.send("latency.p99", 0.125);
    sender.send("queues.mail.depth", 7);

    // A 5xx or a connection error is retried with backoff; a 4xx (a bad key, a refused
    // line) drops that batch and is logged with the server's reason.
    match sender.flush() {
        Ok(()) => println!("accepted: {:?}", sender.stats()),
        Err(err) => eprintln!("not delivered yet ({err}): {:?}", sender.stats()),
    }
    sender.shutdown(Duration::from_secs(5))
}
