//! The metric files planned once and executed again on every run's rows.
//!
//! Planning a file (SQL parsing, logical optimisation, physical planning) cost 5-20 ms, as much
//! as executing it over a thousand contacts, and every run planned all nine again. Here every
//! table the files read (the inputs, `params`, and each file's result for the files after it)
//! is a [`Slot`]: a table whose rows are read when the plan executes, not when it is planned. A
//! [`Planned`] set holds one physical plan per file over its own slots; a run fills the slots,
//! executes copies of the plans with their per-execution state reset, and empties the slots.
//! Concurrent runs each take a set of their own from the [`Plans`] pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{collect, ExecutionPlan, SendableRecordBatchStream};
use datafusion::prelude::{SessionConfig, SessionContext};

use super::outputs::{check_section, SECTIONS};
use super::{params, params_schema, EngineError, Inputs, METRICS};
use crate::clock::Ms;
use crate::config::BusinessRules;

/// Each file's rows by name.
pub type Rows = HashMap<&'static str, Vec<RecordBatch>>;

/// A table whose rows are swapped between executions of the plans that read it.
#[derive(Debug, Clone)]
struct Slot {
    schema: SchemaRef,
    rows: Arc<Mutex<Vec<RecordBatch>>>,
}

impl Slot {
    fn new(schema: SchemaRef) -> Self {
        Self {
            schema,
            rows: Arc::default(),
        }
    }

    fn set(&self, rows: Vec<RecordBatch>) {
        *self.rows.lock().unwrap_or_else(PoisonError::into_inner) = rows;
    }
}

impl PartitionStream for Slot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let rows = self
            .rows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(rows.into_iter().map(Ok)),
        ))
    }
}

/// One physical plan per metric file, over slots of its own.
struct Planned {
    task: Arc<TaskContext>,
    slots: HashMap<&'static str, Slot>,
    plans: Vec<(&'static str, Arc<dyn ExecutionPlan>)>,
}

fn query(name: &'static str) -> impl Fn(DataFusionError) -> EngineError {
    move |source| EngineError::Query {
        query: name,
        source,
    }
}

/// A session with the UDFs and the input and `params` tables registered (empty, with the
/// schemas every run's tables will have): what the metric files are planned in.
fn session() -> Result<(SessionContext, HashMap<&'static str, Slot>), EngineError> {
    // One target partition: the inputs are one in-memory batch per table, and repartitioning
    // them costs more than it parallelises at micro-batch sizes (see benches/RESULTS.md).
    // Dynamic filters are off: they are state a reset plan would carry to the next run.
    let mut config = SessionConfig::new().with_target_partitions(1);
    config
        .options_mut()
        .optimizer
        .enable_dynamic_filter_pushdown = false;
    config
        .options_mut()
        .optimizer
        .enable_join_dynamic_filter_pushdown = false;
    config
        .options_mut()
        .optimizer
        .enable_topk_dynamic_filter_pushdown = false;
    config
        .options_mut()
        .optimizer
        .enable_aggregate_dynamic_filter_pushdown = false;
    let ctx = SessionContext::new_with_config(config);
    ctx.register_udf(super::calendar::local_day());
    ctx.register_udf(super::calendar::local_minute());
    let mut slots = HashMap::new();
    // Empty tables carry the schemas every run's tables will have.
    let inputs = Inputs::default().tables()?;
    for (name, batch) in inputs {
        slots.insert(name, register(&ctx, name, batch.schema())?);
    }
    slots.insert(
        "params",
        register(&ctx, "params", params_schema(&BusinessRules::default()))?,
    );
    Ok((ctx, slots))
}

impl Planned {
    /// Plans every file. The input schemas are fixed (the input builders' columns), and the
    /// parameter names are the same for every business, so one set serves every run.
    async fn new() -> Result<Self, EngineError> {
        let (ctx, mut slots) = session()?;
        let mut plans = Vec::with_capacity(METRICS.len());
        for &(name, sql) in METRICS {
            let df = ctx.sql(sql).await.map_err(query(name))?;
            let plan = df.create_physical_plan().await.map_err(query(name))?;
            // The physical schema, not the logical one: strings may run as Utf8View.
            slots.insert(name, register(&ctx, name, plan.schema())?);
            plans.push((name, plan));
        }
        Ok(Self {
            task: ctx.task_ctx(),
            slots,
            plans,
        })
    }

