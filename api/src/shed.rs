//! Load shedding: at most `api.limits.max_in_flight` requests under `/v1/` are handled at once,
//! and none while the runtime's queue delay is over `api.limits.max_queue_delay_ms` (measured by
//! [`InFlight::probe`]: cheap requests overload the CPU before they fill the slots). The delay
//! is the smallest seen over the last [`DELAY_WINDOW`], as in CoDel: one slow request (a view
//! cache being built) delays one probe, a standing queue delays all of them. Past either,
//! a request is answered at once with a 503 `overloaded` and `Retry-After: 1`
//! instead of waiting its turn: under more load than the machine can serve, clients get quick
//! errors they can retry, and the server's memory and the latency of what it admits stay
//! bounded (without it, an overload queues requests in memory for tens of seconds). Shed
//! requests are counted in `keyflow_api_request_seconds{status="503"}`. Health, metrics and the
//! Cockpit's static files are never shed. A live stream holds its slot only until its headers
//! are sent. Connections past `api.limits.max_connections` are shed here too (see
//! [`crate::connections`]).

use std::collections::VecDeque;
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
/// The queue delay is the smallest probe delay seen over this long: only a delay that lasts
/// this long is a standing queue.
pub const DELAY_WINDOW: Duration = Duration::from_millis(100);

/// The slots requests are handled in, and the scheduler's current queue delay.
#[derive(Debug, Clone)]
pub struct InFlight(Arc<Semaphore>, Arc<AtomicU64>);

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max)), Arc::default())
    }

    /// How long a runnable task has been waiting for a worker: the least any probe woke late
    /// over the last [`DELAY_WINDOW`].
    pub fn queue_delay(&self) -> Duration {
        Duration::from_micros(self.1.load(Ordering::Relaxed))
    }

    /// Measures the queue delay until `stop`: sleeps [`PROBE_EVERY`], notes how much later it
    /// woke, and publishes the least lateness of the last [`DELAY_WINDOW`] (always including
    /// the newest probe, which may be older than the window when the runtime is that late).
    /// Under a CPU-bound overload every request waits as a runnable task before any handler
    /// runs (cheap handlers never pile up in flight), and this delay is that wait.
    pub async fn probe(self, stop: tokio_util::sync::CancellationToken) {
        let mut seen = WindowMin::default();
        loop {
            let asleep = Instant::now();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
            let now = Instant::now();
            let late = now.duration_since(asleep).saturating_sub(PROBE_EVERY);
            let least = seen.push(now, late);
            self.1.store(least.as_micros() as u64, Ordering::Relaxed);
        }
    }

    /// Requests being handled now.
    pub fn busy(&self, max: usize) -> usize {
        max.saturating_sub(self.0.available_permits())
    }
}

/// The least of the samples of the last [`DELAY_WINDOW`] (the newest always counts).
#[derive(Debug, Default)]
struct WindowMin(VecDeque<(Instant, Duration)>);

impl WindowMin {
    fn push(&mut self, at: Instant, late: Duration) -> Duration {
        self.0.push_back((at, late));
        while self.0.len() > 1 && at.duration_since(self.0[0].0) > DELAY_WINDOW {
            self.0.pop_front();
        }
        self.0.iter().map(|s| s.1).min().unwrap_or_default()
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

    #[test]
    fn one_late_probe_is_not_a_queue_but_a_window_of_them_is() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = WindowMin::default();
        assert_eq!(w.push(t0, ms(1)), ms(1));
        // One probe 60 ms late among prompt ones: a single slow task, not a standing queue.
        assert_eq!(w.push(t0 + ms(66), ms(60)), ms(1));
        assert_eq!(w.push(t0 + ms(72), ms(1)), ms(1));
        // Every probe late for longer than the window: the least of them is the queue delay.
        let mut at = t0 + ms(72);
        let mut least = Duration::ZERO;
        for late in [70, 55, 80, 65] {
            at += ms(5 + late);
            least = w.push(at, ms(late));
        }
        assert_eq!(least, ms(65), "only the last 100 ms count");
        // The first prompt probe ends it.
        assert_eq!(w.push(at + ms(6), ms(1)), ms(1));
        // A runtime stalled longer than the window still reports its newest probe.
        assert_eq!(w.push(at + ms(400), ms(390)), ms(390));
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
        // One 60 ms hold of the only worker (a slow request) is not a queue.
        std::thread::sleep(Duration::from_millis(60));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(
            f.queue_delay() < Duration::from_millis(20),
            "one slow task: {:?}",
            f.queue_delay()
        );
        // Held again and again, as a CPU-bound overload does: a standing queue.
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(60));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            f.queue_delay() >= Duration::from_millis(30),
            "{:?}",
            f.queue_delay()
        );
        stop.cancel();
    }
}
