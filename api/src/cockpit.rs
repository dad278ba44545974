//! The reference Cockpit page, served at `/` from files compiled into the binary
//! (`api/cockpit/`): plain HTML, CSS and JavaScript calling the API with the key the user
//! gives it (kept in the tab's session storage, sent as a bearer header, never in a URL).

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

const INDEX: &str = include_str!("../cockpit/index.html");
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../cockpit/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../cockpit/app.css"),
    ),
];

pub async fn index() -> Response {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, media, body)) => {
            ([(CONTENT_TYPE, *media), (CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => AppError::NotFound(format!("no asset {file}")).into_response(),
    }
}
