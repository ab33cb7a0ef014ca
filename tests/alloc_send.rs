//! Heap allocations a send makes on the caller's thread, counted by a global allocator.

mod support;

use std::time::Duration;

use graphyte::Sender;
use support::Discard;
use support::alloc::{Counting, allocations};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn sender() -> Sender {
    Sender::builder("unused")
        .socket(Discard)
        .interval(Duration::from_secs(3600))
        .build()
        .unwrap()
}

const SENDS: usize = 10_000;

#[test]
fn a_send_with_a_static_name_allocates_nothing() {
    let sender = sender();
    sender.send("warm.up", 0);
    let n = allocations(|| (0..SENDS).for_each(|i| sender.send("alloc.static", i)));
    assert_eq!(n, 0);
    assert_eq!(sender.stats().dropped, 0);
}

#[test]
fn a_send_with_a_short_string_name_allocates_nothing_beyond_the_string() {
    let sender = sender();
    sender.send("warm.up", 0);
    let names: Vec<String> = (0..SENDS).map(|i| format!("alloc.dynamic.m{i}")).collect();
    let n = allocations(|| names.into_iter().for_each(|name| sender.send(name, 1)));
    assert_eq!(n, 0);
}

#[test]
fn a_send_with_a_short_borrowed_name_allocates_nothing() {
    let sender = sender();
    sender.send("warm.up", 0);
    let names: Vec<String> = (0..SENDS).map(|i| format!("alloc.borrowed.m{i}")).collect();
    let n = allocations(|| {
        for name in &names {
            sender.send(name, 1);
            sender.send(graphyte::Name::borrowed(&name[6..]), 2);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn the_default_sender_adds_no_allocation() {
    let guard = graphyte::init(
        Sender::builder("unused")
            .socket(Discard)
            .interval(Duration::from_secs(3600)),
    )
    .unwrap();
    graphyte::send("warm.up", 0);
    let n = allocations(|| (0..SENDS).for_each(|i| graphyte::send("alloc.global", i)));
    assert_eq!(n, 0);
    drop(guard);
}

#[test]
fn a_send_with_its_own_tags_allocates_its_tag_suffix_only() {
    let sender = sender();
    sender.send("warm.up", 0);
    let n =
        allocations(|| sender.send_tagged("alloc.tagged", 1, &[("host", "web1"), ("dc", "eu")]));
    // The merged, sorted list and the suffix string.
    assert!(n <= 2, "{n} allocations");
}

fn lines_chunk() -> Vec<u8> {
    (0..1000)
        .flat_map(|i| format!("app.server{}.cpu {i} 1700000000\n", i % 10).into_bytes())
        .collect()
}

fn synchronous_discard() -> Sender {
    Sender::builder("unused")
        .socket(Discard)
        .synchronous()
        .build()
        .unwrap()
}

/// Chunks of lines through one batch, synchronously: the buffers a chunk goes through (the
/// batch's, the link's) come back to be filled again instead of being allocated afresh,
/// each costing page faults as it fills.
#[test]
fn forwarding_chunks_through_one_batch_allocates_nothing_once_warm() {
    let sender = synchronous_discard();
    let chunk = lines_chunk();
    let mut batch = sender.line_batch();
    let mut forward = || {
        let seen = batch.push_lines(&chunk, |_, _, _| false);
        let outcome = batch.send();
        assert_eq!((seen, outcome.accepted), (1000, 1000));
    };
    (0..3).for_each(|_| forward());
    let n = allocations(|| (0..100).for_each(|_| forward()));
    assert_eq!(n, 0);
    assert_eq!(sender.stats().sent, 103_000);
}

/// The same with a new batch for each chunk, as a reader with one batch per chunk makes.
#[test]
fn forwarding_chunks_through_a_new_batch_each_allocates_nothing_once_warm() {
    let sender = synchronous_discard();
    let chunk = lines_chunk();
    let forward = || {
        let mut batch = sender.line_batch();
        let seen = batch.push_lines(&chunk, |_, _, _| false);
        let outcome = batch.send();
        assert_eq!((seen, outcome.accepted), (1000, 1000));
        // An empty batch sent gives nothing back and takes nothing.
        assert_eq!(batch.send().accepted, 0);
    };
    (0..3).for_each(|_| forward());
    let n = allocations(|| (0..100).for_each(|_| forward()));
    assert_eq!(n, 0);
    assert_eq!(sender.stats().sent, 103_000);
}
