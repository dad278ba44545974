//! Each lead-score factor at pinned clocks, including changes caused by time alone.

use chrono::{DateTime, Utc};

use super::*;
use crate::event::*;

pub(super) fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub(super) struct Script {
    pub(super) state: PartitionState,
    n: u64,
    business: &'static str,
}

impl Script {
    pub(super) fn new() -> Self {
        Self::of("b")
    }

    /// A script whose events are for `business`.
    pub(super) fn of(business: &'static str) -> Self {
        Self {
            state: PartitionState::default(),
            n: 0,
            business,
        }
    }

    /// Applies an event from the `manual` source (a person's).
    pub(super) fn ev(&mut self, contact: &str, at: &str, payload: Payload) -> &mut Self {
        self.from("manual", contact, at, payload)
    }

    /// Applies an event from `source`, with the next event id (`e1`, `e2`, ...).
    pub(super) fn from(
        &mut self,
        source: &str,
        contact: &str,
        at: &str,
        payload: Payload,
    ) -> &mut Self {
        self.n += 1;
        self.state.apply(&Event {
            schema_version: 1,
            event_id: format!("e{}", self.n),
            business_id: self.business.into(),
            contact_id: contact.into(),
            occurred_at: t(at),
            source: source.into(),
            payload,
        });
        self
    }

    /// The contact's profile evaluated at `now`, whether it is visible or not.
    pub(super) async fn score_at(&mut self, contact: &str, now: &str) -> ContactProfile {
        let key = ContactKey::new("b", contact);
        let engine = Engine::new(ScoringConfig::default());
        let mut out = engine
            .evaluate(&mut self.state, &[key], t(now).timestamp_millis(), 0)
            .await
            .unwrap();
        out.pop().expect("a profile")
    }
}

pub(super) fn booking(id: &str) -> Payload {
    Payload::BookingCreated(BookingCreated {
        booking_id: id.into(),
        service_id: "s".into(),
        service_name: "Cut".into(),
        starts_at: t("2026-11-01T10:00:00Z"),
        price_cents: Some(100),
    })
}

pub(super) fn completed(id: &str) -> Payload {
    Payload::BookingCompleted(BookingRef {
        booking_id: id.into(),
    })
}

pub(super) fn sent(id: &str, cents: i64) -> Payload {
    Payload::InvoiceSent(InvoiceSent {
        invoice_id: id.into(),
        amount_cents: cents,
        currency: "EUR".into(),
        due_at: t("2026-11-20T00:00:00Z"),
        booking_id: None,
        service_id: None,
    })
}

pub(super) fn paid(id: &str) -> Payload {
    Payload::InvoicePaid(InvoiceRef {
        invoice_id: id.into(),
    })
}

fn factor(p: &ContactProfile, name: &str) -> (i64, i64) {
    let f = p.factors.iter().find(|f| f.factor == name).unwrap();
    (f.count, f.points)
}

#[tokio::test]
async fn completed_bookings_count_then_expire_from_the_window() {
    let mut s = Script::new();
    s.ev("c", "2026-11-01T09:00:00Z", booking("k1")).ev(
        "c",
        "2026-11-01T11:00:00Z",
        completed("k1"),
    );
    s.ev("c", "2026-11-05T11:00:00Z", completed("k2"));
    let p = s.score_at("c", "2026-11-10T00:00:00Z").await;
    assert_eq!(factor(&p, "bookings_completed"), (2, 30));
    assert_eq!(p.lead_score, 30);
    // 14 days after the first completion it leaves the window: no new event needed.
    let p = s.score_at("c", "2026-11-15T11:00:00Z").await;
    assert_eq!(factor(&p, "bookings_completed"), (1, 15));
    let p = s.score_at("c", "2026-11-19T11:00:00Z").await;
    assert_eq!(
        (factor(&p, "bookings_completed"), p.lead_score),
        ((0, 0), 0)
    );
}

