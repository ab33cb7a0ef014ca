//! What a registered handle updates: a counter's and a gauge's atomics, a histogram's
//! samples of the current interval. The update path takes no lock shared by two metrics and,
//! once warm, allocates nothing.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use metrics::{CounterFn, GaugeFn, HistogramFn};
use parking_lot::Mutex;

use super::CounterMode;
use super::series::Series;

/// A counter: its total since it was registered, and the total last reported.
#[derive(Debug)]
pub(super) struct CounterCell {
    total: AtomicU64,
    /// The total at the last flush; only the flusher touches it.
    reported: AtomicU64,
    pub(super) series: Series,
}

impl CounterCell {
    pub(super) fn new(series: Series) -> Self {
        CounterCell {
            total: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            series,
        }
    }

    /// What this interval reports: the increase since the last flush, or the total.
    pub(super) fn take(&self, mode: CounterMode) -> u64 {
        let total = self.total.load(Relaxed);
        match mode {
            // Wrapping: a total that overflowed u64 still gives the right increase.
            CounterMode::Delta => total.wrapping_sub(self.reported.swap(total, Relaxed)),
            CounterMode::Total => total,
        }
    }
}

impl CounterFn for CounterCell {
    #[inline]
    fn increment(&self, value: u64) {
        self.total.fetch_add(value, Relaxed);
    }

    /// Sets the total to at least `value`, as `metrics` defines it: a counter never goes
    /// down.
    #[inline]
    fn absolute(&self, value: u64) {
        self.total.fetch_max(value, Relaxed);
    }
}

/// A gauge: its value, as the bits of an `f64`.
#[derive(Debug)]
pub(super) struct GaugeCell {
    bits: AtomicU64,
    pub(super) series: Series,
}

impl GaugeCell {
    pub(super) fn new(series: Series) -> Self {
        GaugeCell {
            bits: AtomicU64::new(0f64.to_bits()),
            series,
        }
    }

    pub(super) fn value(&self) -> f64 {
        f64::from_bits(self.bits.load(Relaxed))
    }

