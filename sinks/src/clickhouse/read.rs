//! The API's reader over ClickHouse, so API replicas serve without a processor. Per-business
//! aggregates (the highlights) are cached for a short, configurable time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use model::profile::ContactProfile;

use model::sink::ScoreChange;

use super::rows::{EventRow, HistoryRow, ProfileRow};
use crate::read::{
    Activity, ProfileReader, ReadError, Since, BUSINESS_RECENT, CONTACT_RECENT, SCORE_HISTORY_MAX,
};

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
            return Ok(self.known(business_id).await?.then(Vec::new));
        }
        Ok(Some(
            rows.into_iter()
                .map(|r| Arc::new(ContactProfile::from(r)))
                .collect(),
        ))
    }

    /// Is there any profile of this business?
    async fn known(&self, business_id: &str) -> Result<bool, ReadError> {
        let n = self
            .client
            .query("SELECT count() FROM contact_profiles WHERE business_id = ?")
            .bind(business_id)
            .fetch_one::<u64>()
            .await
            .map_err(unavailable)?;
        Ok(n > 0)
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
    async fn stored(
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
        Ok(row.map(ContactProfile::from).map(Arc::new))
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

    async fn businesses(&self) -> Result<Vec<String>, ReadError> {
        self.client
            .query("SELECT DISTINCT business_id FROM contact_profiles ORDER BY business_id")
            .fetch_all::<String>()
            .await
            .map_err(unavailable)
    }

    async fn contact_events(
        &self,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Vec<Arc<Activity>>, ReadError> {
        let rows = self
            .client
            .query(
                "SELECT ?fields FROM events FINAL WHERE business_id = ? AND contact_id = ? \
                 ORDER BY occurred_at_ms DESC, ingest_seq DESC LIMIT ?",
            )
            .bind(business_id)
            .bind(contact_id)
            .bind(CONTACT_RECENT as u64)
            .fetch_all::<EventRow>()
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(activity).collect())
    }

    async fn score_history(
        &self,
        business_id: &str,
        contact_id: &str,
        limit: usize,
    ) -> Result<Vec<ScoreChange>, ReadError> {
        let mut rows = self
            .client
            .query(
                "SELECT ?fields FROM lead_score_history FINAL \
                 WHERE business_id = ? AND contact_id = ? \
                 ORDER BY evaluated_at_ms DESC LIMIT ?",
            )
            .bind(business_id)
            .bind(contact_id)
            .bind(limit.min(SCORE_HISTORY_MAX) as u64)
            .fetch_all::<HistoryRow>()
            .await
            .map_err(unavailable)?;
        rows.reverse();
        Ok(rows.iter().map(HistoryRow::to_change).collect())
    }

    async fn timeline(
        &self,
        business_id: &str,
        limit: usize,
    ) -> Result<Option<Vec<Arc<Activity>>>, ReadError> {
        let rows = self
            .client
            .query(
                "SELECT ?fields FROM events FINAL WHERE business_id = ? \
                 ORDER BY occurred_at_ms DESC, ingest_seq DESC LIMIT ?",
            )
            .bind(business_id)
            .bind(limit.min(BUSINESS_RECENT) as u64)
            .fetch_all::<EventRow>()
            .await
            .map_err(unavailable)?;
        if rows.is_empty() {
            return Ok(self.known(business_id).await?.then(Vec::new));
        }
        Ok(Some(rows.into_iter().map(activity).collect()))
    }

    async fn timeline_since(
        &self,
        business_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Since, ReadError> {
        let Some(cursor) = cursor else {
            return Ok(Since {
                items: Vec::new(),
                cursor: format_cursor(&self.ends(business_id).await?),
            });
        };
        let mut next = parse_cursor(cursor)?;
        // Never an empty array literal: 18.16 cannot type `[]`.
        let bound: Vec<u64> = if next.is_empty() {
            vec![0]
        } else {
            next.clone()
        };
        let rows = self
            .client
            .query(
                "SELECT ?fields FROM events WHERE business_id = ? \
                 AND ingest_seq >= arrayElement(?, partition + 1) \
                 ORDER BY ingest_seq, partition LIMIT ?",
            )
            .bind(business_id)
            .bind(bound)
            .bind(limit as u64)
            .fetch_all::<EventRow>()
            .await
            .map_err(unavailable)?;
        let mut seen = std::collections::HashSet::new();
        let mut items = Vec::new();
        for r in rows {
            let p = r.partition.max(0) as usize;
            if next.len() <= p {
                next.resize(p + 1, 0);
            }
            next[p] = next[p].max(r.ingest_seq + 1);
            // A replayed batch may have inserted the same event twice before a merge.
            if seen.insert(r.event_id.clone()) {
                items.push(activity(r));
            }
        }
        Ok(Since {
            items,
            cursor: format_cursor(&next),
        })
    }
}

fn activity(r: EventRow) -> Arc<Activity> {
    Arc::new(Activity {
        seq: r.ingest_seq,
        partition: r.partition,
        event_id: r.event_id,
        kind: r.kind,
        business_id: r.business_id,
        contact_id: r.contact_id,
        occurred_at: r.occurred_at_ms,
        source: r.source,
        data: r.data,
    })
}

/// A timeline cursor over ClickHouse: the next `ingest_seq` to read per partition, written
/// `p:seq,p:seq` (`ingest_seq` orders events within a partition only).
fn parse_cursor(cursor: &str) -> Result<Vec<u64>, ReadError> {
    let bad = || ReadError::Invalid(format!("cursor {cursor:?} was not issued here"));
    let mut next = Vec::new();
    for part in cursor.split(',').filter(|p| !p.is_empty()) {
        let (p, seq) = part.split_once(':').ok_or_else(bad)?;
        let p: usize = p.parse().map_err(|_| bad())?;
        if p > 4096 {
            return Err(bad());
        }
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        if next.len() <= p {
            next.resize(p + 1, 0);
        }
        next[p] = seq;
    }
    Ok(next)
}

fn format_cursor(next: &[u64]) -> String {
    next.iter()
        .enumerate()
        .map(|(p, s)| format!("{p}:{s}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct PartitionEnd {
    partition: i32,
    next: u64,
}

impl ClickHouseReader {
    /// The next `ingest_seq` per partition holding events of the business.
    async fn ends(&self, business_id: &str) -> Result<Vec<u64>, ReadError> {
        let rows = self
            .client
            .query(
                "SELECT partition, max(ingest_seq) + 1 AS next FROM events \
                 WHERE business_id = ? GROUP BY partition",
            )
            .bind(business_id)
            .fetch_all::<PartitionEnd>()
            .await
            .map_err(unavailable)?;
        let mut next = Vec::new();
        for r in rows {
            let p = r.partition.max(0) as usize;
            if next.len() <= p {
                next.resize(p + 1, 0);
            }
            next[p] = r.next;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let next = parse_cursor("0:5,2:7").unwrap();
        assert_eq!(next, [5, 0, 7]);
        assert_eq!(format_cursor(&next), "0:5,1:0,2:7");
        assert!(parse_cursor("0:5,x").is_err());
        assert!(parse_cursor("99999:1").is_err());
        assert!(parse_cursor("").unwrap().is_empty());
    }
}
