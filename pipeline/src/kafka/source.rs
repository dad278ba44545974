//! The consumer the processor reads through: a consumer group over the co-partitioned input
//! topics, offsets stored and committed by the processor only after the sink confirmed a batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset};

/// A change of the partitions this processor owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    Assigned(BTreeSet<i32>),
    Revoked(BTreeSet<i32>),
}

/// Records rebalances for the processor loop to act on between batches.
#[derive(Debug, Default, Clone)]
pub struct SourceContext {
    changes: Arc<Mutex<Vec<Assignment>>>,
}

impl SourceContext {
    /// Rebalances seen since the last call, oldest first.
    pub fn take_changes(&self) -> Vec<Assignment> {
        std::mem::take(&mut *self.changes.lock().expect("rebalance log lock"))
    }
}

fn partitions(tpl: &rdkafka::TopicPartitionList) -> BTreeSet<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

impl ClientContext for SourceContext {}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            tracing::info!(partitions = ?partitions(tpl), "partitions revoked");
            self.changes
                .lock()
                .expect("rebalance log lock")
                .push(Assignment::Revoked(partitions(tpl)));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!(partitions = ?partitions(tpl), "partitions assigned");
                self.changes
                    .lock()
                    .expect("rebalance log lock")
                    .push(Assignment::Assigned(partitions(tpl)));
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(err) => tracing::warn!(cause = %err, "rebalance error"),
        }
    }
}

pub type Source = StreamConsumer<SourceContext>;

/// A consumer in `group_id`, subscribed to `topics`; offsets are only ever stored by the caller.
pub fn subscribe(
    client: &ClientConfig,
    group_id: &str,
    topics: &[&str],
) -> Result<(Arc<Source>, SourceContext), KafkaError> {
    let context = SourceContext::default();
    let mut cfg = ClientConfig::new();
    // Defaults first; the caller's pass-through settings win, except the ones correctness needs.
    cfg.set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000");
    for (k, v) in client.config_map() {
        cfg.set(k, v);
    }
    cfg.set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // Range assignment gives one processor the same partition number of every input topic.
        .set("partition.assignment.strategy", "range");
    let consumer: Source = cfg.create_with_context(context.clone())?;
    consumer.subscribe(topics)?;
    Ok((Arc::new(consumer), context))
}

/// Messages between the committed offsets and the ends of the assigned partitions, per
/// partition number (summed over the topics); empty when nothing is assigned.
pub async fn lag(consumer: &Arc<Source>) -> Result<BTreeMap<i32, i64>, KafkaError> {
    let consumer = consumer.clone();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(5);
        let assigned = consumer.assignment()?;
        let mut by_partition = BTreeMap::new();
        if assigned.count() == 0 {
            return Ok(by_partition);
        }
        let committed = consumer.committed_offsets(assigned, timeout)?;
        for e in committed.elements() {
            let (low, high) = consumer.fetch_watermarks(e.topic(), e.partition(), timeout)?;
            let at = match e.offset() {
                Offset::Offset(o) => o,
                _ => low,
            };
            *by_partition.entry(e.partition()).or_insert(0) += (high - at).max(0);
        }
        Ok(by_partition)
    })
    .await
    .expect("lag task does not panic")
}
