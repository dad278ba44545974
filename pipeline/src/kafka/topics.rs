//! Topic administration: create KeyFlow's topics (Tansu creates none by itself) and refuse to run
//! over input topics that are not co-partitioned by contact.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::TopicsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("kafka admin call failed: {0}")]
    Kafka(#[from] KafkaError),
    #[error("creating topic {topic} failed: {code}")]
    Create {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("input topic {0} does not exist")]
    Missing(String),
    #[error(
        "input topics are not co-partitioned by contact: {0}; give them equal partition counts"
    )]
    NotCoPartitioned(String),
    #[error(
        "the re-key topic {topic} has {found} partitions and the input topics {inputs}; \
         it must have the inputs' count (KeyFlow creates it so when it is missing)"
    )]
    RekeyPartitions {
        topic: String,
        found: i32,
        inputs: i32,
    },
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Creates every KeyFlow topic that does not exist yet, with `topics.partitions` partitions.
pub async fn ensure_topics(client: &ClientConfig, topics: &TopicsConfig) -> Result<(), TopicError> {
    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let new: Vec<NewTopic> = topics
        .all()
        .iter()
        .map(|t| NewTopic::new(t, topics.partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = admin
        .create_topics(
            new.iter(),
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await?;
    for r in results {
        match r {
            Ok(topic) => tracing::info!(topic, partitions = topics.partitions, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(TopicError::Create { topic, code }),
        }
    }
    Ok(())
}

/// Creates the re-key topic with the input topics' `partitions` if it does not exist (on any
/// broker: it is KeyFlow's own), kept for good (a rebuild reads it from the start); an error
/// if it exists with another count, which would break co-partitioning.
pub async fn ensure_rekey(
    client: &ClientConfig,
    rekey: &str,
    partitions: i32,
) -> Result<(), TopicError> {
    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let topic = NewTopic::new(rekey, partitions, TopicReplication::Fixed(1))
        .set("retention.ms", "-1")
        .set("retention.bytes", "-1");
    let results = admin
        .create_topics(
            [&topic],
            &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
        )
        .await?;
    for r in results {
        match r {
            Ok(topic) => tracing::info!(topic, partitions, "re-key topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(TopicError::Create { topic, code }),
        }
    }
    let found = partition_count(client, rekey).await?;
    if found != partitions {
        return Err(TopicError::RekeyPartitions {
            topic: rekey.to_owned(),
            found,
            inputs: partitions,
        });
    }
    Ok(())
}

async fn partition_count(client: &ClientConfig, topic: &str) -> Result<i32, TopicError> {
    let client = client.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client.create()?;
        let md = consumer.fetch_metadata(Some(&topic), TIMEOUT)?;
        match md.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                Ok(t.partitions().len() as i32)
            }
            _ => Err(TopicError::Missing(topic)),
        }
    })
    .await
    .expect("metadata task does not panic")
}

/// Partition counts of the input topics; an error unless they all exist and are equal.
pub async fn check_copartitioned(
    client: &ClientConfig,
    topics: &TopicsConfig,
) -> Result<i32, TopicError> {
    let client = client.clone();
    let inputs: Vec<String> = topics.inputs().iter().map(|t| t.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client.create()?;
        let mut counts = Vec::new();
        for topic in &inputs {
            let md = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
            let t = md.topics().iter().find(|t| t.name() == topic);
            match t {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    counts.push((topic.clone(), t.partitions().len() as i32))
                }
                _ => return Err(TopicError::Missing(topic.clone())),
            }
        }
        let first = counts[0].1;
        if counts.iter().any(|(_, n)| *n != first) {
            let listing = counts
                .iter()
                .map(|(t, n)| format!("{t} has {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(TopicError::NotCoPartitioned(listing));
        }
        Ok(first)
    })
    .await
    .expect("metadata task does not panic")
}
