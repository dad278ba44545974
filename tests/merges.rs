//! Merges across partitions, end to end through the embedded broker: contacts placed on
//! partitions of our choosing (the producer names the partition), merges before and after the
//! merged contact's events, a chain over three partitions, late delete, update and erase of the
//! merged contact, and a restart that rebuilds every partition (the re-key topic read back)
//! and must answer exactly as before, nothing counted twice. Run with 3 and 6 partitions.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};

use crate::common::{broker, clock, config, get_json};
use keyflow::config::Config;
use pipeline::kafka::client_config;

/// One event for partition `partition` of the topic its type belongs on.
struct Placed {
    partition: i32,
    topic: &'static str,
    contact: String,
    body: Value,
}

fn ev(partition: i32, id: &str, kind: &str, contact: &str, at: &str, data: Value) -> Placed {
    let topic = match kind.split('.').next() {
        Some("booking") => "bookings",
        Some("invoice") => "invoices",
        Some("task") => "tasks",
        _ => "contacts",
    };
    Placed {
        partition,
        topic,
        contact: contact.to_owned(),
        body: json!({"event_id": id, "type": kind, "business_id": "xp", "contact_id": contact,
            "occurred_at": at, "source": "manual", "data": data}),
    }
}

async fn produce(cfg: &Config, bootstrap: &str, events: &[Placed]) {
    let producer: FutureProducer = client_config(bootstrap, &Default::default())
        .set("acks", "all")
        .create()
        .unwrap();
    // One at a time, in order: the order across partitions is part of each scenario.
    for e in events {
        let topic = match e.topic {
            "bookings" => &cfg.topics.bookings,
            "invoices" => &cfg.topics.invoices,
            "tasks" => &cfg.topics.tasks,
            _ => &cfg.topics.contacts,
        };
        let payload = e.body.to_string();
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(e.partition)
                    .key(&e.contact)
                    .payload(&payload),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(err, _)| err)
            .unwrap();
    }
}

/// The scenarios' events on `n` partitions (contacts on partitions 0, 1 and 2, or 0, 4 and 5
/// with six).
fn scenario(n: i32) -> Vec<Placed> {
    let (p0, p1, p2) = (0, if n > 3 { 4 } else { 1 }, n - 1);
    let done =
        |p, id: &str, c: &str, at| ev(p, id, "booking.completed", c, at, json!({"booking_id": id}));
    let created = |p, id: &str, c: &str, name: &str, at| {
        ev(p, id, "contact.created", c, at, json!({"name": name}))
    };
    let merged = |p, id: &str, s: &str, m: &str, at| {
        ev(
            p,
            id,
            "contact.merged",
            s,
            at,
            json!({"merged_contact_id": m}),
        )
    };
    vec![
        // 1. M's facts first, then the merge on S's partition, then M's later events there.
        created(p1, "m-created", "max", "Max Merged", "2026-11-10T09:00:00Z"),
        done(p1, "m-b1", "max", "2026-11-10T10:00:00Z"),
        created(
            p0,
            "s-created",
            "sam",
            "Sam Survivor",
            "2026-11-10T11:00:00Z",
        ),
        done(p0, "s-b1", "sam", "2026-11-10T12:00:00Z"),
        merged(p0, "merge-sam-max", "sam", "max", "2026-11-12T10:00:00Z"),
        done(p1, "m-b2", "max", "2026-11-13T09:00:00Z"),
        ev(
            p1,
            "m-renamed",
            "contact.updated",
            "max",
            "2026-11-13T10:00:00Z",
            json!({"name": "Max Renamed", "status": "CLIENT"}),
        ),
        ev(
            p1,
            "m-deleted",
            "contact.deleted",
            "max",
            "2026-11-13T11:00:00Z",
            json!({}),
        ),
        // 2. The merge first, then the merged contact's whole life on its own partition.
        merged(p2, "merge-sue-mia", "sue", "mia", "2026-11-11T10:00:00Z"),
        created(
            p2,
            "sue-created",
            "sue",
            "Sue Survivor",
            "2026-11-09T10:00:00Z",
        ),
        created(
            p0,
            "mia-created",
            "mia",
            "Mia Merged",
            "2026-11-09T11:00:00Z",
        ),
        done(p0, "mia-b1", "mia", "2026-11-10T10:00:00Z"),
        done(p0, "mia-b2", "mia", "2026-11-14T10:00:00Z"),
        // 3. A chain over three partitions: amy -> bob -> cat, amy's last booking after both.
        created(p1, "amy-created", "amy", "Amy", "2026-11-09T08:00:00Z"),
        done(p1, "amy-b1", "amy", "2026-11-09T09:00:00Z"),
        created(p2, "bob-created", "bob", "Bob", "2026-11-09T08:30:00Z"),
        done(p2, "bob-b1", "bob", "2026-11-09T09:30:00Z"),
        created(p0, "cat-created", "cat", "Cat", "2026-11-09T07:00:00Z"),
        merged(p2, "merge-bob-amy", "bob", "amy", "2026-11-11T08:00:00Z"),
        merged(p0, "merge-cat-bob", "cat", "bob", "2026-11-12T08:00:00Z"),
        done(p1, "amy-b2", "amy", "2026-11-15T09:00:00Z"),
        // 4. A late erase of the merged contact: the survivor forgets it.
        created(
            p0,
            "eve-created",
            "eve",
            "Eve Survivor",
            "2026-11-09T08:00:00Z",
        ),
        created(
            p1,
            "eli-created",
            "eli",
            "Eli Erased",
            "2026-11-09T08:00:00Z",
        ),
        ev(
            p1,
            "eli-note",
            "note.created",
            "eli",
            "2026-11-09T09:00:00Z",
            json!({"note_id": "n1", "body": "Eli's secret"}),
        ),
        done(p1, "eli-b1", "eli", "2026-11-09T10:00:00Z"),
        merged(p0, "merge-eve-eli", "eve", "eli", "2026-11-12T08:00:00Z"),
        ev(
            p1,
            "eli-erased",
            "contact.erased",
            "eli",
            "2026-11-13T08:00:00Z",
            json!({}),
        ),
    ]
}

