//! The read model: current profiles per business, with the lead-score ranking kept sorted so the
//! highlights are a range read, not a scan.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use pipeline::profile::ContactProfile;

use crate::read::{ProfileReader, ReadError};

/// Highlights order: score descending, balance ascending, contact id ascending.
type RankKey = (Reverse<i64>, i64, String);

fn rank_key(p: &ContactProfile) -> RankKey {
    (
        Reverse(p.lead_score),
        p.outstanding_balance_cents,
        p.contact_id.clone(),
    )
}

#[derive(Debug, Default)]
struct Business {
    contacts: HashMap<String, Arc<ContactProfile>>,
    ranking: BTreeSet<RankKey>,
}

#[derive(Debug, Default)]
pub struct ProfileIndex {
    businesses: RwLock<HashMap<String, Business>>,
}

impl ProfileIndex {
    /// Applies newer versions; an older `evaluated_at` than the one held is ignored.
    pub fn upsert<I: IntoIterator<Item = ContactProfile>>(&self, profiles: I) {
        let mut all = self.businesses.write().expect("index lock");
        for p in profiles {
            let b = all.entry(p.business_id.clone()).or_default();
            if let Some(old) = b.contacts.get(&p.contact_id) {
                if old.evaluated_at > p.evaluated_at {
                    continue;
                }
                if old.visible() {
                    b.ranking.remove(&rank_key(old));
                }
            }
            if p.visible() {
                b.ranking.insert(rank_key(&p));
            }
            b.contacts.insert(p.contact_id.clone(), Arc::new(p));
        }
    }

    /// Forgets the contacts of `partition` (another processor owns it now).
    pub fn drop_partition(&self, partition: i32) {
        let mut all = self.businesses.write().expect("index lock");
        for b in all.values_mut() {
            let gone: Vec<String> = b
                .contacts
                .values()
                .filter(|p| p.partition == partition)
                .map(|p| p.contact_id.clone())
                .collect();
            for id in gone {
                if let Some(p) = b.contacts.remove(&id) {
                    b.ranking.remove(&rank_key(&p));
                }
            }
        }
    }

    pub fn get(&self, business_id: &str, contact_id: &str) -> Option<Arc<ContactProfile>> {
        let all = self.businesses.read().expect("index lock");
        all.get(business_id)?.contacts.get(contact_id).cloned()
    }

    pub fn top(&self, business_id: &str, n: usize) -> Option<Vec<Arc<ContactProfile>>> {
        let all = self.businesses.read().expect("index lock");
        let b = all.get(business_id)?;
        Some(
            b.ranking
                .iter()
                .take(n)
                .filter_map(|(_, _, id)| b.contacts.get(id).cloned())
                .collect(),
        )
    }

    /// Number of contacts held, visible or not.
    pub fn len(&self) -> usize {
        self.businesses
            .read()
            .expect("index lock")
            .values()
            .map(|b| b.contacts.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Business ids, sorted.
    pub fn businesses(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .businesses
            .read()
            .expect("index lock")
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }
}

#[async_trait]
impl ProfileReader for ProfileIndex {
    async fn contact(
        &self,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Option<Arc<ContactProfile>>, ReadError> {
        Ok(self.get(business_id, contact_id).filter(|p| p.visible()))
    }

    async fn top_by_score(
        &self,
        business_id: &str,
        n: usize,
    ) -> Result<Option<Vec<Arc<ContactProfile>>>, ReadError> {
        Ok(self.top(business_id, n))
    }

    async fn business(
        &self,
        business_id: &str,
    ) -> Result<Option<Vec<Arc<ContactProfile>>>, ReadError> {
        let all = self.businesses.read().expect("index lock");
        Ok(all.get(business_id).map(|b| {
            let mut v: Vec<_> = b
                .contacts
                .values()
                .filter(|p| p.visible())
                .cloned()
                .collect();
            v.sort_by(|x, y| x.contact_id.cmp(&y.contact_id));
            v
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(id: &str, score: i64, balance: i64, at: i64) -> ContactProfile {
        ContactProfile {
            business_id: "b".into(),
            contact_id: id.into(),
            status: "LEAD".into(),
            lead_score: score,
            rule_version: "v".into(),
            outstanding_balance_cents: balance,
            evaluated_at: at,
            ..Default::default()
        }
    }

    #[test]
    fn top_orders_by_score_then_balance_then_id() {
        let idx = ProfileIndex::default();
        idx.upsert([
            profile("c", 50, 0, 1),
            profile("a", 50, 100, 1),
            profile("b", 50, 0, 1),
            profile("d", 90, 0, 1),
        ]);
        let ids: Vec<_> = idx
            .top("b", 3)
            .unwrap()
            .iter()
            .map(|p| p.contact_id.clone())
            .collect();
        assert_eq!(ids, ["d", "b", "c"]);
    }

    #[test]
    fn newer_versions_replace_and_older_ones_are_ignored() {
        let idx = ProfileIndex::default();
        idx.upsert([profile("a", 10, 0, 5)]);
        idx.upsert([profile("a", 90, 0, 4)]);
        assert_eq!(idx.get("b", "a").unwrap().lead_score, 10);
        let mut deleted = profile("a", 70, 0, 6);
        deleted.deleted = true;
        idx.upsert([deleted]);
        assert!(idx.top("b", 3).unwrap().is_empty());
        assert!(idx.top("nobody", 3).is_none());
    }
}