#[tokio::test]
async fn time_alone_schedules_the_next_evaluation() {
    let mut s = Script::new();
    s.ev("c", "2026-11-01T11:00:00Z", completed("k1"));
    // The event made the contact due; evaluating it schedules its next change.
    assert_eq!(
        s.state
            .take_due(t("2026-11-02T00:00:00Z").timestamp_millis()),
        vec![ContactKey::new("b", "c")]
    );
    s.score_at("c", "2026-11-02T00:00:00Z").await;
    // The first change: the next (UTC) midnight, when days_since_last_interaction becomes 2.
    assert_eq!(
        s.state.next_timer(),
        Some(t("2026-11-03T00:00:00Z").timestamp_millis())
    );
    assert!(s
        .state
        .take_due(t("2026-11-02T23:59:59Z").timestamp_millis())
        .is_empty());
    // Evaluated at the midnight of the day the completion leaves the 14-day window, the next
    // timer is that instant exactly: the score drops then with no event.
    s.score_at("c", "2026-11-15T00:00:00Z").await;
    assert_eq!(
        s.state.next_timer(),
        Some(t("2026-11-15T11:00:00Z").timestamp_millis())
    );
    assert_eq!(
        s.state
            .take_due(t("2026-11-15T11:00:00Z").timestamp_millis()),
        vec![ContactKey::new("b", "c")]
    );
    let p = s.score_at("c", "2026-11-15T11:00:00Z").await;
    assert_eq!(p.lead_score, 0);
}

#[tokio::test]
async fn bookings_are_capped_at_four() {
    let mut s = Script::new();
    for i in 0..6 {
        s.ev(
            "c",
            &format!("2026-11-0{}T11:00:00Z", i + 1),
            completed(&format!("k{i}")),
        );
    }
    let p = s.score_at("c", "2026-11-08T00:00:00Z").await;
    assert_eq!(factor(&p, "bookings_completed"), (6, 60));
    assert_eq!(p.lead_score, 60);
}

#[tokio::test]
async fn paid_and_unpaid_invoices() {
    let mut s = Script::new();
    s.ev("c", "2026-11-02T10:00:00Z", sent("i1", 5000)).ev(
        "c",
        "2026-11-03T10:00:00Z",
        sent("i2", 2500),
    );
    s.ev("c", "2026-11-04T10:00:00Z", completed("k1"));
    let p = s.score_at("c", "2026-11-05T00:00:00Z").await;
    assert_eq!(factor(&p, "invoices_unpaid"), (2, -20));
    assert_eq!(
        (
            p.balance.outstanding_balance_cents,
            p.balance.unpaid_invoices
        ),
        (7500, 2)
    );
    assert_eq!(p.lead_score, 0, "15 - 20 clamps at 0");
    s.ev("c", "2026-11-06T10:00:00Z", paid("i1"));
    let p = s.score_at("c", "2026-11-07T00:00:00Z").await;
    assert_eq!(factor(&p, "invoices_paid"), (1, 10));
    assert_eq!(factor(&p, "invoices_unpaid"), (1, -10));
    assert_eq!(p.balance.outstanding_balance_cents, 2500);
    assert_eq!(p.lead_score, 15);
}

#[tokio::test]
async fn a_task_becomes_overdue_with_no_new_event() {
    let mut s = Script::new();
    s.ev("c", "2026-11-01T10:00:00Z", completed("k1"));
    s.ev(
        "c",
        "2026-11-01T12:00:00Z",
        Payload::TaskCreated(TaskCreated {
            task_id: "t1".into(),
            title: "Call".into(),
            due_at: t("2026-11-03T09:00:00Z"),
        }),
    );
    let p = s.score_at("c", "2026-11-03T09:00:00Z").await;
    assert_eq!(
        (factor(&p, "tasks_overdue"), p.lead_score),
        ((0, 0), 15),
        "due, not yet overdue"
    );
    assert_eq!(
        s.state.next_timer(),
        Some(t("2026-11-03T09:00:00.001Z").timestamp_millis())
    );
    let p = s.score_at("c", "2026-11-03T09:00:01Z").await;
    assert_eq!((factor(&p, "tasks_overdue"), p.lead_score), ((1, -5), 10));
    s.ev(
        "c",
        "2026-11-03T10:00:00Z",
        Payload::TaskCompleted(TaskRef {
            task_id: "t1".into(),
        }),
    );
    let p = s.score_at("c", "2026-11-04T00:00:00Z").await;
    assert_eq!(factor(&p, "tasks_overdue"), (0, 0));
}

