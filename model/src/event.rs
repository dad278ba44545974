//! The event contract: the versioned JSON envelope upstream producers write to the input topics.
//!
//! These types are the single source of truth: the decoder reads them, the demo and the tests
//! write them, and `schema/event.schema.json` is generated from them (see `json_schema`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The envelope's schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One CRM event, as published on `crm.contacts`, `crm.invoices`, `crm.bookings` or `crm.tasks`.
/// The Kafka message key is `contact_id`. The envelope's keys are snake_case; the camelCase
/// spellings of [`ENVELOPE_ALIASES`] are read as the same keys (one of the two per key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Envelope schema version; absent means 1.
    #[serde(default = "default_version", alias = "schemaVersion")]
    pub schema_version: u32,
    /// Unique id of the event; a repeated id counts once.
    #[serde(alias = "eventId")]
    pub event_id: String,
    /// The business (tenant) the contact belongs to.
    #[serde(alias = "businessId")]
    pub business_id: String,
    /// The contact the event is about (also the Kafka message key).
    #[serde(alias = "contactId")]
    pub contact_id: String,
    /// When it happened upstream (RFC 3339).
    #[serde(alias = "occurredAt")]
    pub occurred_at: DateTime<Utc>,
    /// Where it came from: booking_form, automation, public_link, import, manual, commerce, or a
    /// source added in configuration.
    pub source: String,
    /// The type tag and its type-specific fields.
    #[serde(flatten)]
    pub payload: Payload,
}

fn default_version() -> u32 {
    SCHEMA_VERSION
}

/// The envelope keys read under a second, camelCase name (`key`, `alias`): what CRMs that speak
/// camelCase JSON (and KeyFlow's own seed) write. The serde attributes of [`Event`] and the
/// decoder's envelope accept them; [`json_schema`] documents them from this list, and a test
/// checks that each one is accepted.
pub const ENVELOPE_ALIASES: &[(&str, &str)] = &[
    ("schema_version", "schemaVersion"),
    ("event_id", "eventId"),
    ("business_id", "businessId"),
    ("contact_id", "contactId"),
    ("occurred_at", "occurredAt"),
];

/// The `data` keys read under a second name, by type definition (`definition`, `key`, `alias`):
/// `contact.updated` as CRMs send a status change, `{"fromStatus": "LEAD", "toStatus": "CLIENT"}`.
pub const DATA_ALIASES: &[(&str, &str, &str)] = &[
    ("ContactUpdated", "status", "toStatus"),
    ("ContactUpdated", "status", "to_status"),
    ("ContactUpdated", "from_status", "fromStatus"),
];

/// The `type` tag and the `data` object it governs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum Payload {
    #[serde(rename = "contact.created")]
    ContactCreated(ContactCreated),
    #[serde(rename = "contact.updated")]
    ContactUpdated(ContactUpdated),
    #[serde(rename = "contact.merged")]
    ContactMerged(ContactMerged),
    #[serde(rename = "contact.deleted")]
    ContactDeleted(Empty),
    #[serde(rename = "contact.erased")]
    ContactErased(Empty),
    #[serde(rename = "note.created")]
    NoteCreated(NoteCreated),
    #[serde(rename = "task.created")]
    TaskCreated(TaskCreated),
    #[serde(rename = "task.completed", alias = "contact.task.completed")]
    TaskCompleted(TaskRef),
    #[serde(rename = "booking.created")]
    BookingCreated(BookingCreated),
    #[serde(rename = "booking.confirmed")]
    BookingConfirmed(BookingRef),
    #[serde(rename = "booking.cancelled")]
    BookingCancelled(BookingRef),
    #[serde(rename = "booking.completed")]
    BookingCompleted(BookingRef),
    #[serde(rename = "invoice.sent")]
    InvoiceSent(InvoiceSent),
    #[serde(rename = "invoice.paid")]
    InvoicePaid(InvoiceRef),
    #[serde(rename = "invoice.overdue")]
    InvoiceOverdue(InvoiceRef),
}

/// Every type tag, in contract order, with its aliases resolved to the canonical name.
pub const EVENT_TYPES: &[&str] = &[
    "contact.created",
    "contact.updated",
    "contact.merged",
    "contact.deleted",
    "contact.erased",
    "note.created",
    "task.created",
    "task.completed",
    "booking.created",
    "booking.confirmed",
    "booking.cancelled",
    "booking.completed",
    "invoice.sent",
    "invoice.paid",
    "invoice.overdue",
];

