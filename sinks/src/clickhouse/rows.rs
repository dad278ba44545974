//! Row types of the ClickHouse tables (RowBinary, field order = column list of the insert).

use clickhouse::Row;
use model::profile::{ContactProfile, Factor, Membership, NextAction, ServiceStat};
use model::signal::{Signal, SEGMENT_UPDATED};
use model::sink::{AcceptedEvent, ScoreChange};
use serde::{Deserialize, Serialize};

use crate::rows::StoredEvent;

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

    pub fn to_stored(&self) -> StoredEvent {
        StoredEvent {
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
    pub overdue_invoices: i64,
    pub oldest_unpaid_invoice_id: Option<String>,
    pub oldest_unpaid_due_at_ms: Option<i64>,
    pub days_overdue: Option<i64>,
    pub invoices_on_time: i64,
    pub invoices_late: i64,
    pub invoices_overdue: i64,
    pub payment_reliability: Option<i64>,
    pub avg_days_late: Option<f64>,
    pub top_service_id: Option<String>,
    pub top_service_name: Option<String>,
    pub top_service_bookings: i64,
    pub affinity_bookings: i64,
    pub top_service_share: Option<f64>,
    pub mean_gap_days: Option<f64>,
    pub median_gap_days: Option<f64>,
    pub days_since_last_interaction: Option<i64>,
    pub completed_bookings_total: i64,
    pub recent_bookings: i64,
    pub revenue_cents: i64,
    pub recent_paid_invoices: i64,
    pub recent_paid_cents: i64,
    pub pending_confirmations: i64,
    pub promotion_suggested_at_ms: Option<i64>,
    pub segment_names: Vec<String>,
    pub segment_reasons: Vec<String>,
    pub action_kinds: Vec<String>,
    pub action_refs: Vec<String>,
    pub action_since_ms: Vec<i64>,
    pub action_age_days: Vec<i64>,
    pub action_priorities: Vec<f64>,
    pub action_messages: Vec<String>,
    pub service_ids: Vec<String>,
    /// Empty string for a service without a name.
    pub service_names: Vec<String>,
    pub service_bookings: Vec<i64>,
    pub service_completed: Vec<i64>,
    pub service_revenue_cents: Vec<i64>,
    pub aliases: Vec<String>,
    pub status_source: String,
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
            overdue_invoices: p.overdue_invoices,
            oldest_unpaid_invoice_id: p.oldest_unpaid_invoice_id.clone(),
            oldest_unpaid_due_at_ms: p.oldest_unpaid_due_at,
            days_overdue: p.days_overdue,
            invoices_on_time: p.invoices_on_time,
            invoices_late: p.invoices_late,
            invoices_overdue: p.invoices_overdue,
            payment_reliability: p.payment_reliability,
            avg_days_late: p.avg_days_late,
            top_service_id: p.top_service_id.clone(),
            top_service_name: p.top_service_name.clone(),
            top_service_bookings: p.top_service_bookings,
            affinity_bookings: p.affinity_bookings,
            top_service_share: p.top_service_share,
            mean_gap_days: p.mean_gap_days,
            median_gap_days: p.median_gap_days,
            days_since_last_interaction: p.days_since_last_interaction,
            completed_bookings_total: p.completed_bookings_total,
            recent_bookings: p.recent_bookings,
            revenue_cents: p.revenue_cents,
            recent_paid_invoices: p.recent_paid_invoices,
            recent_paid_cents: p.recent_paid_cents,
            pending_confirmations: p.pending_confirmations,
            promotion_suggested_at_ms: p.promotion_suggested_at,
            segment_names: p.segments.iter().map(|m| m.segment.clone()).collect(),
            segment_reasons: p.segments.iter().map(|m| m.reason.clone()).collect(),
            action_kinds: p.next_actions.iter().map(|a| a.kind.clone()).collect(),
            action_refs: p.next_actions.iter().map(|a| a.ref_id.clone()).collect(),
            action_since_ms: p.next_actions.iter().map(|a| a.since).collect(),
            action_age_days: p.next_actions.iter().map(|a| a.age_days).collect(),
            action_priorities: p.next_actions.iter().map(|a| a.priority).collect(),
            action_messages: p.next_actions.iter().map(|a| a.message.clone()).collect(),
            service_ids: p.services.iter().map(|x| x.service_id.clone()).collect(),
            service_names: p
                .services
                .iter()
                .map(|x| x.service_name.clone().unwrap_or_default())
                .collect(),
            service_bookings: p.services.iter().map(|x| x.bookings).collect(),
            service_completed: p.services.iter().map(|x| x.completed).collect(),
            service_revenue_cents: p.services.iter().map(|x| x.revenue_cents).collect(),
            aliases: p.aliases.clone(),
            status_source: p.status_source.clone(),
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
            status_source: r.status_source,
            tags: r.tags,
            photo_url: r.photo_url,
            created_at: r.created_at_ms,
            deleted: r.deleted != 0,
            erased: r.erased != 0,
            merged_into: r.merged_into,
            aliases: r.aliases,
            lead_score: r.lead_score,
            factors,
            rule_version: r.rule_version,
            last_interaction_at: r.last_interaction_at_ms,
            outstanding_balance_cents: r.outstanding_balance_cents,
            unpaid_invoices: r.unpaid_invoices,
            overdue_invoices: r.overdue_invoices,
            oldest_unpaid_invoice_id: r.oldest_unpaid_invoice_id,
            oldest_unpaid_due_at: r.oldest_unpaid_due_at_ms,
            days_overdue: r.days_overdue,
            invoices_on_time: r.invoices_on_time,
            invoices_late: r.invoices_late,
            invoices_overdue: r.invoices_overdue,
            payment_reliability: r.payment_reliability,
            avg_days_late: r.avg_days_late,
            top_service_id: r.top_service_id,
            top_service_name: r.top_service_name,
            top_service_bookings: r.top_service_bookings,
            affinity_bookings: r.affinity_bookings,
            top_service_share: r.top_service_share,
            mean_gap_days: r.mean_gap_days,
            median_gap_days: r.median_gap_days,
            days_since_last_interaction: r.days_since_last_interaction,
            completed_bookings_total: r.completed_bookings_total,
            recent_bookings: r.recent_bookings,
            revenue_cents: r.revenue_cents,
            recent_paid_invoices: r.recent_paid_invoices,
            recent_paid_cents: r.recent_paid_cents,
            pending_confirmations: r.pending_confirmations,
            promotion_suggested_at: r.promotion_suggested_at_ms,
            segments: r
                .segment_names
                .into_iter()
                .zip(r.segment_reasons)
                .map(|(segment, reason)| Membership { segment, reason })
                .collect(),
            next_actions: (0..r.action_kinds.len())
                .map(|i| NextAction {
                    kind: r.action_kinds[i].clone(),
                    ref_id: r.action_refs.get(i).cloned().unwrap_or_default(),
                    since: r.action_since_ms.get(i).copied().unwrap_or_default(),
                    age_days: r.action_age_days.get(i).copied().unwrap_or_default(),
                    priority: r.action_priorities.get(i).copied().unwrap_or_default(),
                    message: r.action_messages.get(i).cloned().unwrap_or_default(),
                })
                .collect(),
            services: (0..r.service_ids.len())
                .map(|i| ServiceStat {
                    service_id: r.service_ids[i].clone(),
                    service_name: r.service_names.get(i).filter(|n| !n.is_empty()).cloned(),
                    bookings: r.service_bookings.get(i).copied().unwrap_or_default(),
                    completed: r.service_completed.get(i).copied().unwrap_or_default(),
                    revenue_cents: r.service_revenue_cents.get(i).copied().unwrap_or_default(),
                })
                .collect(),
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

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SegmentChangeRow {
    pub signal_id: String,
    pub business_id: String,
    pub contact_id: String,
    pub segment: String,
    pub change: String,
    pub reason: String,
    pub at_ms: i64,
    pub rule_version: String,
    pub caused_by: Vec<String>,
}

impl SegmentChangeRow {
    /// The segment change a signal records, if it is one.
    pub fn of(s: &Signal) -> Option<Self> {
        (s.kind == SEGMENT_UPDATED).then(|| Self {
            signal_id: s.signal_id.clone(),
            business_id: s.business_id.clone(),
            contact_id: s.contact_id.clone(),
            segment: s.subject.clone(),
            change: s.change.to_owned(),
            reason: s.reason.clone(),
            at_ms: s.at,
            rule_version: s.rule_version.clone(),
            caused_by: s.caused_by.clone(),
        })
    }
}
