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

/// A client configuration for `bootstrap` with the pass-through librdkafka settings applied last.
pub fn client_config(bootstrap: &str, passthrough: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    for (k, v) in passthrough {
        c.set(k, v);
    }
    c
}
