//! Injection through every parameter that reaches a store: each path and query parameter the
//! OpenAPI document lists (so a new parameter is probed without touching this file), the stream's
//! cursor (`?after=`, `Last-Event-ID`) and the action body's fields. Nothing may answer 5xx,
//! show rival's data, or change what is stored; ids that look like SQL are read back exactly.

use std::time::Duration;

use serde_json::{json, Value};

use super::fixture::{acme_ids, leaks, Server, ACME, ADMIN, RIVAL, TRICKY_IDS};
use super::http::{enc, send, Req};
use super::isolation::{fill, is_stream, probe, Params};

/// What is sent in place of a legitimate value.
pub fn payloads() -> Vec<String> {
    let mut v: Vec<String> = [
        "' OR 1=1 --",
        "' OR '1'='1",
        "acme' OR business_id = 'rival",
        "acme' OR 1=1) --",
        "') UNION ALL SELECT * FROM contact_profiles --",
        "'; DROP TABLE events; --",
        "1; SELECT 1",
        "\\",
        "\\'",
        "\\\\'",
        "\\' OR 1=1 --",
        "\0",
        "a\0' OR 1=1 --",
        "\"",
        "`",
        "` OR 1=1 --",
        "?",
        "?fields",
        "??",
        "%",
        "%25",
        "_",
        "*",
        "..",
        "../rival",
        "rival/../acme",
        "\r\n",
        "\t",
        "ü-🦀-\u{202e}-\u{feff}",
        "0x27",
        "{business_id}",
        "${jndi:ldap://x}",
        "-1",
        "18446744073709551616",
        "0:0,4096:1",
        "99999:1",
        "#segment:gold' OR 1=1",
        "/leadScore>0' OR 1=1 --",
        "#tag:' OR '1'='1",
    ]
    .map(String::from)
    .to_vec();
    v.push("a".repeat(256));
    v.push("'".repeat(257));
    v.push("\\".repeat(3000));
    v
}

/// One parameter of one route.
#[derive(Debug, Clone)]
struct Param {
    method: String,
    template: String,
    name: String,
    place: Place,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Path,
    Query,
    Header,
    Body,
}

/// Every parameter of every route, from the OpenAPI document, plus what it cannot list.
fn parameters() -> Vec<Param> {
    let doc = api::openapi::document(&api::routes());
    let mut out = Vec::new();
    for (template, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            let param = |name: &str, place| Param {
                method: method.clone(),
                template: template.clone(),
                name: name.into(),
                place,
            };
            for p in op["parameters"].as_array().into_iter().flatten() {
                let place = match p["in"].as_str() {
                    Some("path") => Place::Path,
                    Some("query") => Place::Query,
                    other => panic!("{template}: parameter in {other:?} is not probed"),
                };
                out.push(param(p["name"].as_str().expect("a name"), place));
            }
            if is_stream(template) {
                out.push(param("after", Place::Query));
                out.push(param("last-event-id", Place::Header));
            }
            if op.get("requestBody").is_some() {
                for field in ["action", "contactId", "refId"] {
                    out.push(param(field, Place::Body));
                }
            }
        }
    }
    out
}

fn request(p: &Param, payload: &str, key: &str) -> Req {
    let mut params = Params {
        business: "acme",
        contact: "a1",
        segment: "gold",
    };
    let business = enc(payload);
    if p.place == Place::Path {
        match p.name.as_str() {
            "business_id" => params.business = &business,
            "contact_id" => params.contact = payload,
            "segment" => params.segment = payload,
            _ => {}
        }
    }
    let mut target = fill(&p.template, &params);
    if p.place == Place::Path && p.name == "file" {
        target = target.replace("app.js", &enc(payload));
    }
    if p.place == Place::Query {
        target = format!("{target}?{}={}", p.name, enc(payload));
    }
    let mut req = Req::new(&p.method.to_uppercase(), target).key(key);
    if p.place == Place::Header {
        req = req.header(&p.name, payload);
    }
    if p.method == "post" {
        let mut body = json!({"action": "call", "contactId": "a1"});
        if p.place == Place::Body {
            body[&p.name] = Value::String(payload.into());
        }
        req = req.json(body.to_string());
    }
    req
}

