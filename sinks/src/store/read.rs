//! The embedded store as the API's reader: profiles and recent activity from the in-memory
//! index, a contact's lead-score history from the partition's score segments.

use std::sync::Arc;

use async_trait::async_trait;
use model::profile::ContactProfile;
use model::sink::ScoreChange;

use super::EmbeddedStore;
use crate::read::{Activity, ProfileReader, ReadError, Since, SCORE_HISTORY_MAX};

#[async_trait]
impl ProfileReader for EmbeddedStore {
    async fn stored(
        &self,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Option<Arc<ContactProfile>>, ReadError> {
        self.inner.index.stored(business_id, contact_id).await
    }

    async fn top_by_score(
        &self,
        business_id: &str,
        n: usize,
    ) -> Result<Option<Vec<Arc<ContactProfile>>>, ReadError> {
        self.inner.index.top_by_score(business_id, n).await
    }

    async fn business(
        &self,
        business_id: &str,
    ) -> Result<Option<Vec<Arc<ContactProfile>>>, ReadError> {
        self.inner.index.business(business_id).await
    }

    async fn businesses(&self) -> Result<Vec<String>, ReadError> {
        ProfileReader::businesses(&*self.inner.index).await
    }

    fn generation(&self) -> Option<u64> {
        ProfileReader::generation(&*self.inner.index)
    }

    async fn contact_events(
        &self,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Vec<Arc<Activity>>, ReadError> {
        self.inner
            .index
            .contact_events(business_id, contact_id)
            .await
    }

    async fn timeline(
        &self,
        business_id: &str,
        limit: usize,
    ) -> Result<Option<Vec<Arc<Activity>>>, ReadError> {
        self.inner.index.timeline(business_id, limit).await
    }

    /// Read from the segments of the partition the contact's profile names: a scan of that
    /// partition's score changes, which only a contact page asks for.
    async fn score_history(
        &self,
        business_id: &str,
        contact_id: &str,
        limit: usize,
    ) -> Result<Vec<ScoreChange>, ReadError> {
        let Some(p) = self.inner.index.get(business_id, contact_id) else {
            return Ok(Vec::new());
        };
        let (store, partition) = (self.clone(), p.partition);
        let (business_id, contact_id) = (business_id.to_owned(), contact_id.to_owned());
        let rows = tokio::task::spawn_blocking(move || {
            store.score_rows(partition, &business_id, &contact_id)
        })
        .await
        .map_err(|e| ReadError::Unavailable(format!("store reader panicked: {e}")))?
        .map_err(|e| ReadError::Unavailable(e.to_string()))?;
        let limit = limit.min(SCORE_HISTORY_MAX);
        Ok(rows[rows.len().saturating_sub(limit)..]
            .iter()
            .map(|r| r.to_change())
            .collect())
    }

    async fn timeline_since(
        &self,
        business_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Since, ReadError> {
        self.inner
            .index
            .timeline_since(business_id, cursor, limit)
            .await
    }
}
