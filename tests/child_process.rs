//! A program that returns from `main` holding its guard delivers everything it sent.

mod support;

use std::process::Command;

use support::{TcpSink, UdpSink, example_path, wait_until};

const COUNT: usize = 10_000;

fn run_child(port: u16, transport: &str) {
    run_child_with(port, &[transport]);
}

fn run_child_with(port: u16, args: &[&str]) {
    let status = Command::new(example_path("send_and_exit"))
        .args([port.to_string(), COUNT.to_string()])
        .args(args)
        .status()
        .expect("the send_and_exit example is built by `cargo test`");
    assert!(status.success());
}

#[test]
fn a_child_that_returns_from_main_delivers_all_metrics_over_tcp() {
    let sink = TcpSink::start();
    run_child(sink.port, "tcp");
    let lines = sink.wait_for_lines(COUNT);
    assert!(
        lines
            .iter()
            .enumerate()
            .all(|(i, l)| l.starts_with(&format!("child.metric{i} {i} ")))
    );
}

#[test]
fn a_child_that_returns_from_main_delivers_all_metrics_over_udp() {
    let sink = UdpSink::start();
    // UDP has no flow control: the whole burst must fit in the sink's receive buffer.
    assert!(
        sink.recv_buffer >= 1 << 20,
        "receive buffer of {} bytes is too small for a 10,000-line burst; raise net.core.rmem_max",
        sink.recv_buffer
    );
    run_child(sink.port, "udp");
    wait_until(std::time::Duration::from_secs(10), || {
        sink.lines().len() >= COUNT
    });
    assert_eq!(
        sink.lines().len(),
        COUNT,
        "{} datagrams",
        sink.datagrams.lock().unwrap().len()
    );
}

#[test]
fn a_child_that_flushes_before_process_exit_delivers_all_metrics() {
    let sink = TcpSink::start();
    run_child_with(sink.port, &["tcp", "exit"]);
    assert_eq!(sink.wait_for_lines(COUNT).len(), COUNT);
}
