//! The read model: current profiles per business, with the lead-score ranking kept sorted so the
//! highlights are a range read, not a scan; and the recent activity (bounded per contact and
//! per business) behind the contact page and the live timeline.

use std::cmp::Reverse;
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use model::hash::Map;
use model::profile::ContactProfile;
use model::sink::ScoreChange;

use crate::read::{Activity, ProfileReader, ReadError, Since, BUSINESS_RECENT, CONTACT_RECENT};
use crate::rows::StoredEventRef;

mod packed;
use packed::{Packed, Record};

/// Highlights order: score descending, balance ascending, contact id ascending.
type RankKey = (Reverse<i64>, i64, String);

fn rank_key(p: &ContactProfile) -> RankKey {
    (
        Reverse(p.lead_score),
        p.balance.outstanding_balance_cents,
        p.contact_id.clone(),
    )
}

#[derive(Debug, Default)]
struct Business {
    contacts: Map<String, Arc<ContactProfile>>,
    ranking: BTreeSet<RankKey>,
}

/// Latest events, in arrival order, bounded per business and per contact.
#[derive(Debug, Default)]
struct Recent {
    /// Seq of the last event recorded (0: none yet).
    last_seq: u64,
    /// What the timeline reads; shared with its readers.
    by_business: Map<String, VecDeque<Arc<Activity>>>,
    /// Business, then contact: that contact's latest events, packed (one allocation each).
    by_contact: Map<String, Map<String, Packed>>,
}

fn push_bounded(q: &mut VecDeque<Arc<Activity>>, a: &Arc<Activity>, bound: usize) {
    q.push_back(a.clone());
    while q.len() > bound {
        q.pop_front();
    }
}

#[derive(Debug, Default)]
pub struct ProfileIndex {
    businesses: RwLock<Map<String, Business>>,
    recent: RwLock<Recent>,
    /// Bumped by every change of the profiles (see [`ProfileReader::generation`]).
    generation: AtomicU64,
}

impl ProfileIndex {
    /// Applies newer versions; an older `evaluated_at` than the one held is ignored.
    /// Takes owned or shared profiles alike (a shared one is kept as is, not copied).
    pub fn upsert<P: Into<Arc<ContactProfile>>, I: IntoIterator<Item = P>>(&self, profiles: I) {
        let mut all = self.businesses.write().expect("index lock");
        self.generation.fetch_add(1, Ordering::Release);
        for p in profiles {
            let p: Arc<ContactProfile> = p.into();
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
            b.contacts.insert(p.contact_id.clone(), p);
        }
    }

    /// Forgets the contacts and activity of `partition` (another processor owns it now).
    pub fn drop_partition(&self, partition: i32) {
        self.forget_partition(partition);
        let mut all = self.businesses.write().expect("index lock");
        self.generation.fetch_add(1, Ordering::Release);
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

    /// Records accepted events (in processing order) as the latest activity. Only the newest
    /// [`BUSINESS_RECENT`] of each business become timeline entries (the older ones would be
    /// pushed out by the same call), and each contact's new events are packed after its
    /// earlier ones in one copy.
    pub fn record<'a, I: IntoIterator<Item = StoredEventRef<'a>>>(&self, events: I) {
        let events: Vec<StoredEventRef<'a>> = events.into_iter().collect();
        let mut guard = self.recent.write().expect("activity lock");
        let r = &mut *guard;
        let first = r.last_seq + 1;
        r.last_seq += events.len() as u64;
        let mut newest: Map<&str, usize> = Map::default();
        let mut timeline = vec![false; events.len()];
        for (i, e) in events.iter().enumerate().rev() {
            let n = newest.entry(e.business_id).or_default();
            if *n < BUSINESS_RECENT {
                *n += 1;
                timeline[i] = true;
            }
        }
        let mut by_contact: Map<(&str, &str), Vec<Record<'_>>> = Map::default();
        for ((i, e), seq) in events.iter().enumerate().zip(first..) {
            if timeline[i] {
                let a = Arc::new(Activity {
                    seq,
                    partition: e.partition,
                    event_id: e.event_id.to_owned(),
                    kind: e.kind.to_owned(),
                    business_id: e.business_id.to_owned(),
                    contact_id: e.contact_id.to_owned(),
                    occurred_at: e.occurred_at,
                    source: e.source.to_owned(),
                    data: e.data.to_owned(),
                });
                // The key is copied only for a business seen for the first time.
                let business = match r.by_business.get_mut(e.business_id) {
                    Some(q) => q,
                    None => r.by_business.entry(e.business_id.to_owned()).or_default(),
                };
                push_bounded(business, &a, BUSINESS_RECENT);
            }
            by_contact
                .entry((e.business_id, e.contact_id))
                .or_default()
                .push(Record {
                    seq,
                    occurred_at: e.occurred_at,
                    partition: e.partition,
                    event_id: e.event_id,
                    kind: e.kind,
                    source: e.source,
                    data: e.data,
                });
        }
        for ((business_id, contact_id), records) in by_contact {
            let contacts = match r.by_contact.get_mut(business_id) {
                Some(m) => m,
                None => r.by_contact.entry(business_id.to_owned()).or_default(),
            };
            let packed = match contacts.get_mut(contact_id) {
                Some(p) => p,
                None => contacts.entry(contact_id.to_owned()).or_default(),
            };
            packed.extend(&records, CONTACT_RECENT);
        }
    }

    /// Replaces the activity of `partition` with `events` (its stored events, in order):
    /// recovery after a reassignment must not record them twice.
    pub fn reload_partition<'a>(
        &self,
        partition: i32,
        events: impl IntoIterator<Item = StoredEventRef<'a>>,
    ) {
        self.forget_partition(partition);
        self.record(events);
    }