/// Why a stored or received `data` text is not a payload of its type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("invalid data for {kind}: {detail}")]
    Data { kind: String, detail: String },
}

impl Payload {
    /// The payload of type `kind` from its `data` JSON text: how the decoder reads a message's
    /// `data` and how stores read events back.
    pub fn from_parts(kind: &str, d: &str) -> Result<Payload, PayloadError> {
        fn parse<'a, T: Deserialize<'a>>(kind: &str, data: &'a str) -> Result<T, PayloadError> {
            serde_json::from_str(data).map_err(|e| PayloadError::Data {
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
            other => return Err(PayloadError::UnknownType(other.to_owned())),
        })
    }

    /// The canonical type tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Payload::ContactCreated(_) => "contact.created",
            Payload::ContactUpdated(_) => "contact.updated",
            Payload::ContactMerged(_) => "contact.merged",
            Payload::ContactDeleted(_) => "contact.deleted",
            Payload::ContactErased(_) => "contact.erased",
            Payload::NoteCreated(_) => "note.created",
            Payload::TaskCreated(_) => "task.created",
            Payload::TaskCompleted(_) => "task.completed",
            Payload::BookingCreated(_) => "booking.created",
            Payload::BookingConfirmed(_) => "booking.confirmed",
            Payload::BookingCancelled(_) => "booking.cancelled",
            Payload::BookingCompleted(_) => "booking.completed",
            Payload::InvoiceSent(_) => "invoice.sent",
            Payload::InvoicePaid(_) => "invoice.paid",
            Payload::InvoiceOverdue(_) => "invoice.overdue",
        }
    }

    /// The `data` object alone, as JSON text: the variant's struct serialised directly (its
    /// fields in declaration order), with no `serde_json::Value` built on the way. Every stored
    /// event goes through here once, and the detour through a `Value` was 4% of the engine's CPU.
    pub fn data_json(&self) -> String {
        fn text<T: Serialize>(data: &T) -> String {
            serde_json::to_string(data).unwrap_or_else(|_| "{}".into())
        }
        match self {
            Payload::ContactCreated(d) => text(d),
            Payload::ContactUpdated(d) => text(d),
            Payload::ContactMerged(d) => text(d),
            Payload::ContactDeleted(d) | Payload::ContactErased(d) => text(d),
            Payload::NoteCreated(d) => text(d),
            Payload::TaskCreated(d) => text(d),
            Payload::TaskCompleted(d) => text(d),
            Payload::BookingCreated(d) => text(d),
            Payload::BookingConfirmed(d)
            | Payload::BookingCancelled(d)
            | Payload::BookingCompleted(d) => text(d),
            Payload::InvoiceSent(d) => text(d),
            Payload::InvoicePaid(d) | Payload::InvoiceOverdue(d) => text(d),
        }
    }

    /// This payload with the personal fields a `contact.erased` removes (name, email, phone,
    /// photo, note bodies) replaced: names and bodies by `[erased]`, the rest by empty strings,
    /// which clear a field. Everything else (ids, amounts, instants, tags, status) is kept so
    /// the aggregates keep their anonymous counts.
    pub fn redacted(&self) -> Payload {
        const ERASED: &str = "[erased]";
        let clear = |v: &Option<String>| v.as_ref().map(|_| String::new());
        match self {
            Payload::ContactCreated(c) => Payload::ContactCreated(ContactCreated {
                name: ERASED.into(),
                email: None,
                phone: None,
                photo_url: None,
                ..c.clone()
            }),
            Payload::ContactUpdated(u) => Payload::ContactUpdated(ContactUpdated {
                name: u.name.as_ref().map(|_| ERASED.to_owned()),
                email: clear(&u.email),
                phone: clear(&u.phone),
                photo_url: clear(&u.photo_url),
                ..u.clone()
            }),
            Payload::NoteCreated(n) => Payload::NoteCreated(NoteCreated {
                note_id: n.note_id.clone(),
                body: ERASED.into(),
            }),
            other => other.clone(),
        }
    }

    /// The input topic family this type belongs on.
    pub fn family(&self) -> TopicFamily {
        match self {
            Payload::ContactCreated(_)
            | Payload::ContactUpdated(_)
            | Payload::ContactMerged(_)
            | Payload::ContactDeleted(_)
            | Payload::ContactErased(_)
            | Payload::NoteCreated(_) => TopicFamily::Contacts,
            Payload::TaskCreated(_) | Payload::TaskCompleted(_) => TopicFamily::Tasks,
            Payload::BookingCreated(_)
            | Payload::BookingConfirmed(_)
            | Payload::BookingCancelled(_)
            | Payload::BookingCompleted(_) => TopicFamily::Bookings,
            Payload::InvoiceSent(_) | Payload::InvoicePaid(_) | Payload::InvoiceOverdue(_) => {
                TopicFamily::Invoices
            }
        }
    }
}

