//! Durable writes to ClickHouse and the recovery read.
//!
//! One micro-batch of one partition is a few inserts, events first and profiles after the
//! signals: whatever the profiles reflect is then always in `events`, and every stored change
//! has its signals stored, so a crash between inserts is repaired by the rebuild and replay
//! (see `sql/clickhouse/README.md` for why replays leave the views unchanged). On recovery the
//! partition's latest batch of signals is read back for the processor to republish, its latest
//! batch of changes for the rebuilt state to take as written (`Recovered::signalled`: a crash
//! may have stored them without the profiles), the events of a write that crashed before its
//! signals were stored are handed back for their flow-feed prompts (`Recovered::unsignalled`),
//! and the erasures a crash may have cut short are done again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use model::event::{Event, Payload};
use model::profile::ContactProfile;
use model::signal::Signal;
use model::sink::{PartitionOutput, Recovered, ResultSink, SinkError};

use super::config::ClickHouseConfig;
use super::rows::{EventRow, HistoryRow, ProfileRow, SegmentChangeRow};
use super::service::classify;
use crate::rows::SignalRow;

/// Longest one request may take before it counts as a (transient) timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Reads of a whole partition (recovery) or contact (erase) get longer.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs one ClickHouse request under `limit`, naming it `what` in the error.
async fn timed<T>(
    what: &str,
    limit: Duration,
    work: impl Future<Output = clickhouse::error::Result<T>>,
) -> Result<T, SinkError> {
    match tokio::time::timeout(limit, work).await {
        Ok(res) => res.map_err(|e| classify(what, e)),
        Err(_) => Err(SinkError::Transient(format!(
            "{what}: timed out after {limit:?}"
        ))),
    }
}

#[derive(Clone)]
pub struct ClickHouseSink {
    client: clickhouse::Client,
    /// Next `ingest_seq` block per partition (recovery order of events).
    next_seq: Arc<Mutex<HashMap<i32, u64>>>,
}

impl ClickHouseSink {
    pub fn new(cfg: &ClickHouseConfig, url: &str) -> Self {
        Self {
            client: cfg.client(url),
            next_seq: Arc::default(),
        }
    }

    pub fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    async fn insert<T>(&self, table: &str, rows: &[T]) -> Result<(), SinkError>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let work = async {
            let mut insert = self.client.insert::<T>(table).await?;
            for r in rows {
                insert.write(r).await?;
            }
            insert.end().await
        };
        timed(&format!("insert into {table}"), REQUEST_TIMEOUT, work).await
    }

    /// Rewrites a contact's stored events without personal data: the redacted rows carry a
    /// higher `ingest_seq`, so ReplacingMergeTree keeps them over the originals (at once through
    /// FINAL, on disk at the next merge). Idempotent: redacting twice gives the same rows. The
    /// contact's stored signals, whose reasons and prompts quote names, are deleted (a mutation:
    /// ClickHouse applies it in the background, within seconds on a quiet table).
    async fn erase(
        &self,
        partition: i32,
        business_id: &str,
        contact_id: &str,
    ) -> Result<(), SinkError> {
        let read = self
            .client
            .query("SELECT ?fields FROM events FINAL WHERE business_id = ? AND contact_id = ? ORDER BY ingest_seq")
            .bind(business_id)
            .bind(contact_id);
        let rows: Vec<EventRow> = timed("erase read", READ_TIMEOUT, read.fetch_all()).await?;
        let block = self.seq_block(partition) << 20;
        let mut redacted = Vec::with_capacity(rows.len());
        for (i, r) in rows.into_iter().enumerate() {
            let payload = model::event::Payload::from_parts(&r.kind, &r.data).map_err(|e| {
                SinkError::Permanent(format!("event {} cannot be redacted: {e}", r.event_id))
            })?;
            redacted.push(EventRow {
                data: payload.redacted().data_json(),
                ingest_seq: block + i as u64,
                ..r
            });
        }
        tracing::info!(
            business_id,
            contact_id,
            events = redacted.len(),
            "personal data erased from stored events"
        );
        self.insert("events", &redacted).await?;
        self.forget_alias(business_id, contact_id).await?;
        let delete = self
            .client
            .query("ALTER TABLE signals DELETE WHERE business_id = ? AND contact_id = ?")
            .bind(business_id)
            .bind(contact_id);
        timed("erase of stored signals", REQUEST_TIMEOUT, delete.execute()).await
    }

    /// Takes an erased contact's id out of every stored profile version's alias list (a
    /// mutation, like the signals' delete): older versions of a survivor keep naming it
    /// otherwise.
    async fn forget_alias(&self, business_id: &str, contact_id: &str) -> Result<(), SinkError> {
        let update = self
            .client
            .query(
                "ALTER TABLE contact_profiles UPDATE aliases = arrayFilter(a -> a != ?, aliases) \
                 WHERE business_id = ? AND has(aliases, ?)",
            )
            .bind(contact_id)
            .bind(business_id)
            .bind(contact_id);
        timed("erase from alias lists", REQUEST_TIMEOUT, update.execute()).await
    }

    fn seq_block(&self, partition: i32) -> u64 {
        let mut seqs = self.next_seq.lock().expect("seq lock");
        let next = seqs.entry(partition).or_insert(1);
        let block = *next;
        *next += 1;
        block
    }

    /// The signals stored by write `batch` of `partition`, in the order they were made. Batch 0
    /// holds the signals stored before batches were numbered: long published, never read.
    async fn batch_signals(&self, partition: i32, batch: u64) -> Result<Vec<Signal>, SinkError> {
        if batch == 0 {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query(
                "SELECT ?fields FROM signals FINAL WHERE partition = ? AND batch = ? \
                 ORDER BY at_ms, signal_id",
            )
            .bind(partition)
            .bind(batch);
        let rows: Vec<SignalRow> = timed("recovery read", READ_TIMEOUT, query.fetch_all()).await?;
        rows.iter()
            .map(SignalRow::to_signal)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|detail| {
                SinkError::Permanent(format!(
                    "a signal in ClickHouse cannot be read back: {detail}"
                ))
            })
    }

    /// A recovery read of one partition.
    async fn fetch<T>(&self, sql: &str, partition: i32) -> Result<Vec<T>, SinkError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        let query = self.client.query(sql).bind(partition);
        timed("recovery read", READ_TIMEOUT, query.fetch_all::<T>()).await
    }
}

