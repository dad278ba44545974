//! Bytes to [`Event`]: validation, normalisation, and the reason an event is refused.
//!
//! The decoder never panics on input; every refusal is a [`Rejection`] whose `Display` is the
//! readable reason written to the dead-letter topic. It never reads the system clock either: the
//! processor passes its engine clock's "now" to [`Decoder::decode_at`], so a pinned clock pins
//! which events are "in the future".
//!
//! `fuzz` holds the properties every input must keep, shared by the `decode` cargo-fuzz target
//! and the regression test over the committed crash inputs (`fuzz/regressions/decode/`).

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::{Event, Payload, PayloadError, SCHEMA_VERSION};
use crate::normalise;

pub mod fuzz;
#[cfg(test)]
mod tests;

/// Why an event was refused. Each variant is one class of bad input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("payload of {size} bytes exceeds the limit of {max} bytes")]
    Oversized { size: usize, max: usize },
    #[error("message has no payload")]
    Empty,
    #[error("payload is not valid UTF-8 (first bad byte at offset {valid_up_to})")]
    InvalidUtf8 { valid_up_to: usize },
    #[error("envelope is not valid: {0}")]
    Envelope(String),
    #[error("unsupported schema_version {0} (this build reads {SCHEMA_VERSION})")]
    UnsupportedVersion(u32),
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("data of {kind} is not valid: {detail}")]
    Data { kind: String, detail: String },
    #[error("field {0} must not be empty")]
    EmptyField(&'static str),
    #[error("unknown source {0:?} (known: {1})")]
    UnknownSource(String, String),
    #[error("{field} must not be negative, got {value}")]
    NegativeAmount { field: &'static str, value: i64 },
    #[error("{field} of {value} exceeds the plausible maximum of {max}")]
    AbsurdAmount {
        field: &'static str,
        value: i64,
        max: i64,
    },
    #[error("contact.updated carries no field to update")]
    EmptyUpdate,
    #[error("a contact cannot be merged into itself")]
    SelfMerge,
    #[error(
        "message key {key:?} does not match contact_id {contact_id:?} (key must be contact_id)"
    )]
    KeyMismatch { key: String, contact_id: String },
    #[error("message has no key (key must be contact_id)")]
    MissingKey,
    #[error(
        "occurred_at {} is in the future: more than {} hours after now ({})",
        rfc3339(.occurred_at),
        MAX_FUTURE_SKEW_MS / 3_600_000,
        rfc3339(.now)
    )]
    FutureOccurredAt {
        occurred_at: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error(
        "occurred_at {} is ancient: before {}",
        rfc3339(.occurred_at),
        rfc3339(&earliest_occurred_at())
    )]
    AncientOccurredAt { occurred_at: DateTime<Utc> },
    /// A message of KeyFlow's own re-key topic that is not what KeyFlow writes there.
    #[error("{0}")]
    Rekey(String),
    /// A `contact.merged` whose survivor is already merged (directly or through a chain) into
    /// the contact it names: the state refuses it, the decoder cannot know.
    #[error(
        "merging {merged:?} into {survivor:?} would close a cycle: {survivor:?} is already merged into {merged:?}"
    )]
    MergeCycle { survivor: String, merged: String },
}

impl Rejection {
    /// A stable machine-readable class, written beside the reason.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Oversized { .. } => "oversized",
            Rejection::Empty => "empty",
            Rejection::InvalidUtf8 { .. } => "invalid_utf8",
            Rejection::Envelope(_) => "invalid_envelope",
            Rejection::UnsupportedVersion(_) => "unsupported_version",
            Rejection::UnknownType(_) => "unknown_type",
            Rejection::Data { .. } => "invalid_data",
            Rejection::EmptyField(_) => "empty_field",
            Rejection::UnknownSource(..) => "unknown_source",
            Rejection::NegativeAmount { .. } => "negative_amount",
            Rejection::AbsurdAmount { .. } => "absurd_amount",
            Rejection::EmptyUpdate => "empty_update",
            Rejection::SelfMerge => "self_merge",
            Rejection::KeyMismatch { .. } => "key_mismatch",
            Rejection::MissingKey => "missing_key",
            Rejection::FutureOccurredAt { .. } => "future_occurred_at",
            Rejection::AncientOccurredAt { .. } => "ancient_occurred_at",
            Rejection::Rekey(_) => "invalid_rekey_message",
            Rejection::MergeCycle { .. } => "merge_cycle",
        }
    }
}

