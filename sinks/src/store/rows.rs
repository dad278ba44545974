//! Row types of the embedded store and their Arrow schemas (timestamps as UTC milliseconds, so
//! `keyflow sql` shows real times).

use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit,
};
use pipeline::event::Event;
use pipeline::profile::ContactProfile;
use pipeline::sink::AcceptedEvent;
use serde::{Deserialize, Serialize};

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
    let factor = Fields::from(vec![
        utf8("factor", false),
        Field::new("count", DataType::Int64, false),
        Field::new("points", DataType::Int64, false),
    ]);
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
        Field::new("lead_score", DataType::Int64, false),
        Field::new(
            "factors",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(factor),
                false,
            ))),
            false,
        ),
        utf8("rule_version", false),
        ts("last_interaction_at", true),
        Field::new("outstanding_balance_cents", DataType::Int64, false),
        Field::new("unpaid_invoices", DataType::Int64, false),
        ts("evaluated_at", false),
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

pub fn events_from(batch: &RecordBatch) -> Result<Vec<StoredEvent>, serde_arrow::Error> {
    serde_arrow::from_record_batch(batch)
}

pub fn profiles_from(batch: &RecordBatch) -> Result<Vec<ContactProfile>, serde_arrow::Error> {
    serde_arrow::from_record_batch(batch)
}
