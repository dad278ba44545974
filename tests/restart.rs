//! Stop the processor mid-stream and start it again: the final profiles equal an uninterrupted
//! run's, and every event is stored exactly once. A stop requested while it is still starting is
//! a clean stop too.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::views::{profiles, stored_event_counts};
use common::*;
use keyflow::demo::generator::{generate, DemoSpec};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_processor_rides_out_a_broker_restart_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let first_broker = broker(dir.path(), &mut cfg).await;
    cfg.processing.batch_max_events = 40;
    let (_, clock) = clock("2026-11-20T12:00:00Z");
    let spec = DemoSpec {
        seed: 13,
        businesses: 2,
        contacts_per_business: 60,
        history_days: 30,
        bad_ratio: 0.0,
        activity_scale: 1,
    };
    let stream = generate(&spec, t("2026-11-20T12:00:00Z"));
    let total = stream.len() as u64;
    let (first, rest) = stream.split_at(stream.len() / 2);
    let bootstrap = cfg.brokers.clone().unwrap();
    keyflow::demo::produce_all(
        &keyflow::demo::producer(&bootstrap).unwrap(),
        &cfg.topics,
        first,
    )
    .await
    .unwrap();
    let run = keyflow::run::start(&cfg, clock.clone()).await.unwrap();
    let status = run.status.clone();
    wait_for(120, "a quarter of the stream", || {
        status.events_in.load(Ordering::Relaxed) >= total / 4
    })
    .await;

    let (addr, db) = (first_broker.addr(), first_broker.db_path().to_owned());
    first_broker.stop().await;
    let stopped_at = status.events_in.load(Ordering::Relaxed);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let _second_broker = pipeline::kafka::broker::EmbeddedBroker::start(addr, &db)
        .await
        .unwrap();
    let restarted = std::time::Instant::now();
    keyflow::demo::produce_all(
        &keyflow::demo::producer(&bootstrap).unwrap(),
        &cfg.topics,
        rest,
    )
    .await
    .unwrap();
    wait_for(180, "every event after the broker restart", || {
        status.events_in.load(Ordering::Relaxed) >= total
    })
    .await;
    println!(
        "broker restart: down 3 s at {stopped_at} of {total} events; the rest processed {:.1} s \
         after it came back ({} replayed as duplicates)",
        restarted.elapsed().as_secs_f64(),
        status.duplicates.load(Ordering::Relaxed)
    );
    assert_eq!(
        status.events_in.load(Ordering::Relaxed),
        total,
        "nothing counted twice"
    );
    assert_eq!(
        stored_event_counts(run.embedded()).await,
        (total as i64, total as i64)
    );

    let mut clean = cfg.clone();
    clean.data_dir = dir.path().join("clean");
    clean.api_addr = free_addr();
    clean.processing.group_id = format!("clean-{}", uuid_like());
    let reference = keyflow::run::start(&clean, clock).await.unwrap();
    let ref_status = reference.status.clone();
    wait_for(120, "the reference run", || {
        ref_status.events_in.load(Ordering::Relaxed) == total
    })
    .await;
    assert_eq!(
        profiles(run.embedded()),
        profiles(reference.embedded()),
        "final profiles equal a run that never saw the broker go away"
    );
    reference.stop().await.unwrap();
    run.stop().await.unwrap();
}

/// SIGTERM while `keyflow run` is still starting (connecting, creating topics, recovering) is a
/// clean stop once the start is done, never a death by the signal's default action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_start_up_is_a_clean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = config(dir.path());
    let _broker = broker(dir.path(), &mut base).await;
    let mut during_start = 0;
    for delay_ms in [0, 5, 10, 30, 200] {
        let mut cfg = base.clone();
        cfg.data_dir = dir.path().join(format!("term-{delay_ms}"));
        cfg.api_addr = free_addr();
        cfg.processing.group_id = format!("term-{}", uuid_like());
        let mut p = common::child::spawn(&cfg, "term");
        p.wait_for_log("KeyFlow starting", 30);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let running = p.is_running();
        during_start += usize::from(!running);
        // Panics unless the exit is a success.
        p.terminate();
        println!("SIGTERM {delay_ms} ms into the start (up yet: {running}): clean exit");
    }
    assert!(
        during_start > 0,
        "at least one SIGTERM lands during the start"
    );
}
