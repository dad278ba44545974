//! The processor loop: read a micro-batch, decode and dead-letter, fold into windowed state,
//! evaluate what is due at the engine's clock, write durably, publish its signals, then commit
//! offsets.
//!
//! At-least-once in (offsets committed only after the sink confirmed every write of the batch),
//! idempotent out (event ids counted once, profiles written only when their content changes).
//!
//! Three batches are in hand at a time, each stage on a task of its own: while batch n is
//! written, published and committed (its [`Settle`]), batch n+1 is decoded and evaluated and
//! batch n+2 is read out of the consumer ([`fetch`]). Settles run one after the other, in batch
//! order, so writes, signals and commits keep the order of a sequential loop; only the reading
//! and the CPU work of the next batches move ahead.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::DeliveryFuture;
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::batch::{self, Batch};
use crate::clock::Ms;
use crate::clock::SharedClock;
use crate::config::ProcessingConfig;
use crate::decode::Decoder;
use crate::engine::{Engine, EngineError};
use crate::event::Event;
use crate::kafka::dlq::DeadLetters;
use crate::kafka::rekey::Rekey;
use crate::kafka::signals::SignalProducer;
use crate::kafka::source::{Assignment, Source, SourceContext};
use crate::signals::{self, Signal};
use crate::sink::{PartitionOutput, ResultSink, SinkError};
use crate::state::{Forward, PartitionState};
use crate::status::{ProcessorStatus, Stage};

mod fetch;
mod monitor;
use fetch::{Fetched, Fetcher};
use monitor::Monitor;

#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    #[error("sink: {0}")]
    Sink(#[from] SinkError),
    #[error("signal was not delivered: {0}")]
    Signal(String),
    #[error("forward to the re-key topic was not delivered: {0}")]
    Forward(String),
    #[error("the task rebuilding a partition's state was cancelled")]
    RebuildCancelled,
    #[error("the task settling a batch was cancelled")]
    SettleCancelled,
    #[error("the task reading batches stopped")]
    FetchStopped,
    #[error("dead letter for {topic}/{partition}@{offset} was not delivered: {cause}")]
    DeadLetter {
        topic: String,
        partition: i32,
        offset: i64,
        cause: String,
    },
}

/// Longest a consumer may take to commit and leave the group on shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// After a clean stop every message handed out was processed and written: commit the positions
/// for good. Then drop the consumer (librdkafka closes it, leaving the group). Runs on its own
/// thread and is given up on after [`CLOSE_TIMEOUT`]: the session timeout then expires the member.
async fn close(consumer: Arc<Source>, commit: bool) {
    let (done, closed) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        if commit {
            if let Err(err) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(cause = %err, "final commit skipped");
            }
        }
        drop(consumer);
        let _ = done.send(());
    });
    if tokio::time::timeout(CLOSE_TIMEOUT, closed).await.is_err() {
        tracing::warn!(
            "consumer did not close within {CLOSE_TIMEOUT:?}; left to the session timeout"
        );
    }
}

/// Longest pause between two retries of a transient sink failure.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long `publish` waits before sending again into a full queue with nothing of its own in
/// flight.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(1);

pub struct Processor {
    consumer: Arc<Source>,
    /// Taken by the fetch task when the processor runs.
    context: Option<SourceContext>,
    dead_letters: DeadLetters,
    decoder: Decoder,
    engine: Engine,
    clock: SharedClock,
    config: ProcessingConfig,
    status: Arc<ProcessorStatus>,
    partitions: BTreeMap<i32, PartitionState>,
    output: Output,
    /// The previous batch's settle, while it runs.
    settling: Option<JoinHandle<Result<(), ProcessorError>>>,
}

/// A partition rebuilt from its sink and the re-key topic.
struct Loaded {
    recovered: crate::sink::Recovered,
    state: PartitionState,
    /// Contacts erased on other partitions whose forwarded erase is after the committed
    /// offset: the store is told to forget them again.
    forgotten: Vec<(String, String)>,
}

/// What makes a batch durable and visible: the sink, the signal producer and the consumer's
/// commits. Cloned into each batch's settle task.
#[derive(Clone)]
struct Output {
    consumer: Arc<Source>,
    signals: SignalProducer,
    rekey: Rekey,
    sink: Arc<dyn ResultSink>,
    status: Arc<ProcessorStatus>,
}

