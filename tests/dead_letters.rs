//! Malformed events of every class land on the dead-letter topic with their original bytes,
//! where they came from and a readable reason; the good events around them are all processed.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use pipeline::event::*;
use pipeline::kafka::dlq::headers;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::FutureRecord;

fn envelope(id: &str, kind: &str, data: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","type":"{kind}","business_id":"acme","contact_id":"c1","occurred_at":"2026-11-19T10:00:00Z","source":"manual","data":{data}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_class_of_bad_input_is_dead_lettered_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.ingest.max_event_bytes = 2048;
    let _broker = broker(dir.path(), &mut cfg).await;
    let (_, shared) = clock("2026-11-20T12:00:00Z");
    let running = keyflow::run::start(&cfg, shared).await.unwrap();
    let producer = keyflow::demo::producer(&running.bootstrap).unwrap();

    // (key, payload, expected reason fragment); None key = no key.
    let invoice = r#"{"invoice_id":"i9","amount_cents":100,"currency":"EUR","due_at":"2026-11-25T00:00:00Z"}"#;
    let bad: Vec<(Option<&str>, Vec<u8>, &str)> = vec![
        (Some("c1"), br#"{"event_id":"x","type":"invoice.sent","busi"#.to_vec(), "envelope is not valid: EOF while parsing"),
        (Some("c1"), b"{\"event_id\":\"\xff\xfe\"}".to_vec(), "payload is not valid UTF-8 (first bad byte at offset 13)"),
        (Some("c1"), envelope("b3", "contact.exploded", "{}").into_bytes(), "unknown event type \"contact.exploded\""),
        (Some("c1"), envelope("b4", "task.created", r#"{"task_id":"t","title":"x"}"#).into_bytes(), "missing field `due_at`"),
        (Some("c1"), envelope("b5", "invoice.sent", &invoice.replace("100", "\"100\"")).into_bytes(), "invalid type: string \"100\", expected i64"),
        (Some("c1"), envelope("b6", "contact.deleted", "{}").replace("2026-11-19T10:00:00Z", "19/11/2026").into_bytes(), "envelope is not valid: input contains invalid characters"),
        (Some("c1"), envelope("b7", "invoice.sent", &invoice.replace("100", "-100")).into_bytes(), "data.amount_cents must not be negative, got -100"),
        (Some("c1"), envelope("b8", "contact.deleted", "{}").replace("\"manual\"", "\"fax\"").into_bytes(), "unknown source \"fax\""),
        (Some("c1"), envelope("b9", "note.created", &format!(r#"{{"note_id":"n","body":"{}"}}"#, "x".repeat(3000))).into_bytes(), "payload of 3"),
        (None, envelope("b10", "contact.deleted", "{}").into_bytes(), "message has no key"),
        (Some("c2"), envelope("b11", "contact.deleted", "{}").into_bytes(), "does not match contact_id"),
        (Some("c1"), envelope("b12", "contact.updated", "{}").into_bytes(), "carries no field"),
        (Some("c1"), envelope("b13", "contact.merged", r#"{"merged_contact_id":"c1"}"#).into_bytes(), "merged into itself"),
        (Some("c1"), envelope("b14", "booking.created", r#"{"booking_id":"k","service_id":"s","service_name":"x","starts_at":"2026-11-21T10:00:00Z","price_cents":50000000000}"#).into_bytes(), "exceeds the plausible maximum"),
    ];
    let good = [
        msg(
            "g1",
            "acme",
            "c1",
            "2026-11-18T10:00:00Z",
            Payload::ContactCreated(ContactCreated {
                name: "Ada".into(),
                ..Default::default()
            }),
        ),
        msg(
            "g2",
            "acme",
            "c1",
            "2026-11-18T11:00:00Z",
            Payload::BookingCompleted(BookingRef {
                booking_id: "k1".into(),
            }),
        ),
        msg(
            "g3",
            "acme",
            "c1",
            "2026-11-18T12:00:00Z",
            Payload::BookingCompleted(BookingRef {
                booking_id: "k2".into(),
            }),
        ),
    ];
    // Interleave: good, bad..., good, bad..., good.
    keyflow::demo::produce_all(&producer, &cfg.topics, &good[..1])
        .await
        .unwrap();
    for (i, (key, payload, _)) in bad.iter().enumerate() {
        let mut rec = FutureRecord::<str, [u8]>::to(&cfg.topics.contacts).payload(payload);
        if let Some(k) = key {
            rec = rec.key(*k);
        }
        producer
            .send(rec, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        if i == 6 {
            keyflow::demo::produce_all(&producer, &cfg.topics, &good[1..2])
                .await
                .unwrap();
        }
    }
    keyflow::demo::produce_all(&producer, &cfg.topics, &good[2..])
        .await
        .unwrap();

    let status = running.status.clone();
    wait_for(60, "all dead letters", || {
        status.dead_letters.load(Ordering::Relaxed) == bad.len() as u64
    })
    .await;
    wait_for(30, "all good events", || {
        status.events_in.load(Ordering::Relaxed) == 3
    })
    .await;
    let p = running.embedded().index().get("acme", "c1").unwrap();
    assert_eq!(
        p.lead_score, 30,
        "both good bookings around the bad events counted"
    );

    // Read the DLQ back like an operator would.
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &running.bootstrap)
        .set("group.id", format!("dlq-reader-{}", uuid_like()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&cfg.topics.dlq]).unwrap();
    let mut by_payload: BTreeMap<Vec<u8>, BTreeMap<String, String>> = BTreeMap::new();
    while by_payload.len() < bad.len() {
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
        by_payload.insert(m.payload().unwrap_or_default().to_vec(), h);
    }
    for (_, payload, reason) in &bad {
        let h = by_payload
            .get(payload)
            .unwrap_or_else(|| panic!("no dead letter for {}", String::from_utf8_lossy(payload)));
        assert!(
            h[headers::REASON].contains(reason),
            "reason {:?} lacks {:?}",
            h[headers::REASON],
            reason
        );
        assert_eq!(h[headers::TOPIC], cfg.topics.contacts);
        assert!(h[headers::OFFSET].parse::<i64>().unwrap() >= 0);
        assert!(h[headers::PARTITION].parse::<i32>().unwrap() >= 0);
    }
    running.stop().await.unwrap();
}