/// The events of write `block`, the latest to store events, when no later write stored signals
/// (`Recovered::unsignalled`). A write inserts events first and signals after, so either it
/// crashed in between or it had no signals (then its events have no prompts either). An erase
/// rewrites its contact's events as a write of its own, after the batch's signals: the contacts
/// erased in `block` are left out, as an erased contact's prompts would quote its name.
fn unsignalled(rows: &[EventRow], events: &[Event], block: u64) -> Vec<Event> {
    let last: Vec<&Event> = rows
        .iter()
        .zip(events)
        .filter(|(r, _)| r.ingest_seq >> 20 == block)
        .map(|(_, e)| e)
        .collect();
    let erased: HashSet<(&str, &str)> = last
        .iter()
        .filter(|e| matches!(e.payload, Payload::ContactErased(_)))
        .map(|e| (e.business_id.as_str(), e.contact_id.as_str()))
        .collect();
    last.iter()
        .filter(|e| !erased.contains(&(e.business_id.as_str(), e.contact_id.as_str())))
        .map(|e| (*e).clone())
        .collect()
}

impl ClickHouseSink {
    /// Every insert of [`ResultSink::write`], without the erasures that follow them: what a
    /// crash between the two leaves behind, for the recovery to repair (and tests to stage).
    pub async fn insert_output(&self, out: &PartitionOutput) -> Result<(), SinkError> {
        // Blocks of 2^20 events: ingest_seq orders a partition's events as they were processed.
        let batch = self.seq_block(out.partition);
        let block = batch << 20;
        let events: Vec<EventRow> = out
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| EventRow::new(e, block + i as u64))
            .collect();
        self.insert("events", &events).await?;
        // Signals before profiles: a profile stored without its signals would never be diffed
        // again, so its signals would be lost.
        let signals: Vec<SignalRow> = out
            .signals
            .iter()
            .map(|s| SignalRow::new(s, batch))
            .collect();
        self.insert("signals", &signals).await?;
        let segments: Vec<SegmentChangeRow> = out
            .signals
            .iter()
            .filter_map(SegmentChangeRow::of)
            .collect();
        self.insert("segment_changes", &segments).await?;
        let profiles: Vec<ProfileRow> = out
            .profiles
            .iter()
            .map(|p| ProfileRow::from(&**p))
            .collect();
        self.insert("contact_profiles", &profiles).await?;
        let history: Vec<HistoryRow> = out.changes.iter().map(HistoryRow::from).collect();
        self.insert("lead_score_history", &history).await
    }
}

