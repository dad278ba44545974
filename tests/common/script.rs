//! The scripted stream shared by the end-to-end tests, with the exact scores it must produce.

use keyflow::demo::generator::DemoMessage;
use pipeline::event::*;

use super::{msg, t};

/// (contact, score, outstanding balance) at 2026-11-20T12:00Z for business `acme`, visible only.
pub const EXPECTED: [(&str, i64, i64); 4] = [
    ("c1", 40, 0),
    ("c2", 80, 0),
    ("c3", 0, 5000),
    ("c5", 40, 1000),
];
/// Unique events in the script (one id is repeated).
pub const UNIQUE: u64 = 31;

fn created(name: &str, email: &str, phone: &str) -> Payload {
    Payload::ContactCreated(ContactCreated {
        name: name.into(),
        email: Some(email.into()),
        phone: Some(phone.into()),
        tags: Some(vec![" VIP ".into()]),
        status: None,
        photo_url: None,
    })
}

fn done(id: &str) -> Payload {
    Payload::BookingCompleted(BookingRef {
        booking_id: id.into(),
    })
}

fn sent(id: &str, cents: i64) -> Payload {
    Payload::InvoiceSent(InvoiceSent {
        invoice_id: id.into(),
        amount_cents: cents,
        currency: "eur".into(),
        due_at: t("2026-11-25T00:00:00Z"),
        booking_id: None,
        service_id: None,
    })
}

fn paid(id: &str) -> Payload {
    Payload::InvoicePaid(InvoiceRef {
        invoice_id: id.into(),
    })
}

/// The scripted stream and, in comments, the score each contact must get at 2026-11-20T12:00Z.
pub fn script() -> Vec<DemoMessage> {
    vec![
        // c1: B=2 (30) + P=1 (10) = 40, balance 0.
        msg(
            "e1",
            "acme",
            "c1",
            "2026-11-01T09:00:00Z",
            created("  Ada  Lovelace ", " Ada@Example.COM ", "+1 (555) 010-2030"),
        ),
        msg("e2", "acme", "c1", "2026-11-10T12:00:00Z", done("k1")),
        msg("e3", "acme", "c1", "2026-11-18T12:00:00Z", done("k2")),
        msg("e4", "acme", "c1", "2026-11-10T13:00:00Z", sent("i1", 4500)),
        msg("e5", "acme", "c1", "2026-11-12T13:00:00Z", paid("i1")),
        // c2: B=5 capped at 4 (60) + P=2 (20) = 80; e12 repeats e11's id and must count once;
        // i3 is paid before it is sent (out of order).
        msg(
            "e6",
            "acme",
            "c2",
            "2026-11-02T09:00:00Z",
            created("Grace Hopper", "grace@navy.mil", "555 0100"),
        ),
        msg("e7", "acme", "c2", "2026-11-08T12:00:00Z", done("k3")),
        msg("e8", "acme", "c2", "2026-11-09T12:00:00Z", done("k4")),
        msg("e9", "acme", "c2", "2026-11-10T12:00:00Z", done("k5")),
        msg("e10", "acme", "c2", "2026-11-11T12:00:00Z", done("k6")),
        msg("e11", "acme", "c2", "2026-11-12T12:00:00Z", done("k7")),
        msg("e11", "acme", "c2", "2026-11-12T12:00:00Z", done("k7")),
        msg("e13", "acme", "c2", "2026-11-14T12:00:00Z", paid("i3")),
        msg(
            "e14",
            "acme",
            "c2",
            "2026-11-13T12:00:00Z",
            sent("i3", 1000),
        ),
        msg(
            "e15",
            "acme",
            "c2",
            "2026-11-13T12:00:00Z",
            sent("i4", 1000),
        ),
        msg("e16", "acme", "c2", "2026-11-15T12:00:00Z", paid("i4")),
        // c3: B=1 (15) - U=1 (10) - O=1 (5) = 0.
        msg(
            "e17",
            "acme",
            "c3",
            "2026-11-03T09:00:00Z",
            created("Linus", "linus@example.org", ""),
        ),
        msg("e18", "acme", "c3", "2026-11-07T13:00:00Z", done("k8")),
        msg(
            "e19",
            "acme",
            "c3",
            "2026-11-08T13:00:00Z",
            sent("i5", 5000),
        ),
        msg(
            "e20",
            "acme",
            "c3",
            "2026-11-09T13:00:00Z",
            Payload::TaskCreated(TaskCreated {
                task_id: "t1".into(),
                title: "Call".into(),
                due_at: t("2026-11-15T00:00:00Z"),
            }),
        ),
        // c4: deleted: kept, excluded from results.
        msg(
            "e21",
            "acme",
            "c4",
            "2026-11-03T09:00:00Z",
            created("Gone", "gone@example.org", "1"),
        ),
        msg("e22", "acme", "c4", "2026-11-18T12:00:00Z", done("k9")),
        msg(
            "e23",
            "acme",
            "c4",
            "2026-11-19T12:00:00Z",
            Payload::ContactDeleted(Empty {}),
        ),
        // c5: B=2 (30) + P=2 (20) - U=1 (10) = 40 like c1, but balance 1000: ranks after c1.
        msg(
            "e24",
            "acme",
            "c5",
            "2026-11-04T09:00:00Z",
            created("Barbara", "b@example.org", "2"),
        ),
        msg("e25", "acme", "c5", "2026-11-16T12:00:00Z", done("k10")),
        msg("e26", "acme", "c5", "2026-11-17T12:00:00Z", done("k11")),
        msg("e27", "acme", "c5", "2026-11-16T12:00:00Z", sent("i6", 700)),
        msg("e28", "acme", "c5", "2026-11-16T13:00:00Z", sent("i7", 700)),
        msg("e29", "acme", "c5", "2026-11-17T13:00:00Z", paid("i6")),
        msg("e30", "acme", "c5", "2026-11-17T14:00:00Z", paid("i7")),
        msg(
            "e31",
            "acme",
            "c5",
            "2026-11-18T13:00:00Z",
            sent("i8", 1000),
        ),
        // Another business: never visible through acme's routes.
        msg(
            "e32",
            "other",
            "c1",
            "2026-11-18T13:00:00Z",
            created("Someone Else", "x@example.org", "3"),
        ),
    ]
}

