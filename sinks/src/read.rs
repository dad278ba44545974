//! What the API needs from a store, independent of which store serves it: current profiles,
//! the recent activity (accepted events) behind the contact page and the live timeline, and a
//! contact's lead-score history.

use std::sync::Arc;

use async_trait::async_trait;
use model::profile::ContactProfile;
use model::sink::ScoreChange;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The caller's input cannot be used (a malformed cursor, say): a 400, not a 503.
    #[error("{0}")]
    Invalid(String),
}

/// One accepted event as the Cockpit shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// Arrival order within the store (embedded: one counter; ClickHouse: `ingest_seq`).
    pub seq: u64,
    pub partition: i32,
    pub event_id: String,
    pub kind: String,
    pub business_id: String,
    pub contact_id: String,
    /// UTC milliseconds.
    pub occurred_at: i64,
    pub source: String,
    /// The event's `data` object, as JSON text.
    pub data: String,
}

impl Activity {
    /// The `data` object, parsed (an empty object if it is not JSON, which the decoder
    /// prevents).
    pub fn data_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|_| serde_json::json!({}))
    }
}

/// Events stored after a cursor, oldest first, and the cursor to continue from.
#[derive(Debug, Clone, Default)]
pub struct Since {
    pub items: Vec<Arc<Activity>>,
    pub cursor: String,
}

/// Most lead-score changes a history read returns (the latest ones).
pub const SCORE_HISTORY_MAX: usize = 500;

/// How many of a contact's latest events the contact page is built from.
pub const CONTACT_RECENT: usize = 200;
/// How many of a business's latest events the timeline keeps.
pub const BUSINESS_RECENT: usize = 1000;

#[async_trait]
pub trait ProfileReader: Send + Sync {
    /// The current profile of a visible contact (not deleted, not merged away).
    async fn contact(
        &self,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Option<Arc<ContactProfile>>, ReadError> {
        Ok(self
            .stored(business_id, contact_id)
            .await?
            .filter(|p| p.visible()))
    }

    /// The latest stored profile of a contact, visible or not: a merged-away contact's tells
    /// which contact it was merged into.
    async fn stored(
        &self,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Option<Arc<ContactProfile>>, ReadError>;

    /// The `n` best-scored visible contacts (ties: lower outstanding balance, then contact id),
    /// or `None` when the business is unknown.
    async fn top_by_score(
        &self,
        business_id: &str,
        n: usize,
    ) -> Result<Option<Vec<Arc<ContactProfile>>>, ReadError>;

    /// Every visible contact of a business, or `None` when the business is unknown.
    async fn business(
        &self,
        business_id: &str,
    ) -> Result<Option<Vec<Arc<ContactProfile>>>, ReadError>;

    /// Every business with at least one profile, sorted.
    async fn businesses(&self) -> Result<Vec<String>, ReadError>;

    /// A number that changes whenever any profile changes, when the store can tell (the
    /// embedded index can; ClickHouse cannot cheaply): lets the API cache aggregates exactly.
    fn generation(&self) -> Option<u64> {
        None
    }

    /// The contact's latest [`CONTACT_RECENT`] events, newest first (by occurrence).
    async fn contact_events(
        &self,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Vec<Arc<Activity>>, ReadError>;

    /// The business's latest `limit` events (at most [`BUSINESS_RECENT`]), newest first by
    /// occurrence, or `None` when the business is unknown.
    async fn timeline(
        &self,
        business_id: &str,
        limit: usize,
    ) -> Result<Option<Vec<Arc<Activity>>>, ReadError>;

    /// The contact's lead-score changes, oldest first: the latest `limit` of them (at most
    /// [`SCORE_HISTORY_MAX`]), each with the factors behind its new score. Empty for a contact
    /// without any.
    async fn score_history(
        &self,
        business_id: &str,
        contact_id: &str,
        limit: usize,
    ) -> Result<Vec<ScoreChange>, ReadError>;

    /// Events of the business stored after `cursor`, oldest first, at most `limit`. Without a
    /// cursor: nothing, and the cursor of "now". A cursor the store did not issue is
    /// [`ReadError::Invalid`].
    async fn timeline_since(
        &self,
        business_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Since, ReadError>;
}
