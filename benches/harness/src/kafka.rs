//! Through the broker: N generated events produced to an embedded Tansu broker (SQLite storage),
//! then read by a bare rdkafka consumer (the limit: every message fetched and dropped), by the
//! pipeline into the embedded store and by the pipeline into ClickHouse, each in its own consumer
//! group from the start of the topics. Then freshness: with the embedded pipeline caught up,
//! a live stream at a fixed rate plus probe events, each timed from its send until the API shows
//! the score it changed (and until the broker acked it). Last, the freshness limit: the same
//! stream and probes with no pipeline running, timed until a bare consumer receives them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use pipeline::event::{BookingRef, ContactCreated, Event, Payload, SCHEMA_VERSION};
use pipeline::kafka::broker::EmbeddedBroker;
use pipeline::kafka::{client_config, topics};
use pipeline::status::{ProcessorStatus, Stage};
use rand::SeedableRng;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use serde::{Deserialize, Serialize};

use super::engine::{bench_now, BUSINESSES};
use super::BenchArgs;
use keyflow::config::Config;
use keyflow::demo::generator::{generate, live, DemoMessage, DemoSpec};
use keyflow::demo::{produce_all, producer, topic_for};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    pub what: String,
    pub messages: u64,
    pub seconds: f64,
    pub per_s: f64,
    /// For a pipeline: seconds its processor spent in each stage over the run (stage name,
    /// seconds), from `ProcessorStatus::busy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub busy: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KafkaResult {
    pub produce: Option<Throughput>,
    pub limit: Option<Throughput>,
    pub embedded: Option<Throughput>,
    pub clickhouse: Option<Throughput>,
    pub clickhouse_error: Option<String>,
    pub freshness: Option<Freshness>,
    /// The same live stream and probes read by a bare consumer, no pipeline running: the
    /// freshness limit of the broker.
    #[serde(default)]
    pub freshness_limit: Option<Freshness>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Freshness {
    pub rate: u32,
    pub seconds: u64,
    pub produced: u64,
    pub probes: u64,
    pub timed_out: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Send -> the broker's ack (acks=all) of the same probes: p50, p99.
    #[serde(default)]
    pub ack_ms: Option<(f64, f64)>,
    /// Micro-batches the processor committed during the live stream.
    #[serde(default)]
    pub batches: u64,
    /// Seconds the processor spent in each stage during the live stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub busy: Vec<(String, f64)>,
}

const KEY: &str = "bench-admin-key-0123456789";

fn free_addr() -> anyhow::Result<std::net::SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The defaults with the `KEYFLOW_*` environment on top, as `keyflow run` reads them (no file):
/// `KEYFLOW_PROCESSING__BATCH_LINGER_MS=20` or `KEYFLOW_KAFKA__FETCH_MAX_BYTES=...` apply to the
/// bench's pipelines too.
fn settings() -> anyhow::Result<Config> {
    Config::load(None, &keyflow::config::Overrides::default())
}

/// A processor configuration over the shared broker, in its own group and data directory.
fn config(dir: &Path, bootstrap: &str, group: &str) -> anyhow::Result<Config> {
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        brokers: Some(bootstrap.to_owned()),
        api_addr: free_addr()?,
        ..settings()?
    };
    cfg.processing.group_id = group.to_owned();
    cfg.api.admin_key = Some(api::Secret::new(KEY));
    Ok(cfg)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

/// The stream for this phase: the demo generator at the size that gives about `n` events.
fn stream(args: &BenchArgs) -> Vec<DemoMessage> {
    // The demo averages about 12.8 events per contact.
    let contacts = (args.events as f64 / 12.8).ceil() as usize;
    let spec = DemoSpec {
        seed: args.seed,
        businesses: BUSINESSES,
        contacts_per_business: contacts.div_ceil(BUSINESSES),
        ..Default::default()
    };
    let mut all = generate(&spec, bench_now());
    all.truncate(args.events);
    all
}