/// An evaluated batch, still to be settled: written, published, its dead letters delivered and
/// its offsets committed.
struct Settle {
    outputs: Vec<PartitionOutput>,
    dead: Vec<(String, i32, i64, DeliveryFuture)>,
    /// Merges and merged-away contacts' events for other partitions, by sending partition.
    forwards: Vec<(i32, Forward)>,
    next_offsets: HashMap<(String, i32), i64>,
    accepted: u64,
    duplicates: u64,
    /// Whether any message came in (an empty batch only ran the timers).
    consumed: bool,
    /// The engine clock the batch was evaluated at.
    now: Ms,
}

impl Processor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        consumer: Arc<Source>,
        context: SourceContext,
        dead_letters: DeadLetters,
        signals: SignalProducer,
        rekey: Rekey,
        decoder: Decoder,
        engine: Engine,
        clock: SharedClock,
        sink: Arc<dyn ResultSink>,
        config: ProcessingConfig,
        status: Arc<ProcessorStatus>,
    ) -> Self {
        let output = Output {
            consumer: consumer.clone(),
            signals,
            rekey,
            sink,
            status: status.clone(),
        };
        Self {
            consumer,
            context: Some(context),
            dead_letters,
            decoder,
            engine,
            clock,
            config,
            status,
            partitions: BTreeMap::new(),
            output,
            settling: None,
        }
    }

    /// Runs until `shutdown` is cancelled (then finishes the batch in hand) or a permanent error.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), ProcessorError> {
        let result = self.run_until(shutdown).await;
        self.dead_letters.flush();
        // Commit what was processed and leave the group off the async workers, bounded in
        // time: librdkafka's close waits for the group coordinator, which may not answer.
        let consumer = self.consumer.clone();
        let clean = result.is_ok();
        drop(self);
        close(consumer, clean).await;
        tracing::info!("processor stopped");
        result
    }

    async fn run_until(&mut self, shutdown: CancellationToken) -> Result<(), ProcessorError> {
        let monitor = Monitor {
            consumer: self.consumer.clone(),
            status: self.status.clone(),
            ready_max_lag: self.config.ready_max_lag,
            stall_after: Duration::from_millis(self.config.stall_after_ms),
        };
        let fetcher = Fetcher {
            consumer: self.consumer.clone(),
            context: self.context.take().expect("a processor runs once"),
            config: self.config.clone(),
            status: self.status.clone(),
        };
        let stop_tasks = shutdown.child_token();
        let _stop_on_exit = stop_tasks.clone().drop_guard();
        let monitor = tokio::spawn(monitor.run(stop_tasks.clone()));
        // One batch waits in the channel while the loop processes another.
        let (tx, mut batches) = tokio::sync::mpsc::channel(1);
        let fetcher = tokio::spawn(fetcher.run(tx, stop_tasks.clone()));
        let result = self.consume_until(&shutdown, &mut batches).await;
        // The tasks' handles on the consumer must be gone before `close`: otherwise one of
        // them may drop the last one, and librdkafka's close then runs on an async worker,
        // where a rebalance during close can block it for good (librdkafka #4884: a hang seen
        // in clickhouse::crashes_between_insert_and_commit_leave_the_views_of_a_clean_run).
        stop_tasks.cancel();
        drop(batches);
        let _ = fetcher.await;
        let _ = monitor.await;
        result
    }

    /// The loop, then the last batch's settle: no settle task outlives the processor (it holds
    /// the consumer, see `run_until`).
    async fn consume_until(
        &mut self,
        shutdown: &CancellationToken,
        batches: &mut tokio::sync::mpsc::Receiver<Fetched>,
    ) -> Result<(), ProcessorError> {
        let result = self.consume(shutdown, batches).await;
        let settled = self.settled().await;
        result.and(settled)
    }

    async fn consume(
        &mut self,
        shutdown: &CancellationToken,
        batches: &mut tokio::sync::mpsc::Receiver<Fetched>,
    ) -> Result<(), ProcessorError> {
        loop {
            let fetched = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                fetched = batches.recv() => fetched.ok_or(ProcessorError::FetchStopped)?,
            };
            if !fetched.changes.is_empty() {
                // A revoked partition is released only once its last batch is settled.
                self.settled().await?;
                self.handle_rebalances(fetched.changes).await?;
            }
            self.process(fetched.messages).await?;
        }
    }

    /// Waits for the previous batch's settle, if one is running; its error is the processor's.
    async fn settled(&mut self) -> Result<(), ProcessorError> {
        let Some(task) = self.settling.take() else {
            return Ok(());
        };
        match task.await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => Err(ProcessorError::SettleCancelled),
        }
    }

    async fn handle_rebalances(&mut self, changes: Vec<Assignment>) -> Result<(), ProcessorError> {
        for change in changes {
            match change {
                Assignment::Revoked(ps) => {
                    for p in ps {
                        if self.partitions.remove(&p).is_some() {
                            self.output.sink.release(p).await;
                        }
                    }
                }
                Assignment::Assigned(ps) => self.ensure_partitions(ps).await?,
            }
        }
        Ok(())
    }

    /// Loads a partition's state from the sink the first time it is needed, and republishes
    /// the signals its last write may not have published.
    async fn ensure_partition(&mut self, p: i32) -> Result<(), ProcessorError> {
        self.ensure_partitions([p]).await
    }

    /// [`Processor::ensure_partition`] for every partition of an assignment. The partitions
    /// are recovered and folded concurrently (the fold on the blocking pool), so a rebuild of
    /// several partitions uses every core: one after another it used one, and a 10M-event
    /// rebuild of three partitions took 63 s. Their unpublished signals go out after.
    async fn ensure_partitions(
        &mut self,
        ps: impl IntoIterator<Item = i32>,
    ) -> Result<(), ProcessorError> {
        let missing: BTreeSet<i32> = ps
            .into_iter()
            .filter(|p| !self.partitions.contains_key(p))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let output = &self.output;
        let interactions = self.engine.interactions();
        let loaded = futures::future::try_join_all(
            missing
                .iter()
                .map(|&p| Self::load(output, p, interactions.clone())),
        )
        .await?;
        for (p, loaded) in missing.into_iter().zip(loaded) {
            let Loaded {
                recovered,
                mut state,
                forgotten,
            } = loaded;
            if !forgotten.is_empty() {
                let out = &PartitionOutput {
                    partition: p,
                    forgotten,
                    ..Default::default()
                };
                self.output
                    .with_retry(move |sink| async move { sink.write(out).await })
                    .await?;
            }
            self.output.publish(&recovered.unpublished).await?;
            let again = state.forward_again();
            let forwarded = self
                .output
                .forward(
                    again.into_iter().map(|f| (p, f)).collect(),
                    Some(&recovered.events),
                )
                .await?;
            let prompted = self.prompt_again(p, &recovered.unsignalled).await?;
            tracing::info!(
                partition = p,
                events = recovered.events.len(),
                contacts = state.len(),
                republished = recovered.unpublished.len(),
                prompted,
                forwarded,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "partition state rebuilt"
            );
            self.partitions.insert(p, state);
        }
        Ok(())
    }

    /// Recovers partition `p` from the sink and folds it into state.
    async fn load(
        output: &Output,
        p: i32,
        interactions: Arc<model::rules::InteractionRules>,
    ) -> Result<Loaded, ProcessorError> {
        let recovered = output
            .with_retry(|sink| async move { sink.recover(p).await })
            .await?;
        let (consumer, rekey) = (output.consumer.clone(), output.rekey.clone());
        tokio::task::spawn_blocking(move || {
            // Everything other partitions forwarded, past the committed offset too: the stored
            // results may reflect some of it (see `Rekey::end`). The consumer goes on from the
            // committed offset and drops what was applied here as duplicates.
            let end = rekey.end(&consumer, p)?;
            let committed = rekey.committed(&consumer, p)?;
            let forwarded = rekey.read_before(p, end)?;
            let mut state = PartitionState::recovered(&recovered, interactions);
            let mut forgotten = Vec::new();
            for msg in &forwarded {
                match rekeyed(msg) {
                    Ok((event, origin)) => {
                        state.apply_rekeyed(&event, origin);
                        // An erase the consumer has not committed may not be carried out in
                        // the store yet, and its second reading is a duplicate: do it here.
                        if msg.offset() >= committed
                            && matches!(event.payload, crate::event::Payload::ContactErased(_))
                        {
                            forgotten.push((event.business_id.clone(), event.contact_id.clone()));
                        }
                    }
                    Err(why) => tracing::warn!(
                        partition = p,
                        offset = msg.offset(),
                        reason = %why,
                        "unreadable re-key message skipped on rebuild (it was dead-lettered when consumed)"
                    ),
                }
            }
            Ok::<_, ProcessorError>(Loaded {
                recovered,
                state,
                forgotten,
            })
        })
        .await
        .map_err(|err| match err.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => ProcessorError::RebuildCancelled,
        })?
    }

    /// Stores and publishes the flow-feed prompts of events a crashed write stored without
    /// them (`Recovered::unsignalled`), as a write of signals alone, so a second crash
    /// republishes them like any other. Returns how many there were.
    async fn prompt_again(&self, p: i32, events: &[Event]) -> Result<usize, ProcessorError> {
        let now = self.clock.now().timestamp_millis();
        let out = PartitionOutput {
            partition: p,
            signals: events
                .iter()
                .filter_map(|e| signals::feed(e, p, now))
                .collect(),
            ..Default::default()
        };
        if out.signals.is_empty() {
            return Ok(0);
        }
        let out = &out;
        self.output
            .with_retry(move |sink| async move { sink.write(out).await })
            .await?;
        self.output.publish(&out.signals).await?;
        Ok(out.signals.len())
    }

    async fn process(&mut self, batch: Vec<OwnedMessage>) -> Result<(), ProcessorError> {
        let at = self.clock.now();
        let now = at.timestamp_millis();
        let mut work = Batch::default();
        let mut next_offsets: HashMap<(String, i32), i64> = HashMap::new();
        let mut pending_dead = Vec::new();

        let started = std::time::Instant::now();
        for msg in &batch {
            let (topic, p, offset) = (msg.topic().to_owned(), msg.partition(), msg.offset());
            next_offsets.insert((topic.clone(), p), offset + 1);
            self.ensure_partition(p).await?;
            if topic == self.output.rekey.topic() {
                match rekeyed(msg) {
                    Ok((event, origin)) => {
                        let state = self.partitions.get_mut(&p).expect("partition loaded");
                        work.accept_rekeyed(state, &event, p, origin);
                    }
                    Err(why) => {
                        let why = crate::decode::Rejection::Rekey(why);
                        tracing::warn!(topic, partition = p, offset, reason = %why, "dead-lettered");
                        pending_dead.push((topic, p, offset, self.dead_letters.send(msg, &why)?));
                    }
                }
                continue;
            }
            match self
                .decoder
                .decode_at(msg.key(), msg.payload().unwrap_or_default(), at)
            {
                Ok(event) => {
                    let state = self.partitions.get_mut(&p).expect("partition loaded");
                    if let Some(why) = state.refusal(&event) {
                        tracing::warn!(topic, partition = p, offset, reason = %why, "dead-lettered");
                        pending_dead.push((topic, p, offset, self.dead_letters.send(msg, &why)?));
                        continue;
                    }
                    work.accept(state, event, topic, p, offset, now);
                }
                Err(why) => {
                    tracing::warn!(topic, partition = p, offset, reason = %why, "dead-lettered");
                    pending_dead.push((topic, p, offset, self.dead_letters.send(msg, &why)?));
                }
            }
        }
        self.status.busy_since(Stage::Decode, started);
        let started = std::time::Instant::now();
        work.evaluate(&self.engine, &mut self.partitions, now)
            .await?;
        self.status.busy_since(Stage::Evaluate, started);
        let outputs: Vec<PartitionOutput> = work
            .outputs
            .into_values()
            .filter(|o| !o.is_empty())
            .collect();
        // The next batch is evaluated against these profiles before they are stored (see
        // `batch::remember`).
        for out in &outputs {
            if let Some(state) = self.partitions.get_mut(&out.partition) {
                batch::remember(state, out);
            }
        }
        let settle = Settle {
            outputs,
            dead: pending_dead,
            forwards: std::mem::take(&mut work.forwards),
            next_offsets,
            accepted: work.accepted,
            duplicates: work.duplicates,
            consumed: !batch.is_empty(),
            now,
        };
        // One settle at a time, in batch order.
        self.settled().await?;
        self.settling = Some(tokio::spawn(self.output.clone().settle(settle)));
        Ok(())
    }
}

