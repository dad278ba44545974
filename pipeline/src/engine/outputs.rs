//! The rows each metric file returns, read back from Arrow by name and type: each is the
//! section of the profile its file fills. [`SECTIONS`] names every file's row type; the engine
//! checks each file's planned output against it before it evaluates anything
//! ([`check_section`]), so a file and its section that disagree stop the start with the file
//! and the column, never with default values.

use std::collections::HashMap;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_arrow::schema::SchemaLike;

use super::EngineError;
use crate::clock::Ms;

/// The Arrow fields a row type reads, as traced from its serde shape.
pub type Fields = fn() -> Result<Vec<FieldRef>, serde_arrow::Error>;

fn fields<T: DeserializeOwned>() -> Result<Vec<FieldRef>, serde_arrow::Error> {
    Vec::<FieldRef>::from_type::<T>(super::inputs::options())
}

/// Every metric file by name with the row type its output is read as (the profile section it
/// fills), in [`super::METRICS`] order.
pub const SECTIONS: &[(&str, Fields)] = &[
    ("lead_score", fields::<LeadScoreRow>),
    ("outstanding_balance", fields::<BalanceRow>),
    ("payment_reliability", fields::<ReliabilityRow>),
    ("service_affinity", fields::<AffinityRow>),
    ("interaction_gaps", fields::<GapsRow>),
    ("activity", fields::<ActivityRow>),
    ("contact_services", fields::<ServiceRow>),
    ("segments", fields::<SegmentRow>),
    ("next_actions", fields::<ActionRow>),
];

/// What kind of value a column holds, as far as reading it into a row type goes: strings in
/// any of Arrow's three layouts read alike, as do integers of one signedness.
fn kind(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "integer".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            "unsigned integer".into()
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "float".into(),
        DataType::Boolean => "boolean".into(),
        other => other.to_string(),
    }
}

/// Whether `sql` names `column` as a whole word (not as part of a longer name).
fn names(sql: &str, column: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    sql.match_indices(column).any(|(i, _)| {
        let before = sql[..i].chars().next_back();
        let after = sql[i + column.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// Checks that the file `file` returns every column its section `expected` reads, each of a
/// kind it can be read as, and nothing else that a file evaluated after it (`later`, their SQL)
/// does not read either. The error names the file and the first column that differs.
pub fn check_section(
    file: &'static str,
    expected: &[FieldRef],
    actual: &Schema,
    later: &[&str],
) -> Result<(), EngineError> {
    let differs = |column: &str, problem: String| EngineError::Section {
        file,
        column: column.to_owned(),
        problem,
    };
    for f in expected {
        let Ok(col) = actual.field_with_name(f.name()) else {
            return Err(differs(
                f.name(),
                "the section reads it, the file does not return it".into(),
            ));
        };
        let (want, got) = (kind(f.data_type()), kind(col.data_type()));
        if want != got {
            return Err(differs(
                f.name(),
                format!("the section reads it as {want}, the file returns {got}"),
            ));
        }
    }
    if let Some(extra) = actual.fields().iter().find(|c| {
        expected.iter().all(|f| f.name() != c.name())
            && !later.iter().any(|sql| names(sql, c.name()))
    }) {
        return Err(differs(
            extra.name(),
            "the file returns it, and neither the section nor a later file reads it".into(),
        ));
    }
    Ok(())
}

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
