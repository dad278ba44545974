//! Shared scaffolding for the integration tests: a real embedded broker per test on a free port,
//! a private data directory, a pinned clock, and helpers to produce and to wait.
#![allow(dead_code)]

pub mod child;
pub mod proxy;
pub mod script;
pub mod views;
pub mod webdriver;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keyflow::config::Config;
use keyflow::demo::generator::DemoMessage;
use pipeline::clock::ManualClock;
use pipeline::event::{Event, Payload};
use pipeline::kafka::broker::EmbeddedBroker;
use pipeline::kafka::{client_config, topics};

/// A test's directory, kept when the test fails (the broker's data with the signals topic,
/// the child processes' logs, the embedded stores) so the failure can be examined afterwards;
/// deleted as usual when it passes. A failed ClickHouse test keeps its databases as well.
pub struct KeptOnFailure(Option<tempfile::TempDir>);

impl KeptOnFailure {
    pub fn new() -> Self {
        Self(Some(tempfile::tempdir().unwrap()))
    }

    pub fn path(&self) -> &std::path::Path {
        self.0.as_ref().expect("held until dropped").path()
    }
}

impl Drop for KeptOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.0.take() {
                eprintln!(
                    "the failed test's files are kept in {}",
                    dir.keep().display()
                );
            }
        }
    }
}

pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A fresh config: private data dir, free ports, fast ticks, a unique group.
pub fn config(dir: &std::path::Path) -> Config {
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        broker_addr: free_addr(),
        api_addr: free_addr(),
        ..Default::default()
    };
    cfg.processing.tick_ms = 100;
    cfg.processing.batch_linger_ms = 20;
    cfg.processing.group_id = format!("test-{}", uuid_like());
    cfg.api.admin_key = Some(keyflow::api::Secret::new(ADMIN_KEY));
    // Tests read right after writing: aggregates are recomputed after every write.
    cfg.api.views_max_staleness_ms = 0;
    cfg
}

/// The admin key every test configuration carries.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

pub fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A broker of our own (so processors can stop and start around it) with the topics created.
pub async fn broker(dir: &std::path::Path, cfg: &mut Config) -> EmbeddedBroker {
    let broker = EmbeddedBroker::start(cfg.broker_addr, &pipeline::kafka::broker::db_in(dir))
        .await
        .unwrap();
    topics::ensure_topics(&client_config(&broker.bootstrap(), &cfg.kafka), &cfg.topics)
        .await
        .unwrap();
    cfg.brokers = Some(broker.bootstrap());
    broker
}

pub fn clock(at: &str) -> (ManualClock, Arc<ManualClock>) {
    let c = ManualClock::at(t(at));
    (c.clone(), Arc::new(c))
}

/// An event as a producer would publish it.
pub fn msg(id: &str, business: &str, contact: &str, at: &str, payload: Payload) -> DemoMessage {
    let ev = Event {
        schema_version: 1,
        event_id: id.into(),
        business_id: business.into(),
        contact_id: contact.into(),
        occurred_at: t(at),
        source: "manual".into(),
        payload,
    };
    DemoMessage {
        family: ev.payload.family(),
        key: contact.into(),
        payload: serde_json::to_vec(&ev).unwrap(),
        occurred_at: t(at),
    }
}

/// Polls `cond` every 50 ms until it holds, or panics after `secs` with `what`.
pub async fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The tests' HTTP client. reqwest is built with the embedded broker's `rustls-no-provider`
/// feature (one feature set for the product and the tests), so a TLS crypto provider must be
/// installed before a client is built, though every URL here is plain HTTP on loopback.
pub fn http() -> reqwest::Client {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // Err only if another provider was installed first, which serves as well.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
    reqwest::Client::new()
}

/// GETs `url` with the admin key.
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let resp = http().get(url).bearer_auth(ADMIN_KEY).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// Checks `contacts/{contact}/score-history` under `business_url` against the contact page:
/// a chain of changes (each starting where the one before ended, the first from nothing)
/// ending at the current score; a bad limit is a 400 naming it. How
/// many changes there are depends on how the stream was batched, so that is not checked.
pub async fn assert_score_history(business_url: &str, contact: &str) {
    let (code, page) = get_json(&format!("{business_url}/contacts/{contact}")).await;
    assert_eq!(code, 200, "{page}");
    let url = format!("{business_url}/contacts/{contact}/score-history");
    let (code, h) = get_json(&url).await;
    assert_eq!(code, 200, "{h}");
    let points = h["points"].as_array().unwrap();
    assert!(!points.is_empty(), "{h}");
    assert_eq!(points[0]["previous"], serde_json::Value::Null, "{h}");
    for pair in points.windows(2) {
        assert_eq!(pair[1]["previous"], pair[0]["score"], "{h}");
    }
    let last = points.last().unwrap();
    assert_eq!(last["score"], page["meta"]["leadScore"], "{h}");
    assert_eq!(h["leadScore"], page["meta"]["leadScore"], "{h}");
    let (code, err) = get_json(&format!("{url}?limit=0")).await;
    assert_eq!(code, 400, "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
}

/// A ClickHouse config on a database of this test's own (created by the migrations).
pub fn clickhouse() -> sinks::clickhouse::ClickHouseConfig {
    let url = std::env::var("KEYFLOW_TEST_CLICKHOUSE_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8123".into());
    sinks::clickhouse::ClickHouseConfig {
        url: Some(url),
        database: format!("kf_test_{}", uuid_like().replace('-', "_")),
        cache_ttl_ms: 0,
        ..Default::default()
    }
}

/// A client on the test database (reads bypass any proxy the processor goes through).
pub fn ch_client(cfg: &sinks::clickhouse::ClickHouseConfig) -> clickhouse::Client {
    cfg.client(cfg.url.as_deref().unwrap())
}

pub async fn drop_database(cfg: &sinks::clickhouse::ClickHouseConfig) {
    let server = clickhouse::Client::default().with_url(cfg.url.as_deref().unwrap());
    let _ = server
        .query(&format!("DROP DATABASE IF EXISTS {}", cfg.database))
        .execute()
        .await;
}

/// Every message on the signals topic so far, parsed (reads until the topic is quiet for 1 s).
pub async fn read_signals(bootstrap: &str, topic: &str) -> Vec<serde_json::Value> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::Message;
    let consumer: StreamConsumer = client_config(bootstrap, &Default::default())
        .set("group.id", format!("signals-reader-{}", uuid_like()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let mut idle_deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(idle_deadline, consumer.recv()).await {
            Ok(Ok(m)) => {
                out.push(serde_json::from_slice(m.payload().unwrap_or_default()).unwrap());
                idle_deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            }
            Ok(Err(e)) => panic!("reading signals: {e}"),
            Err(_) => break,
        }
    }
    out
}