/// The four input topics, by what they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicFamily {
    Contacts,
    Invoices,
    Bookings,
    Tasks,
}

/// `contact.created`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContactCreated {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// LEAD when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_url: Option<String>,
}

/// `contact.updated`: any subset of the profile fields; at least one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContactUpdated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// The new status (also read from `toStatus` or `to_status`).
    #[serde(
        default,
        alias = "toStatus",
        alias = "to_status",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_url: Option<String>,
    /// The status the CRM changed it from (also read from `fromStatus`), when it says. Kept with
    /// the event for the record; the status shown is the latest one set, whatever this says.
    #[serde(default, alias = "fromStatus", skip_serializing_if = "Option::is_none")]
    pub from_status: Option<String>,
}

/// `contact.merged`: `merged_contact_id` is folded into the envelope's contact, which survives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContactMerged {
    pub merged_contact_id: String,
}

/// The empty `data` of `contact.deleted` and `contact.erased`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Empty {}

/// `note.created`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NoteCreated {
    pub note_id: String,
    pub body: String,
}

/// `task.created`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskCreated {
    pub task_id: String,
    pub title: String,
    pub due_at: DateTime<Utc>,
}

/// `task.completed` (also accepted as `contact.task.completed`)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskRef {
    pub task_id: String,
}

/// `booking.created`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BookingCreated {
    pub booking_id: String,
    pub service_id: String,
    pub service_name: String,
    pub starts_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_cents: Option<i64>,
}

/// `booking.confirmed`, `booking.cancelled`, `booking.completed`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BookingRef {
    pub booking_id: String,
}

/// `invoice.sent`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceSent {
    pub invoice_id: String,
    pub amount_cents: i64,
    /// ISO 4217 code, e.g. EUR.
    pub currency: String,
    pub due_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
}

/// `invoice.paid`, `invoice.overdue`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceRef {
    pub invoice_id: String,
}

/// The JSON Schema of the envelope, generated from these types, with the second names of
/// [`ENVELOPE_ALIASES`] and [`DATA_ALIASES`] as properties of their own (schemars leaves serde's
/// aliases out): a required key becomes "this key or its alias".
pub fn json_schema() -> serde_json::Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Event)).expect("a schema serialises");
    add_aliases(&mut schema, ENVELOPE_ALIASES.iter().copied());
    for (definition, key, alias) in DATA_ALIASES {
        if let Some(def) = schema.pointer_mut(&format!("/$defs/{definition}")) {
            add_aliases(def, [(*key, *alias)]);
        }
    }
    schema
}

/// Adds `alias` beside `key` in an object schema: the same value schema, a description naming
/// `key`, and in `required` the pair as an `anyOf` (one of the two must be there).
fn add_aliases<'a>(
    object: &mut serde_json::Value,
    aliases: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    use serde_json::{json, Value};
    for (key, alias) in aliases {
        let Some(props) = object.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        let Some(mut value) = props.get(key).cloned() else {
            continue;
        };
        if let Some(v) = value.as_object_mut() {
            v.insert(
                "description".into(),
                json!(format!("`{key}` under another name: give one of the two")),
            );
            v.remove("default");
        }
        props.insert(alias.to_owned(), value);
        let Some(required) = object.get_mut("required").and_then(Value::as_array_mut) else {
            continue;
        };
        let before = required.len();
        required.retain(|k| k != key);
        if required.len() == before {
            continue;
        }
        let either = json!({"anyOf": [{"required": [key]}, {"required": [alias]}]});
        let all = object
            .as_object_mut()
            .expect("an object schema")
            .entry("allOf")
            .or_insert_with(|| json!([]));
        if let Some(all) = all.as_array_mut() {
            all.push(either);
        }
    }
}

