//! Time: the current Unix second, for stamping points at the cost of one atomic load, and
//! deadlines that saturate instead of overflowing.
//!
//! Reading the system clock costs a send more than everything else it does (about 25 ns
//! here), and Carbon keeps only whole seconds. So a small process-wide thread stores the
//! current second at each second boundary, and sends read that. The thread starts with the
//! first sender and sleeps between ticks. A point sent in the first moments of a second, before
//! the thread has woken (tens of microseconds, longer on a starved machine), is stamped with
//! the second before.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

static NOW: AtomicU32 = AtomicU32::new(0);
static TICKER: OnceLock<()> = OnceLock::new();

/// The current Unix time in whole seconds, as of the last tick.
#[inline]
pub(crate) fn now_secs() -> u32 {
    NOW.load(Ordering::Relaxed)
}

/// Sets the clock and starts its ticking thread, once per process. Called when a sender is
/// built, so `now_secs` is right from the first send.
pub(crate) fn start() {
    TICKER.get_or_init(|| {
        let (secs, _) = system_now();
        NOW.store(secs, Ordering::Relaxed);
        let spawned = thread::Builder::new()
            .name("graphyte-clock".into())
            .spawn(tick);
        if let Err(err) = spawned {
            log::error!(target: "graphyte", "cannot start the clock thread ({err}); timestamps will not advance");
        }
    });
}

fn tick() {
    loop {
        let (secs, into_second) = system_now();
        NOW.store(secs, Ordering::Relaxed);
        // Wake just past the next boundary.
        thread::sleep(Duration::from_secs(1) - into_second + Duration::from_micros(50));
    }
}

/// The system clock as (whole seconds, time into the current second).
fn system_now() -> (u32, Duration) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let whole = Duration::from_secs(since_epoch.as_secs());
    (since_epoch.as_secs() as u32, since_epoch - whole)
}

/// `from + by`, saturating at a moment a century away instead of overflowing: a huge
/// timeout, interval or backoff means "practically never", not a panic.
pub(crate) fn later(from: Instant, by: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    from.checked_add(by.min(CENTURY))
        .or_else(|| from.checked_add(Duration::from_secs(24 * 3600)))
        .unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_saturates_instead_of_overflowing() {
        let now = Instant::now();
        assert!(later(now, Duration::MAX) > later(now, Duration::from_secs(3600)));
        assert_eq!(
            later(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }

    #[test]
    fn the_clock_follows_the_system_clock_to_the_second() {
        start();
        let system = |_: ()| system_now().0;
        let (before, now, after) = (system(()), now_secs(), system(()));
        // Allow one tick of lag at a second boundary.
        assert!(
            before.saturating_sub(1) <= now && now <= after,
            "{before} {now} {after}"
        );
    }
}
