//! The JSON the API returns (camelCase), built from engine profiles.

use chrono::{DateTime, SecondsFormat, Utc};
use pipeline::profile::{ContactProfile, Factor};
use serde::Serialize;

fn rfc3339(ms: Option<i64>) -> Option<String> {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub lead_score: i64,
    pub last_interaction_at: Option<String>,
    /// Sum of invoices sent and not paid, in cents.
    pub outstanding_balance: i64,
    pub unpaid_invoices: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FactorView {
    pub factor: String,
    pub count: i64,
    pub points: i64,
}

impl From<&Factor> for FactorView {
    fn from(f: &Factor) -> Self {
        Self {
            factor: f.factor.clone(),
            count: f.count,
            points: f.points,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactView {
    pub contact_id: String,
    pub business_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub status: String,
    pub tags: Vec<String>,
    pub photo_url: Option<String>,
    pub meta: Meta,
    pub factors: Vec<FactorView>,
    pub rule_version: String,
    pub evaluated_at: Option<String>,
}

impl From<&ContactProfile> for ContactView {
    fn from(p: &ContactProfile) -> Self {
        Self {
            contact_id: p.contact_id.clone(),
            business_id: p.business_id.clone(),
            name: p.name.clone(),
            email: p.email.clone(),
            phone: p.phone.clone(),
            status: p.status.clone(),
            tags: p.tags.clone(),
            photo_url: p.photo_url.clone(),
            meta: Meta {
                lead_score: p.lead_score,
                last_interaction_at: rfc3339(p.last_interaction_at),
                outstanding_balance: p.outstanding_balance_cents,
                unpaid_invoices: p.unpaid_invoices,
            },
            factors: p.factors.iter().map(FactorView::from).collect(),
            rule_version: p.rule_version.clone(),
            evaluated_at: rfc3339(Some(p.evaluated_at)),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Highlights {
    pub business_id: String,
    /// Top contacts by lead score (ties: lower outstanding balance, then contact id).
    pub contacts: Vec<ContactView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub ready: bool,
    /// Messages not yet processed on the assigned partitions (-1 when unknown).
    pub consumer_lag: i64,
}
