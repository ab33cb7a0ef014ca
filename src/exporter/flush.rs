//! A flush: every registered metric's lines for one interval, stamped with its end, handed
//! to the sender as one batch; and the schedule of the flush thread.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::Mutex;

use super::CounterMode;
use super::Shared;
use super::cells::{CounterCell, GaugeCell, HistogramCell, quantile};
use super::registry::Registry;
use crate::point::metric::{Metric, Name, Value};
use crate::sender::{BatchOutcome, Sender};

/// Sends the intervals: one flush at a time.
#[derive(Debug)]
pub(super) struct Flusher {
    pub(super) sender: Sender,
    pub(super) counter_mode: CounterMode,
    pub(super) percentiles: Box<[f64]>,
    /// Seconds, from 1 to a day.
    pub(super) interval: u64,
    state: Mutex<State>,
}

/// The flusher's own: what the last flush covered, and buffers kept from one flush to the
/// next.
#[derive(Debug)]
struct State {
    /// The end of the last interval sent (or, before the first, the start of the first).
    last_end: u64,
    counters: Vec<Arc<CounterCell>>,
    gauges: Vec<Arc<GaugeCell>>,
    histograms: Vec<Arc<HistogramCell>>,
    samples: Vec<(f64, f64)>,
}

/// One line to send, borrowing its names from a cell.
struct Line<'a> {
    path: &'a str,
    tags: &'a [(Box<str>, Box<str>)],
    value: Value,
}

impl Flusher {
    pub(super) fn new(
        sender: Sender,
        counter_mode: CounterMode,
        percentiles: Box<[f64]>,
        interval: u64,
    ) -> Self {
        Flusher {
            sender,
            counter_mode,
            percentiles,
            interval,
            state: Mutex::new(State {
                last_end: floor_boundary(since_epoch(SystemTime::now()), interval),
                counters: Vec::new(),
                gauges: Vec::new(),
                histograms: Vec::new(),
                samples: Vec::new(),
            }),
        }
    }

    /// The end of the interval under way at `now`: the first boundary at or after `now`,
    /// and after the last interval sent (so that a clock set back never stamps a slot
    /// again, which would overwrite what Carbon holds for it).
    pub(super) fn current_end(&self, now: SystemTime) -> u64 {
        let last = self.state.lock().last_end;
        ceil_boundary(since_epoch(now), self.interval).max(last.saturating_add(self.interval))
    }

    /// Sends what was recorded since the last flush, stamped `end`.
    pub(super) fn flush(&self, registry: &Registry, end: u64) -> BatchOutcome {
        let mut state = self.state.lock();
        let state = &mut *state;
        state.last_end = state.last_end.max(end);
        registry.snapshot(
            &mut state.counters,
            &mut state.gauges,
            &mut state.histograms,
        );
        let mut lines = Vec::with_capacity(state.counters.len() + state.gauges.len());
        for cell in &state.counters {
            let value = cell.take(self.counter_mode);
            lines.push(Line::new(&cell.series.path, &cell.series.tags, value));
        }
        for cell in &state.gauges {
            let value = cell.value();
            // Carbon cannot store NaN or infinity: such a gauge is not sent.
            if value.is_finite() {
                lines.push(Line::new(&cell.series.path, &cell.series.tags, value));
            }
        }
        for cell in &state.histograms {
            let summary = cell.drain(&mut state.samples);
            let tags = &cell.series.tags;
            let [count, sum, min, max, mean, percentiles @ ..] = &cell.paths[..] else {
                unreachable!("every histogram has its five statistics")
            };
            lines.push(Line::new(count, tags, summary.count));
            if summary.count == 0 {
                continue;
            }
            lines.push(Line::new(sum, tags, summary.sum));
            lines.push(Line::new(min, tags, summary.min));
            lines.push(Line::new(max, tags, summary.max));
            lines.push(Line::new(mean, tags, summary.sum / summary.count as f64));
            let samples = &mut state.samples;
            samples.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            for (path, &q) in percentiles.iter().zip(&self.percentiles) {
                if let Some(value) = quantile(samples, summary.weight, q) {
                    lines.push(Line::new(path, tags, value));
                }
            }
        }
        let mut views = Vec::new();
        let spans: Vec<_> = lines
            .iter()
            .map(|line| {
                let start = views.len();
                views.extend(line.tags.iter().map(|(k, v)| (&**k, &**v)));
                start..views.len()
            })
            .collect();
        let metrics = lines.iter().zip(spans).map(|(line, span)| {
            Metric::new(Name::borrowed(line.path), line.value)
                .timestamp(end)
                .tags(&views[span])
        });
        self.sender.send_batch(metrics)
    }
}

impl<'a> Line<'a> {
    fn new(path: &'a str, tags: &'a [(Box<str>, Box<str>)], value: impl Into<Value>) -> Self {
        Line {
            path,
            tags,
            value: value.into(),
        }
    }
}

/// Starts the flush thread: at each boundary of the interval (a multiple of it since the
/// Unix epoch, by the wall clock), it flushes the interval that ends there, until `stop`
/// is dropped.
pub(super) fn spawn(shared: Arc<Shared>, stop: Receiver<()>) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("graphyte-metrics".into())
        .spawn(move || {
            loop {
                let end = shared.flusher.current_end(SystemTime::now());
                let Some(now) = wait_until(end, &stop) else {
                    return;
                };
                // Woken late (a suspended machine): the interval ends at the last boundary
                // passed, and covers the time missed.
                let end = end.max(floor_boundary(now, shared.flusher.interval));
                shared.flush(end);
            }
        })
}

/// Waits until the wall clock reads `end` (seconds); returns the time then, or `None`
/// once `stop` is dropped.
fn wait_until(end: u64, stop: &Receiver<()>) -> Option<Duration> {
    let end = Duration::from_secs(end);
    loop {
        let now = since_epoch(SystemTime::now());
        if now >= end {
            return Some(now);
        }
        // Each wait is measured again from the wall clock: no drift accumulates.
        match stop.recv_timeout(end - now) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

pub(super) fn since_epoch(time: SystemTime) -> Duration {
    time.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// The last boundary at or before `now`, in seconds.
pub(super) fn floor_boundary(now: Duration, interval: u64) -> u64 {
    now.as_secs() / interval * interval
}

/// The first boundary at or after `now`, in seconds.
pub(super) fn ceil_boundary(now: Duration, interval: u64) -> u64 {
    let floor = floor_boundary(now, interval);
    if Duration::from_secs(floor) == now {
        floor
    } else {
        floor.saturating_add(interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> Duration {
        Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn boundaries_are_multiples_of_the_interval_since_the_epoch() {
        assert_eq!(floor_boundary(at(1_700_000_003, 500), 10), 1_700_000_000);
        assert_eq!(ceil_boundary(at(1_700_000_003, 500), 10), 1_700_000_010);
        assert_eq!(ceil_boundary(at(1_700_000_010, 0), 10), 1_700_000_010);
        assert_eq!(ceil_boundary(at(1_700_000_010, 1), 10), 1_700_000_020);
        assert_eq!(ceil_boundary(at(119, 999), 60), 120);
        assert_eq!(floor_boundary(at(119, 999), 60), 60);
    }
}
