//! DataFusion SQL over the embedded store, for `keyflow sql` and for tests.
//!
//! Tables: `events` (every accepted event), `profile_versions` (every profile written),
//! `lead_score_history` (every lead-score change, ClickHouse's columns) and the view `profiles` (the latest version of each contact; deleted and merged contacts included,
//! flagged by `deleted` and `merged_into`).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use crate::store::{rows, EmbeddedStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Query(#[from] DataFusionError),
}

/// The view of current profiles, kept as data beside the metric queries.
pub const PROFILES_VIEW: &str = include_str!("../../sql/embedded/profiles_view.sql");

/// A session with the store's tables registered.
pub fn session(store: &EmbeddedStore) -> Result<SessionContext, SqlError> {
    let ctx = SessionContext::new();
    let mut events = Vec::new();
    let mut versions = Vec::new();
    let mut scores = Vec::new();
    for p in store.partitions()? {
        scores.push(
            rows::scores_batch(&store.scores(p)?).map_err(|source| StoreError::Rows {
                what: "scores",
                source,
            })?,
        );
        events.push(
            rows::events_batch(&store.events(p)?).map_err(|source| StoreError::Rows {
                what: "events",
                source,
            })?,
        );
        versions.push(
            rows::profiles_batch(&store.profile_versions(p)?).map_err(|source| {
                StoreError::Rows {
                    what: "profiles",
                    source,
                }
            })?,
        );
    }
    let register =
        |name: &str, fields: Vec<_>, batches: Vec<RecordBatch>| -> Result<(), SqlError> {
            let table = MemTable::try_new(rows::schema(&fields), vec![batches])?;
            ctx.register_table(name, Arc::new(table))?;
            Ok(())
        };
    register("events", rows::event_fields(), events)?;
    register("profile_versions", rows::profile_fields(), versions)?;
    // Named as ClickHouse's table, with the same columns.
    register("lead_score_history", rows::score_fields(), scores)?;
    Ok(ctx)
}

/// Runs one statement and returns its rows.
pub async fn query(store: &EmbeddedStore, sql: &str) -> Result<Vec<RecordBatch>, SqlError> {
    let ctx = session(store)?;
    ctx.sql(PROFILES_VIEW).await?.collect().await?;
    Ok(ctx.sql(sql).await?.collect().await?)
}
