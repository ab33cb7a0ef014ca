//! The registered metrics, by key. Only registering looks here (a read lock, or a write
//! lock for a new key); an update goes to its handle's cell directly.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use metrics::Key;
use parking_lot::{Mutex, RwLock};

use super::cells::{CounterCell, GaugeCell, HistogramCell};
use super::series::{Naming, Series, percentile_segment};
use crate::report::report;

/// The statistics every histogram sends, before its percentiles.
pub(super) const STATISTICS: [&str; 5] = ["count", "sum", "min", "max", "mean"];

#[derive(Debug)]
pub(super) struct Registry {
    naming: Naming,
    /// The percentiles' path segments (`p50`, ...).
    percentiles: Box<[String]>,
    /// Shards per histogram (a power of two) and samples kept per histogram per interval.
    shards: usize,
    max_samples: usize,
    counters: RwLock<Table<CounterCell>>,
    gauges: RwLock<Table<GaugeCell>>,
    histograms: RwLock<Table<HistogramCell>>,
    /// Every line name written (`path;tags`), with the key that writes it: two keys
    /// cleaned into the same name are reported once, as Carbon would keep one of them.
    written: Mutex<HashMap<Box<str>, String>>,
}

/// One kind of metric: cells in the order they were registered, found by key.
#[derive(Debug)]
struct Table<C> {
    index: HashMap<Key, usize, BuildHasherDefault<KeyHasher>>,
    cells: Vec<Arc<C>>,
}

impl<C> Default for Table<C> {
    fn default() -> Self {
        Table {
            index: HashMap::default(),
            cells: Vec::new(),
        }
    }
}

/// `Key` hashes itself to the one `u64` it computed when made (often at compile time):
/// take it as it is.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, hash: u64) {
        self.0 ^= hash;
    }

    /// Not used by `Key`; FNV-1a, should that change.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl Registry {
    pub(super) fn new(
        naming: Naming,
        percentiles: &[f64],
        shards: usize,
        max_samples: usize,
    ) -> Self {
        Registry {
            naming,
            percentiles: percentiles.iter().map(|&q| percentile_segment(q)).collect(),
            shards,
            max_samples,
            counters: RwLock::default(),
            gauges: RwLock::default(),
            histograms: RwLock::default(),
            written: Mutex::default(),
        }
    }

    pub(super) fn counter(&self, key: &Key) -> Arc<CounterCell> {
        self.get_or_add(&self.counters, key, |series| {
            let id = series.id(&series.path);
            (CounterCell::new(series), vec![id])
        })
    }

    pub(super) fn gauge(&self, key: &Key) -> Arc<GaugeCell> {
        self.get_or_add(&self.gauges, key, |series| {
            let id = series.id(&series.path);
            (GaugeCell::new(series), vec![id])
        })
    }

    pub(super) fn histogram(&self, key: &Key) -> Arc<HistogramCell> {
        self.get_or_add(&self.histograms, key, |series| {
            let paths: Box<[Box<str>]> = STATISTICS
                .iter()
                .copied()
                .chain(self.percentiles.iter().map(String::as_str))
                .map(|statistic| format!("{}.{statistic}", series.path).into_boxed_str())
                .collect();
            let ids = paths.iter().map(|path| series.id(path)).collect();
            let cell = HistogramCell::new(series, paths, self.shards, self.max_samples);
            (cell, ids)
        })
    }

    /// Copies the cells of each kind, in the order they were registered, into the vectors
    /// given (emptied first), so that the flush holds no lock a registration needs.
    pub(super) fn snapshot(
        &self,
        counters: &mut Vec<Arc<CounterCell>>,
        gauges: &mut Vec<Arc<GaugeCell>>,
        histograms: &mut Vec<Arc<HistogramCell>>,
    ) {
        fn copy<C>(table: &RwLock<Table<C>>, into: &mut Vec<Arc<C>>) {
            into.clear();
            into.extend(table.read().cells.iter().cloned());
        }
        copy(&self.counters, counters);
        copy(&self.gauges, gauges);
        copy(&self.histograms, histograms);
    }

    /// The cell of `key`, made (with its series, outside the lock) if it is new.
    /// `make` also returns the line names the cell writes.
    fn get_or_add<C>(
        &self,
        table: &RwLock<Table<C>>,
        key: &Key,
        make: impl FnOnce(Series) -> (C, Vec<String>),
    ) -> Arc<C> {
        {
            let table = table.read();
            if let Some(&i) = table.index.get(key) {
                return Arc::clone(&table.cells[i]);
            }
        }
        let (cell, ids) = make(self.naming.series(key));
        let cell = Arc::new(cell);
        {
            let mut table = table.write();
            if let Some(&i) = table.index.get(key) {
                return Arc::clone(&table.cells[i]);
            }
            let i = table.cells.len();
            table.cells.push(Arc::clone(&cell));
            table.index.insert(key.clone(), i);
        }
        self.note_written(key, ids);
        cell
    }

    /// Remembers the names a new key writes, and warns (with no lock held) about a name
    /// another key writes too.
    fn note_written(&self, key: &Key, ids: Vec<String>) {
        let mut clash = None;
        {
            let mut written = self.written.lock();
            for id in ids {
                match written.entry(id.into_boxed_str()) {
                    Entry::Occupied(other) => {
                        clash.get_or_insert_with(|| (other.key().to_string(), other.get().clone()));
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(key.to_string());
                    }
                }
            }
        }
        if let Some((name, other)) = clash {
            report!(
                Warn,
                "metrics {key} and {other} are both written as {name}: Carbon keeps one \
                 value per time slot, so one of them is lost"
            );
        }
    }
}
