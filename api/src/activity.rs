//! Recent activity as the Cockpit shows it: a badge, a one-line title and context actions per
//! event (timeline, contact page), and the contact's notes, tasks, bookings and invoices folded
//! from its events. Pure functions over [`Activity`]; unit-tested below.

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use sinks::read::Activity;

use crate::views::rfc3339;

/// One event: what the timeline and the contact page list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityView {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub contact_id: String,
    /// The contact's current name, where the page knows it.
    pub contact_name: Option<String>,
    pub occurred_at: Option<String>,
    pub source: String,
    /// contact, note, task, booking, invoice or payment.
    pub badge: String,
    /// One line for a person.
    pub title: String,
    /// view_contact, mark_task_done, send_reminder.
    pub actions: Vec<String>,
    /// The event's data object.
    pub data: Value,
}

/// A page of a longer list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Paged<T> {
    pub total: usize,
    pub offset: usize,
    pub items: Vec<T>,
}

impl<T: Clone> Paged<T> {
    pub fn of(all: &[T], offset: usize, limit: usize) -> Self {
        Self {
            total: all.len(),
            offset,
            items: all.iter().skip(offset).take(limit).cloned().collect(),
        }
    }
}

fn text<'a>(d: &'a Value, key: &str) -> Option<&'a str> {
    d.get(key).and_then(Value::as_str)
}

fn int(d: &Value, key: &str) -> Option<i64> {
    d.get(key).and_then(Value::as_i64)
}

/// `2026-11-24 14:30` from an RFC 3339 instant, as sent.
fn when(d: &Value, key: &str) -> String {
    text(d, key)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "?".into())
}

/// `120.00 EUR` from cents.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", c / 100, c % 100)
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max - 1).collect();
    format!("{cut}…")
}

pub fn badge(kind: &str) -> &'static str {
    match kind {
        "invoice.paid" => "payment",
        k if k.starts_with("invoice.") => "invoice",
        k if k.starts_with("booking.") => "booking",
        k if k.starts_with("task.") => "task",
        "note.created" => "note",
        _ => "contact",
    }
}

/// What a contact's events say about the ids its later events name: a booking's service and
/// start, an invoice's amount, a task's title. Learned from `booking.created`, `invoice.sent`
/// and `task.created`, so that "booking b-17 completed" reads "Balayage completed".
#[derive(Debug, Default, Clone)]
pub struct Known {
    bookings: HashMap<String, (String, String)>,
    invoices: HashMap<String, String>,
    tasks: HashMap<String, String>,
}

impl Known {
    pub fn of<'a>(events: impl IntoIterator<Item = &'a Activity>) -> Self {
        let mut k = Self::default();
        for a in events {
            k.learn(&a.kind, &a.data_value());
        }
        k
    }

    pub fn learn(&mut self, kind: &str, d: &Value) {
        match (kind, ID_OF.iter().find(|(k, _)| *k == kind)) {
            ("booking.created", Some((_, f))) => {
                let service = text(d, "service_name")
                    .or_else(|| text(d, "service_id"))
                    .unwrap_or("a service");
                if let Some(id) = text(d, f) {
                    let start = when(d, "starts_at");
                    self.bookings.insert(id.into(), (service.into(), start));
                }
            }
            ("invoice.sent", Some((_, f))) => {
                let amount = money(
                    int(d, "amount_cents").unwrap_or(0),
                    text(d, "currency").unwrap_or(""),
                );
                if let Some(id) = text(d, f) {
                    self.invoices.insert(id.into(), amount);
                }
            }
            ("task.created", Some((_, f))) => {
                if let Some(id) = text(d, f) {
                    let title = shorten(text(d, "title").unwrap_or(""), 60);
                    self.tasks.insert(id.into(), title);
                }
            }
            _ => {}
        }
    }

    /// Whether `kind` names an id this does not know yet (a read of the contact's events would
    /// tell).
    pub fn lacks(&self, kind: &str, d: &Value) -> bool {
        let Some((_, field)) = ID_OF.iter().find(|(k, _)| *k == kind) else {
            return false;
        };
        let Some(id) = text(d, field) else {
            return false;
        };
        match *field {
            "booking_id" => !self.bookings.contains_key(id),
            "invoice_id" => !self.invoices.contains_key(id),
            _ => !self.tasks.contains_key(id),
        }
    }
}

