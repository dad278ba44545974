//! The contract between the processor and the stores it writes to: one durable write per
//! partition and micro-batch, and the recovery read that rebuilds a partition's state.

use std::sync::Arc;

use async_trait::async_trait;

use crate::clock::Ms;
use crate::event::Event;
use crate::profile::{ContactProfile, Factor};
use crate::signal::Signal;

/// An accepted event with where it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedEvent {
    pub event: Event,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// What one micro-batch produced for one partition.
#[derive(Debug, Clone, Default)]
pub struct PartitionOutput {
    pub partition: i32,
    /// Newly accepted events (duplicates already removed), in processing order.
    pub events: Vec<AcceptedEvent>,
    /// Profiles whose content changed, shared: the embedded store's read model keeps these very
    /// values, so a write copies none.
    pub profiles: Vec<Arc<ContactProfile>>,
    /// Lead scores that changed, with what caused them.
    pub changes: Vec<ScoreChange>,
    /// Segment, Next Action, promotion and feed signals: written with the batch, published once
    /// the write is durable (see [`Recovered::unpublished`]).
    pub signals: Vec<Signal>,
    /// (business, contact) of contacts erased on another partition whose erase was forwarded
    /// here, to a survivor they were merged into: their ids go out of every alias list this
    /// partition stored, older profile versions included (their own events live elsewhere).
    pub forgotten: Vec<(String, String)>,
}

/// One change of a contact's lead score.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreChange {
    pub business_id: String,
    pub contact_id: String,
    pub partition: i32,
    /// The score last written, if any.
    pub old_score: Option<i64>,
    pub new_score: i64,
    pub factors: Vec<Factor>,
    pub rule_version: String,
    /// Ids of this batch's events about the contact (empty when time alone changed the score).
    pub caused_by: Vec<String>,
    /// `events` or `time`.
    pub reason: &'static str,
    pub evaluated_at: Ms,
}

impl PartitionOutput {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.profiles.is_empty()
            && self.signals.is_empty()
            && self.forgotten.is_empty()
    }
}

/// A partition's durable contents, read back to rebuild its state.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Every stored event of the partition, in the order it was processed.
    pub events: Vec<Event>,
    /// The latest stored profile of each contact of the partition.
    pub profiles: Vec<ContactProfile>,
    /// The signals of the partition's latest write that had any. Signals are stored with their
    /// batch before they are published, so these are the only ones a crash can have left
    /// unpublished; the processor republishes them (same ids) before it goes on. Publishing
    /// before the write instead would announce changes that a replay with other batch
    /// boundaries may never store, nor ever retract.
    pub unpublished: Vec<Signal>,
    /// The signals of the partition's latest write that had any besides flow-feed prompts:
    /// segment, Next Action and promotion changes. A store whose write is not atomic can crash
    /// after storing them and before storing that write's profiles; they were (re)published
    /// all the same, so the rebuilt state takes them as written on top of `profiles`
    /// (`signals::take_as_written`), and a replay that undoes a change signals the undoing.
    /// Taking them again over profiles that do reflect them changes nothing. Empty for a store
    /// whose write is atomic.
    pub signalled: Vec<Signal>,
    /// Events of the partition's latest write that were stored without that write's signals: a
    /// store whose write is not atomic (ClickHouse inserts table by table) can crash between the
    /// two. Their replay is dropped as duplicates, so the processor derives their flow-feed
    /// prompts again, stores and publishes them. The profiles need nothing: they were not
    /// written either (nor signalled), and every recovered contact is evaluated again. Empty
    /// for a store whose write is atomic.
    pub unsignalled: Vec<Event>,
}

/// A sink failure, classified once: retry or stop.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Worth retrying with backoff (connection refused, timeout, 5xx, disk full for a moment).
    #[error("transient sink failure: {0}")]
    Transient(String),
    /// Retrying cannot help (schema mismatch, bad DDL, corrupt file): stop with this message.
    #[error("permanent sink failure: {0}")]
    Permanent(String),
}

impl SinkError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Transient(_))
    }
}

/// A durable store of events and profiles.
#[async_trait]
pub trait ResultSink: Send + Sync {
    /// Durably writes one partition's output; returns only once it is safe to publish its
    /// signals and commit offsets. Must be idempotent: writing the same output twice leaves the
    /// same contents. The signals must be durable no later than the profiles (a crash between
    /// would otherwise leave a stored change whose signal nobody will recompute).
    async fn write(&self, output: &PartitionOutput) -> Result<(), SinkError>;

    /// Reads back what was written for `partition`.
    async fn recover(&self, partition: i32) -> Result<Recovered, SinkError>;

    /// The stored events of one contact of `partition`, in processing order: the history a
    /// merge forwards to the survivor's partition. By default filtered out of [`recover`];
    /// stores override it with a read of that contact alone.
    ///
    /// [`recover`]: ResultSink::recover
    async fn history(
        &self,
        partition: i32,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Vec<Event>, SinkError> {
        let mut events = self.recover(partition).await?.events;
        events.retain(|e| e.business_id == business_id && e.contact_id == contact_id);
        Ok(events)
    }

    /// Called when a partition is no longer ours; drop anything cached for it.
    async fn release(&self, _partition: i32) {}
}
