//! The committed bad-input corpus (`tests/corpus/bad/`, one file per case, listed with its key,
//! class and expectation in `MANIFEST.tsv`) produced between good events: every dead-letter case
//! lands on the DLQ topic byte for byte, with its key, where it came from and a readable reason;
//! every `handled:` case does what the state documents; every good event is processed.
//!
//! Everything goes to partition 0 of one topic, in manifest order, so each handled case meets
//! the good events it depends on (a contact deleted, a merge, an invoice id) already applied.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use pipeline::event::*;
use pipeline::kafka::dlq::headers;
use pipeline::profile::ContactProfile;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// One line of the manifest.
struct Case {
    file: String,
    key: Option<String>,
    class: String,
    /// A fragment of the dead-letter reason, or the `how` of a handled case.
    expect: Expect,
    bytes: Vec<u8>,
}

enum Expect {
    DeadLetter(String),
    Handled(String),
}

/// A dead letter read back: its key and headers.
type DeadLetter = (Option<Vec<u8>>, BTreeMap<String, String>);

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/bad")
}

fn corpus() -> Vec<Case> {
    let dir = corpus_dir();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let [file, key, class, expect] = line.split('\t').collect::<Vec<_>>()[..] else {
                panic!("malformed manifest line {line:?}");
            };
            Case {
                file: file.into(),
                key: (key != "-").then(|| key.into()),
                class: class.into(),
                // A stateful case is dead-lettered by the processor, not the decoder.
                expect: match expect.strip_prefix("handled:") {
                    Some(how) => Expect::Handled(how.into()),
                    None => Expect::DeadLetter(
                        expect.strip_prefix("stateful:").unwrap_or(expect).into(),
                    ),
                },
                bytes: std::fs::read(dir.join(file)).unwrap(),
            }
        })
        .collect()
}

/// Good events, in order: the contacts the handled cases meet, then what the test counts.
fn setup_events() -> Vec<(String, Vec<u8>)> {
    let created = |id: &str, contact: &str, at: &str| {
        msg(
            id,
            "acme",
            contact,
            at,
            Payload::ContactCreated(ContactCreated {
                name: contact.to_uppercase(),
                ..Default::default()
            }),
        )
    };
    [
        created("g-c1", "c1", "2026-11-18T10:00:00Z"),
        created("g-gone", "gone", "2026-11-18T10:00:00Z"),
        msg(
            "g-gone-del",
            "acme",
            "gone",
            "2026-11-18T12:00:00Z",
            Payload::ContactDeleted(Empty {}),
        ),
        created("g-m1", "m1", "2026-11-18T10:00:00Z"),
        created("g-m2", "m2", "2026-11-18T10:00:00Z"),
        // m2 is folded into m1; the corpus then tries to fold m1 back into m2.
        msg(
            "g-merge",
            "acme",
            "m1",
            "2026-11-18T12:00:00Z",
            Payload::ContactMerged(ContactMerged {
                merged_contact_id: "m2".into(),
            }),
        ),
        // The corpus repeats this event id with another amount.
        msg(
            "g-inv",
            "acme",
            "payer",
            "2026-11-18T12:00:00Z",
            Payload::InvoiceSent(InvoiceSent {
                invoice_id: "i-dup".into(),
                amount_cents: 100,
                currency: "EUR".into(),
                due_at: t("2026-11-25T00:00:00Z"),
                booking_id: None,
                service_id: None,
            }),
        ),
    ]
    .into_iter()
    .map(|m| (m.key, m.payload))
    .collect()
}

fn completed(id: &str, booking: &str, at: &str) -> (String, Vec<u8>) {
    let m = msg(
        id,
        "acme",
        "c1",
        at,
        Payload::BookingCompleted(BookingRef {
            booking_id: booking.into(),
        }),
    );
    (m.key, m.payload)
}

