//! The embedded store: events, profile versions, lead-score changes and the latest batch of
//! signals as Arrow IPC segments under the data directory, plus the in-memory read model the
//! API serves from.
//!
//! It is the default sink: a micro-batch is durable once `write` returns (see [`segments`] for
//! the commit protocol), and a partition's state is rebuilt from its events on `recover`.
//! Small segments are merged as they accumulate so a long-running store keeps few files.

mod read;
pub mod rows;
pub mod segments;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::error::ArrowError;
use model::event::Payload;
use model::profile::ContactProfile;
use model::signal::Signal;
use model::sink::{PartitionOutput, Recovered, ResultSink, SinkError};

use crate::index::ProfileIndex;
use crate::rows::{HistoryRow, SignalRowRef, StoredEvent, StoredEventRef};
use segments::{Kind, Segment, SegmentError, Segments};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error("converting rows of {what}: {source}")]
    Rows {
        what: &'static str,
        source: serde_arrow::Error,
    },
    #[error("reading the columns of {what}: {source}")]
    Columns {
        what: &'static str,
        source: ArrowError,
    },
    #[error("de-duplicating stored profiles: {0}")]
    Dedupe(#[source] datafusion::arrow::error::ArrowError),
    #[error("stored event {event_id} cannot be read back: {detail}")]
    Event { event_id: String, detail: String },
    #[error("{path}: a stored signal cannot be read back: {detail}")]
    Signal { path: PathBuf, detail: String },
}

impl From<StoreError> for SinkError {
    fn from(e: StoreError) -> Self {
        match &e {
            // A full disk or a lost mount may come back; a file we cannot parse will not.
            StoreError::Segment(SegmentError::Io { .. }) => SinkError::Transient(e.to_string()),
            _ => SinkError::Permanent(e.to_string()),
        }
    }
}

/// Segments at most this large are merged once enough of them accumulate (`merge_threshold`).
const SMALL_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Debug)]
struct Inner {
    segments: Segments,
    next_seq: Mutex<HashMap<i32, u64>>,
    index: Arc<ProfileIndex>,
    merge_after: usize,
    /// Opened to read beside a writer: writes are refused.
    read_only: bool,
}

/// A cheap handle; clones share the same files and index.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

fn columns_err(what: &'static str) -> impl FnOnce(ArrowError) -> StoreError {
    move |source| StoreError::Columns { what, source }
}

fn rows_err(what: &'static str) -> impl FnOnce(serde_arrow::Error) -> StoreError {
    move |source| StoreError::Rows { what, source }
}