/// The id field each kind names.
const ID_OF: &[(&str, &str)] = &[
    ("booking.created", "booking_id"),
    ("booking.confirmed", "booking_id"),
    ("booking.cancelled", "booking_id"),
    ("booking.completed", "booking_id"),
    ("invoice.sent", "invoice_id"),
    ("invoice.paid", "invoice_id"),
    ("invoice.overdue", "invoice_id"),
    ("task.created", "task_id"),
    ("task.completed", "task_id"),
];

/// One line for a person: who did what, with the service, amount or task by name where the
/// contact's events (`known`) tell it, and the id where they do not. `who` is the contact's
/// name (or id).
pub fn title(kind: &str, d: &Value, who: &str, known: &Known) -> String {
    let id = |key: &str| text(d, key).unwrap_or("?").to_owned();
    let booking = || {
        known
            .bookings
            .get(&id("booking_id"))
            .map(|(service, at)| format!("{service} ({at})"))
            .unwrap_or_else(|| format!("booking {}", id("booking_id")))
    };
    let invoice = || {
        known
            .invoices
            .get(&id("invoice_id"))
            .map(|amount| format!("{amount} (invoice {})", id("invoice_id")))
            .unwrap_or_else(|| format!("invoice {}", id("invoice_id")))
    };
    match kind {
        "contact.created" => format!("New contact {}", text(d, "name").unwrap_or(who)),
        "contact.updated" => {
            let fields: Vec<&str> = ["name", "email", "phone", "tags", "status", "photo_url"]
                .into_iter()
                .filter(|k| d.get(*k).is_some())
                .collect();
            format!("{who} updated: {}", fields.join(", "))
        }
        "contact.merged" => format!("Merged {} into {who}", id("merged_contact_id")),
        "contact.deleted" => format!("{who} deleted"),
        "contact.erased" => "Personal data erased".into(),
        "note.created" => format!(
            "Note on {who}: {}",
            shorten(text(d, "body").unwrap_or(""), 80)
        ),
        "task.created" => format!(
            "Task for {who}: {} (due {})",
            shorten(text(d, "title").unwrap_or(""), 60),
            when(d, "due_at")
        ),
        "task.completed" => match known.tasks.get(&id("task_id")) {
            Some(t) => format!("Task done for {who}: {t}"),
            None => format!("Task {} done for {who}", id("task_id")),
        },
        "booking.created" => format!(
            "{who} booked {} for {}",
            text(d, "service_name").unwrap_or("a service"),
            when(d, "starts_at")
        ),
        "booking.confirmed" => format!("{who} confirmed {}", booking()),
        "booking.cancelled" => format!("{who} cancelled {}", booking()),
        "booking.completed" => format!("{who} completed {}", booking()),
        "invoice.sent" => format!(
            "Invoice of {} sent to {who}, due {} (invoice {})",
            money(
                int(d, "amount_cents").unwrap_or(0),
                text(d, "currency").unwrap_or("")
            ),
            when(d, "due_at"),
            id("invoice_id")
        ),
        "invoice.paid" => format!("{who} paid {}", invoice()),
        "invoice.overdue" => format!("{who}'s {} is overdue", invoice()),
        other => other.to_owned(),
    }
}

pub fn actions(kind: &str) -> Vec<String> {
    let mut a = vec!["view_contact".to_owned()];
    match kind {
        "task.created" => a.push("mark_task_done".into()),
        "invoice.sent" | "invoice.overdue" => a.push("send_reminder".into()),
        _ => {}
    }
    a
}