/// Produces one message to partition 0 and waits for the broker's acknowledgement.
async fn send(producer: &FutureProducer, topic: &str, key: Option<&str>, payload: &[u8]) {
    let mut rec = FutureRecord::<str, [u8]>::to(topic)
        .partition(0)
        .payload(payload);
    if let Some(k) = key {
        rec = rec.key(k);
    }
    producer
        .send(rec, Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

/// What a handled case must have done, read from the contacts it names.
fn check_handled(how: &str, case: &Case, get: impl Fn(&str) -> Option<ContactProfile>) {
    let ev: Event = serde_json::from_slice(&case.bytes).unwrap();
    let me = get(&ev.contact_id);
    let me = me
        .as_ref()
        .unwrap_or_else(|| panic!("{}: no profile for {}", case.file, ev.contact_id));
    match how {
        // An event for a contact never created makes a stub profile (no name), which the
        // contact.created completes whenever it arrives: events may come in any order.
        "stub-profile" => {
            assert_eq!(me.name, None, "{}", case.file);
            assert_eq!(me.activity.completed_bookings_total, 1, "{}", case.file);
            assert!(me.visible(), "{}", case.file);
        }
        // A late event for a deleted contact is folded in but does not bring it back.
        "stays-deleted" => {
            assert!(me.deleted && !me.visible(), "{}", case.file);
            assert_eq!(me.activity.completed_bookings_total, 1, "{}", case.file);
        }
        // A repeated event id counts once: the first body wins, the second is a duplicate.
        "first-wins" => {
            let Payload::InvoiceSent(i) = &ev.payload else {
                panic!("{}: not an invoice", case.file);
            };
            assert_ne!(
                me.balance.outstanding_balance_cents, i.amount_cents,
                "{}",
                case.file
            );
            assert_eq!(me.balance.outstanding_balance_cents, 100, "{}", case.file);
        }
        other => panic!("{}: unknown handling {other:?}", case.file),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_case_of_the_bad_input_corpus_is_dead_lettered_or_handled() {
    let cases = corpus();
    let classes: std::collections::BTreeSet<_> = cases.iter().map(|c| &c.class).collect();
    assert!(classes.len() >= 20, "only {} classes", classes.len());
    let dead: Vec<&Case> = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::DeadLetter(_)))
        .collect();
    let handled = cases.len() - dead.len();
    let duplicates = cases
        .iter()
        .filter(|c| matches!(&c.expect, Expect::Handled(h) if h == "first-wins"))
        .count();

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.ingest.max_event_bytes = 2048;
    let _broker = broker(dir.path(), &mut cfg).await;
    let (_, shared) = clock("2026-11-20T12:00:00Z");
    let running = keyflow::run::start(&cfg, shared).await.unwrap();
    let producer = keyflow::demo::producer(&running.bootstrap).unwrap();
    let topic = cfg.topics.contacts.clone();

    // Good, bad..., good, bad..., good.
    let mut good = setup_events();
    for (key, payload) in &good {
        send(&producer, &topic, Some(key), payload).await;
    }
    let middle = completed("g-k1", "k1", "2026-11-18T11:00:00Z");
    for (i, case) in cases.iter().enumerate() {
        send(&producer, &topic, case.key.as_deref(), &case.bytes).await;
        if i == cases.len() / 2 {
            send(&producer, &topic, Some(&middle.0), &middle.1).await;
        }
    }
    let last = completed("g-k2", "k2", "2026-11-18T12:00:00Z");
    send(&producer, &topic, Some(&last.0), &last.1).await;
    good.extend([middle, last]);

    let status = running.status.clone();
    wait_for(60, "all dead letters", || {
        status.dead_letters.load(Ordering::Relaxed) >= dead.len() as u64
    })
    .await;
    let expected_in = (good.len() + handled - duplicates) as u64;
    wait_for(30, "all good and handled events", || {
        status.events_in.load(Ordering::Relaxed) >= expected_in
    })
    .await;
    assert_eq!(
        status.dead_letters.load(Ordering::Relaxed),
        dead.len() as u64
    );
    assert_eq!(status.events_in.load(Ordering::Relaxed), expected_in);
    assert_eq!(status.duplicates.load(Ordering::Relaxed), duplicates as u64);

    let index = running.embedded().index();
    let get = |id: &str| index.get("acme", id).map(|p| (*p).clone());
    assert_eq!(
        get("c1").unwrap().lead_score,
        30,
        "both good bookings around the bad events counted"
    );
    for case in &cases {
        if let Expect::Handled(how) = &case.expect {
            check_handled(how, case, get);
        }
    }
    // The merge that would have closed a cycle (m1 into m2) is dead-lettered: the first
    // merge (m2 into m1) stands.
    let (m1, m2) = (get("m1").unwrap(), get("m2").unwrap());
    assert_eq!(m2.merged_into.as_deref(), Some("m1"));
    assert_eq!(m1.merged_into, None);
    assert!(m1.aliases.contains(&"m2".to_owned()), "{m1:?}");

    // Read the DLQ back like an operator would.
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &running.bootstrap)
        .set("group.id", format!("dlq-reader-{}", uuid_like()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&cfg.topics.dlq]).unwrap();
    let mut by_payload: BTreeMap<Vec<u8>, DeadLetter> = BTreeMap::new();
    while by_payload.len() < dead.len() {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("dead letters arrive")
            .unwrap();
        let mut h = BTreeMap::new();
        for header in m.headers().unwrap().iter() {
            h.insert(
                header.key.to_owned(),
                String::from_utf8_lossy(header.value.unwrap()).into_owned(),
            );
        }
        let key = m.key().map(<[u8]>::to_vec);
        by_payload.insert(m.payload().unwrap_or_default().to_vec(), (key, h));
    }
    for case in &dead {
        let Expect::DeadLetter(reason) = &case.expect else {
            unreachable!()
        };
        let (key, h) = by_payload
            .get(&case.bytes)
            .unwrap_or_else(|| panic!("no dead letter for {} ({})", case.file, case.class));
        assert!(
            h[headers::REASON].contains(reason.as_str()),
            "{} ({}): reason {:?} lacks {:?}",
            case.file,
            case.class,
            h[headers::REASON],
            reason
        );
        assert!(!h[headers::CODE].is_empty(), "{}", case.file);
        assert_eq!(key.as_deref(), case.key.as_deref().map(str::as_bytes));
        assert_eq!(h[headers::TOPIC], topic);
        assert_eq!(h[headers::PARTITION], "0");
        assert!(h[headers::OFFSET].parse::<i64>().unwrap() >= 0);
    }
    for case in &cases {
        if matches!(case.expect, Expect::Handled(_)) {
            assert!(
                !by_payload.contains_key(&case.bytes),
                "{} is handled, yet dead-lettered",
                case.file
            );
        }
    }
    running.stop().await.unwrap();
}
