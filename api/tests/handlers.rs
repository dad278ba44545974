//! Every route through `app()` with `oneshot`, over the real read model (the embedded store's
//! in-memory index) filled with two businesses: answers, auth failures, 404s, malformed input,
//! freshness and request-id headers, and the OpenAPI document against its committed copy.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use api::auth::{ApiConfig, Secret};
use api::{app, AppState};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use model::profile::{Activity, Balance, ContactProfile, Factor, Membership, NextAction};
use model::rules::{BusinessOverride, BusinessRules, Rules};
use model::sink::{PartitionOutput, ResultSink, ScoreChange};
use model::status::ProcessorStatus;
use serde_json::{json, Value};
use sinks::index::ProfileIndex;
use sinks::rows::{StoredEvent, StoredEventRef};
use sinks::store::EmbeddedStore;
use tower::ServiceExt;

const ADMIN: &str = "admin-key-0123456789";
const ACME: &str = "acme-key-0123456789";
const OTHER: &str = "other-key-0123456789";
/// 2026-11-20T10:00:00Z
const NOW: i64 = 1_795_168_800_000;
const DAY: i64 = 86_400_000;

fn profile(business: &str, id: &str, name: &str, score: i64, segments: &[&str]) -> ContactProfile {
    ContactProfile {
        business_id: business.into(),
        contact_id: id.into(),
        name: Some(name.into()),
        email: Some(format!("{id}@example.com")),
        phone: Some("4915112345678".into()),
        status: if score > 50 { "CLIENT" } else { "LEAD" }.into(),
        tags: vec!["vip".into()],
        lead_score: score,
        factors: vec![Factor {
            factor: "bookings".into(),
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
            recent_bookings: 2,
            revenue_cents: 8_000,
            ..Default::default()
        },
        segments: segments
            .iter()
            .map(|s| Membership {
                segment: (*s).into(),
                reason: format!("because {s}"),
            })
            .collect(),
        next_actions: vec![NextAction {
            kind: "invoice_overdue".into(),
            ref_id: "inv-1".into(),
            since: NOW - 3 * DAY,
            age_days: 3,
            priority: 4.2,
            message: "Invoice inv-1 unpaid".into(),
        }],
        evaluated_at: NOW,
        ..Default::default()
    }
}

fn event(seq: i64, business: &str, contact: &str, kind: &str, data: Value) -> StoredEvent {
    StoredEvent {
        partition: 0,
        topic: "crm.contacts".into(),
        offset: seq,
        event_id: format!("ev-{seq}"),
        kind: kind.into(),
        business_id: business.into(),
        contact_id: contact.into(),
        occurred_at: NOW - 10 * DAY + seq * 60_000,
        source: "manual".into(),
        data: data.to_string(),
    }
}

struct Fixture {
    app: Router,
    index: Arc<ProfileIndex>,
    /// The embedded store the API reads through (its index is `index`).
    store: EmbeddedStore,
    status: Arc<ProcessorStatus>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let index = store.index();
    index.upsert([
        profile("acme", "c1", "Ana Lima", 82, &["gold", "tag:vip"]),
        profile("acme", "c2", "Bruno Sá", 45, &["silver", "tag:vip"]),
        profile("acme", "c3", "Carla Dias", 12, &["bronze", "tag:vip"]),
        profile("other", "o1", "Olga Other", 99, &["gold"]),
    ]);
    index.record([
        event(1, "acme", "c1", "contact.created", json!({"name": "Ana Lima"})),
        event(2, "acme", "c1", "booking.created", json!({"booking_id": "b1", "service_id": "s1", "service_name": "Cut", "starts_at": "2026-11-12T10:00:00Z", "price_cents": 4000})),
        event(3, "acme", "c1", "invoice.sent", json!({"invoice_id": "inv-1", "amount_cents": 12000, "currency": "EUR", "due_at": "2026-11-15T00:00:00Z"})),
        event(4, "acme", "c1", "note.created", json!({"note_id": "n1", "body": "Prefers mornings"})),
        event(5, "acme", "c2", "task.created", json!({"task_id": "t1", "title": "Call back", "due_at": "2026-11-11T00:00:00Z"})),
        event(6, "acme", "c2", "invoice.paid", json!({"invoice_id": "inv-0"})),
        event(7, "other", "o1", "note.created", json!({"note_id": "secret", "body": "Other business secret"})),
    ].iter().map(StoredEventRef::of));
    let status = Arc::new(ProcessorStatus::default());
    status.complete_up_to_ms.store(NOW, Ordering::Relaxed);
    status.lag.store(0, Ordering::Relaxed);
    status.set_ready(true);
    let api = ApiConfig {
        admin_key: Some(Secret::new(ADMIN)),
        keys: [
            ("acme".to_owned(), vec![Secret::new(ACME)]),
            ("other".to_owned(), vec![Secret::new(OTHER)]),
        ]
        .into(),
        cors_origins: vec!["https://cockpit.example".into()],
        // Every write is visible at once (the cache is still used while nothing changes).
        views_max_staleness_ms: 0,
        ..Default::default()
    };
    // acme runs its own gold tier; other businesses the defaults.
    let acme = BusinessOverride {
        metrics: json!({"gold_min_score": 85}).as_object().unwrap().clone(),
        ..Default::default()
    };
    let rules = Rules::new(
        BusinessRules::default(),
        &[("acme".to_owned(), acme)].into(),
    )
    .unwrap();
    Fixture {
        app: app(AppState::new(
            Arc::new(store.clone()),
            status.clone(),
            api,
            Arc::new(rules),
        )),
        index,
        store,
        status,
        _dir: dir,
    }
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, body)
}