    /// Rewrites the kept activity of erased contacts with their events' redacted data.
    pub fn redact(&self, erased: &[(String, String)]) {
        let redacted = |kind: &str, data: &str| {
            model::event::Payload::from_parts(kind, data)
                .map(|p| p.redacted().data_json())
                .unwrap_or_else(|_| "{}".into())
        };
        let mut guard = self.recent.write().expect("activity lock");
        let r = &mut *guard;
        for q in r.by_business.values_mut() {
            for a in q.iter_mut() {
                if erased
                    .iter()
                    .any(|(b, c)| *b == a.business_id && *c == a.contact_id)
                {
                    *a = Arc::new(Activity {
                        data: redacted(&a.kind, &a.data),
                        ..(**a).clone()
                    });
                }
            }
        }
        for (b, c) in erased {
            if let Some(p) = r.by_contact.get_mut(b).and_then(|m| m.get_mut(c)) {
                p.map_data(|rec| redacted(rec.kind, rec.data));
            }
        }
    }

    fn forget_partition(&self, partition: i32) {
        let mut guard = self.recent.write().expect("activity lock");
        let r = &mut *guard;
        for q in r.by_business.values_mut() {
            q.retain(|a| a.partition != partition);
        }
        r.by_business.retain(|_, q| !q.is_empty());
        for contacts in r.by_contact.values_mut() {
            for p in contacts.values_mut() {
                p.retain(|rec| rec.partition != partition);
            }
            contacts.retain(|_, p| !p.is_empty());
        }
        r.by_contact.retain(|_, m| !m.is_empty());
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
    async fn stored(
        &self,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Option<Arc<ContactProfile>>, ReadError> {
        Ok(self.get(business_id, contact_id))
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

    async fn businesses(&self) -> Result<Vec<String>, ReadError> {
        Ok(ProfileIndex::businesses(self))
    }

    fn generation(&self) -> Option<u64> {
        Some(self.generation.load(Ordering::Acquire))
    }

    async fn contact_events(
        &self,
        business_id: &str,
        contact_id: &str,
    ) -> Result<Vec<Arc<Activity>>, ReadError> {
        let r = self.recent.read().expect("activity lock");
        let mut v: Vec<Arc<Activity>> = r
            .by_contact
            .get(business_id)
            .and_then(|m| m.get(contact_id))
            .map(|p| {
                p.iter()
                    .map(|rec| Arc::new(rec.to_activity(business_id, contact_id)))
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|a| std::cmp::Reverse((a.occurred_at, a.seq)));
        Ok(v)
    }

    /// The index holds current profiles only: the history is kept by the store behind it
    /// (`EmbeddedStore` reads it from its segments).
    async fn score_history(
        &self,
        _business_id: &str,
        _contact_id: &str,
        _limit: usize,
    ) -> Result<Vec<ScoreChange>, ReadError> {
        Err(ReadError::Unavailable(
            "the in-memory index keeps no score history; read it through the store".into(),
        ))
    }

    async fn timeline(
        &self,
        business_id: &str,
        limit: usize,
    ) -> Result<Option<Vec<Arc<Activity>>>, ReadError> {
        let known = self
            .businesses
            .read()
            .expect("index lock")
            .contains_key(business_id);
        let r = self.recent.read().expect("activity lock");
        let Some(q) = r.by_business.get(business_id) else {
            return Ok(known.then(Vec::new));
        };
        let mut v: Vec<_> = q.iter().cloned().collect();
        v.sort_by_key(|a| std::cmp::Reverse((a.occurred_at, a.seq)));
        v.truncate(limit);
        Ok(Some(v))
    }

    async fn timeline_since(
        &self,
        business_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Since, ReadError> {
        let r = self.recent.read().expect("activity lock");
        let Some(cursor) = cursor else {
            return Ok(Since {
                items: Vec::new(),
                cursor: r.last_seq.to_string(),
            });
        };
        let after: u64 = cursor
            .parse()
            .map_err(|_| ReadError::Invalid(format!("cursor {cursor:?} was not issued here")))?;
        let items: Vec<_> = r
            .by_business
            .get(business_id)
            .map(|q| {
                q.iter()
                    .filter(|a| a.seq > after)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let cursor = match items.last() {
            Some(a) if items.len() == limit => a.seq,
            _ => r.last_seq.max(after),
        };
        Ok(Since {
            items,
            cursor: cursor.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::StoredEvent;

    fn profile(id: &str, score: i64, balance: i64, at: i64) -> ContactProfile {
        ContactProfile {
            business_id: "b".into(),
            contact_id: id.into(),
            status: "LEAD".into(),
            lead_score: score,
            rule_version: "v".into(),
            balance: model::sections::Balance {
                outstanding_balance_cents: balance,
                ..Default::default()
            },
            evaluated_at: at,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn one_call_keeps_the_newest_events_of_each_business_and_contact() {
        let n = BUSINESS_RECENT + 300;
        let stored: Vec<StoredEvent> = (0..n)
            .map(|i| StoredEvent {
                partition: 0,
                topic: "crm.contacts".into(),
                offset: i as i64,
                event_id: format!("e{i}"),
                kind: "note.created".into(),
                business_id: "b".into(),
                contact_id: "c".into(),
                occurred_at: i as i64,
                source: "manual".into(),
                data: format!("{{\"note_id\":\"n{i}\",\"body\":\"x\"}}"),
            })
            .collect();
        let idx = ProfileIndex::default();
        idx.upsert([profile("c", 1, 0, 1)]);
        idx.record(stored.iter().map(StoredEventRef::of));
        let timeline = idx.timeline("b", BUSINESS_RECENT).await.unwrap().unwrap();
        assert_eq!(timeline.len(), BUSINESS_RECENT);
        assert_eq!(timeline[0].seq, n as u64);
        assert_eq!(timeline[0].data, stored[n - 1].data);
        let oldest = timeline.last().unwrap();
        assert_eq!(oldest.seq, (n - BUSINESS_RECENT + 1) as u64);
        assert_eq!(oldest.event_id, stored[n - BUSINESS_RECENT].event_id);
        let contact = idx.contact_events("b", "c").await.unwrap();
        assert_eq!(contact.len(), CONTACT_RECENT);
        assert_eq!(
            (contact[0].seq, &contact[0].event_id),
            (n as u64, &stored[n - 1].event_id)
        );
        // The next call goes on from the last seq, and the oldest events make way.
        idx.record(stored[..1].iter().map(StoredEventRef::of));
        let contact = idx.contact_events("b", "c").await.unwrap();
        let seqs: Vec<u64> = contact.iter().map(|a| a.seq).collect();
        assert_eq!(seqs.len(), CONTACT_RECENT);
        assert!(seqs.contains(&(n as u64 + 1)));
        assert!(!seqs.contains(&((n - CONTACT_RECENT + 1) as u64)));
        let since = idx
            .timeline_since("b", Some(&n.to_string()), 10)
            .await
            .unwrap();
        assert_eq!(since.items.len(), 1);
        assert_eq!(since.items[0].event_id, "e0");
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
