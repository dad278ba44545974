//! Faults the processor must survive, against the real embedded broker and ClickHouse:
//! SIGKILL of the processor process at ten random points of a long stream, two processors in
//! one consumer group sharing six partitions until one dies, and a backlog drained while the
//! API answers. Each compares what is left with a clean run: nothing lost, nothing counted
//! twice. The figures they print are recorded in docs/RELIABILITY.md.
//!
//! The tests run one at a time (a shared lock): they time rebalances and drains on two cores.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::child::{
    self, committed, end_offsets, spawn, wait_committed, wait_drained, ProcessorProcess,
};
use common::views::{self, event_counts, profiles, signal_state, stored_event_counts, view};
use common::*;
use keyflow::config::Config;
use keyflow::demo::generator::{generate, DemoMessage, DemoSpec};
use pipeline::kafka::{client_config, topics};
use rand::{Rng, SeedableRng};
use sinks::store::EmbeddedStore;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where a run writes its results.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Store {
    Embedded,
    ClickHouse,
}

/// The demo stream with merges spread through it: in each business, about one contact in six
/// is merged into another, a third of those survivors are merged on in turn (chains of two), and
/// the keys hash to any partition, so most merges cross partitions. Each merge goes in at a
/// random point of the stream, before or after the merged contact's own events.
fn stream(seed: u64, businesses: usize, contacts: usize) -> Vec<DemoMessage> {
    let spec = DemoSpec {
        seed,
        businesses,
        contacts_per_business: contacts,
        history_days: 30,
        bad_ratio: 0.0,
        activity_scale: 1,
    };
    let mut events = generate(&spec, t(child::FROZEN_AT));
    let mut by_business: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in &events {
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let ids = by_business
            .entry(v["business_id"].as_str().unwrap().to_owned())
            .or_default();
        let c = v["contact_id"].as_str().unwrap().to_owned();
        if !ids.contains(&c) {
            ids.push(c);
        }
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut merges = Vec::new();
    for (business, ids) in &by_business {
        for (k, trio) in ids.chunks_exact(3).enumerate().filter(|(k, _)| k % 2 == 0) {
            // trio[1] into trio[0]; for every third, trio[0] into trio[2] after it.
            let mut pairs = vec![(&trio[0], &trio[1])];
            if k % 3 == 0 {
                pairs.push((&trio[2], &trio[0]));
            }
            for (survivor, merged) in pairs {
                merges.push((business.clone(), survivor.clone(), merged.clone()));
            }
        }
    }
    let n = merges.len();
    for (i, (business, survivor, merged)) in merges.into_iter().enumerate() {
        // Spread out: each merge after a floor that rises through the stream.
        let lo = i * events.len() / (n + 1);
        let at = rng.random_range(lo..events.len().max(lo + 1));
        let when = events[at.min(events.len() - 1)].occurred_at.to_rfc3339();
        let merge = msg(
            &format!("merge-{business}-{survivor}-{merged}"),
            &business,
            &survivor,
            &when,
            pipeline::event::Payload::ContactMerged(pipeline::event::ContactMerged {
                merged_contact_id: merged,
            }),
        );
        events.insert(at, merge);
    }
    events
}

/// A run's own configuration over the shared broker: data directory, group, signals topic
/// (created here) and, for ClickHouse, a database of its own.
async fn run_config(base: &Config, dir: &std::path::Path, name: &str, store: Store) -> Config {
    let mut cfg = base.clone();
    cfg.data_dir = dir.join(name);
    cfg.api_addr = free_addr();
    cfg.processing.group_id = format!("{name}-{}", uuid_like());
    cfg.topics.signals = format!("signals.{name}");
    if store == Store::ClickHouse {
        cfg.clickhouse = clickhouse();
    }
    let bootstrap = cfg.brokers.clone().unwrap();
    topics::ensure_topics(&client_config(&bootstrap, &cfg.kafka), &cfg.topics)
        .await
        .unwrap();
    cfg
}

/// Runs a processor process over the whole input and stops it cleanly once everything is
/// committed, what merges forwarded between partitions included.
async fn run_to_end(cfg: &Config, name: &str, total: i64) {
    let bootstrap = cfg.brokers.clone().unwrap();
    let mut p = spawn(cfg, name);
    wait_drained(&mut p, &bootstrap, cfg, total, 300).await;
    p.stop();
}

/// What a run left behind, compared between runs.
#[derive(Debug, PartialEq)]
enum Outcome {
    ClickHouse(Vec<views::ViewRow>, (u64, u64)),
    Embedded(BTreeMap<(String, String), u64>, (i64, i64)),
}

async fn outcome(cfg: &Config, store: Store) -> Outcome {
    match store {
        Store::ClickHouse => {
            let ch = ch_client(&cfg.clickhouse);
            Outcome::ClickHouse(view(&ch).await, event_counts(&ch).await)
        }
        Store::Embedded => {
            let s = EmbeddedStore::open(cfg.data_dir.join("store")).unwrap();
            Outcome::Embedded(profiles(&s), stored_event_counts(&s).await)
        }
    }
}

/// What differs between two runs' results, contact by contact (the embedded store's profiles
/// in full, for the first few), so a failure shows the fault and not only that there is one.
fn differences(want: &Outcome, got: &Outcome, clean: &Config, cut: &Config) -> String {
    let (Outcome::Embedded(want, _), Outcome::Embedded(got, _)) = (want, got) else {
        return format!("clean run: {want:?}\nkilled run: {got:?}");
    };
    let keys: Vec<_> = want
        .keys()
        .chain(got.keys())
        .filter(|k| want.get(*k) != got.get(*k))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let full = |cfg: &Config, key: &(String, String)| {
        let s = EmbeddedStore::open(cfg.data_dir.join("store")).unwrap();
        s.partitions()
            .unwrap()
            .into_iter()
            .flat_map(|p| s.latest_profiles(p).unwrap())
            .find(|p| p.business_id == key.0 && p.contact_id == key.1)
            .map(|p| serde_json::to_string(&p).unwrap())
            .unwrap_or_else(|| "(none)".into())
    };
    let mut out = format!("{} contacts differ: {keys:?}\n", keys.len());
    for key in keys.iter().take(4) {
        out += &format!(
            "{key:?}\n  clean:  {}\n  killed: {}\n",
            full(clean, key),
            full(cut, key)
        );
    }
    out
}

async fn sigkill_at_ten_points(store: Store) {
    let _serial = SERIAL.lock().await;
    let dir = KeptOnFailure::new();
    let mut base = config(dir.path());
    let _broker = broker(dir.path(), &mut base).await;
    base.processing.batch_max_events = 50;
    // A killed member stays in the group until its session expires; keep restarts quick.
    base.kafka
        .insert("session.timeout.ms".into(), "6000".into());
    base.processing.stall_after_ms = 10_000;
    let bootstrap = base.brokers.clone().unwrap();
    let events = stream(21, 2, 100);
    let producer = keyflow::demo::producer(&bootstrap).unwrap();
    keyflow::demo::produce_all(&producer, &base.topics, &events)
        .await
        .unwrap();
    let total = end_offsets(&bootstrap, &base.topics).await;
    assert_eq!(total, events.len() as i64);

    let clean = run_config(&base, dir.path(), "clean", store).await;
    run_to_end(&clean, "clean", total).await;

    // The killed run reads input topics of its own, fed as the kills go: each child starts on a
    // backlog, is killed while more events keep arriving, and the stream's last events are fed
    // only after the last kill. Every kill lands mid-stream by construction, however fast a
    // batch is (a 50-event batch takes a few milliseconds).
    let mut cut = base.clone();
    for (topic, base_topic) in [
        (&mut cut.topics.contacts, &base.topics.contacts),
        (&mut cut.topics.invoices, &base.topics.invoices),
        (&mut cut.topics.bookings, &base.topics.bookings),
        (&mut cut.topics.tasks, &base.topics.tasks),
        (&mut cut.topics.dlq, &base.topics.dlq),
    ] {
        *topic = format!("killed.{base_topic}");
    }
    let cut = run_config(&cut, dir.path(), "killed", store).await;
    let group = cut.processing.group_id.clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let n = events.len();
    let mut ends: Vec<usize> = (0..10)
        .map(|_| (rng.random_range(0.05..0.95) * n as f64) as usize)
        .collect();
    ends.sort();
    // Each child needs a backlog of at least one event to show it is working.
    ends.dedup_by(|later, earlier| *later < *earlier + 2);
    let started = Instant::now();
    let mut kills = Vec::new();
    let mut fed = 0;
    for (k, &end) in ends.iter().enumerate() {
        keyflow::demo::produce_all(&producer, &cut.topics, &events[fed..end])
            .await
            .unwrap();
        fed = end;
        let from = committed(&bootstrap, &group, &cut.topics).await;
        let mut p = spawn(&cut, "killed");
        wait_committed(&mut p, &bootstrap, &group, &cut.topics, from + 1, 180).await;
        // Live events, up to halfway to the next kill point, ten every 5 ms while it works.
        let live_end = (end + ends.get(k + 1).copied().unwrap_or(n)) / 2;
        let live = {
            let (producer, topics) = (producer.clone(), cut.topics.clone());
            let live = events[fed..live_end].to_vec();
            tokio::spawn(async move {
                for chunk in live.chunks(10) {
                    keyflow::demo::produce_all(&producer, &topics, chunk)
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        // Somewhere inside the next batches: mid-evaluation, mid-write or before the commit.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..40))).await;
        p.kill();
        kills.push(committed(&bootstrap, &group, &cut.topics).await);
        live.await.unwrap();
        fed = live_end;
    }
    keyflow::demo::produce_all(&producer, &cut.topics, &events[fed..])
        .await
        .unwrap();
    assert_eq!(end_offsets(&bootstrap, &cut.topics).await, total);
    run_to_end(&cut, "killed", total).await;
    println!(
        "{store:?}: {total} events, SIGKILL at committed offsets {kills:?}; \
         {} restarts and the rest in {:.1} s",
        kills.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        kills.len() >= 9 && kills.iter().all(|&k| k < total),
        "every kill lands mid-stream: {kills:?}"
    );

    let want = outcome(&clean, store).await;
    let got = outcome(&cut, store).await;
    match &got {
        Outcome::ClickHouse(_, counts) => {
            assert_eq!(*counts, (total as u64, total as u64), "0 lost, 0 doubled")
        }
        Outcome::Embedded(_, counts) => assert_eq!(*counts, (total, total), "0 lost, 0 doubled"),
    }
    assert!(
        got == want,
        "results equal the clean run's:\n{}",
        differences(&want, &got, &clean, &cut)
    );

    let (want_signals, clean_repeats) =
        signal_state(&read_signals(&bootstrap, &clean.topics.signals).await);
    let (got_signals, repeats) = signal_state(&read_signals(&bootstrap, &cut.topics.signals).await);
    println!(
        "{store:?}: signals: {} open states and {} prompts in both runs; \
         {repeats} republished with their id after kills (clean run: {clean_repeats})",
        want_signals.on.len(),
        want_signals.prompts.len()
    );
    assert_eq!(clean_repeats, 0);
    assert!(!want_signals.prompts.is_empty() && !want_signals.on.is_empty());
    let missing: Vec<_> = want_signals.on.difference(&got_signals.on).collect();
    let extra: Vec<_> = got_signals.on.difference(&want_signals.on).collect();
    let lost_prompts: Vec<_> = want_signals
        .prompts
        .difference(&got_signals.prompts)
        .collect();
    let extra_prompts = got_signals
        .prompts
        .difference(&want_signals.prompts)
        .count();
    assert!(
        missing.is_empty() && extra.is_empty() && lost_prompts.is_empty() && extra_prompts == 0,
        "signals leave the clean run's state: missing {} {:?}, extra {} {:?}, prompts lost {} \
         {:?}, prompts extra {extra_prompts}",
        missing.len(),
        &missing[..missing.len().min(5)],
        extra.len(),
        &extra[..extra.len().min(5)],
        lost_prompts.len(),
        &lost_prompts[..lost_prompts.len().min(5)],
    );
    if store == Store::ClickHouse {
        drop_database(&clean.clickhouse).await;
        drop_database(&cut.clickhouse).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_ten_points_leaves_clickhouse_as_a_clean_run() {
    sigkill_at_ten_points(Store::ClickHouse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_ten_points_leaves_the_embedded_store_as_a_clean_run() {
    sigkill_at_ten_points(Store::Embedded).await;
}

/// Waits until `p`'s log reports an assignment that `ok` accepts.
async fn wait_assigned(p: &mut ProcessorProcess, what: &str, ok: impl Fn(&[i32]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ok(&p.assigned()) {
        p.assert_alive();
        assert!(
            Instant::now() < deadline,
            "{what}: {} has {:?}\n{}",
            p.name,
            p.assigned(),
            p.tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processors_share_six_partitions_and_one_takes_over_when_the_other_dies() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut base = config(dir.path());
    base.topics.partitions = 6;
    let _broker = broker(dir.path(), &mut base).await;
    base.processing.batch_max_events = 100;
    base.kafka
        .insert("session.timeout.ms".into(), "6000".into());
    base.processing.stall_after_ms = 10_000;
    let bootstrap = base.brokers.clone().unwrap();
    let events = stream(31, 3, 80);
    let (first, rest) = events.split_at(events.len() / 2);
    let producer = keyflow::demo::producer(&bootstrap).unwrap();
    keyflow::demo::produce_all(&producer, &base.topics, first)
        .await
        .unwrap();

    let mut shared = run_config(&base, dir.path(), "group", Store::ClickHouse).await;
    // Scale out: a second processor joins a group whose first member is already working.
    // (Two members joining Tansu 0.6 at the same instant can leave one of them without
    // partitions: docs/RELIABILITY.md.)
    let mut a = spawn(&shared, "a");
    let group = shared.processing.group_id.clone();
    wait_assigned(&mut a, "a alone", |ps| ps.len() == 6).await;
    wait_committed(&mut a, &bootstrap, &group, &shared.topics, 1, 120).await;
    shared.api_addr = free_addr();
    shared.data_dir = dir.path().join("group-b");
    let mut b = spawn(&shared, "b");
    wait_assigned(&mut b, "sharing", |ps| !ps.is_empty() && ps.len() < 6).await;
    wait_assigned(&mut a, "sharing", |ps| !ps.is_empty() && ps.len() < 6).await;
    let (pa, pb) = (a.assigned(), b.assigned());
    let mut all: Vec<i32> = pa.iter().chain(&pb).copied().collect();
    all.sort();
    assert_eq!(
        all,
        (0..6).collect::<Vec<_>>(),
        "a {pa:?} and b {pb:?} split the partitions"
    );
    wait_committed(
        &mut a,
        &bootstrap,
        &group,
        &shared.topics,
        first.len() as i64 / 2,
        180,
    )
    .await;

    a.kill();
    let killed = Instant::now();
    keyflow::demo::produce_all(&producer, &base.topics, rest)
        .await
        .unwrap();
    let total = end_offsets(&bootstrap, &base.topics).await;
    wait_assigned(&mut b, "taking over", |ps| ps.len() == 6).await;
    let took_over = killed.elapsed();
    wait_drained(&mut b, &bootstrap, &shared, total, 300).await;
    let log = std::fs::read_to_string(&b.log).unwrap();
    for p in &pa {
        assert!(
            log.lines()
                .any(|l| l.contains("partition state rebuilt")
                    && l.contains(&format!("partition={p} "))),
            "b rebuilt partition {p} of a\n{}",
            b.tail()
        );
    }
    b.stop();
    println!(
        "scale-out: a had {pa:?}, b had {pb:?}; b held all 6 partitions {:.1} s after a's SIGKILL \
         (session timeout 6 s); {total} events",
        took_over.as_secs_f64()
    );

    let clean = run_config(&base, dir.path(), "single", Store::ClickHouse).await;
    run_to_end(&clean, "single", total).await;
    let ch = ch_client(&shared.clickhouse);
    assert_eq!(
        event_counts(&ch).await,
        (total as u64, total as u64),
        "0 lost, 0 doubled"
    );
    assert!(
        view(&ch).await == view(&ch_client(&clean.clickhouse)).await,
        "two processors and a takeover leave the single processor's results"
    );
    drop_database(&clean.clickhouse).await;
    drop_database(&shared.clickhouse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_drains_while_the_api_answers() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let _broker = broker(dir.path(), &mut cfg).await;
    let bootstrap = cfg.brokers.clone().unwrap();
    let events = stream(41, 4, 600);
    let producer = keyflow::demo::producer(&bootstrap).unwrap();
    keyflow::demo::produce_all(&producer, &cfg.topics, &events)
        .await
        .unwrap();
    let total = events.len() as u64;

    // The processor in this process, as `keyflow run` wires it: the API shares its runtime.
    let (_, clock) = clock(child::FROZEN_AT);
    let run = keyflow::run::start(&cfg, clock).await.unwrap();
    let status = run.status.clone();
    let url = format!("http://{}/v1/businesses", run.api_addr);
    let started = Instant::now();
    let mut latencies = Vec::new();
    let handled = || {
        use pipeline::status::ProcessorStatus as S;
        S::get(&status.events_in) + S::get(&status.duplicates) + S::get(&status.dead_letters)
    };
    while handled() < total {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "drained {} of {total} in 300 s",
            handled()
        );
        let t0 = Instant::now();
        let (code, _) = get_json(&url).await;
        latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(code, 200, "the API answers during the drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = started.elapsed();
    latencies.sort_by(f64::total_cmp);
    let q = |f: f64| latencies[((latencies.len() as f64 * f) as usize).min(latencies.len() - 1)];
    println!(
        "backlog: {total} events drained in {:.1} s ({:.0} events/s); {} API requests during \
         the drain: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        drained.as_secs_f64(),
        total as f64 / drained.as_secs_f64(),
        latencies.len(),
        q(0.5),
        q(0.99),
        latencies.last().unwrap()
    );
    assert_eq!(
        pipeline::status::ProcessorStatus::get(&status.events_in),
        total
    );
    run.stop().await.unwrap();
}
