//! The re-key topic (`topics.rekey`): the internal topic over which partitions forward merges
//! and merged-away contacts' events to each other (see `state::rekey` for what goes over it).
//!
//! It has the input topics' partition count, so the range assignor hands partition n of it to
//! the processor that owns partition n of the inputs, and it is read in the same consumer
//! group, offsets committed with the batch. It is also the durable copy of what was forwarded:
//! a processor that takes a partition over reads all of it into the rebuilt state (what the
//! sink holds are the partition's own events only; see [`Rekey::end`]).

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::event::Event;
use crate::kafka::source::Source;

/// Header naming the partition that forwarded a message: the one that reads the contact's own
/// events.
pub const ORIGIN_HEADER: &str = "keyflow.origin";

/// Longest the replay of one partition may go without a message before it gives up.
const REPLAY_IDLE: Duration = Duration::from_secs(30);
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Rekey {
    producer: FutureProducer,
    client: ClientConfig,
    topic: String,
    partitions: i32,
}

impl Rekey {
    /// A producer for `topic`, which has `partitions` partitions (the input topics' count).
    pub fn new(client: &ClientConfig, topic: &str, partitions: i32) -> Result<Self, KafkaError> {
        let producer = super::acknowledged_producer(client)?;
        Ok(Self {
            producer,
            client: client.clone(),
            topic: topic.to_owned(),
            partitions,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Enqueues `event` for partition `to`, keyed by `key`, from partition `origin`.
    pub fn send(
        &self,
        event: &Event,
        to: i32,
        key: &str,
        origin: i32,
    ) -> Result<DeliveryFuture, KafkaError> {
        let payload = serde_json::to_vec(event).expect("an event serialises");
        let origin = origin.to_string();
        let record = FutureRecord::to(&self.topic)
            .partition(to)
            .key(key)
            .payload(&payload)
            .headers(OwnedHeaders::new().insert(Header {
                key: ORIGIN_HEADER,
                value: Some(origin.as_bytes()),
            }));
        self.producer.send_result(record).map_err(|(e, _)| e)
    }

    /// The partition that forwarded `msg`, from its header.
    pub fn origin(msg: &OwnedMessage) -> Result<i32, String> {
        let header = msg
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == ORIGIN_HEADER))
            .and_then(|h| h.value)
            .ok_or_else(|| format!("re-key message without a {ORIGIN_HEADER} header"))?;
        std::str::from_utf8(header)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{ORIGIN_HEADER} header is not a partition number"))
    }

    /// The end (high watermark) of partition `p` of the re-key topic: every message forwarded
    /// to `p` so far is before it. Blocking.
    ///
    /// A rebuild reads up to here, not up to the group's committed offset: a crash between a
    /// batch's write and its commit leaves stored profiles (and published signals) that
    /// reflect forwarded messages after the committed offset. Rebuilt without them, the state
    /// would be behind its own stored results: a contact merged away in the stored profile
    /// would be evaluated as visible again and re-enter its segments, until the consumer read
    /// the merge a second time. Messages after the committed offset are read again by the
    /// consumer and dropped there as duplicates (each event id counts once).
    pub fn end(&self, consumer: &Source, p: i32) -> Result<i64, KafkaError> {
        let (_, high) = consumer.fetch_watermarks(&self.topic, p, METADATA_TIMEOUT)?;
        Ok(high)
    }

    /// The group's committed offset of partition `p` of the re-key topic (0 when none): what
    /// the consumer reads next. Blocking.
    pub fn committed(&self, consumer: &Source, p: i32) -> Result<i64, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, p);
        let committed = consumer.committed_offsets(tpl, METADATA_TIMEOUT)?;
        Ok(committed
            .find_partition(&self.topic, p)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .unwrap_or(0))
    }

    /// Every message of partition `p` before offset `end`, read outside the group. Blocking.
    pub fn read_before(&self, p: i32, end: i64) -> Result<Vec<OwnedMessage>, KafkaError> {
        let mut out = Vec::new();
        if end <= 0 {
            return Ok(out);
        }
        let consumer: BaseConsumer = self
            .client
            .clone()
            // librdkafka wants a group for `assign`, though an assigned consumer never joins
            // it; nothing is committed.
            .set("group.id", "keyflow-rekey-replay")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, p, Offset::Beginning)?;
        consumer.assign(&tpl)?;
        let mut last = Instant::now();
        while out
            .last()
            .is_none_or(|m: &OwnedMessage| m.offset() + 1 < end)
        {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    last = Instant::now();
                    if m.offset() < end {
                        out.push(m.detach());
                    } else {
                        break;
                    }
                }
                Some(Err(err)) => return Err(err),
                None if last.elapsed() > REPLAY_IDLE => {
                    return Err(KafkaError::MessageConsumption(
                        rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                    ))
                }
                None => {}
            }
        }
        Ok(out)
    }
}
