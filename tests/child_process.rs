//! A program that returns from `main` holding its guard delivers everything it sent; the
//! README's Quick start is the program `examples/quickstart.rs`.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{TcpSink, UdpSink, example_path, wait_until};

/// Metrics the child sends over TCP, whose flow control lets any burst through.
const TCP_COUNT: usize = 10_000;

/// Metrics the child sends over UDP, which has no flow control: the whole burst must fit in
/// the sink's receive buffer. This many fit in Linux's default (`net.core.rmem_max` of
/// 212,992 bytes, doubled by the kernel for its bookkeeping), so no system setting is needed.
const UDP_COUNT: usize = 2_000;

/// What the kernel charges a receive buffer for one queued loopback datagram of up to
/// `DEFAULT_MAX_DATAGRAM` bytes, at most: its buffer with headers and bookkeeping (measured
/// 2,304 bytes on Linux), rounded up to a page.
const DATAGRAM_COST: usize = 4096;

fn run_child(port: u16, count: usize, args: &[&str]) {
    let status = Command::new(example_path("send_and_exit"))
        .args([port.to_string(), count.to_string()])
        .args(args)
        .status()
        .expect("the send_and_exit example is built by `cargo test`");
    assert!(status.success());
}

/// Every line is the child's metric of its own index, in the order sent.
fn assert_in_order(lines: &[String]) {
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!("child.metric{i} {i} ")),
            "line {i}: {line:?}"
        );
    }
}

#[test]
fn a_child_that_returns_from_main_delivers_all_metrics_over_tcp() {
    let sink = TcpSink::start();
    run_child(sink.port, TCP_COUNT, &["tcp"]);
    let lines = sink.wait_for_lines(TCP_COUNT);
    assert_in_order(&lines);
}

#[test]
fn a_child_that_returns_from_main_delivers_all_metrics_over_udp() {
    let sink = UdpSink::start();
    // The child writes its lines ("child.metric{i} {i} {10-digit time}\n") in batches of
    // `DEFAULT_BATCH_SIZE`, packed into datagrams: each datagram but the last of a batch is
    // more than `DEFAULT_MAX_DATAGRAM - longest line` bytes full.
    let line_len = |i: usize| format!("child.metric{i} {i} 1700000000\n").len();
    let bytes: usize = (0..UDP_COUNT).map(line_len).sum();
    let longest = line_len(UDP_COUNT - 1);
    let datagrams = bytes.div_ceil(graphyte::DEFAULT_MAX_DATAGRAM - longest)
        + UDP_COUNT.div_ceil(graphyte::DEFAULT_BATCH_SIZE);
    assert!(
        sink.recv_buffer >= datagrams * DATAGRAM_COST,
        "the sink's receive buffer ({} bytes) cannot hold a burst of {UDP_COUNT} lines \
         ({datagrams} datagrams, up to {} bytes in the kernel's accounting); the kernel caps it \
         at net.core.rmem_max: raise that, or send fewer lines",
        sink.recv_buffer,
        datagrams * DATAGRAM_COST,
    );
    run_child(sink.port, UDP_COUNT, &["udp"]);
    wait_until(Duration::from_secs(10), || sink.lines().len() >= UDP_COUNT);
    let lines = sink.lines();
    assert_eq!(
        lines.len(),
        UDP_COUNT,
        "lines received in {} datagrams",
        sink.datagrams.lock().unwrap().len()
    );
    assert_in_order(&lines);
}

#[test]
fn a_child_that_flushes_before_process_exit_delivers_all_metrics() {
    let sink = TcpSink::start();
    run_child(sink.port, TCP_COUNT, &["tcp", "exit"]);
    assert_eq!(sink.wait_for_lines(TCP_COUNT).len(), TCP_COUNT);
}

#[test]
fn the_readme_quick_start_is_examples_quickstart() {
    let readme = include_str!("../README.md");
    let example = include_str!("../examples/quickstart.rs");
    let section = readme
        .split_once("\n## Quick start\n")
        .expect("README.md has a '## Quick start' section")
        .1;
    let section = section.split_once("\n## ").map_or(section, |(s, _)| s);
    let block = section
        .split_once("\n```rust")
        .expect("the Quick start has a ```rust block")
        .1;
    // Past the rest of the fence line (`,no_run`), up to the closing fence.
    let code = block.split_once('\n').expect("a line after the fence").1;
    let code = &code[..code.find("```").expect("the ```rust block is closed")];
    assert!(
        code == example,
        "the README's Quick start and examples/quickstart.rs differ: make them the same \
         program\n--- README.md\n{code}--- examples/quickstart.rs\n{example}"
    );
}
