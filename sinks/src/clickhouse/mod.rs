//! The ClickHouse sink: the production store analysts query and API replicas read.
//!
//! Split by job, like Vector's sinks: [`config`] (settings and validation), [`migrate`] (the
//! numbered DDL in `sql/clickhouse/`), [`rows`] (row types), [`service`] (which failures are
//! retried), [`sink`] (the durable writes and the recovery read), [`read`] (the API's reader).

pub mod config;
pub mod migrate;
pub mod read;
pub mod rows;
pub mod service;
pub mod sink;

pub use config::ClickHouseConfig;
pub use read::ClickHouseReader;
pub use sink::ClickHouseSink;
