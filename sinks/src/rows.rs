//! The rows both stores keep alike: an accepted event as stored (envelope columns plus the
//! `data` object as JSON text), a stored signal and a lead-score change. The embedded store writes them as Arrow
//! segments, ClickHouse as table rows; each store's own rows live in its module.

use chrono::DateTime;
use clickhouse::Row;
use model::event::Event;
use model::profile::Factor;
use model::signal::Signal;
use model::sink::{AcceptedEvent, ScoreChange};
use serde::{Deserialize, Serialize};

/// An accepted event as stored: envelope columns plus the `data` object as JSON text. `S` is its
/// texts' type: owned in a [`StoredEvent`] (what reads return), borrowed in a [`StoredEventRef`]
/// (what a write builds its segment and records the activity from, without copying each text of
/// each event first). One list of the columns for both.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StoredEventOf<S> {
    pub partition: i32,
    pub topic: S,
    pub offset: i64,
    pub event_id: S,
    #[serde(rename = "type")]
    pub kind: S,
    pub business_id: S,
    pub contact_id: S,
    pub occurred_at: i64,
    pub source: S,
    pub data: S,
}

pub type StoredEvent = StoredEventOf<String>;
pub type StoredEventRef<'a> = StoredEventOf<&'a str>;

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

impl<'a> StoredEventRef<'a> {
    /// `a` as stored, `data` being its payload's text ([`model::event::Payload::data_json`]).
    pub fn new(a: &'a AcceptedEvent, data: &'a str) -> Self {
        let e = &a.event;
        Self {
            partition: a.partition,
            topic: &a.topic,
            offset: a.offset,
            event_id: &e.event_id,
            kind: e.payload.type_name(),
            business_id: &e.business_id,
            contact_id: &e.contact_id,
            occurred_at: e.occurred_at.timestamp_millis(),
            source: &e.source,
            data,
        }
    }

    pub fn of(e: &'a StoredEvent) -> Self {
        Self {
            partition: e.partition,
            topic: &e.topic,
            offset: e.offset,
            event_id: &e.event_id,
            kind: &e.kind,
            business_id: &e.business_id,
            contact_id: &e.contact_id,
            occurred_at: e.occurred_at,
            source: &e.source,
            data: &e.data,
        }
    }
}

impl StoredEvent {
    /// The event back, as the processor first accepted it.
    pub fn to_event(&self) -> Result<Event, String> {
        let payload =
            model::event::Payload::from_parts(&self.kind, &self.data).map_err(|e| e.to_string())?;
        Ok(Event {
            schema_version: model::event::SCHEMA_VERSION,
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

/// A stored signal: a row of ClickHouse's `signals` table, and of the embedded store's signal
/// segments.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SignalRow {
    pub signal_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub business_id: String,
    pub contact_id: String,
    pub partition: i32,
    pub subject: String,
    pub change: String,
    pub reason: String,
    pub at_ms: i64,
    pub rule_version: String,
    pub caused_by: Vec<String>,
    /// The type-specific fields as JSON text.
    pub detail: String,
    /// The partition's write that stored it (increasing; see `Recovered::unpublished`).
    pub batch: u64,
}

/// A [`SignalRow`] borrowed from its signal: the same columns in the same order (the store's
/// signal columns are traced from `SignalRow`, and a test holds the two batches equal), so the
/// store builds its segment without copying each text of each signal first.
#[derive(Debug, Serialize)]
pub struct SignalRowRef<'a> {
    pub signal_id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub business_id: &'a str,
    pub contact_id: &'a str,
    pub partition: i32,
    pub subject: &'a str,
    pub change: &'a str,
    pub reason: &'a str,
    pub at_ms: i64,
    pub rule_version: &'a str,
    pub caused_by: &'a [String],
    pub detail: String,
    pub batch: u64,
}

impl<'a> SignalRowRef<'a> {
    pub fn new(s: &'a Signal, batch: u64) -> Self {
        Self {
            signal_id: &s.signal_id,
            kind: s.kind,
            business_id: &s.business_id,
            contact_id: &s.contact_id,
            partition: s.partition,
            subject: &s.subject,
            change: s.change,
            reason: &s.reason,
            at_ms: s.at,
            rule_version: &s.rule_version,
            caused_by: &s.caused_by,
            detail: serde_json::to_string(&s.detail).unwrap_or_else(|_| "{}".into()),
            batch,
        }
    }
}

impl SignalRow {
    pub fn new(s: &Signal, batch: u64) -> Self {
        Self {
            signal_id: s.signal_id.clone(),
            kind: s.kind.to_owned(),
            business_id: s.business_id.clone(),
            contact_id: s.contact_id.clone(),
            partition: s.partition,
            subject: s.subject.clone(),
            change: s.change.to_owned(),
            reason: s.reason.clone(),
            at_ms: s.at,
            rule_version: s.rule_version.clone(),
            caused_by: s.caused_by.clone(),
            // The same text as `Display`, without its formatter adapter.
            detail: serde_json::to_string(&s.detail).unwrap_or_else(|_| "{}".into()),
            batch,
        }
    }

    /// The signal back, as it was published.
    pub fn to_signal(&self) -> Result<Signal, String> {
        Signal::restore(
            self.signal_id.clone(),
            &self.kind,
            self.business_id.clone(),
            self.contact_id.clone(),
            self.partition,
            self.subject.clone(),
            &self.change,
            self.reason.clone(),
            self.at_ms,
            self.rule_version.clone(),
            self.caused_by.clone(),
            &self.detail,
        )
    }
}

/// One change of a contact's lead score: a row of ClickHouse's `lead_score_history` table,
/// and of the embedded store's score segments.
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

/// Factors as the parallel arrays both stores keep them in.
pub(crate) fn split(factors: &[Factor]) -> (Vec<String>, Vec<i64>, Vec<i64>) {
    (
        factors.iter().map(|f| f.factor.clone()).collect(),
        factors.iter().map(|f| f.count).collect(),
        factors.iter().map(|f| f.points).collect(),
    )
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

impl HistoryRow {
    /// The change this row stored.
    pub fn to_change(&self) -> ScoreChange {
        ScoreChange {
            business_id: self.business_id.clone(),
            contact_id: self.contact_id.clone(),
            partition: self.partition,
            old_score: self.old_score,
            new_score: self.new_score,
            factors: self
                .factor_names
                .iter()
                .zip(&self.factor_counts)
                .zip(&self.factor_points)
                .map(|((factor, &count), &points)| Factor {
                    factor: factor.clone(),
                    count,
                    points,
                })
                .collect(),
            rule_version: self.rule_version.clone(),
            caused_by: self.caused_by.clone(),
            reason: if self.reason == "events" {
                "events"
            } else {
                "time"
            },
            evaluated_at: self.evaluated_at_ms,
        }
    }
}