/// The contacts erased by events of write `since` or later. A write erases last, after its
/// inserts: a crash in between leaves the contact's stored events unredacted and its signals
/// in place, and the replay drops the `contact.erased` as a duplicate. Every write before the
/// partition's latest batch of signals finished its erasures (a recovery redoes them before it
/// stores any signal), so redoing those of `since` = that batch on recovery covers every crash.
fn erasures_since(rows: &[EventRow], events: &[Event], since: u64) -> BTreeSet<(String, String)> {
    rows.iter()
        .zip(events)
        .filter(|(r, e)| {
            r.ingest_seq >> 20 >= since && matches!(e.payload, Payload::ContactErased(_))
        })
        .map(|(_, e)| (e.business_id.clone(), e.contact_id.clone()))
        .collect()
}

#[async_trait]
impl ResultSink for ClickHouseSink {
    async fn write(&self, out: &PartitionOutput) -> Result<(), SinkError> {
        self.insert_output(out).await?;
        for e in out.events.iter().map(|a| &a.event) {
            if matches!(e.payload, Payload::ContactErased(_)) {
                self.erase(out.partition, &e.business_id, &e.contact_id)
                    .await?;
            }
        }
        for (business_id, contact_id) in &out.forgotten {
            self.forget_alias(business_id, contact_id).await?;
        }
        Ok(())
    }

    async fn recover(&self, partition: i32) -> Result<Recovered, SinkError> {
        let rows: Vec<EventRow> = self
            .fetch(
                "SELECT ?fields FROM events FINAL WHERE partition = ? ORDER BY ingest_seq, offset",
                partition,
            )
            .await?;
        // Signals alone (changes as time passes) also take a batch number. The latest batch of
        // signals, and the latest with changes (not only prompts): that write may have stored
        // its signals and not its profiles.
        let (last_batch, last_changes) = self
            .fetch::<(u64, u64)>(
                "SELECT max(batch), maxIf(batch, type != 'ai.feed.prompt') FROM signals \
                 WHERE partition = ?",
                partition,
            )
            .await?
            .first()
            .copied()
            .unwrap_or((0, 0));
        let max_block = rows.iter().map(|r| r.ingest_seq >> 20).max().unwrap_or(0);
        self.next_seq
            .lock()
            .expect("seq lock")
            .insert(partition, max_block.max(last_batch) + 1);
        let unpublished = self.batch_signals(partition, last_batch).await?;
        let signalled = if last_changes == last_batch {
            unpublished.clone()
        } else {
            self.batch_signals(partition, last_changes).await?
        };
        let signalled = signalled
            .into_iter()
            .filter(|s| s.kind != model::signal::FEED_PROMPT)
            .collect();
        let events = rows.iter().map(read_back).collect::<Result<Vec<_>, _>>()?;
        let unsignalled = if max_block > last_batch {
            unsignalled(&rows, &events, max_block)
        } else {
            Vec::new()
        };
        let erased = erasures_since(&rows, &events, last_batch);
        for (business_id, contact_id) in &erased {
            self.erase(partition, business_id, contact_id).await?;
        }
        let profiles: Vec<ProfileRow> = self
            .fetch(
                "SELECT ?fields FROM contact_profiles FINAL WHERE partition = ?",
                partition,
            )
            .await?;
        let profiles = profiles.into_iter().map(ContactProfile::from).collect();
        Ok(Recovered {
            events,
            profiles,
            unpublished,
            signalled,
            unsignalled,
        })
    }

    async fn history(
        &self,
        partition: i32,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Vec<model::event::Event>, SinkError> {
        let query = self
            .client
            .query(
                "SELECT ?fields FROM events FINAL \
                 WHERE business_id = ? AND contact_id = ? AND partition = ? \
                 ORDER BY ingest_seq, offset",
            )
            .bind(business_id)
            .bind(contact_id)
            .bind(partition);
        let rows: Vec<EventRow> = timed("history read", READ_TIMEOUT, query.fetch_all()).await?;
        rows.iter().map(read_back).collect()
    }
}

/// A stored event row as the processor reads it back.
fn read_back(r: &EventRow) -> Result<model::event::Event, SinkError> {
    r.to_stored().to_event().map_err(|detail| {
        SinkError::Permanent(format!(
            "event {} in ClickHouse cannot be read back: {detail}",
            r.event_id
        ))
    })
}
