//! The consumer the processor reads through: a consumer group over the co-partitioned input
//! topics, offsets stored and committed by the processor only after the sink confirmed a batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, Offset};
use tokio_util::sync::CancellationToken;

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

/// Most bytes one fetch request asks for (librdkafka's default is 50 MB). Tansu 0.6 serves
/// all storage requests of the broker one at a time and answers a fetch with up to this many
/// bytes across its partitions, whatever `max.partition.fetch.bytes` says: a 50 MB answer
/// holds its storage for seconds, and the group's heartbeats and offset requests wait behind
/// it. 1 MiB bounds each fetch's share; librdkafka pipelines fetches, so a real Kafka cluster
/// loses little. Overridable through `[kafka]`.
const FETCH_MAX_BYTES: &str = "1048576";

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
        .set("session.timeout.ms", "10000")
        .set("fetch.max.bytes", FETCH_MAX_BYTES);
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

/// Ends a group check between two broker round trips once the processor is stopping: each
/// round trip waits up to 5 s on a busy broker, and a check of every partition, one after
/// another, held a SIGTERM'd processor for up to 30 s.
fn unless_stopped(stop: &CancellationToken) -> Result<(), KafkaError> {
    if stop.is_cancelled() {
        Err(KafkaError::Canceled)
    } else {
        Ok(())
    }
}

/// Messages between the committed offsets and the ends of the assigned partitions, per
/// partition number (summed over the topics); empty when nothing is assigned.
pub async fn lag(
    consumer: &Arc<Source>,
    stop: &CancellationToken,
) -> Result<BTreeMap<i32, i64>, KafkaError> {
    let consumer = consumer.clone();
    let stop = stop.clone();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(5);
        let assigned = consumer.assignment()?;
        let mut by_partition = BTreeMap::new();
        if assigned.count() == 0 {
            return Ok(by_partition);
        }
        unless_stopped(&stop)?;
        let committed = consumer.committed_offsets(assigned, timeout)?;
        for e in committed.elements() {
            unless_stopped(&stop)?;
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

/// Per input partition (topic, partition) of the subscription: the group's committed offset
/// and the partition's high watermark. Covers every partition, not only the assigned ones.
pub async fn group_positions(
    consumer: &Arc<Source>,
    stop: &CancellationToken,
) -> Result<BTreeMap<(String, i32), (i64, i64)>, KafkaError> {
    let consumer = consumer.clone();
    let stop = stop.clone();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(5);
        let mut tpl = rdkafka::TopicPartitionList::new();
        for e in consumer.subscription()?.elements() {
            unless_stopped(&stop)?;
            let metadata = consumer.fetch_metadata(Some(e.topic()), timeout)?;
            for t in metadata.topics() {
                for p in t.partitions() {
                    tpl.add_partition(t.name(), p.id());
                }
            }
        }
        unless_stopped(&stop)?;
        let committed = consumer.committed_offsets(tpl, timeout)?;
        let mut out = BTreeMap::new();
        for e in committed.elements() {
            unless_stopped(&stop)?;
            let (low, high) = consumer.fetch_watermarks(e.topic(), e.partition(), timeout)?;
            let at = match e.offset() {
                Offset::Offset(o) => o,
                _ => low,
            };
            out.insert((e.topic().to_owned(), e.partition()), (at, high));
        }
        Ok(out)
    })
    .await
    .expect("positions task does not panic")
}

/// Watches for partitions nobody processes: lagging, not assigned here, and without committed
/// progress for `stall_after`. Tansu 0.6 can leave a group that way after a member dies (it
/// expires the member but does not tell the survivors to rebalance); rejoining recovers it.
#[derive(Debug)]
pub struct StallWatch {
    stall_after: Duration,
    /// Per partition: the committed offset last seen and since when it has not moved.
    seen: BTreeMap<(String, i32), (i64, std::time::Instant)>,
}

impl StallWatch {
    pub fn new(stall_after: Duration) -> Self {
        Self {
            stall_after,
            seen: BTreeMap::new(),
        }
    }

    /// Folds in the group's positions (see [`group_positions`]) at `now`; returns the stalled
    /// partitions that are not in `assigned`.
    pub fn observe(
        &mut self,
        positions: &BTreeMap<(String, i32), (i64, i64)>,
        assigned: &BTreeSet<i32>,
        now: std::time::Instant,
    ) -> Vec<(String, i32)> {
        let mut stalled = Vec::new();
        for (tp, &(committed, high)) in positions {
            let entry = self.seen.entry(tp.clone()).or_insert((committed, now));
            if entry.0 != committed || committed >= high {
                *entry = (committed, now);
                continue;
            }
            if !assigned.contains(&tp.1) && now.duration_since(entry.1) >= self.stall_after {
                stalled.push(tp.clone());
            }
        }
        stalled
    }

    /// Starts every clock again (after a rejoin).
    pub fn reset(&mut self) {
        self.seen.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lagging_unowned_partitions_without_progress_count_as_stalled() {
        let mut w = StallWatch::new(Duration::from_secs(10));
        let t0 = std::time::Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let pos = |a: i64, b: i64, c: i64| {
            BTreeMap::from([
                (("t".to_owned(), 0), (a, 100)),
                (("t".to_owned(), 1), (b, 100)),
                (("t".to_owned(), 2), (c, 100)),
            ])
        };
        let mine = BTreeSet::from([0]);
        assert!(w.observe(&pos(5, 5, 100), &mine, at(0)).is_empty());
        // Partition 1 moves, partition 2 is caught up, partition 0 is ours.
        assert!(w.observe(&pos(5, 6, 100), &mine, at(9)).is_empty());
        assert!(w.observe(&pos(5, 6, 100), &mine, at(15)).is_empty());
        assert_eq!(
            w.observe(&pos(5, 6, 100), &mine, at(19)),
            vec![("t".to_owned(), 1)]
        );
        w.reset();
        assert!(w.observe(&pos(5, 6, 100), &mine, at(20)).is_empty());
    }
}
