//! Small handlers: health, readiness, the businesses a key can read, and the Cockpit's context
//! actions (hook points that log and acknowledge; the CRM upstream owns the records).

use std::sync::atomic::Ordering;

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Grant;
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

/// Step 1's top-three list; `crm/highlights` is the Cockpit's richer view.
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

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Businesses {
    /// Business ids this key can read, sorted.
    pub businesses: Vec<String>,
}

/// `GET /v1/businesses`: every business for the admin key, its own for a business key.
pub async fn businesses(
    State(s): State<AppState>,
    Extension(grant): Extension<Grant>,
) -> Result<Json<Businesses>, AppError> {
    let mut all = s.reader.businesses().await?;
    all.retain(|b| grant.allows(b));
    Ok(Json(Businesses { businesses: all }))
}

/// Context actions the Cockpit offers on a contact or timeline item.
pub const ACTIONS: &[&str] = &[
    "call",
    "book",
    "tag",
    "send_reminder",
    "confirm_booking",
    "mark_task_done",
];

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionRequest {
    /// call, book, tag, send_reminder, confirm_booking or mark_task_done.
    pub action: String,
    pub contact_id: String,
    /// The task, invoice or booking the action is about.
    pub ref_id: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionAck {
    pub action: String,
    pub contact_id: String,
    pub ref_id: Option<String>,
    /// Always true: the action reached its hook point, which logs it; sending reminders or
    /// closing tasks belongs to the CRM upstream.
    pub stub: bool,
    pub hook_point: String,
}

/// `POST crm/actions`: a context action from the Cockpit (stub hook point, logged under
/// `keyflow::action_hooks`).
pub async fn action(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
    Json(req): Json<ActionRequest>,
) -> Result<Json<ActionAck>, AppError> {
    if !ACTIONS.contains(&req.action.as_str()) {
        return Err(AppError::BadRequest(format!(
            "action {:?} is not one of {}",
            req.action,
            ACTIONS.join(", ")
        )));
    }
    if s.reader
        .contact(&business_id, &req.contact_id)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound(format!(
            "contact {} of business {business_id} not found",
            req.contact_id
        )));
    }
    let hook_point = format!("cockpit.action.{}", req.action);
    tracing::info!(
        target: "keyflow::action_hooks",
        hook = %hook_point, %business_id, contact_id = %req.contact_id,
        ref_id = ?req.ref_id, "stub reached: Cockpit action logged, nothing sent"
    );
    Ok(Json(ActionAck {
        action: req.action,
        contact_id: req.contact_id,
        ref_id: req.ref_id,
        stub: true,
        hook_point,
    }))
}

pub async fn not_found() -> AppError {
    AppError::NotFound("no such route".into())
}
