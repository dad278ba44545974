//! The thin HTTP API the Cockpit reads: `fn app(state) -> Router`, JSON in camelCase, errors as
//! JSON bodies that name the problem and never leak internals. Around every route: request ids
//! (`x-request-id`, in the request log with the path but never the query or headers), bearer
//! keys, freshness headers, latency metrics, gzip and configurable CORS; request size limits
//! (`[api.limits]`, see [`limits`]), load shedding past a number of requests in flight or of
//! open connections (see [`shed`] and [`connections`]) and JSON errors for whatever axum
//! refuses on its own.

pub mod activity;
pub mod auth;
pub mod business;
pub mod cache;
pub mod cockpit;
pub mod connections;
pub mod crm;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod scores;
pub mod search;
pub mod segments;
pub mod shed;
pub mod timeline;
pub mod views;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use model::rules::Rules;
use model::status::ProcessorStatus;
use sinks::read::ProfileReader;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

pub use auth::{ApiConfig, Secret};
use openapi::Route;

/// What every handler can reach. One `Arc`: axum clones the state for every extractor and
/// middleware layer of every request, and a clone field by field (atomic counts, and the
/// cancellation token's lock) measured 9% of the server's CPU under load (`benches/RESULTS.md`).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub reader: Arc<dyn ProfileReader>,
    pub status: Arc<ProcessorStatus>,
    pub api: Arc<ApiConfig>,
    pub metrics: Arc<metrics::ApiMetrics>,
    /// Cancelled when the server stops: long-lived responses (the timeline stream) end with it.
    pub shutdown: CancellationToken,
    /// Per-business aggregates, computed once per store generation.
    pub views: Arc<cache::ViewCache>,
    /// Slots of the requests being handled (see [`shed`]).
    pub in_flight: shed::InFlight,
    /// The rules each business is evaluated with (segment definitions are rendered from them).
    pub rules: Arc<Rules>,
}

impl AppState {
    pub fn new(
        reader: Arc<dyn ProfileReader>,
        status: Arc<ProcessorStatus>,
        api: ApiConfig,
        rules: Arc<Rules>,
    ) -> Self {
        Self(Arc::new(Shared {
            rules,
            reader,
            metrics: Arc::new(metrics::ApiMetrics::new(status.clone())),
            status,
            views: Arc::new(cache::ViewCache::new(std::time::Duration::from_millis(
                api.views_max_staleness_ms,
            ))),
            in_flight: shed::InFlight::new(api.limits.max_in_flight),
            api: Arc::new(api),
            shutdown: CancellationToken::new(),
        }))
    }
}

/// A path under one business.
macro_rules! b {
    ($tail:literal) => {
        concat!("/v1/businesses/{business_id}", $tail)
    };
}

