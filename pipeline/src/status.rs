//! Live counters and readiness of the processor, shared with the API (`/readyz`, freshness).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct ProcessorStatus {
    ready: AtomicBool,
    /// Events accepted (duplicates excluded).
    pub events_in: AtomicU64,
    /// Duplicates skipped.
    pub duplicates: AtomicU64,
    /// Events sent to the dead-letter topic.
    pub dead_letters: AtomicU64,
    /// Micro-batches committed.
    pub batches: AtomicU64,
    /// Profiles written.
    pub profiles_written: AtomicU64,
    /// Signals published on the signals topic.
    pub signals: AtomicU64,
    /// Messages between the committed position and the end of the assigned partitions, or -1.
    pub lag: AtomicI64,
    /// Engine clock (ms) of the last committed batch: results are complete up to it.
    pub complete_up_to_ms: AtomicI64,
}

impl ProcessorStatus {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
