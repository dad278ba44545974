//! The engine's notion of "now". Production asks the system clock; tests and replays pin it, so
//! every time-dependent result (windows, overdue items, segments) is deterministic.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

/// Milliseconds since the Unix epoch, UTC: the engine's and the stores' instant.
pub type Ms = i64;
/// One day and one hour in [`Ms`].
pub const DAY_MS: Ms = 86_400_000;
pub const HOUR_MS: Ms = 3_600_000;

/// Something the engine asks for the current instant.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall-clock time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; clones share the same instant.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(instant: DateTime<Utc>) -> Self {
        Self(Arc::new(AtomicI64::new(instant.timestamp_millis())))
    }

    pub fn set(&self, instant: DateTime<Utc>) {
        self.0.store(instant.timestamp_millis(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).expect("clock in range")
    }
}

/// The clock shared by the engine and everything that reports its time.
pub type SharedClock = Arc<dyn Clock>;