/// What acme, rival and the admin see, to compare before and after.
async fn snapshot(server: &Server) -> Vec<String> {
    let mut out = Vec::new();
    for (key, path) in [
        (ADMIN, "/v1/businesses"),
        (ACME, "/v1/businesses/acme/crm/highlights"),
        (ACME, "/v1/businesses/acme/crm/segments"),
        (ACME, "/v1/businesses/acme/crm/search?q=&limit=500"),
        (RIVAL, "/v1/businesses/rival/crm/search?q=&limit=500"),
        (RIVAL, "/v1/businesses/rival/contacts/rv-1"),
    ] {
        let r = send(server.addr, &Req::get(path).key(key)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        out.push(r.text());
    }
    out
}

/// Returns how many requests were sent.
pub async fn injection_has_no_effect(server: &Server) -> usize {
    let before = snapshot(server).await;
    let own = acme_ids();
    let mut sent = 0;
    let params = parameters();
    for name in [
        "business_id",
        "contact_id",
        "segment",
        "q",
        "limit",
        "after",
        "last-event-id",
        "contactId",
    ] {
        assert!(
            params.iter().any(|p| p.name == name),
            "parameter {name} not found: {params:?}"
        );
    }
    for p in &params {
        for payload in payloads() {
            // A header value cannot carry control characters: that is malformed HTTP, not
            // injection (see the malformed-input checks).
            if p.place == Place::Header && payload.chars().any(char::is_control) {
                continue;
            }
            let keys: &[&str] = if p.name == "business_id" {
                &[ACME, ADMIN]
            } else {
                &[ACME]
            };
            for key in keys {
                let req = request(p, &payload, key);
                let (status, body) =
                    probe(server, &p.template, req.clone(), Duration::from_millis(300)).await;
                sent += 1;
                let what = format!("{} {} {:?}={payload:?}", p.method, p.template, p.name);
                assert!((200..500).contains(&status), "{what}: {status} {body}");
                if status >= 400 {
                    let j: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    assert!(
                        j["error"]["code"].is_string(),
                        "{what}: {status} is not a JSON error: {body}"
                    );
                }
                let found = leaks(&body, &req.text());
                assert!(found.is_empty(), "{what}: leaked {found:?}: {body}");
                if p.name == "business_id" {
                    let refused = if *key == ACME {
                        status == 403 || status == 400 || status == 414
                    } else {
                        status >= 400
                    };
                    assert!(
                        refused,
                        "{what} with {}: {status} {body}",
                        if *key == ACME {
                            "acme's key"
                        } else {
                            "the admin key"
                        }
                    );
                }
                if status == 200 && p.template.ends_with("/search") {
                    let j: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    for item in j["items"].as_array().into_iter().flatten() {
                        let id = item["contactId"].as_str().unwrap_or_default();
                        assert!(own.iter().any(|c| c == id), "{what}: listed {id}");
                    }
                }
            }
        }
    }
    assert_eq!(
        snapshot(server).await,
        before,
        "the injections changed what is stored"
    );
    sent
}

/// Acme's contacts whose ids are SQL fragments are found, exactly, by id.
pub async fn bound_ids_round_trip(server: &Server) {
    for id in TRICKY_IDS {
        let path = format!("/v1/businesses/acme/contacts/{}", enc(id));
        let reply = send(server.addr, &Req::get(&path).key(ACME)).await;
        assert_eq!(reply.status, 200, "{id:?}: {}", reply.text());
        assert_eq!(reply.json()["contactId"], *id);
        let req = Req::new("POST", "/v1/businesses/acme/crm/actions")
            .key(ACME)
            .json(json!({"action": "call", "contactId": id}).to_string());
        let reply = send(server.addr, &req).await;
        assert_eq!(reply.status, 200, "action on {id:?}: {}", reply.text());
    }
    let tricky = send(
        server.addr,
        &Req::get(format!(
            "/v1/businesses/acme/contacts/{}",
            enc(TRICKY_IDS[3])
        ))
        .key(ACME),
    )
    .await;
    assert!(
        tricky.text().contains("Acme tricky note"),
        "{}",
        tricky.text()
    );
    let found = send(
        server.addr,
        &Req::get("/v1/businesses/acme/crm/search?q=Tricky&limit=500").key(ACME),
    )
    .await;
    assert_eq!(found.json()["total"], TRICKY_IDS.len(), "{}", found.text());
    // Rival's contact with a quote in its id is rival's alone.
    let path = format!("/v1/businesses/rival/contacts/{}", enc("x' OR '1'='1"));
    let reply = send(server.addr, &Req::get(&path).key(RIVAL)).await;
    assert_eq!(
        reply.json()["name"],
        "Rivalinject Quote",
        "{}",
        reply.text()
    );
    let path = format!("/v1/businesses/acme/contacts/{}", enc("x' OR '1'='1"));
    assert_eq!(
        send(server.addr, &Req::get(&path).key(ACME)).await.status,
        404
    );
}
