//! The rows each metric file returns, read back from Arrow by name and type. A file that stops
//! returning a column fails the evaluation with the file and the cause.

use std::collections::HashMap;

use datafusion::arrow::array::RecordBatch;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::state::Ms;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LeadScoreRow {
    pub cid: u32,
    pub bookings_completed: i64,
    pub bookings_points: i64,
    pub invoices_paid: i64,
    pub paid_points: i64,
    pub invoices_unpaid: i64,
    pub unpaid_points: i64,
    pub tasks_overdue: i64,
    pub overdue_points: i64,
    pub lead_score: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BalanceRow {
    pub cid: u32,
    pub outstanding_balance_cents: i64,
    pub unpaid_invoices: i64,
    pub overdue_invoices: i64,
    pub oldest_unpaid_invoice_id: Option<String>,
    pub oldest_unpaid_due_at: Option<Ms>,
    pub days_overdue: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReliabilityRow {
    pub cid: u32,
    pub invoices_on_time: i64,
    pub invoices_late: i64,
    pub invoices_overdue: i64,
    pub payment_reliability: Option<i64>,
    pub avg_days_late: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AffinityRow {
    pub cid: u32,
    pub top_service_id: Option<String>,
    pub top_service_name: Option<String>,
    pub top_service_bookings: i64,
    pub affinity_bookings: i64,
    pub top_service_share: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GapsRow {
    pub cid: u32,
    pub mean_gap_days: Option<f64>,
    pub median_gap_days: Option<f64>,
    pub days_since_last_interaction: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActivityRow {
    pub cid: u32,
    pub completed_bookings_total: i64,
    pub recent_bookings: i64,
    pub pending_confirmations: i64,
    pub revenue_cents: i64,
    pub recent_paid_invoices: i64,
    pub recent_paid_cents: i64,
    pub promotion_eligible: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceRow {
    pub cid: u32,
    pub service_id: String,
    pub service_name: Option<String>,
    pub bookings: i64,
    pub completed: i64,
    pub revenue_cents: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SegmentRow {
    pub cid: u32,
    pub segment: String,
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ActionRow {
    pub cid: u32,
    pub kind: String,
    pub ref_id: String,
    pub since: Ms,
    pub age_days: i64,
    pub priority: f64,
    pub message: String,
}

/// Anything with a contact number.
pub trait PerContact {
    fn cid(&self) -> u32;
}

macro_rules! per_contact {
    ($($t:ty),*) => {$(impl PerContact for $t { fn cid(&self) -> u32 { self.cid } })*};
}
per_contact!(
    LeadScoreRow,
    BalanceRow,
    ReliabilityRow,
    AffinityRow,
    GapsRow,
    ActivityRow,
    ServiceRow,
    SegmentRow,
    ActionRow
);

/// Every row of `batches` as `T`.
pub fn rows<T: DeserializeOwned>(batches: &[RecordBatch]) -> Result<Vec<T>, serde_arrow::Error> {
    let mut out = Vec::new();
    for b in batches {
        out.extend(serde_arrow::from_record_batch::<Vec<T>>(b)?);
    }
    Ok(out)
}

/// One row per contact, by contact number.
pub fn by_contact<T: PerContact>(rows: Vec<T>) -> HashMap<u32, T> {
    rows.into_iter().map(|r| (r.cid(), r)).collect()
}

/// Many rows per contact, in query order.
pub fn grouped<T: PerContact>(rows: Vec<T>) -> HashMap<u32, Vec<T>> {
    let mut out: HashMap<u32, Vec<T>> = HashMap::new();
    for r in rows {
        out.entry(r.cid()).or_default().push(r);
    }
    out
}