pub async fn run(args: &BenchArgs, work: &Path, p: &impl Fn(&str)) -> anyhow::Result<KafkaResult> {
    let mut r = KafkaResult::default();
    let broker = EmbeddedBroker::start(free_addr()?, &pipeline::kafka::broker::db_in(work)).await?;
    let bootstrap = broker.bootstrap();
    let base = settings()?;
    topics::ensure_topics(&client_config(&bootstrap, &base.kafka), &base.topics).await?;
    let messages = stream(args);
    let n = messages.len() as u64;
    p(&format!(
        "kafka: producing {n} events to the embedded broker ({bootstrap})"
    ));
    let t = Instant::now();
    produce_all(&producer(&bootstrap)?, &base.topics, &messages).await?;
    let produce = throughput("produce (acks=all)", n, t.elapsed().as_secs_f64());
    p(&format!("kafka: produced at {:.0} events/s", produce.per_s));
    r.produce = Some(produce);
    drop(messages);

    let limit = bare_consumer(&bootstrap, &base, n).await?;
    p(&format!(
        "kafka: bare consumer (the limit): {:.0} messages/s",
        limit.per_s
    ));
    r.limit = Some(limit);

    p("kafka: pipeline into the embedded store");
    let cfg = config(&work.join("pipe-embedded"), &bootstrap, "bench-embedded")?;
    let running =
        keyflow::run::start(&cfg, std::sync::Arc::new(pipeline::clock::SystemClock)).await?;
    let embedded = drain(&running.status, n, "pipeline -> embedded store").await?;
    p(&format!(
        "kafka: pipeline -> embedded store: {:.0} events/s ({:.0}% of the limit)",
        embedded.per_s,
        100.0 * embedded.per_s / r.limit.as_ref().map_or(f64::NAN, |l| l.per_s)
    ));
    r.embedded = Some(embedded);

    r.freshness = Some(freshness_phase(args, Probed::Api(&running), &base, p).await?);
    running.stop().await?;

    p("kafka: pipeline into ClickHouse");
    match clickhouse_pipeline(args, work, &bootstrap, n).await {
        Ok(t) => {
            p(&format!(
                "kafka: pipeline -> ClickHouse: {:.0} events/s ({:.0}% of the limit)",
                t.per_s,
                100.0 * t.per_s / r.limit.as_ref().map_or(f64::NAN, |l| l.per_s)
            ));
            r.clickhouse = Some(t);
        }
        Err(e) => {
            p(&format!("kafka: ClickHouse pipeline skipped: {e:#}"));
            r.clickhouse_error = Some(format!("{e:#}"));
        }
    }

    r.freshness_limit = Some(freshness_phase(args, Probed::Broker(&bootstrap), &base, p).await?);
    broker.stop().await;
    Ok(r)
}

fn throughput(what: &str, messages: u64, seconds: f64) -> Throughput {
    Throughput {
        what: what.into(),
        messages,
        seconds,
        per_s: messages as f64 / seconds,
        busy: Vec::new(),
    }
}

/// Reads every input topic from the start and drops the messages: the broker's and the client's
/// limit on this machine. Timed from the first message to the last, like the pipeline.
async fn bare_consumer(bootstrap: &str, base: &Config, n: u64) -> anyhow::Result<Throughput> {
    let mut cfg = client_config(bootstrap, &base.kafka);
    cfg.set("group.id", "bench-bare")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = cfg.create()?;
    consumer.subscribe(&base.topics.inputs())?;
    tokio::task::spawn_blocking(move || {
        let (mut seen, mut first) = (0u64, None);
        let deadline = Instant::now() + Duration::from_secs(600);
        while seen < n && Instant::now() < deadline {
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                m?;
                first.get_or_insert_with(Instant::now);
                seen += 1;
            }
        }
        anyhow::ensure!(seen == n, "bare consumer saw {seen} of {n} messages");
        let secs = first.map_or(f64::NAN, |f| f.elapsed().as_secs_f64());
        Ok(throughput("bare rdkafka consumer", n, secs))
    })
    .await?
}

