//! `keyflow demo`: everything on embedded defaults, fed a synthetic stream through the Kafka
//! protocol, with the API URL and a short live summary printed as it runs.

pub mod generator;

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use pipeline::clock::SharedClock;
use pipeline::config::TopicsConfig;
use pipeline::event::TopicFamily;
use pipeline::status::ProcessorStatus;
use rand::SeedableRng;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::config::Config;
use generator::{DemoMessage, DemoSpec};

/// The topic a message of `family` goes to.
pub fn topic_for(topics: &TopicsConfig, family: TopicFamily) -> &str {
    match family {
        TopicFamily::Contacts => &topics.contacts,
        TopicFamily::Invoices => &topics.invoices,
        TopicFamily::Bookings => &topics.bookings,
        TopicFamily::Tasks => &topics.tasks,
    }
}

/// A producer for feeding input topics (keyed by contact, acks from all replicas).
pub fn producer(bootstrap: &str) -> anyhow::Result<FutureProducer> {
    producer_with(ClientConfig::new().set("bootstrap.servers", bootstrap))
}

/// [`producer`] on a client configuration of its own (`[kafka]` pass-through settings applied).
pub fn producer_with(client: &mut ClientConfig) -> anyhow::Result<FutureProducer> {
    Ok(client
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("message.timeout.ms", "30000")
        .create()?)
}

/// Produces every message and waits until all are acknowledged.
pub async fn produce_all(
    producer: &FutureProducer,
    topics: &TopicsConfig,
    messages: &[DemoMessage],
) -> anyhow::Result<()> {
    for chunk in messages.chunks(5_000) {
        let mut pending = Vec::with_capacity(chunk.len());
        for m in chunk {
            let record = FutureRecord::to(topic_for(topics, m.family))
                .key(&m.key)
                .payload(&m.payload);
            pending.push(producer.send_result(record).map_err(|(e, _)| e)?);
        }
        for p in pending {
            p.await.context("delivery cancelled")?.map_err(|(e, _)| e)?;
        }
    }
    producer.flush(Duration::from_secs(10))?;
    Ok(())
}

/// Runs the demo until ctrl-c.
pub async fn run(
    cfg: &Config,
    clock: SharedClock,
    spec: DemoSpec,
    live_rate: u32,
) -> anyhow::Result<()> {
    let mut running = crate::run::start(cfg, clock.clone()).await?;
    let url = format!("http://{}", running.api_addr);
    let history = generator::generate(&spec, clock.now());
    println!(
        "KeyFlow demo: {} businesses, {} contacts, {} events of history",
        spec.businesses,
        spec.businesses * spec.contacts_per_business,
        history.len()
    );
    // Like a notebook server's login link: the key rides in the fragment, which the browser
    // never sends, so it stays out of request logs; the page moves it to session storage.
    let key = running.admin_key.as_ref().map_or("", |k| k.expose());
    println!("Cockpit: {url}/#business=lumen-salon&key={key}");
    println!("API:     {url}/v1/businesses/lumen-salon/crm/highlights (Authorization: Bearer <key>; {url}/openapi.json)");
    let producer = producer(&running.bootstrap)?;
    produce_all(&producer, &cfg.topics, &history).await?;
    println!("history produced; streaming {live_rate} live events/s (ctrl-c to stop)");

    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut summary = tokio::time::interval(Duration::from_secs(5));
    let per_tick = (live_rate / 5).max(1) as usize;
    let stop = crate::shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            res = running.processor_stopped() => { res?; break; }
            _ = tick.tick(), if live_rate > 0 => {
                let batch: Vec<DemoMessage> = (0..per_tick).map(|_| { seq += 1; generator::live(&spec, &mut rng, clock.now(), seq) }).collect();
                produce_all(&producer, &cfg.topics, &batch).await?;
            }
            _ = summary.tick() => print_summary(&running.status, running.store.as_ref()),
        }
    }
    running.stop().await
}

fn print_summary(status: &ProcessorStatus, store: Option<&sinks::store::EmbeddedStore>) {
    let index = store.map(|s| s.index());
    let top = index
        .as_ref()
        .and_then(|i| i.top("lumen-salon", 3))
        .unwrap_or_default()
        .iter()
        .map(|p| {
            format!(
                "{} ({})",
                p.name.as_deref().unwrap_or(&p.contact_id),
                p.lead_score
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "events in {:>7} | dead letters {:>3} | contacts {:>5} | lag {:>6} | ready {} | lumen-salon top: {}",
        ProcessorStatus::get(&status.events_in),
        ProcessorStatus::get(&status.dead_letters),
        index.as_ref().map_or(0, |i| i.len()),
        status.lag.load(Ordering::Relaxed),
        status.is_ready(),
        top
    );
}
