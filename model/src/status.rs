//! Live counters and readiness of the processor, shared with the API (`/readyz`, freshness).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use prometheus_client::metrics::histogram::Histogram;

/// Upper bounds (seconds) of the sink-write latency buckets.
pub const SINK_LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A stage of the processor's loop, for the busy-time counters ([`ProcessorStatus::busy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for and copying the next micro-batch out of the consumer.
    Fetch,
    /// Decoding, dead-lettering and folding events into the windowed state.
    Decode,
    /// Running the engine over the contacts that are due.
    Evaluate,
    /// The durable sink write (retries included).
    Write,
    /// Publishing signals and waiting for the broker's acknowledgements.
    Publish,
    /// Waiting for dead letters and committing offsets.
    Commit,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Fetch,
        Stage::Decode,
        Stage::Evaluate,
        Stage::Write,
        Stage::Publish,
        Stage::Commit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Decode => "decode",
            Stage::Evaluate => "evaluate",
            Stage::Write => "write",
            Stage::Publish => "publish",
            Stage::Commit => "commit",
        }
    }
}

#[derive(Debug)]
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
    /// Lag per input partition (summed over the co-partitioned topics), as last measured.
    pub lag_by_partition: Mutex<BTreeMap<i32, i64>>,
    /// Seconds per durable micro-batch write (retries included).
    pub sink_latency: Histogram,
    /// Nanoseconds spent in each [`Stage`] (indexed like [`Stage::ALL`]). Stages of different
    /// batches overlap, so the sum can exceed the wall-clock time.
    busy_nanos: [AtomicU64; 6],
}

impl Default for ProcessorStatus {
    fn default() -> Self {
        Self {
            ready: AtomicBool::default(),
            events_in: AtomicU64::default(),
            duplicates: AtomicU64::default(),
            dead_letters: AtomicU64::default(),
            batches: AtomicU64::default(),
            profiles_written: AtomicU64::default(),
            signals: AtomicU64::default(),
            lag: AtomicI64::new(-1),
            complete_up_to_ms: AtomicI64::default(),
            lag_by_partition: Mutex::default(),
            sink_latency: Histogram::new(SINK_LATENCY_BUCKETS),
            busy_nanos: Default::default(),
        }
    }
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

    /// Adds the time since `started` to `stage`'s busy time.
    pub fn busy_since(&self, stage: Stage, started: Instant) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.busy_nanos[stage as usize].fetch_add(nanos, Ordering::Relaxed);
    }

    /// Seconds spent in `stage` so far.
    pub fn busy(&self, stage: Stage) -> f64 {
        self.busy_nanos[stage as usize].load(Ordering::Relaxed) as f64 / 1e9
    }

    /// Records a lag measurement: the total and each partition's share.
    pub fn set_lag(&self, by_partition: BTreeMap<i32, i64>) {
        let total = if by_partition.is_empty() {
            -1
        } else {
            by_partition.values().sum()
        };
        self.lag.store(total, Ordering::Relaxed);
        *self.lag_by_partition.lock().expect("lag lock") = by_partition;
    }
}