/// Waits until the processor has taken in all `n` messages (accepted, duplicate or
/// dead-lettered, all durably handled); timed from its first message.
async fn drain(status: &ProcessorStatus, n: u64, what: &str) -> anyhow::Result<Throughput> {
    let handled = || {
        ProcessorStatus::get(&status.events_in)
            + ProcessorStatus::get(&status.duplicates)
            + ProcessorStatus::get(&status.dead_letters)
    };
    let busy = || busy_now(status).0;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut first = None;
    let mut busy_at_first = busy();
    let mut last_print = Instant::now();
    loop {
        let h = handled();
        if h > 0 && first.is_none() {
            first = Some((Instant::now(), h));
            busy_at_first = busy();
        }
        if h >= n {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "{what}: only {h} of {n} handled");
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            println!("  {what}: {h}/{n}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (t0, h0) = first.expect("something was handled");
    let mut t = throughput(what, n - h0, t0.elapsed().as_secs_f64());
    t.busy = busy_between(&busy_at_first, &busy());
    println!("  {what}: busy {}", show_busy(&t.busy));
    Ok(t)
}

/// The processor's busy seconds per stage (like `Stage::ALL`) and its committed batches.
fn busy_now(status: &ProcessorStatus) -> ([f64; 6], u64) {
    (
        Stage::ALL.map(|s| status.busy(s)),
        ProcessorStatus::get(&status.batches),
    )
}

fn busy_between(before: &[f64; 6], after: &[f64; 6]) -> Vec<(String, f64)> {
    Stage::ALL
        .iter()
        .zip(before.iter().zip(after))
        .map(|(s, (b, a))| (s.name().to_owned(), a - b))
        .collect()
}

pub fn show_busy(busy: &[(String, f64)]) -> String {
    busy.iter()
        .map(|(s, secs)| format!("{s} {secs:.2} s"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn clickhouse_pipeline(
    args: &BenchArgs,
    work: &Path,
    bootstrap: &str,
    n: u64,
) -> anyhow::Result<Throughput> {
    let mut cfg = config(&work.join("pipe-clickhouse"), bootstrap, "bench-clickhouse")?;
    cfg.clickhouse.url = Some(args.clickhouse.clone());
    cfg.clickhouse.database = "keyflow_bench".into();
    // Dropped and created from the default database: ClickHouse refuses a session in one that
    // does not exist yet.
    let mut admin = cfg.clickhouse.clone();
    admin.database = "default".into();
    let ch = admin.client(&args.clickhouse);
    ch.query("DROP DATABASE IF EXISTS keyflow_bench")
        .execute()
        .await
        .context("ClickHouse does not answer")?;
    let running =
        keyflow::run::start(&cfg, std::sync::Arc::new(pipeline::clock::SystemClock)).await?;
    let t = drain(&running.status, n, "pipeline -> ClickHouse").await;
    running.stop().await?;
    ch.query("DROP DATABASE IF EXISTS keyflow_bench")
        .execute()
        .await?;
    t
}

fn event(id: String, contact: &str, payload: Payload) -> (String, Vec<u8>) {
    let ev = Event {
        schema_version: SCHEMA_VERSION,
        event_id: id,
        business_id: "lumen-salon".into(),
        contact_id: contact.into(),
        occurred_at: chrono::Utc::now(),
        source: "manual".into(),
        payload,
    };
    let family = ev.payload.family();
    (
        topic_for(&Config::default().topics, family).to_owned(),
        serde_json::to_vec(&ev).expect("serialises"),
    )
}

/// Where the freshness probes are timed to.
enum Probed<'a> {
    /// The API of a running pipeline: probe contacts (never touched by the live stream) whose
    /// completed-booking count each probe raises by one, timed until the API shows it.
    Api(&'a keyflow::run::Running),
    /// A bare rdkafka consumer of the probes' topic, with no pipeline running: the freshness
    /// limit, the share of the delay that is the broker's.
    Broker(&'a str),
}

/// [`freshness`] with its progress lines.
async fn freshness_phase(
    args: &BenchArgs,
    probed: Probed<'_>,
    base: &Config,
    p: &impl Fn(&str),
) -> anyhow::Result<Freshness> {
    let (label, reader, missed) = match probed {
        Probed::Api(_) => ("freshness", "the API", "timed out"),
        Probed::Broker(_) => ("freshness limit", "a bare consumer", "not seen"),
    };
    p(&format!(
        "{label}: {} events/s for {} s with probes, read by {reader}",
        args.fresh_rate, args.fresh_seconds
    ));
    let f = freshness(args, probed, base).await?;
    p(&format!(
        "{label}: p50 {:.0} ms, p99 {:.0} ms over {} probes ({} {missed})",
        f.p50_ms, f.p99_ms, f.probes, f.timed_out
    ));
    Ok(f)
}

/// A live stream at `args.fresh_rate` events/s for `args.fresh_seconds`, with a probe event
/// every 50 ms timed from its send until `probed` sees it (and until the broker acks it).
async fn freshness(
    args: &BenchArgs,
    probed: Probed<'_>,
    base: &Config,
) -> anyhow::Result<Freshness> {
    const PROBES: usize = 16;
    // Each probe in flight reads the API this often: at 2 ms, the ~20 probes in flight of a
    // 1 s freshness made 10,000 requests/s against the process measured (on 2 cores). A probe
    // is seen up to this much late, so the figures err on the slow side.
    const PROBE_POLL: Duration = Duration::from_millis(10);
    let bootstrap = match probed {
        Probed::Api(running) => running.bootstrap.as_str(),
        Probed::Broker(bootstrap) => bootstrap,
    };
    let prod = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("acks", "all")
        .create::<rdkafka::producer::FutureProducer>()?;
    let probes: Vec<String> = (0..PROBES).map(|i| format!("bench-probe-{i}")).collect();
    let (http, status) = match probed {
        Probed::Api(running) => {
            let http = reqwest_like::Http::new(&format!("http://{}", running.api_addr), KEY);
            create_probe_contacts(&prod, &http, &probes).await?;
            (Some(http), Some(&running.status))
        }
        Probed::Broker(_) => (None, None),
    };
    // The topic the probes go to.
    let (bookings, _) = event(
        String::new(),
        "",
        Payload::BookingCompleted(BookingRef {
            booking_id: String::new(),
        }),
    );
    let watcher = match probed {
        Probed::Broker(bootstrap) => Some(ProbeWatcher::start(bootstrap, base, &bookings)?),
        Probed::Api(_) => None,
    };

    let spec = DemoSpec {
        seed: args.seed,
        businesses: BUSINESSES,
        contacts_per_business: (args.events as f64 / 12.8 / BUSINESSES as f64).ceil() as usize,
        ..Default::default()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let before = status.map(|s| busy_now(s));
    let produced = Arc::new(AtomicU64::new(0));
    let total = u64::from(args.fresh_rate) * args.fresh_seconds;
    let start = Instant::now();
    let mut probe_tasks = Vec::new();
    let mut expected = [0i64; PROBES];
    let probe_every = Duration::from_millis(50);
    let mut next_probe = start;
    let mut sent = 0u64;
    let mut seq = 0u64;
    while sent < total {
        let due = (start.elapsed().as_secs_f64() * f64::from(args.fresh_rate)) as u64;
        while sent < due.min(total) {
            seq += 1;
            let m = live(&spec, &mut rng, chrono::Utc::now(), seq);
            let record = FutureRecord::to(topic_for(&base.topics, m.family))
                .key(&m.key)
                .payload(&m.payload);
            let delivery = prod.send_result(record).map_err(|(e, _)| e)?;
            let produced = produced.clone();
            tokio::spawn(async move {
                if let Ok(Ok(_)) = delivery.await {
                    produced.fetch_add(1, Ordering::Relaxed);
                }
            });
            sent += 1;
        }
        if Instant::now() >= next_probe {
            next_probe += probe_every;
            let i = probe_tasks.len() % PROBES;
            expected[i] += 1;
            let c = probes[i].clone();
            let id = format!("{c}-done-{}", expected[i]);
            let (topic, payload) = event(
                id.clone(),
                &c,
                Payload::BookingCompleted(BookingRef {
                    booking_id: format!("{c}-b{}", expected[i]),
                }),
            );
            let sent_at = Instant::now();
            let delivery = prod
                .send_result(FutureRecord::to(&topic).key(&c).payload(&payload))
                .map_err(|(e, _)| e)?;
            let (http, want) = (http.clone(), expected[i]);
            probe_tasks.push(tokio::spawn(async move {
                let acked = matches!(delivery.await, Ok(Ok(_)));
                let ack_ms = acked.then(|| sent_at.elapsed().as_secs_f64() * 1000.0);
                let Some(http) = http else {
                    return Probe {
                        id,
                        sent_at,
                        ack_ms,
                        api_ms: None,
                    };
                };
                let deadline = sent_at + Duration::from_secs(10);
                loop {
                    if http.completed_bookings(&c).await.unwrap_or(0) >= want {
                        let api_ms = Some(sent_at.elapsed().as_secs_f64() * 1000.0);
                        return Probe {
                            id,
                            sent_at,
                            ack_ms,
                            api_ms,
                        };
                    }
                    if Instant::now() > deadline {
                        return Probe {
                            id,
                            sent_at,
                            ack_ms,
                            api_ms: None,
                        };
                    }
                    tokio::time::sleep(PROBE_POLL).await;
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut probes_done = Vec::new();
    for t in probe_tasks {
        probes_done.push(t.await?);
    }
    // A probe is seen by the watcher soon after the API would see it; give the last ones time.
    let seen = match watcher {
        Some(w) => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            w.stop().await?
        }
        None => HashMap::new(),
    };
    let mut lat: Vec<f64> = probes_done
        .iter()
        .filter_map(|p| match &http {
            Some(_) => p.api_ms,
            None => seen
                .get(&p.id)
                .map(|at| (*at - p.sent_at).as_secs_f64() * 1000.0),
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let mut acks: Vec<f64> = probes_done.iter().filter_map(|p| p.ack_ms).collect();
    acks.sort_by(f64::total_cmp);
    let timed_out = probes_done.len() as u64 - lat.len() as u64;
    let (busy, batches) = match (status, before) {
        (Some(s), Some((busy_before, batches_before))) => {
            let (busy_after, batches_after) = busy_now(s);
            let busy = busy_between(&busy_before, &busy_after);
            let batches = batches_after - batches_before;
            println!("  freshness: {batches} batches; busy {}", show_busy(&busy));
            (busy, batches)
        }
        _ => (Vec::new(), 0),
    };
    println!(
        "  freshness: the broker acked the probes (acks=all) after p50 {:.0} ms, p99 {:.0} ms",
        quantile(&acks, 0.5),
        quantile(&acks, 0.99)
    );
    Ok(Freshness {
        batches,
        busy,
        rate: args.fresh_rate,
        seconds: args.fresh_seconds,
        produced: produced.load(Ordering::Relaxed),
        probes: probes_done.len() as u64,
        timed_out,
        p50_ms: quantile(&lat, 0.5),
        p99_ms: quantile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
        ack_ms: Some((quantile(&acks, 0.5), quantile(&acks, 0.99))),
    })
}

/// One probe's send time and what became of it.
struct Probe {
    id: String,
    sent_at: Instant,
    /// Send -> the broker's ack (acks=all), unless the send failed.
    ack_ms: Option<f64>,
    /// Send -> the API showing the probe, unless it timed out or nobody asked the API.
    api_ms: Option<f64>,
}

/// Creates the probe contacts and waits until the API knows each.
async fn create_probe_contacts(
    prod: &rdkafka::producer::FutureProducer,
    http: &reqwest_like::Http,
    probes: &[String],
) -> anyhow::Result<()> {
    for c in probes {
        let (topic, payload) = event(
            format!("{c}-created"),
            c,
            Payload::ContactCreated(ContactCreated {
                name: format!("Probe {c}"),
                ..Default::default()
            }),
        );
        prod.send(
            FutureRecord::to(&topic).key(c).payload(&payload),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)?;
    }
    for c in probes {
        let deadline = Instant::now() + Duration::from_secs(60);
        while http.completed_bookings(c).await.is_none() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "probe contact {c} never appeared"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// A bare rdkafka consumer of the probes' topic from its end, noting when each probe arrives
/// (by event id).
struct ProbeWatcher {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<HashMap<String, Instant>>>,
}

impl ProbeWatcher {
    fn start(bootstrap: &str, base: &Config, topic: &str) -> anyhow::Result<Self> {
        let mut cfg = client_config(bootstrap, &base.kafka);
        cfg.set("group.id", "bench-probe-watcher")
            .set("enable.auto.commit", "false");
        let consumer: BaseConsumer = cfg.create()?;
        let meta = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut assignment = rdkafka::TopicPartitionList::new();
        for t in meta.topics() {
            for p in t.partitions() {
                assignment.add_partition_offset(topic, p.id(), rdkafka::Offset::End)?;
            }
        }
        consumer.assign(&assignment)?;
        // Resolve the end offsets before the first probe is sent.
        let _ = consumer.poll(Duration::from_millis(500));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut seen = HashMap::new();
            while !stopped.load(Ordering::Relaxed) {
                let Some(m) = consumer.poll(Duration::from_millis(50)) else {
                    continue;
                };
                let at = Instant::now();
                let m = m?;
                if !m.key().is_some_and(|k| k.starts_with(b"bench-probe-")) {
                    continue;
                }
                if let Some(Ok(e)) = m.payload().map(serde_json::from_slice::<Event>) {
                    seen.insert(e.event_id, at);
                }
            }
            Ok(seen)
        });
        Ok(Self { stop, task })
    }

    async fn stop(self) -> anyhow::Result<HashMap<String, Instant>> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await?
    }
}

/// The few API reads the freshness probes make.
mod reqwest_like {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::{connect::HttpConnector, Client};
    use hyper_util::rt::TokioExecutor;

    #[derive(Clone)]
    pub struct Http {
        client: Client<HttpConnector, Empty<Bytes>>,
        base: String,
        key: String,
    }

    impl Http {
        pub fn new(base: &str, key: &str) -> Self {
            Self {
                client: Client::builder(TokioExecutor::new()).build_http(),
                base: base.into(),
                key: key.into(),
            }
        }

        /// The contact's completed-booking count as the API shows it, if the contact exists.
        pub async fn completed_bookings(&self, contact: &str) -> Option<i64> {
            let req = hyper::Request::get(format!(
                "{}/v1/businesses/lumen-salon/contacts/{contact}?limit=1",
                self.base
            ))
            .header("authorization", format!("Bearer {}", self.key))
            .body(Empty::new())
            .ok()?;
            let res = self.client.request(req).await.ok()?;
            if !res.status().is_success() {
                return None;
            }
            let body = res.into_body().collect().await.ok()?.to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
            v["factors"]
                .as_array()?
                .iter()
                .find(|f| f["factor"] == "bookings_completed")
                .and_then(|f| f["count"].as_i64())
        }
    }
}
