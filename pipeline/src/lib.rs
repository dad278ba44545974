//! KeyFlow's inbound half: the event contract, normalisation, the Kafka source (embedded broker
//! included) and the windowed DataFusion engine that turns events into contact profiles.

// The contract, re-exported where the engine's modules and its users have always found it.
pub use model::{ai_hooks, clock, event, profile, signal, sink, status};

pub mod batch;
pub mod config;
pub mod decode;
pub mod engine;
pub mod kafka;
pub mod normalise;
pub mod processor;
pub mod signals;
pub mod state;