/// Amounts above this many cents (ten million in any currency) are refused as implausible.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000;

/// Events that claim to have happened before 2000-01-01T00:00:00Z (this, in ms since the epoch)
/// are refused as ancient: no CRM this pipeline serves has such history, and a zero, negative or
/// year-1 instant is an upstream default leaking through. Besides, ClickHouse partitions events by
/// month (`toYYYYMM`), so every stray year would open partitions of its own.
pub const EARLIEST_OCCURRED_AT_MS: i64 = 946_684_800_000;

/// How far after "now" (the processor's clock) an `occurred_at` may be: generous for upstream
/// clock skew, small enough that a wrong year or a millisecond/second mix-up is refused before
/// it pins a contact's "last interaction" in the future.
pub const MAX_FUTURE_SKEW_MS: i64 = 24 * 3_600_000;

/// [`EARLIEST_OCCURRED_AT_MS`] as an instant.
pub fn earliest_occurred_at() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(EARLIEST_OCCURRED_AT_MS).expect("a valid instant")
}

fn rfc3339(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Decodes and validates raw messages against the contract and the configured sources.
#[derive(Debug, Clone)]
pub struct Decoder {
    sources: BTreeSet<String>,
    max_bytes: usize,
}

/// The envelope as it arrives, `data` left unparsed until the type is known. Its keys and their
/// camelCase aliases are [`Event`]'s (`crate::event::ENVELOPE_ALIASES`).
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(alias = "schemaVersion")]
    schema_version: Option<u32>,
    #[serde(alias = "eventId")]
    event_id: String,
    #[serde(alias = "businessId")]
    business_id: String,
    #[serde(alias = "contactId")]
    contact_id: String,
    #[serde(alias = "occurredAt")]
    occurred_at: DateTime<Utc>,
    source: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

impl Decoder {
    pub fn new(sources: impl IntoIterator<Item = String>, max_bytes: usize) -> Self {
        Self {
            sources: sources
                .into_iter()
                .map(|s| s.trim().to_lowercase())
                .collect(),
            max_bytes,
        }
    }

