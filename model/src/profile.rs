//! What the engine produces per contact: the current profile with every metric, the factors
//! that explain the lead score, the segments it belongs to and its Next Action items. Sinks
//! store it; the API serves it.

use std::hash::{Hash, Hasher};

use educe::Educe;
use serde::{Deserialize, Serialize};

use crate::clock::Ms;
pub use crate::sections::{Activity, Affinity, Balance, Gaps, Reliability, Section};

/// One term of the lead score.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Factor {
    /// Which input: bookings_completed, invoices_paid, invoices_unpaid, tasks_overdue.
    pub factor: String,
    /// How many of it count at the evaluation instant (before the cap).
    pub count: i64,
    /// Points it contributes (negative for penalties).
    pub points: i64,
}

/// Membership of one segment, with why (as of the evaluation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub segment: String,
    pub reason: String,
}

/// One open item of the business's Next Action queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Educe)]
#[educe(Hash)]
pub struct NextAction {
    /// invoice_overdue, booking_unconfirmed, task_stale or lead_stale.
    pub kind: String,
    /// The invoice, booking or task id (the contact id for lead_stale).
    pub ref_id: String,
    /// The instant the age counts from (due date, booking creation, last interaction).
    pub since: Ms,
    /// Local days (the business's calendar: midnights passed) since `since`.
    pub age_days: i64,
    /// age_days × (1 + lead_score / 100).
    #[educe(Hash(method(hash_f64)))]
    pub priority: f64,
    pub message: String,
}

/// One service this contact booked within the service window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceStat {
    pub service_id: String,
    pub service_name: Option<String>,
    /// Bookings created in the window and not cancelled.
    pub bookings: i64,
    /// Of those, completed.
    pub completed: i64,
    /// Paid invoices in the window linked to the service (directly or through a booking).
    pub revenue_cents: i64,
}

/// Fields absent from rows written by an older version read as their defaults. `Hash` covers
/// every field but `evaluated_at` (see [`ContactProfile::fingerprint`]); floats hash by bits.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, Educe)]
#[educe(Hash)]
#[serde(default)]
pub struct ContactProfile {
    pub business_id: String,
    pub contact_id: String,
    /// Input partition that owns the contact.
    pub partition: i32,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The status shown: the CRM's latest, `UNKNOWN` before any contact event, or `CLIENT` when
    /// `auto_promote` promoted a LEAD.
    pub status: String,
    /// Who decided `status`: `crm` (a contact event) or `keyflow` (`UNKNOWN`, or a promotion).
    pub status_source: String,
    pub tags: Vec<String>,
    pub photo_url: Option<String>,
    pub created_at: Option<Ms>,
    pub deleted: bool,
    pub erased: bool,
    pub merged_into: Option<String>,
    /// Ids of contacts merged into this one: they appear nowhere else.
    pub aliases: Vec<String>,
    pub lead_score: i64,
    pub factors: Vec<Factor>,
    pub rule_version: String,
    pub last_interaction_at: Option<Ms>,
    /// The metric sections, one per file of `sql/metrics/` that returns one row per contact.
    pub balance: Balance,
    pub reliability: Reliability,
    pub affinity: Affinity,
    pub gaps: Gaps,
    pub activity: Activity,
    /// While a LEAD is eligible for promotion to CLIENT: the completion that made it eligible.
    /// The `contact.promotion.suggested` signal is sent once per contact.
    pub promotion_suggested_at: Option<Ms>,
    pub segments: Vec<Membership>,
    pub next_actions: Vec<NextAction>,
    pub services: Vec<ServiceStat>,
    /// The engine clock at evaluation; also the row version (later evaluations win).
    #[educe(Hash(ignore))]
    pub evaluated_at: Ms,
}

fn hash_f64<H: Hasher>(v: &f64, h: &mut H) {
    v.to_bits().hash(h);
}

impl ContactProfile {
    /// Hash of everything but the evaluation instant: equal fingerprints mean nothing to write.
    /// Derived from the struct (its `Hash`), so a new field is covered without listing it here.
    pub fn fingerprint(&self) -> u64 {
        crate::hash::fingerprint(self)
    }

    /// Shown in results: not deleted and not merged into another contact.
    pub fn visible(&self) -> bool {
        !self.deleted && self.merged_into.is_none()
    }

    /// Segment names only.
    pub fn segment_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|m| m.segment.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ContactProfile {
        ContactProfile {
            business_id: "b".into(),
            contact_id: "c".into(),
            lead_score: 40,
            reliability: Reliability {
                avg_days_late: Some(1.5),
                ..Default::default()
            },
            next_actions: vec![NextAction {
                kind: "invoice_overdue".into(),
                ref_id: "i1".into(),
                since: 1,
                age_days: 2,
                priority: 2.8,
                message: "m".into(),
            }],
            evaluated_at: 10,
            ..Default::default()
        }
    }

    #[test]
    fn the_fingerprint_ignores_only_the_evaluation_instant() {
        let a = sample();
        let later = ContactProfile {
            evaluated_at: 20,
            ..a.clone()
        };
        assert_eq!(a.fingerprint(), later.fingerprint());
        let changes: [fn(&mut ContactProfile); 5] = [
            |p| p.lead_score += 1,
            |p| p.reliability.avg_days_late = Some(1.6),
            |p| p.next_actions[0].priority = 2.9,
            |p| p.activity.pending_confirmations = 1,
            |p| {
                p.services.push(ServiceStat {
                    service_id: "s".into(),
                    service_name: None,
                    bookings: 1,
                    completed: 0,
                    revenue_cents: 0,
                })
            },
        ];
        for change in changes {
            let mut b = a.clone();
            change(&mut b);
            assert_ne!(a.fingerprint(), b.fingerprint(), "{b:?}");
        }
    }
}