/// serde's "at line 1 column 57" is noise in a reason about one field.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed schema must be the one these types generate; regenerate it with
    /// `KEYFLOW_BLESS=1 cargo test -p pipeline committed_schema`.
    /// Every alias the schema documents is one serde reads, and means the same as its key.
    #[test]
    fn every_documented_alias_is_read() {
        let snake = serde_json::json!({
            "event_id": "e-1", "business_id": "b", "contact_id": "c",
            "occurred_at": "2026-11-20T10:00:00Z", "source": "manual",
            "type": "contact.updated",
            "data": {"status": "CLIENT", "from_status": "LEAD"}
        });
        let expected: Event = serde_json::from_value(snake.clone()).unwrap();
        for (key, alias) in ENVELOPE_ALIASES {
            let mut v = snake.clone();
            let m = v.as_object_mut().unwrap();
            if let Some(value) = m.remove(*key) {
                m.insert((*alias).into(), value);
            } else {
                m.insert((*alias).into(), serde_json::json!(SCHEMA_VERSION));
            }
            let read: Event = serde_json::from_value(v).unwrap_or_else(|e| panic!("{alias}: {e}"));
            assert_eq!(read, expected, "{alias}");
        }
        for (_, key, alias) in DATA_ALIASES {
            let mut v = snake.clone();
            let data = v["data"].as_object_mut().unwrap();
            let value = data.remove(*key).unwrap();
            data.insert((*alias).into(), value);
            let read: Event = serde_json::from_value(v).unwrap_or_else(|e| panic!("{alias}: {e}"));
            assert_eq!(read, expected, "{alias}");
        }
        let schema = json_schema();
        for (key, alias) in ENVELOPE_ALIASES {
            assert!(schema["properties"][alias].is_object(), "{alias} for {key}");
        }
        for (definition, _, alias) in DATA_ALIASES {
            assert!(
                schema["$defs"][definition]["properties"][alias].is_object(),
                "{alias}"
            );
        }
    }

    /// `data_json` lists the variants by hand: each must give the same object as the tagged
    /// serialisation's `data`, and read back as the same payload.
    #[test]
    fn data_json_is_the_tagged_data_of_every_type() {
        let samples = [
            (
                "contact.created",
                r#"{"name":"Ana","email":"a@x.io","tags":["vip"],"status":"LEAD"}"#,
            ),
            (
                "contact.updated",
                r#"{"status":"CLIENT","from_status":"LEAD"}"#,
            ),
            ("contact.merged", r#"{"merged_contact_id":"c2"}"#),
            ("contact.deleted", "{}"),
            ("contact.erased", "{}"),
            (
                "note.created",
                r#"{"note_id":"n1","body":"Prefers mornings"}"#,
            ),
            (
                "task.created",
                r#"{"task_id":"t1","title":"Call","due_at":"2026-11-21T10:00:00Z"}"#,
            ),
            ("task.completed", r#"{"task_id":"t1"}"#),
            (
                "booking.created",
                r#"{"booking_id":"b1","service_id":"s1","service_name":"Cut","starts_at":"2026-11-21T10:00:00Z","price_cents":4000}"#,
            ),
            ("booking.confirmed", r#"{"booking_id":"b1"}"#),
            ("booking.cancelled", r#"{"booking_id":"b1"}"#),
            ("booking.completed", r#"{"booking_id":"b1"}"#),
            (
                "invoice.sent",
                r#"{"invoice_id":"i1","amount_cents":12000,"currency":"EUR","due_at":"2026-11-25T00:00:00Z","booking_id":"b1"}"#,
            ),
            ("invoice.paid", r#"{"invoice_id":"i1"}"#),
            ("invoice.overdue", r#"{"invoice_id":"i1"}"#),
        ];
        assert_eq!(samples.len(), EVENT_TYPES.len(), "a sample per type");
        for (kind, data) in samples {
            let p = Payload::from_parts(kind, data).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(p.type_name(), kind);
            let text = p.data_json();
            let tagged = serde_json::to_value(&p).unwrap();
            let direct: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(direct, tagged["data"], "{kind}: {text}");
            assert_eq!(Payload::from_parts(kind, &text).as_ref(), Ok(&p), "{kind}");
        }
    }

    #[test]
    fn committed_schema_matches_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/event.schema.json");
        let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
        if std::env::var_os("KEYFLOW_BLESS").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(committed, generated, "schema/event.schema.json is stale");
    }
}
