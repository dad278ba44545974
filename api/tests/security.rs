//! The security suite (`security/suite/`) over the embedded store, the reader a single-process
//! KeyFlow serves from; `tests/security.rs` runs the same suite over ClickHouse.
//! Also here: the limits follow their configuration, requests past `max_in_flight` and
//! connections past `max_connections` are shed, and what axum refuses on its own or a panicking
//! handler still answers in the API's JSON error shape.

#[path = "security/suite/mod.rs"]
mod suite;

use std::sync::Arc;

use api::limits::HttpLimits;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use model::profile::ContactProfile;
use model::sink::{AcceptedEvent, PartitionOutput, ResultSink, ScoreChange};
use sinks::rows::{StoredEvent, StoredEventRef};
use sinks::store::EmbeddedStore;
use suite::fixture::{self, Server, Store, ACME};
use suite::http::{send, Conn, Req};
use tower::ServiceExt;

/// An embedded store in a directory of the test's own, read as `keyflow run` reads it.
struct Embedded {
    store: EmbeddedStore,
    _dir: tempfile::TempDir,
}

impl Store for Embedded {
    async fn add(
        &self,
        profiles: Vec<ContactProfile>,
        events: Vec<AcceptedEvent>,
        changes: Vec<ScoreChange>,
    ) {
        let index = self.store.index();
        index.upsert(profiles);
        let stored: Vec<StoredEvent> = events.iter().map(StoredEvent::from).collect();
        index.record(stored.iter().map(StoredEventRef::of));
        if changes.is_empty() {
            return;
        }
        let out = PartitionOutput {
            partition: 0,
            changes,
            ..Default::default()
        };
        self.store
            .write(&out)
            .await
            .expect("the score changes are written");
    }
}

async fn setup_with(limits: HttpLimits) -> (Server, Embedded) {
    let dir = tempfile::tempdir().unwrap();
    let store = Embedded {
        store: EmbeddedStore::open(dir.path()).unwrap(),
        _dir: dir,
    };
    fixture::load(&store).await;
    (
        fixture::serve(Arc::new(store.store.clone()), limits).await,
        store,
    )
}

