//! The integration tests, one test binary (the fault tests aside, in `faults.rs`): each module
//! was a binary of its own, and every one of them compiled `common` and linked DataFusion, arrow,
//! rdkafka and the broker again (benches/RESULTS.md, "Build time"). Test names keep their file
//! as a prefix: `cargo test --release --test integration -- clickhouse::` runs tests/clickhouse.rs.

mod common;

mod browser;
mod calendars;
mod clickhouse;
mod dead_letters;
mod end_to_end;
mod import;
mod merges;
mod restart;
mod security;
