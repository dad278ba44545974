//! HTTP errors: one enum, one JSON shape `{"error": {"code", "message"}}`, internals logged and
//! hidden.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// The error body every 4xx/5xx carries.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// not_found, bad_request, unauthorized, forbidden, unavailable or internal.
    pub code: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("store unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl From<sinks::read::ReadError> for AppError {
    fn from(e: sinks::read::ReadError) -> Self {
        match e {
            sinks::read::ReadError::Invalid(m) => AppError::BadRequest(m),
            other => AppError::Unavailable(other.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::Unavailable(detail) => {
                tracing::error!(cause = %detail, "store read failed");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            AppError::Internal(detail) => {
                tracing::error!(cause = %detail, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut response = (
            status,
            Json(json!({"error": {"code": code, "message": self.to_string()}})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
