//! Bytes to [`Event`]: validation, normalisation, and the reason an event is refused.
//!
//! The decoder never panics on input; every refusal is a [`Rejection`] whose `Display` is the
//! readable reason written to the dead-letter topic.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::{Event, Payload, SCHEMA_VERSION};
use crate::normalise;

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
        }
    }
}

/// Amounts above this many cents (ten million in any currency) are refused as implausible.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000;

/// Decodes and validates raw messages against the contract and the configured sources.
#[derive(Debug, Clone)]
pub struct Decoder {
    sources: BTreeSet<String>,
    max_bytes: usize,
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    schema_version: Option<u32>,
    event_id: String,
    business_id: String,
    contact_id: String,
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

    /// Decodes one message. `key` is the Kafka message key, which must equal `contact_id`.
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
    fn parse<'a, T: Deserialize<'a>>(kind: &str, data: &'a str) -> Result<T, Rejection> {
        serde_json::from_str(data).map_err(|e| Rejection::Data {
            kind: kind.to_owned(),
            detail: strip_position(&e.to_string()),
        })
    }
    Ok(match kind {
        "contact.created" => Payload::ContactCreated(parse(kind, d)?),
        "contact.updated" => Payload::ContactUpdated(parse(kind, d)?),
        "contact.merged" => Payload::ContactMerged(parse(kind, d)?),
        "contact.deleted" => Payload::ContactDeleted(parse(kind, d)?),
        "contact.erased" => Payload::ContactErased(parse(kind, d)?),
        "note.created" => Payload::NoteCreated(parse(kind, d)?),
        "task.created" => Payload::TaskCreated(parse(kind, d)?),
        "task.completed" | "contact.task.completed" => Payload::TaskCompleted(parse(kind, d)?),
        "booking.created" => Payload::BookingCreated(parse(kind, d)?),
        "booking.confirmed" => Payload::BookingConfirmed(parse(kind, d)?),
        "booking.cancelled" => Payload::BookingCancelled(parse(kind, d)?),
        "booking.completed" => Payload::BookingCompleted(parse(kind, d)?),
        "invoice.sent" => Payload::InvoiceSent(parse(kind, d)?),
        "invoice.paid" => Payload::InvoicePaid(parse(kind, d)?),
        "invoice.overdue" => Payload::InvoiceOverdue(parse(kind, d)?),
        other => return Err(Rejection::UnknownType(other.to_owned())),
    })
}

/// serde's "at line 1 column 57" is noise in a reason about one field.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder() -> Decoder {
        Decoder::new(["manual".to_string(), "booking_form".into()], 4096)
    }

    fn envelope(kind: &str, data: &str) -> String {
        format!(
            r#"{{"event_id":"e1","type":"{kind}","business_id":"b1","contact_id":"c1","occurred_at":"2026-11-01T10:00:00Z","source":"manual","data":{data}}}"#
        )
    }

    fn reject(bytes: &[u8]) -> Rejection {
        decoder().decode(Some(b"c1"), bytes).unwrap_err()
    }

    #[test]
    fn decodes_and_normalises_a_contact() {
        let raw = envelope(
            "contact.created",
            r#"{"name":"  Ada  Lovelace ","email":" Ada@Example.com ","phone":"+44 (20) 7946-0000","tags":["VIP"," vip"]}"#,
        );
        let ev = decoder().decode(Some(b"c1"), raw.as_bytes()).unwrap();
        match ev.payload {
            Payload::ContactCreated(c) => {
                assert_eq!(c.name, "Ada Lovelace");
                assert_eq!(c.email.as_deref(), Some("ada@example.com"));
                assert_eq!(c.phone.as_deref(), Some("442079460000"));
                assert_eq!(c.tags, Some(vec!["vip".to_string()]));
                assert_eq!(c.status.as_deref(), Some("LEAD"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn accepts_the_task_completed_alias() {
        let raw = envelope("contact.task.completed", r#"{"task_id":"t1"}"#);
        let ev = decoder().decode(Some(b"c1"), raw.as_bytes()).unwrap();
        assert_eq!(ev.payload.type_name(), "task.completed");
    }

    #[test]
    fn data_may_be_absent_for_empty_types() {
        let raw = r#"{"event_id":"e1","type":"contact.deleted","business_id":"b1","contact_id":"c1","occurred_at":"2026-11-01T10:00:00Z","source":"manual"}"#;
        assert!(decoder().decode(Some(b"c1"), raw.as_bytes()).is_ok());
    }

    #[test]
    fn every_class_of_bad_input_has_its_reason() {
        assert_eq!(reject(&[b'x'; 5000]).code(), "oversized");
        assert_eq!(reject(b"").code(), "empty");
        assert_eq!(reject(b"{\"a\":\"\xff\"}").code(), "invalid_utf8");
        assert_eq!(reject(b"{\"event_id\":").code(), "invalid_envelope");
        assert_eq!(
            reject(envelope("contact.exploded", "{}").as_bytes()).code(),
            "unknown_type"
        );
        let missing =
            reject(envelope("task.created", r#"{"task_id":"t1","title":"x"}"#).as_bytes());
        assert_eq!(
            missing.to_string(),
            "data of task.created is not valid: missing field `due_at`"
        );
        let mistyped = reject(envelope("invoice.sent", r#"{"invoice_id":"i","amount_cents":"12","currency":"EUR","due_at":"2026-11-01T00:00:00Z"}"#).as_bytes());
        assert_eq!(mistyped.code(), "invalid_data");
        assert!(
            mistyped.to_string().contains("invalid type: string \"12\""),
            "{mistyped}"
        );
        let bad_time = reject(
            envelope("contact.deleted", "{}")
                .replace("2026-11-01T10:00:00Z", "yesterday")
                .as_bytes(),
        );
        assert_eq!(bad_time.code(), "invalid_envelope");
        let negative = reject(envelope("invoice.sent", r#"{"invoice_id":"i","amount_cents":-5,"currency":"EUR","due_at":"2026-11-01T00:00:00Z"}"#).as_bytes());
        assert_eq!(
            negative.to_string(),
            "data.amount_cents must not be negative, got -5"
        );
        let source = reject(
            envelope("contact.deleted", "{}")
                .replace("\"manual\"", "\"fax\"")
                .as_bytes(),
        );
        assert_eq!(
            source.to_string(),
            "unknown source \"fax\" (known: booking_form, manual)"
        );
        assert_eq!(
            reject(envelope("contact.updated", "{}").as_bytes()).code(),
            "empty_update"
        );
        assert_eq!(
            reject(envelope("contact.merged", r#"{"merged_contact_id":"c1"}"#).as_bytes()).code(),
            "self_merge"
        );
        let raw = envelope("contact.deleted", "{}");
        assert_eq!(
            decoder()
                .decode(Some(b"c2"), raw.as_bytes())
                .unwrap_err()
                .code(),
            "key_mismatch"
        );
        assert_eq!(
            decoder().decode(None, raw.as_bytes()).unwrap_err().code(),
            "missing_key"
        );
        let v2 = raw.replace("{\"event_id\"", "{\"schema_version\":2,\"event_id\"");
        assert_eq!(reject(v2.as_bytes()).code(), "unsupported_version");
    }
}
