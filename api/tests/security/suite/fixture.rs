//! Two businesses whose data the suite tries to mix up: `acme` (the caller) and `rival`, whose
//! every name, note, service and tag carries a marker string. A marker in a reply to acme's key
//! is a leak. Contact `shared-1` exists in both; acme also has contacts whose ids are SQL
//! fragments, read back exactly only if every id is bound, never formatted, into a query.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use api::auth::{ApiConfig, Secret};
use api::limits::HttpLimits;
use api::AppState;
use model::event::Event;
use model::profile::{
    Activity, Balance, ContactProfile, Factor, Membership, NextAction, ServiceStat,
};
use model::sink::{AcceptedEvent, ScoreChange};
use model::status::ProcessorStatus;
use serde_json::json;
use sinks::read::ProfileReader;

pub const ADMIN: &str = "sec-admin-key-0123456789";
pub const ACME: &str = "sec-acme-key-0123456789";
pub const RIVAL: &str = "sec-rival-key-0123456789";
/// 2026-11-20T10:00:00Z
pub const NOW: i64 = 1_795_168_800_000;
const DAY: i64 = 86_400_000;

/// Strings only rival's data contains.
pub const MARKERS: &[&str] = &[
    "Rivalina",
    "Rivalbert",
    "Rivalshared",
    "Rivalinject",
    "rv-1",
    "rv-2",
    "rival.example",
    "RivalSvc",
    "RIVAL_",
    "rivaltag",
];

/// Acme's contacts whose ids would break a query that formatted them in.
pub const TRICKY_IDS: &[&str] = &[
    "o'brien",
    "back\\slash",
    "back\\'quote",
    "semi'; DROP TABLE events; --",
    "q?mark?fields",
    "tab\tand\nnewline\r",
    "uni-ü-🦀-\u{202e}",
    "`tick`",
    "nul\0byte",
];

/// The markers in `body` that the request itself did not carry (an echo is not a leak).
pub fn leaks(body: &str, request: &str) -> Vec<&'static str> {
    MARKERS
        .iter()
        .copied()
        .filter(|m| body.contains(m) && !request.contains(m))
        .collect()
}

fn profile(business: &str, id: &str, name: &str, score: i64, segments: &[&str]) -> ContactProfile {
    let host = format!("{business}.example");
    ContactProfile {
        business_id: business.into(),
        contact_id: id.into(),
        name: Some(name.into()),
        email: Some(format!("{}@{host}", name.split(' ').next().unwrap_or("x"))),
        phone: Some("4915112345678".into()),
        status: if score > 50 { "CLIENT" } else { "LEAD" }.into(),
        tags: segments
            .iter()
            .filter_map(|s| s.strip_prefix("tag:"))
            .map(str::to_owned)
            .collect(),
        created_at: Some(NOW - 30 * DAY),
        lead_score: score,
        factors: vec![Factor {
            factor: "bookings_completed".into(),
            count: 2,
            points: 30,
        }],
        rule_version: "lead-score/v1".into(),
        last_interaction_at: Some(NOW - DAY),
        balance: Balance {
            outstanding_balance_cents: 12_000,
            unpaid_invoices: 1,
            ..Default::default()
        },
        activity: Activity {
            recent_bookings: 3,
            revenue_cents: 8_000,
            ..Default::default()
        },
        segments: segments
            .iter()
            .map(|s| Membership {
                segment: (*s).into(),
                reason: format!("{name} is in {s}"),
            })
            .collect(),
        next_actions: vec![NextAction {
            kind: "invoice_overdue".into(),
            ref_id: format!("inv-{id}"),
            since: NOW - 3 * DAY,
            age_days: 3,
            priority: 4.2,
            message: format!("Chase {name}"),
        }],
        services: vec![ServiceStat {
            service_id: format!("svc-{business}"),
            service_name: Some(if business == "rival" {
                "RivalSvc Deluxe".into()
            } else {
                "Acme Cut".into()
            }),
            bookings: 3,
            completed: 2,
            revenue_cents: 9_000,
        }],
        evaluated_at: NOW,
        ..Default::default()
    }
}

pub fn acme_profiles() -> Vec<ContactProfile> {
    let mut v = vec![
        profile("acme", "a1", "Ana Acme", 82, &["gold", "tag:vip"]),
        profile("acme", "a2", "Bruno Acme", 45, &["silver", "tag:vip"]),
        profile("acme", "shared-1", "Sam Acmeshared", 30, &["bronze"]),
    ];
    for (i, id) in TRICKY_IDS.iter().enumerate() {
        v.push(profile(
            "acme",
            id,
            &format!("Tricky{i} Acme"),
            10,
            &["bronze"],
        ));
    }
    v
}

pub fn rival_profiles() -> Vec<ContactProfile> {
    vec![
        profile(
            "rival",
            "rv-1",
            "Rivalina Zorro",
            95,
            &["gold", "tag:rivaltag"],
        ),
        profile("rival", "rv-2", "Rivalbert Silverman", 55, &["silver"]),
        profile(
            "rival",
            "shared-1",
            "Rivalshared Person",
            80,
            &["gold", "tag:rivaltag"],
        ),
        profile("rival", "x' OR '1'='1", "Rivalinject Quote", 75, &["gold"]),
    ]
}

/// The acme contact ids, tricky ones included.
pub fn acme_ids() -> Vec<String> {
    acme_profiles().into_iter().map(|p| p.contact_id).collect()
}

static OFFSET: AtomicI64 = AtomicI64::new(1);