impl Output {
    /// Writes the batch durably, publishes its signals, waits for its dead letters and commits
    /// its offsets, then counts it.
    async fn settle(self, batch: Settle) -> Result<(), ProcessorError> {
        let Settle {
            outputs,
            dead,
            forwards,
            next_offsets,
            accepted,
            duplicates,
            consumed,
            now,
        } = batch;
        // The partitions' writes are independent (each its own files or rows) and mostly wait
        // on fsync or the network, so they overlap; the batch is durable when all are.
        let started = std::time::Instant::now();
        futures::future::try_join_all(
            outputs
                .iter()
                .map(|out| self.with_retry(move |sink| async move { sink.write(out).await })),
        )
        .await?;
        self.status
            .sink_latency
            .observe(started.elapsed().as_secs_f64());
        self.status.busy_since(Stage::Write, started);
        let started = std::time::Instant::now();
        // Published after the write, from what was stored: a crash in between republishes the
        // same ids on recovery (`Recovered::unpublished`). Published first, a signal could
        // announce a change that the replay, batched differently, never makes nor retracts.
        // Every partition's signals are sent before any delivery is awaited: one wait for the
        // broker per batch, not one per partition.
        let signals: Vec<&Signal> = outputs.iter().flat_map(|out| &out.signals).collect();
        let signalled = self.publish(signals).await?;
        // Like signals, forwards go out once what asked for them is stored (a history is read
        // back from the store), and before the offsets are committed: a crash in between sends
        // them again on rebuild (`PartitionState::forward_again`).
        self.forward(forwards, None).await?;
        self.status.busy_since(Stage::Publish, started);
        let started = std::time::Instant::now();
        let written: u64 = outputs.iter().map(|out| out.profiles.len() as u64).sum();

        let dead_count = dead.len() as u64;
        for (topic, partition, offset, delivery) in dead {
            let cause = match delivery.await {
                Ok(Ok(_)) => continue,
                Ok(Err((err, _))) => err.to_string(),
                Err(_) => "cancelled".into(),
            };
            return Err(ProcessorError::DeadLetter {
                topic,
                partition,
                offset,
                cause,
            });
        }

        if !next_offsets.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for ((topic, p), next) in &next_offsets {
                tpl.add_partition_offset(topic, *p, Offset::Offset(*next))?;
            }
            if let Err(err) = self.consumer.commit(&tpl, CommitMode::Async) {
                // The next batch's commit covers these offsets; a replay is deduplicated.
                tracing::warn!(cause = %err, "offset commit failed");
            }
        }
        self.status.busy_since(Stage::Commit, started);

