//! The signals producer: every signal as JSON on the signals topic, keyed by contact id (so one
//! contact's signals stay in order), with its type in the `keyflow.signal.type` header.

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::signals::Signal;

pub const TYPE_HEADER: &str = "keyflow.signal.type";

#[derive(Clone)]
pub struct SignalProducer {
    producer: FutureProducer,
    topic: String,
}

impl SignalProducer {
    pub fn new(client: &ClientConfig, topic: &str) -> Result<Self, KafkaError> {
        let producer = super::acknowledged_producer(client)?;
        Ok(Self {
            producer,
            topic: topic.to_owned(),
        })
    }

    /// Enqueues one signal; await the future before writing the batch that produced it.
    pub fn send(&self, s: &Signal) -> Result<DeliveryFuture, KafkaError> {
        let payload = s.to_json().to_string();
        let record = FutureRecord::to(&self.topic)
            .key(&s.contact_id)
            .payload(&payload)
            .headers(OwnedHeaders::new().insert(Header {
                key: TYPE_HEADER,
                value: Some(s.kind),
            }));
        self.producer.send_result(record).map_err(|(e, _)| e)
    }
}
