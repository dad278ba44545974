//! Signals for automation: what changed about a contact between the profile last written and
//! the one just evaluated — segment entries and exits, Next Action items opened and resolved, a
//! promotion suggested — plus the AI flow-feed prompts. Published on the signals topic and stored
//! beside the profiles with the event ids and rule version behind them.
//!
//! A signal's id is derived from what it says and from how many events the contact had folded,
//! so the same change recomputed after a crash carries the same id and consumers can drop it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::profile::ContactProfile;
use crate::state::{ContactState, Ms};

pub const SEGMENT_UPDATED: &str = "contact.segment.updated";
pub const ACTION_OPENED: &str = "next_action.opened";
pub const ACTION_RESOLVED: &str = "next_action.resolved";
pub const PROMOTION_SUGGESTED: &str = "contact.promotion.suggested";
pub const FEED_PROMPT: &str = "ai.feed.prompt";

/// Every signal type, for reading a stored one back.
pub const KINDS: [&str; 5] = [
    SEGMENT_UPDATED,
    ACTION_OPENED,
    ACTION_RESOLVED,
    PROMOTION_SUGGESTED,
    FEED_PROMPT,
];
/// Every change a signal can carry.
pub const CHANGES: [&str; 6] = [
    "entered",
    "exited",
    "opened",
    "resolved",
    "suggested",
    "prompt",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub signal_id: String,
    /// The `type` of the signal (one of the constants above).
    pub kind: &'static str,
    pub business_id: String,
    pub contact_id: String,
    pub partition: i32,
    /// The segment, the Next Action item (`kind:ref_id`), the status suggested, or the event.
    pub subject: String,
    /// entered, exited, opened, resolved, suggested or prompt.
    pub change: &'static str,
    pub reason: String,
    pub at: Ms,
    pub rule_version: String,
    /// Ids of this batch's events about the contact (empty when time alone caused it).
    pub caused_by: Vec<String>,
    /// Type-specific fields, merged into the published JSON.
    pub detail: Value,
}

/// FNV-1a, 64 bit: stable across builds and platforms (unlike `DefaultHasher`).
fn fnv(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn rfc3339(ms: Ms) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Signal {
    #[allow(clippy::too_many_arguments)]
    fn new(
        kind: &'static str,
        p: &ContactProfile,
        basis: u64,
        subject: String,
        change: &'static str,
        reason: String,
        caused_by: &[String],
        detail: Value,
    ) -> Self {
        let basis = basis.to_string();
        Self {
            signal_id: fnv(&[
                kind,
                &p.business_id,
                &p.contact_id,
                &subject,
                change,
                &basis,
            ]),
            kind,
            business_id: p.business_id.clone(),
            contact_id: p.contact_id.clone(),
            partition: p.partition,
            subject,
            change,
            reason,
            at: p.evaluated_at,
            rule_version: p.rule_version.clone(),
            caused_by: caused_by.to_vec(),
            detail,
        }
    }

    /// A signal read back from a store, field by field as [`Signal`] holds them; `kind` and
    /// `change` must be among [`KINDS`] and [`CHANGES`], `detail` a JSON object.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        signal_id: String,
        kind: &str,
        business_id: String,
        contact_id: String,
        partition: i32,
        subject: String,
        change: &str,
        reason: String,
        at: Ms,
        rule_version: String,
        caused_by: Vec<String>,
        detail: &str,
    ) -> Result<Self, String> {
        let kind = *KINDS
            .iter()
            .find(|k| **k == kind)
            .ok_or_else(|| format!("signal {signal_id}: unknown type {kind:?}"))?;
        let change = *CHANGES
            .iter()
            .find(|c| **c == change)
            .ok_or_else(|| format!("signal {signal_id}: unknown change {change:?}"))?;
        let detail: Value = serde_json::from_str(detail)
            .map_err(|e| format!("signal {signal_id}: detail is not JSON: {e}"))?;
        Ok(Self {
            signal_id,
            kind,
            business_id,
            contact_id,
            partition,
            subject,
            change,
            reason,
            at,
            rule_version,
            caused_by,
            detail,
        })
    }

    /// The JSON published on the signals topic.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "signal_id": self.signal_id,
            "type": self.kind,
            "business_id": self.business_id,
            "contact_id": self.contact_id,
            "change": self.change,
            "reason": self.reason,
            "at": rfc3339(self.at),
            "rule_version": self.rule_version,
            "caused_by": self.caused_by,
        });
        if let (Value::Object(m), Value::Object(d)) = (&mut v, &self.detail) {
            for (k, x) in d {
                m.insert(k.clone(), x.clone());
            }
        }
        v
    }
}

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
                    p.completed_bookings_total
                ),
                caused_by,
                json!({"from": p.status, "to": "CLIENT", "eligible_at": rfc3339(at),
                       "completed_bookings": p.completed_bookings_total}),
            ));
        }
    }
    out
}

/// Takes a stored signal as written into `c`'s last-written state, the inverse of [`diff`]:
/// returns whether that changed anything. A store whose write is not atomic (ClickHouse) can
/// hold, and the processor has then republished, a write's signals without its profiles; the
/// rebuilt state must start from what was signalled, or a replay that undoes the change would
/// compare against the older profile, find nothing to say, and leave the change announced
/// forever (see `Recovered::signalled`).
pub fn take_as_written(c: &mut ContactState, s: &Signal) -> bool {
    let detail = |k: &str| s.detail[k].as_str().unwrap_or_default().to_owned();
    match (s.kind, s.change) {
        (SEGMENT_UPDATED, "entered") => {
            if c.last_segments.contains(&s.subject) {
                false
            } else {
                c.last_segments.push(s.subject.clone());
                true
            }
        }
        (SEGMENT_UPDATED, "exited") => {
            let before = c.last_segments.len();
            c.last_segments.retain(|x| *x != s.subject);
            c.last_segments.len() != before
        }
        (ACTION_OPENED, _) => {
            let item = (detail("kind"), detail("ref_id"));
            if c.last_actions.contains(&item) {
                false
            } else {
                c.last_actions.push(item);
                true
            }
        }
        (ACTION_RESOLVED, _) => {
            let item = (detail("kind"), detail("ref_id"));
            let before = c.last_actions.len();
            c.last_actions.retain(|x| *x != item);
            c.last_actions.len() != before
        }
        (PROMOTION_SUGGESTED, _) if c.promotion_suggested_at.is_none() => {
            let at = DateTime::parse_from_rfc3339(&detail("eligible_at"))
                .map_or(s.at, |t| t.timestamp_millis());
            c.promotion_suggested_at = Some(at);
            true
        }
        _ => false,
    }
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
            completed_bookings_total: 3,
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
        assert!(signals.iter().all(|s| take_as_written(&mut taken, s)));
        let mut written = c.clone();
        written.remember(&after);
        taken.last_segments.sort();
        written.last_segments.sort();
        assert_eq!(taken.last_segments, written.last_segments);
        assert_eq!(taken.last_actions, written.last_actions);
        assert_eq!(taken.promotion_suggested_at, written.promotion_suggested_at);
        assert!(diff(&taken, &after, &[]).is_empty(), "nothing left to say");

        // Over a profile that already reflects them, they change nothing.
        assert!(!signals.iter().any(|s| take_as_written(&mut written, s)));
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
