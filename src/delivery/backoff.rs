//! Capped exponential backoff between failed attempts.

use std::time::{Duration, Instant};

use crate::point::clock::later;

pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    delay: Duration,
    failures: u64,
    /// When the next attempt may be made, after a failure.
    pub(crate) retry_at: Option<Instant>,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            delay: min,
            failures: 0,
            retry_at: None,
        }
    }

    pub(crate) fn failed(&mut self, now: Instant) {
        self.failures += 1;
        self.retry_at = Some(later(now, self.delay));
        self.delay = self.delay.saturating_mul(2).min(self.max);
    }

    /// Resets; returns how many failures preceded this success, if any.
    pub(crate) fn succeeded(&mut self) -> Option<u64> {
        self.retry_at = None;
        self.delay = self.min;
        let failures = std::mem::take(&mut self.failures);
        (failures > 0).then_some(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));
        let now = Instant::now();
        let delays: Vec<_> = (0..4)
            .map(|_| {
                backoff.failed(now);
                backoff.retry_at.unwrap() - now
            })
            .collect();
        assert_eq!(delays, [100, 200, 300, 300].map(Duration::from_millis));
        assert_eq!(backoff.succeeded(), Some(4));
        assert_eq!(backoff.retry_at, None);
    }

    #[test]
    fn a_backoff_of_duration_max_saturates_instead_of_overflowing() {
        let mut backoff = Backoff::new(Duration::MAX, Duration::MAX);
        let now = Instant::now();
        backoff.failed(now);
        backoff.failed(now);
        assert!(backoff.retry_at.unwrap() > now + Duration::from_secs(3600));
    }
}