        ProcessorStatus::add(&self.status.events_in, accepted);
        ProcessorStatus::add(&self.status.duplicates, duplicates);
        ProcessorStatus::add(&self.status.dead_letters, dead_count);
        ProcessorStatus::add(&self.status.profiles_written, written);
        ProcessorStatus::add(&self.status.signals, signalled);
        if consumed {
            ProcessorStatus::add(&self.status.batches, 1);
        }
        self.status
            .complete_up_to_ms
            .store(now, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Sends `signals`, then waits until the broker acknowledged every one; returns how many
    /// were published. When
    /// the producer's queue is full (`queue.buffering.max.messages`, a large time-driven batch
    /// can exceed it), waits for the deliveries in flight and sends again.
    async fn publish<'a>(
        &self,
        signals: impl IntoIterator<Item = &'a Signal>,
    ) -> Result<u64, ProcessorError> {
        deliver(signals, |s| self.signals.send(s), ProcessorError::Signal).await
    }

    /// Sends `forwards` over the re-key topic and waits until the broker acknowledged every
    /// one; returns how many messages that was. A merge goes to every other partition; a
    /// history is every stored event of the contact, read from `stored` (a rebuild's recovered
    /// events) or from the sink.
    async fn forward(
        &self,
        forwards: Vec<(i32, Forward)>,
        stored: Option<&[Event]>,
    ) -> Result<u64, ProcessorError> {
        if forwards.is_empty() {
            return Ok(0);
        }
        let mut messages: Vec<(Event, i32, Arc<str>, i32)> = Vec::new();
        for (from, f) in forwards {
            match f {
                Forward::Broadcast(event) => {
                    let key: Arc<str> = match &event.payload {
                        crate::event::Payload::ContactMerged(m) => {
                            m.merged_contact_id.as_str().into()
                        }
                        _ => event.contact_id.as_str().into(),
                    };
                    for to in (0..self.rekey.partitions()).filter(|&to| to != from) {
                        messages.push((event.clone(), to, key.clone(), from));
                    }
                }
                Forward::Event { event, to, key } => messages.push((event, to, key, from)),
                Forward::History { contact, to, key } => {
                    let history = match stored {
                        Some(all) => all
                            .iter()
                            .filter(|e| {
                                *e.business_id == *contact.business_id
                                    && *e.contact_id == *contact.contact_id
                            })
                            .cloned()
                            .collect(),
                        None => {
                            let c = &contact;
                            self.with_retry(|sink| async move {
                                sink.history(from, &c.business_id, &c.contact_id).await
                            })
                            .await?
                        }
                    };
                    tracing::info!(
                        partition = from,
                        contact = %contact.contact_id,
                        survivor = %key,
                        to,
                        events = history.len(),
                        "merged contact's history forwarded"
                    );
                    messages.extend(history.into_iter().map(|e| (e, to, key.clone(), from)));
                }
            }
        }
        deliver(
            &messages,
            |(event, to, key, from)| self.rekey.send(event, *to, key, *from),
            ProcessorError::Forward,
        )
        .await
    }

