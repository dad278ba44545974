//! The windowed metrics engine: contacts due for evaluation become Arrow record batches, and the
//! metric queries in `sql/metrics/` run over them with DataFusion at the engine's clock.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, TimestampMillisecondArray, UInt32Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::SessionContext;

use crate::config::ScoringConfig;
use crate::profile::{ContactProfile, Factor};
use crate::state::{next_change, ContactKey, ContactState, Ms, PartitionState};

/// The lead-score query, kept as data.
pub const LEAD_SCORE_SQL: &str = include_str!("../../sql/metrics/lead_score.sql");
/// The outstanding-balance query, kept as data.
pub const OUTSTANDING_BALANCE_SQL: &str = include_str!("../../sql/metrics/outstanding_balance.sql");

const DAY_MS: Ms = 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("metric query {query} failed: {source}")]
    Query {
        query: &'static str,
        source: datafusion::error::DataFusionError,
    },
    #[error("building the input batches failed: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("metric query {query} returned an unexpected column {column}")]
    Shape {
        query: &'static str,
        column: &'static str,
    },
}

/// Evaluates metrics for contacts of one partition.
#[derive(Debug, Clone)]
pub struct Engine {
    scoring: ScoringConfig,
}

fn ts_field(name: &str) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        true,
    )
}

fn ts(values: Vec<Option<Ms>>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(values).with_timezone("UTC"))
}

/// Column-wise builders of the input tables.
#[derive(Default)]
struct Inputs {
    booking_cid: Vec<u32>,
    booking_completed: Vec<Option<Ms>>,
    invoice_cid: Vec<u32>,
    invoice_sent: Vec<Option<Ms>>,
    invoice_paid: Vec<Option<Ms>>,
    invoice_amount: Vec<i64>,
    task_cid: Vec<u32>,
    task_created: Vec<Option<Ms>>,
    task_due: Vec<Option<Ms>>,
    task_completed: Vec<Option<Ms>>,
}

impl Inputs {
    fn add(&mut self, cid: u32, c: &ContactState) {
        for b in c.bookings.values().filter(|b| b.completed_at.is_some()) {
            self.booking_cid.push(cid);
            self.booking_completed.push(b.completed_at);
        }
        for i in c.invoices.values() {
            self.invoice_cid.push(cid);
            self.invoice_sent.push(i.sent_at);
            self.invoice_paid.push(i.paid_at);
            self.invoice_amount.push(i.amount_cents.unwrap_or(0));
        }
        for t in c.tasks.values() {
            self.task_cid.push(cid);
            self.task_created.push(t.created_at);
            self.task_due.push(t.due_at);
            self.task_completed.push(t.completed_at);
        }
    }
}

impl Engine {
    pub fn new(scoring: ScoringConfig) -> Self {
        Self { scoring }
    }

    pub fn scoring(&self) -> &ScoringConfig {
        &self.scoring
    }

    fn window_ms(&self) -> Ms {
        self.scoring.window_days * DAY_MS
    }

    /// Evaluates `keys` at `now`, schedules each contact's next time-driven change, and returns
    /// the profiles of contacts that exist in `state`.
    pub async fn evaluate(
        &self,
        state: &mut PartitionState,
        keys: &[ContactKey],
        now: Ms,
        partition: i32,
    ) -> Result<Vec<ContactProfile>, EngineError> {
        let keys: Vec<&ContactKey> = keys
            .iter()
            .filter(|k| state.contacts.contains_key(*k))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut inputs = Inputs::default();
        for (cid, key) in keys.iter().enumerate() {
            inputs.add(cid as u32, &state.contacts[*key]);
        }
        let ctx = self.context(keys.len(), inputs, now)?;
        let scores = run(&ctx, "lead_score", LEAD_SCORE_SQL).await?;
        let balances = run(&ctx, "outstanding_balance", OUTSTANDING_BALANCE_SQL).await?;
        let score_cols = ScoreColumns::new(&scores)?;
        let balance_cols = BalanceColumns::new(&balances)?;

        let window = self.window_ms();
        let mut out = Vec::with_capacity(keys.len());
        for (cid, key) in keys.iter().enumerate() {
            let c = &state.contacts[*key];
            let s = score_cols.get(cid as u32);
            let (balance, unpaid) = balance_cols.get(cid as u32);
            out.push(profile(
                key,
                c,
                partition,
                s,
                balance,
                unpaid,
                &self.scoring.rule_version,
                now,
            ));
            let next = next_change(c, now, window);
            state.schedule(key, next);
        }
        Ok(out)
    }

