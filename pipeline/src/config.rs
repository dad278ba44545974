//! Engine and source settings with their defaults in one place. Every struct is a TOML table of
//! the `keyflow` configuration; `validate()` runs before anything touches the network.

use serde::{Deserialize, Serialize};

pub use model::rules::{BusinessOverride, BusinessRules, MetricsConfig, ScoringConfig};

/// Topic names. Input topics must be co-partitioned by contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// Contact and note events.
    pub contacts: String,
    /// Invoice events.
    pub invoices: String,
    /// Booking events.
    pub bookings: String,
    /// Task events.
    pub tasks: String,
    /// Dead letters: refused events with their reason.
    pub dlq: String,
    /// Signals KeyFlow emits for automation.
    pub signals: String,
    /// Internal: merges and merged-away contacts' events forwarded between partitions. KeyFlow
    /// creates it with the input topics' partition count and reads it in its consumer group.
    /// Unset, it is named after the group, `<processing.group_id>-rekey` (as Kafka Streams
    /// names its repartition topics after the application), so two groups never share one.
    pub rekey: Option<String>,
    /// Partitions per topic when KeyFlow creates the topics itself.
    pub partitions: i32,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        Self {
            contacts: "crm.contacts".into(),
            invoices: "crm.invoices".into(),
            bookings: "crm.bookings".into(),
            tasks: "crm.tasks".into(),
            dlq: "crm.dlq".into(),
            signals: "crm.signals".into(),
            rekey: None,
            partitions: 3,
        }
    }
}

impl TopicsConfig {
    /// The four input topics.
    pub fn inputs(&self) -> [&str; 4] {
        [&self.contacts, &self.invoices, &self.bookings, &self.tasks]
    }

    /// The re-key topic of consumer group `group_id`.
    pub fn rekey_for(&self, group_id: &str) -> String {
        self.rekey
            .clone()
            .unwrap_or_else(|| format!("{group_id}-rekey"))
    }

    /// Every topic KeyFlow reads or writes, but the re-key topic ([`TopicsConfig::rekey_for`]).
    pub fn all(&self) -> [&str; 6] {
        [
            &self.contacts,
            &self.invoices,
            &self.bookings,
            &self.tasks,
            &self.dlq,
            &self.signals,
        ]
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.partitions < 1 {
            return Err(format!(
                "topics.partitions must be at least 1, got {}",
                self.partitions
            ));
        }
        let all = self.all();
        for (i, t) in all.iter().enumerate() {
            if t.trim().is_empty() {
                return Err("topic names must not be empty".into());
            }
            if all[..i].contains(t) {
                return Err(format!("topic {t:?} is configured twice"));
            }
        }
        if let Some(r) = &self.rekey {
            if r.trim().is_empty() {
                return Err("topics.rekey must not be empty (leave it out for the default)".into());
            }
            if all.contains(&r.as_str()) {
                return Err(format!("topic {r:?} is configured twice"));
            }
        }
        Ok(())
    }
}

/// What the decoder accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Known `source` values; add your own here.
    pub sources: Vec<String>,
    /// Largest accepted event payload, in bytes.
    pub max_event_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            sources: [
                "booking_form",
                "automation",
                "public_link",
                "import",
                "manual",
                "commerce",
            ]
            .map(String::from)
            .to_vec(),
            max_event_bytes: 64 * 1024,
        }
    }
}

/// How the processor batches and paces its work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessingConfig {
    /// Consumer group id; processors sharing it split the partitions.
    pub group_id: String,
    /// Most events in one micro-batch. Batches only fill up when a backlog is waiting (a
    /// live stream closes each batch after `batch_linger_ms`), so this bounds catch-up: each
    /// batch pays a fixed cost (a metric run's setup, one fsync per store file) that larger
    /// batches amortise (benches/RESULTS.md, engine bench at 20,000 contacts: 5,000 -> 23k
    /// events/s, 50,000 -> 46k). `batch_max_bytes` caps a batch of large events first. The
    /// fault tests use batches of 50-100 events on purpose (many batch boundaries per run);
    /// nothing in the processor depends on the size.
    pub batch_max_events: usize,
    /// Most payload bytes in one micro-batch (bounds memory and the size of one sink insert).
    pub batch_max_bytes: usize,
    /// Longest a micro-batch waits to fill, in milliseconds.
    pub batch_linger_ms: u64,
    /// How often time-driven re-evaluation runs when no events arrive, in milliseconds.
    pub tick_ms: u64,
    /// The processor reports ready once its lag first drops to this many messages or fewer
    /// (a live stream is never at lag 0 for long).
    pub ready_max_lag: i64,
    /// A processor rejoins its consumer group when input partitions it does not own have had
    /// a lag and no committed progress for this long, in milliseconds. It recovers groups a
    /// broker left without an owner for some partitions: Tansu 0.6 expires a dead member
    /// without telling the survivors to rebalance (docs/RELIABILITY.md). Keep it well above
    /// the longest batch or state rebuild, since every rejoin rebalances the whole group.
    pub stall_after_ms: u64,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            group_id: "keyflow".into(),
            batch_max_events: 50_000,
            batch_max_bytes: 16 * 1024 * 1024,
            batch_linger_ms: 100,
            tick_ms: 1_000,
            ready_max_lag: 1_000,
            stall_after_ms: 30_000,
        }
    }
}

impl ProcessingConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_max_events == 0 {
            return Err("processing.batch_max_events must be at least 1".into());
        }
        if self.group_id.trim().is_empty() {
            return Err("processing.group_id must not be empty".into());
        }
        Ok(())
    }
}
