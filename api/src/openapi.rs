//! The route table and the OpenAPI document built from it. Every JSON route is registered
//! through [`Route::json`], which reads the response, query and body types off the handler's
//! own signature (see [`Documented`]) and takes their schemas from their `JsonSchema` derives:
//! the router and `GET /openapi.json` come from the same list, so they cannot drift apart.
//! `api/openapi.json` is the committed copy, checked by a golden test.

use std::future::Future;

use axum::extract::{Extension, Json, Path, Query, State};
use axum::handler::Handler;
use axum::routing::MethodRouter;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::auth::Grant;
use crate::error::{AppError, ErrorBody};
use crate::AppState;

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// What a handler's signature says about its request and response.
pub trait Documented<T> {
    fn response(g: &mut SchemaGenerator) -> Schema;
    fn query(_g: &mut SchemaGenerator) -> Option<Schema> {
        None
    }
    fn body(_g: &mut SchemaGenerator) -> Option<Schema> {
        None
    }
}

impl<F, Fut, P, R> Documented<(Path<P>,)> for F
where
    F: Fn(State<AppState>, Path<P>) -> Fut,
    Fut: Future<Output = Result<Json<R>, AppError>>,
    R: JsonSchema,
{
    fn response(g: &mut SchemaGenerator) -> Schema {
        g.subschema_for::<R>()
    }
}

impl<F, Fut, P, Q, R> Documented<(Path<P>, Query<Q>)> for F
where
    F: Fn(State<AppState>, Path<P>, Query<Q>) -> Fut,
    Fut: Future<Output = Result<Json<R>, AppError>>,
    Q: JsonSchema,
    R: JsonSchema,
{
    fn response(g: &mut SchemaGenerator) -> Schema {
        g.subschema_for::<R>()
    }
    fn query(g: &mut SchemaGenerator) -> Option<Schema> {
        Some(g.root_schema_for::<Q>())
    }
}

impl<F, Fut, P, B, R> Documented<(Path<P>, Json<B>)> for F
where
    F: Fn(State<AppState>, Path<P>, Json<B>) -> Fut,
    Fut: Future<Output = Result<Json<R>, AppError>>,
    B: JsonSchema,
    R: JsonSchema,
{
    fn response(g: &mut SchemaGenerator) -> Schema {
        g.subschema_for::<R>()
    }
    fn body(g: &mut SchemaGenerator) -> Option<Schema> {
        Some(g.subschema_for::<B>())
    }
}

impl<F, Fut, R> Documented<(Extension<Grant>,)> for F
where
    F: Fn(State<AppState>, Extension<Grant>) -> Fut,
    Fut: Future<Output = Result<Json<R>, AppError>>,
    R: JsonSchema,
{
    fn response(g: &mut SchemaGenerator) -> Schema {
        g.subschema_for::<R>()
    }
}

/// How a route answers, for the document.
#[derive(Clone, Copy)]
pub enum Answer {
    /// JSON of the handler's response type.
    Json {
        response: SchemaFn,
        query: fn(&mut SchemaGenerator) -> Option<Schema>,
        body: fn(&mut SchemaGenerator) -> Option<Schema>,
    },
    /// Anything else (a page, Prometheus text, an event stream), by media type.
    Other(&'static str),
}

/// One route: where, what for, how it is served and documented.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub handler: MethodRouter<AppState>,
    pub answer: Answer,
}

impl Route {
    /// A JSON GET route, documented from the handler's signature.
    pub fn json<H, T, D>(path: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState> + Documented<D>,
        T: 'static,
    {
        Self {
            method: "get",
            path,
            summary,
            handler: axum::routing::get(handler),
            answer: answer_of::<H, D>(),
        }
    }

    /// A JSON POST route, documented from the handler's signature.
    pub fn post_json<H, T, D>(path: &'static str, summary: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState> + Documented<D>,
        T: 'static,
    {
        Self {
            method: "post",
            path,
            summary,
            handler: axum::routing::post(handler),
            answer: answer_of::<H, D>(),
        }
    }

    /// A GET route answering `media` (not JSON).
    pub fn other<H, T>(
        path: &'static str,
        summary: &'static str,
        media: &'static str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        Self {
            method: "get",
            path,
            summary,
            handler: axum::routing::get(handler),
            answer: Answer::Other(media),
        }
    }
}

fn answer_of<H: Documented<D>, D>() -> Answer {
    Answer::Json {
        response: <H as Documented<D>>::response,
        query: <H as Documented<D>>::query,
        body: <H as Documented<D>>::body,
    }
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect()
}

fn query_params(schema: &Schema) -> Vec<Value> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, s)| {
            let mut p = json!({
                "name": name, "in": "query", "required": required.contains(&name.as_str()),
                "schema": s,
            });
            if let Some(d) = s.get("description") {
                p["description"] = d.clone();
            }
            p
        })
        .collect()
}

fn error_response(description: &str, error: &Schema) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": error}}})
}

/// The OpenAPI 3.0 document of `routes`.
pub fn document(routes: &[Route]) -> Value {
    let mut g = schemars::generate::SchemaSettings::openapi3().into_generator();
    let error = g.subschema_for::<ErrorBody>();
    let mut paths: Map<String, Value> = Map::new();
    for r in routes {
        let mut params = path_params(r.path);
        let mut request_body = None;
        let ok = match r.answer {
            Answer::Json {
                response,
                query,
                body,
            } => {
                if let Some(q) = query(&mut g) {
                    params.extend(query_params(&q));
                }
                request_body = body(&mut g).map(
                    |b| json!({"required": true, "content": {"application/json": {"schema": b}}}),
                );
                json!({"description": "OK", "content": {"application/json": {"schema": response(&mut g)}}})
            }
            Answer::Other(media) => {
                json!({"description": "OK", "content": {media: {"schema": {"type": "string"}}}})
            }
        };
        let mut responses = json!({"200": ok});
        if r.path.starts_with("/v1/") {
            responses["401"] = error_response("No key, or a key nobody issued", &error);
            responses["403"] = error_response("The key is for another business", &error);
            responses["400"] = error_response("A malformed parameter, named", &error);
            responses["404"] = error_response("Unknown business, contact or segment", &error);
        }
        let mut op = json!({
            "summary": r.summary,
            "operationId": operation_id(r.method, r.path),
            "parameters": params,
            "responses": responses,
        });
        if let Some(b) = request_body {
            op["requestBody"] = b;
        }
        if r.path.starts_with("/v1/") {
            op["security"] = json!([{"bearer": []}]);
        }
        paths
            .entry(r.path.to_owned())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path item is an object")
            .insert(r.method.to_owned(), op);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "KeyFlow Cockpit API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Live CRM intelligence per business: lead scores with their factors, \
    payment reliability, service affinity, segments, the Next Action queue, search and the live \
    timeline. Every response carries X-KeyFlow-Complete-Up-To and X-KeyFlow-Consumer-Lag.",
        },
        "paths": paths,
        "components": {
            "schemas": g.take_definitions(true),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    })
}

fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<String> = path
        .split(['/', '-', '{', '}'])
        .filter(|s| !s.is_empty() && *s != "v1" && *s != "businesses" && !s.ends_with("_id"))
        .map(|s| {
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("{method}{}", words.concat())
}