    /// Fills the slots, executes every file in order, and empties them again.
    async fn run(
        &self,
        inputs: &mut Inputs,
        rules: &BusinessRules,
        now: Ms,
    ) -> Result<Rows, EngineError> {
        let result = self.execute(inputs, rules, now).await;
        for slot in self.slots.values() {
            slot.set(Vec::new());
        }
        result
    }

    async fn execute(
        &self,
        inputs: &mut Inputs,
        rules: &BusinessRules,
        now: Ms,
    ) -> Result<Rows, EngineError> {
        let tables = inputs.tables()?;
        for (name, batch) in tables {
            self.fill(name, vec![batch])?;
        }
        self.fill("params", vec![params(rules, now)?])?;
        let mut rows = HashMap::with_capacity(self.plans.len());
        for (name, plan) in &self.plans {
            let started = std::time::Instant::now();
            let plan = reset_plan_states(plan.clone()).map_err(query(name))?;
            let batches = collect(plan, self.task.clone())
                .await
                .map_err(query(name))?;
            tracing::trace!(
                query = name,
                rows = batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "metric file ran"
            );
            let batches = self.fill(name, batches)?;
            rows.insert(*name, batches);
        }
        Ok(rows)
    }

    /// Puts `batches` in the slot `name`, under the schema the later files were planned
    /// with (executed batches may differ from the plan in nullability). Returns them.
    fn fill(
        &self,
        name: &'static str,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<RecordBatch>, EngineError> {
        let slot = &self.slots[name];
        let batches = batches
            .into_iter()
            .map(|b| {
                if b.schema() == slot.schema {
                    Ok(b)
                } else {
                    RecordBatch::try_new(slot.schema.clone(), b.columns().to_vec())
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| query(name)(e.into()))?;
        slot.set(batches.clone());
        Ok(batches)
    }
}

fn register(
    ctx: &SessionContext,
    name: &'static str,
    schema: SchemaRef,
) -> Result<Slot, EngineError> {
    let slot = Slot::new(schema.clone());
    let table =
        StreamingTable::try_new(schema, vec![Arc::new(slot.clone())]).map_err(query(name))?;
    ctx.register_table(name, Arc::new(table))
        .map_err(query(name))?;
    Ok(slot)
}

/// Planned sets not in use; a run takes one (planning a new one if none is free) and gives it
/// back, so there are as many as runs ever went at once.
#[derive(Default)]
pub struct Plans {
    free: Mutex<Vec<Planned>>,
}

impl std::fmt::Debug for Plans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let free = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Plans").field("free", &free).finish()
    }
}

impl Plans {
    /// Plans one set and checks every file's output schema against its section; the set is
    /// kept for the next run.
    pub async fn verify(&self) -> Result<(), EngineError> {
        let planned = Planned::new().await?;
        for &(name, fields) in SECTIONS {
            let (_, plan) = planned
                .plans
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or(EngineError::Missing(name))?;
            let expected = fields().map_err(|source| EngineError::Shape {
                query: name,
                source,
            })?;
            let later: Vec<&str> = METRICS
                .iter()
                .skip_while(|(n, _)| *n != name)
                .skip(1)
                .map(|(_, sql)| *sql)
                .collect();
            check_section(name, &expected, &plan.schema(), &later)?;
        }
        if let Some((name, _)) = planned
            .plans
            .iter()
            .find(|(n, _)| SECTIONS.iter().all(|(s, _)| s != n))
        {
            return Err(EngineError::Section {
                file: name,
                column: "*".into(),
                problem: "no profile section reads this file".into(),
            });
        }
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(planned);
        Ok(())
    }

    /// Runs every metric file over `inputs` at `now` with `rules`' parameters; returns each
    /// file's rows by name.
    pub async fn run(
        &self,
        inputs: &mut Inputs,
        rules: &BusinessRules,
        now: Ms,
    ) -> Result<Rows, EngineError> {
        let taken = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let planned = match taken {
            Some(p) => p,
            None => Planned::new().await?,
        };
        let rows = planned.run(inputs, rules, now).await;
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(planned);
        rows
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::FieldRef;
    use serde::Deserialize;
    use serde_arrow::schema::SchemaLike;

    use super::*;
    use crate::engine::outputs::fields;

    /// The lead-score section with one more column than lead_score.sql returns: a metric added
    /// to the section but not yet to the file.
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct LeadScoreWithVisits {
        cid: u32,
        bookings_completed: i64,
        bookings_points: i64,
        invoices_paid: i64,
        paid_points: i64,
        invoices_unpaid: i64,
        unpaid_points: i64,
        tasks_overdue: i64,
        overdue_points: i64,
        lead_score: i64,
        visits_last_week: i64,
    }

    fn planned_schema(planned: &Planned, name: &str) -> SchemaRef {
        planned
            .plans
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.schema())
            .expect("a planned file")
    }

