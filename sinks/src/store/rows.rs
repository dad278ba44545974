//! Row types of the embedded store and their Arrow schemas (timestamps as UTC milliseconds, so
//! `keyflow sql` shows real times).

use std::sync::Arc;

use chrono::DateTime;
use std::collections::HashMap;

use datafusion::arrow::array::{AsArray, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};
use datafusion::arrow::error::ArrowError;
use pipeline::event::Event;
use pipeline::profile::ContactProfile;
use pipeline::sink::AcceptedEvent;
use serde::{Deserialize, Serialize};

use crate::clickhouse::rows::SignalRow;

/// An accepted event as stored: envelope columns plus the `data` object as JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub partition: i32,
    pub topic: String,
    pub offset: i64,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub business_id: String,
    pub contact_id: String,
    pub occurred_at: i64,
    pub source: String,
    pub data: String,
}

impl From<&AcceptedEvent> for StoredEvent {
    fn from(a: &AcceptedEvent) -> Self {
        let e = &a.event;
        Self {
            partition: a.partition,
            topic: a.topic.clone(),
            offset: a.offset,
            event_id: e.event_id.clone(),
            kind: e.payload.type_name().to_owned(),
            business_id: e.business_id.clone(),
            contact_id: e.contact_id.clone(),
            occurred_at: e.occurred_at.timestamp_millis(),
            source: e.source.clone(),
            data: e.payload.data_json(),
        }
    }
}

impl StoredEvent {
    /// The event back, as the processor first accepted it.
    pub fn to_event(&self) -> Result<Event, String> {
        let payload = pipeline::decode::payload_from_parts(&self.kind, &self.data)
            .map_err(|e| e.to_string())?;
        Ok(Event {
            schema_version: pipeline::event::SCHEMA_VERSION,
            event_id: self.event_id.clone(),
            business_id: self.business_id.clone(),
            contact_id: self.contact_id.clone(),
            occurred_at: DateTime::from_timestamp_millis(self.occurred_at)
                .ok_or("occurred_at out of range")?,
            source: self.source.clone(),
            payload,
        })
    }
}

fn ts(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        nullable,
    )
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn i64f(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Int64, nullable)
}

fn f64f(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Float64, nullable)
}

/// A non-null list of non-null structs with these fields.
fn list_of(name: &str, fields: Vec<Field>) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(Fields::from(fields)),
            false,
        ))),
        false,
    )
}

pub fn event_fields() -> Vec<FieldRef> {
    vec![
        Field::new("partition", DataType::Int32, false),
        utf8("topic", false),
        Field::new("offset", DataType::Int64, false),
        utf8("event_id", false),
        utf8("type", false),
        utf8("business_id", false),
        utf8("contact_id", false),
        ts("occurred_at", false),
        utf8("source", false),
        utf8("data", false),
    ]
    .into_iter()
    .map(Arc::new)
    .collect()
}

pub fn profile_fields() -> Vec<FieldRef> {
    let factor = vec![
        utf8("factor", false),
        i64f("count", false),
        i64f("points", false),
    ];
    vec![
        utf8("business_id", false),
        utf8("contact_id", false),
        Field::new("partition", DataType::Int32, false),
        utf8("name", true),
        utf8("email", true),
        utf8("phone", true),
        utf8("status", false),
        Field::new("tags", DataType::List(Arc::new(utf8("item", false))), false),
        utf8("photo_url", true),
        ts("created_at", true),
        Field::new("deleted", DataType::Boolean, false),
        Field::new("erased", DataType::Boolean, false),
        utf8("merged_into", true),
        Field::new(
            "aliases",
            DataType::List(Arc::new(utf8("item", false))),
            false,
        ),
        Field::new("lead_score", DataType::Int64, false),
        list_of("factors", factor),
        utf8("rule_version", false),
        ts("last_interaction_at", true),
        Field::new("outstanding_balance_cents", DataType::Int64, false),
        Field::new("unpaid_invoices", DataType::Int64, false),
        i64f("overdue_invoices", false),
        utf8("oldest_unpaid_invoice_id", true),
        ts("oldest_unpaid_due_at", true),
        i64f("days_overdue", true),
        i64f("invoices_on_time", false),
        i64f("invoices_late", false),
        i64f("invoices_overdue", false),
        i64f("payment_reliability", true),
        f64f("avg_days_late", true),
        utf8("top_service_id", true),
        utf8("top_service_name", true),
        i64f("top_service_bookings", false),
        i64f("affinity_bookings", false),
        f64f("top_service_share", true),
        f64f("mean_gap_days", true),
        f64f("median_gap_days", true),
        i64f("days_since_last_interaction", true),
        i64f("completed_bookings_total", false),
        i64f("recent_bookings", false),
        i64f("revenue_cents", false),
        i64f("recent_paid_invoices", false),
        i64f("recent_paid_cents", false),
        i64f("pending_confirmations", false),
        ts("promotion_suggested_at", true),
        list_of(
            "segments",
            vec![utf8("segment", false), utf8("reason", false)],
        ),
        list_of(
            "next_actions",
            vec![
                utf8("kind", false),
                utf8("ref_id", false),
                ts("since", false),
                i64f("age_days", false),
                f64f("priority", false),
                utf8("message", false),
            ],
        ),
        list_of(
            "services",
            vec![
                utf8("service_id", false),
                utf8("service_name", true),
                i64f("bookings", false),
                i64f("completed", false),
                i64f("revenue_cents", false),
            ],
        ),
        ts("evaluated_at", false),
    ]
    .into_iter()
    .map(Arc::new)
    .collect()
}