/// An event as the processor accepts it (a fresh offset each).
pub fn event(
    id: &str,
    business: &str,
    contact: &str,
    minute: i64,
    kind: &str,
    data: serde_json::Value,
) -> AcceptedEvent {
    let at = chrono::DateTime::from_timestamp_millis(NOW - 10 * DAY + minute * 60_000)
        .expect("valid instant");
    let event: Event = serde_json::from_value(json!({
        "event_id": id,
        "business_id": business,
        "contact_id": contact,
        "occurred_at": at.to_rfc3339(),
        "source": "manual",
        "type": kind,
        "data": data,
    }))
    .expect("a valid event");
    AcceptedEvent {
        event,
        topic: "crm.contacts".into(),
        partition: 0,
        offset: OFFSET.fetch_add(1, Ordering::SeqCst),
    }
}

fn note(id: &str, business: &str, contact: &str, minute: i64, body: &str) -> AcceptedEvent {
    event(
        id,
        business,
        contact,
        minute,
        "note.created",
        json!({"note_id": id, "body": body}),
    )
}

pub fn initial_events() -> Vec<AcceptedEvent> {
    let booking = |id: &str, b: &str, c: &str, m: i64, svc: &str| {
        event(
            id,
            b,
            c,
            m,
            "booking.created",
            json!({
                "booking_id": id, "service_id": format!("svc-{b}"), "service_name": svc,
                "starts_at": "2026-11-12T10:00:00Z", "price_cents": 4000
            }),
        )
    };
    vec![
        event(
            "ac-1",
            "acme",
            "a1",
            1,
            "contact.created",
            json!({"name": "Ana Acme"}),
        ),
        booking("ac-2", "acme", "a1", 2, "Acme Cut"),
        note("ac-3", "acme", "a1", 3, "Acme prefers mornings"),
        note("ac-4", "acme", "shared-1", 4, "Acme shared note"),
        event(
            "ac-5",
            "acme",
            "a2",
            5,
            "task.created",
            json!({
                "task_id": "t-1", "title": "Call Bruno back", "due_at": "2026-11-11T00:00:00Z"
            }),
        ),
        note("ac-6", "acme", TRICKY_IDS[3], 6, "Acme tricky note"),
        event(
            "rv-ev-1",
            "rival",
            "rv-1",
            1,
            "contact.created",
            json!({"name": "Rivalina Zorro"}),
        ),
        note("rv-ev-2", "rival", "rv-1", 7, "RIVAL_NOTE do not leak"),
        booking("rv-ev-3", "rival", "rv-1", 8, "RivalSvc Deluxe"),
        note(
            "rv-ev-4",
            "rival",
            "shared-1",
            9,
            "RIVAL_SHARED_NOTE same contact id",
        ),
        event(
            "rv-ev-5",
            "rival",
            "rv-2",
            10,
            "invoice.sent",
            json!({
                "invoice_id": "RIVAL_INV", "amount_cents": 9900, "currency": "EUR",
                "due_at": "2026-11-15T00:00:00Z"
            }),
        ),
    ]
}

/// Where the suite's data lives: the embedded index or ClickHouse.
pub trait Store: Sync {
    /// Makes `profiles`, `events` and score `changes` readable, as the processor's write of a
    /// batch would.
    fn add(
        &self,
        profiles: Vec<ContactProfile>,
        events: Vec<AcceptedEvent>,
        changes: Vec<ScoreChange>,
    ) -> impl Future<Output = ()> + Send;
}

/// Loads both businesses into `store`.
pub async fn load(store: &impl Store) {
    let mut profiles = acme_profiles();
    profiles.extend(rival_profiles());
    let changes = profiles.iter().map(first_score).collect();
    store.add(profiles, initial_events(), changes).await;
}

/// The change that gave `p` its score; rival's carry a marker among their causes, so a history
/// read across businesses (contact `shared-1` is in both) shows as a leak.
fn first_score(p: &ContactProfile) -> ScoreChange {
    ScoreChange {
        business_id: p.business_id.clone(),
        contact_id: p.contact_id.clone(),
        partition: p.partition,
        old_score: None,
        new_score: p.lead_score,
        factors: p.factors.clone(),
        rule_version: p.rule_version.clone(),
        caused_by: vec![if p.business_id == "rival" {
            format!("RIVAL_{}", p.contact_id)
        } else {
            format!("{}-created", p.contact_id)
        }],
        reason: "events",
        evaluated_at: p.evaluated_at,
    }
}

/// The API served on a free port until dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn config(limits: HttpLimits) -> ApiConfig {
    ApiConfig {
        admin_key: Some(Secret::new(ADMIN)),
        keys: [
            ("acme".to_owned(), vec![Secret::new(ACME)]),
            ("rival".to_owned(), vec![Secret::new(RIVAL)]),
        ]
        .into(),
        // Reads right after writes see them.
        views_max_staleness_ms: 0,
        limits,
        ..Default::default()
    }
}

pub async fn serve(reader: Arc<dyn ProfileReader>, mut limits: HttpLimits) -> Server {
    // Tests run side by side on two cores: the scheduler's jitter is not API overload.
    limits.max_queue_delay_ms = 0;
    let status = Arc::new(ProcessorStatus::default());
    status.complete_up_to_ms.store(NOW, Ordering::Relaxed);
    status.lag.store(0, Ordering::Relaxed);
    status.set_ready(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(reader, status, config(limits), Default::default());
    tokio::spawn(api::serve(listener, state, async move {
        let _ = rx.await;
    }));
    Server {
        addr,
        stop: Some(tx),
    }
}
