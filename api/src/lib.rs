//! The thin HTTP API the Cockpit reads: `fn app(state) -> Router`, JSON in camelCase, errors as
//! JSON bodies that name the problem and never leak internals.

pub mod crm;
pub mod error;
pub mod routes;
pub mod search;
pub mod views;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use pipeline::status::ProcessorStatus;
use sinks::read::ProfileReader;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub reader: Arc<dyn ProfileReader>,
    pub status: Arc<ProcessorStatus>,
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route(
            "/v1/businesses/{business_id}/contacts/{contact_id}",
            get(routes::contact),
        )
        .route(
            "/v1/businesses/{business_id}/highlights",
            get(routes::highlights),
        )
        .route(
            "/v1/businesses/{business_id}/crm/highlights",
            get(crm::highlights),
        )
        .route(
            "/v1/businesses/{business_id}/crm/services",
            get(crm::services),
        )
        .route("/v1/businesses/{business_id}/crm/cues", get(crm::cues))
        .route(
            "/v1/businesses/{business_id}/crm/next-actions",
            get(crm::next_actions),
        )
        .route(
            "/v1/businesses/{business_id}/crm/segments",
            get(crm::segments),
        )
        .route(
            "/v1/businesses/{business_id}/crm/segments/{segment}/contacts",
            get(crm::segment_members),
        )
        .route("/v1/businesses/{business_id}/crm/search", get(crm::search))
        .route(
            "/v1/businesses/{business_id}/crm/ai/next-actions",
            get(crm::ai_next_actions),
        )
        .route(
            "/v1/businesses/{business_id}/contacts/{contact_id}/ai/predicted-segments",
            get(crm::ai_predicted_segments),
        )
        .fallback(routes::not_found)
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, draining in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
