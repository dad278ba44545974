//! Engine and source settings with their defaults in one place. Every struct is a TOML table of
//! the `keyflow` configuration; `validate()` runs before anything touches the network.

use serde::{Deserialize, Serialize};

/// Lead-score rules: score = clamp(Σ weight·min(count, cap), 0, 100).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    /// Trailing window, in days, for completed bookings and paid invoices.
    pub window_days: i64,
    /// Points per booking completed in the window.
    pub booking_weight: i64,
    /// Most completed bookings that count.
    pub booking_cap: i64,
    /// Points per invoice paid in the window.
    pub paid_weight: i64,
    /// Most paid invoices that count.
    pub paid_cap: i64,
    /// Points removed per invoice sent and not paid.
    pub unpaid_weight: i64,
    /// Most unpaid invoices that count.
    pub unpaid_cap: i64,
    /// Points removed per open task past its due date.
    pub overdue_task_weight: i64,
    /// Most overdue tasks that count.
    pub overdue_task_cap: i64,
    /// Name of this rule set, stored beside every score; change it when the rules change.
    pub rule_version: String,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            window_days: 14,
            booking_weight: 15,
            booking_cap: 4,
            paid_weight: 10,
            paid_cap: 4,
            unpaid_weight: 10,
            unpaid_cap: 3,
            overdue_task_weight: 5,
            overdue_task_cap: 4,
            rule_version: "lead-score/v1".into(),
        }
    }
}

impl ScoringConfig {
    /// Every weight and cap by name: validated here, handed to the SQL as `params` columns.
    pub fn terms(&self) -> [(&'static str, i64); 8] {
        [
            ("booking_weight", self.booking_weight),
            ("booking_cap", self.booking_cap),
            ("paid_weight", self.paid_weight),
            ("paid_cap", self.paid_cap),
            ("unpaid_weight", self.unpaid_weight),
            ("unpaid_cap", self.unpaid_cap),
            ("overdue_task_weight", self.overdue_task_weight),
            ("overdue_task_cap", self.overdue_task_cap),
        ]
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.window_days <= 0 {
            return Err(format!(
                "scoring.window_days must be positive, got {}",
                self.window_days
            ));
        }
        for (name, v) in self.terms() {
            if !(0..=100).contains(&v) {
                return Err(format!("scoring.{name} must be within 0..=100, got {v}"));
            }
        }
        if self.rule_version.trim().is_empty() {
            return Err("scoring.rule_version must not be empty".into());
        }
        Ok(())
    }
}

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
            partitions: 3,
        }
    }
}

impl TopicsConfig {
    /// The four input topics.
    pub fn inputs(&self) -> [&str; 4] {
        [&self.contacts, &self.invoices, &self.bookings, &self.tasks]
    }

    /// Every topic KeyFlow reads or writes.
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
    /// Most events in one micro-batch.
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
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            group_id: "keyflow".into(),
            batch_max_events: 5_000,
            batch_max_bytes: 16 * 1024 * 1024,
            batch_linger_ms: 100,
            tick_ms: 1_000,
            ready_max_lag: 1_000,
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
