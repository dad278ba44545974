//! Signals for automation: what changed about a contact between the profile last written and
//! the one just evaluated — segment entries and exits, Next Action items opened and resolved, a
//! promotion suggested, a change of the status shown — plus the AI flow-feed prompts. Published
//! on the signals topic and stored beside the profiles with the event ids and rule version
//! behind them.

use serde_json::json;

pub use model::signal::*;

use crate::clock::Ms;
use crate::profile::ContactProfile;
use crate::state::{ContactState, FROM_KEYFLOW};

fn exit_reason(p: &ContactProfile, caused_by: &[String]) -> String {
    if p.deleted {
        "contact deleted".into()
    } else if let Some(into) = &p.merged_into {
        format!("merged into {into}")
    } else if caused_by.is_empty() {
        "no longer applies as time passed".into()
    } else {
        "no longer applies after new events".into()
    }
}

/// The signals between what was last written for `c` and the new profile `p`.
pub fn diff(c: &ContactState, p: &ContactProfile, caused_by: &[String]) -> Vec<Signal> {
    let basis = c.events_applied;
    let mut out = Vec::new();
    for m in &p.segments {
        if !c.last_segments.contains(&m.segment) {
            out.push(Signal::new(
                SEGMENT_UPDATED,
                p,
                basis,
                m.segment.clone(),
                "entered",
                m.reason.clone(),
                caused_by,
                json!({"segment": m.segment}),
            ));
        }
    }
    for s in &c.last_segments {
        if !p.segment_names().any(|n| n == s) {
            out.push(Signal::new(
                SEGMENT_UPDATED,
                p,
                basis,
                s.clone(),
                "exited",
                exit_reason(p, caused_by),
                caused_by,
                json!({"segment": s}),
            ));
        }
    }
    for a in &p.next_actions {
        if !c
            .last_actions
            .iter()
            .any(|(k, r)| *k == a.kind && *r == a.ref_id)
        {
            out.push(Signal::new(
                ACTION_OPENED,
                p,
                basis,
                format!("{}:{}", a.kind, a.ref_id),
                "opened",
                a.message.clone(),
                caused_by,
                json!({"kind": a.kind, "ref_id": a.ref_id, "since": rfc3339(a.since),
                       "priority": a.priority, "message": a.message}),
            ));
        }
    }
    for (kind, ref_id) in &c.last_actions {
        if !p
            .next_actions
            .iter()
            .any(|a| a.kind == *kind && a.ref_id == *ref_id)
        {
            out.push(Signal::new(
                ACTION_RESOLVED,
                p,
                basis,
                format!("{kind}:{ref_id}"),
                "resolved",
                exit_reason(p, caused_by).replace("no longer applies", "resolved"),
                caused_by,
                json!({"kind": kind, "ref_id": ref_id}),
            ));
        }
    }
    if let Some(from) = c.last_status.as_deref().filter(|from| *from != p.status) {
        if p.visible() {
            let reason = if p.status_source == FROM_KEYFLOW {
                format!(
                    "promoted by KeyFlow: {} completed bookings",
                    p.activity.completed_bookings_total
                )
            } else {
                "status set in the CRM".to_owned()
            };
            out.push(Signal::new(
                STATUS_CHANGED,
                p,
                basis,
                p.status.clone(),
                "status",
                reason,
                caused_by,
                json!({"contactId": p.contact_id, "businessId": p.business_id,
                       "fromStatus": from, "toStatus": p.status,
                       "statusSource": p.status_source}),
            ));
        }
    }
    if let (None, Some(at)) = (c.promotion_suggested_at, p.promotion_suggested_at) {
        if p.visible() {
            out.push(Signal::new(
                PROMOTION_SUGGESTED,
                p,
                basis,
                "CLIENT".into(),
                "suggested",
                format!(
                    "LEAD with {} completed bookings",
                    p.activity.completed_bookings_total
                ),
                caused_by,
                json!({"from": p.status, "to": "CLIENT", "eligible_at": rfc3339(at),
                       "completed_bookings": p.activity.completed_bookings_total}),
            ));
        }
    }
    // A suggestion made for a contact that then leaves (merged away or deleted) is withdrawn,
    // once: automation holding it must not promote a contact that is gone. Across partitions a
    // merged contact can be suggested before its own partition hears of the merge, so without
    // this the end state would depend on that timing.
    if c.promotion_suggested_at.is_some() && c.last_visible && !p.visible() {
        out.push(Signal::new(
            PROMOTION_SUGGESTED,
            p,
            basis,
            "CLIENT".into(),
            "withdrawn",
            exit_reason(p, caused_by),
            caused_by,
            json!({"from": p.status, "to": "CLIENT"}),
        ));
    }
    out
}

