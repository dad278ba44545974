//! Row types of the ClickHouse tables (RowBinary, field order = column list of the insert).

use clickhouse::Row;
use pipeline::profile::{ContactProfile, Factor};
use pipeline::sink::{AcceptedEvent, ScoreChange};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct EventRow {
    pub business_id: String,
    pub contact_id: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at_ms: i64,
    pub source: String,
    pub data: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub ingest_seq: u64,
}

impl EventRow {
    pub fn new(a: &AcceptedEvent, ingest_seq: u64) -> Self {
        let e = &a.event;
        Self {
            business_id: e.business_id.clone(),
            contact_id: e.contact_id.clone(),
            event_id: e.event_id.clone(),
            kind: e.payload.type_name().to_owned(),
            occurred_at_ms: e.occurred_at.timestamp_millis(),
            source: e.source.clone(),
            data: e.payload.data_json(),
            topic: a.topic.clone(),
            partition: a.partition,
            offset: a.offset,
            ingest_seq,
        }
    }

    pub fn to_stored(&self) -> crate::store::rows::StoredEvent {
        crate::store::rows::StoredEvent {
            partition: self.partition,
            topic: self.topic.clone(),
            offset: self.offset,
            event_id: self.event_id.clone(),
            kind: self.kind.clone(),
            business_id: self.business_id.clone(),
            contact_id: self.contact_id.clone(),
            occurred_at: self.occurred_at_ms,
            source: self.source.clone(),
            data: self.data.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct ProfileRow {
    pub business_id: String,
    pub contact_id: String,
    pub partition: i32,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub status: String,
    pub tags: Vec<String>,
    pub photo_url: Option<String>,
    pub created_at_ms: Option<i64>,
    pub deleted: u8,
    pub erased: u8,
    pub merged_into: Option<String>,
    pub lead_score: i64,
    pub factor_names: Vec<String>,
    pub factor_counts: Vec<i64>,
    pub factor_points: Vec<i64>,
    pub rule_version: String,
    pub last_interaction_at_ms: Option<i64>,
    pub outstanding_balance_cents: i64,
    pub unpaid_invoices: i64,
    pub evaluated_at_ms: i64,
    pub version: u64,
}

fn split(factors: &[Factor]) -> (Vec<String>, Vec<i64>, Vec<i64>) {
    (
        factors.iter().map(|f| f.factor.clone()).collect(),
        factors.iter().map(|f| f.count).collect(),
        factors.iter().map(|f| f.points).collect(),
    )
}

impl From<&ContactProfile> for ProfileRow {
    fn from(p: &ContactProfile) -> Self {
        let (factor_names, factor_counts, factor_points) = split(&p.factors);
        Self {
            business_id: p.business_id.clone(),
            contact_id: p.contact_id.clone(),
            partition: p.partition,
            name: p.name.clone(),
            email: p.email.clone(),
            phone: p.phone.clone(),
            status: p.status.clone(),
            tags: p.tags.clone(),
            photo_url: p.photo_url.clone(),
            created_at_ms: p.created_at,
            deleted: p.deleted.into(),
            erased: p.erased.into(),
            merged_into: p.merged_into.clone(),
            lead_score: p.lead_score,
            factor_names,
            factor_counts,
            factor_points,
            rule_version: p.rule_version.clone(),
            last_interaction_at_ms: p.last_interaction_at,
            outstanding_balance_cents: p.outstanding_balance_cents,
            unpaid_invoices: p.unpaid_invoices,
            evaluated_at_ms: p.evaluated_at,
            version: p.evaluated_at.max(0) as u64,
        }
    }
}

impl From<ProfileRow> for ContactProfile {
    fn from(r: ProfileRow) -> Self {
        let factors = r
            .factor_names
            .into_iter()
            .zip(r.factor_counts)
            .zip(r.factor_points)
            .map(|((factor, count), points)| Factor {
                factor,
                count,
                points,
            })
            .collect();
        Self {
            business_id: r.business_id,
            contact_id: r.contact_id,
            partition: r.partition,
            name: r.name,
            email: r.email,
            phone: r.phone,
            status: r.status,
            tags: r.tags,
            photo_url: r.photo_url,
            created_at: r.created_at_ms,
            deleted: r.deleted != 0,
            erased: r.erased != 0,
            merged_into: r.merged_into,
            lead_score: r.lead_score,
            factors,
            rule_version: r.rule_version,
            last_interaction_at: r.last_interaction_at_ms,
            outstanding_balance_cents: r.outstanding_balance_cents,
            unpaid_invoices: r.unpaid_invoices,
            evaluated_at: r.evaluated_at_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct HistoryRow {
    pub business_id: String,
    pub contact_id: String,
    pub partition: i32,
    pub old_score: Option<i64>,
    pub new_score: i64,
    pub factor_names: Vec<String>,
    pub factor_counts: Vec<i64>,
    pub factor_points: Vec<i64>,
    pub rule_version: String,
    pub caused_by: Vec<String>,
    pub reason: String,
    pub evaluated_at_ms: i64,
    pub version: u64,
}

impl From<&ScoreChange> for HistoryRow {
    fn from(c: &ScoreChange) -> Self {
        let (factor_names, factor_counts, factor_points) = split(&c.factors);
        Self {
            business_id: c.business_id.clone(),
            contact_id: c.contact_id.clone(),
            partition: c.partition,
            old_score: c.old_score,
            new_score: c.new_score,
            factor_names,
            factor_counts,
            factor_points,
            rule_version: c.rule_version.clone(),
            caused_by: c.caused_by.clone(),
            reason: c.reason.to_owned(),
            evaluated_at_ms: c.evaluated_at,
            version: c.evaluated_at.max(0) as u64,
        }
    }
}
