//! The API's reader over ClickHouse, so API replicas serve without a processor. Per-business
//! aggregates (the highlights) are cached for a short, configurable time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pipeline::profile::ContactProfile;

use super::rows::ProfileRow;
use crate::read::{ProfileReader, ReadError};

type Top = Option<Vec<Arc<ContactProfile>>>;
/// Highlights per (business, count), with when they were read.
type TopCache = HashMap<(String, usize), (Instant, Top)>;

#[derive(Clone)]
pub struct ClickHouseReader {
    client: clickhouse::Client,
    ttl: Duration,
    cache: Arc<Mutex<TopCache>>,
}

fn unavailable(e: clickhouse::error::Error) -> ReadError {
    ReadError::Unavailable(e.to_string())
}

impl ClickHouseReader {
    /// `rows` as profiles; no rows is an empty list for a known business, `None` otherwise.
    async fn found(&self, business_id: &str, rows: Vec<ProfileRow>) -> Result<Top, ReadError> {
        if rows.is_empty() {
            let known = self
                .client
                .query("SELECT count() FROM contact_profiles WHERE business_id = ?")
                .bind(business_id)
                .fetch_one::<u64>()
                .await
                .map_err(unavailable)?;
            return Ok((known > 0).then(Vec::new));
        }
        Ok(Some(
            rows.into_iter()
                .map(|r| Arc::new(ContactProfile::from(r)))
                .collect(),
        ))
    }

    pub fn new(client: clickhouse::Client, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            cache: Arc::default(),
        }
    }
}

#[async_trait]
impl ProfileReader for ClickHouseReader {
    async fn contact(
        &self,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Option<Arc<ContactProfile>>, ReadError> {
        let row = self
            .client
            .query("SELECT ?fields FROM contact_profiles FINAL WHERE business_id = ? AND contact_id = ? LIMIT 1")
            .bind(business_id)
            .bind(contact_id)
            .fetch_optional::<ProfileRow>()
            .await
            .map_err(unavailable)?;
        Ok(row
            .map(ContactProfile::from)
            .filter(|p| p.visible())
            .map(Arc::new))
    }

    async fn top_by_score(&self, business_id: &str, n: usize) -> Result<Top, ReadError> {
        let key = (business_id.to_owned(), n);
        if let Some((at, top)) = self.cache.lock().expect("cache lock").get(&key) {
            if at.elapsed() < self.ttl {
                return Ok(top.clone());
            }
        }
        let rows = self
            .client
            .query(
                "SELECT ?fields FROM contact_profiles FINAL \
                 WHERE business_id = ? AND deleted = 0 AND isNull(merged_into) \
                 ORDER BY lead_score DESC, outstanding_balance_cents ASC, contact_id ASC LIMIT ?",
            )
            .bind(business_id)
            .bind(n as u64)
            .fetch_all::<ProfileRow>()
            .await
            .map_err(unavailable)?;
        let top = self.found(business_id, rows).await?;
        self.cache
            .lock()
            .expect("cache lock")
            .insert(key, (Instant::now(), top.clone()));
        Ok(top)
    }

    async fn business(&self, business_id: &str) -> Result<Top, ReadError> {
        let rows = self
            .client
            .query(
                "SELECT ?fields FROM contact_profiles FINAL \
                 WHERE business_id = ? AND deleted = 0 AND isNull(merged_into) \
                 ORDER BY contact_id",
            )
            .bind(business_id)
            .fetch_all::<ProfileRow>()
            .await
            .map_err(unavailable)?;
        self.found(business_id, rows).await
    }
}
