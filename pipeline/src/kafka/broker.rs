//! The embedded Kafka-compatible broker: Tansu with SQLite storage, started in-process when no
//! external brokers are configured. Clients reach it over the Kafka protocol like any cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use tokio::sync::oneshot;
use tokio::sync::oneshot::error::TryRecvError;
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot prepare broker storage at {path}: {source}")]
    Storage {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("broker address {0} is already in use (set another with --broker-addr)")]
    AddrInUse(SocketAddr),
    #[error("embedded broker failed to start: {0}")]
    Start(String),
}

/// Worker threads of the broker's own runtime.
const BROKER_WORKERS: usize = 2;

/// A running embedded broker. Dropping it stops the broker.
///
/// The broker runs on a tokio runtime of its own, on its own threads: the processor's runtime
/// spends whole micro-batches in CPU-bound DataFusion evaluation, and a broker sharing those
/// workers answered group heartbeats so late under a backlog that the consumer's session
/// expired and the group stalled.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    db: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<()>>,
}

/// The broker's SQLite file inside a data directory's `broker/` folder.
pub const DB_FILE: &str = "tansu.db";

/// Where the embedded broker of a data directory keeps its log: `keyflow run`, the tests and
/// the bench all start it there.
pub fn db_in(data_dir: &Path) -> PathBuf {
    data_dir.join("broker").join(DB_FILE)
}

/// The `sqlite://` URL Tansu resolves to `path`.
///
/// Tansu joins the URL's path onto the working directory after stripping one leading `/`, so an
/// absolute path needs one more slash (`sqlite:////abs/t.db`) to stay absolute.
pub fn sqlite_url(path: &Path) -> Result<Url, BrokerError> {
    let text = path.to_string_lossy();
    let url = if path.is_absolute() {
        format!("sqlite:///{text}")
    } else {
        format!("sqlite://{text}")
    };
    Url::parse(&url).map_err(|e| BrokerError::Start(format!("bad storage path {text}: {e}")))
}

