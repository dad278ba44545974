//! Business calendars through the broker and the API: one history published for a business in
//! UTC and for one in Berlin (`[business.berlin] timezone`), on three partitions. Days overdue,
//! days since the last interaction, queue ages and "this week" count each business's local
//! days, and time alone moves the Berlin contact at Berlin's midnight.

use crate::common;

use chrono::DateTime;
use common::*;
use model::rules::BusinessOverride;
use pipeline::event::{ContactCreated, InvoiceSent, NoteCreated, Payload};

/// The same contact `c` in `business`: created Sunday 29 November 23:30 UTC (Monday 00:30 in
/// Berlin), an invoice due 20 November 00:00 UTC, a note Wednesday 2 December 10:00 UTC.
fn history(business: &str) -> Vec<keyflow::demo::generator::DemoMessage> {
    let created = Payload::ContactCreated(ContactCreated {
        name: "Ana Lima".into(),
        email: None,
        phone: None,
        tags: None,
        status: None,
        photo_url: None,
    });
    let sent = Payload::InvoiceSent(InvoiceSent {
        invoice_id: "i1".into(),
        amount_cents: 5000,
        currency: "EUR".into(),
        due_at: t("2026-11-20T00:00:00Z"),
        booking_id: None,
        service_id: None,
    });
    let note = Payload::NoteCreated(NoteCreated {
        note_id: "n1".into(),
        body: "called".into(),
    });
    vec![
        msg(
            &format!("{business}-1"),
            business,
            "c",
            "2026-11-29T23:30:00Z",
            created,
        ),
        msg(
            &format!("{business}-2"),
            business,
            "c",
            "2026-11-10T09:00:00Z",
            sent,
        ),
        msg(&format!("{business}-3"), business, "c", NOTE_AT, note),
    ]
}

const NOTE_AT: &str = "2026-12-02T10:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_business_counts_days_and_weeks_in_its_own_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.business.insert(
        "berlin".into(),
        BusinessOverride {
            timezone: Some("Europe/Berlin".parse().unwrap()),
            ..Default::default()
        },
    );
    // Wednesday 2 December 23:30 UTC: Thursday 00:30 in Berlin.
    let (clock, shared) = clock("2026-12-02T23:30:00Z");
    let running = keyflow::run::start(&cfg, shared).await.unwrap();
    let producer = keyflow::demo::producer(&running.bootstrap).unwrap();
    let mut messages = history("utc");
    messages.extend(history("berlin"));
    keyflow::demo::produce_all(&producer, &cfg.topics, &messages)
        .await
        .unwrap();

    let api = format!("http://{}/v1/businesses", running.api_addr);
    let contact = |b: &str| format!("{api}/{b}/contacts/c");
    let evaluated = |b: &'static str, at: &'static str| {
        let url = contact(b);
        async move {
            let mut body = serde_json::Value::Null;
            for _ in 0..400 {
                body = get_json(&url).await.1;
                // Evaluated at `at` or later, with all three events in (the note is the last
                // interaction, the invoice is overdue).
                let complete = body["meta"]["lastInteractionAt"]
                    .as_str()
                    .is_some_and(|l| DateTime::parse_from_rfc3339(l).unwrap() == t(NOTE_AT))
                    && body["meta"]["overdueInvoices"] == 1;
                if complete
                    && body["evaluatedAt"]
                        .as_str()
                        .is_some_and(|e| DateTime::parse_from_rfc3339(e).unwrap() >= t(at))
                {
                    return body;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            panic!("{b}/c was not evaluated at {at}: {body}");
        }
    };
    let u = evaluated("utc", "2026-12-02T23:30:00Z").await;
    let b = evaluated("berlin", "2026-12-02T23:30:00Z").await;

    // Midnights since the due date: 12 in UTC (2 December), 13 in Berlin (3 December).
    assert_eq!(u["meta"]["daysOverdue"], 12, "{u}");
    assert_eq!(b["meta"]["daysOverdue"], 13, "{b}");
    // The note was this morning in UTC, yesterday in Berlin.
    assert_eq!(u["meta"]["daysSinceLastInteraction"], 0, "{u}");
    assert_eq!(b["meta"]["daysSinceLastInteraction"], 1, "{b}");
    let segments = |p: &serde_json::Value| -> Vec<String> {
        p["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["segment"].as_str().unwrap().to_owned())
            .collect()
    };
    // Created on Sunday in UTC (last week), on Monday in Berlin (this week).
    assert!(!segments(&u).contains(&"new_leads_this_week".into()), "{u}");
    assert!(segments(&b).contains(&"new_leads_this_week".into()), "{b}");

    // The business queue ranks in local days too.
    let queue_age = |b: &'static str| {
        let url = format!("{api}/{b}/crm/next-actions");
        async move {
            let (_, q) = get_json(&url).await;
            let item = q["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["kind"] == "invoice_overdue")
                .cloned()
                .unwrap_or_else(|| panic!("{b}: no overdue invoice queued: {q}"));
            item["ageDays"].as_i64().unwrap()
        }
    };
    assert_eq!(
        (queue_age("utc").await, queue_age("berlin").await),
        (12, 13)
    );
    // Both business views say which calendar they count in.
    for route in ["crm/next-actions", "crm/highlights"] {
        let (_, v) = get_json(&format!("{api}/berlin/{route}")).await;
        assert_eq!(
            v["calendar"],
            serde_json::json!({"timezone": "Europe/Berlin", "weekStartsOn": "monday"}),
            "{route}"
        );
        let (_, v) = get_json(&format!("{api}/utc/{route}")).await;
        assert_eq!(v["calendar"]["timezone"], "UTC", "{route}");
    }
    let (_, defs) = get_json(&format!("{api}/berlin/crm/segments")).await;
    let def = defs["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["segment"] == "new_leads_this_week")
        .map(|s| s["definition"].clone());
    assert_eq!(
        def,
        Some(
            "status LEAD, created since monday 00:00 Europe/Berlin, the start of this week".into()
        )
    );

    // Time alone: at Berlin's next midnight (23:00 UTC) its contact counts one more day, with
    // no new event; the UTC contact changed at its own midnight (00:00 UTC) in between.
    clock.set(t("2026-12-03T23:00:00Z"));
    let u = evaluated("utc", "2026-12-03T00:00:00Z").await;
    let b = evaluated("berlin", "2026-12-03T23:00:00Z").await;
    assert_eq!(b["meta"]["daysSinceLastInteraction"], 2, "{b}");
    assert_eq!(b["meta"]["daysOverdue"], 14, "{b}");
    assert_eq!(u["meta"]["daysSinceLastInteraction"], 1, "{u}");
    assert_eq!(u["meta"]["daysOverdue"], 13, "{u}");
    running.stop().await.unwrap();
}