    #[tokio::test]
    async fn every_metric_file_matches_its_section() {
        let plans = Plans::default();
        plans.verify().await.expect("the shipped files match");
        assert_eq!(
            plans.free.lock().unwrap().len(),
            1,
            "the checked set is kept"
        );
    }

    #[tokio::test]
    async fn a_section_column_the_file_lacks_stops_the_check_naming_both() {
        let planned = Planned::new().await.unwrap();
        let schema = planned_schema(&planned, "lead_score");
        let fields =
            Vec::<FieldRef>::from_type::<LeadScoreWithVisits>(super::super::outputs::options())
                .unwrap();
        let err = check_section("lead_score", &fields, &schema, &[]).unwrap_err();
        assert!(
            matches!(&err, EngineError::Section { file: "lead_score", column, .. } if column == "visits_last_week"),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "sql/metrics/lead_score.sql and its profile section disagree on column \
             visits_last_week: the section reads it, the file does not return it"
        );
    }

    model::section! {
        /// The activity section with one metric added, as docs/ADDING_A_METRIC.md adds it.
        ActivityWithVisits from "activity" {
            completed_bookings_total: i64,
            recent_bookings: i64,
            revenue_cents: i64,
            recent_paid_invoices: i64,
            recent_paid_cents: i64,
            pending_confirmations: i64,
            promotion_eligible: bool,
            visits_last_30_days: i64,
        }
    }

    /// A metric added to a file and to its section passes the start's check with no other
    /// list edited; the shipped section, which lacks it, refuses the file, naming the column.
    #[tokio::test]
    async fn a_column_added_to_a_file_and_its_section_passes_the_check() {
        let (file, sql) = METRICS.iter().find(|(n, _)| *n == "activity").unwrap();
        let select_end = "\nFROM params p\nCROSS JOIN contacts c";
        assert!(
            sql.contains(select_end),
            "the fixture edits activity.sql's last SELECT"
        );
        let added = sql.replacen(
            select_end,
            &format!(",\n       CAST(COALESCE(b.recent, 0) AS BIGINT) AS visits_last_30_days{select_end}"),
            1,
        );
        let (ctx, _) = session().unwrap();
        let plan = ctx
            .sql(&added)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let later: Vec<&str> = METRICS
            .iter()
            .skip_while(|(n, _)| n != file)
            .skip(1)
            .map(|(_, sql)| *sql)
            .collect();
        let with_visits = fields::<ActivityWithVisits>().unwrap();
        check_section(file, &with_visits, &plan.schema(), &later).unwrap();
        let (_, shipped) = SECTIONS.iter().find(|(n, _)| n == file).unwrap();
        let err = check_section(file, &shipped().unwrap(), &plan.schema(), &later).unwrap_err();
        assert!(
            err.to_string()
                .contains("column visits_last_30_days: the file returns it"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_column_of_another_kind_or_one_nobody_reads_is_refused() {
        let planned = Planned::new().await.unwrap();
        let schema = planned_schema(&planned, "segments");
        let (_, fields) = SECTIONS.iter().find(|(n, _)| *n == "segments").unwrap();
        let mut fields = fields().unwrap();
        // The section reads `reason` as a number.
        let reason = fields.iter().position(|f| f.name() == "reason").unwrap();
        fields[reason] = Arc::new(datafusion::arrow::datatypes::Field::new(
            "reason",
            datafusion::arrow::datatypes::DataType::Int64,
            false,
        ));
        let err = check_section("segments", &fields, &schema, &[]).unwrap_err();
        assert!(
            err.to_string().contains(
                "column reason: the section reads it as integer, the file returns string"
            ),
            "{err}"
        );
        // The section stops reading `reason`.
        fields.remove(reason);
        let err = check_section("segments", &fields, &schema, &[]).unwrap_err();
        assert!(err.to_string().contains("column reason: the file returns it, and neither the section nor a later file reads it"), "{err}");
        // A later file that reads `reason` makes it an intermediate column, not a stray one.
        check_section(
            "segments",
            &fields,
            &schema,
            &["SELECT s.reason FROM segments s"],
        )
        .unwrap();
        // A longer name that contains it is not a read of it.
        let err =
            check_section("segments", &fields, &schema, &["SELECT reasons FROM x"]).unwrap_err();
        assert!(err.to_string().contains("column reason"), "{err}");
    }
}