/// Personal data the erase tests look for after `contact.erased` (the phone normalised).
pub const SECRETS: [&str; 4] = ["Grace", "grace@example.com", "15550100", "Navy Way"];

/// Contact g1 of business gdpr: created with personal data, then a note about her; then
/// (the third message) erased.
pub fn gdpr() -> [DemoMessage; 3] {
    let created = Payload::ContactCreated(ContactCreated {
        name: "Grace Hopper".into(),
        email: Some("grace@example.com".into()),
        phone: Some("+1 555 0100".into()),
        tags: None,
        status: None,
        photo_url: None,
    });
    let note = Payload::NoteCreated(NoteCreated {
        note_id: "n1".into(),
        body: "prefers mornings; lives at 1 Navy Way".into(),
    });
    let erased = Payload::ContactErased(Empty {});
    [
        msg("x1", "gdpr", "g1", "2026-11-18T10:00:00Z", created),
        msg("x2", "gdpr", "g1", "2026-11-18T11:00:00Z", note),
        msg("x3", "gdpr", "g1", "2026-11-19T10:00:00Z", erased),
    ]
}

/// Produces the script to a started pipeline and waits (up to 60 s) until it took in every
/// unique event.
pub async fn produce_script(
    running: &keyflow::run::Running,
    topics: &pipeline::config::TopicsConfig,
) {
    let producer = keyflow::demo::producer(&running.bootstrap).unwrap();
    keyflow::demo::produce_all(&producer, topics, &script())
        .await
        .unwrap();
    let status = running.status.clone();
    super::wait_for(60, "every unique event", || {
        status.events_in.load(std::sync::atomic::Ordering::Relaxed) == UNIQUE
    })
    .await;
}
