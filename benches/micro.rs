//! Criterion micro-benchmarks of KeyFlow's hot paths, on the demo generator's stream (fixed seed
//! and clock, so every run measures the same inputs):
//!
//! - `decode`: [`Decoder::decode`] (parse, validate, normalise) of one event, over a sample of
//!   4,096 demo payloads spread across the whole stream (all event types, the demo's share of
//!   malformed ones included); throughput = events.
//! - `score`: one micro-batch through [`Engine::evaluate`] (Arrow inputs, every metric SQL file
//!   through DataFusion, profiles out) for 500 and 5,000 contacts of a partition holding the
//!   state of 10,000 demo contacts, on a current-thread tokio runtime; throughput = contacts.
//! - `search`: [`api::search::parse`] of realistic Cockpit queries, and parse + [`matches`] over
//!   the 10,000 profiles the engine produced; throughput = profiles scanned.
//!
//! The fixture (generate, decode, fold, evaluate everything once) is built once for all groups
//! and takes a few seconds in release. Run with:
//!
//! ```text
//! cargo bench --bench micro                 # everything, a few minutes on 2 cores
//! cargo bench --bench micro -- search/      # one group (criterion filter)
//! ```
//!
//! `cargo test --release --all-targets` runs this binary in test mode: each benchmark once.

use std::hint::black_box;
use std::time::{Duration, Instant};

use api::search::{matches, parse};
use chrono::{DateTime, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use keyflow::demo::generator::{generate, DemoMessage, DemoSpec};
use pipeline::config::{IngestConfig, ScoringConfig};
use pipeline::decode::Decoder;
use pipeline::engine::Engine;
use pipeline::profile::ContactProfile;
use pipeline::state::{ContactKey, PartitionState};
use tokio::runtime::Runtime;

/// Contacts in the fixture's partition (and so profiles searched).
const CONTACTS: usize = 10_000;
const BUSINESSES: usize = 4;
/// Payloads in one `decode` iteration.
const DECODE_SAMPLE: usize = 4_096;
/// Micro-batch sizes for `score`.
const BATCHES: [usize; 2] = [500, 5_000];
/// Realistic Cockpit queries, each with the short name its benchmarks go by.
const QUERIES: [(&str, &str); 3] = [
    ("metric", "/leadScore>70"),
    ("segment_text", "#segment:silver anna"),
    (
        "three_filters",
        "/leadScore>=40 #tag:vip /outstandingBalance>0",
    ),
];

/// The clock of the whole fixture: the stream is generated, and every metric evaluated, at it.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("a valid instant")
}

/// Inputs shared by every group, built once.
struct Fixture {
    decoder: Decoder,
    /// Messages spread evenly across the stream, for `decode`.
    sample: Vec<DemoMessage>,
    engine: Engine,
    /// One partition holding every demo contact.
    state: PartitionState,
    /// Every contact key, sorted (so batch membership does not depend on hash order).
    keys: Vec<ContactKey>,
    /// Every contact's profile at `now`, for `search`.
    profiles: Vec<ContactProfile>,
    rt: Runtime,
}

impl Fixture {
    fn build() -> Self {
        let started = Instant::now();
        let spec = DemoSpec {
            seed: 7,
            businesses: BUSINESSES,
            contacts_per_business: CONTACTS / BUSINESSES,
            ..DemoSpec::default()
        };
        let messages = generate(&spec, now());
        let ingest = IngestConfig::default();
        // As the processor builds it (src/run.rs).
        let decoder = Decoder::new(ingest.sources.iter().cloned(), ingest.max_event_bytes);

        let mut state = PartitionState::default();
        let mut rejected = 0usize;
        for m in &messages {
            match decoder.decode(Some(m.key.as_bytes()), &m.payload) {
                Ok(ev) => {
                    state.apply(&ev);
                }
                Err(_) => rejected += 1,
            }
        }
        let stride = (messages.len() / DECODE_SAMPLE).max(1);
        let sample: Vec<DemoMessage> = messages
            .iter()
            .step_by(stride)
            .take(DECODE_SAMPLE)
            .cloned()
            .collect();

        let mut keys: Vec<ContactKey> = state.contacts.keys().cloned().collect();
        keys.sort();
        let engine = Engine::new(ScoringConfig::default());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let t = Instant::now();
        let profiles = rt
            .block_on(engine.evaluate(&mut state, &keys, now().timestamp_millis(), 0))
            .expect("the demo state evaluates");
        eprintln!(
            "fixture: {} messages ({rejected} rejected), {} contacts, {} profiles; \
             first full evaluation {:.2} s; built in {:.2} s",
            messages.len(),
            state.len(),
            profiles.len(),
            t.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64(),
        );
        Self {
            decoder,
            sample,
            engine,
            state,
            keys,
            profiles,
            rt,
        }
    }
}

