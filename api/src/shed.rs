//! Load shedding: at most `api.limits.max_in_flight` requests under `/v1/` are handled at once.
//! Past that, a request is answered at once with a 503 `overloaded` and `Retry-After: 1`
//! instead of waiting its turn: under more load than the machine can serve, clients get quick
//! errors they can retry, and the server's memory and the latency of what it admits stay
//! bounded (without it, an overload queues requests in memory for tens of seconds). Shed
//! requests are counted in `keyflow_api_request_seconds{status="503"}`. Health, metrics and the
//! Cockpit's static files are never shed. A live stream holds its slot only until its headers
//! are sent. Connections past `api.limits.max_connections` are shed here too (see
//! [`crate::connections`]).

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::CONNECTION;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::connections::Admission;
use crate::error::AppError;
use crate::AppState;

/// The slots requests are handled in.
#[derive(Debug, Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max)))
    }

    /// Requests being handled now.
    pub fn busy(&self, max: usize) -> usize {
        max.saturating_sub(self.0.available_permits())
    }
}

/// Middleware: admits a `/v1/` request into a free slot, or refuses it with a 503. On a
/// connection past `api.limits.max_connections` ([`crate::connections`]) every `/v1/` request
/// is refused and every answer closes the connection.
pub async fn shed(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let over_cap = req
        .extensions()
        .get::<ConnectInfo<Admission>>()
        .is_some_and(|c| !c.0.within_cap);
    if over_cap {
        let mut response = if req.uri().path().starts_with("/v1/") {
            AppError::Overloaded(format!(
                "more than {} connections open; retry shortly (api.limits.max_connections)",
                s.api.limits.max_connections
            ))
            .into_response()
        } else {
            next.run(req).await
        };
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    if !req.uri().path().starts_with("/v1/") {
        return next.run(req).await;
    }
    match s.in_flight.0.clone().try_acquire_owned() {
        Ok(slot) => {
            let response = next.run(req).await;
            drop(slot);
            response
        }
        Err(_) => AppError::Overloaded(format!(
            "more than {} requests in flight; retry shortly (api.limits.max_in_flight)",
            s.api.limits.max_in_flight
        ))
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted() {
        let f = InFlight::new(2);
        let a = f.0.clone().try_acquire_owned().unwrap();
        let _b = f.0.clone().try_acquire_owned().unwrap();
        assert_eq!(f.busy(2), 2);
        assert!(f.0.clone().try_acquire_owned().is_err());
        drop(a);
        assert_eq!(f.busy(2), 1);
    }
}