impl EmbeddedStore {
    /// Opens (or creates) the store under `dir`, cleans up after any crash, and loads the current
    /// profiles into the read model.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let segments = Segments::new(dir.into());
        let mut next_seq = HashMap::new();
        for p in segments.partitions()? {
            segments.clean(p)?;
            next_seq.insert(p, segments.committed(p)?.map_or(0, |s| s + 1));
        }
        let store = Self::handle(segments, next_seq, false);
        for p in store.inner.segments.partitions()? {
            store.inner.index.upsert(store.latest_profiles(p)?);
            // The activity straight from the segments' columns: no event is copied into rows.
            let batches = store.inner.segments.read(Kind::Events, p)?;
            let mut events = Vec::new();
            for b in &batches {
                events.extend(rows::event_refs(b).map_err(columns_err("events"))?);
            }
            store.inner.index.reload_partition(p, events);
        }
        tracing::info!(dir = %store.dir().display(), contacts = store.inner.index.len(), "embedded store opened");
        Ok(store)
    }

    /// Opens the store under `dir` to read it while a `keyflow run` may be writing it (e.g. for
    /// `keyflow sql`): cleans nothing (a segment past the last commit may be a write in
    /// progress, and reads skip it anyway), loads no read model, and refuses writes.
    pub fn open_read_only(dir: impl Into<PathBuf>) -> Self {
        Self::handle(Segments::new(dir.into()), HashMap::new(), true)
    }

    fn handle(segments: Segments, next_seq: HashMap<i32, u64>, read_only: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                segments,
                next_seq: Mutex::new(next_seq),
                index: Arc::new(ProfileIndex::default()),
                merge_after: 32,
                read_only,
            }),
        }
    }

    pub fn dir(&self) -> &Path {
        self.inner.segments.root()
    }

    /// The read model, shared with the API.
    pub fn index(&self) -> Arc<ProfileIndex> {
        self.inner.index.clone()
    }

    /// Partitions with data.
    pub fn partitions(&self) -> Result<Vec<i32>, StoreError> {
        Ok(self.inner.segments.partitions()?)
    }

    /// Every stored event of `partition`, in processing order.
    pub fn events(&self, partition: i32) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        for b in self.inner.segments.read(Kind::Events, partition)? {
            out.extend(rows::events_from(&b).map_err(rows_err("events"))?);
        }
        Ok(out)
    }

    /// Every stored profile version of `partition`, oldest first.
    pub fn profile_versions(&self, partition: i32) -> Result<Vec<ContactProfile>, StoreError> {
        let mut out = Vec::new();
        for b in self.inner.segments.read(Kind::Profiles, partition)? {
            out.extend(rows::profiles_from(&b).map_err(rows_err("profiles"))?);
        }
        Ok(out)
    }

    /// The latest version of each contact of `partition`.
    pub fn latest_profiles(&self, partition: i32) -> Result<Vec<ContactProfile>, StoreError> {
        let versions = self.inner.segments.read(Kind::Profiles, partition)?;
        let Some(latest) = rows::latest_profile_rows(&versions).map_err(StoreError::Dedupe)? else {
            return Ok(Vec::new());
        };
        let mut out = rows::profiles_from(&latest).map_err(rows_err("profiles"))?;
        out.sort_by(|a, b| (&a.business_id, &a.contact_id).cmp(&(&b.business_id, &b.contact_id)));
        Ok(out)
    }

    /// The signals of the partition's latest committed batch that had any (see
    /// `Recovered::unpublished`).
    pub fn last_signals(&self, partition: i32) -> Result<Vec<Signal>, StoreError> {
        let segs = &self.inner.segments;
        let Some(last) = segs.committed_list(Kind::Signals, partition)?.pop() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for b in Segments::read_file(&last.path)? {
            for row in rows::signals_from(&b).map_err(rows_err("signals"))? {
                out.push(row.to_signal().map_err(|detail| StoreError::Signal {
                    path: last.path.clone(),
                    detail,
                })?);
            }
        }
        Ok(out)
    }

    /// Takes what a write of `out` stores, on the caller's task (see [`Prepared`]).
    fn prepare(&self, out: &PartitionOutput) -> Result<Prepared, StoreError> {
        let p = out.partition;
        let seq = {
            let mut seqs = self.inner.next_seq.lock().expect("seq lock");
            let next = seqs.entry(p).or_insert(0);
            let seq = *next;
            *next += 1;
            seq
        };
        Ok(Prepared {
            partition: p,
            seq,
            events: {
                let data: Vec<String> = out
                    .events
                    .iter()
                    .map(|a| a.event.payload.data_json())
                    .collect();
                let rows: Vec<StoredEventRef<'_>> = (out.events.iter().zip(&data))
                    .map(|(a, d)| StoredEventRef::new(a, d))
                    .collect();
                rows::events_batch(&rows).map_err(rows_err("events"))?
            },
            profiles: out.profiles.clone(),
            signals: (!out.signals.is_empty())
                .then(|| {
                    let rows: Vec<SignalRowRef<'_>> = out
                        .signals
                        .iter()
                        .map(|s| SignalRowRef::new(s, seq))
                        .collect();
                    rows::signals_batch(&rows).map_err(rows_err("signals"))
                })
                .transpose()?,
            scores: out.changes.iter().map(HistoryRow::from).collect(),
            erased: out
                .events
                .iter()
                .map(|a| &a.event)
                .filter(|e| matches!(e.payload, Payload::ContactErased(_)))
                .map(|e| (e.business_id.clone(), e.contact_id.clone()))
                .chain(out.forgotten.iter().cloned())
                .collect(),
        })
    }

    fn write_blocking(&self, out: Prepared) -> Result<(), StoreError> {
        let (p, seq) = (out.partition, out.seq);
        let segs = &self.inner.segments;
        if !out.profiles.is_empty() {
            let batch = rows::profiles_batch(&out.profiles).map_err(rows_err("profiles"))?;
            segs.write(Kind::Profiles, p, seq, &batch.schema(), &[batch])?;
        }
        let older_signals = if let Some(batch) = out.signals {
            segs.write(Kind::Signals, p, seq, &batch.schema(), &[batch])?;
            segs.list(Kind::Signals, p)?
                .into_iter()
                .filter(|s| s.seq < seq)
                .collect()
        } else {
            Vec::new()
        };
        if !out.scores.is_empty() {
            let batch = rows::scores_batch(&out.scores).map_err(rows_err("scores"))?;
            segs.write(Kind::Scores, p, seq, &batch.schema(), &[batch])?;
        }
        let events = &out.events;
        segs.write(
            Kind::Events,
            p,
            seq,
            &events.schema(),
            std::slice::from_ref(events),
        )?;
        // Committed: only this batch's signals can still be unpublished.
        segs.remove(&older_signals)?;
        self.inner.index.upsert(out.profiles);
        self.inner
            .index
            .record(rows::event_refs(events).map_err(columns_err("events"))?);
        if !out.erased.is_empty() {
            self.erase(p, &out.erased)?;
            self.inner.index.redact(&out.erased);
        }
        self.merge_small(Kind::Events, p)?;
        self.merge_small(Kind::Profiles, p)?;
        self.merge_small(Kind::Scores, p)?;
        Ok(())
    }

    /// Rewrites every event and profile segment of `partition` with the personal data of the
    /// `erased` contacts removed (events redacted, every stored profile version blanked and
    /// their ids taken out of other contacts' alias lists, their stored signals dropped), as one segment per kind covering every seq, then deletes the
    /// old files. The new file supersedes them as soon as it is in place: a crash before the
    /// deletes leaves files no reader sees and the next open deletes.
    fn erase(&self, p: i32, erased: &[(String, String)]) -> Result<(), StoreError> {
        let hit = |b: &str, c: &str| erased.iter().any(|(x, y)| x == b && y == c);
        let segs = &self.inner.segments;
        let files = segs.list(Kind::Events, p)?;
        if !files.is_empty() {
            let mut events = self.events(p)?;
            for e in events
                .iter_mut()
                .filter(|e| hit(&e.business_id, &e.contact_id))
            {
                let payload =
                    model::event::Payload::from_parts(&e.kind, &e.data).map_err(|err| {
                        StoreError::Event {
                            event_id: e.event_id.clone(),
                            detail: err.to_string(),
                        }
                    })?;
                e.data = payload.redacted().data_json();
            }
            let batch = rows::events_batch(&events).map_err(rows_err("events"))?;
            segs.replace(Kind::Events, p, &files, &batch.schema(), &[batch])?;
        }
        let files = segs.list(Kind::Profiles, p)?;
        if !files.is_empty() {
            let mut versions = self.profile_versions(p)?;
            for v in versions.iter_mut() {
                if hit(&v.business_id, &v.contact_id) {
                    v.name = None;
                    v.email = None;
                    v.phone = None;
                    v.photo_url = None;
                }
                // A survivor's alias list names the contacts merged into it.
                let business = v.business_id.clone();
                v.aliases.retain(|a| !hit(&business, a));
            }
            let batch = rows::profiles_batch(&versions).map_err(rows_err("profiles"))?;
            segs.replace(Kind::Profiles, p, &files, &batch.schema(), &[batch])?;
        }
        // Stored signals (kept to republish after a crash) are dropped for erased contacts:
        // their reasons and prompts quote names.
        for f in segs.list(Kind::Signals, p)? {
            let mut kept = Vec::new();
            for b in Segments::read_file(&f.path)? {
                kept.extend(
                    rows::signals_from(&b)
                        .map_err(rows_err("signals"))?
                        .into_iter()
                        .filter(|r| !hit(&r.business_id, &r.contact_id)),
                );
            }
            let batch = rows::signals_batch(&kept).map_err(rows_err("signals"))?;
            segs.write_range(Kind::Signals, p, f.first..=f.seq, &batch.schema(), &[batch])?;
        }
        tracing::info!(
            partition = p,
            contacts = erased.len(),
            "personal data erased from the embedded store"
        );
        Ok(())
    }

    /// How many small segments of partition `p` may accumulate before they are merged:
    /// `merge_after` for partitions 0, 3, 6..., a third more for 1, 4, 7..., two thirds more
    /// for 2, 5, 8.... The processor writes a batch's partitions together, so with one
    /// threshold every partition merged in the same write, and that write's stall was all
    /// three merges sharing two cores; staggered, most writes hold one merge at most.
    fn merge_threshold(&self, p: i32) -> usize {
        let every = self.inner.merge_after;
        every + p.rem_euclid(3) as usize * every / 3
    }

    /// Merges the newest run of small segments into one once it is longer than the partition's
    /// [`Self::merge_threshold`].
    /// The merged file is named by the run's seq range and supersedes the run's files once in
    /// place, so a crash before they are deleted leaves no duplicates (see [`segments`]).
    fn merge_small(&self, kind: Kind, p: i32) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let segs = &self.inner.segments;
        let all = segs.list(kind, p)?;
        let run: Vec<Segment> = all
            .iter()
            .rev()
            .take_while(|s| s.bytes <= SMALL_SEGMENT_BYTES)
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if run.len() <= self.merge_threshold(p) {
            return Ok(());
        }
        let mut batches: Vec<RecordBatch> = Vec::new();
        for s in &run {
            batches.extend(Segments::read_file(&s.path)?);
        }
        let batches = match kind {
            Kind::Events | Kind::Signals | Kind::Scores => batches,
            // Keep only the newest version of each contact within the run.
            Kind::Profiles => rows::latest_profile_rows(&batches)
                .map_err(StoreError::Dedupe)?
                .into_iter()
                .collect(),
        };
        let schema = match kind {
            Kind::Events => rows::schema(&rows::event_fields()),
            Kind::Profiles => rows::schema(&rows::profile_fields()),
            Kind::Signals => rows::schema(&rows::signal_fields()),
            Kind::Scores => rows::schema(&rows::score_fields()),
        };
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        segs.replace(kind, p, &run, &schema, &batches)?;
        tracing::debug!(
            partition = p,
            kind = ?kind,
            merged = run.len(),
            ms = started.elapsed().as_millis() as u64,
            "segments merged"
        );
        Ok(())
    }

    /// Every lead-score change of partition `p`, in the order they were stored.
    pub fn scores(&self, p: i32) -> Result<Vec<HistoryRow>, StoreError> {
        let mut out = Vec::new();
        for b in self.inner.segments.read(Kind::Scores, p)? {
            out.extend(rows::scores_from(&b).map_err(rows_err("scores"))?);
        }
        Ok(out)
    }

    /// The lead-score changes of one contact of partition `p`, in the order they were stored.
    pub fn score_rows(
        &self,
        p: i32,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Vec<HistoryRow>, StoreError> {
        let mut rows = self.scores(p)?;
        rows.retain(|r| r.business_id == business_id && r.contact_id == contact_id);
        Ok(rows)
    }

    /// One contact's stored events of partition `p`, in processing order.
    fn history_blocking(
        &self,
        p: i32,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Vec<model::event::Event>, StoreError> {
        self.events(p)?
            .into_iter()
            .filter(|e| e.business_id == business_id && e.contact_id == contact_id)
            .map(|e| read_back(&e))
            .collect()
    }

    fn recover_blocking(&self, p: i32) -> Result<Recovered, StoreError> {
        self.inner.segments.clean(p)?;
        let stored = self.events(p)?;
        let events = stored
            .iter()
            .map(read_back)
            .collect::<Result<Vec<_>, _>>()?;
        self.inner
            .index
            .reload_partition(p, stored.iter().map(StoredEventRef::of));
        let profiles = self.latest_profiles(p)?;
        self.inner.index.upsert(profiles.iter().cloned());
        Ok(Recovered {
            events,
            profiles,
            unpublished: self.last_signals(p)?,
            // A write is committed by its events segment, after its signals and profiles:
            // never partial.
            signalled: Vec::new(),
            unsignalled: Vec::new(),
        })
    }
}

/// A stored event as the processor reads it back.
fn read_back(e: &StoredEvent) -> Result<model::event::Event, StoreError> {
    e.to_event().map_err(|detail| StoreError::Event {
        event_id: e.event_id.clone(),
        detail,
    })
}

/// One write's content in the form it is stored in: the events and signals as Arrow batches
/// built from rows that borrow the output, the score changes as rows, the profiles (written,
/// then moved into the read model). `write` builds it from the borrowed output before handing
/// it to a blocking task, which records the activity from the events batch's columns.
struct Prepared {
    partition: i32,
    seq: u64,
    /// The events' segment, built from the borrowed output; the activity is read from it.
    events: RecordBatch,
    profiles: Vec<Arc<ContactProfile>>,
    /// The signals' segment, built from the borrowed output (none without signals).
    signals: Option<RecordBatch>,
    scores: Vec<HistoryRow>,
    /// (business, contact) of the batch's erasure events.
    erased: Vec<(String, String)>,
}

#[async_trait]
impl ResultSink for EmbeddedStore {
    async fn write(&self, output: &PartitionOutput) -> Result<(), SinkError> {
        if self.inner.read_only {
            return Err(SinkError::Permanent(format!(
                "{}: the store was opened read-only",
                self.dir().display()
            )));
        }
        let store = self.clone();
        let prepared = self.prepare(output)?;
        tokio::task::spawn_blocking(move || store.write_blocking(prepared))
            .await
            .map_err(|e| SinkError::Permanent(format!("store writer panicked: {e}")))?
            .map_err(Into::into)
    }

    async fn recover(&self, partition: i32) -> Result<Recovered, SinkError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.recover_blocking(partition))
            .await
            .map_err(|e| SinkError::Permanent(format!("store reader panicked: {e}")))?
            .map_err(Into::into)
    }

    async fn history(
        &self,
        partition: i32,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Vec<model::event::Event>, SinkError> {
        let store = self.clone();
        let (business_id, contact_id) = (business_id.to_owned(), contact_id.to_owned());
        tokio::task::spawn_blocking(move || {
            store.history_blocking(partition, &business_id, &contact_id)
        })
        .await
        .map_err(|e| SinkError::Permanent(format!("store reader panicked: {e}")))?
        .map_err(Into::into)
    }

    async fn release(&self, partition: i32) {
        self.inner.index.drop_partition(partition);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::SignalRow;
    use model::signal::SEGMENT_UPDATED;

    fn signal(id: &str, change: &'static str) -> Signal {
        Signal {
            signal_id: id.into(),
            kind: SEGMENT_UPDATED,
            business_id: "b".into(),
            contact_id: "c".into(),
            partition: 2,
            subject: "vip".into(),
            change,
            reason: "why".into(),
            at: 1_700_000_000_000,
            rule_version: "v1".into(),
            caused_by: vec!["e1".into()],
            detail: serde_json::json!({"segment": "vip"}),
        }
    }

    #[test]
    fn a_signal_segment_built_from_borrowed_rows_is_the_same() {
        let signals = [signal("s1", "entered"), signal("s2", "exited")];
        let owned: Vec<SignalRow> = signals.iter().map(|s| SignalRow::new(s, 4)).collect();
        let borrowed: Vec<SignalRowRef<'_>> =
            signals.iter().map(|s| SignalRowRef::new(s, 4)).collect();
        let a = rows::signals_batch(&owned).unwrap();
        let b = rows::signals_batch(&borrowed).unwrap();
        assert_eq!(a.num_rows(), 2);
        assert_eq!(a, b);
        assert_eq!(rows::signals_from(&b).unwrap(), owned);
    }

    fn output(signals: Vec<Signal>) -> PartitionOutput {
        PartitionOutput {
            partition: 2,
            signals,
            ..Default::default()
        }
    }

    fn one_event(i: i64) -> PartitionOutput {
        event_in(2, i)
    }

    fn event_in(partition: i32, i: i64) -> PartitionOutput {
        use model::event::{ContactCreated, Event, SCHEMA_VERSION};
        let event = Event {
            schema_version: SCHEMA_VERSION,
            event_id: format!("e{partition}-{i}"),
            business_id: "b".into(),
            contact_id: format!("c{partition}-{i}"),
            occurred_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + i).unwrap(),
            source: "manual".into(),
            payload: Payload::ContactCreated(ContactCreated {
                name: format!("Contact {i}"),
                ..Default::default()
            }),
        };
        PartitionOutput {
            partition,
            events: vec![model::sink::AcceptedEvent {
                event,
                topic: "crm.contacts".into(),
                partition,
                offset: i,
            }],
            ..Default::default()
        }
    }

    fn change(contact: &str, old: Option<i64>, new: i64, at: i64) -> model::sink::ScoreChange {
        model::sink::ScoreChange {
            business_id: "b".into(),
            contact_id: contact.into(),
            partition: 2,
            old_score: old,
            new_score: new,
            factors: vec![model::profile::Factor {
                factor: "bookings_completed".into(),
                count: new / 10,
                points: new,
            }],
            rule_version: "v1".into(),
            caused_by: vec![format!("e{at}")],
            reason: "events",
            evaluated_at: at,
        }
    }

    #[tokio::test]
    async fn score_changes_are_kept_through_merges_and_reopens_and_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let writes = 2 * (store.merge_threshold(2) as i64 + 1);
        for i in 0..writes {
            let mut out = one_event(i);
            out.changes = vec![
                change("c", (i > 0).then_some(i - 1), i, 1_000 + i),
                change("other", None, 50, 1_000 + i),
            ];
            store.write(&out).await.unwrap();
        }
        let segments = store.inner.segments.list(Kind::Scores, 2).unwrap();
        assert!(
            segments.iter().any(|s| s.first < s.seq),
            "merged: {segments:?}"
        );
        let want: Vec<_> = (0..writes)
            .map(|i| change("c", (i > 0).then_some(i - 1), i, 1_000 + i))
            .collect();
        let got: Vec<_> = store
            .score_rows(2, "b", "c")
            .unwrap()
            .iter()
            .map(HistoryRow::to_change)
            .collect();
        assert_eq!(got, want, "every change of c, in order, after merges");

        // A scores segment past the last commit (a crash before the events segment) is not
        // history, and the reopen deletes it.
        let batch = rows::scores_batch(&[HistoryRow::from(&change("c", None, 99, 9_999))]).unwrap();
        let next = store.inner.segments.committed(2).unwrap().unwrap() + 1;
        store
            .inner
            .segments
            .write(Kind::Scores, 2, next, &batch.schema(), &[batch])
            .unwrap();
        assert_eq!(store.score_rows(2, "b", "c").unwrap().len() as i64, writes);
        drop(store);
        let reopened = EmbeddedStore::open(dir.path()).unwrap();
        let kept = reopened.score_rows(2, "b", "c").unwrap();
        assert_eq!(kept.len() as i64, writes);
        assert_eq!(kept.last().unwrap().new_score, writes - 1);
    }

    #[tokio::test]
    async fn small_segments_are_merged_without_losing_an_event() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let threshold = store.merge_threshold(2);
        let writes = 3 * (threshold as i64 + 1);
        for i in 0..writes {
            store.write(&one_event(i)).await.unwrap();
        }
        let segments = store.inner.segments.list(Kind::Events, 2).unwrap();
        assert!(
            segments.len() <= threshold,
            "{} event segments after {writes} writes: never merged",
            segments.len()
        );
        assert!(segments.iter().any(|s| s.first < s.seq), "a merged range");
        let recovered = store.recover(2).await.unwrap();
        let mut ids: Vec<String> = recovered
            .events
            .iter()
            .map(|e| e.event_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len() as i64, writes, "every event once");
        assert_eq!(recovered.events.len() as i64, writes, "no event twice");
    }

    #[tokio::test]
    async fn partitions_written_together_do_not_merge_in_the_same_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let files = |p| store.inner.segments.list(Kind::Events, p).unwrap().len();
        let mut merges = 0;
        for i in 0..3 * store.merge_threshold(2) as i64 {
            let mut merged_now = Vec::new();
            for p in 0..3 {
                let before = files(p);
                store.write(&event_in(p, i)).await.unwrap();
                if files(p) < before {
                    merged_now.push(p);
                }
            }
            assert!(
                merged_now.len() <= 1,
                "write {i} merged partitions {merged_now:?}"
            );
            merges += merged_now.len();
        }
        assert!(merges >= 3, "only {merges} merges");
    }

    #[tokio::test]
    async fn merged_profile_segments_keep_each_contacts_newest_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let threshold = store.merge_threshold(2);
        let writes = 2 * (threshold as i64 + 1);
        for i in 0..writes {
            let mut out = one_event(i);
            // Two contacts, each evaluated again by every write.
            out.profiles = ["c0", "c1"]
                .into_iter()
                .map(|c| ContactProfile {
                    business_id: "b".into(),
                    contact_id: c.into(),
                    partition: 2,
                    lead_score: i,
                    evaluated_at: 1_700_000_000_000 + i,
                    ..Default::default()
                })
                .map(Arc::new)
                .collect();
            store.write(&out).await.unwrap();
        }
        let files = store.inner.segments.list(Kind::Profiles, 2).unwrap();
        assert!(files.len() <= threshold, "{} files", files.len());
        let merged = files
            .iter()
            .find(|s| s.first < s.seq)
            .expect("a merged range");
        let rows: usize = Segments::read_file(&merged.path)
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 2, "one version per contact in a merged file");
        let latest = store.latest_profiles(2).unwrap();
        let scores: Vec<(&str, i64)> = latest
            .iter()
            .map(|p| (p.contact_id.as_str(), p.lead_score))
            .collect();
        assert_eq!(scores, vec![("c0", writes - 1), ("c1", writes - 1)]);
    }

    #[tokio::test]
    async fn a_read_only_open_beside_a_writer_neither_cleans_nor_reads_a_write_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        for i in 0..3 {
            store.write(&one_event(i)).await.unwrap();
        }
        // The writer is mid-way through its next batch: profiles written, events not yet.
        let segs = &store.inner.segments;
        let in_progress = vec![ContactProfile {
            business_id: "b".into(),
            contact_id: "c0".into(),
            ..Default::default()
        }];
        let batch = rows::profiles_batch(&in_progress).unwrap();
        let path = segs
            .write(Kind::Profiles, 2, 3, &batch.schema(), &[batch])
            .unwrap();

        let reader = EmbeddedStore::open_read_only(dir.path());
        assert_eq!(reader.events(2).unwrap().len(), 3);
        assert_eq!(
            reader.profile_versions(2).unwrap(),
            vec![],
            "the uncommitted profiles segment is not read"
        );
        assert!(path.exists(), "nor deleted under the writer");
        let refused = reader.write(&one_event(9)).await.unwrap_err();
        assert!(refused.to_string().contains("read-only"), "{refused}");
    }

    #[tokio::test]
    async fn recovery_returns_the_last_committed_batch_of_signals() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert!(store.recover(2).await.unwrap().unpublished.is_empty());

        store
            .write(&output(vec![signal("s1", "entered")]))
            .await
            .unwrap();
        store
            .write(&output(vec![signal("s2", "exited")]))
            .await
            .unwrap();
        // A batch without signals leaves the last batch that had some.
        store.write(&output(vec![])).await.unwrap();
        let got = store.recover(2).await.unwrap().unpublished;
        assert_eq!(got, vec![signal("s2", "exited")]);
        // Only the latest batch of signals is kept.
        let files = store.inner.segments.list(Kind::Signals, 2).unwrap();
        assert_eq!(files.len(), 1);

        // A crash after the signals segment, before the commit marker: not recovered, removed.
        let rows = vec![SignalRow::new(&signal("s3", "entered"), 9)];
        let batch = rows::signals_batch(&rows).unwrap();
        let segs = &store.inner.segments;
        segs.write(Kind::Signals, 2, 9, &batch.schema(), &[batch])
            .unwrap();
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let got = store.recover(2).await.unwrap().unpublished;
        assert_eq!(got, vec![signal("s2", "exited")]);
        assert_eq!(
            store.inner.segments.list(Kind::Signals, 2).unwrap().len(),
            1
        );
    }
}