/// `n` keys spread evenly over the sorted keys (so every business is represented).
fn spread(keys: &[ContactKey], n: usize) -> Vec<ContactKey> {
    assert!(keys.len() >= n, "{} contacts, batch of {n}", keys.len());
    let step = keys.len() / n;
    keys.iter().step_by(step).take(n).cloned().collect()
}

fn bench_decode(c: &mut Criterion, fx: &Fixture) {
    let accepted = fx
        .sample
        .iter()
        .filter(|m| {
            fx.decoder
                .decode(Some(m.key.as_bytes()), &m.payload)
                .is_ok()
        })
        .count();
    let bytes: usize = fx.sample.iter().map(|m| m.payload.len()).sum();
    eprintln!(
        "decode: {} payloads ({accepted} accepted), mean {} bytes",
        fx.sample.len(),
        bytes / fx.sample.len().max(1)
    );
    let mut g = c.benchmark_group("decode");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(fx.sample.len() as u64));
    g.bench_function("event", |b| {
        b.iter(|| {
            for m in &fx.sample {
                let _ = black_box(fx.decoder.decode(Some(m.key.as_bytes()), &m.payload));
            }
        })
    });
    g.finish();
}

fn bench_score(c: &mut Criterion, fx: &mut Fixture) {
    let now_ms = now().timestamp_millis();
    let mut g = c.benchmark_group("score");
    // One iteration is tens to hundreds of milliseconds: the same count per sample.
    g.sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    for n in BATCHES {
        let keys = spread(&fx.keys, n);
        g.throughput(Throughput::Elements(n as u64));
        let (engine, rt, state) = (&fx.engine, &fx.rt, &mut fx.state);
        g.bench_with_input(BenchmarkId::new("evaluate", n), &keys, |b, keys| {
            // Re-evaluating the same contacts at the same instant does the same work each time
            // (pruning is idempotent; only the timers are rescheduled).
            b.iter(|| {
                let profiles = rt
                    .block_on(engine.evaluate(state, keys, now_ms, 0))
                    .expect("evaluation succeeds");
                assert_eq!(profiles.len(), keys.len());
                black_box(profiles)
            })
        });
    }
    g.finish();
}

fn bench_search(c: &mut Criterion, fx: &Fixture) {
    for (name, q) in QUERIES {
        let terms = parse(q).expect("a valid query");
        let hits = fx.profiles.iter().filter(|p| matches(&terms, p)).count();
        eprintln!(
            "search {name}: {q:?} matches {hits} of {} profiles",
            fx.profiles.len()
        );
    }
    let mut g = c.benchmark_group("search");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, q) in QUERIES {
        g.bench_with_input(BenchmarkId::new("parse", name), q, |b, q| {
            b.iter(|| parse(black_box(q)))
        });
    }
    g.throughput(Throughput::Elements(fx.profiles.len() as u64));
    for (name, q) in QUERIES {
        g.bench_with_input(BenchmarkId::new("scan", name), q, |b, q| {
            b.iter(|| {
                let terms = parse(black_box(q)).expect("a valid query");
                fx.profiles.iter().filter(|p| matches(&terms, p)).count()
            })
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut fx = Fixture::build();
    bench_decode(&mut c, &fx);
    bench_score(&mut c, &mut fx);
    bench_search(&mut c, &fx);
    c.final_summary();
}