#[tokio::test]
async fn order_of_arrival_does_not_matter_and_duplicates_count_once() {
    let mut a = Script::new();
    a.ev("c", "2026-11-02T10:00:00Z", sent("i1", 100))
        .ev("c", "2026-11-03T10:00:00Z", paid("i1"));
    let mut b = Script::new();
    b.ev("c", "2026-11-03T10:00:00Z", paid("i1"))
        .ev("c", "2026-11-02T10:00:00Z", sent("i1", 100));
    let (pa, pb) = (
        a.score_at("c", "2026-11-05T00:00:00Z").await,
        b.score_at("c", "2026-11-05T00:00:00Z").await,
    );
    assert_eq!(pa.fingerprint(), pb.fingerprint());
    let dup = Event {
        schema_version: 1,
        event_id: "e1".into(),
        business_id: "b".into(),
        contact_id: "c".into(),
        occurred_at: t("2026-11-04T00:00:00Z"),
        source: "manual".into(),
        payload: completed("k9"),
    };
    assert_eq!(a.state.apply(&dup), crate::state::Applied::Duplicate);
}

#[tokio::test]
async fn weights_and_caps_come_from_configuration() {
    let mut s = Script::new();
    for i in 0..3 {
        s.ev(
            "c",
            &format!("2026-11-0{}T11:00:00Z", i + 1),
            completed(&format!("k{i}")),
        );
    }
    let engine = Engine::new(ScoringConfig {
        booking_weight: 40,
        booking_cap: 2,
        ..Default::default()
    });
    let key = ContactKey::new("b", "c");
    let p = engine
        .evaluate(
            &mut s.state,
            &[key],
            t("2026-11-05T00:00:00Z").timestamp_millis(),
            0,
        )
        .await
        .unwrap();
    assert_eq!(p[0].lead_score, 80);
}

/// Splitting a group into concurrent metric runs changes no profile: every file groups by
/// contact, and each run numbers its own contacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_runs_give_the_profiles_of_one_run() {
    let fixture = || {
        let mut state = PartitionState::default();
        for ev in super::golden::fixture_events() {
            state.apply(&ev);
        }
        state
    };
    let mut keys: Vec<ContactKey> = fixture().contacts.keys().cloned().collect();
    keys.sort();
    assert!(keys.len() >= 3, "the fixture has {} contacts", keys.len());
    let now = t("2026-11-24T12:00:00Z").timestamp_millis();
    let one = Engine::new(ScoringConfig::default()).with_parallelism(1, usize::MAX);
    let split = Engine::new(ScoringConfig::default()).with_parallelism(3, 1);
    let expected = one.evaluate(&mut fixture(), &keys, now, 0).await.unwrap();
    let actual = split.evaluate(&mut fixture(), &keys, now, 0).await.unwrap();
    assert_eq!(actual.len(), keys.len());
    assert_eq!(actual, expected);
}

/// A contact known only from its bookings and invoices (no contact event) shows as UNKNOWN and
/// is in no lead-only segment and has no lead-stale item, however long it is untouched; the
/// first status a contact event gives it counts from then on.
#[tokio::test]
async fn a_contact_never_created_is_unknown_not_a_lead() {
    let mut s = Script::new();
    s.ev("c", "2026-10-01T10:00:00Z", booking("b1")).ev(
        "c",
        "2026-10-01T11:00:00Z",
        sent("i1", 5000),
    );
    let p = s.score_at("c", "2026-11-20T12:00:00Z").await;
    assert_eq!(p.status, "UNKNOWN");
    assert!(
        p.segments.iter().any(|m| m.segment == "bronze"),
        "{:?}",
        p.segments
    );
    for lead_only in ["new_leads_this_week", "cold_leads_unpaid"] {
        assert!(
            p.segment_names().all(|n| n != lead_only),
            "{:?}",
            p.segments
        );
    }
    assert!(
        p.next_actions.iter().all(|a| a.kind != "lead_stale"),
        "{:?}",
        p.next_actions
    );

    // The same history once the CRM says it is a lead: a cold lead with an unpaid invoice.
    s.ev(
        "c",
        "2026-10-01T09:00:00Z",
        Payload::ContactUpdated(ContactUpdated {
            status: Some("LEAD".into()),
            ..Default::default()
        }),
    );
    let p = s.score_at("c", "2026-11-20T12:00:00Z").await;
    assert_eq!(p.status, "LEAD");
    assert!(
        p.segment_names().any(|n| n == "cold_leads_unpaid"),
        "{:?}",
        p.segments
    );
    assert!(
        p.next_actions.iter().any(|a| a.kind == "lead_stale"),
        "{:?}",
        p.next_actions
    );
}
