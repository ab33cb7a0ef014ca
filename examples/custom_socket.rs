//! Replacing how bytes leave: a `SendSocket` that prints every line it is given instead of
//! sending it, counting what it wrote. Plug yours in with one builder call: `.socket(...)`.
//!
//! ```text
//! cargo run --example custom_socket
//! ```

use std::io::{self, Write};

use graphyte::{SendSocket, Sender};

/// Writes each batch to standard output, prefixed with its batch number.
struct Stdout {
    batches: usize,
}

impl SendSocket for Stdout {
    fn send(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.batches += 1;
        let mut out = io::stdout().lock();
        for line in buf.split_inclusive(|&b| b == b'\n') {
            write!(out, "batch {}: ", self.batches)?;
            out.write_all(line)?;
        }
        Ok(buf.len())
    }
}

fn main() -> Result<(), graphyte::Error> {
    // graphyte reports errors through the `log` crate: without a logger they are invisible.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();

    let sender = Sender::builder("unused")
        .prefix("example")
        .tag("host", "laptop")
        .batch_size(2)
        .socket(Stdout { batches: 0 })
        .build()?;
    sender.send("cpu.user", 12.5);
    sender.send("cpu.system", 3.25);
    sender.send_tagged("disk.free", 81_234_567u64, &[("mount", "/var")]);
    sender.flush()?;
    println!("{:?}", sender.stats());
    Ok(())
}