    /// Retries transient sink failures with capped exponential backoff; gives up on permanent
    /// ones. The loop evaluates at most one batch ahead of a settle that is retrying, so memory
    /// stays bounded (backpressure).
    async fn with_retry<T, F, Fut>(&self, f: F) -> Result<T, ProcessorError>
    where
        F: Fn(Arc<dyn ResultSink>) -> Fut,
        Fut: std::future::Future<Output = Result<T, SinkError>>,
    {
        let mut backoff = Duration::from_millis(100);
        loop {
            match f(self.sink.clone()).await {
                Ok(v) => return Ok(v),
                Err(err) if err.is_retryable() => {
                    tracing::warn!(cause = %err, backoff_ms = backoff.as_millis() as u64, "sink write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// Sends every item through `send`, then waits until the broker acknowledged each one;
/// returns how many were sent. When the producer's queue is full
/// (`queue.buffering.max.messages`, a large time-driven batch can exceed it), waits for the
/// deliveries in flight and sends again. A failed delivery is reported through `failed`.
async fn deliver<T>(
    items: impl IntoIterator<Item = T>,
    send: impl Fn(&T) -> Result<DeliveryFuture, KafkaError>,
    failed: fn(String) -> ProcessorError,
) -> Result<u64, ProcessorError> {
    let mut pending = Vec::new();
    let mut sent = 0u64;
    for item in items {
        let delivery = loop {
            match send(&item) {
                Ok(d) => break d,
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    if pending.is_empty() {
                        // librdkafka reports a delivery before it frees the message's queue
                        // slot, so a send right after the last delivery can still find the
                        // queue full: give its thread a moment.
                        tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                    } else {
                        delivered(std::mem::take(&mut pending), failed).await?;
                    }
                }
                Err(err) => return Err(err.into()),
            }
        };
        pending.push(delivery);
        sent += 1;
    }
    delivered(pending, failed).await?;
    Ok(sent)
}

/// Waits for every delivery; the first failure is the error.
async fn delivered(
    pending: Vec<DeliveryFuture>,
    failed: fn(String) -> ProcessorError,
) -> Result<(), ProcessorError> {
    for d in pending {
        match d.await {
            Ok(Ok(_)) => {}
            Ok(Err((err, _))) => return Err(failed(err.to_string())),
            Err(_) => return Err(failed("cancelled".into())),
        }
    }
    Ok(())
}

/// A message of the re-key topic: the event another partition forwarded (as KeyFlow wrote it:
/// already normalised) and that partition.
fn rekeyed(msg: &OwnedMessage) -> Result<(Event, i32), String> {
    let origin = Rekey::origin(msg)?;
    let event = serde_json::from_slice(msg.payload().unwrap_or_default())
        .map_err(|e| format!("re-key message is not an event: {e}"))?;
    Ok((event, origin))
}
