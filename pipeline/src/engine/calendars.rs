//! One history evaluated for a business in UTC and for one in Berlin: days overdue, days since
//! the last interaction, queue ages and "this week" count the business's local days, and the
//! next timer is its next local midnight.

use std::collections::BTreeMap;

use super::tests::{sent, t, Script};
use super::*;
use crate::event::*;
use model::rules::BusinessOverride;

fn created() -> Payload {
    Payload::ContactCreated(ContactCreated {
        name: "Ana".into(),
        email: None,
        phone: None,
        tags: None,
        status: None,
        photo_url: None,
    })
}

fn note() -> Payload {
    Payload::NoteCreated(NoteCreated {
        note_id: "n1".into(),
        body: "called".into(),
    })
}

/// Business `b` in Berlin (weeks from Monday), every other business in UTC.
fn engine() -> Engine {
    let berlin = BusinessOverride {
        timezone: Some("Europe/Berlin".parse().unwrap()),
        ..Default::default()
    };
    let rules = Rules::new(
        BusinessRules::default(),
        &BTreeMap::from([("b".to_owned(), berlin)]),
    )
    .unwrap();
    Engine::with_rules(rules)
}

async fn evaluate(s: &mut Script, business: &str, now: &str) -> ContactProfile {
    let key = ContactKey::new(business, "c");
    let mut out = engine()
        .evaluate(&mut s.state, &[key], t(now).timestamp_millis(), 0)
        .await
        .unwrap();
    out.pop().expect("a profile")
}

/// The same events for contact `c` of `business`.
fn history(business: &'static str) -> Script {
    let mut s = Script::of(business);
    // Sunday 29 November 23:30 UTC is Monday 30 November 00:30 in Berlin; the invoice is due
    // 2026-11-20T00:00Z; the note is Wednesday 2 December 10:00 UTC.
    s.ev("c", "2026-11-29T23:30:00Z", created())
        .ev("c", "2026-11-25T09:00:00Z", sent("i1", 5000))
        .ev("c", "2026-12-02T10:00:00Z", note());
    s
}

/// Wednesday 2 December 23:30 UTC: already Thursday 3 December 00:30 in Berlin.
const NOW: &str = "2026-12-02T23:30:00Z";

#[tokio::test]
async fn days_and_weeks_are_the_business_s_local_ones() {
    let mut utc = history("u");
    let mut berlin = history("b");
    let u = evaluate(&mut utc, "u", NOW).await;
    let b = evaluate(&mut berlin, "b", NOW).await;

    // Midnights passed since the due date (20 November), in each calendar.
    assert_eq!(
        (u.balance.days_overdue, b.balance.days_overdue),
        (Some(12), Some(13))
    );
    // The note was this morning in UTC, yesterday in Berlin.
    assert_eq!(
        (
            u.gaps.days_since_last_interaction,
            b.gaps.days_since_last_interaction
        ),
        (Some(0), Some(1))
    );
    let age = |p: &ContactProfile| {
        let a = p.next_actions.iter().find(|a| a.kind == "invoice_overdue");
        a.map(|a| (a.age_days, a.message.clone()))
    };
    assert_eq!(
        age(&u),
        Some((12, "Invoice #i1 overdue by 12 days — send reminder".into()))
    );
    assert_eq!(
        age(&b),
        Some((13, "Invoice #i1 overdue by 13 days — send reminder".into()))
    );
    // Created on a Sunday in UTC (last week), on a Monday in Berlin (this week).
    assert!(u.segment_names().all(|s| s != "new_leads_this_week"));
    let reason = b
        .segments
        .iter()
        .find(|m| m.segment == "new_leads_this_week")
        .map(|m| m.reason.clone());
    assert_eq!(reason.as_deref(), Some("lead created 2026-11-30"));

    // Each contact is next due at its business's next local midnight.
    assert_eq!(
        utc.state.next_timer(),
        Some(t("2026-12-03T00:00:00Z").timestamp_millis())
    );
    assert_eq!(
        berlin.state.next_timer(),
        Some(t("2026-12-03T23:00:00Z").timestamp_millis())
    );
}

#[tokio::test]
async fn this_week_ends_at_the_local_midnight_the_next_week_starts() {
    let mut berlin = history("b");
    // Sunday 6 December 22:59 UTC is 23:59 in Berlin: still this week.
    let p = evaluate(&mut berlin, "b", "2026-12-06T22:59:00Z").await;
    assert!(p.segment_names().any(|s| s == "new_leads_this_week"));
    assert_eq!(
        berlin.state.next_timer(),
        Some(t("2026-12-06T23:00:00Z").timestamp_millis())
    );
    let p = evaluate(&mut berlin, "b", "2026-12-06T23:00:00Z").await;
    assert!(p.segment_names().all(|s| s != "new_leads_this_week"));
}
