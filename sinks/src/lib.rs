//! KeyFlow's outbound half: the stores results land in and the read model the API serves from.
//!
//! - [`store`]: the embedded store (Arrow IPC segments under the data directory), a durable
//!   [`model::sink::ResultSink`] that also rebuilds partition state after a restart.
//! - [`index`]: the in-memory read model of current profiles the API answers from.
//! - [`read`]: the read contract the API depends on.
//! - [`rows`]: the event and signal rows both stores keep alike.
//! - [`sql`]: DataFusion SQL over the embedded store (`keyflow sql`).
//! - [`clickhouse`]: the production sink and reader (migrations in `sql/clickhouse/`).

pub mod clickhouse;
pub mod index;
pub mod read;
pub mod rows;
pub mod sql;
pub mod store;
