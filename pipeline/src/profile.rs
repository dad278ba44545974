//! What the engine produces per contact: the current profile with its metrics and the factors
//! that explain the lead score. Sinks store it; the API serves it.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::state::Ms;

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactProfile {
    pub business_id: String,
    pub contact_id: String,
    /// Input partition that owns the contact.
    pub partition: i32,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub status: String,
    pub tags: Vec<String>,
    pub photo_url: Option<String>,
    pub created_at: Option<Ms>,
    pub deleted: bool,
    pub erased: bool,
    pub merged_into: Option<String>,
    pub lead_score: i64,
    pub factors: Vec<Factor>,
    pub rule_version: String,
    pub last_interaction_at: Option<Ms>,
    pub outstanding_balance_cents: i64,
    pub unpaid_invoices: i64,
    /// The engine clock at evaluation; also the row version (later evaluations win).
    pub evaluated_at: Ms,
}

impl ContactProfile {
    /// Hash of everything but the evaluation instant: equal fingerprints mean nothing to write.
    pub fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        (&self.business_id, &self.contact_id, self.partition).hash(&mut h);
        (
            &self.name,
            &self.email,
            &self.phone,
            &self.status,
            &self.tags,
            &self.photo_url,
        )
            .hash(&mut h);
        (
            self.created_at,
            self.deleted,
            self.erased,
            &self.merged_into,
        )
            .hash(&mut h);
        (self.lead_score, &self.factors, &self.rule_version).hash(&mut h);
        (
            self.last_interaction_at,
            self.outstanding_balance_cents,
            self.unpaid_invoices,
        )
            .hash(&mut h);
        h.finish()
    }

    /// Shown in results: not deleted and not merged into another contact.
    pub fn visible(&self) -> bool {
        !self.deleted && self.merged_into.is_none()
    }
}