/// What the API must answer once everything is applied.
async fn answers(api: &str) -> Vec<(String, u16, Value)> {
    let mut out = Vec::new();
    for c in [
        "sam", "max", "sue", "mia", "cat", "bob", "amy", "eve", "eli",
    ] {
        let (status, body) = get_json(&format!("{api}/v1/businesses/xp/contacts/{c}")).await;
        out.push((c.to_owned(), status, body));
    }
    out
}

fn check(answers: &[(String, u16, Value)]) -> Result<(), String> {
    let get = |c: &str| answers.iter().find(|a| a.0 == c).unwrap();
    let survivor = |c: &str, name: &str, completed: i64, aliases: &[&str]| {
        let (_, status, body) = get(c);
        let ok = *status == 200
            && body["name"] == name
            && body["status"] == "LEAD"
            && body["meta"]["completedBookings"] == completed
            && body["aliases"] == json!(aliases);
        (!ok).then(|| format!("{c}: {status} {body}"))
    };
    let merged = |c: &str, into: &str| {
        let (_, status, body) = get(c);
        let ok = *status == 404
            && body["error"]["code"] == "merged"
            && body["error"]["mergedInto"] == into;
        (!ok).then(|| format!("{c}: {status} {body}"))
    };
    let problems: Vec<String> = [
        survivor("sam", "Sam Survivor", 3, &["max"]),
        merged("max", "sam"),
        survivor("sue", "Sue Survivor", 2, &["mia"]),
        merged("mia", "sue"),
        survivor("cat", "Cat", 3, &["amy", "bob"]),
        merged("bob", "cat"),
        // The end of the chain, whichever merge amy's own partition learnt first.
        merged("amy", "cat"),
        survivor("eve", "Eve Survivor", 1, &[]),
        merged("eli", "eve"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

async fn settle(api: &str) -> Vec<(String, u16, Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let a = answers(api).await;
        match check(&a) {
            Ok(()) => return a,
            Err(why) if tokio::time::Instant::now() > deadline => {
                panic!("the merges did not settle:\n{why}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

async fn merges_across_partitions(n: i32) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.topics.partitions = n;
    let broker = broker(dir.path(), &mut cfg).await;
    let bootstrap = broker.bootstrap();
    let (_, shared) = clock("2026-11-20T12:00:00Z");
    let running = keyflow::run::start(&cfg, shared.clone()).await.unwrap();
    let api = format!("http://{}", running.api_addr);
    produce(&cfg, &bootstrap, &scenario(n)).await;
    let before = settle(&api).await;
    // The survivor holds nothing of what was erased.
    let eve = &before.iter().find(|a| a.0 == "eve").unwrap().2;
    assert!(!eve.to_string().contains("Eli's secret"), "{eve}");
    // Nor does any stored profile version: eve's older ones named eli as an alias.
    let store = running.store.clone().unwrap();
    for p in store.partitions().unwrap() {
        for v in store.profile_versions(p).unwrap() {
            assert!(
                !v.aliases.iter().any(|a| a == "eli"),
                "partition {p} still stores {} with alias eli",
                v.contact_id
            );
        }
    }
    running.stop().await.unwrap();

    // A new processor rebuilds every partition from the store and the re-key topic.
    let running = keyflow::run::start(&cfg, shared).await.unwrap();
    let api = format!("http://{}", running.api_addr);
    let after = settle(&api).await;
    // Give a replay time to double-count anything it would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_quiet = answers(&api).await;
    check(&after_quiet).unwrap();
    for (a, b) in before.iter().zip(&after_quiet) {
        assert_eq!(
            (a.1, &a.2["meta"], &a.2["aliases"]),
            (b.1, &b.2["meta"], &b.2["aliases"]),
            "{} changed over a restart",
            a.0
        );
    }
    drop(after);
    running.stop().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_across_three_partitions_fold_every_fact_into_the_survivor() {
    merges_across_partitions(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_across_six_partitions_fold_every_fact_into_the_survivor() {
    merges_across_partitions(6).await;
}
