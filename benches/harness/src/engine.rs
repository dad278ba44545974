//! The engine alone: generated events already in memory go through exactly the processor's
//! per-batch work ([`pipeline::batch::Batch`]: decode + normalise, windowed state, every metric
//! file, the embedded store's durable write) with no broker in between. Also the rebuild of
//! state from that store, as a processor does when it is assigned a partition.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};
use pipeline::batch::{self, Batch};
use pipeline::config::{BusinessRules, IngestConfig, MetricsConfig, TopicsConfig};
use pipeline::decode::Decoder;
use pipeline::engine::{Engine, Rules};
use pipeline::sink::ResultSink;
use pipeline::state::PartitionState;
use serde::{Deserialize, Serialize};
use sinks::store::EmbeddedStore;

use super::{rss_bytes, BenchArgs};
use keyflow::demo::generator::{generate, DemoSpec};

/// The fixed instant the generated history ends at (and the engine's clock): same seed, same
/// numbers.
pub fn bench_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
        .expect("valid instant")
        .with_timezone(&Utc)
}

/// Businesses the contacts are spread over.
pub const BUSINESSES: usize = 4;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineResult {
    pub contacts: usize,
    /// Retained window as a multiple of the demo's (history and activity per contact alike).
    pub window_scale: usize,
    /// Messages fed in (including the generator's malformed ones).
    pub events: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub batches: u64,
    /// Most events per micro-batch.
    #[serde(default)]
    pub batch_events: usize,
    pub profiles_written: u64,
    pub seconds: f64,
    pub events_per_s: f64,
    /// Of `seconds`: decode + state, evaluation (all metric files).
    pub decode_seconds: f64,
    pub evaluate_seconds: f64,
    /// Store writes, busy time: each runs while the next batch is decoded and evaluated.
    pub write_seconds: f64,
    /// Of `seconds`: waiting for the previous batch's write (and the last one's).
    #[serde(default)]
    pub write_wait_seconds: f64,
    pub generate_seconds: f64,
    pub rss_generated_mb: f64,
    pub rss_end_mb: f64,
    /// (RSS at the end - RSS with the generated input in memory) / accepted events.
    pub bytes_per_retained_event: f64,
    /// The memory phase's breakdown of what the process holds at the end.
    #[serde(default)]
    pub retained: Option<Retained>,
}

/// What the engine run's process holds once the run is over, by owner: each dropped in turn
/// and the RSS read again. The memory phase runs the child with `MIMALLOC_PURGE_DELAY=0`, so a
/// free gives its pages back at once (by default mimalloc keeps them for later allocations,
/// and a drop shows in the RSS only some drops later).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Retained {
    /// The generated messages (the bench's, not the engine's).
    pub input: Held,
    /// The engine state's facts: each contact's bookings, invoices, tasks and notes.
    #[serde(default)]
    pub engine_facts: Option<Held>,
    /// The rest of every partition's windowed state (`PartitionState`).
    pub engine_state: Held,
    /// The read model's recent activity (`ProfileIndex::record`).
    pub activity: Held,
    /// The read model's current profiles and ranking (the rest of the store handle).
    pub profiles: Held,
    /// What stays: the runtime, the planned metric files, the allocator's own.
    pub rest_mb: f64,
}

/// What one owner's drop gave back.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Held {
    /// Resident pages given back to the system.
    pub rss_mb: f64,
    /// Heap bytes freed, as asked for (the harness's allocator counts them, [`crate::alloc`]):
    /// what the owner's data takes before the allocator's rounding and fragmentation.
    pub heap_mb: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RebuildResult {
    pub events: u64,
    pub contacts: u64,
    pub partitions: usize,
    /// Opening the store (cleaning up, loading the read model's profiles and activity), before
    /// the rebuild's timer starts: part of a restart's time to ready.
    #[serde(default)]
    pub open_seconds: f64,
    /// Reading the store and folding every event into state.
    pub rebuild_seconds: f64,
    pub events_per_s: f64,
    /// Then evaluating every contact once (what a processor does after a rebuild).
    pub evaluate_seconds: f64,
    pub rss_end_mb: f64,
}

/// The `child engine ...` arguments for one run.
pub fn child_args(args: &BenchArgs, contacts: usize, scale: usize, store: &Path) -> Vec<String> {
    vec![
        "engine".into(),
        "--contacts".into(),
        contacts.to_string(),
        "--scale".into(),
        scale.to_string(),
        "--seed".into(),
        args.seed.to_string(),
        "--batch-events".into(),
        args.batch_events.to_string(),
        "--store".into(),
        store.display().to_string(),
    ]
}

/// Stable partition of a key (the broker's murmur2 is not needed: any stable spread will do).
fn partition_of(key: &str, partitions: i32) -> i32 {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h % partitions as u64) as i32
}

fn mb(b: u64) -> f64 {
    b as f64 / 1024.0 / 1024.0
}