    #[inline]
    fn add(&self, delta: f64) {
        let mut current = self.bits.load(Relaxed);
        loop {
            let new = (f64::from_bits(current) + delta).to_bits();
            match self
                .bits
                .compare_exchange_weak(current, new, Relaxed, Relaxed)
            {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

impl GaugeFn for GaugeCell {
    #[inline]
    fn increment(&self, value: f64) {
        self.add(value);
    }

    #[inline]
    fn decrement(&self, value: f64) {
        self.add(-value);
    }

    #[inline]
    fn set(&self, value: f64) {
        self.bits.store(value.to_bits(), Relaxed);
    }
}

/// A histogram: this interval's samples, in shards so that threads recording into the same
/// histogram do not wait for each other. A thread always records into the same shard.
#[derive(Debug)]
pub(super) struct HistogramCell {
    shards: Box<[Padded<Mutex<Samples>>]>,
    /// `shards.len() - 1`; the number of shards is a power of two.
    mask: usize,
    /// Most samples a shard keeps per interval; beyond, it keeps a uniform sample of them.
    cap: usize,
    pub(super) series: Series,
    /// The path of each statistic: `count`, `sum`, `min`, `max`, `mean`, then the
    /// percentiles.
    pub(super) paths: Box<[Box<str>]>,
}

/// What a histogram sends about one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Summary {
    pub(super) count: u64,
    pub(super) sum: f64,
    pub(super) min: f64,
    pub(super) max: f64,
    /// The sum of the weights of the samples drained: `count`, as a float.
    pub(super) weight: f64,
}

/// Keeps a shard on cache lines of its own.
#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

#[derive(Debug)]
struct Samples {
    /// Kept across intervals: once it has grown to an interval's samples, recording
    /// allocates no more.
    values: Vec<f64>,
    /// Samples recorded this interval, kept or not.
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// xorshift64 state, for choosing which samples to keep past the cap.
    random: u64,
}

impl Samples {
    fn new(seed: u64) -> Self {
        Samples {
            values: Vec::new(),
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            random: seed | 1,
        }
    }

    #[inline]
    fn add(&mut self, value: f64, cap: usize) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        let len = self.values.len();
        if len < cap {
            if len == self.values.capacity() {
                self.grow(cap);
            }
            self.values.push(value);
        } else {
            // Reservoir sampling (Vitter's algorithm R): every sample of the interval is
            // kept with the same probability, cap / count.
            let slot = self.next_random() % self.count;
            if let Some(kept) = self.values.get_mut(slot as usize) {
                *kept = value;
            }
        }
    }

    /// Doubles the buffer, up to the cap (never past it, as `Vec` would).
    #[cold]
    fn grow(&mut self, cap: usize) {
        let len = self.values.len();
        self.values.reserve_exact(len.max(64).min(cap - len));
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.random;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random = x;
        x
    }
}

/// The next thread's shard number.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard number, given at its first record; `usize::MAX` until then.
    static THREAD_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn thread_shard() -> usize {
    THREAD_SHARD
        .try_with(|shard| match shard.get() {
            usize::MAX => {
                let next = NEXT_THREAD.fetch_add(1, Relaxed) % (usize::MAX - 1);
                shard.set(next);
                next
            }
            known => known,
        })
        .unwrap_or(0)
}

impl HistogramCell {
    /// A histogram of `shards` shards (a power of two) keeping about `max_samples`
    /// samples per interval in all.
    pub(super) fn new(
        series: Series,
        paths: Box<[Box<str>]>,
        shards: usize,
        max_samples: usize,
    ) -> Self {
        debug_assert!(shards.is_power_of_two());
        HistogramCell {
            shards: (0..shards)
                .map(|i| Padded(Mutex::new(Samples::new(0x9e37_79b9_7f4a_7c15 ^ i as u64))))
                .collect(),
            mask: shards - 1,
            cap: max_samples.div_ceil(shards).max(1),
            series,
            paths,
        }
    }

    /// Moves this interval's samples into `samples` as `(value, weight)` (a sample stands
    /// for `weight` samples of its shard when the shard kept only some), resets the
    /// histogram for the next interval, and returns the interval's summary. `samples` is
    /// emptied first and left unsorted.
    pub(super) fn drain(&self, samples: &mut Vec<(f64, f64)>) -> Summary {
        samples.clear();
        let mut summary = Summary {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            weight: 0.0,
        };
        for shard in &self.shards {
            let mut shard = shard.0.lock();
            if shard.count == 0 {
                continue;
            }
            let weight = if shard.count == shard.values.len() as u64 {
                1.0
            } else {
                shard.count as f64 / shard.values.len() as f64
            };
            samples.extend(shard.values.iter().map(|&value| (value, weight)));
            summary.count += shard.count;
            summary.sum += shard.sum;
            summary.min = summary.min.min(shard.min);
            summary.max = summary.max.max(shard.max);
            summary.weight += shard.count as f64;
            shard.values.clear();
            shard.count = 0;
            shard.sum = 0.0;
            shard.min = f64::INFINITY;
            shard.max = f64::NEG_INFINITY;
        }
        summary
    }

    #[inline]
    fn shard(&self) -> &Mutex<Samples> {
        &self.shards[thread_shard() & self.mask].0
    }
}

impl HistogramFn for HistogramCell {
    /// Records a sample; NaN and infinite samples are ignored (Carbon could not store what
    /// they would make of the sum and the mean).
    #[inline]
    fn record(&self, value: f64) {
        if value.is_finite() {
            self.shard().lock().add(value, self.cap);
        }
    }

    fn record_many(&self, value: f64, count: usize) {
        if value.is_finite() {
            let mut shard = self.shard().lock();
            for _ in 0..count {
                shard.add(value, self.cap);
            }
        }
    }
}

/// The `quantile` of samples sorted by value, by nearest rank: the smallest sample whose
/// cumulative weight reaches `quantile` of `total`. With every weight 1 (no sampling) this
/// is the sample of rank ⌈q·n⌉: for 1 to 100, p50 is 50 and p99 is 99. 0 gives the least
/// sample, 1 the greatest.
pub(super) fn quantile(sorted: &[(f64, f64)], total: f64, quantile: f64) -> Option<f64> {
    let (first, last) = (sorted.first()?, sorted.last()?);
    if quantile <= 0.0 {
        return Some(first.0);
    }
    if quantile >= 1.0 {
        return Some(last.0);
    }
    // A little under q·n, so that a product rounded up (0.07 · 100 = 7.000000000000001)
    // still gives its rank.
    let target = quantile * total * (1.0 - 1e-12);
    let mut cumulative = 0.0;
    for &(value, weight) in sorted {
        cumulative += weight;
        if cumulative >= target {
            return Some(value);
        }
    }
    Some(last.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Series {
        Series {
            path: "h".into(),
            tags: Box::default(),
        }
    }

    fn sorted(samples: &mut [(f64, f64)]) {
        samples.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    }

    #[test]
    fn quantiles_are_nearest_ranks() {
        let samples: Vec<(f64, f64)> = (1..=100).map(|v| (f64::from(v), 1.0)).collect();
        let q = |p| quantile(&samples, 100.0, p).unwrap();
        assert_eq!(
            [q(0.0), q(0.07), q(0.5), q(0.9), q(0.99), q(0.999), q(1.0)],
            [1.0, 7.0, 50.0, 90.0, 99.0, 100.0, 100.0]
        );
        let one = [(3.5, 1.0)];
        assert_eq!(quantile(&one, 1.0, 0.5), Some(3.5));
        assert_eq!(quantile(&[], 0.0, 0.5), None);
    }

    #[test]
    fn a_full_shard_keeps_a_uniform_sample_and_exact_count_sum_min_max() {
        let cell = HistogramCell::new(series(), Box::default(), 1, 1000);
        for v in 1..=100_000 {
            cell.record(f64::from(v));
        }
        let mut samples = Vec::new();
        let summary = cell.drain(&mut samples);
        assert_eq!(summary.count, 100_000);
        assert_eq!(summary.sum, 5_000_050_000.0);
        assert_eq!((summary.min, summary.max), (1.0, 100_000.0));
        assert_eq!(samples.len(), 1000);
        assert!(samples.iter().all(|&(_, w)| w == 100.0));
        sorted(&mut samples);
        let median = quantile(&samples, summary.weight, 0.5).unwrap();
        assert!((40_000.0..60_000.0).contains(&median), "{median}");
        // The buffer keeps its capacity, never more than the cap.
        assert_eq!(cell.shards[0].0.lock().values.capacity(), 1000);
        assert_eq!(cell.drain(&mut samples).count, 0);
        assert!(samples.is_empty());
    }

    #[test]
    fn non_finite_samples_are_ignored() {
        let cell = HistogramCell::new(series(), Box::default(), 2, 100);
        cell.record(f64::NAN);
        cell.record(f64::INFINITY);
        cell.record_many(2.0, 3);
        let mut samples = Vec::new();
        let summary = cell.drain(&mut samples);
        assert_eq!((summary.count, summary.sum), (3, 6.0));
    }

    #[test]
    fn a_counter_reports_increases_or_totals_and_absolute_never_lowers_it() {
        let cell = CounterCell::new(series());
        cell.increment(5);
        assert_eq!(cell.take(CounterMode::Delta), 5);
        assert_eq!(cell.take(CounterMode::Delta), 0);
        cell.absolute(3);
        assert_eq!(cell.take(CounterMode::Total), 5);
        cell.absolute(12);
        assert_eq!(cell.take(CounterMode::Delta), 7);
    }

    #[test]
    fn a_gauge_goes_below_zero() {
        let cell = GaugeCell::new(series());
        cell.increment(1.5);
        cell.decrement(4.0);
        assert_eq!(cell.value(), -2.5);
        cell.set(-7.0);
        assert_eq!(cell.value(), -7.0);
    }
}
