//! The identity and lifecycle contract (step 3): which events are interactions, `invoice.overdue`,
//! repeated creates, queue items that do not flap, and late events of a merged-away contact.

use super::tests::{booking, completed, paid, sent, t, Script};
use crate::event::*;

fn booking_of(id: &str, service: &str, starts_at: &str) -> Payload {
    Payload::BookingCreated(BookingCreated {
        booking_id: id.into(),
        service_id: service.into(),
        service_name: service.to_uppercase(),
        starts_at: t(starts_at),
        price_cents: None,
    })
}

fn created(name: &str, email: Option<&str>) -> Payload {
    Payload::ContactCreated(ContactCreated {
        name: name.into(),
        email: email.map(str::to_owned),
        phone: None,
        tags: None,
        status: None,
        photo_url: None,
    })
}

fn overdue(id: &str) -> Payload {
    Payload::InvoiceOverdue(InvoiceRef {
        invoice_id: id.into(),
    })
}

fn ms(s: &str) -> i64 {
    t(s).timestamp_millis()
}

/// Last interaction and the gaps count only the events people take part in, and a visit of
/// several events is one interaction day.
#[tokio::test]
async fn system_events_are_not_interactions_and_a_visit_is_one_day() {
    let mut s = Script::new();
    s.ev("c", "2026-11-01T10:00:00Z", created("Ann", None))
        .ev("c", "2026-11-01T10:05:00Z", booking("k1"))
        .ev(
            "c",
            "2026-11-01T10:10:00Z",
            Payload::BookingConfirmed(BookingRef {
                booking_id: "k1".into(),
            }),
        )
        .ev("c", "2026-11-04T11:00:00Z", completed("k1"))
        .ev(
            "c",
            "2026-11-08T09:00:00Z",
            Payload::NoteCreated(NoteCreated {
                note_id: "n1".into(),
                body: "called".into(),
            }),
        )
        // None of these is an interaction: an invoice sent, an invoice falling overdue, a task
        // created, and a status change made by an automation.
        .ev("c", "2026-11-09T12:00:00Z", sent("i1", 100))
        .ev("c", "2026-11-21T00:00:00Z", overdue("i1"))
        .ev(
            "c",
            "2026-11-12T08:00:00Z",
            Payload::TaskCreated(TaskCreated {
                task_id: "t1".into(),
                title: "Call".into(),
                due_at: t("2026-11-30T00:00:00Z"),
            }),
        )
        .from(
            "automation",
            "c",
            "2026-11-13T08:00:00Z",
            Payload::ContactUpdated(ContactUpdated {
                tags: Some(vec!["nurture".into()]),
                ..Default::default()
            }),
        );
    let p = s.score_at("c", "2026-11-22T12:00:00Z").await;
    assert_eq!(p.last_interaction_at, Some(ms("2026-11-08T09:00:00Z")));
    assert_eq!(p.gaps.days_since_last_interaction, Some(14));
    // Interaction days 11-01, 11-04, 11-08: gaps of 3 and 4 days, not five near-zero ones.
    assert_eq!(p.gaps.mean_gap_days, Some(3.5));
    assert_eq!(p.gaps.median_gap_days, Some(3.5));
    // Untouched by a person for 14 days, with an unpaid invoice: a cold lead and a stale one.
    assert!(p.segment_names().any(|n| n == "cold_leads_unpaid"), "{p:?}");
    assert!(p.next_actions.iter().any(|a| a.kind == "lead_stale"));
}

/// `invoice.overdue` makes an invoice overdue from its instant, before its due date: balance,
/// reliability and the queue count it from then, and a payment after it is late.
#[tokio::test]
async fn an_overdue_notice_makes_the_invoice_overdue_before_its_due_date() {
    let mut s = Script::new();
    // Due 2026-11-20 (see `sent`), declared overdue on 11-10.
    s.ev("c", "2026-11-02T10:00:00Z", sent("i1", 5000)).ev(
        "c",
        "2026-11-10T10:00:00Z",
        overdue("i1"),
    );
    let before = s.score_at("c", "2026-11-10T09:00:00Z").await;
    assert_eq!(
        (before.balance.overdue_invoices, before.balance.days_overdue),
        (0, Some(0))
    );
    assert!(before.next_actions.is_empty(), "{:?}", before.next_actions);

    let p = s.score_at("c", "2026-11-12T12:00:00Z").await;
    assert_eq!(
        (p.balance.overdue_invoices, p.balance.days_overdue),
        (1, Some(2))
    );
    assert_eq!(
        (
            p.reliability.invoices_overdue,
            p.reliability.payment_reliability
        ),
        (1, Some(0))
    );
    let item = p
        .next_actions
        .iter()
        .find(|a| a.kind == "invoice_overdue")
        .expect("an invoice_overdue item");
    assert_eq!((item.since, item.age_days), (ms("2026-11-10T10:00:00Z"), 2));
    assert!(p.segment_names().any(|n| n == "delayed_payment_follow_up"));

    s.ev("c", "2026-11-13T10:00:00Z", paid("i1"));
    let p = s.score_at("c", "2026-11-14T00:00:00Z").await;
    assert_eq!(
        (p.reliability.invoices_late, p.reliability.avg_days_late),
        (1, Some(3.0))
    );
    assert_eq!(p.balance.overdue_invoices, 0);
}

