//! Everything that speaks the Kafka protocol: the embedded broker, topic administration, the
//! consumer the processor reads through, the re-key topic, and the dead-letter producer.

pub mod broker;
pub mod dlq;
pub mod rekey;
pub mod signals;
pub mod source;
pub mod topics;

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

/// A client configuration for `bootstrap` with the pass-through librdkafka settings applied last.
pub fn client_config(bootstrap: &str, passthrough: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    for (k, v) in passthrough {
        c.set(k, v);
    }
    c
}

/// A producer whose deliveries KeyFlow waits for before it commits: every replica acknowledges
/// (`acks=all`), retries keep order and never duplicate (idempotence), 5 ms linger.
pub fn acknowledged_producer(client: &ClientConfig) -> Result<FutureProducer, KafkaError> {
    client
        .clone()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
}
