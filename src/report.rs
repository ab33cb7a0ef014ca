//! Logging that cannot hang, recurse or kill a thread, and its rate limit.
//!
//! Users count log records as metrics: their logger may call `graphyte::send`, on any thread,
//! the worker's included. So graphyte calls `log` only with no lock held, skips a line that
//! would be logged from inside its own logging on the same thread (the logger's send failed
//! too: logging that would recurse), and survives a logger that panics.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

thread_local! {
    /// Set while this thread is inside a call to the logger made by graphyte.
    static LOGGING: Cell<bool> = const { Cell::new(false) };
}

/// Logs one line with target `graphyte`. Call it with no lock held.
pub(crate) fn log(level: log::Level, args: fmt::Arguments<'_>) {
    if level > log::max_level() {
        return;
    }
    let entered = LOGGING
        .try_with(|busy| !busy.replace(true))
        .unwrap_or(false);
    if !entered {
        return;
    }
    // A panicking logger must not take the worker (or a caller's send) down with it.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        log::log!(target: "graphyte", level, "{args}");
    }));
    let _ = LOGGING.try_with(|busy| busy.set(false));
}

/// `report!(Warn, "format", args...)`: [`log`] with format arguments.
macro_rules! report {
    ($level:ident, $($arg:tt)+) => {
        $crate::report::log(log::Level::$level, format_args!($($arg)+))
    };
}
pub(crate) use report;

/// Lets one log line through per period and counts the ones it held back. Lock-free, so
/// any thread may ask from anywhere.
#[derive(Debug)]
pub(crate) struct LogLimit {
    origin: Instant,
    period_nanos: u64,
    /// Nanoseconds after `origin` of the last line let through, plus one; 0 for none yet.
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimit {
    pub(crate) fn new(period: Duration) -> Self {
        LogLimit {
            origin: Instant::now(),
            period_nanos: nanos(period),
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(number held back since the last line)` when a line may be logged now.
    pub(crate) fn allow(&self, now: Instant) -> Option<u64> {
        let at = nanos(now.saturating_duration_since(self.origin)).saturating_add(1);
        let last = self.last.load(Relaxed);
        let due = last == 0 || at.saturating_sub(last) >= self.period_nanos;
        if due
            && self
                .last
                .compare_exchange(last, at, Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Relaxed));
        }
        self.suppressed.fetch_add(1, Relaxed);
        None
    }
}

/// The text of a panic's payload, when it has one.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::clock::later;

    #[test]
    fn log_limit_lets_one_line_through_per_period() {
        let limit = LogLimit::new(Duration::from_secs(10));
        let now = Instant::now();
        assert_eq!(limit.allow(now), Some(0));
        assert_eq!(limit.allow(now + Duration::from_secs(1)), None);
        assert_eq!(limit.allow(now + Duration::from_secs(2)), None);
        assert_eq!(limit.allow(now + Duration::from_secs(11)), Some(2));
    }

    #[test]
    fn a_log_limit_with_a_huge_period_lets_the_first_line_through_and_never_panics() {
        let limit = LogLimit::new(Duration::MAX);
        let now = Instant::now();
        assert_eq!(limit.allow(now), Some(0));
        assert_eq!(limit.allow(later(now, Duration::MAX)), None);
    }
}