/// The timeline item of `a`; `known` is what the contact's events say (see [`Known`]).
pub fn view(a: &Activity, contact_name: Option<String>, known: &Known) -> ActivityView {
    let data = a.data_value();
    let title = title(
        &a.kind,
        &data,
        contact_name.as_deref().unwrap_or(&a.contact_id),
        known,
    );
    ActivityView {
        event_id: a.event_id.clone(),
        kind: a.kind.clone(),
        contact_id: a.contact_id.clone(),
        contact_name,
        occurred_at: rfc3339(Some(a.occurred_at)),
        source: a.source.clone(),
        badge: badge(&a.kind).into(),
        title,
        actions: actions(&a.kind),
        data,
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NoteView {
    pub note_id: String,
    pub body: String,
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    pub task_id: String,
    pub title: Option<String>,
    pub due_at: Option<String>,
    /// open, overdue or done.
    pub status: String,
    pub created_at: Option<String>,
    pub completed_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingView {
    pub booking_id: String,
    pub service_id: Option<String>,
    pub service_name: Option<String>,
    pub starts_at: Option<String>,
    pub price_cents: Option<i64>,
    /// created, confirmed, cancelled or completed.
    pub status: String,
    pub updated_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceView {
    pub invoice_id: String,
    pub amount_cents: Option<i64>,
    pub currency: Option<String>,
    pub due_at: Option<String>,
    /// sent, overdue or paid.
    pub status: String,
    pub sent_at: Option<String>,
    pub paid_at: Option<String>,
}

/// The contact's notes, tasks, bookings and invoices, newest first.
#[derive(Debug, Clone, Default)]
pub struct Records {
    pub notes: Vec<NoteView>,
    pub tasks: Vec<TaskView>,
    pub bookings: Vec<BookingView>,
    pub invoices: Vec<InvoiceView>,
}

fn instant(d: &Value, key: &str) -> Option<i64> {
    text(d, key)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis())
}

/// Folds `events` (any order) into records; `now` decides which open tasks are overdue.
pub fn records(events: &[std::sync::Arc<Activity>], now: i64) -> Records {
    let mut ordered: Vec<&Activity> = events.iter().map(|a| a.as_ref()).collect();
    ordered.sort_by_key(|a| (a.occurred_at, a.seq));
    let mut notes = Vec::new();
    // Keyed by id, with the instant that orders them (newest first at the end).
    let mut tasks: BTreeMap<String, (i64, TaskView)> = BTreeMap::new();
    let mut bookings: BTreeMap<String, (i64, BookingView)> = BTreeMap::new();
    let mut invoices: BTreeMap<String, (i64, InvoiceView)> = BTreeMap::new();
    for a in ordered {
        let d = a.data_value();
        let at = rfc3339(Some(a.occurred_at));
        match a.kind.as_str() {
            "note.created" => notes.push((
                a.occurred_at,
                NoteView {
                    note_id: text(&d, "note_id").unwrap_or("").into(),
                    body: text(&d, "body").unwrap_or("").into(),
                    created_at: at,
                },
            )),
            k if k.starts_with("task.") => {
                let Some(id) = text(&d, "task_id") else {
                    continue;
                };
                let (_, t) = tasks.entry(id.into()).or_insert_with(|| {
                    (
                        a.occurred_at,
                        TaskView {
                            task_id: id.into(),
                            title: None,
                            due_at: None,
                            status: "open".into(),
                            created_at: None,
                            completed_at: None,
                        },
                    )
                });
                if k == "task.created" {
                    t.title = text(&d, "title").map(Into::into);
                    t.due_at = rfc3339(instant(&d, "due_at"));
                    t.created_at = at;
                    if t.status == "done" {
                        continue;
                    }
                    let overdue = instant(&d, "due_at").is_some_and(|due| due < now);
                    t.status = if overdue { "overdue" } else { "open" }.into();
                } else {
                    t.status = "done".into();
                    t.completed_at = at;
                }
            }
            k if k.starts_with("booking.") => {
                let Some(id) = text(&d, "booking_id") else {
                    continue;
                };
                let (order, b) = bookings.entry(id.into()).or_insert_with(|| {
                    (
                        a.occurred_at,
                        BookingView {
                            booking_id: id.into(),
                            service_id: None,
                            service_name: None,
                            starts_at: None,
                            price_cents: None,
                            status: "created".into(),
                            updated_at: None,
                        },
                    )
                });
                if k == "booking.created" {
                    b.service_id = text(&d, "service_id").map(Into::into);
                    b.service_name = text(&d, "service_name").map(Into::into);
                    b.starts_at = rfc3339(instant(&d, "starts_at"));
                    b.price_cents = int(&d, "price_cents");
                    *order = instant(&d, "starts_at").unwrap_or(a.occurred_at);
                } else {
                    b.status = k.trim_start_matches("booking.").into();
                }
                b.updated_at = at;
            }
            k if k.starts_with("invoice.") => {
                let Some(id) = text(&d, "invoice_id") else {
                    continue;
                };
                let (_, i) = invoices.entry(id.into()).or_insert_with(|| {
                    (
                        a.occurred_at,
                        InvoiceView {
                            invoice_id: id.into(),
                            amount_cents: None,
                            currency: None,
                            due_at: None,
                            status: "sent".into(),
                            sent_at: None,
                            paid_at: None,
                        },
                    )
                });
                match k {
                    "invoice.sent" => {
                        i.amount_cents = int(&d, "amount_cents");
                        i.currency = text(&d, "currency").map(Into::into);
                        i.due_at = rfc3339(instant(&d, "due_at"));
                        i.sent_at = at;
                    }
                    "invoice.paid" => {
                        i.status = "paid".into();
                        i.paid_at = at;
                    }
                    _ if i.status != "paid" => i.status = "overdue".into(),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    fn newest_first<T>(mut v: Vec<(i64, T)>) -> Vec<T> {
        v.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        v.into_iter().map(|(_, t)| t).collect()
    }
    Records {
        notes: newest_first(notes),
        tasks: newest_first(tasks.into_values().collect()),
        bookings: newest_first(bookings.into_values().collect()),
        invoices: newest_first(invoices.into_values().collect()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn ev(seq: u64, at: &str, kind: &str, data: Value) -> Arc<Activity> {
        Arc::new(Activity {
            seq,
            partition: 0,
            event_id: format!("e{seq}"),
            kind: kind.into(),
            business_id: "b".into(),
            contact_id: "c".into(),
            occurred_at: chrono::DateTime::parse_from_rfc3339(at)
                .unwrap()
                .timestamp_millis(),
            source: "crm".into(),
            data: data.to_string(),
        })
    }

    #[test]
    fn records_follow_each_entity_to_its_latest_state() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-10T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        let events = vec![
            ev(
                3,
                "2026-11-03T10:00:00Z",
                "invoice.paid",
                serde_json::json!({"invoice_id": "i1"}),
            ),
            ev(
                1,
                "2026-11-01T10:00:00Z",
                "invoice.sent",
                serde_json::json!({"invoice_id": "i1", "amount_cents": 12000, "currency": "EUR", "due_at": "2026-11-15T00:00:00Z"}),
            ),
            ev(
                2,
                "2026-11-02T10:00:00Z",
                "invoice.sent",
                serde_json::json!({"invoice_id": "i2", "amount_cents": 5000, "currency": "EUR", "due_at": "2026-11-05T00:00:00Z"}),
            ),
            ev(
                4,
                "2026-11-06T10:00:00Z",
                "invoice.overdue",
                serde_json::json!({"invoice_id": "i2"}),
            ),
            ev(
                5,
                "2026-11-01T09:00:00Z",
                "task.created",
                serde_json::json!({"task_id": "t1", "title": "Call back", "due_at": "2026-11-02T00:00:00Z"}),
            ),
            ev(
                6,
                "2026-11-01T09:00:00Z",
                "task.created",
                serde_json::json!({"task_id": "t2", "title": "Send form", "due_at": "2026-11-20T00:00:00Z"}),
            ),
            ev(
                7,
                "2026-11-04T09:00:00Z",
                "task.completed",
                serde_json::json!({"task_id": "t3"}),
            ),
            ev(
                8,
                "2026-11-01T08:00:00Z",
                "booking.created",
                serde_json::json!({"booking_id": "b1", "service_id": "s1", "service_name": "Cut", "starts_at": "2026-11-12T10:00:00Z", "price_cents": 4000}),
            ),
            ev(
                9,
                "2026-11-02T08:00:00Z",
                "booking.confirmed",
                serde_json::json!({"booking_id": "b1"}),
            ),
            ev(
                10,
                "2026-11-02T09:00:00Z",
                "note.created",
                serde_json::json!({"note_id": "n1", "body": "Prefers mornings"}),
            ),
        ];
        let r = records(&events, now);
        let inv: Vec<_> = r
            .invoices
            .iter()
            .map(|i| (i.invoice_id.as_str(), i.status.as_str()))
            .collect();
        assert_eq!(inv, [("i2", "overdue"), ("i1", "paid")]);
        assert_eq!(r.invoices[1].amount_cents, Some(12000));
        let tasks: Vec<_> = r
            .tasks
            .iter()
            .map(|t| (t.task_id.as_str(), t.status.as_str()))
            .collect();
        assert_eq!(tasks, [("t3", "done"), ("t1", "overdue"), ("t2", "open")]);
        assert_eq!(r.bookings[0].status, "confirmed");
        assert_eq!(r.bookings[0].service_name.as_deref(), Some("Cut"));
        assert_eq!(r.notes[0].body, "Prefers mornings");
    }

    #[test]
    fn titles_badges_and_actions_read_like_a_feed() {
        let sent = serde_json::json!({"invoice_id": "INV-7", "amount_cents": 12050, "currency": "EUR", "due_at": "2026-12-01T00:00:00Z"});
        let none = Known::default();
        assert_eq!(
            title("invoice.sent", &sent, "Ada", &none),
            "Invoice of 120.50 EUR sent to Ada, due 2026-12-01 00:00 (invoice INV-7)"
        );
        let paid = serde_json::json!({"invoice_id": "INV-7"});
        assert_eq!(
            title("invoice.paid", &paid, "Ada", &none),
            "Ada paid invoice INV-7"
        );
        let mut known = Known::default();
        known.learn("invoice.sent", &sent);
        assert!(!known.lacks("invoice.paid", &paid));
        assert_eq!(
            title("invoice.paid", &paid, "Ada", &known),
            "Ada paid 120.50 EUR (invoice INV-7)"
        );
        let booked = serde_json::json!({"booking_id": "b-17", "service_id": "s1",
            "service_name": "Balayage", "starts_at": "2026-12-02T09:30:00Z"});
        let done = serde_json::json!({"booking_id": "b-17"});
        assert!(known.lacks("booking.completed", &done));
        known.learn("booking.created", &booked);
        assert_eq!(
            title("booking.completed", &done, "Ada", &known),
            "Ada completed Balayage (2026-12-02 09:30)"
        );
        let task = serde_json::json!({"task_id": "t1", "title": "Call back", "due_at": "2026-12-03T10:00:00Z"});
        known.learn("task.created", &task);
        assert_eq!(
            title(
                "task.completed",
                &serde_json::json!({"task_id": "t1"}),
                "Ada",
                &known
            ),
            "Task done for Ada: Call back"
        );
        assert_eq!(badge("invoice.paid"), "payment");
        assert_eq!(badge("booking.created"), "booking");
        assert_eq!(actions("task.created"), ["view_contact", "mark_task_done"]);
        assert_eq!(
            actions("invoice.overdue"),
            ["view_contact", "send_reminder"]
        );
        let long = serde_json::json!({"note_id": "n", "body": "x".repeat(200)});
        assert!(title("note.created", &long, "Ada", &none).chars().count() <= 94);
        assert_eq!(money(-5, "EUR"), "-0.05 EUR");
    }
}