/// Rules with the retained windows scaled: interactions are kept `scale` times longer (up to
/// the longest window the rules accept, ten years, which covers the longest history here).
fn rules(scale: usize) -> anyhow::Result<Rules> {
    let mut metrics = MetricsConfig::default();
    metrics.interaction_window_days = (metrics.interaction_window_days * scale as i64).min(3650);
    Rules::new(
        BusinessRules {
            scoring: Default::default(),
            metrics,
            calendar: Default::default(),
        },
        &BTreeMap::new(),
    )
    .map_err(anyhow::Error::msg)
}

/// Generates the stream, then runs it through batches of the processor's default size.
pub async fn run_engine(
    contacts: usize,
    scale: usize,
    seed: u64,
    batch_size: usize,
    store_dir: &Path,
    retained: bool,
) -> anyhow::Result<EngineResult> {
    let spec = DemoSpec {
        seed,
        businesses: BUSINESSES,
        contacts_per_business: contacts.div_ceil(BUSINESSES),
        history_days: 30 * scale as i64,
        bad_ratio: 0.002,
        activity_scale: scale,
    };
    if retained {
        crate::alloc::count();
    }
    let now = bench_now();
    let t = Instant::now();
    let messages = generate(&spec, now);
    let generate_seconds = t.elapsed().as_secs_f64();
    println!(
        "generated {} events for {} contacts in {generate_seconds:.1} s",
        messages.len(),
        spec.businesses * spec.contacts_per_business
    );
    let rss_generated = rss_bytes();

    let ingest = IngestConfig::default();
    let decoder = Decoder::new(ingest.sources.iter().cloned(), ingest.max_event_bytes);
    let engine = Engine::with_rules(rules(scale)?);
    if store_dir.exists() {
        std::fs::remove_dir_all(store_dir)?;
    }
    let store = EmbeddedStore::open(store_dir)?;
    let partitions_n = TopicsConfig::default().partitions;
    let now_ms = now.timestamp_millis();
    let mut partitions: BTreeMap<i32, PartitionState> = (0..partitions_n)
        .map(|p| (p, PartitionState::default()))
        .collect();
    let (mut decode_s, mut eval_s, mut wait_s) = (0.0, 0.0, 0.0);
    let (mut accepted, mut rejected, mut batches, mut written) = (0u64, 0u64, 0u64, 0u64);
    let mut offsets = vec![0i64; partitions_n as usize];
    // As the processor does: a batch's outputs are remembered by the state, then written while
    // the next batch is decoded and evaluated; one write at a time, in batch order.
    let mut writing: Option<tokio::task::JoinHandle<anyhow::Result<f64>>> = None;
    let mut write_s = 0.0;
    let started = Instant::now();
    let mut last_report = Instant::now();
    for chunk in messages.chunks(batch_size) {
        let t = Instant::now();
        let mut work = Batch::default();
        for m in chunk {
            let p = partition_of(&m.key, partitions_n);
            let offset = offsets[p as usize];
            offsets[p as usize] += 1;
            match decoder.decode(Some(m.key.as_bytes()), &m.payload) {
                Ok(ev) => {
                    let state = partitions.get_mut(&p).expect("every partition");
                    work.accept(state, ev, "bench".into(), p, offset, now_ms);
                }
                Err(_) => rejected += 1,
            }
        }
        let t2 = Instant::now();
        work.evaluate(&engine, &mut partitions, now_ms).await?;
        let t3 = Instant::now();
        let outputs: Vec<_> = work
            .outputs
            .into_values()
            .filter(|o| !o.is_empty())
            .collect();
        for out in &outputs {
            written += out.profiles.len() as u64;
            batch::remember(partitions.get_mut(&out.partition).expect("known"), out);
        }
        if let Some(previous) = writing.take() {
            write_s += previous.await??;
        }
        let store = store.clone();
        writing = Some(tokio::spawn(async move {
            let t = Instant::now();
            // Every partition's write at once, as the processor's settle does.
            futures::future::try_join_all(outputs.iter().map(|out| store.write(out))).await?;
            Ok(t.elapsed().as_secs_f64())
        }));
        decode_s += (t2 - t).as_secs_f64();
        eval_s += (t3 - t2).as_secs_f64();
        // Remembering the profiles, and waiting for the previous write.
        wait_s += t3.elapsed().as_secs_f64();
        accepted += work.accepted;
        batches += 1;
        if last_report.elapsed().as_secs() >= 5 {
            last_report = Instant::now();
            let done = accepted + rejected;
            println!(
                "  {done}/{} events, {:.0} events/s",
                messages.len(),
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    if let Some(last) = writing.take() {
        let t = Instant::now();
        write_s += last.await??;
        wait_s += t.elapsed().as_secs_f64();
    }
    let seconds = started.elapsed().as_secs_f64();
    let rss_end = rss_bytes();
    let events = messages.len() as u64;
    let contacts = partitions.values().map(PartitionState::len).sum();
    let retained = retained.then(|| {
        // RSS and heap bytes before `drop`, minus the same after it.
        let mut last = (rss_bytes(), crate::alloc::live());
        let mut freed = |drop: &mut dyn FnMut()| {
            drop();
            std::thread::sleep(std::time::Duration::from_millis(200));
            let now = (rss_bytes(), crate::alloc::live());
            let (rss, heap) = std::mem::replace(&mut last, now);
            Held {
                rss_mb: mb(rss.saturating_sub(now.0)),
                heap_mb: (heap - now.1) as f64 / 1024.0 / 1024.0,
            }
        };
        use std::mem::size_of;
        println!(
            "sizes in bytes: ContactState {}, Booking {}, Invoice {}, Task {}, Activity {}, ContactProfile {}",
            size_of::<pipeline::state::ContactState>(),
            size_of::<pipeline::state::Booking>(),
            size_of::<pipeline::state::Invoice>(),
            size_of::<pipeline::state::Task>(),
            size_of::<sinks::read::Activity>(),
            size_of::<pipeline::profile::ContactProfile>(),
        );
        let parts = store.partitions().unwrap_or_default();
        let mut messages = Some(messages);
        let mut partitions = Some(partitions);
        let mut store = Some(store);
        Retained {
            input: freed(&mut || drop(messages.take())),
            engine_facts: Some(freed(&mut || {
                for state in partitions.iter_mut().flat_map(|p| p.values_mut()) {
                    for c in state.contacts.values_mut() {
                        c.bookings = Default::default();
                        c.invoices = Default::default();
                        c.tasks = Default::default();
                        c.notes = Vec::new();
                    }
                }
            })),
            engine_state: freed(&mut || drop(partitions.take())),
            activity: freed(&mut || {
                if let Some(s) = &store {
                    for &p in &parts {
                        s.index().reload_partition(p, std::iter::empty());
                    }
                }
            }),
            profiles: freed(&mut || drop(store.take())),
            rest_mb: mb(rss_bytes()),
        }
    });
    Ok(EngineResult {
        contacts,
        window_scale: scale,
        events,
        accepted,
        rejected,
        batches,
        batch_events: batch_size,
        profiles_written: written,
        seconds,
        events_per_s: events as f64 / seconds,
        decode_seconds: decode_s,
        evaluate_seconds: eval_s,
        write_seconds: write_s,
        write_wait_seconds: wait_s,
        generate_seconds,
        rss_generated_mb: mb(rss_generated),
        rss_end_mb: mb(rss_end),
        bytes_per_retained_event: rss_end.saturating_sub(rss_generated) as f64
            / accepted.max(1) as f64,
        retained,
    })
}

/// Rebuilds every partition's state from the store at `store_dir`, then evaluates every contact.
pub async fn run_rebuild(store_dir: &Path) -> anyhow::Result<RebuildResult> {
    let t = Instant::now();
    let store = EmbeddedStore::open(store_dir)?;
    let open_seconds = t.elapsed().as_secs_f64();
    let engine = Engine::with_rules(rules(1)?);
    let started = Instant::now();
    // As the processor does on an assignment: every partition recovered and folded at once.
    let loaded = futures::future::try_join_all(store.partitions()?.into_iter().map(|p| {
        let store = store.clone();
        let interactions = engine.interactions();
        async move {
            let recovered = store.recover(p).await?;
            let (events, state) = tokio::task::spawn_blocking(move || {
                (
                    recovered.events.len(),
                    PartitionState::recovered(&recovered, interactions),
                )
            })
            .await?;
            anyhow::Ok((p, events, state))
        }
    }))
    .await?;
    let mut states = BTreeMap::new();
    let mut events = 0u64;
    for (p, n, state) in loaded {
        events += n as u64;
        println!("  partition {p}: {n} events, {} contacts", state.len());
        states.insert(p, state);
    }
    let rebuild_seconds = started.elapsed().as_secs_f64();
    let contacts = states.values().map(PartitionState::len).sum::<usize>() as u64;
    let t = Instant::now();
    let mut work = Batch::default();
    work.evaluate(&engine, &mut states, bench_now().timestamp_millis())
        .await?;
    let evaluate_seconds = t.elapsed().as_secs_f64();
    Ok(RebuildResult {
        events,
        contacts,
        partitions: states.len(),
        open_seconds,
        rebuild_seconds,
        events_per_s: events as f64 / rebuild_seconds,
        evaluate_seconds,
        rss_end_mb: mb(rss_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes overlap the next batch, so the run must still end with every batch stored: the
    /// store holds each accepted event once and a profile of every contact.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_batch_is_stored_though_writes_overlap_the_next() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store_dir = dir.path().join("store");
        let r = run_engine(400, 1, 7, 500, &store_dir, false)
            .await
            .expect("run");
        assert!(r.batches > 5, "several batches, so writes overlapped");
        let store = EmbeddedStore::open(&store_dir).expect("reopen");
        let (mut events, mut profiles) = (0, 0);
        for p in store.partitions().expect("partitions") {
            let recovered = store.recover(p).await.expect("recover");
            events += recovered.events.len();
            profiles += recovered.profiles.len();
        }
        assert_eq!(events as u64, r.accepted);
        assert_eq!(profiles, r.contacts);
    }
}
