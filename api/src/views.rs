//! The JSON the API returns (camelCase), built from engine profiles.

use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::Arc;

use model::profile::{ContactProfile, Factor};
use serde::Serialize;
use serde_json::value::RawValue;

/// A list serialized once, kept as JSON text and copied into every answer that shares it (a
/// cached page of search hits). Serializing 20 contact views took most of a search request's
/// CPU under load (`benches/RESULTS.md`). Documented as the list it holds.
#[derive(Debug, Clone)]
pub struct Items(Arc<RawValue>);

impl Items {
    pub fn of<T: Serialize>(items: &[T]) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(items).map(|raw| Self(Arc::from(raw)))
    }
}

impl Serialize for Items {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_ref().serialize(s)
    }
}

pub fn rfc3339(ms: Option<i64>) -> Option<String> {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    pub lead_score: i64,
    pub last_interaction_at: Option<String>,
    /// Sum of invoices sent and not paid, in cents.
    pub outstanding_balance: i64,
    pub unpaid_invoices: i64,
    pub overdue_invoices: i64,
    pub oldest_unpaid_invoice_id: Option<String>,
    pub days_overdue: Option<i64>,
    /// 0–100, null without invoices due in the window.
    pub payment_reliability: Option<i64>,
    pub avg_days_late: Option<f64>,
    pub top_service: Option<TopService>,
    pub mean_gap_days: Option<f64>,
    pub median_gap_days: Option<f64>,
    pub days_since_last_interaction: Option<i64>,
    pub completed_bookings: i64,
    /// Non-cancelled bookings created this week (the business's calendar week).
    pub recent_bookings: i64,
    /// Paid in the revenue window, in cents.
    pub revenue: i64,
    pub promotion_suggested_at: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopService {
    pub service_id: String,
    pub name: Option<String>,
    pub bookings: i64,
    /// Share of the contact's bookings in the affinity window, 0–1.
    pub share: Option<f64>,
}

/// The calendar a business's day counts (ages, days overdue) and "this week" are in.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarView {
    /// IANA time zone name, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// The day its week starts on, e.g. `monday`.
    pub week_starts_on: String,
}

impl From<&model::calendar::Calendar> for CalendarView {
    fn from(c: &model::calendar::Calendar) -> Self {
        Self {
            timezone: c.timezone.to_string(),
            week_starts_on: c.week_starts_on.name().to_owned(),
        }
    }
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentView {
    pub segment: String,
    pub reason: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NextActionView {
    pub kind: String,
    pub ref_id: String,
    pub since: Option<String>,
    pub age_days: i64,
    pub priority: f64,
    pub message: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
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

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactView {
    pub contact_id: String,
    pub business_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The CRM's latest status, `UNKNOWN` before any contact event, or `CLIENT` when KeyFlow's
    /// `auto_promote` promoted a LEAD.
    pub status: String,
    /// Who decided `status`: `crm` or `keyflow`.
    pub status_source: String,
    pub tags: Vec<String>,
    pub photo_url: Option<String>,
    /// Ids of contacts merged into this one.
    pub aliases: Vec<String>,
    pub meta: Meta,
    pub factors: Vec<FactorView>,
    pub segments: Vec<SegmentView>,
    pub next_actions: Vec<NextActionView>,
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
            status_source: p.status_source.clone(),
            tags: p.tags.clone(),
            photo_url: p.photo_url.clone(),
            aliases: p.aliases.clone(),
            meta: Meta {
                lead_score: p.lead_score,
                last_interaction_at: rfc3339(p.last_interaction_at),
                outstanding_balance: p.balance.outstanding_balance_cents,
                unpaid_invoices: p.balance.unpaid_invoices,
                overdue_invoices: p.balance.overdue_invoices,
                oldest_unpaid_invoice_id: p.balance.oldest_unpaid_invoice_id.clone(),
                days_overdue: p.balance.days_overdue,
                payment_reliability: p.reliability.payment_reliability,
                avg_days_late: p.reliability.avg_days_late,
                top_service: p.affinity.top_service_id.as_ref().map(|id| TopService {
                    service_id: id.clone(),
                    name: p.affinity.top_service_name.clone(),
                    bookings: p.affinity.top_service_bookings,
                    share: p.affinity.top_service_share,
                }),
                mean_gap_days: p.gaps.mean_gap_days,
                median_gap_days: p.gaps.median_gap_days,
                days_since_last_interaction: p.gaps.days_since_last_interaction,
                completed_bookings: p.activity.completed_bookings_total,
                recent_bookings: p.activity.recent_bookings,
                revenue: p.activity.revenue_cents,
                promotion_suggested_at: rfc3339(p.promotion_suggested_at),
            },
            factors: p.factors.iter().map(FactorView::from).collect(),
            segments: p
                .segments
                .iter()
                .map(|m| SegmentView {
                    segment: m.segment.clone(),
                    reason: m.reason.clone(),
                })
                .collect(),
            next_actions: p
                .next_actions
                .iter()
                .map(|a| NextActionView {
                    kind: a.kind.clone(),
                    ref_id: a.ref_id.clone(),
                    since: rfc3339(Some(a.since)),
                    age_days: a.age_days,
                    priority: a.priority,
                    message: a.message.clone(),
                })
                .collect(),
            rule_version: p.rule_version.clone(),
            evaluated_at: rfc3339(Some(p.evaluated_at)),
        }
    }
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Highlights {
    pub business_id: String,
    /// Top contacts by lead score (ties: lower outstanding balance, then contact id).
    pub contacts: Vec<ContactView>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub ready: bool,
    /// Messages not yet processed on the assigned partitions (-1 when unknown).
    pub consumer_lag: i64,
}
