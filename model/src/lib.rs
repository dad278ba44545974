//! KeyFlow's contract: the types every layer shares, and nothing that runs a broker, a Kafka
//! client or a query engine.
//!
//! Layout:
//! - [`event`]: the inbound event envelope and its payloads (what producers publish).
//! - [`profile`]: what the engine produces per contact and stores keep.
//! - [`sections`]: the profile's metric sections, one per metric file, defined once.
//! - [`rules`]: the rules a business is evaluated with (scoring, metric windows, overrides).
//! - [`signal`]: the change signals published on `crm.signals` and stored beside profiles.
//! - [`sink`]: the contract between the processor and the stores it writes to.
//! - [`calendar`]: a business's time zone and week, and the local days they count in.
//! - [`hash`]: the hasher of the in-memory maps keyed by ids.
//! - [`clock`]: the injected clock and the millisecond instant [`clock::Ms`].
//! - [`status`]: the processor's live counters and readiness, read by the API.
//! - [`ai_hooks`]: the AI hook points (stubs) and the types they answer with.

pub mod ai_hooks;
pub mod calendar;
pub mod clock;
pub mod event;
pub mod hash;
pub mod profile;
pub mod rules;
pub mod sections;
pub mod signal;
pub mod sink;
pub mod status;