/// Of two creates for one booking or invoice id, the later `occurred_at` wins, whatever order
/// they arrive in.
#[tokio::test]
async fn the_latest_create_wins_whatever_the_arrival_order() {
    let first = booking_of("k1", "cut", "2026-11-05T10:00:00Z");
    let moved = booking_of("k1", "color", "2026-11-06T10:00:00Z");
    let mut invoice = sent("i1", 5000);
    if let Payload::InvoiceSent(i) = &mut invoice {
        i.amount_cents = 7000;
    }
    let mut in_order = Script::new();
    in_order
        .ev("c", "2026-11-01T10:00:00Z", first.clone())
        .ev("c", "2026-11-02T10:00:00Z", moved.clone())
        .ev("c", "2026-11-01T11:00:00Z", sent("i1", 5000))
        .ev("c", "2026-11-02T11:00:00Z", invoice.clone());
    let mut reversed = Script::new();
    reversed
        .ev("c", "2026-11-02T11:00:00Z", invoice)
        .ev("c", "2026-11-01T11:00:00Z", sent("i1", 5000))
        .ev("c", "2026-11-02T10:00:00Z", moved)
        .ev("c", "2026-11-01T10:00:00Z", first);
    let now = "2026-11-03T00:00:00Z";
    let (a, b) = (
        in_order.score_at("c", now).await,
        reversed.score_at("c", now).await,
    );
    assert_eq!(a.affinity.top_service_id.as_deref(), Some("color"));
    assert_eq!(a.balance.outstanding_balance_cents, 7000);
    assert_eq!(a.fingerprint(), b.fingerprint(), "{a:?}\n{b:?}");
}

/// An unconfirmed booking is a queue item until its start, then leaves for good: the
/// creation-age rule does not bring it back.
#[tokio::test]
async fn an_unconfirmed_booking_leaves_the_queue_at_its_start_for_good() {
    let mut s = Script::new();
    s.ev(
        "c",
        "2026-11-01T10:00:00Z",
        booking_of("k1", "cut", "2026-11-02T09:00:00Z"),
    );
    let unconfirmed = |p: &crate::profile::ContactProfile| {
        p.next_actions
            .iter()
            .any(|a| a.kind == "booking_unconfirmed")
    };
    assert!(unconfirmed(&s.score_at("c", "2026-11-01T12:00:00Z").await));
    for after_start in [
        "2026-11-02T09:00:00Z",
        "2026-11-03T11:00:00Z",
        "2026-11-09T00:00:00Z",
    ] {
        let p = s.score_at("c", after_start).await;
        assert!(!unconfirmed(&p), "{after_start}: {:?}", p.next_actions);
    }
}

/// After M is merged into S, late identity events of M act on M alone: S keeps its name, email,
/// status and existence, and holds M's facts; an erase of M takes M's id out of S.
#[tokio::test]
async fn late_identity_events_of_a_merged_contact_act_on_it_alone() {
    let mut s = Script::new();
    s.ev("s", "2026-11-01T10:00:00Z", created("Sam", None))
        .ev(
            "m",
            "2026-11-01T11:00:00Z",
            created("Max", Some("max@example.com")),
        )
        .ev("m", "2026-11-02T10:00:00Z", completed("k1"))
        .ev(
            "s",
            "2026-11-03T10:00:00Z",
            Payload::ContactMerged(ContactMerged {
                merged_contact_id: "m".into(),
            }),
        )
        .ev(
            "m",
            "2026-11-04T10:00:00Z",
            Payload::ContactUpdated(ContactUpdated {
                name: Some("Maxine".into()),
                status: Some("CLIENT".into()),
                ..Default::default()
            }),
        )
        .ev(
            "m",
            "2026-11-04T11:00:00Z",
            Payload::ContactDeleted(Empty {}),
        )
        // A fact of M after the merge still goes to S.
        .ev("m", "2026-11-05T10:00:00Z", completed("k2"));
    let now = "2026-11-06T00:00:00Z";
    let survivor = s.score_at("s", now).await;
    assert!(survivor.visible(), "{survivor:?}");
    assert_eq!(survivor.name.as_deref(), Some("Sam"));
    assert_eq!(survivor.status, "LEAD");
    assert_eq!(survivor.aliases, vec!["m".to_owned()]);
    assert_eq!(survivor.activity.completed_bookings_total, 2);
    assert_eq!(survivor.email, None, "S keeps its own record");
    let merged = s.score_at("m", now).await;
    assert_eq!(merged.merged_into.as_deref(), Some("s"));
    assert!(merged.deleted && !merged.visible());

    s.ev(
        "m",
        "2026-11-06T10:00:00Z",
        Payload::ContactErased(Empty {}),
    );
    let survivor = s.score_at("s", "2026-11-07T00:00:00Z").await;
    assert!(survivor.visible() && !survivor.erased);
    assert_eq!(survivor.name.as_deref(), Some("Sam"));
    assert!(survivor.aliases.is_empty(), "{:?}", survivor.aliases);
    assert_eq!(survivor.activity.completed_bookings_total, 2);
}

