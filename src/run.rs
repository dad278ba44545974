//! Wiring for `keyflow run`: broker (embedded or external), topics, store, processor and API,
//! started in that order and stopped in reverse.

use std::sync::Arc;

use anyhow::Context;
use pipeline::clock::SharedClock;
use pipeline::decode::Decoder;
use pipeline::engine::Engine;
use pipeline::kafka::broker::{self, EmbeddedBroker};
use pipeline::kafka::dlq::DeadLetters;
use pipeline::kafka::rekey::Rekey;
use pipeline::kafka::signals::SignalProducer;
use pipeline::kafka::{client_config, source, topics};
use pipeline::processor::Processor;
use pipeline::sink::ResultSink;
use pipeline::status::ProcessorStatus;
use sinks::clickhouse::{migrate, ClickHouseReader, ClickHouseSink};
use sinks::read::ProfileReader;
use sinks::store::EmbeddedStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// A running KeyFlow: stop it with [`Running::stop`].
pub struct Running {
    pub api_addr: std::net::SocketAddr,
    /// The admin key in force (configured or generated), for the demo's Cockpit link.
    pub admin_key: Option<api::Secret>,
    /// `bootstrap.servers` of the broker in use.
    pub bootstrap: String,
    /// The embedded store, unless ClickHouse is the store.
    pub store: Option<EmbeddedStore>,
    pub status: Arc<ProcessorStatus>,
    broker: Option<EmbeddedBroker>,
    shutdown: CancellationToken,
    processor: JoinHandle<Result<(), pipeline::processor::ProcessorError>>,
    api: JoinHandle<std::io::Result<()>>,
}

/// Starts everything `cfg` asks for.
pub async fn start(cfg: &Config, clock: SharedClock) -> anyhow::Result<Running> {
    start_with(cfg, clock, |sink| sink).await
}

/// The store the processor writes and the reader the API serves from.
async fn stores(
    cfg: &Config,
) -> anyhow::Result<(
    Arc<dyn ResultSink>,
    Arc<dyn ProfileReader>,
    Option<EmbeddedStore>,
)> {
    match &cfg.clickhouse.url {
        Some(url) => {
            migrate::migrate(&cfg.clickhouse).await?;
            let sink = ClickHouseSink::new(&cfg.clickhouse, url);
            let ttl = std::time::Duration::from_millis(cfg.clickhouse.cache_ttl_ms);
            let reader = ClickHouseReader::new(sink.client().clone(), ttl);
            tracing::info!(%url, database = %cfg.clickhouse.database, "ClickHouse is the store");
            Ok((Arc::new(sink), Arc::new(reader), None))
        }
        None => {
            let store = EmbeddedStore::open(cfg.data_dir.join("store"))?;
            Ok((
                Arc::new(store.clone()),
                Arc::new(store.clone()),
                Some(store),
            ))
        }
    }
}

/// The `[api]` settings in force: as configured, or, without any key, with an admin key
/// generated once into `<data_dir>/admin.key` (mode 0600) and reused after. The key itself is
/// never logged; the log names the file.
fn api_keys(cfg: &Config) -> anyhow::Result<api::ApiConfig> {
    let mut api = cfg.api.clone();
    if api.has_keys() {
        return Ok(api);
    }
    let path = cfg.data_dir.join("admin.key");
    let key = match std::fs::read_to_string(&path) {
        Ok(k) if k.trim().len() >= api::auth::MIN_KEY_LEN => k.trim().to_owned(),
        _ => {
            let bytes: [u8; 24] = rand::random();
            let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            write_private(&path, &key)
                .with_context(|| format!("cannot write {}", path.display()))?;
            key
        }
    };
    tracing::warn!(file = %path.display(), "no API key configured: using the admin key in this file");
    api.admin_key = Some(api::Secret::new(key));
    Ok(api)
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(text.as_bytes())
}

