//! Merges across partitions, as a property: random histories with merges (chains included) and
//! late deletes, updates and erases of merged contacts, spread over 3 or 6 partitions by contact,
//! each partition reading its input in random batches while the re-key messages between
//! partitions arrive in random interleavings. Every partition's forwards are routed as the
//! processor routes them (histories read from what that partition stored). The profiles the
//! partitions own, together, must equal one partition's that read everything, for every seed.

use std::collections::{BTreeMap, VecDeque};

use super::order::Lcg;
use super::*;
use crate::event::Event;
use crate::state::Forward;

const NOW: &str = "2026-11-24T12:00:00Z";

fn event(id: usize, contact: usize, day: usize, kind: &str, data: serde_json::Value) -> Event {
    serde_json::from_value(serde_json::json!({
        "event_id": format!("e{id:04}"),
        "business_id": "b",
        "contact_id": format!("c{contact:02}"),
        "occurred_at": format!("2026-11-{:02}T{:02}:00:00Z", 1 + day % 23, 8 + id % 10),
        "source": "manual",
        "type": kind,
        "data": data,
    }))
    .unwrap()
}

/// Twelve contacts' lives; then merges forming chains (never a cycle); then late events of
/// merged contacts.
fn history(rng: &mut Lcg) -> Vec<Event> {
    let mut out = Vec::new();
    let mut id = 0;
    let mut next = |c: usize, day: usize, kind: &str, data: serde_json::Value| {
        id += 1;
        event(id, c, day, kind, data)
    };
    for c in 0..12 {
        if rng.next(5) > 0 {
            out.push(next(
                c,
                rng.next(10),
                "contact.created",
                serde_json::json!({"name": format!("Name {c}"), "email": format!("c{c}@x.io"),
                                   "tags": [format!("t{}", c % 3)]}),
            ));
        }
        for b in 0..rng.next(4) {
            let day = rng.next(20);
            out.push(next(
                c,
                day,
                "booking.created",
                serde_json::json!({
                "booking_id": format!("b{c}-{b}"), "service_id": format!("s{}", b % 2),
                "service_name": "Cut", "starts_at": format!("2026-11-{:02}T10:00:00Z", 2 + day),
                "price_cents": 4000}),
            ));
            if rng.next(3) > 0 {
                out.push(next(
                    c,
                    day + 1,
                    "booking.completed",
                    serde_json::json!({"booking_id": format!("b{c}-{b}")}),
                ));
            }
        }
        for i in 0..rng.next(3) {
            let day = rng.next(20);
            out.push(next(
                c,
                day,
                "invoice.sent",
                serde_json::json!({
                "invoice_id": format!("i{c}-{i}"), "amount_cents": 5000, "currency": "EUR",
                "due_at": format!("2026-11-{:02}T00:00:00Z", 3 + day)}),
            ));
            if rng.next(2) > 0 {
                out.push(next(
                    c,
                    day + 2,
                    "invoice.paid",
                    serde_json::json!({"invoice_id": format!("i{c}-{i}")}),
                ));
            }
        }
        if rng.next(2) > 0 {
            out.push(next(
                c,
                rng.next(20),
                "note.created",
                serde_json::json!({"note_id": format!("n{c}"), "body": format!("about {c}")}),
            ));
        }
    }
    // Merges: each contact merged at most once, into one with a greater number (no cycle).
    let mut merged = Vec::new();
    for m in 0..11 {
        if rng.next(3) == 0 {
            let s = m + 1 + rng.next(11 - m);
            out.push(next(
                s,
                12 + rng.next(5),
                "contact.merged",
                serde_json::json!({"merged_contact_id": format!("c{m:02}")}),
            ));
            merged.push(m);
        }
    }
    for &m in &merged {
        match rng.next(4) {
            0 => out.push(next(m, 18, "contact.deleted", serde_json::json!({}))),
            1 => out.push(next(m, 18, "contact.erased", serde_json::json!({}))),
            2 => out.push(next(
                m,
                18,
                "contact.updated",
                serde_json::json!({"name": "Late", "status": "CLIENT"}),
            )),
            _ => out.push(next(
                m,
                19,
                "booking.completed",
                serde_json::json!({"booking_id": format!("b{m}-0")}),
            )),
        }
    }
    out
}

