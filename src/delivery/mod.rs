//! Delivery: the queue's far end. The worker batches points, the link writes their frames
//! with retries and backoff, and the counters say what became of every point. Synchronous
//! mode runs the same link on the caller's thread: one writer, not two.

mod backoff;
pub(crate) mod link;
pub(crate) mod shared;
pub(crate) mod stats;
pub(crate) mod worker;