/// Serves the API from ClickHouse alone until ctrl-c: an API replica needs no processor.
pub async fn serve_api_only(cfg: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        cfg.clickhouse.url.is_some(),
        "keyflow api serves from ClickHouse: set --clickhouse-url"
    );
    let (_, reader, _) = stores(cfg).await?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let keys = api_keys(cfg)?;
    let status = Arc::new(ProcessorStatus::default());
    status.set_ready(true);
    let listener = tokio::net::TcpListener::bind(cfg.api_addr).await?;
    println!(
        "KeyFlow API (ClickHouse) on http://{}",
        listener.local_addr()?
    );
    api::serve(
        listener,
        api::AppState::new(reader, status, keys, Arc::new(cfg.rules()?)),
        crate::shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// [`start`], with the processor's sink passed through `wrap` (tests inject faults there).
pub async fn start_with(
    cfg: &Config,
    clock: SharedClock,
    wrap: impl FnOnce(Arc<dyn ResultSink>) -> Arc<dyn ResultSink>,
) -> anyhow::Result<Running> {
    // Each metric file's output against the profile section it fills, before anything starts.
    let rules = cfg.rules()?;
    let engine = Engine::with_rules(rules.clone()).with_interactions(cfg.interactions.clone());
    engine
        .verify()
        .await
        .context("the metric files do not match the profile")?;
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    let (bootstrap, broker) = match &cfg.brokers {
        Some(b) => (b.clone(), None),
        None => {
            let broker =
                EmbeddedBroker::start(cfg.broker_addr, &broker::db_in(&cfg.data_dir)).await?;
            (broker.bootstrap(), Some(broker))
        }
    };
    let client = client_config(&bootstrap, &cfg.kafka);
    if broker.is_some() {
        topics::ensure_topics(&client, &cfg.topics)
            .await
            .context("creating topics on the embedded broker")?;
    }
    let partitions = topics::check_copartitioned(&client, &cfg.topics).await?;
    tracing::info!(%bootstrap, partitions, "input topics are co-partitioned");
    let rekey = cfg.topics.rekey_for(&cfg.processing.group_id);
    topics::ensure_rekey(&client, &rekey, partitions).await?;

    let (sink, reader, store) = stores(cfg).await?;
    let status = Arc::new(ProcessorStatus::default());
    let [contacts, invoices, bookings, tasks] = cfg.topics.inputs();
    let (consumer, context) = source::subscribe(
        &client,
        &cfg.processing.group_id,
        &[contacts, invoices, bookings, tasks, &rekey],
    )?;
    let processor = Processor::new(
        consumer,
        context,
        DeadLetters::new(&client, &cfg.topics.dlq)?,
        SignalProducer::new(&client, &cfg.topics.signals)?,
        Rekey::new(&client, &rekey, partitions)?,
        Decoder::new(
            cfg.ingest.sources.iter().cloned(),
            cfg.ingest.max_event_bytes,
        ),
        engine,
        clock,
        wrap(sink),
        cfg.processing.clone(),
        status.clone(),
    );
    let shutdown = CancellationToken::new();
    let processor = tokio::spawn(processor.run(shutdown.clone()));

    let listener = tokio::net::TcpListener::bind(cfg.api_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set another with --api-addr)",
                cfg.api_addr
            )
        })?;
    let api_addr = listener.local_addr()?;
    let mut keys = api_keys(cfg)?;
    // The processor's evaluation runs on this runtime too: its queue delay is not API overload.
    keys.limits.max_queue_delay_ms = 0;
    let admin_key = keys.admin_key.clone();
    let state = api::AppState::new(reader, status.clone(), keys, Arc::new(rules));
    let api_shutdown = shutdown.clone();
    let api = tokio::spawn(api::serve(listener, state, async move {
        api_shutdown.cancelled().await
    }));
    tracing::info!(%api_addr, "API listening");
    Ok(Running {
        api_addr,
        admin_key,
        bootstrap,
        store,
        status,
        broker,
        shutdown,
        processor,
        api,
    })
}

impl Running {
    /// Resolves when the processor stops by itself (a permanent error).
    pub async fn processor_stopped(&mut self) -> anyhow::Result<()> {
        let result = (&mut self.processor).await;
        // Leave a finished handle behind so `stop` can still await one.
        self.processor = tokio::spawn(async { Ok(()) });
        result.context("processor task panicked")??;
        Ok(())
    }

    /// Stops the API (draining requests), the processor (finishing its batch), then the broker.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let api = self.api.await;
        let processor = self.processor.await;
        if let Some(b) = self.broker {
            b.stop().await;
        }
        api.context("api task panicked")??;
        processor.context("processor task panicked")??;
        Ok(())
    }

    /// The embedded store; panics when ClickHouse is the store.
    pub fn embedded(&self) -> &EmbeddedStore {
        self.store.as_ref().expect("the embedded store is in use")
    }

    /// The embedded broker, when one runs.
    pub fn broker(&self) -> Option<&EmbeddedBroker> {
        self.broker.as_ref()
    }
}
