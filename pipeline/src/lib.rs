//! KeyFlow's inbound half: the event contract, normalisation, the Kafka source (embedded broker
//! included) and the windowed DataFusion engine that turns events into contact profiles.

pub mod ai_hooks;
pub mod batch;
pub mod business;
pub mod clock;
pub mod config;
pub mod decode;
pub mod engine;
pub mod event;
pub mod kafka;
pub mod normalise;
pub mod processor;
pub mod profile;
pub mod signals;
pub mod sink;
pub mod state;
pub mod status;
