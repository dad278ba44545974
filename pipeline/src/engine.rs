//! The windowed metrics engine: contacts due for evaluation become Arrow record batches, and the
//! metric files in `sql/metrics/` run over them with DataFusion at the engine's clock, in order,
//! each file's result registered as a table the later files can read (segments and the Next
//! Action queue read the metrics before them).

mod calendar;
mod inputs;
mod outputs;
mod plans;
mod timers;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::clock::Ms;
use crate::config::{BusinessRules, ScoringConfig};
use crate::profile::{ContactProfile, Factor, Membership, NextAction, ServiceStat};
use crate::state::{ContactKey, ContactState, PartitionState};
use inputs::Inputs;
pub use model::rules::{InteractionRules, Rules};
use model::sections::{Activity, Affinity, Balance, Gaps, Reliability, Section};
use outputs::*;
use plans::{Plans, Rows};
pub use timers::{next_change, DAY_MS, HOUR_MS};

/// The metric files, in evaluation order, each with the table name its result is registered as.
pub const METRICS: &[(&str, &str)] = &[
    (
        "lead_score",
        include_str!("../../sql/metrics/lead_score.sql"),
    ),
    (
        "outstanding_balance",
        include_str!("../../sql/metrics/outstanding_balance.sql"),
    ),
    (
        "payment_reliability",
        include_str!("../../sql/metrics/payment_reliability.sql"),
    ),
    (
        "service_affinity",
        include_str!("../../sql/metrics/service_affinity.sql"),
    ),
    (
        "interaction_gaps",
        include_str!("../../sql/metrics/interaction_gaps.sql"),
    ),
    ("activity", include_str!("../../sql/metrics/activity.sql")),
    (
        "contact_services",
        include_str!("../../sql/metrics/contact_services.sql"),
    ),
    ("segments", include_str!("../../sql/metrics/segments.sql")),
    (
        "next_actions",
        include_str!("../../sql/metrics/next_actions.sql"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("metric query {query} failed: {source}")]
    Query {
        query: &'static str,
        source: datafusion::error::DataFusionError,
    },
    #[error("building the input batches failed: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("metric query {query} returned rows of an unexpected shape: {source}")]
    Shape {
        query: &'static str,
        source: serde_arrow::Error,
    },
    /// A metric file and the profile section it fills disagree (checked before any run).
    #[error(
        "sql/metrics/{file}.sql and its profile section disagree on column {column}: {problem}"
    )]
    Section {
        file: &'static str,
        column: String,
        problem: String,
    },
    /// A metric file's result is missing from a run (a file left out of the engine's list).
    #[error("metric query {0} returned no result table")]
    Missing(&'static str),
}

/// A contact and the partition whose state holds it.
type PartitionKey = (i32, ContactKey);

/// Evaluates metrics for contacts of one partition.
#[derive(Debug, Clone)]
pub struct Engine {
    rules: Arc<Rules>,
    /// Which events the partitions' states count as interactions.
    interactions: Arc<InteractionRules>,
    /// Most metric runs of one group evaluated at once, and the fewest contacts per run (see
    /// [`Engine::with_parallelism`]).
    parallelism: usize,
    min_per_run: usize,
    /// The metric files' plans, shared by clones (the processor and recovery clone the engine).
    plans: Arc<Plans>,
}

/// Fewest contacts worth a metric run of their own. Chosen when every run planned the nine files
/// (about as costly as evaluating a thousand contacts); not re-tuned since the plans are cached.
pub const MIN_CONTACTS_PER_RUN: usize = 1_000;

const FACTORS: [&str; 4] = [
    "bookings_completed",
    "invoices_paid",
    "invoices_unpaid",
    "tasks_overdue",
];

impl Engine {
    /// An engine with these scoring rules and default metric rules for every business.
    pub fn new(scoring: ScoringConfig) -> Self {
        Self::with_rules(Rules::uniform(BusinessRules {
            scoring,
            ..Default::default()
        }))
    }

