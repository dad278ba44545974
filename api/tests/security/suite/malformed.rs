//! Oversized and malformed HTTP: every refusal is a 4xx, in the API's JSON error shape when it
//! reaches axum (hyper answers what is beyond its own bounds with an empty 4xx, or closes), and
//! the server keeps serving.

use std::time::{Duration, Instant};

use super::fixture::{leaks, Server, ACME};
use super::http::{send, send_raw, Req};

const ACTIONS: &str = "/v1/businesses/acme/crm/actions";
const SEARCH: &str = "/v1/businesses/acme/crm/search";

fn post(body: &[u8], content_type: Option<&str>) -> Req {
    let mut r = Req::new("POST", ACTIONS).key(ACME);
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    r.body = body.to_vec();
    r
}

/// Expects `status` and a JSON error whose code is `code` and whose message contains `says`.
async fn expect(server: &Server, what: &str, req: &Req, status: u16, code: &str, says: &str) {
    let reply = send(server.addr, req).await;
    assert_eq!(reply.status, status, "{what}: {}", reply.text());
    assert_eq!(
        reply.error_code().as_deref(),
        Some(code),
        "{what}: {}",
        reply.text()
    );
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.to_lowercase().contains(&says.to_lowercase()),
        "{what}: {message:?} does not say {says:?}"
    );
}

/// Beyond hyper's own bounds: an empty 4xx or a closed connection, never a 2xx or 5xx.
async fn expect_refused(server: &Server, what: &str, wire: &[u8]) {
    let reply = send_raw(server.addr, wire).await;
    assert!(
        reply.status == 0 || (400..500).contains(&reply.status),
        "{what}: {} {}",
        reply.status,
        reply.text()
    );
}

