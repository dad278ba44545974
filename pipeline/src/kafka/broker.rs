//! The embedded Kafka-compatible broker: Tansu with SQLite storage, started in-process when no
//! external brokers are configured. Clients reach it over the Kafka protocol like any cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use tokio::task::JoinHandle;
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

/// A running embedded broker. Dropping it stops the broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    db: PathBuf,
    task: JoinHandle<()>,
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

impl EmbeddedBroker {
    /// Starts Tansu on `addr` with its SQLite database at `db`, and waits until it accepts
    /// connections.
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
        let listener =
            Url::parse(&format!("tcp://{addr}")).map_err(|e| BrokerError::Start(e.to_string()))?;
        let broker = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
            .node_id(tansu_broker::NODE_ID)
            .cluster_id("keyflow")
            .incarnation_id(uuid::Uuid::new_v4())
            .advertised_listener(listener.clone())
            .storage(sqlite_url(&db)?)
            .listener(listener)
            .silent(true)
            .build()
            .await
            .map_err(|e| BrokerError::Start(format!("{e:?}")))?;
        let task = tokio::spawn(async move {
            let mut broker = broker;
            if let Err(err) = broker.serve(tokio::time::Instant::now()).await {
                tracing::error!(cause = ?err, "embedded broker stopped");
            }
        });
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                tracing::info!(%addr, db = %db.display(), "embedded Tansu broker ready");
                return Ok(Self { addr, db, task });
            }
            if task.is_finished() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        task.abort();
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
        self.task.abort();
        let _ = (&mut self.task).await;
        // The listener is dropped with the task; wait until the port is free again.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
