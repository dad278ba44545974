//! What the API needs from a store, independent of which store serves it.

use std::sync::Arc;

use async_trait::async_trait;
use pipeline::profile::ContactProfile;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait ProfileReader: Send + Sync {
    /// The current profile of a visible contact (not deleted, not merged away).
    async fn contact(
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
}
