//! Handlers: extract, ask the reader, shape the view. No business logic lives here.

use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::error::AppError;
use crate::views::{ContactView, Highlights, Readiness};
use crate::AppState;

/// How many contacts the highlights list.
pub const HIGHLIGHTS: usize = 3;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let body = Readiness {
        ready: s.status.is_ready(),
        consumer_lag: s.status.lag.load(Ordering::Relaxed),
    };
    let code = if body.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

pub async fn contact(
    State(s): State<AppState>,
    Path((business_id, contact_id)): Path<(String, String)>,
) -> Result<Json<ContactView>, AppError> {
    match s.reader.contact(&business_id, &contact_id).await? {
        Some(p) => Ok(Json(ContactView::from(p.as_ref()))),
        None => Err(AppError::NotFound(format!(
            "contact {contact_id} of business {business_id} not found"
        ))),
    }
}

pub async fn highlights(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
) -> Result<Json<Highlights>, AppError> {
    match s.reader.top_by_score(&business_id, HIGHLIGHTS).await? {
        Some(top) => Ok(Json(Highlights {
            business_id,
            contacts: top.iter().map(|p| ContactView::from(p.as_ref())).collect(),
        })),
        None => Err(AppError::NotFound(format!(
            "business {business_id} not found"
        ))),
    }
}

pub async fn not_found() -> AppError {
    AppError::NotFound("no such route".into())
}
