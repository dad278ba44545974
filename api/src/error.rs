//! HTTP errors: one enum, one JSON shape `{"error": {"code", "message"}}`, internals logged and
//! hidden. [`json_errors`] gives the same shape to what axum and its extractors refuse before a
//! handler runs (a malformed path, query or body, a wrong media type, an unknown method), and
//! turns a handler's panic into a 500 instead of a dropped connection.

use std::panic::AssertUnwindSafe;

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::FutureExt;
use serde_json::json;

/// The error body every 4xx/5xx carries.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// not_found, merged, bad_request, unauthorized, forbidden, method_not_allowed, payload_too_large,
    /// uri_too_long, unsupported_media_type, unprocessable, headers_too_large, overloaded,
    /// unavailable or internal.
    pub code: String,
    pub message: String,
    /// With `merged`: the contact the requested one was merged into (its survivor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    NotFound(String),
    /// The contact was merged into `into`: its route answers 404 with code `merged`.
    #[error("contact {contact_id} was merged into {into}")]
    Merged { contact_id: String, into: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// The request target is over `api.limits.max_uri_bytes`.
    #[error("{0}")]
    UriTooLong(String),
    /// The headers are over `api.limits.max_header_bytes`.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// Refused by axum before a handler ran (an extractor's rejection, an unknown method), with
    /// its status and its own description of the problem.
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    #[error("store unavailable")]
    Unavailable(String),
    /// More requests in flight than `api.limits.max_in_flight`: retry after a second.
    #[error("{0}")]
    Overloaded(String),
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
            AppError::Merged { .. } => (StatusCode::NOT_FOUND, "merged"),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            AppError::HeadersTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            AppError::Rejected { status, .. } => (*status, code_of(*status)),
            AppError::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            AppError::Unavailable(detail) => {
                tracing::error!(cause = %detail, "store read failed");
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            AppError::Internal(detail) => {
                tracing::error!(cause = %detail, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut error = json!({"code": code, "message": self.to_string()});
        if let AppError::Merged { into, .. } = &self {
            error["mergedInto"] = json!(into);
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if matches!(self, AppError::Overloaded(_)) {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The `code` of a status axum answered with on its own.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// Longest rejection text kept (axum's are one line).
const MAX_REJECTION_BYTES: usize = 4 * 1024;

/// Middleware: a 4xx/5xx that is not JSON yet (axum's plain-text rejections, the empty 405)
/// becomes `{"error": {"code", "message"}}` with the same status and headers, the message being
/// axum's text or the status's reason; a panicking handler becomes a logged 500.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            return AppError::Internal(format!("handler panicked: {what}")).into_response();
        }
    };
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_REJECTION_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        text
    };
    let json = AppError::Rejected { status, message }.into_response();
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(CONTENT_TYPE);
    let (json_parts, json_body) = json.into_parts();
    parts.headers.extend(json_parts.headers);
    Response::from_parts(parts, json_body)
}
