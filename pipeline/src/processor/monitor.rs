//! The processor's watch over its consumer group, off the processing loop: the input lag
//! (and readiness once caught up) and the stall watch that rejoins a group Tansu left with
//! unowned partitions. Each check is several broker round trips; run inline they delayed the
//! loop's timers by seconds on a busy machine.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use tokio_util::sync::CancellationToken;

use crate::kafka::source::{self, Source, StallWatch};
use crate::status::ProcessorStatus;

/// How often the group is checked before the processor is ready, and after.
const UNTIL_READY: Duration = Duration::from_millis(250);
const ONCE_READY: Duration = Duration::from_secs(5);

pub(super) struct Monitor {
    pub consumer: Arc<Source>,
    pub status: Arc<ProcessorStatus>,
    pub ready_max_lag: i64,
    pub stall_after: Duration,
}

impl Monitor {
    /// Checks until `shutdown`; never fails (a check that errors is tried again next time).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut stalls = StallWatch::new(self.stall_after);
        loop {
            let pause = if self.status.is_ready() {
                ONCE_READY
            } else {
                UNTIL_READY
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            // Each check gives up between broker round trips once `shutdown` is cancelled: the
            // processor awaits this task before it closes the consumer.
            self.refresh_lag(&shutdown).await;
            if shutdown.is_cancelled() {
                return;
            }
            self.rejoin_if_stalled(&mut stalls, &shutdown).await;
        }
    }

    async fn refresh_lag(&self, shutdown: &CancellationToken) {
        match source::lag(&self.consumer, shutdown).await {
            Ok(by_partition) => {
                self.status.set_lag(by_partition);
                let lag = self.status.lag.load(std::sync::atomic::Ordering::Relaxed);
                // Ready once caught up; a later backlog does not take it back (the API keeps
                // serving, and the lag is reported beside every answer).
                if (0..=self.ready_max_lag).contains(&lag) && !self.status.is_ready() {
                    tracing::info!(lag, "caught up with the input topics: ready");
                    self.status.set_ready(true);
                }
            }
            Err(err) => tracing::debug!(cause = %err, "lag not available yet"),
        }
    }

    /// Rejoins the group when partitions this processor does not own have stalled (see
    /// [`StallWatch`]): the rejoin makes the coordinator rebalance every member.
    async fn rejoin_if_stalled(&self, stalls: &mut StallWatch, shutdown: &CancellationToken) {
        let positions = match source::group_positions(&self.consumer, shutdown).await {
            Ok(p) => p,
            Err(err) => {
                tracing::debug!(cause = %err, "group positions not available");
                return;
            }
        };
        let assigned: BTreeSet<i32> = match self.consumer.assignment() {
            Ok(tpl) => tpl.elements().iter().map(|e| e.partition()).collect(),
            Err(err) => {
                tracing::debug!(cause = %err, "assignment not available");
                return;
            }
        };
        let stalled = stalls.observe(&positions, &assigned, std::time::Instant::now());
        if stalled.is_empty() {
            return;
        }
        tracing::warn!(
            ?stalled,
            stall_after_ms = self.stall_after.as_millis() as u64,
            "partitions owned by no live member: rejoining the consumer group"
        );
        let mut topics: Vec<&str> = positions.keys().map(|(t, _)| t.as_str()).collect();
        topics.dedup();
        self.consumer.unsubscribe();
        if let Err(err) = self.consumer.subscribe(&topics) {
            tracing::error!(cause = %err, "rejoining the consumer group failed");
        }
        stalls.reset();
    }
}