/// The profiles `state` owns, evaluated at `now`, partition numbers left out.
async fn owned(state: &mut PartitionState, now: Ms) -> BTreeMap<String, ContactProfile> {
    state.mark_all_dirty();
    let due = state.take_due(now);
    let engine = Engine::new(ScoringConfig::default());
    engine
        .evaluate(state, &due, now, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|mut p| {
            p.partition = 0;
            (p.contact_id.clone(), p)
        })
        .collect()
}

/// One run over `n` partitions: random batches of input, random deliveries of re-key messages.
async fn spread(
    events: &[Event],
    n: usize,
    rng: &mut Lcg,
    now: Ms,
) -> BTreeMap<String, ContactProfile> {
    let home = |e: &Event| e.contact_id[1..].parse::<usize>().unwrap() * 7 % n;
    let mut inputs: Vec<VecDeque<Event>> = vec![VecDeque::new(); n];
    for e in events {
        inputs[home(e)].push_back(e.clone());
    }
    let mut rekey: Vec<VecDeque<(Event, i32)>> = vec![VecDeque::new(); n];
    let mut stored: Vec<Vec<Event>> = vec![Vec::new(); n];
    let mut states: Vec<PartitionState> = (0..n).map(|_| PartitionState::default()).collect();
    loop {
        let ready: Vec<(usize, bool)> = (0..n)
            .flat_map(|p| [(p, !inputs[p].is_empty()), (p, !rekey[p].is_empty())])
            .enumerate()
            .filter(|(_, (_, has))| *has)
            .map(|(i, (p, _))| (p, i % 2 == 0))
            .collect();
        if ready.is_empty() {
            break;
        }
        let (p, input) = ready[rng.next(ready.len())];
        let mut forwards = Vec::new();
        for _ in 0..1 + rng.next(4) {
            if input {
                let Some(e) = inputs[p].pop_front() else {
                    break;
                };
                if states[p].apply(&e) == crate::state::Applied::New {
                    stored[p].push(e);
                }
            } else {
                let Some((e, origin)) = rekey[p].pop_front() else {
                    break;
                };
                states[p].apply_rekeyed(&e, origin);
            }
            forwards.extend(states[p].take_forwards());
        }
        for f in forwards {
            match f {
                Forward::Broadcast(e) => {
                    for to in (0..n).filter(|&to| to != p) {
                        rekey[to].push_back((e.clone(), p as i32));
                    }
                }
                Forward::Event { event, to, .. } => rekey[to as usize].push_back((event, p as i32)),
                Forward::History { contact, to, .. } => {
                    for e in stored[p]
                        .iter()
                        .filter(|e| *e.contact_id == *contact.contact_id)
                    {
                        rekey[to as usize].push_back((e.clone(), p as i32));
                    }
                }
            }
        }
    }
    let mut all = BTreeMap::new();
    for state in &mut states {
        for (id, p) in owned(state, now).await {
            assert!(
                all.insert(id.clone(), p).is_none(),
                "{id} is owned by two partitions"
            );
        }
    }
    all
}

#[tokio::test]
async fn merges_spread_over_partitions_give_one_partitions_profiles() {
    let now = chrono::DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .timestamp_millis();
    let mut rng = Lcg(11);
    for round in 0..12 {
        let mut events = history(&mut rng);
        for i in (1..events.len()).rev() {
            events.swap(i, rng.next(i + 1));
        }
        let mut one = PartitionState::default();
        for e in &events {
            one.apply(e);
        }
        let reference = owned(&mut one, now).await;
        if !events
            .iter()
            .any(|e| matches!(e.payload, crate::event::Payload::ContactMerged(_)))
        {
            continue;
        }
        for n in [3, 6] {
            let spread = spread(&events, n, &mut rng, now).await;
            for (id, want) in &reference {
                assert_eq!(
                    spread.get(id),
                    Some(want),
                    "round {round}, {n} partitions: {id}"
                );
            }
            assert_eq!(
                spread.len(),
                reference.len(),
                "round {round}, {n} partitions"
            );
        }
    }
}