/// The profile of `key` evaluated by `engine` at `now`.
async fn at(
    engine: &crate::engine::Engine,
    state: &mut crate::state::PartitionState,
    key: &crate::state::ContactKey,
    now: &str,
) -> crate::profile::ContactProfile {
    let mut out = engine
        .evaluate(state, std::slice::from_ref(key), ms(now), 0)
        .await
        .unwrap();
    out.pop().unwrap()
}

/// A LEAD created on 11-01 with a booking completed on each of 11-02, 11-03 and 11-04.
fn lead_with_three_completions() -> Script {
    let mut s = Script::new();
    s.ev("c", "2026-11-01T10:00:00Z", created("Ann", None));
    for (i, day) in ["02", "03", "04"].into_iter().enumerate() {
        s.ev(
            "c",
            &format!("2026-11-{day}T10:00:00Z"),
            completed(&format!("k{i}")),
        );
    }
    s
}

/// The status-change signals between what was last written for `c` and `p`.
fn status_signals(
    c: &crate::state::ContactState,
    p: &crate::profile::ContactProfile,
) -> Vec<crate::signals::Signal> {
    crate::signals::diff(c, p, &[])
        .into_iter()
        .filter(|x| x.kind == crate::signals::STATUS_CHANGED)
        .collect()
}

/// With `auto_promote`, a LEAD with `promotion_min_completed` completed bookings is shown as
/// CLIENT by KeyFlow (out of the lead-only segments), a `contact.updated` signal tells the CRM,
/// and a status the CRM sets later wins, with a signal of its own. Off, the status stays the
/// CRM's and only the promotion is suggested.
#[tokio::test]
async fn auto_promote_shows_client_and_status_changes_are_signalled() {
    use crate::config::{BusinessRules, MetricsConfig};
    use crate::engine::{Engine, Rules};
    use crate::state::ContactKey;

    let mut s = lead_with_three_completions();
    let promoting = Engine::with_rules(Rules::uniform(BusinessRules {
        metrics: MetricsConfig {
            auto_promote: true,
            ..Default::default()
        },
        ..Default::default()
    }));
    let key = ContactKey::new("b", "c");
    let two = at(&promoting, &mut s.state, &key, "2026-11-03T12:00:00Z").await;
    assert_eq!(
        (two.status.as_str(), two.status_source.as_str()),
        ("LEAD", "crm")
    );
    s.state.contacts.get_mut(&key).unwrap().remember(&two);

    let three = at(&promoting, &mut s.state, &key, "2026-11-05T00:00:00Z").await;
    assert_eq!(
        (three.status.as_str(), three.status_source.as_str()),
        ("CLIENT", "keyflow")
    );
    assert!(
        three.segment_names().all(|n| n != "new_leads_this_week"),
        "{three:?}"
    );
    let changed = status_signals(&s.state.contacts[&key], &three);
    assert_eq!(changed.len(), 1, "{changed:?}");
    let json = changed[0].to_json();
    assert_eq!(json["type"], "contact.updated");
    assert_eq!(
        (
            &json["contactId"],
            &json["businessId"],
            &json["fromStatus"],
            &json["toStatus"]
        ),
        (&"c".into(), &"b".into(), &"LEAD".into(), &"CLIENT".into())
    );
    assert_eq!(json["statusSource"], "keyflow");
    assert!(json["reason"]
        .as_str()
        .unwrap()
        .contains("3 completed bookings"));
    s.state.contacts.get_mut(&key).unwrap().remember(&three);

    // The CRM says LEAD again, after the promotion: its status wins.
    s.ev(
        "c",
        "2026-11-05T09:00:00Z",
        Payload::ContactUpdated(ContactUpdated {
            status: Some("LEAD".into()),
            ..Default::default()
        }),
    );
    let back = at(&promoting, &mut s.state, &key, "2026-11-05T10:00:00Z").await;
    assert_eq!(
        (back.status.as_str(), back.status_source.as_str()),
        ("LEAD", "crm")
    );
    let changed = status_signals(&s.state.contacts[&key], &back);
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0].to_json()["fromStatus"], "CLIENT");
    assert_eq!(changed[0].reason, "status set in the CRM");

    // Without auto_promote the same history stays a LEAD with a promotion suggested.
    let default = Engine::with_rules(Rules::uniform(BusinessRules::default()));
    let mut plain = lead_with_three_completions();
    let p = at(&default, &mut plain.state, &key, "2026-11-05T00:00:00Z").await;
    assert_eq!(
        (p.status.as_str(), p.status_source.as_str()),
        ("LEAD", "crm")
    );
    assert_eq!(p.promotion_suggested_at, Some(ms("2026-11-04T10:00:00Z")));
}
