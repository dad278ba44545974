//! The signal contract: what changed about a contact, as published on the signals topic and
//! stored beside the profiles. The derivation of signals from state lives in the engine
//! (`pipeline::signals`).
//!
//! A signal's id is derived from what it says and from how many events the contact had folded,
//! so the same change recomputed after a crash carries the same id and consumers can drop it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::clock::Ms;
use crate::profile::ContactProfile;

pub const SEGMENT_UPDATED: &str = "contact.segment.updated";
pub const ACTION_OPENED: &str = "next_action.opened";
pub const ACTION_RESOLVED: &str = "next_action.resolved";
pub const PROMOTION_SUGGESTED: &str = "contact.promotion.suggested";
/// The status shown changed (the CRM's own event type, so a CRM can apply it as it is).
pub const STATUS_CHANGED: &str = "contact.updated";
pub const FEED_PROMPT: &str = "ai.feed.prompt";

/// Every signal type, for reading a stored one back.
pub const KINDS: [&str; 6] = [
    SEGMENT_UPDATED,
    ACTION_OPENED,
    ACTION_RESOLVED,
    PROMOTION_SUGGESTED,
    STATUS_CHANGED,
    FEED_PROMPT,
];
/// Every change a signal can carry.
pub const CHANGES: [&str; 8] = [
    "entered",
    "exited",
    "opened",
    "resolved",
    "suggested",
    "withdrawn",
    "status",
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
    /// The segment, the Next Action item (`kind:ref_id`), the status suggested or now shown, or
    /// the event.
    pub subject: String,
    /// entered, exited, opened, resolved, suggested, status or prompt.
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
pub fn fnv(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

pub fn rfc3339(ms: Ms) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Signal {
    /// A new signal about `p`; `basis` (how many events the contact had folded) makes the id
    /// of a recomputed change equal to the first one's.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
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
