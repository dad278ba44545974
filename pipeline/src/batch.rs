//! One micro-batch's work apart from Kafka: accepted events folded into windowed state, the
//! contacts that are due evaluated, and per-partition outputs built for the sink. The processor
//! drives it with consumed messages; the load harness drives it with events in memory, so both
//! measure and run the same code.

use std::collections::BTreeMap;

use model::hash::Map;

use crate::clock::Ms;
use crate::engine::{Engine, EngineError};
use crate::event::{Event, Payload};
use crate::profile::ContactProfile;
use crate::signals;
use crate::sink::{AcceptedEvent, PartitionOutput, ScoreChange};
use crate::state::{Applied, ContactKey, Forward, PartitionState};

/// Outputs of one micro-batch, by partition, and its counters.
#[derive(Debug, Default)]
pub struct Batch {
    pub outputs: BTreeMap<i32, PartitionOutput>,
    /// Ids of this batch's events per contact (what caused a score change).
    caused: Map<ContactKey, Vec<String>>,
    pub accepted: u64,
    pub duplicates: u64,
    /// Messages for other partitions' re-key topic, with the partition that sends them: sent
    /// once the batch is stored (see `state::rekey`).
    pub forwards: Vec<(i32, Forward)>,
}

impl Batch {
    /// Folds one decoded event into its partition's `state`; a duplicate event id is counted
    /// and dropped.
    pub fn accept(
        &mut self,
        state: &mut PartitionState,
        event: Event,
        topic: String,
        partition: i32,
        offset: i64,
        now: Ms,
    ) {
        let applied = state.apply(&event);
        self.take_forwards(state, partition);
        if applied == Applied::Duplicate {
            self.duplicates += 1;
            return;
        }
        self.accepted += 1;
        let feed = signals::feed(&event, partition, now);
        self.caused
            .entry(ContactKey::new(&event.business_id, &event.contact_id))
            .or_default()
            .push(event.event_id.clone());
        let out = self.output(partition);
        out.signals.extend(feed);
        out.events.push(AcceptedEvent {
            event,
            topic,
            partition,
            offset,
        });
    }

    /// Folds an event that partition `origin` forwarded over the re-key topic into
    /// `partition`'s state. It is not stored again: the re-key topic keeps it, and a rebuild
    /// reads it back from there.
    pub fn accept_rekeyed(
        &mut self,
        state: &mut PartitionState,
        event: &Event,
        partition: i32,
        origin: i32,
    ) {
        let applied = state.apply_rekeyed(event, origin);
        self.take_forwards(state, partition);
        if applied == Applied::New && matches!(event.payload, Payload::ContactErased(_)) {
            let forgotten = (event.business_id.clone(), event.contact_id.clone());
            self.output(partition).forgotten.push(forgotten);
        }
    }

    fn take_forwards(&mut self, state: &mut PartitionState, partition: i32) {
        self.forwards
            .extend(state.take_forwards().into_iter().map(|f| (partition, f)));
    }

    fn output(&mut self, partition: i32) -> &mut PartitionOutput {
        self.outputs
            .entry(partition)
            .or_insert_with(|| PartitionOutput {
                partition,
                ..Default::default()
            })
    }

    /// Evaluates every partition's due contacts at `now` (in one engine run) and keeps the
    /// profiles whose content changed since they were last written, with their score changes
    /// and signals.
    pub async fn evaluate(
        &mut self,
        engine: &Engine,
        partitions: &mut BTreeMap<i32, PartitionState>,
        now: Ms,
    ) -> Result<(), EngineError> {
        let due: BTreeMap<i32, Vec<ContactKey>> = partitions
            .iter_mut()
            .map(|(&p, state)| (p, state.take_due(now)))
            .filter(|(_, keys)| !keys.is_empty())
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let profiles = engine.evaluate_all(partitions, &due, now).await?;
        let caused = std::mem::take(&mut self.caused);
        for pr in profiles {
            let p = pr.partition;
            let key = ContactKey::new(&pr.business_id, &pr.contact_id);
            let Some(c) = partitions.get(&p).and_then(|s| s.contacts.get(&key)) else {
                continue;
            };
            if c.last_written == Some(pr.fingerprint()) {
                continue;
            }
            let ids = caused.get(&key).map_or(&[][..], Vec::as_slice);
            let out = self.output(p);
            if c.last_score != Some(pr.lead_score) {
                out.changes.push(score_change(&pr, c.last_score, ids, now));
            }
            out.signals.extend(signals::diff(c, &pr, ids));
            out.profiles.push(std::sync::Arc::new(pr));
        }
        self.caused = caused;
        Ok(())
    }
}

/// Once `out` is handed to the sink: its profiles are what the state compares against next.
/// The processor does not wait for the write (the next batch is evaluated meanwhile): a write
/// is retried until it succeeds, and any other failure stops the processor, whose state is
/// then rebuilt from what the sink holds.
pub fn remember(state: &mut PartitionState, out: &PartitionOutput) {
    for pr in &out.profiles {
        let key = ContactKey::new(&pr.business_id, &pr.contact_id);
        if let Some(c) = state.contacts.get_mut(&key) {
            c.remember(pr);
        }
    }
}

fn score_change(pr: &ContactProfile, old: Option<i64>, ids: &[String], now: Ms) -> ScoreChange {
    ScoreChange {
        business_id: pr.business_id.clone(),
        contact_id: pr.contact_id.clone(),
        partition: pr.partition,
        old_score: old,
        new_score: pr.lead_score,
        factors: pr.factors.clone(),
        rule_version: pr.rule_version.clone(),
        reason: if ids.is_empty() { "time" } else { "events" },
        caused_by: ids.to_vec(),
        evaluated_at: now,
    }
}
