//! Stop the processor mid-stream and start it again: the final profiles equal an uninterrupted
//! run's, and every event is stored exactly once.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use common::*;
use datafusion::arrow::array::Int64Array;
use keyflow::demo::generator::{generate, DemoSpec};
use sinks::store::EmbeddedStore;

/// Every contact's final profile content (evaluation instant aside), by business and contact.
fn profiles(store: &EmbeddedStore) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for p in store.partitions().unwrap() {
        for pr in store.latest_profiles(p).unwrap() {
            out.insert(
                (pr.business_id.clone(), pr.contact_id.clone()),
                pr.fingerprint(),
            );
        }
    }
    out
}

async fn stored_event_counts(store: &EmbeddedStore) -> (i64, i64) {
    let b = sinks::sql::query(
        store,
        "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM events",
    )
    .await
    .unwrap();
    let col = |i: usize| {
        b[0].column(i)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    };
    (col(0), col(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_mid_stream_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = config(dir.path());
    let _broker = broker(dir.path(), &mut base).await;
    let (_, clock) = clock("2026-11-20T12:00:00Z");
    let spec = DemoSpec {
        seed: 11,
        businesses: 2,
        contacts_per_business: 60,
        history_days: 30,
        bad_ratio: 0.0,
        activity_scale: 1,
    };
    let stream = generate(
        &spec,
        chrono::DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
            .unwrap()
            .into(),
    );
    let total = stream.len() as u64;
    let producer = keyflow::demo::producer(base.brokers.as_deref().unwrap()).unwrap();
    keyflow::demo::produce_all(&producer, &base.topics, &stream)
        .await
        .unwrap();

    // Uninterrupted reference run.
    let mut clean = base.clone();
    clean.data_dir = dir.path().join("clean");
    clean.processing.group_id = format!("clean-{}", uuid_like());
    let run = keyflow::run::start(&clean, clock.clone()).await.unwrap();
    let status = run.status.clone();
    wait_for(120, "clean run to take every event", || {
        status.events_in.load(Ordering::Relaxed) == total
    })
    .await;
    wait_for(60, "clean run ready", || status.is_ready()).await;
    let expected = profiles(run.embedded());
    run.stop().await.unwrap();
    assert_eq!(expected.len(), 120);

    // Interrupted run: small batches, stopped after about a third, then started again.
    let mut cut = base.clone();
    cut.data_dir = dir.path().join("cut");
    cut.processing.group_id = format!("cut-{}", uuid_like());
    cut.processing.batch_max_events = 40;
    let run = keyflow::run::start(&cut, clock.clone()).await.unwrap();
    let status = run.status.clone();
    wait_for(120, "a third of the stream", || {
        status.events_in.load(Ordering::Relaxed) >= total / 3
    })
    .await;
    run.stop().await.unwrap();
    let first_part = status.events_in.load(Ordering::Relaxed);
    assert!(
        first_part < total,
        "stopped mid-stream ({first_part} of {total})"
    );

    let run = keyflow::run::start(&cut, clock.clone()).await.unwrap();
    let status = run.status.clone();
    wait_for(120, "the rest of the stream", || {
        first_part + status.events_in.load(Ordering::Relaxed) >= total
    })
    .await;
    wait_for(60, "restarted run ready", || status.is_ready()).await;
    assert_eq!(
        first_part + status.events_in.load(Ordering::Relaxed),
        total,
        "nothing counted twice"
    );
    assert_eq!(
        profiles(run.embedded()),
        expected,
        "final profiles equal the uninterrupted run's"
    );
    assert_eq!(
        stored_event_counts(run.embedded()).await,
        (total as i64, total as i64)
    );
    run.stop().await.unwrap();
}
