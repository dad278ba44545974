//! `GET /metrics` in the Prometheus/OpenMetrics text format: the processor's counters (events in,
//! duplicates, dead letters, batches, profiles, signals), its sink-write latency, consumer lag in
//! total and per partition, and a latency histogram of every API route.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use model::status::{ProcessorStatus, Stage};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::AppState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    /// The route template (`/v1/businesses/{business_id}/crm/search`), never the raw path.
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    partition: i32,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

/// Upper bounds (seconds) of the API latency buckets.
const API_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

fn api_histogram() -> Histogram {
    Histogram::new(API_BUCKETS)
}

/// The registry and the API's own histograms.
pub struct ApiMetrics {
    registry: Registry,
    requests: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

/// Reads the processor's live status at each scrape.
#[derive(Debug)]
struct StatusCollector(Arc<ProcessorStatus>);

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let counters = [
            (
                "keyflow_events_in",
                "Events accepted (duplicates excluded)",
                &s.events_in,
            ),
            (
                "keyflow_duplicates",
                "Redelivered events skipped",
                &s.duplicates,
            ),
            (
                "keyflow_dead_letters",
                "Events sent to the dead-letter topic",
                &s.dead_letters,
            ),
            ("keyflow_batches", "Micro-batches committed", &s.batches),
            (
                "keyflow_profiles_written",
                "Profiles written",
                &s.profiles_written,
            ),
            ("keyflow_signals", "Signals published", &s.signals),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value.load(Ordering::Relaxed));
            c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)?;
        }
        let lag = ConstGauge::new(s.lag.load(Ordering::Relaxed));
        lag.encode(encoder.encode_descriptor(
            "keyflow_consumer_lag",
            "Messages not yet processed on the assigned partitions (-1: unknown)",
            None,
            lag.metric_type(),
        )?)?;
        let complete = ConstGauge::new(s.complete_up_to_ms.load(Ordering::Relaxed) as f64 / 1e3);
        complete.encode(encoder.encode_descriptor(
            "keyflow_complete_up_to",
            "Event time (Unix seconds) the results are complete up to",
            None,
            complete.metric_type(),
        )?)?;
        let ready = ConstGauge::new(i64::from(s.is_ready()));
        ready.encode(encoder.encode_descriptor(
            "keyflow_ready",
            "1 once caught up with the input topics",
            None,
            ready.metric_type(),
        )?)?;
        let by_partition = s.lag_by_partition.lock().expect("lag lock").clone();
        let mut family = encoder.encode_descriptor(
            "keyflow_partition_lag",
            "Messages not yet processed, per input partition (summed over the input topics)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (partition, lag) in by_partition {
            let g = ConstGauge::new(lag);
            g.encode(family.encode_family(&PartitionLabels { partition })?)?;
        }
        let mut family = encoder.encode_descriptor(
            "keyflow_processor_busy_seconds",
            "Time the processor spent in each stage of its loop (stages of consecutive batches overlap)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for stage in Stage::ALL {
            let c = ConstCounter::new(s.busy(stage));
            c.encode(family.encode_family(&StageLabels {
                stage: stage.name(),
            })?)?;
        }
        s.sink_latency.encode(encoder.encode_descriptor(
            "keyflow_sink_write",
            "Durable micro-batch write time, retries included",
            Some(&Unit::Seconds),
            s.sink_latency.metric_type(),
        )?)?;
        Ok(())
    }
}

impl ApiMetrics {
    pub fn new(status: Arc<ProcessorStatus>) -> Self {
        let mut registry = Registry::default();
        let requests: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(api_histogram);
        registry.register_with_unit(
            "keyflow_api_request",
            "API request latency by route, method and status",
            Unit::Seconds,
            requests.clone(),
        );
        registry.register_collector(Box::new(StatusCollector(status)));
        Self { registry, requests }
    }

    pub fn observe(&self, labels: RouteLabels, seconds: f64) {
        self.requests.get_or_create(&labels).observe(seconds);
    }

    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Middleware: times every request under its route template.
pub async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    // Clients may send any method token: only the standard ones get a label of their own, so
    // the label set (and the registry's memory) stays bounded.
    let method = match *req.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
    .to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    s.metrics.observe(
        RouteLabels {
            method,
            route,
            status: response.status().as_u16(),
        },
        started.elapsed().as_secs_f64(),
    );
    response
}

pub async fn metrics(State(s): State<AppState>) -> Response {
    match s.metrics.render() {
        Ok(text) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => {
            crate::error::AppError::Internal("encoding metrics failed".into()).into_response()
        }
    }
}