/// Builds the broker and serves until `stop` fires; runs inside the broker's own runtime.
async fn serve(
    addr: SocketAddr,
    db: PathBuf,
    started: oneshot::Sender<Result<(), BrokerError>>,
    stop: oneshot::Receiver<()>,
) {
    let listener = match Url::parse(&format!("tcp://{addr}")) {
        Ok(l) => l,
        Err(e) => {
            let _ = started.send(Err(BrokerError::Start(e.to_string())));
            return;
        }
    };
    let storage = match sqlite_url(&db) {
        Ok(u) => u,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let built = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
        .node_id(tansu_broker::NODE_ID)
        .cluster_id("keyflow")
        .incarnation_id(uuid::Uuid::new_v4())
        .advertised_listener(listener.clone())
        .storage(storage)
        .listener(listener)
        .silent(true)
        .build()
        .await;
    let mut broker = match built {
        Ok(b) => b,
        Err(e) => {
            let _ = started.send(Err(BrokerError::Start(format!("{e:?}"))));
            return;
        }
    };
    let _ = started.send(Ok(()));
    tokio::select! {
        res = broker.serve(tokio::time::Instant::now()) => {
            if let Err(err) = res {
                tracing::error!(cause = ?err, "embedded broker stopped");
            }
        }
        _ = stop => {}
    }
}

impl EmbeddedBroker {
    /// Starts Tansu on `addr` with its SQLite database at `db`, on threads of its own, and waits
    /// until it accepts connections.
    pub async fn start(addr: SocketAddr, db: &Path) -> Result<Self, BrokerError> {
        let db = std::path::absolute(db).map_err(|source| BrokerError::Storage {
            path: db.into(),
            source,
        })?;
        if let Some(dir) = db.parent() {
            std::fs::create_dir_all(dir).map_err(|source| BrokerError::Storage {
                path: dir.into(),
                source,
            })?;
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Err(BrokerError::AddrInUse(addr));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(BROKER_WORKERS)
            .thread_name("tansu")
            .enable_all()
            .build()
            .map_err(|e| BrokerError::Start(format!("broker runtime: {e}")))?;
        let (started_tx, started_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let (stopped_tx, stopped_rx) = oneshot::channel();
        let serve_db = db.clone();
        std::thread::Builder::new()
            .name("tansu-broker".into())
            .spawn(move || {
                runtime.block_on(serve(addr, serve_db, started_tx, stop_rx));
                // Connections still being served are cut here; committed records stay in SQLite.
                runtime.shutdown_timeout(Duration::from_secs(2));
                let _ = stopped_tx.send(());
            })
            .map_err(|e| BrokerError::Start(format!("broker thread: {e}")))?;
        let mut broker = Self {
            addr,
            db,
            stop: Some(stop_tx),
            stopped: Some(stopped_rx),
        };
        match started_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(BrokerError::Start("broker thread ended".into())),
        }
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                tracing::info!(%addr, db = %broker.db.display(), "embedded Tansu broker ready");
                return Ok(broker);
            }
            if broker
                .stopped
                .as_mut()
                .is_some_and(|rx| !matches!(rx.try_recv(), Err(TryRecvError::Empty)))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(BrokerError::Start(format!(
            "broker did not listen on {addr}"
        )))
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the broker keeps its log.
    pub fn db_path(&self) -> &Path {
        &self.db
    }

    /// Stops accepting and serving; committed records stay in SQLite.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), stopped).await;
        }
        // Wait until the port is free again, so a restart can bind it.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored tansu-storage reads a fetch in pages of 2,000 records and looks headers up
    /// through an index (vendor/README.md): one fetch over 5,000 records of one partition, as
    /// a consumer with librdkafka's default 50 MB fetch asks for it, returns every record once,
    /// in order, with its key, value and headers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fetches_span_pages_and_keep_every_header() {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::client::DefaultClientContext;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
        use rdkafka::producer::{FutureProducer, FutureRecord};
        use rdkafka::ClientConfig;

        const N: usize = 5_000;
        let dir = tempfile::tempdir().unwrap();
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap();
        drop(free);
        let broker = EmbeddedBroker::start(addr, &dir.path().join("t.db"))
            .await
            .unwrap();
        let mut client = ClientConfig::new();
        client.set("bootstrap.servers", broker.bootstrap());
        let admin: AdminClient<DefaultClientContext> = client.create().unwrap();
        let created = admin
            .create_topics(
                [&NewTopic::new("paged", 1, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .unwrap();
        assert!(created[0].is_ok(), "{created:?}");

        let producer: FutureProducer = client.clone().set("linger.ms", "20").create().unwrap();
        let value = |i: usize| format!("{}{i}", "v".repeat(1 + i % 300));
        let sends = (0..N).map(|i| {
            let (key, value, producer) = (i.to_string(), value(i), &producer);
            async move {
                let headers = OwnedHeaders::new().insert(Header {
                    key: "n",
                    value: Some(key.as_bytes()),
                });
                producer
                    .send(
                        FutureRecord::to("paged")
                            .key(&key)
                            .payload(&value)
                            .headers(headers),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
            }
        });
        futures::future::try_join_all(sends).await.unwrap();

        let consumer: BaseConsumer = client
            .clone()
            .set("group.id", "paged")
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        consumer.subscribe(&["paged"]).unwrap();
        let seen = tokio::task::spawn_blocking(move || {
            let mut seen = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while seen.len() < N && std::time::Instant::now() < deadline {
                let Some(m) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let m = m.unwrap();
                let header = m.headers().map(|h| h.get(0).value.unwrap().to_vec());
                seen.push((
                    m.offset(),
                    m.key().unwrap().to_vec(),
                    m.payload().unwrap().to_vec(),
                    header,
                ));
            }
            seen
        })
        .await
        .unwrap();
        assert_eq!(seen.len(), N);
        for (i, (offset, key, value_, header)) in seen.into_iter().enumerate() {
            assert_eq!(offset, i as i64);
            assert_eq!(key, i.to_string().into_bytes());
            assert_eq!(value_, value(i).into_bytes(), "record {i}");
            assert_eq!(header, Some(i.to_string().into_bytes()), "record {i}");
        }
        broker.stop().await;
    }

    #[test]
    fn sqlite_urls_keep_absolute_paths_absolute() {
        assert_eq!(
            sqlite_url(Path::new("/tmp/k/t.db")).unwrap().path(),
            "//tmp/k/t.db"
        );
        assert_eq!(
            sqlite_url(Path::new("data/t.db")).unwrap().as_str(),
            "sqlite://data/t.db"
        );
    }
}
