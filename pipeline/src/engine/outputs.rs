//! The rows each metric file returns, read back from Arrow by name and type: each is the
//! section of the profile its file fills ([`model::sections`], or [`LeadScoreRow`], which the
//! engine turns into the score and its factors). [`SECTIONS`] names every file's row type; the
//! engine checks each file's planned output against it before it evaluates anything
//! ([`check_section`]), so a file and its section that disagree stop the start with the file
//! and the column, never with default values. Every file also returns `cid`, the contact's
//! number in the run, read as a column of its own.

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, UInt32Type};
use model::profile::{Membership, NextAction, ServiceStat};
use model::sections::{Activity, Affinity, Balance, Gaps, Reliability, Section};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_arrow::schema::{SchemaLike, TracingOptions};

use super::EngineError;

/// How row types are traced into Arrow fields: plain (not large) strings and lists.
pub(crate) fn options() -> TracingOptions {
    TracingOptions::default()
        .strings_as_large_utf8(false)
        .sequence_as_large_list(false)
}

/// The Arrow fields a file returns for a row type: `cid`, then the type's fields as traced from
/// its serde shape.
pub type Fields = fn() -> Result<Vec<FieldRef>, serde_arrow::Error>;

pub(crate) fn fields<T: DeserializeOwned>() -> Result<Vec<FieldRef>, serde_arrow::Error> {
    let mut out = vec![std::sync::Arc::new(Field::new(
        "cid",
        DataType::UInt32,
        false,
    ))];
    out.extend(Vec::<FieldRef>::from_type::<T>(options())?);
    Ok(out)
}

const fn section<T: Section + DeserializeOwned>() -> (&'static str, Fields) {
    (T::FILE, fields::<T>)
}

/// Every metric file by name with the row type its output is read as (the profile section it
/// fills), in [`super::METRICS`] order.
pub const SECTIONS: &[(&str, Fields)] = &[
    ("lead_score", fields::<LeadScoreRow>),
    section::<Balance>(),
    section::<Reliability>(),
    section::<Affinity>(),
    section::<Gaps>(),
    section::<Activity>(),
    ("contact_services", fields::<ServiceStat>),
    ("segments", fields::<Membership>),
    ("next_actions", fields::<NextAction>),
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

/// The lead score's terms, which the engine turns into the score and its factors.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LeadScoreRow {
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

/// Every row of `batches` as `T`, with its contact number (the `cid` column).
pub fn rows<T: DeserializeOwned>(
    batches: &[RecordBatch],
) -> Result<Vec<(u32, T)>, serde_arrow::Error> {
    let mut out = Vec::new();
    for b in batches {
        let cids = b
            .column_by_name("cid")
            .and_then(|c| c.as_primitive_opt::<UInt32Type>())
            .ok_or_else(|| {
                <serde_arrow::Error as serde::de::Error>::custom("no cid column of type UInt32")
            })?;
        let rows = serde_arrow::from_record_batch::<Vec<T>>(b)?;
        out.extend(cids.values().iter().copied().zip(rows));
    }
    Ok(out)
}

/// Rows by contact number. The numbers of a run are dense (0 up to its contact count), so the
/// rows sit in a vector at their number: no hashing per row and per lookup.
#[derive(Debug)]
pub struct ByContact<T>(Vec<T>);

impl<T: Default> ByContact<T> {
    /// Takes contact `cid`'s rows out (each contact is read once per run); a contact the file
    /// returned nothing for gets the default.
    pub fn take(&mut self, cid: u32) -> T {
        self.0
            .get_mut(cid as usize)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

/// A slot for each contact number up to the largest in `rows`.
fn slots<T: Default, R>(rows: &[(u32, R)]) -> Vec<T> {
    let len = rows
        .iter()
        .map(|(cid, _)| *cid as usize + 1)
        .max()
        .unwrap_or(0);
    std::iter::repeat_with(T::default).take(len).collect()
}

/// One row per contact, by contact number (a later row of the same contact replaces an earlier).
pub fn by_contact<T: Default>(rows: Vec<(u32, T)>) -> ByContact<T> {
    let mut out = slots::<T, T>(&rows);
    for (cid, r) in rows {
        out[cid as usize] = r;
    }
    ByContact(out)
}

/// Many rows per contact, in query order.
pub fn grouped<T>(rows: Vec<(u32, T)>) -> ByContact<Vec<T>> {
    let mut out = slots::<Vec<T>, T>(&rows);
    for (cid, r) in rows {
        out[cid as usize].push(r);
    }
    ByContact(out)
}