/// A flow-feed prompt for one accepted event (see `ai_hooks::feed_prompt`).
pub fn feed(ev: &crate::event::Event, partition: i32, now: Ms) -> Option<Signal> {
    let prompt = crate::ai_hooks::feed_prompt(ev)?;
    Some(Signal {
        signal_id: fnv(&[FEED_PROMPT, &ev.event_id]),
        kind: FEED_PROMPT,
        business_id: ev.business_id.clone(),
        contact_id: ev.contact_id.clone(),
        partition,
        subject: ev.event_id.clone(),
        change: "prompt",
        reason: prompt.text.clone(),
        at: now,
        rule_version: crate::ai_hooks::STUB_VERSION.into(),
        caused_by: vec![ev.event_id.clone()],
        detail: json!({"prompt": prompt.text, "event_type": ev.payload.type_name(),
                       "stub": true, "hookPoint": prompt.hook_point}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(fnv(&["a", "b"]), fnv(&["a", "b"]));
        assert_ne!(fnv(&["ab", ""]), fnv(&["a", "b"]));
        // Pinned: a change of the hash would re-identify every signal.
        assert_eq!(fnv(&["x"]), "08f1c907b58eba68");
    }

    fn profile(
        segments: &[&str],
        actions: &[(&str, &str)],
        promoted: Option<Ms>,
    ) -> ContactProfile {
        use crate::profile::{Membership, NextAction};
        ContactProfile {
            business_id: "b".into(),
            contact_id: "c".into(),
            segments: segments
                .iter()
                .map(|s| Membership {
                    segment: (*s).into(),
                    reason: "why".into(),
                })
                .collect(),
            next_actions: actions
                .iter()
                .map(|(k, r)| NextAction {
                    kind: (*k).into(),
                    ref_id: (*r).into(),
                    since: 0,
                    age_days: 0,
                    priority: 0.0,
                    message: "do it".into(),
                })
                .collect(),
            promotion_suggested_at: promoted,
            activity: model::sections::Activity {
                completed_bookings_total: 3,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn signals_taken_as_written_leave_the_state_of_the_profile_written() {
        let before = profile(&["vip", "cold"], &[("invoice_overdue", "i1")], None);
        let after = profile(
            &["cold", "silver"],
            &[("booking_unconfirmed", "k1")],
            Some(1_700_000_000_000),
        );
        let mut c = ContactState::default();
        c.remember(&before);
        let signals = diff(&c, &after, &[]);
        assert_eq!(signals.len(), 5, "{signals:?}");

        let mut taken = c.clone();
        assert!(signals.iter().all(|s| taken.take_as_written(s)));
        let mut written = c.clone();
        written.remember(&after);
        taken.last_segments.sort();
        written.last_segments.sort();
        assert_eq!(taken.last_segments, written.last_segments);
        assert_eq!(taken.last_actions, written.last_actions);
        assert_eq!(taken.promotion_suggested_at, written.promotion_suggested_at);
        assert!(diff(&taken, &after, &[]).is_empty(), "nothing left to say");

        // Over a profile that already reflects them, they change nothing.
        assert!(!signals.iter().any(|s| written.take_as_written(s)));
    }

    #[test]
    fn a_restored_signal_publishes_the_same_json() {
        let s = Signal {
            signal_id: "id1".into(),
            kind: SEGMENT_UPDATED,
            business_id: "b".into(),
            contact_id: "c".into(),
            partition: 3,
            subject: "vip".into(),
            change: "entered",
            reason: "why".into(),
            at: 1_700_000_000_000,
            rule_version: "v1".into(),
            caused_by: vec!["e1".into()],
            detail: json!({"segment": "vip"}),
        };
        let back = Signal::restore(
            s.signal_id.clone(),
            s.kind,
            s.business_id.clone(),
            s.contact_id.clone(),
            s.partition,
            s.subject.clone(),
            s.change,
            s.reason.clone(),
            s.at,
            s.rule_version.clone(),
            s.caused_by.clone(),
            &s.detail.to_string(),
        )
        .unwrap();
        assert_eq!(back, s);
        assert_eq!(back.to_json(), s.to_json());
        let bad = Signal::restore(
            "id2".into(),
            "contact.exploded",
            "b".into(),
            "c".into(),
            0,
            String::new(),
            "entered",
            String::new(),
            0,
            String::new(),
            vec![],
            "{}",
        );
        assert_eq!(
            bad.unwrap_err(),
            "signal id2: unknown type \"contact.exploded\""
        );
    }
}