    fn context(&self, contacts: usize, i: Inputs, now: Ms) -> Result<SessionContext, EngineError> {
        let ctx = SessionContext::new();
        let cid = |name: &str| Field::new(name, DataType::UInt32, false);
        let reg = |name: &str, batch: RecordBatch| {
            ctx.register_batch(name, batch)
                .map(|_| ())
                .map_err(|source| EngineError::Query {
                    query: "register inputs",
                    source,
                })
        };
        reg(
            "contacts",
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![cid("cid")])),
                vec![Arc::new(UInt32Array::from_iter_values(0..contacts as u32))],
            )?,
        )?;
        reg(
            "bookings",
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![cid("cid"), ts_field("completed_at")])),
                vec![
                    Arc::new(UInt32Array::from(i.booking_cid)),
                    ts(i.booking_completed),
                ],
            )?,
        )?;
        reg(
            "invoices",
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    cid("cid"),
                    ts_field("sent_at"),
                    ts_field("paid_at"),
                    Field::new("amount_cents", DataType::Int64, false),
                ])),
                vec![
                    Arc::new(UInt32Array::from(i.invoice_cid)),
                    ts(i.invoice_sent),
                    ts(i.invoice_paid),
                    Arc::new(Int64Array::from(i.invoice_amount)),
                ],
            )?,
        )?;
        reg(
            "tasks",
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    cid("cid"),
                    ts_field("created_at"),
                    ts_field("due_at"),
                    ts_field("completed_at"),
                ])),
                vec![
                    Arc::new(UInt32Array::from(i.task_cid)),
                    ts(i.task_created),
                    ts(i.task_due),
                    ts(i.task_completed),
                ],
            )?,
        )?;
        reg("params", self.params(now)?)?;
        Ok(ctx)
    }

    /// The one-row `params` table: the clock and the rules.
    fn params(&self, now: Ms) -> Result<RecordBatch, EngineError> {
        let mut fields = vec![ts_field("now"), ts_field("window_start")];
        let mut columns = vec![ts(vec![Some(now)]), ts(vec![Some(now - self.window_ms())])];
        for (name, v) in self.scoring.terms() {
            fields.push(Field::new(name, DataType::Int64, false));
            columns.push(Arc::new(Int64Array::from(vec![v])));
        }
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }
}

async fn run(
    ctx: &SessionContext,
    query: &'static str,
    sql: &str,
) -> Result<Vec<RecordBatch>, EngineError> {
    let df = ctx
        .sql(sql)
        .await
        .map_err(|source| EngineError::Query { query, source })?;
    df.collect()
        .await
        .map_err(|source| EngineError::Query { query, source })
}

fn column<'a, T: 'static>(
    batch: &'a RecordBatch,
    query: &'static str,
    column: &'static str,
) -> Result<&'a T, EngineError> {
    batch
        .column_by_name(column)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or(EngineError::Shape { query, column })
}

/// One contact's lead-score row.
#[derive(Debug, Clone, Copy, Default)]
struct ScoreRow {
    counts: [i64; 4],
    points: [i64; 4],
    score: i64,
}

const FACTORS: [&str; 4] = [
    "bookings_completed",
    "invoices_paid",
    "invoices_unpaid",
    "tasks_overdue",
];
const POINT_COLUMNS: [&str; 4] = [
    "bookings_points",
    "paid_points",
    "unpaid_points",
    "overdue_points",
];

struct ScoreColumns(HashMap<u32, ScoreRow>);

impl ScoreColumns {
    fn new(batches: &[RecordBatch]) -> Result<Self, EngineError> {
        const Q: &str = "lead_score";
        let mut rows = HashMap::new();
        for b in batches {
            let cid = column::<UInt32Array>(b, Q, "cid")?;
            let counts = FACTORS.map(|f| column::<Int64Array>(b, Q, f));
            let points = POINT_COLUMNS.map(|f| column::<Int64Array>(b, Q, f));
            let score = column::<Int64Array>(b, Q, "lead_score")?;
            let counts: Vec<&Int64Array> = counts.into_iter().collect::<Result<_, _>>()?;
            let points: Vec<&Int64Array> = points.into_iter().collect::<Result<_, _>>()?;
            for r in 0..b.num_rows() {
                let row = ScoreRow {
                    counts: std::array::from_fn(|i| counts[i].value(r)),
                    points: std::array::from_fn(|i| points[i].value(r)),
                    score: score.value(r),
                };
                rows.insert(cid.value(r), row);
            }
        }
        Ok(Self(rows))
    }

    fn get(&self, cid: u32) -> ScoreRow {
        self.0.get(&cid).copied().unwrap_or_default()
    }
}

struct BalanceColumns(HashMap<u32, (i64, i64)>);

impl BalanceColumns {
    fn new(batches: &[RecordBatch]) -> Result<Self, EngineError> {
        const Q: &str = "outstanding_balance";
        let mut rows = HashMap::new();
        for b in batches {
            let cid = column::<UInt32Array>(b, Q, "cid")?;
            let balance = column::<Int64Array>(b, Q, "outstanding_balance_cents")?;
            let unpaid = column::<Int64Array>(b, Q, "unpaid_invoices")?;
            for r in 0..b.num_rows() {
                rows.insert(cid.value(r), (balance.value(r), unpaid.value(r)));
            }
        }
        Ok(Self(rows))
    }

    fn get(&self, cid: u32) -> (i64, i64) {
        self.0.get(&cid).copied().unwrap_or_default()
    }
}

#[allow(clippy::too_many_arguments)]
fn profile(
    key: &ContactKey,
    c: &ContactState,
    partition: i32,
    s: ScoreRow,
    balance: i64,
    unpaid: i64,
    rule_version: &str,
    now: Ms,
) -> ContactProfile {
    ContactProfile {
        business_id: key.business_id.to_string(),
        contact_id: key.contact_id.to_string(),
        partition,
        name: c.name.value.clone(),
        email: c.email.value.clone(),
        phone: c.phone.value.clone(),
        status: c.status().to_owned(),
        tags: c.tags.value.clone(),
        photo_url: c.photo_url.value.clone(),
        created_at: c.created_at,
        deleted: c.deleted_at.is_some(),
        erased: c.erased_at.is_some(),
        merged_into: c.merged_into.as_deref().map(str::to_owned),
        lead_score: s.score,
        factors: (0..4)
            .map(|i| Factor {
                factor: FACTORS[i].to_owned(),
                count: s.counts[i],
                points: s.points[i],
            })
            .collect(),
        rule_version: rule_version.to_owned(),
        last_interaction_at: c.last_interaction_at,
        outstanding_balance_cents: balance,
        unpaid_invoices: unpaid,
        evaluated_at: now,
    }
}

#[cfg(test)]
mod tests;
