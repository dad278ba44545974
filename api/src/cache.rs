//! Per-business aggregates (highlights, segment sizes, search hits) computed once and served
//! from memory while the store has not changed, or for at most `views_max_staleness_ms` while it
//! keeps changing. One computation per key at a time: concurrent requests wait for it instead of
//! repeating it (a burst after a write costs one scan, not one per request).

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most keys kept; past it the cache starts over (bounded memory under arbitrary queries).
const MAX_ENTRIES: usize = 4096;

type Value = Arc<dyn Any + Send + Sync>;

struct Entry {
    generation: Option<u64>,
    at: Instant,
    value: Value,
}

#[derive(Default)]
struct Slot {
    entry: tokio::sync::Mutex<Option<Entry>>,
}

pub struct ViewCache {
    max_staleness: Duration,
    slots: Mutex<HashMap<(String, String), Arc<Slot>>>,
}

impl std::fmt::Debug for ViewCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewCache")
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}

impl ViewCache {
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            max_staleness,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The value under (`business`, `key`): cached if it was computed at the store's current
    /// `generation` (`None`: the store cannot tell) or is younger than the staleness bound,
    /// else computed now.
    pub async fn get<T, E, F, Fut>(
        &self,
        business: &str,
        key: &str,
        generation: Option<u64>,
        compute: F,
    ) -> Result<Arc<T>, E>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let slot = {
            let mut slots = self.slots.lock().expect("cache lock");
            if slots.len() >= MAX_ENTRIES && !slots.contains_key(&(business.into(), key.into())) {
                slots.clear();
            }
            slots
                .entry((business.to_owned(), key.to_owned()))
                .or_default()
                .clone()
        };
        let mut entry = slot.entry.lock().await;
        if let Some(e) = entry.as_ref() {
            let same = generation.is_some() && e.generation == generation;
            if same || e.at.elapsed() < self.max_staleness {
                if let Ok(v) = e.value.clone().downcast::<T>() {
                    return Ok(v);
                }
            }
        }
        let value = Arc::new(compute().await?);
        *entry = Some(Entry {
            generation,
            at: Instant::now(),
            value: value.clone(),
        });
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(c: &ViewCache, generation: Option<u64>, v: u32) -> u32 {
        *c.get::<u32, (), _, _>("b", "k", generation, || async move { Ok(v) })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn unchanged_generation_is_served_from_cache() {
        let c = ViewCache::new(Duration::ZERO);
        assert_eq!(get(&c, Some(1), 10).await, 10);
        assert_eq!(get(&c, Some(1), 11).await, 10, "same generation: cached");
        assert_eq!(get(&c, Some(2), 12).await, 12, "store changed: recomputed");
        assert_eq!(
            get(&c, None, 13).await,
            13,
            "unknown generation, no staleness allowed"
        );
    }

    #[tokio::test]
    async fn staleness_bound_holds_a_value_while_the_store_changes() {
        let c = ViewCache::new(Duration::from_secs(60));
        assert_eq!(get(&c, Some(1), 10).await, 10);
        assert_eq!(get(&c, Some(2), 11).await, 10, "within the bound");
        assert_eq!(get(&c, None, 12).await, 10);
    }
}
