//! Carbon over TLS: Hosted Graphite's TLS endpoint, carbon.hostedgraphite.com:20030, which
//! reads plaintext lines whose names start with your API key. The server's certificate is
//! verified against the Mozilla roots bundled with graphyte.
//!
//! ```text
//! HOSTEDGRAPHITE_APIKEY=your-api-key cargo run --example tls --features tls
//! ```
//!
//! For your own Carbon behind TLS (stunnel in front of carbon-cache, say), set GRAPHITE_HOST
//! and GRAPHITE_PORT, and GRAPHITE_CA to the PEM file of a private CA that signed its
//! certificate.

use std::time::Duration;

use graphyte::{Sender, TlsConfig};

fn main() -> Result<(), graphyte::Error> {
    // graphyte reports errors through the `log` crate: without a logger they are invisible.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();

    let Ok(api_key) = std::env::var("HOSTEDGRAPHITE_APIKEY") else {
        eprintln!("set HOSTEDGRAPHITE_APIKEY to your Hosted Graphite API key");
        std::process::exit(2);
    };
    let host =
        std::env::var("GRAPHITE_HOST").unwrap_or_else(|_| "carbon.hostedgraphite.com".into());
    let port = match std::env::var("GRAPHITE_PORT") {
        Ok(port) => port.parse().expect("GRAPHITE_PORT is a port number"),
        Err(_) => 20030,
    };
    let mut tls = TlsConfig::new();
    if let Ok(ca) = std::env::var("GRAPHITE_CA") {
        tls = tls.ca_file(ca);
    }

    // The API key goes first in every name: a prefix, checked like a name when building.
    // The key is a secret held in that prefix, and the builder's `Debug` output shows the
    // prefix, key included: do not log or print the builder (`{:?}`, `dbg!`).
    let sender = Sender::builder(host)
        .port(port)
        .tls(tls)
        .prefix(format!("{api_key}.example"))
        .timeout(Duration::from_secs(10))
        .build()?;
    sender.send("requests.ok", 42);
    sender.send("latency.p99", 0.125);

    // Writes what is queued: connects, verifies the server's certificate, sends. A failure
    // (a refused certificate, say) is returned here, logged and counted in `errors`; the
    // metrics stay queued and are retried until the sender is dropped.
    if let Err(err) = sender.flush() {
        eprintln!("not delivered: {err}");
    }
    println!("{:?}", sender.stats());
    Ok(())
}