    /// Decodes one message received at `now` (the processor's clock): every check of
    /// [`Decoder::decode`], and an `occurred_at` more than [`MAX_FUTURE_SKEW_MS`] after `now` is
    /// refused. `key` is the Kafka message key, which must equal `contact_id`.
    pub fn decode_at(
        &self,
        key: Option<&[u8]>,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Event, Rejection> {
        let event = self.decode(key, bytes)?;
        let late = event.occurred_at.timestamp_millis() - now.timestamp_millis();
        if late > MAX_FUTURE_SKEW_MS {
            return Err(Rejection::FutureOccurredAt {
                occurred_at: event.occurred_at,
                now,
            });
        }
        Ok(event)
    }

    /// Decodes one message without a notion of "now" (benchmarks, tools over stored input):
    /// every check except the future bound of [`Decoder::decode_at`]. `key` is the Kafka message
    /// key, which must equal `contact_id`.
    pub fn decode(&self, key: Option<&[u8]>, bytes: &[u8]) -> Result<Event, Rejection> {
        if bytes.len() > self.max_bytes {
            return Err(Rejection::Oversized {
                size: bytes.len(),
                max: self.max_bytes,
            });
        }
        if bytes.is_empty() {
            return Err(Rejection::Empty);
        }
        let text = std::str::from_utf8(bytes).map_err(|e| Rejection::InvalidUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        let raw: RawEnvelope =
            serde_json::from_str(text).map_err(|e| Rejection::Envelope(e.to_string()))?;
        let version = raw.schema_version.unwrap_or(SCHEMA_VERSION);
        if version != SCHEMA_VERSION {
            return Err(Rejection::UnsupportedVersion(version));
        }
        let payload = decode_payload(&raw.kind, raw.data)?;
        let mut event = Event {
            schema_version: version,
            event_id: raw.event_id,
            business_id: raw.business_id,
            contact_id: raw.contact_id,
            occurred_at: raw.occurred_at,
            source: raw.source,
            payload,
        };
        self.validate(key, &event)?;
        normalise::event(&mut event);
        Ok(event)
    }

    fn validate(&self, key: Option<&[u8]>, ev: &Event) -> Result<(), Rejection> {
        for (field, value) in [
            ("event_id", &ev.event_id),
            ("business_id", &ev.business_id),
            ("contact_id", &ev.contact_id),
        ] {
            if value.trim().is_empty() {
                return Err(Rejection::EmptyField(field));
            }
        }
        if ev.occurred_at.timestamp_millis() < EARLIEST_OCCURRED_AT_MS {
            return Err(Rejection::AncientOccurredAt {
                occurred_at: ev.occurred_at,
            });
        }
        match key {
            None => return Err(Rejection::MissingKey),
            Some(k) if k != ev.contact_id.as_bytes() => {
                return Err(Rejection::KeyMismatch {
                    key: String::from_utf8_lossy(k).into_owned(),
                    contact_id: ev.contact_id.clone(),
                })
            }
            Some(_) => {}
        }
        let source = ev.source.trim().to_lowercase();
        if !self.sources.contains(&source) {
            let known = self.sources.iter().cloned().collect::<Vec<_>>().join(", ");
            return Err(Rejection::UnknownSource(ev.source.clone(), known));
        }
        validate_payload(ev)
    }
}

fn decode_payload(kind: &str, data: Option<&RawValue>) -> Result<Payload, Rejection> {
    payload_from_parts(kind, data.map(RawValue::get).unwrap_or("{}"))
}

/// The payload of type `kind` from its `data` JSON text (also how stores read events back).
pub fn payload_from_parts(kind: &str, d: &str) -> Result<Payload, Rejection> {
    Payload::from_parts(kind, d).map_err(|e| match e {
        PayloadError::UnknownType(kind) => Rejection::UnknownType(kind),
        PayloadError::Data { kind, detail } => Rejection::Data { kind, detail },
    })
}

fn non_empty(field: &'static str, value: &str) -> Result<(), Rejection> {
    if value.trim().is_empty() {
        Err(Rejection::EmptyField(field))
    } else {
        Ok(())
    }
}

fn amount(field: &'static str, value: i64) -> Result<(), Rejection> {
    if value < 0 {
        Err(Rejection::NegativeAmount { field, value })
    } else if value > MAX_AMOUNT_CENTS {
        Err(Rejection::AbsurdAmount {
            field,
            value,
            max: MAX_AMOUNT_CENTS,
        })
    } else {
        Ok(())
    }
}

fn validate_payload(ev: &Event) -> Result<(), Rejection> {
    match &ev.payload {
        Payload::ContactUpdated(u) => {
            let any = u.name.is_some()
                || u.email.is_some()
                || u.phone.is_some()
                || u.tags.is_some()
                || u.status.is_some()
                || u.photo_url.is_some();
            if !any {
                return Err(Rejection::EmptyUpdate);
            }
            if let Some(s) = &u.status {
                non_empty("data.status", s)?;
            }
            if let Some(s) = &u.from_status {
                non_empty("data.from_status", s)?;
            }
        }
        Payload::ContactMerged(m) => {
            non_empty("data.merged_contact_id", &m.merged_contact_id)?;
            if m.merged_contact_id == ev.contact_id {
                return Err(Rejection::SelfMerge);
            }
        }
        Payload::NoteCreated(n) => non_empty("data.note_id", &n.note_id)?,
        Payload::TaskCreated(t) => non_empty("data.task_id", &t.task_id)?,
        Payload::TaskCompleted(t) => non_empty("data.task_id", &t.task_id)?,
        Payload::BookingCreated(b) => {
            non_empty("data.booking_id", &b.booking_id)?;
            non_empty("data.service_id", &b.service_id)?;
            if let Some(p) = b.price_cents {
                amount("data.price_cents", p)?;
            }
        }
        Payload::BookingConfirmed(b)
        | Payload::BookingCancelled(b)
        | Payload::BookingCompleted(b) => non_empty("data.booking_id", &b.booking_id)?,
        Payload::InvoiceSent(i) => {
            non_empty("data.invoice_id", &i.invoice_id)?;
            non_empty("data.currency", &i.currency)?;
            amount("data.amount_cents", i.amount_cents)?;
        }
        Payload::InvoicePaid(i) | Payload::InvoiceOverdue(i) => {
            non_empty("data.invoice_id", &i.invoice_id)?
        }
        Payload::ContactCreated(_) | Payload::ContactDeleted(_) | Payload::ContactErased(_) => {}
    }
    Ok(())
}
