//! Order, batching and replay: the golden fixture delivered in shuffled orders and random batch
//! sizes (each duplicated event delivered twice), evaluated after every batch at a pinned clock,
//! then carried one day and two weeks forward on timers alone, must end with the same profiles, and the
//! signals must agree with them: per contact and subject, entries and exits alternate and the
//! last one matches the final membership. A replay into fresh state after `remember` of the
//! final profiles emits nothing.

use std::collections::BTreeMap;

use chrono::DateTime;

use super::golden::fixture_events;
use super::*;
use crate::signals::{self, Signal};

fn ms(s: &str) -> Ms {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

/// A small deterministic generator (no dependency needed for a shuffle).
pub(super) struct Lcg(pub u64);

impl Lcg {
    pub(super) fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// Runs the processor's fold/evaluate/diff/remember cycle over `batches` at `now`, then at each
/// later instant of `ticks` on timers alone. Returns the final profiles and every signal.
async fn run(
    batches: Vec<Vec<crate::event::Event>>,
    now: Ms,
    ticks: &[Ms],
) -> (BTreeMap<(String, String), ContactProfile>, Vec<Signal>) {
    let engine = Engine::new(ScoringConfig::default());
    let mut state = PartitionState::default();
    let mut finals = BTreeMap::new();
    let mut out = Vec::new();
    let step = |state: &mut PartitionState, at: Ms| {
        let due = state.take_due(at);
        (due, at)
    };
    let mut evaluate = async |state: &mut PartitionState, due: Vec<ContactKey>, at: Ms| {
        let profiles = engine.evaluate(state, &due, at, 0).await.unwrap();
        for p in profiles {
            let key = ContactKey::new(&p.business_id, &p.contact_id);
            let c = state.contacts.get_mut(&key).unwrap();
            if c.last_written == Some(p.fingerprint()) {
                continue;
            }
            out.extend(signals::diff(c, &p, &[]));
            c.remember(&p);
            finals.insert((p.business_id.clone(), p.contact_id.clone()), p);
        }
    };
    for batch in batches {
        for ev in &batch {
            state.apply(ev);
        }
        let (due, at) = step(&mut state, now);
        evaluate(&mut state, due, at).await;
    }
    for &t in ticks {
        // Every timer due by t fires at t (a processor that was down meanwhile).
        let (due, at) = step(&mut state, t);
        evaluate(&mut state, due, at).await;
    }
    for p in finals.values_mut() {
        p.evaluated_at = 0;
    }
    (finals, out)
}

/// Per contact and subject: entries/exits alternate and the last matches `finals`.
fn assert_consistent(
    finals: &BTreeMap<(String, String), ContactProfile>,
    signals: &[Signal],
    label: &str,
) {
    let mut last: BTreeMap<(String, String), &str> = BTreeMap::new();
    for s in signals
        .iter()
        .filter(|s| s.kind == signals::SEGMENT_UPDATED)
    {
        let k = (s.contact_id.clone(), s.subject.clone());
        assert_ne!(
            last.get(&k).copied(),
            Some(s.change),
            "{label}: {k:?} {} twice in a row",
            s.change
        );
        last.insert(k, s.change);
    }
    for ((_, contact), p) in finals {
        for m in p.segment_names() {
            assert_eq!(
                last.get(&(contact.clone(), m.to_owned())).copied(),
                Some("entered"),
                "{label}: {contact} is in {m} but its signals do not say so"
            );
        }
    }
    for ((contact, seg), change) in &last {
        let member = finals[&("b".to_owned(), contact.clone())]
            .segment_names()
            .any(|m| m == seg);
        assert_eq!(*change == "entered", member, "{label}: {contact}/{seg}");
    }
}

#[tokio::test]
async fn shuffled_orders_and_batch_sizes_give_the_same_results_and_signals() {
    let events = fixture_events();
    let now = ms("2026-11-24T12:00:00Z");
    let ticks = [ms("2026-11-25T12:00:00Z"), ms("2026-12-08T12:00:00Z")];
    let (reference, ref_signals) = run(vec![events.clone()], now, &ticks).await;
    assert_consistent(&reference, &ref_signals, "one batch");
    // Time alone moves contacts out of segments (the ticks carry no event).
    assert!(ref_signals
        .iter()
        .any(|s| s.kind == "contact.segment.updated" && s.change == "exited"));

    let mut rng = Lcg(7);
    for round in 0..8 {
        let mut evs = events.clone();
        for i in (1..evs.len()).rev() {
            evs.swap(i, rng.next(i + 1));
        }
        // Redeliver a few events: duplicates must count once.
        for _ in 0..3 {
            let e = evs[rng.next(evs.len())].clone();
            evs.insert(rng.next(evs.len()), e);
        }
        let mut batches = Vec::new();
        while !evs.is_empty() {
            let n = 1 + rng.next(8.min(evs.len()));
            batches.push(evs.drain(..n).collect());
        }
        let label = format!("round {round}");
        let (finals, sigs) = run(batches, now, &ticks).await;
        assert_eq!(finals, reference, "{label}: final profiles differ");
        assert_consistent(&finals, &sigs, &label);
    }
}

#[tokio::test]
async fn a_replay_after_remembering_emits_nothing() {
    let events = fixture_events();
    let now = ms("2026-11-24T12:00:00Z");
    let (first, _) = run(vec![events.clone()], now, &[]).await;
    // Rebuild from the events, as recovery does, knowing the profiles last written.
    let engine = Engine::new(ScoringConfig::default());
    let mut state = PartitionState::default();
    for ev in &events {
        state.apply(ev);
    }
    for p in first.values() {
        let key = ContactKey::new(&p.business_id, &p.contact_id);
        let mut written = p.clone();
        written.evaluated_at = now;
        state.contacts.get_mut(&key).unwrap().remember(&written);
    }
    let due = state.take_due(now);
    let profiles = engine.evaluate(&mut state, &due, now, 0).await.unwrap();
    for p in profiles {
        let c = &state.contacts[&ContactKey::new(&p.business_id, &p.contact_id)];
        assert_eq!(
            c.last_written,
            Some(p.fingerprint()),
            "{} rewritten",
            p.contact_id
        );
        assert!(
            signals::diff(c, &p, &[]).is_empty(),
            "{} re-signalled",
            p.contact_id
        );
    }
}

#[tokio::test]
async fn merges_and_deletions_emit_exits_and_move_history_to_the_survivor() {
    use crate::event::{ContactCreated, ContactMerged, Empty, Event, Payload};
    let ev = |id: &str, contact: &str, at: &str, payload: Payload| Event {
        schema_version: 1,
        event_id: id.into(),
        business_id: "b".into(),
        contact_id: contact.into(),
        occurred_at: DateTime::parse_from_rfc3339(at).unwrap().into(),
        source: "manual".into(),
        payload,
    };
    let created = |name: &str, tags: &[&str]| {
        Payload::ContactCreated(ContactCreated {
            name: name.into(),
            email: None,
            phone: None,
            tags: Some(tags.iter().map(|t| (*t).to_owned()).collect()),
            status: None,
            photo_url: None,
        })
    };
    let first = vec![
        ev(
            "m1",
            "dup",
            "2026-11-20T10:00:00Z",
            created("Dup", &["vip"]),
        ),
        ev("m2", "main", "2026-11-21T10:00:00Z", created("Main", &[])),
        ev("m3", "gone", "2026-11-21T10:00:00Z", created("Gone", &[])),
    ];
    let second = vec![
        ev(
            "m4",
            "main",
            "2026-11-22T10:00:00Z",
            Payload::ContactMerged(ContactMerged {
                merged_contact_id: "dup".into(),
            }),
        ),
        ev(
            "m5",
            "gone",
            "2026-11-22T10:00:00Z",
            Payload::ContactDeleted(Empty {}),
        ),
    ];
    let now = ms("2026-11-24T12:00:00Z");
    let (finals, sigs) = run(vec![first, second], now, &[]).await;
    let of = |c: &str| -> Vec<(String, &str, String)> {
        sigs.iter()
            .filter(|s| s.contact_id == c && s.kind == signals::SEGMENT_UPDATED)
            .map(|s| (s.subject.clone(), s.change, s.reason.clone()))
            .collect()
    };
    assert!(of("dup").contains(&("tag:vip".into(), "exited", "merged into main".into())));
    assert!(of("main").contains(&("tag:vip".into(), "entered", "tagged vip".into())));
    assert!(of("gone").contains(&("bronze".into(), "exited", "contact deleted".into())));
    let main = &finals[&("b".to_owned(), "main".to_owned())];
    assert!(main.segment_names().any(|s| s == "tag:vip"));
    // A merge is not an interaction: the last one is still main's creation (dup's is older).
    assert_eq!(main.last_interaction_at, Some(ms("2026-11-21T10:00:00Z")));
    let dup = &finals[&("b".to_owned(), "dup".to_owned())];
    assert_eq!(dup.merged_into.as_deref(), Some("main"));
    assert_eq!(main.aliases, ["dup"]);
    assert!(dup.segments.is_empty() && dup.next_actions.is_empty());
}
