//! Load shedding: at most `api.limits.max_in_flight` requests under `/v1/` are handled at once,
//! and none while the runtime's queue delay is over `api.limits.max_queue_delay_ms` (measured by
//! [`InFlight::probe`]: cheap requests overload the CPU before they fill the slots). Past either,
//! a request is answered at once with a 503 `overloaded` and `Retry-After: 1`
//! instead of waiting its turn: under more load than the machine can serve, clients get quick
//! errors they can retry, and the server's memory and the latency of what it admits stay
//! bounded (without it, an overload queues requests in memory for tens of seconds). Shed
//! requests are counted in `keyflow_api_request_seconds{status="503"}`. Health, metrics and the
//! Cockpit's static files are never shed. A live stream holds its slot only until its headers
//! are sent. Connections past `api.limits.max_connections` are shed here too (see
//! [`crate::connections`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::CONNECTION;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::connections::Admission;
use crate::error::AppError;
use crate::AppState;

/// How often the scheduler's queue delay is probed.
const PROBE_EVERY: Duration = Duration::from_millis(5);

/// The slots requests are handled in, and the scheduler's current queue delay.
#[derive(Debug, Clone)]
pub struct InFlight(Arc<Semaphore>, Arc<AtomicU64>);

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max)), Arc::default())
    }

    /// How late the last probe woke up: how long a runnable task waits for a worker now.
    pub fn queue_delay(&self) -> Duration {
        Duration::from_micros(self.1.load(Ordering::Relaxed))
    }

    /// Measures the queue delay until `stop`: sleeps [`PROBE_EVERY`] and records how much later
    /// it woke. Under a CPU-bound overload every request waits as a runnable task before any
    /// handler runs (cheap handlers never pile up in flight), and this delay is that wait.
    pub async fn probe(self, stop: tokio_util::sync::CancellationToken) {
        loop {
            let asleep = Instant::now();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
            let late = asleep.elapsed().saturating_sub(PROBE_EVERY);
            self.1.store(late.as_micros() as u64, Ordering::Relaxed);
        }
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
    let delay = s.in_flight.queue_delay();
    let max_delay = Duration::from_millis(s.api.limits.max_queue_delay_ms);
    if !max_delay.is_zero() && delay > max_delay {
        return AppError::Overloaded(format!(
            "requests wait {} ms for the CPU, more than {} ms; retry shortly \
             (api.limits.max_queue_delay_ms)",
            delay.as_millis(),
            max_delay.as_millis()
        ))
        .into_response();
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

    #[tokio::test(flavor = "current_thread")]
    async fn the_probe_sees_a_blocked_runtime() {
        let f = InFlight::new(1);
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(f.clone().probe(stop.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            f.queue_delay() < Duration::from_millis(20),
            "idle: no delay"
        );
        // Hold the only worker for 60 ms, as a CPU-bound overload does.
        std::thread::sleep(Duration::from_millis(60));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(
            f.queue_delay() >= Duration::from_millis(30),
            "{:?}",
            f.queue_delay()
        );
        stop.cancel();
    }
}