pub async fn malformed_input_gets_a_4xx_naming_it(server: &Server, max_body: usize) {
    let json = Some("application/json");
    let big = format!(
        r#"{{"action":"call","contactId":"{}"}}"#,
        "a".repeat(max_body)
    );
    expect(
        server,
        "body over the limit",
        &post(big.as_bytes(), json),
        413,
        "payload_too_large",
        "max_body_bytes",
    )
    .await;

    let started = Instant::now();
    let huge = Req::new("POST", ACTIONS)
        .key(ACME)
        .header("content-type", "application/json")
        .header("content-length", "10000000000");
    let mut wire = huge.bytes();
    // `bytes()` adds its own content-length for POSTs: keep only the announced one.
    let text = String::from_utf8(wire.clone())
        .unwrap()
        .replace("content-length: 0\r\n", "");
    wire = text.into_bytes();
    let reply = send_raw(server.addr, &wire).await;
    assert_eq!(reply.status, 413, "announced 10 GB: {}", reply.text());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused without waiting for the body"
    );

    let mut chunked = format!(
        "POST {ACTIONS} HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {ACME}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..(max_body / 4096 + 2) {
        chunked.extend_from_slice(format!("1000\r\n{}\r\n", "a".repeat(4096)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let reply = send_raw(server.addr, &chunked).await;
    assert_eq!(
        reply.status,
        413,
        "chunked body over the limit: {}",
        reply.text()
    );
    assert_eq!(reply.error_code().as_deref(), Some("payload_too_large"));

    let cases: [(&str, &[u8], u16, &str, &str); 7] = [
        (
            "truncated JSON",
            &br#"{"action":"call""#[..],
            400,
            "bad_request",
            "json",
        ),
        ("not JSON", b"action=call", 400, "bad_request", "json"),
        (
            "invalid UTF-8",
            b"{\"action\":\"\xff\xfe\",\"contactId\":\"a1\"}",
            400,
            "bad_request",
            "json",
        ),
        (
            "wrong type",
            br#"{"action":1,"contactId":"a1"}"#,
            422,
            "unprocessable",
            "action",
        ),
        (
            "unknown field",
            br#"{"action":"call","contactId":"a1","admin":true}"#,
            422,
            "unprocessable",
            "admin",
        ),
        (
            "missing field",
            br#"{"action":"call"}"#,
            422,
            "unprocessable",
            "contactId",
        ),
        (
            "unknown action",
            br#"{"action":"drop_table","contactId":"a1"}"#,
            400,
            "bad_request",
            "drop_table",
        ),
    ];
    for (what, body, status, code, says) in cases {
        expect(server, what, &post(body, json), status, code, says).await;
    }
    let deep = "[".repeat(max_body - 1);
    expect(
        server,
        "deep nesting",
        &post(deep.as_bytes(), json),
        422,
        "unprocessable",
        "invalid type",
    )
    .await;
    let body = br#"{"action":"call","contactId":"a1"}"#;
    expect(
        server,
        "text/plain",
        &post(body, Some("text/plain")),
        415,
        "unsupported_media_type",
        "content-type",
    )
    .await;
    expect(
        server,
        "no content type",
        &post(body, None),
        415,
        "unsupported_media_type",
        "content-type",
    )
    .await;

    let long_q = format!("{SEARCH}?q={}", "x".repeat(5000));
    expect(
        server,
        "long query",
        &Req::get(long_q).key(ACME),
        414,
        "uri_too_long",
        "max_uri_bytes",
    )
    .await;
    let long_id = format!("/v1/businesses/acme/contacts/{}", "c".repeat(300));
    expect(
        server,
        "long contact id",
        &Req::get(long_id).key(ACME),
        400,
        "bad_request",
        "contact_id is 300 bytes",
    )
    .await;
    let long_seg = format!(
        "/v1/businesses/acme/crm/segments/{}/contacts",
        "%41".repeat(300)
    );
    expect(
        server,
        "long segment",
        &Req::get(long_seg).key(ACME),
        400,
        "bad_request",
        "segment is 300 bytes",
    )
    .await;
    let long_biz = format!("/v1/businesses/{}/crm/segments", "b".repeat(300));
    expect(
        server,
        "long business id",
        &Req::get(long_biz).key(ACME),
        400,
        "bad_request",
        "business_id",
    )
    .await;

    for (what, target, status, code, says) in [
        (
            "invalid UTF-8 contact id",
            "/v1/businesses/acme/contacts/%FF%FE",
            400,
            "bad_request",
            "utf-8",
        ),
        (
            "invalid UTF-8 business id",
            "/v1/businesses/%FF/crm/segments",
            400,
            "bad_request",
            "utf-8",
        ),
        (
            "bad limit",
            "/v1/businesses/acme/crm/next-actions?limit=abc",
            400,
            "bad_request",
            "limit",
        ),
        (
            "negative limit",
            "/v1/businesses/acme/crm/next-actions?limit=-1",
            400,
            "bad_request",
            "limit",
        ),
        (
            "huge limit",
            "/v1/businesses/acme/crm/next-actions?limit=99999999999999999999999",
            400,
            "bad_request",
            "limit",
        ),
        (
            "zero limit",
            "/v1/businesses/acme/crm/next-actions?limit=0",
            400,
            "bad_request",
            "limit",
        ),
        (
            "bad sort",
            "/v1/businesses/acme/crm/segments/gold/contacts?sort=1;DROP",
            400,
            "bad_request",
            "sort",
        ),
        (
            "bad search token",
            "/v1/businesses/acme/crm/search?q=%2FleadScore%3E%3E",
            400,
            "bad_request",
            "leadScore",
        ),
        (
            "foreign cursor",
            "/v1/businesses/acme/crm/timeline/stream?after=x%27",
            400,
            "bad_request",
            "cursor",
        ),
        (
            "unknown route",
            "/v1/nothing/here",
            404,
            "not_found",
            "route",
        ),
    ] {
        expect(
            server,
            what,
            &Req::get(target).key(ACME),
            status,
            code,
            says,
        )
        .await;
    }
    for target in [
        "/v1/businesses/acme/contacts/%",
        "/v1/businesses/acme/contacts/%ZZ",
        "/v1/businesses/acme/contacts/%2",
        "/v1/businesses/acme/crm/search?q=%FF%FE%",
        "/v1/businesses/acme/crm/search?q=a&q=b&limit=1&limit=2",
        "/v1/businesses/acme/crm/search?%=%&&&=",
        "/v1/businesses/acme/crm/next-actions?offset=18446744073709551615",
        "/v1/businesses/acme//crm/segments",
        "/v1/businesses/acme/crm/segments/",
        "//v1/businesses/acme/crm/segments",
        "/v1/businesses//rival/crm/segments",
        "/v1/businesses/acme/../rival/crm/segments",
        "/v1/businesses/acme/%2E%2E/rival/crm/highlights",
        "/v1/businesses/acme%2F..%2Frival/crm/highlights",
    ] {
        let reply = send(server.addr, &Req::get(target).key(ACME)).await;
        let found = leaks(&reply.text(), "");
        assert!(found.is_empty(), "{target}: leaked {found:?}");
        assert!(
            (200..500).contains(&reply.status),
            "{target}: {} {}",
            reply.status,
            reply.text()
        );
        if reply.status >= 400 {
            assert!(reply.error_code().is_some(), "{target}: {}", reply.text());
        }
    }

    let padded = Req::get(SEARCH)
        .key(ACME)
        .header("x-pad", &"p".repeat(20 * 1024));
    expect(
        server,
        "20 KiB of headers",
        &padded,
        431,
        "headers_too_large",
        "max_header_bytes",
    )
    .await;
    let cursor = Req::get("/v1/businesses/acme/crm/timeline/stream")
        .key(ACME)
        .header("last-event-id", &"9".repeat(20 * 1024));
    expect(
        server,
        "20 KiB cursor",
        &cursor,
        431,
        "headers_too_large",
        "max_header_bytes",
    )
    .await;
    expect(
        server,
        "DELETE",
        &Req::new("DELETE", SEARCH).key(ACME),
        405,
        "method_not_allowed",
        "method not allowed",
    )
    .await;
    expect(
        server,
        "made-up method",
        &Req::new("FROBNICATE", SEARCH).key(ACME),
        405,
        "method_not_allowed",
        "method not allowed",
    )
    .await;

    let huge_header = Req::get(SEARCH)
        .key(ACME)
        .header("x-pad", &"p".repeat(600 * 1024));
    expect_refused(server, "600 KiB header", &huge_header.bytes()).await;
    let mut many = Req::get(SEARCH).key(ACME);
    for i in 0..200 {
        many = many.header(&format!("x-h{i}"), "v");
    }
    expect_refused(server, "200 headers", &many.bytes()).await;
    let long_uri = format!("{SEARCH}?q={}", "x".repeat(70 * 1024));
    expect_refused(server, "70 KiB URI", &Req::get(long_uri).key(ACME).bytes()).await;
    expect_refused(server, "garbage", b"\x00\x01\x02 / HTTP/1.1\r\n\r\n").await;
    expect_refused(
        server,
        "bad header byte",
        format!("GET {SEARCH} HTTP/1.1\r\nhost: t\r\nx-a: \x01\x7f\r\n\r\n").as_bytes(),
    )
    .await;
    expect_refused(
        server,
        "space in target",
        b"GET /v1/businesses/acme/crm/search?q=a b HTTP/1.1\r\nhost: t\r\n\r\n",
    )
    .await;
    expect_refused(
        server,
        "HTTP/9",
        b"GET /healthz HTTP/9.9\r\nhost: t\r\n\r\n",
    )
    .await;
    let mut bad_key =
        format!("GET {SEARCH} HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer ")
            .into_bytes();
    bad_key.extend_from_slice(b"\xff\xfe\r\n\r\n");
    let reply = send_raw(server.addr, &bad_key).await;
    assert!(
        reply.status == 401 || reply.status == 400,
        "non-UTF-8 key: {}",
        reply.text()
    );

    // Absolute-form targets are routed by their path: still acme's key on rival's data.
    let absolute = Req::get("http://evil.example/v1/businesses/rival/crm/segments").key(ACME);
    assert_eq!(send(server.addr, &absolute).await.status, 403);

    // Made-up methods do not grow the metrics' label set.
    for i in 0..50 {
        send(server.addr, &Req::new(&format!("M{i}X"), "/healthz")).await;
    }
    let metrics = send(server.addr, &Req::get("/metrics")).await.text();
    assert!(
        !metrics.contains("method=\"M1X\""),
        "a label per made-up method"
    );
    assert!(metrics.contains("method=\"other\""), "{metrics}");

    let health = send(server.addr, &Req::get("/healthz")).await;
    assert_eq!(health.status, 200, "the server survived");
}