fn get(uri: &str, key: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(k) = key {
        b = b.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    b.body(Body::empty()).unwrap()
}

async fn ok(app: &Router, uri: &str) -> Value {
    let (status, headers, body) = call(app, get(uri, Some(ADMIN))).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    assert_eq!(
        headers["x-keyflow-complete-up-to"],
        "2026-11-20T10:00:00.000Z"
    );
    assert_eq!(headers["x-keyflow-consumer-lag"], "0");
    assert!(
        headers.contains_key("x-request-id"),
        "{uri} has no request id"
    );
    body
}

const A: &str = "/v1/businesses/acme";

#[tokio::test]
async fn contact_detail_carries_metrics_factors_and_paginated_records() {
    let f = fixture();
    let c = ok(&f.app, &format!("{A}/contacts/c1")).await;
    assert_eq!(c["name"], "Ana Lima");
    assert_eq!(c["meta"]["leadScore"], 82);
    assert_eq!(c["meta"]["outstandingBalance"], 12000);
    assert_eq!(c["factors"][0]["points"], 30);
    assert_eq!(c["segments"][0]["segment"], "gold");
    assert_eq!(c["tags"], json!(["vip"]));
    assert_eq!(c["events"]["total"], 4);
    assert_eq!(c["events"]["items"][0]["type"], "note.created");
    assert_eq!(c["events"]["items"][0]["badge"], "note");
    assert_eq!(c["notes"]["items"][0]["body"], "Prefers mornings");
    assert_eq!(c["invoices"]["items"][0]["status"], "sent");
    assert_eq!(c["bookings"]["items"][0]["serviceName"], "Cut");
    let page = ok(&f.app, &format!("{A}/contacts/c1?limit=1&offset=1")).await;
    assert_eq!(page["events"]["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"]["offset"], 1);
    assert_eq!(page["events"]["items"][0]["type"], "invoice.sent");
    let tasks = ok(&f.app, &format!("{A}/contacts/c2")).await;
    assert_eq!(tasks["tasks"]["items"][0]["status"], "overdue");

    let (s, _, body) = call(&f.app, get(&format!("{A}/contacts/nobody"), Some(ADMIN))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (s, _, body) = call(
        &f.app,
        get(&format!("{A}/contacts/c1?limit=0"), Some(ADMIN)),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("limit"));
}

/// A merged-away contact's route is a 404 with code `merged` naming the survivor, at the end of
/// a chain of merges; a deleted contact is a plain `not_found`.
#[tokio::test]
async fn a_merged_contact_answers_merged_with_its_survivor() {
    let f = fixture();
    let merged = |id: &str, into: &str| ContactProfile {
        merged_into: Some(into.into()),
        ..profile("acme", id, "Old Record", 0, &[])
    };
    let deleted = ContactProfile {
        deleted: true,
        ..profile("acme", "gone", "Gone", 0, &[])
    };
    f.index
        .upsert([merged("m1", "c1"), merged("m0", "m1"), deleted]);
    for (id, survivor) in [("m1", "c1"), ("m0", "c1")] {
        for route in ["", "/ai/predicted-segments", "/score-history"] {
            let uri = format!("{A}/contacts/{id}{route}");
            let (s, _, body) = call(&f.app, get(&uri, Some(ADMIN))).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{uri}: {body}");
            assert_eq!(body["error"]["code"], "merged", "{uri}: {body}");
            assert_eq!(body["error"]["mergedInto"], survivor, "{uri}: {body}");
        }
    }
    let (s, _, body) = call(&f.app, get(&format!("{A}/contacts/gone"), Some(ADMIN))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"].get("mergedInto").is_none(), "{body}");
    // The survivor itself is served as before.
    assert_eq!(
        ok(&f.app, &format!("{A}/contacts/c1")).await["name"],
        "Ana Lima"
    );
}

#[tokio::test]
async fn score_history_lists_stored_changes_with_the_factors_that_moved() {
    let f = fixture();
    let factor = |factor: &str, count: i64, points: i64| Factor {
        factor: factor.into(),
        count,
        points,
    };
    let change =
        |old: Option<i64>, new: i64, factors: Vec<Factor>, at: i64, ids: &[&str]| ScoreChange {
            business_id: "acme".into(),
            contact_id: "c1".into(),
            partition: 0,
            old_score: old,
            new_score: new,
            factors,
            rule_version: "lead-score/v1".into(),
            caused_by: ids.iter().map(|s| s.to_string()).collect(),
            reason: if ids.is_empty() { "time" } else { "events" },
            evaluated_at: at,
        };
    // Nothing stored yet: an empty history, not an error.
    let h = ok(&f.app, &format!("{A}/contacts/c1/score-history")).await;
    assert_eq!(h["points"], json!([]));
    let changes = vec![
        change(
            None,
            20,
            vec![factor("bookings_completed", 1, 20)],
            NOW - 3 * DAY,
            &["e1"],
        ),
        change(
            Some(20),
            10,
            vec![
                factor("bookings_completed", 1, 20),
                factor("tasks_overdue", 1, -10),
            ],
            NOW - DAY,
            &[],
        ),
    ];
    for c in changes {
        f.store
            .write(&PartitionOutput {
                partition: 0,
                changes: vec![c],
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let h = ok(&f.app, &format!("{A}/contacts/c1/score-history")).await;
    assert_eq!(h["leadScore"], 82, "the current score, from the profile");
    let points = h["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{h}");
    assert_eq!(points[0]["previous"], Value::Null);
    assert_eq!(points[0]["causedBy"], json!(["e1"]));
    assert_eq!(points[1]["score"], 10);
    assert_eq!(points[1]["reason"], "time");
    assert_eq!(
        points[1]["moved"],
        json!([{"factor": "tasks_overdue", "points": -10, "delta": -10}])
    );
    assert_eq!(points[1]["at"], "2026-11-19T10:00:00.000Z");
    // The latest `limit`, oldest first; a limit out of range names the bounds.
    let h = ok(&f.app, &format!("{A}/contacts/c1/score-history?limit=1")).await;
    assert_eq!(h["points"][0]["score"], 10, "{h}");
    let (s, _, body) = call(
        &f.app,
        get(
            &format!("{A}/contacts/c1/score-history?limit=501"),
            Some(ADMIN),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("between 1 and 500"));
    // Another business's key does not read it; an unknown contact is a 404.
    let (s, _, _) = call(
        &f.app,
        get(&format!("{A}/contacts/c1/score-history"), Some(OTHER)),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = call(
        &f.app,
        get(&format!("{A}/contacts/nobody/score-history"), Some(ADMIN)),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn crm_routes_answer_for_the_business() {
    let f = fixture();
    let h = ok(&f.app, &format!("{A}/crm/highlights")).await;
    let top: Vec<&str> = h["spotlights"]["leadScore"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contactId"].as_str().unwrap())
        .collect();
    assert_eq!(top, ["c1", "c2", "c3"]);
    let seg = ok(&f.app, &format!("{A}/crm/segments")).await;
    let gold = seg["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["segment"] == "gold")
        .unwrap();
    assert_eq!(gold["size"], 1);
    let members = ok(
        &f.app,
        &format!("{A}/crm/segments/tag:vip/contacts?sort=name&order=asc"),
    )
    .await;
    assert_eq!(members["total"], 3);
    assert_eq!(members["items"][0]["contactId"], "c1");
    let q = ok(&f.app, &format!("{A}/crm/next-actions?limit=2")).await;
    assert_eq!(q["total"], 3);
    assert_eq!(q["items"].as_array().unwrap().len(), 2);
    assert_eq!(q["items"][0]["action"], "send_reminder");
    assert_eq!(
        q["kinds"],
        json!({"booking_unconfirmed": 0, "invoice_overdue": 3, "lead_stale": 0, "task_stale": 0})
    );
    let only = ok(
        &f.app,
        &format!("{A}/crm/next-actions?kind=invoice_overdue"),
    )
    .await;
    assert_eq!(only["total"], 3);
    let none = ok(&f.app, &format!("{A}/crm/next-actions?kind=task_stale")).await;
    assert_eq!(
        (
            none["total"].as_u64(),
            none["items"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    assert_eq!(
        none["kinds"]["invoice_overdue"], 3,
        "the counts ignore the filter"
    );
    let (s, _, body) = call(
        &f.app,
        get(
            &format!("{A}/crm/next-actions?kind=invoice_late"),
            Some(ADMIN),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("kind \"invoice_late\" is not one of invoice_overdue"),
        "{message}"
    );
    ok(&f.app, &format!("{A}/crm/services")).await;
    ok(&f.app, &format!("{A}/crm/cues")).await;
    let cards = ok(&f.app, &format!("{A}/crm/ai/next-actions")).await;
    assert_eq!(cards["stub"], true);
    // The three cards are the queue's three items, highest priority first.
    let queue = ok(&f.app, &format!("{A}/crm/next-actions?limit=3")).await;
    let key = |v: &serde_json::Value| {
        (
            v["contactId"].as_str().unwrap().to_owned(),
            v["refId"].as_str().unwrap().to_owned(),
            v["kind"].as_str().unwrap().to_owned(),
            v["priority"].as_f64().unwrap(),
        )
    };
    let cards: Vec<_> = cards["cards"].as_array().unwrap().iter().map(key).collect();
    let items: Vec<_> = queue["items"].as_array().unwrap().iter().map(key).collect();
    assert_eq!(cards.len(), 3, "{cards:?}");
    assert_eq!(cards, items);
    let feed = ok(&f.app, &format!("{A}/crm/ai/feed")).await;
    assert_eq!(feed["hookPoint"], "flow_feed");
    assert!(feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["text"].as_str().unwrap().contains("paid")));
    let p = ok(&f.app, &format!("{A}/contacts/c1/ai/predicted-segments")).await;
    assert_eq!(p["stub"], true);
    let legacy = ok(&f.app, &format!("{A}/highlights")).await;
    assert_eq!(legacy["contacts"][0]["contactId"], "c1");
    let b = ok(&f.app, "/v1/businesses").await;
    assert_eq!(b["businesses"], json!(["acme", "other"]));

    for bad in [
        format!("{A}/crm/next-actions?limit=0"),
        format!("{A}/crm/segments/gold/contacts?sort=shoeSize"),
        format!("{A}/crm/segments/gold/contacts?order=sideways"),
        format!("{A}/crm/timeline?limit=5000"),
    ] {
        let (s, _, body) = call(&f.app, get(&bad, Some(ADMIN))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    for missing in [
        "/v1/businesses/nobody/crm/highlights",
        "/v1/businesses/nobody/crm/search?q=x",
        "/v1/businesses/nobody/crm/timeline",
        "/v1/businesses/nobody/crm/timeline/stream",
        "/v1/no/such/route",
    ] {
        let (s, _, body) = call(&f.app, get(missing, Some(ADMIN))).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{missing}: {body}");
    }
}

#[tokio::test]
async fn search_filters_and_malformed_queries_point_at_the_token() {
    let f = fixture();
    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["contactId"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = ok(&f.app, &format!("{A}/crm/search?q=%2FleadScore%3E70")).await;
    assert_eq!(ids(&r), ["c1"]);
    let r = ok(&f.app, &format!("{A}/crm/search?q=%23segment%3Asilver")).await;
    assert_eq!(ids(&r), ["c2"]);
    let r = ok(
        &f.app,
        &format!("{A}/crm/search?q=%23tag%3Avip%20%2FleadScore%3C50"),
    )
    .await;
    assert_eq!(ids(&r), ["c2", "c3"]);
    let r = ok(&f.app, &format!("{A}/crm/search?q=C2%40EXAMPLE.com")).await;
    assert_eq!(ids(&r), ["c2"]);
    let (s, _, body) = call(
        &f.app,
        get(
            &format!("{A}/crm/search?q=ana%20%2FleadScore%3E%3Eseventy"),
            Some(ADMIN),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("token 2") && msg.contains("/leadScore>>seventy"),
        "{msg}"
    );

    let sug = ok(&f.app, &format!("{A}/crm/search/suggest?q=%23seg")).await;
    let values: Vec<&str> = sug["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_str().unwrap())
        .collect();
    assert!(values.contains(&"#segment:silver"), "{values:?}");
    let sug = ok(&f.app, &format!("{A}/crm/search/suggest?q=%2Flead")).await;
    assert_eq!(sug["items"][0]["value"], "/leadScore>");
    let sug = ok(&f.app, &format!("{A}/crm/search/suggest?q=car")).await;
    assert_eq!(sug["items"][0]["value"], "Carla");
    assert_eq!(sug["items"][0]["kind"], "contact");
    assert_eq!(sug["items"][0]["contactId"], "c3");
}

#[tokio::test]
async fn timeline_lists_newest_first_and_the_stream_sends_new_events() {
    let f = fixture();
    let t = ok(&f.app, &format!("{A}/crm/timeline?limit=3")).await;
    let kinds: Vec<&str> = t["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["invoice.paid", "task.created", "note.created"]);
    assert_eq!(t["items"][0]["badge"], "payment");
    assert_eq!(t["items"][0]["contactName"], "Bruno Sá");
    assert_eq!(
        t["items"][1]["actions"],
        json!(["view_contact", "mark_task_done"])
    );
    let cursor = t["cursor"].as_str().unwrap().to_owned();

    let res = f
        .app
        .clone()
        .oneshot(get(
            &format!("{A}/crm/timeline/stream?after={cursor}"),
            Some(ACME),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = res.into_body();
    f.index.record([
        event(8, "other", "o1", "note.created", json!({"note_id": "x", "body": "not for acme"})),
        event(9, "acme", "c3", "booking.created", json!({"booking_id": "b9", "service_id": "s1", "service_name": "Colour", "starts_at": "2026-11-21T09:00:00Z"})),
    ].iter().map(StoredEventRef::of));
    let mut text = String::new();
    while !text.contains("event: activity") {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(5), body.frame())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(text.contains("event: ready"), "{text}");
    assert!(text.contains("Carla Dias booked Colour"), "{text}");
    assert!(!text.contains("not for acme"), "{text}");

    let (s, _, body) = call(
        &f.app,
        get(
            &format!("{A}/crm/timeline/stream?after=garbage"),
            Some(ADMIN),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn keys_decide_what_is_readable() {
    let f = fixture();
    let (s, h, body) = call(&f.app, get(&format!("{A}/crm/highlights"), None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(body["error"]["code"], "unauthorized");
    let (s, _, _) = call(
        &f.app,
        get(&format!("{A}/crm/highlights"), Some("wrong-key-0123456789")),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, _) = call(&f.app, get(&format!("{A}/crm/highlights"), Some(ACME))).await;
    assert_eq!(s, StatusCode::OK);
    for uri in [
        "/v1/businesses/other/crm/highlights",
        "/v1/businesses/%6Fther/crm/highlights",
        "/v1/businesses/other/contacts/o1",
        "/v1/businesses/other/crm/search?q=olga",
        "/v1/businesses/other/crm/timeline/stream",
    ] {
        let (s, _, body) = call(&f.app, get(uri, Some(ACME))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let (_, _, b) = call(&f.app, get("/v1/businesses", Some(ACME))).await;
    assert_eq!(b["businesses"], json!(["acme"]));
    // Health, metrics, the document and the page need no key.
    for open in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/",
        "/assets/app.js",
    ] {
        let (s, _, _) = call(&f.app, get(open, None)).await;
        assert_eq!(s, StatusCode::OK, "{open}");
    }
    let (s, _, _) = call(&f.app, get("/assets/nope.js", None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn actions_reach_their_hook_or_say_what_is_wrong() {
    let f = fixture();
    let post = |body: &str, key: &str| {
        Request::post(format!("{A}/crm/actions"))
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let (s, _, b) = call(
        &f.app,
        post(
            r#"{"action":"send_reminder","contactId":"c1","refId":"inv-1"}"#,
            ACME,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["hookPoint"], "cockpit.action.send_reminder");
    assert_eq!(b["stub"], true);
    let (s, _, b) = call(
        &f.app,
        post(r#"{"action":"launch_rocket","contactId":"c1"}"#, ACME),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("launch_rocket"));
    let (s, _, _) = call(
        &f.app,
        post(r#"{"action":"call","contactId":"ghost"}"#, ACME),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = call(&f.app, post(r#"{"action":"call""#, ACME)).await;
    assert!(s.is_client_error(), "{s}");
    let (s, _, _) = call(&f.app, post(r#"{"action":"call","contactId":"c1"}"#, OTHER)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn metrics_cors_and_compression() {
    let f = fixture();
    ok(&f.app, &format!("{A}/crm/highlights")).await;
    ProcessorStatus::add(&f.status.events_in, 42);
    f.status.set_lag([(0, 3), (1, 4)].into());
    f.status.sink_latency.observe(0.02);
    let (s, h, text) = call(&f.app, get("/metrics", None)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = text.as_str().unwrap().to_owned();
    for line in [
        "keyflow_events_in_total 42",
        "keyflow_consumer_lag 7",
        "keyflow_partition_lag{partition=\"1\"} 4",
        "keyflow_sink_write_seconds_count 1",
        "keyflow_processor_busy_seconds_total{stage=\"write\"} ",
        "keyflow_api_request_seconds_count{method=\"GET\",route=\"/v1/businesses/{business_id}/crm/highlights\",status=\"200\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }

    let preflight = Request::builder()
        .method("OPTIONS")
        .uri(format!("{A}/crm/highlights"))
        .header(header::ORIGIN, "https://cockpit.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
        .body(Body::empty())
        .unwrap();
    let res = f.app.clone().oneshot(preflight).await.unwrap();
    assert_eq!(
        res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://cockpit.example"
    );
    let stranger = Request::get(format!("{A}/crm/highlights"))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .body(Body::empty())
        .unwrap();
    let res = f.app.clone().oneshot(stranger).await.unwrap();
    assert!(!res
        .headers()
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));

    let gz = Request::get(format!("{A}/contacts/c1"))
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let res = f.app.clone().oneshot(gz).await.unwrap();
    assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
}

/// The served document equals `api/openapi.json` (bless with `KEYFLOW_BLESS=1`), and every
/// documented GET path answers through the router rather than the fallback.
#[tokio::test]
async fn openapi_document_is_committed_and_every_path_is_routed() {
    let f = fixture();
    let (_, _, served) = call(&f.app, get("/openapi.json", None)).await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("KEYFLOW_BLESS").is_some() {
        std::fs::write(&path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == pretty,
        "api/openapi.json is out of date: rerun with KEYFLOW_BLESS=1 and review the diff"
    );
    let paths = served["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{}", paths.len());
    for (p, item) in paths {
        assert!(item["get"].is_object() || item["post"].is_object(), "{p}");
        if item["get"].is_null() || p.ends_with("/stream") {
            continue;
        }
        let uri = p
            .replace("{business_id}", "acme")
            .replace("{contact_id}", "c1")
            .replace("{segment}", "gold")
            .replace("{file}", "app.css");
        let (s, _, body) = call(&f.app, get(&uri, Some(ADMIN))).await;
        assert_ne!(body["error"]["message"], "no such route", "{p}");
        assert_eq!(s, StatusCode::OK, "{p}: {body}");
    }
    let contact = &served["components"]["schemas"]["ContactDetail"];
    assert!(contact.to_string().contains("invoices"), "{contact}");
}

/// `crm/segments` defines each tier with the thresholds the business runs with: acme's gold
/// override shows in acme's definitions, and the defaults in another business's.
#[tokio::test]
async fn segment_definitions_follow_each_business_rules() {
    let f = fixture();
    let defs = |v: &Value| -> std::collections::BTreeMap<String, String> {
        v["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["segment"].as_str().unwrap().to_owned(),
                    s["definition"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let acme = defs(&ok(&f.app, &format!("{A}/crm/segments")).await);
    assert_eq!(acme["gold"], "lead score 85 or more");
    assert_eq!(acme["silver"], "lead score 40 or more and below 85");
    assert_eq!(acme["tag:vip"], "contacts tagged vip");
    assert_eq!(
        acme["top_clients"],
        "at least 2 invoices paid and 3 non-cancelled bookings in the last 90 days"
    );
    let (code, _, other) = call(
        &f.app,
        get("/v1/businesses/other/crm/segments", Some(ADMIN)),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{other}");
    let other = defs(&other);
    assert_eq!(other["gold"], "lead score 70 or more");
    assert_eq!(other["silver"], "lead score 40 or more and below 70");
}
