//! A clock tests move by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis_core::Clock;

/// A [`Clock`] that only moves when told to: for tests and benchmarks.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    unix_start: Duration,
    offset_ms: AtomicU64,
}

impl ManualClock {
    /// A clock reading `unix_secs` seconds since the epoch.
    #[must_use]
    pub fn at_unix(unix_secs: u64) -> Self {
        Self {
            start: Instant::now(),
            unix_start: Duration::from_secs(unix_secs),
            offset_ms: AtomicU64::new(0),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    fn offset(&self) -> Duration {
        Duration::from_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.offset()
    }
    fn unix(&self) -> Duration {
        self.unix_start + self.offset()
    }
}
