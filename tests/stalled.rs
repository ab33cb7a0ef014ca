//! A server that accepts connections and never reads them: sends stay non-blocking, memory
//! stays within the queue, and shutdown keeps its timeout. In a file of its own, so no other
//! test competes for the CPU while sends are timed.

use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use graphyte::Sender;

#[test]
fn a_stalled_server_neither_blocks_sends_nor_grows_memory_and_shutdown_keeps_its_timeout() {
    // Accepts connections and never reads them.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    {
        let held = held.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                held.lock().unwrap().push(stream);
            }
        });
    }
    let capacity = 10_000;
    let sender = Sender::builder("127.0.0.1")
        .port(port)
        .queue_capacity(capacity)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut times: Vec<Duration> = (0..100_000u64)
        .map(|i| {
            let start = Instant::now();
            sender.send("stalled.server.with.a.long.name", i);
            start.elapsed()
        })
        .collect();
    times.sort();
    let (median, p999, worst) = (times[50_000], times[99_900], times[99_999]);
    eprintln!("send against a stalled server: median {median:?}, 99.9% {p999:?}, worst {worst:?}");
    // Blocking on the network would take the write timeout (2 s) for every send after the
    // queue filled: far above both bounds. A single call can still be preempted by the
    // scheduler for tens of milliseconds on a loaded machine (60 ms was seen), hence bounds
    // that only prove "does not block".
    assert!(
        p999 < Duration::from_millis(20),
        "99.9% of sends under {p999:?}"
    );
    assert!(worst < Duration::from_secs(1), "a send took {worst:?}");
    let stats = sender.stats();
    assert!(stats.dropped > 0, "{stats:?}");
    // What is held in memory: the queue and the worker's batch, nothing more.
    assert!(
        stats.queued - stats.sent <= (capacity + graphyte::DEFAULT_BATCH_SIZE) as u64,
        "{stats:?}"
    );
    let start = Instant::now();
    let result = sender.shutdown(Duration::from_millis(300));
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(300) + Duration::from_millis(500),
        "shutdown took {took:?} ({result:?})"
    );
}
