//! The security suite, run twice: over the embedded store's index (`api/tests/security.rs`) and
//! over ClickHouse (`tests/security.rs`), against the API served on a real socket.
#![allow(dead_code)]

pub mod fixture;
pub mod http;
pub mod injection;
pub mod isolation;
pub mod malformed;
