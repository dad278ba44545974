//! Tenant isolation over every route of `api::routes()`: a key opens its own business only, and
//! nothing it can reach (search, segments, the timeline and its stream, highlights, contact
//! detail, actions, the businesses list, the unauthenticated pages) shows another business's data.

use std::time::Duration;

use serde_json::{json, Value};

use super::fixture::{acme_ids, event, leaks, Server, Store, ACME, ADMIN, RIVAL};
use super::http::{enc, send, Conn, Req};

/// Routes served without a key. Any other route must be under `/v1/` (where the key check runs):
/// a new route outside both fails [`keys_are_required_everywhere`] until it is listed here.
pub const PUBLIC: &[&str] = &[
    "/",
    "/assets/{file}",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
];

/// What fills a route template's parameters: `business` as written (so a test can spell it
/// `%72ival`), the others percent-encoded.
pub struct Params<'a> {
    pub business: &'a str,
    pub contact: &'a str,
    pub segment: &'a str,
}

pub const ACME_PARAMS: Params = Params {
    business: "acme",
    contact: "a1",
    segment: "gold",
};

/// `template` with its parameters filled and percent-encoded. A parameter the suite does not
/// know fails the test: whoever adds it teaches the suite what to probe it with.
pub fn fill(template: &str, p: &Params) -> String {
    template
        .split('/')
        .map(|seg| match seg {
            "{business_id}" => p.business.to_owned(),
            "{contact_id}" => enc(p.contact),
            "{segment}" => enc(p.segment),
            "{file}" => "app.js".into(),
            s if s.starts_with('{') => {
                panic!("route {template}: the security suite does not know parameter {s}")
            }
            s => s.into(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub fn is_stream(template: &str) -> bool {
    template.ends_with("/stream")
}

/// The request a route is probed with: a valid body for POSTs.
pub fn request(method: &str, target: String, contact: &str) -> Req {
    match method {
        "get" => Req::get(target),
        "post" => Req::new("POST", target)
            .json(json!({"action": "call", "contactId": contact}).to_string()),
        m => panic!("route method {m}: the security suite does not know how to call it"),
    }
}

/// Sends `req`; for the SSE route reads the first events for `wait` only.
pub async fn probe(server: &Server, template: &str, req: Req, wait: Duration) -> (u16, String) {
    if !is_stream(template) {
        let r = send(server.addr, &req).await;
        return (r.status, r.text());
    }
    let mut c = Conn::open(server.addr, &req.bytes()).await;
    let head = c.head().await;
    let mut text = String::new();
    if head.header("transfer-encoding") == Some("chunked") {
        while let Some(chunk) = c.chunk(wait).await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    } else {
        text = String::from_utf8_lossy(&c.body(&head).await).into_owned();
    }
    (head.status, text)
}

fn assert_no_leak(what: &str, req: &Req, body: &str) {
    let found = leaks(body, &req.text());
    assert!(
        found.is_empty(),
        "{what}: acme's key saw {found:?} in {body}"
    );
}

/// Every non-public route refuses a missing, unknown or malformed key with a JSON 401.
pub async fn keys_are_required_everywhere(server: &Server) {
    for r in api::routes() {
        if PUBLIC.contains(&r.path) {
            continue;
        }
        assert!(
            r.path.starts_with("/v1/"),
            "route {} is neither public nor under /v1/ (where keys are checked)",
            r.path
        );
        let target = fill(r.path, &ACME_PARAMS);
        for auth in [
            None,
            Some("Bearer wrong-key-0123456789".to_owned()),
            Some(format!("Basic {ACME}")),
            Some(format!("Bearer {ACME}x")),
            Some("Bearer ".to_owned()),
        ] {
            let mut req = request(r.method, target.clone(), "a1");
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            let reply = send(server.addr, &req).await;
            assert_eq!(
                reply.status,
                401,
                "{} {target} with {auth:?}: {}",
                r.method,
                reply.text()
            );
            assert_eq!(reply.error_code().as_deref(), Some("unauthorized"));
            assert_no_leak(r.path, &req, &reply.text());
        }
    }
}

/// Every route under a business refuses acme's key on rival, however the id is spelled, and
/// rival's key on acme.
pub async fn other_business_is_forbidden(server: &Server) {
    let mut checked = 0;
    for r in api::routes() {
        if !r.path.contains("{business_id}") {
            continue;
        }
        for (key, business) in [
            (ACME, "rival"),
            (ACME, "%72ival"),
            (ACME, "%72%69%76%61%6C"),
            (ACME, "RIVAL"),
            (ACME, "acme%00"),
            (ACME, "acme%20"),
            (RIVAL, "acme"),
        ] {
            let p = Params {
                business,
                contact: "rv-1",
                segment: "gold",
            };
            let target = fill(r.path, &p);
            let req = request(r.method, target.clone(), "rv-1").key(key);
            let reply = send(server.addr, &req).await;
            assert_eq!(reply.status, 403, "{target}: {}", reply.text());
            assert_eq!(reply.error_code().as_deref(), Some("forbidden"));
            if key == ACME {
                assert_no_leak(&target, &req, &reply.text());
            }
            checked += 1;
        }
    }
    assert!(checked >= 7 * 15, "only {checked} business routes probed");
}

/// Every route answers acme's key on acme, and no answer carries rival's data; the same routes
/// do show rival's data to rival's key (so the markers are there to be leaked).
pub async fn own_routes_never_show_the_other(server: &Server) {
    let mut seen_by_rival = String::new();
    for r in api::routes() {
        for (contact, segment) in [
            ("a1", "gold"),
            ("shared-1", "gold"),
            ("rv-1", "tag:rivaltag"),
            ("x' OR '1'='1", "silver"),
        ] {
            let p = Params {
                business: "acme",
                contact,
                segment,
            };
            let target = fill(r.path, &p);
            let req = request(r.method, target.clone(), contact).key(ACME);
            let (status, body) =
                probe(server, r.path, req.clone(), Duration::from_millis(600)).await;
            let own = acme_ids().iter().any(|c| c == contact);
            if own || (!r.path.contains("{contact_id}") && r.method == "get") {
                assert!((200..300).contains(&status), "{target}: {status} {body}");
            } else {
                assert!(matches!(status, 200 | 404), "{target}: {status} {body}");
            }
            assert_no_leak(&target, &req, &body);
        }
        let p = Params {
            business: "rival",
            contact: "rv-1",
            segment: "gold",
        };
        let target = fill(r.path, &p);
        let req = request(r.method, target.clone(), "rv-1").key(RIVAL);
        let (status, body) = probe(server, r.path, req, Duration::from_millis(600)).await;
        assert!(
            (200..300).contains(&status),
            "{target} for rival: {status} {body}"
        );
        seen_by_rival.push_str(&body);
    }
    for m in [
        "Rivalina",
        "RIVAL_NOTE",
        "RIVAL_INV",
        "RivalSvc",
        "rivaltag",
        "Rivalshared",
        "rival.example",
    ] {
        assert!(seen_by_rival.contains(m), "rival's own key never saw {m}");
    }
}

/// The businesses list: acme's key sees acme, rival's rival, the admin both.
pub async fn businesses_list_is_per_key(server: &Server) {
    for (key, want) in [
        (ACME, json!(["acme"])),
        (RIVAL, json!(["rival"])),
        (ADMIN, json!(["acme", "rival"])),
    ] {
        let reply = send(server.addr, &Req::get("/v1/businesses").key(key)).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.json()["businesses"], want);
    }
}

fn contact_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["contactId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Search (metrics, segments, tags, free text), suggestions and segment members over acme's
/// key list acme's contacts only, whatever matches in rival.
pub async fn search_and_segments_stay_home(server: &Server) {
    let own = acme_ids();
    for q in [
        "/leadScore>70",
        "/leadScore>0",
        "/leadScore<100",
        "#segment:silver",
        "#segment:gold",
        "#tag:rivaltag",
        "#tag:vip",
        "Rivalina",
        "rival",
        "rv-1",
        "shared",
        "Person",
        "example",
        "x' OR '1'='1",
        "",
    ] {
        let req = Req::get(format!(
            "/v1/businesses/acme/crm/search?q={}&limit=500",
            enc(q)
        ))
        .key(ACME);
        let reply = send(server.addr, &req).await;
        assert_eq!(reply.status, 200, "search {q:?}: {}", reply.text());
        let ids = contact_ids(&reply.json());
        assert!(
            ids.iter().all(|id| own.contains(id)),
            "search {q:?} listed {ids:?}"
        );
        assert_no_leak(&format!("search {q:?}"), &req, &reply.text());
        let req = Req::get(format!(
            "/v1/businesses/acme/crm/search/suggest?q={}",
            enc(q)
        ))
        .key(ACME);
        let reply = send(server.addr, &req).await;
        assert_eq!(reply.status, 200, "suggest {q:?}: {}", reply.text());
        assert_no_leak(&format!("suggest {q:?}"), &req, &reply.text());
    }
    let gold = send(
        server.addr,
        &Req::get("/v1/businesses/acme/crm/search?q=%2FleadScore%3E70").key(ACME),
    )
    .await;
    assert_eq!(
        contact_ids(&gold.json()),
        ["a1"],
        "acme's own data is found"
    );
    for seg in ["gold", "silver", "bronze", "tag:rivaltag", "tag:vip"] {
        let req = Req::get(format!(
            "/v1/businesses/acme/crm/segments/{}/contacts?limit=500",
            enc(seg)
        ))
        .key(ACME);
        let reply = send(server.addr, &req).await;
        assert_eq!(reply.status, 200, "segment {seg}: {}", reply.text());
        let ids = contact_ids(&reply.json());
        assert!(
            ids.iter().all(|id| own.contains(id)),
            "segment {seg} listed {ids:?}"
        );
        assert_no_leak(seg, &req, &reply.text());
    }
    let sizes = send(
        server.addr,
        &Req::get("/v1/businesses/acme/crm/segments").key(ACME),
    )
    .await;
    let sizes = sizes.json();
    let size = |name: &str| {
        sizes["segments"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["segment"] == name))
            .map(|x| x["size"].clone())
    };
    assert_eq!(
        size("gold"),
        Some(json!(1)),
        "acme has one gold contact: {sizes}"
    );
    assert_eq!(
        size("tag:rivaltag"),
        None,
        "rival's tag is not a segment of acme: {sizes}"
    );
}

/// `shared-1` exists in both businesses: each key reads its own contact and its own events.
pub async fn same_contact_id_reads_its_own_business(server: &Server) {
    let acme = send(
        server.addr,
        &Req::get("/v1/businesses/acme/contacts/shared-1").key(ACME),
    )
    .await;
    assert_eq!(acme.status, 200, "{}", acme.text());
    let j = acme.json();
    assert_eq!(j["name"], "Sam Acmeshared", "{j}");
    assert!(acme.text().contains("Acme shared note"), "{j}");
    assert!(leaks(&acme.text(), "").is_empty(), "{j}");
    let rival = send(
        server.addr,
        &Req::get("/v1/businesses/rival/contacts/shared-1").key(RIVAL),
    )
    .await;
    assert_eq!(rival.json()["name"], "Rivalshared Person");
    assert!(!rival.text().contains("Acme"), "{}", rival.text());
    let predicted = send(
        server.addr,
        &Req::get("/v1/businesses/acme/contacts/shared-1/ai/predicted-segments").key(ACME),
    )
    .await;
    assert_eq!(predicted.status, 200);
    assert!(
        leaks(&predicted.text(), "").is_empty(),
        "{}",
        predicted.text()
    );
}

/// An action on rival's contact through acme's business is a 404 that says nothing of rival.
pub async fn actions_reach_own_contacts_only(server: &Server) {
    for contact in ["rv-1", "rv-2", "x' OR '1'='1"] {
        let req = Req::new("POST", "/v1/businesses/acme/crm/actions")
            .key(ACME)
            .json(json!({"action": "call", "contactId": contact}).to_string());
        let reply = send(server.addr, &req).await;
        assert_eq!(reply.status, 404, "{contact}: {}", reply.text());
        assert_no_leak(contact, &req, &reply.text());
    }
    let req = Req::new("POST", "/v1/businesses/acme/crm/actions")
        .key(ACME)
        .json(json!({"action": "call", "contactId": "shared-1"}).to_string());
    assert_eq!(send(server.addr, &req).await.status, 200);
}

/// The live stream of acme carries acme's new events only, from its own cursor or from one
/// issued to rival.
pub async fn timeline_stream_stays_home(server: &Server, store: &impl Store) {
    let rival_cursor = send(
        server.addr,
        &Req::get("/v1/businesses/rival/crm/timeline").key(RIVAL),
    )
    .await;
    let rival_cursor = rival_cursor.json()["cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    let open = |after: Option<&str>| {
        let target = match after {
            Some(c) => format!("/v1/businesses/acme/crm/timeline/stream?after={}", enc(c)),
            None => "/v1/businesses/acme/crm/timeline/stream".to_owned(),
        };
        Req::get(target).key(ACME).bytes()
    };
    let mut own = Conn::open(server.addr, &open(None)).await;
    let mut foreign = Conn::open(server.addr, &open(Some(&rival_cursor))).await;
    let mut texts = Vec::new();
    for c in [&mut own, &mut foreign] {
        let head = c.head().await;
        assert_eq!(head.status, 200);
        let mut text = String::new();
        while !text.contains("event: ready") {
            let chunk = c
                .chunk(Duration::from_secs(10))
                .await
                .expect("the ready event");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        texts.push(text);
    }
    store
        .add(
            Vec::new(),
            vec![
                event(
                    "rv-live-1",
                    "rival",
                    "rv-1",
                    20,
                    "note.created",
                    json!({"note_id": "rv-live-1", "body": "RIVAL_LIVE secret"}),
                ),
                event(
                    "rv-live-2",
                    "rival",
                    "shared-1",
                    21,
                    "note.created",
                    json!({"note_id": "rv-live-2", "body": "RIVAL_LIVE shared"}),
                ),
                event(
                    "ac-live-1",
                    "acme",
                    "a1",
                    22,
                    "note.created",
                    json!({"note_id": "ac-live-1", "body": "Acme live note"}),
                ),
                event(
                    "ac-live-2",
                    "acme",
                    "shared-1",
                    23,
                    "note.created",
                    json!({"note_id": "ac-live-2", "body": "Acme live shared"}),
                ),
            ],
            Vec::new(),
        )
        .await;
    for (c, text) in [&mut own, &mut foreign].into_iter().zip(texts.iter_mut()) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !text.contains("ac-live-2") && tokio::time::Instant::now() < deadline {
            if let Some(chunk) = c.chunk(Duration::from_secs(1)).await {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
        }
        // A little longer: a rival event sent after acme's would show up now.
        while let Some(chunk) = c.chunk(Duration::from_millis(700)).await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(
            text.contains("ac-live-1") && text.contains("ac-live-2"),
            "acme's events arrive: {text}"
        );
        assert!(
            leaks(text, "").is_empty() && !text.contains("rv-live"),
            "the stream leaked: {text}"
        );
    }
    // The timeline and the AI feed, after the new events.
    for path in [
        "crm/timeline?limit=1000",
        "crm/ai/feed",
        "crm/highlights",
        "highlights",
    ] {
        let reply = send(
            server.addr,
            &Req::get(format!("/v1/businesses/acme/{path}")).key(ACME),
        )
        .await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        assert!(
            leaks(&reply.text(), "").is_empty() && !reply.text().contains("rv-live"),
            "{path}: {}",
            reply.text()
        );
    }
}
