//! The dead-letter producer: a refused message goes to the DLQ topic byte for byte, with where it
//! came from and why in its headers.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::decode::Rejection;

/// Header names on every dead letter.
pub mod headers {
    pub const REASON: &str = "keyflow.reason";
    pub const CODE: &str = "keyflow.code";
    pub const TOPIC: &str = "keyflow.source.topic";
    pub const PARTITION: &str = "keyflow.source.partition";
    pub const OFFSET: &str = "keyflow.source.offset";
}

#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetters {
    pub fn new(client: &ClientConfig, topic: &str) -> Result<Self, KafkaError> {
        let producer = client
            .clone()
            .set("acks", "all")
            .set("linger.ms", "5")
            .create()?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Enqueues one dead letter; await the returned future before committing past `msg`.
    pub fn send(&self, msg: &OwnedMessage, why: &Rejection) -> Result<DeliveryFuture, KafkaError> {
        let reason = why.to_string();
        let partition = msg.partition().to_string();
        let offset = msg.offset().to_string();
        let hdrs = OwnedHeaders::new()
            .insert(Header {
                key: headers::REASON,
                value: Some(reason.as_str()),
            })
            .insert(Header {
                key: headers::CODE,
                value: Some(why.code()),
            })
            .insert(Header {
                key: headers::TOPIC,
                value: Some(msg.topic()),
            })
            .insert(Header {
                key: headers::PARTITION,
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: headers::OFFSET,
                value: Some(offset.as_str()),
            });
        let payload = msg.payload().unwrap_or_default();
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic)
            .payload(payload)
            .headers(hdrs);
        if let Some(key) = msg.key() {
            record = record.key(key);
        }
        self.producer.send_result(record).map_err(|(e, _)| e)
    }

    /// Waits for the producer to hand over everything queued.
    pub fn flush(&self) {
        use rdkafka::producer::Producer;
        let _ = self.producer.flush(Duration::from_secs(10));
    }
}