    /// An engine with these rules that evaluates a large group in as many concurrent metric
    /// runs as the machine has cores.
    pub fn with_rules(rules: Rules) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            rules: Arc::new(rules),
            interactions: Arc::default(),
            parallelism: cores,
            min_per_run: MIN_CONTACTS_PER_RUN,
            plans: Arc::default(),
        }
    }

    /// At most `runs` concurrent metric runs per group (1: one run, on the caller's task), of
    /// at least `min_contacts` each. DataFusion runs each with one target partition, so each
    /// run keeps one core busy; split runs give the same rows, since every metric file groups
    /// by contact.
    pub fn with_parallelism(mut self, runs: usize, min_contacts: usize) -> Self {
        self.parallelism = runs.max(1);
        self.min_per_run = min_contacts.max(1);
        self
    }

    /// Plans every metric file and checks its output against the profile section it fills
    /// (see [`outputs::check_section`]): run once before the first evaluation, so a file and its
    /// section that disagree stop the start, naming the file and the column. The plans made
    /// here serve the first run.
    pub async fn verify(&self) -> Result<(), EngineError> {
        self.plans.verify().await
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Counts the events `interactions` names as interactions (default: [`InteractionRules`]'s).
    pub fn with_interactions(mut self, interactions: InteractionRules) -> Self {
        self.interactions = Arc::new(interactions);
        self
    }

    /// What a partition's state built for this engine counts as an interaction.
    pub fn interactions(&self) -> Arc<InteractionRules> {
        self.interactions.clone()
    }

    /// Evaluates `keys` of one partition at `now`; see [`Engine::evaluate_all`].
    pub async fn evaluate(
        &self,
        state: &mut PartitionState,
        keys: &[ContactKey],
        now: Ms,
        partition: i32,
    ) -> Result<Vec<ContactProfile>, EngineError> {
        let mut states = BTreeMap::from([(partition, std::mem::take(state))]);
        let due = BTreeMap::from([(partition, keys.to_vec())]);
        let result = self.evaluate_all(&mut states, &due, now).await;
        *state = states.remove(&partition).expect("put back");
        result
    }

    /// Evaluates the `due` contacts of every partition at `now`, schedules each contact's next
    /// time-driven change, and returns the profiles of contacts that exist in their partition's
    /// state. Contacts of all partitions that share business rules are evaluated in one run of
    /// the metric files (a run has a fixed cost, whatever its size).
    pub async fn evaluate_all(
        &self,
        states: &mut BTreeMap<i32, PartitionState>,
        due: &BTreeMap<i32, Vec<ContactKey>>,
        now: Ms,
    ) -> Result<Vec<ContactProfile>, EngineError> {
        let mut groups: Vec<(Arc<BusinessRules>, Vec<PartitionKey>)> = Vec::new();
        for (&p, keys) in due {
            let Some(state) = states.get(&p) else {
                continue;
            };
            for k in keys.iter().filter(|k| state.contacts.contains_key(*k)) {
                let r = self.rules.for_business(&k.business_id);
                match groups.iter_mut().find(|(g, _)| Arc::ptr_eq(g, r)) {
                    Some((_, ks)) => ks.push((p, k.clone())),
                    None => groups.push((r.clone(), vec![(p, k.clone())])),
                }
            }
        }
        let mut out = Vec::new();
        for (rules, keys) in groups {
            out.extend(self.evaluate_group(states, &keys, now, &rules).await?);
        }
        Ok(out)
    }

    /// Evaluates one group of contacts that share rules: split into up to `parallelism` runs
    /// of at least `min_per_run` contacts, each on a task of its own.
    async fn evaluate_group(
        &self,
        states: &mut BTreeMap<i32, PartitionState>,
        keys: &[PartitionKey],
        now: Ms,
        rules: &Arc<BusinessRules>,
    ) -> Result<Vec<ContactProfile>, EngineError> {
        let keep_from = now - rules.metrics.interaction_window_days * DAY_MS;
        let runs = (keys.len() / self.min_per_run).clamp(1, self.parallelism);
        let chunk = keys.len().div_ceil(runs).max(1);
        let mut pending = Vec::with_capacity(runs);
        // Each contact's tags, computed once: the inputs read them, then the profile keeps them.
        let mut tags: Vec<Vec<String>> = Vec::with_capacity(keys.len());
        for part in keys.chunks(chunk) {
            let mut inputs = Inputs::default();
            for (cid, (p, key)) in part.iter().enumerate() {
                let state = states.get_mut(p).expect("filtered to existing");
                tags.push(state.tags_of(key));
                let c = state.contacts.get_mut(key).expect("filtered to existing");
                c.prune_interactions(keep_from);
                let (status, _) = c.shown_status(promote_after(rules), now);
                inputs.add(
                    cid as u32,
                    key,
                    c,
                    status,
                    tags.last().expect("just pushed"),
                );
            }
            let rules = rules.clone();
            let plans = self.plans.clone();
            pending.push(async move { Results::read(&plans.run(&mut inputs, &rules, now).await?) });
        }
        let results = if pending.len() == 1 {
            vec![pending.pop().expect("one run").await?]
        } else {
            let tasks: Vec<_> = pending.into_iter().map(tokio::spawn).collect();
            let mut results = Vec::with_capacity(tasks.len());
            for task in tasks {
                match task.await {
                    Ok(r) => results.push(r?),
                    Err(e) => std::panic::resume_unwind(e.into_panic()),
                }
            }
            results
        };
        let mut out = Vec::with_capacity(keys.len());
        let offsets = timers::offsets(rules);
        let mut tags = tags.into_iter();
        for (part, mut r) in keys.chunks(chunk).zip(results) {
            for (cid, (p, key)) in part.iter().enumerate() {
                let state = states.get_mut(p).expect("filtered to existing");
                let c = &state.contacts[key];
                let tags = tags.next().expect("one per key");
                let mut profile = r.profile(cid as u32, key, c, *p, rules, now);
                profile.tags = tags;
                let next = next_change(c, &profile, now, rules, &offsets);
                state.schedule(key, next);
                out.push(profile);
            }
        }
        Ok(out)
    }
}

/// Runs every metric file over `inputs` with plans of their own (the golden tests' entry).
#[cfg(test)]
async fn run_metrics(
    inputs: &mut Inputs,
    rules: &BusinessRules,
    now: Ms,
) -> Result<Rows, EngineError> {
    Plans::default().run(inputs, rules, now).await
}

/// The one-row `params` table: the clock, day and hour lengths, the business's calendar (its
/// zone's number for `local_day`, today's local day, the instant its week began), and every
/// rule by name.
fn param_terms(rules: &BusinessRules, now: Ms) -> Vec<(&'static str, i64)> {
    let cal = &rules.calendar;
    let mut terms = vec![
        ("now", now),
        ("window_start", now - rules.scoring.window_days * DAY_MS),
        ("day_ms", DAY_MS),
        ("hour_ms", HOUR_MS),
        ("zone", cal.timezone.id()),
        ("today", cal.local_day(now)),
        ("week_start", cal.week(now).0),
    ];
    terms.extend(rules.scoring.terms());
    terms.extend(rules.metrics.terms());
    terms
}

fn params_schema(rules: &BusinessRules) -> Arc<Schema> {
    Arc::new(Schema::new(
        param_terms(rules, 0)
            .into_iter()
            .map(|(n, _)| Field::new(n, DataType::Int64, false))
            .collect::<Vec<_>>(),
    ))
}

fn params(rules: &BusinessRules, now: Ms) -> Result<RecordBatch, EngineError> {
    let columns = param_terms(rules, now)
        .into_iter()
        .map(|(_, v)| Arc::new(Int64Array::from(vec![v])) as _)
        .collect();
    Ok(RecordBatch::try_new(params_schema(rules), columns)?)
}

/// Every file's rows, by contact number.
struct Results {
    scores: ByContact<LeadScoreRow>,
    balance: ByContact<Balance>,
    reliability: ByContact<Reliability>,
    affinity: ByContact<Affinity>,
    gaps: ByContact<Gaps>,
    activity: ByContact<Activity>,
    services: ByContact<Vec<ServiceStat>>,
    segments: ByContact<Vec<Membership>>,
    actions: ByContact<Vec<NextAction>>,
}

fn read<T: serde::de::DeserializeOwned>(
    results: &Rows,
    name: &'static str,
) -> Result<Vec<(u32, T)>, EngineError> {
    let batches = results.get(name).ok_or(EngineError::Missing(name))?;
    rows(batches).map_err(|source| EngineError::Shape {
        query: name,
        source,
    })
}

fn section<T: Section + Default + serde::de::DeserializeOwned>(
    results: &Rows,
) -> Result<ByContact<T>, EngineError> {
    Ok(by_contact(read(results, T::FILE)?))
}

impl Results {
    fn read(r: &Rows) -> Result<Self, EngineError> {
        Ok(Self {
            scores: by_contact(read(r, "lead_score")?),
            balance: section(r)?,
            reliability: section(r)?,
            affinity: section(r)?,
            gaps: section(r)?,
            activity: section(r)?,
            services: grouped(read(r, "contact_services")?),
            segments: grouped(read(r, "segments")?),
            actions: grouped(read(r, "next_actions")?),
        })
    }

    /// The profile of contact `cid` of this run; its rows move into it (each contact is read
    /// once per run).
    fn profile(
        &mut self,
        cid: u32,
        key: &ContactKey,
        c: &ContactState,
        partition: i32,
        rules: &BusinessRules,
        now: Ms,
    ) -> ContactProfile {
        let s = self.scores.take(cid);
        let activity = self.activity.take(cid);
        let counts = [
            (s.bookings_completed, s.bookings_points),
            (s.invoices_paid, s.paid_points),
            (s.invoices_unpaid, s.unpaid_points),
            (s.tasks_overdue, s.overdue_points),
        ];
        // Current eligibility, dated by the completion that made it (order-independent); the
        // signal is sent once, on the first profile that carries it (see `signals::diff`).
        let promotion = activity.promotion_eligible.then(|| {
            c.nth_completion(rules.metrics.promotion_min_completed, now)
                .unwrap_or(now)
        });
        let (status, status_source) = c.shown_status(promote_after(rules), now);
        ContactProfile {
            business_id: key.business_id.to_string(),
            contact_id: key.contact_id.to_string(),
            partition,
            name: c.name.value.clone(),
            email: c.email.value.clone(),
            phone: c.phone.value.clone(),
            status: status.to_owned(),
            status_source: status_source.to_owned(),
            // Set by the caller: its own and its merged contacts' (`PartitionState::tags_of`).
            tags: Vec::new(),
            photo_url: c.photo_url.value.clone(),
            created_at: c.created_at,
            deleted: c.deleted_at.is_some(),
            erased: c.erased_at.is_some(),
            merged_into: c.merged_into.as_deref().map(str::to_owned),
            aliases: c.aliases.clone(),
            lead_score: s.lead_score,
            factors: FACTORS
                .iter()
                .zip(counts)
                .map(|(f, (count, points))| Factor {
                    factor: (*f).to_owned(),
                    count,
                    points,
                })
                .collect(),
            rule_version: rules.scoring.rule_version.clone(),
            last_interaction_at: c.last_interaction_at,
            balance: self.balance.take(cid),
            reliability: self.reliability.take(cid),
            affinity: self.affinity.take(cid),
            gaps: self.gaps.take(cid),
            activity,
            promotion_suggested_at: promotion,
            segments: self.segments.take(cid),
            next_actions: self.actions.take(cid),
            services: self.services.take(cid),
            evaluated_at: now,
        }
    }
}

/// The completed bookings after which `auto_promote` shows a LEAD as CLIENT, when it is on.
fn promote_after(rules: &BusinessRules) -> Option<i64> {
    rules
        .metrics
        .auto_promote
        .then_some(rules.metrics.promotion_min_completed)
}

#[cfg(test)]
mod calendars;
#[cfg(test)]
mod golden;
#[cfg(test)]
mod lifecycle;
#[cfg(test)]
mod order;
#[cfg(test)]
mod partitions;
#[cfg(test)]
mod tests;