/// A batch's signals ([`SignalRow`], the same row ClickHouse stores).
pub fn signal_fields() -> Vec<FieldRef> {
    vec![
        utf8("signal_id", false),
        utf8("type", false),
        utf8("business_id", false),
        utf8("contact_id", false),
        Field::new("partition", DataType::Int32, false),
        utf8("subject", false),
        utf8("change", false),
        utf8("reason", false),
        i64f("at_ms", false),
        utf8("rule_version", false),
        Field::new(
            "caused_by",
            DataType::List(Arc::new(utf8("item", false))),
            false,
        ),
        utf8("detail", false),
        Field::new("batch", DataType::UInt64, false),
    ]
    .into_iter()
    .map(Arc::new)
    .collect()
}

pub fn schema(fields: &[FieldRef]) -> SchemaRef {
    Arc::new(Schema::new(fields.to_vec()))
}

pub fn events_batch(events: &[StoredEvent]) -> Result<RecordBatch, serde_arrow::Error> {
    serde_arrow::to_record_batch(&event_fields(), &events)
}

pub fn profiles_batch(profiles: &[ContactProfile]) -> Result<RecordBatch, serde_arrow::Error> {
    serde_arrow::to_record_batch(&profile_fields(), &profiles)
}

pub fn signals_batch(signals: &[SignalRow]) -> Result<RecordBatch, serde_arrow::Error> {
    serde_arrow::to_record_batch(&signal_fields(), &signals)
}

pub fn signals_from(batch: &RecordBatch) -> Result<Vec<SignalRow>, serde_arrow::Error> {
    serde_arrow::from_record_batch(batch)
}

pub fn events_from(batch: &RecordBatch) -> Result<Vec<StoredEvent>, serde_arrow::Error> {
    serde_arrow::from_record_batch(batch)
}

pub fn profiles_from(batch: &RecordBatch) -> Result<Vec<ContactProfile>, serde_arrow::Error> {
    serde_arrow::from_record_batch(batch)
}

/// The newest version of each contact among `batches` of profile rows (of two rows of one
/// contact the later wins), ordered by `evaluated_at`, then by position. It works on the Arrow
/// columns and copies only the rows it keeps: a merge or a recovery decodes no row it drops
/// (decoding every version was most of a profile merge's 0.5-1.1 s).
pub fn latest_profile_rows(batches: &[RecordBatch]) -> Result<Option<RecordBatch>, ArrowError> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let all = concat_batches(&first.schema(), batches)?;
    let text = |name: &str| -> Result<&StringArray, ArrowError> {
        all.column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| ArrowError::SchemaError(format!("profile rows need a Utf8 {name}")))
    };
    let (business, contact) = (text("business_id")?, text("contact_id")?);
    let at = all
        .column_by_name("evaluated_at")
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .ok_or_else(|| {
            ArrowError::SchemaError("profile rows need a millisecond evaluated_at".into())
        })?;
    let mut latest: HashMap<(&str, &str), u32> = HashMap::with_capacity(all.num_rows());
    for i in 0..all.num_rows() {
        latest.insert((business.value(i), contact.value(i)), i as u32);
    }
    let mut keep: Vec<u32> = latest.into_values().collect();
    keep.sort_unstable_by_key(|&i| (at.value(i as usize), i));
    take_record_batch(&all, &UInt32Array::from(keep)).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(contact: &str, lead_score: i64, evaluated_at: i64) -> ContactProfile {
        ContactProfile {
            business_id: "b".into(),
            contact_id: contact.into(),
            lead_score,
            evaluated_at,
            ..Default::default()
        }
    }

    #[test]
    fn the_latest_version_of_each_contact_is_kept_in_evaluation_order() {
        let batches = [
            profiles_batch(&[version("c1", 1, 10), version("c2", 2, 20)]).unwrap(),
            profiles_batch(&[]).unwrap(),
            profiles_batch(&[version("c3", 3, 15), version("c1", 5, 30)]).unwrap(),
        ];
        let latest = latest_profile_rows(&batches).unwrap().unwrap();
        assert_eq!(
            profiles_from(&latest).unwrap(),
            vec![
                version("c3", 3, 15),
                version("c2", 2, 20),
                version("c1", 5, 30)
            ]
        );
        assert_eq!(latest_profile_rows(&[]).unwrap(), None);
    }

    #[test]
    fn rows_without_the_key_columns_are_refused_by_name() {
        let events = events_batch(&[]).unwrap();
        let err = latest_profile_rows(&[events]).unwrap_err();
        assert!(err.to_string().contains("evaluated_at"), "{err}");
    }
}
