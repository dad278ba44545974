//! HTTP errors: one enum, one JSON shape `{"error": {"code", "message"}}`, internals logged and
//! hidden.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("store unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<sinks::read::ReadError> for AppError {
    fn from(e: sinks::read::ReadError) -> Self {
        AppError::Unavailable(e.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Unavailable(detail) => {
                tracing::error!(cause = %detail, "store read failed");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            AppError::Internal(detail) => {
                tracing::error!(cause = %detail, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        (
            status,
            Json(json!({"error": {"code": code, "message": self.to_string()}})),
        )
            .into_response()
    }
}