/// Every route, in the order `/openapi.json` lists them.
pub fn routes() -> Vec<Route> {
    use axum::routing::get;
    vec![
        Route::json(
            "/v1/businesses",
            "Businesses this key can read",
            routes::businesses,
        ),
        Route::json(
            b!("/contacts/{contact_id}"),
            "ContactDetail: profile, metrics, factors, segments, queue items and the recent \
             events, notes, tasks, bookings and invoices (each list paginated)",
            timeline::contact,
        ),
        Route::json(
            b!("/contacts/{contact_id}/score-history"),
            "The contact's lead score over time: each change, the factors behind it and the \
             ones that moved it",
            scores::score_history,
        ),
        Route::json(
            b!("/contacts/{contact_id}/ai/predicted-segments"),
            "Predicted segments (AI stub)",
            crm::ai_predicted_segments,
        ),
        Route::json(
            b!("/crm/highlights"),
            "The three spotlights: top lead scores, recent bookings, revenue",
            crm::highlights,
        ),
        Route::json(
            b!("/crm/segments"),
            "Every segment with its size and definition",
            crm::segments,
        ),
        Route::json(
            b!("/crm/segments/{segment}/contacts"),
            "Members of one segment, sorted and paginated",
            crm::segment_members,
        ),
        Route::json(
            b!("/crm/next-actions"),
            "The ranked Next Action queue",
            crm::next_actions,
        ),
        Route::json(
            b!("/crm/services"),
            "Services ranked by revenue and volume, with top fans",
            crm::services,
        ),
        Route::json(b!("/crm/cues"), "Integration cues", crm::cues),
        Route::json(
            b!("/crm/search"),
            "Command search: free text, #tag:x, #segment:x, /metric<op>number",
            crm::search,
        ),
        Route::json(
            b!("/crm/search/suggest"),
            "Autocomplete for commands, segments, tags and contact names",
            crm::suggest,
        ),
        Route::json(
            b!("/crm/timeline"),
            "The latest events of the business, newest first",
            timeline::timeline,
        ),
        Route::other(
            b!("/crm/timeline/stream"),
            "New events live, as Server-Sent Events (resume with Last-Event-ID or ?after=)",
            "text/event-stream",
            timeline::stream,
        ),
        Route::json(
            b!("/crm/ai/next-actions"),
            "Up to three next-action cards (AI stub)",
            crm::ai_next_actions,
        ),
        Route::json(
            b!("/crm/ai/feed"),
            "Flow-feed prompts for the latest events (AI stub)",
            timeline::ai_feed,
        ),
        Route::post_json(
            b!("/crm/actions"),
            "A context action (call, book, tag, send_reminder, confirm_booking, mark_task_done): \
             logged at its hook point",
            routes::action,
        ),
        Route::json(
            b!("/highlights"),
            "Top three contacts by lead score (step 1; see crm/highlights)",
            routes::highlights,
        ),
        Route::other("/healthz", "Liveness", "application/json", routes::healthz),
        Route::other(
            "/readyz",
            "Readiness: 200 once caught up with the input topics",
            "application/json",
            routes::readyz,
        ),
        Route::other(
            "/metrics",
            "Prometheus metrics",
            "application/openmetrics-text",
            metrics::metrics,
        ),
        Route::other(
            "/openapi.json",
            "This document",
            "application/json",
            openapi_json,
        ),
        Route::other(
            "/",
            "The reference Cockpit page",
            "text/html",
            cockpit::index,
        ),
        Route {
            method: "get",
            path: "/assets/{file}",
            summary: "The Cockpit page's script and style",
            handler: get(cockpit::asset),
            answer: openapi::Answer::Other("text/javascript"),
        },
    ]
}

async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    Json(DOC.get_or_init(|| openapi::document(&routes()))).into_response()
}

/// Adds the freshness headers to every response.
async fn freshness(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let complete = views::rfc3339(match s.status.complete_up_to_ms.load(Ordering::Relaxed) {
        0 => None,
        ms => Some(ms),
    })
    .unwrap_or_else(|| "unknown".into());
    let lag = s.status.lag.load(Ordering::Relaxed).to_string();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&complete) {
        h.insert(COMPLETE_UP_TO, v);
    }
    if let Ok(v) = HeaderValue::from_str(&lag) {
        h.insert(CONSUMER_LAG, v);
    }
    response
}

/// Event time the results are complete up to (RFC 3339, or `unknown` before the first batch).
pub const COMPLETE_UP_TO: HeaderName = HeaderName::from_static("x-keyflow-complete-up-to");
/// Messages not yet processed on the processor's partitions (-1 when unknown).
pub const CONSUMER_LAG: HeaderName = HeaderName::from_static("x-keyflow-consumer-lag");

fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            COMPLETE_UP_TO,
            CONSUMER_LAG,
            HeaderName::from_static("x-request-id"),
        ])
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for r in routes() {
        router = router.route(r.path, r.handler);
    }
    let cors = cors(&state.api.cors_origins);
    router
        .fallback(routes::not_found)
        .layer(from_fn_with_state(state.clone(), auth::require_key))
        .layer(from_fn_with_state(state.clone(), limits::enforce))
        .layer(DefaultBodyLimit::max(state.api.limits.max_body_bytes))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(from_fn_with_state(state.clone(), shed::shed))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(from_fn_with_state(state.clone(), freshness))
        .layer(CompressionLayer::new())
        .layer(cors)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path only: queries carry search text (names, emails) and headers the key.
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            })
            // Every 5xx is already logged where it arises (AppError, json_errors) except the 503s
            // of shedding, which come by the thousand under overload: an ERROR line each would
            // spend on logging the CPU the shedding saves.
            .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then ends the live streams and drains
/// in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let streams = state.shutdown.clone();
    tokio::spawn(state.in_flight.clone().probe(streams.child_token()));
    let listener = connections::CappedListener::new(listener, state.api.limits.max_connections);
    let app = app(state).into_make_service_with_connect_info::<connections::Admission>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            streams.cancel();
        })
        .await
}