async fn setup() -> (Server, Embedded) {
    setup_with(HttpLimits::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_required_everywhere() {
    let (server, _) = setup().await;
    suite::isolation::keys_are_required_everywhere(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_business_is_forbidden() {
    let (server, _) = setup().await;
    suite::isolation::other_business_is_forbidden(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_routes_never_show_the_other() {
    let (server, _) = setup().await;
    suite::isolation::own_routes_never_show_the_other(&server).await;
    suite::isolation::businesses_list_is_per_key(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_segments_contacts_and_actions_stay_home() {
    let (server, _) = setup().await;
    suite::isolation::search_and_segments_stay_home(&server).await;
    suite::isolation::same_contact_id_reads_its_own_business(&server).await;
    suite::isolation::actions_reach_own_contacts_only(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_stream_stays_home() {
    let (server, store) = setup().await;
    suite::isolation::timeline_stream_stays_home(&server, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_has_no_effect() {
    let (server, _) = setup().await;
    suite::injection::bound_ids_round_trip(&server).await;
    let sent = suite::injection::injection_has_no_effect(&server).await;
    assert!(sent > 1000, "only {sent} injection requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_gets_a_4xx_naming_it() {
    let (server, _) = setup().await;
    let max_body = HttpLimits::default().max_body_bytes;
    suite::malformed::malformed_input_gets_a_4xx_naming_it(&server, max_body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_follow_their_configuration() {
    let limits = HttpLimits {
        max_body_bytes: 40,
        max_uri_bytes: 120,
        max_id_bytes: 8,
        max_header_bytes: 300,
        max_in_flight: 64,
        max_queue_delay_ms: 0,
        max_connections: 64,
    };
    let (server, _) = setup_with(limits.clone()).await;
    let ok = |r: &suite::http::Reply| r.status;
    let at = |n: usize| format!("/v1/businesses/acme/contacts/{}", "c".repeat(n));
    assert_eq!(
        ok(&send(server.addr, &Req::get(at(8)).key(ACME)).await),
        404,
        "8 bytes: looked up"
    );
    let r = send(server.addr, &Req::get(at(9)).key(ACME)).await;
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (400, Some("bad_request"))
    );
    let q = |n: usize| {
        let base = "/v1/businesses/acme/crm/search?q=";
        format!("{base}{}", "x".repeat(n - base.len()))
    };
    assert_eq!(
        send(server.addr, &Req::get(q(120)).key(ACME)).await.status,
        200
    );
    assert_eq!(
        send(server.addr, &Req::get(q(121)).key(ACME)).await.status,
        414
    );
    let body = |n: usize| {
        let base = r#"{"action":"call","contactId":"a1"}"#;
        format!("{base}{}", " ".repeat(n - base.len()))
    };
    let post = |b: String| {
        Req::new("POST", "/v1/businesses/acme/crm/actions")
            .key(ACME)
            .json(b)
    };
    assert_eq!(send(server.addr, &post(body(40))).await.status, 200);
    assert_eq!(send(server.addr, &post(body(41))).await.status, 413);
    let padded = Req::get("/healthz").header("x-pad", &"p".repeat(400));
    let r = send(server.addr, &padded).await;
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (431, Some("headers_too_large"))
    );

    // `[api.limits]` in config: every key documented, unknown keys and zeros refused.
    let cfg: api::ApiConfig =
        serde_json::from_value(serde_json::json!({"limits": {"max_body_bytes": 40}})).unwrap();
    assert_eq!(cfg.limits.max_body_bytes, 40);
    assert_eq!(
        cfg.limits.max_uri_bytes,
        HttpLimits::default().max_uri_bytes
    );
    assert!(serde_json::from_value::<api::ApiConfig>(
        serde_json::json!({"limits": {"max_bodies": 1}})
    )
    .is_err());
    let zero: api::ApiConfig =
        serde_json::from_value(serde_json::json!({"limits": {"max_id_bytes": 0}})).unwrap();
    assert!(zero.validate().unwrap_err().contains("max_id_bytes"));
}

/// With no slot free every `/v1/` request is shed at once (503, `Retry-After`); health and
/// metrics still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_in_flight_requests_are_shed() {
    let (server, _) = setup_with(HttpLimits {
        max_in_flight: 0,
        ..Default::default()
    })
    .await;
    let r = send(
        server.addr,
        &Req::get("/v1/businesses/acme/crm/highlights").key(ACME),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("overloaded"));
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.text().contains("max_in_flight"), "{}", r.text());
    assert_eq!(send(server.addr, &Req::get("/healthz")).await.status, 200);
    let metrics = send(server.addr, &Req::get("/metrics")).await.text();
    assert!(
        metrics.contains("status=\"503\""),
        "shed requests are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_are_shed_and_closed() {
    let (server, _) = setup_with(HttpLimits {
        max_connections: 1,
        ..Default::default()
    })
    .await;
    let highlights = Req::get("/v1/businesses/acme/crm/highlights").key(ACME);
    // A kept-alive connection takes the only slot once it has been answered.
    let mut held = Conn::open(
        server.addr,
        b"GET /healthz HTTP/1.1\r\nhost: keyflow.test\r\n\r\n",
    )
    .await;
    let head = held.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("connection"), None, "the held one stays open");

    let r = send(server.addr, &highlights).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.error_code().as_deref(), Some("overloaded"));
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.text().contains("max_connections"), "{}", r.text());
    let health = send(server.addr, &Req::get("/healthz")).await;
    assert_eq!(health.status, 200, "health is never shed");

    // Closing the held connection frees its slot.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = send(server.addr, &highlights).await;
        if r.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slot was never freed: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_panicking_handler_and_axum_rejections_answer_json() {
    async fn boom() -> &'static str {
        panic!("on purpose")
    }
    async fn typed(
        _: axum::extract::Query<std::collections::HashMap<String, u32>>,
    ) -> &'static str {
        "ok"
    }
    let app = axum::Router::new()
        .route("/boom", axum::routing::get(boom))
        .route("/typed", axum::routing::get(typed))
        .layer(axum::middleware::from_fn(api::error::json_errors));
    for (uri, status, code) in [
        ("/boom", StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        ("/typed?n=x", StatusCode::BAD_REQUEST, "bad_request"),
    ] {
        let res = app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), status);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let j: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(j["error"]["code"], code, "{j}");
        assert!(
            !j["error"]["message"]
                .as_str()
                .unwrap()
                .contains("on purpose"),
            "internals hidden: {j}"
        );
    }
}
