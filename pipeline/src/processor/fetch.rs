//! The processor's reader: builds micro-batches out of the consumer on a task of its own, one
//! batch ahead of the loop, so reading (a copy of every message out of librdkafka) overlaps
//! the evaluation of the batch before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::message::{Message, OwnedMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::ProcessingConfig;
use crate::kafka::source::{Assignment, Source, SourceContext};
use crate::status::{ProcessorStatus, Stage};

/// One micro-batch, with the rebalances seen while it was read (the loop acts on them before
/// it processes the batch, as if it had read the batch itself).
pub(super) struct Fetched {
    pub changes: Vec<Assignment>,
    pub messages: Vec<OwnedMessage>,
}

pub(super) struct Fetcher {
    pub consumer: Arc<Source>,
    pub context: SourceContext,
    pub config: ProcessingConfig,
    pub status: Arc<ProcessorStatus>,
}

impl Fetcher {
    /// Sends batches into `batches` until `stop` or until the loop hangs up.
    pub async fn run(self, batches: mpsc::Sender<Fetched>, stop: CancellationToken) {
        loop {
            let started = Instant::now();
            let messages = tokio::select! {
                _ = stop.cancelled() => return,
                messages = self.next_batch() => messages,
            };
            self.status.busy_since(Stage::Fetch, started);
            let fetched = Fetched {
                changes: self.context.take_changes(),
                messages,
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                sent = batches.send(fetched) => if sent.is_err() { return },
            }
        }
    }

    /// Up to `batch_max_events` messages: waits up to `tick_ms` for the first, then up to
    /// `batch_linger_ms` for the rest. An empty batch still runs the timers.
    async fn next_batch(&self) -> Vec<OwnedMessage> {
        let mut batch = Vec::new();
        let tick = Duration::from_millis(self.config.tick_ms);
        match tokio::time::timeout(tick, self.consumer.recv()).await {
            Err(_) => return batch,
            Ok(Err(err)) => {
                tracing::warn!(cause = %err, "consumer error");
                return batch;
            }
            Ok(Ok(m)) => batch.push(m.detach()),
        }
        let mut bytes = batch[0].payload().map_or(0, <[u8]>::len);
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.batch_linger_ms);
        while batch.len() < self.config.batch_max_events && bytes < self.config.batch_max_bytes {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(m)) => {
                    bytes += m.payload().map_or(0, <[u8]>::len);
                    batch.push(m.detach());
                }
                Ok(Err(err)) => tracing::warn!(cause = %err, "consumer error"),
                Err(_) => break,
            }
        }
        batch
    }
}
