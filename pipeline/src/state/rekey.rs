//! Merges across partitions: what a partition forwards to others, and which contacts it owns.
//!
//! The input topics are partitioned by contact, so a survivor S and a contact M merged into it
//! usually live on different partitions. They meet the way Kafka Streams' repartition topics
//! make records meet, over an internal topic co-partitioned with the inputs (the re-key topic,
//! `topics.rekey`):
//!
//! - the partition that reads `contact.merged` (S's own) sends it to every other partition: the
//!   one that reads M's events learns that M now belongs to S, the others where to route M;
//! - the partition that reads M's events then sends M's whole stored history to S's partition,
//!   and every later event of M as it arrives, each with its original event id;
//! - S's partition folds them into S as if it had read them itself. Events for M keep acting
//!   on M alone when they are about its record (create, update, delete, erase).
//!
//! Each forwarded message names the partition that sent it (the contact's own), so a receiver
//! knows which contacts live elsewhere: it neither evaluates nor writes them. Forwards are sent
//! after the batch that asked for them is stored and before its offsets are committed; a
//! rebuilt partition sends its merges and histories again. Receivers count every event id
//! once, so nothing is counted twice.

use std::sync::Arc;

use super::{Applied, ContactKey, ContactState, PartitionState};
use crate::event::Event;

/// Which partition reads a contact's own events, as far as this partition knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Place {
    /// Only named by a merge: no event of its own has been seen.
    #[default]
    Unknown,
    /// Its events are read from this partition's input topics.
    Home,
    /// Its events are read by partition `n`, which forwarded what this one holds.
    Elsewhere(i32),
}

/// A message for another partition's re-key topic.
#[derive(Debug, Clone, PartialEq)]
pub enum Forward {
    /// A `contact.merged` read from an input topic: to every other partition.
    Broadcast(Event),
    /// One event of a merged-away contact, to the partition of its survivor `key`.
    Event {
        event: Event,
        to: i32,
        key: Arc<str>,
    },
    /// Every stored event of `contact`, to the partition of its survivor `key`.
    History {
        contact: ContactKey,
        to: i32,
        key: Arc<str>,
    },
}

/// Whether this partition evaluates and writes `c`: it reads the contact's own events, or the
/// contact has no place yet and was not merged away (a state built by hand, in unit tests). A
/// contact only named by a merge is written by no partition (it has no events of its own to
/// show), so what a partition writes never depends on which partition heard of it first.
pub(super) fn owns(c: &ContactState) -> bool {
    match c.place {
        Place::Home => true,
        Place::Elsewhere(_) => false,
        Place::Unknown => c.merged_into.is_none(),
    }
}

impl PartitionState {
    /// Applies an event that partition `origin` forwarded over the re-key topic.
    pub fn apply_rekeyed(&mut self, ev: &Event, origin: i32) -> Applied {
        self.apply_from(ev, Some(origin))
    }

    /// What applying events asked to send to other partitions since the last call.
    pub fn take_forwards(&mut self) -> Vec<Forward> {
        std::mem::take(&mut self.outbox)
    }

    /// After a rebuild: nothing is known to have been forwarded, so every merged-away contact
    /// of this partition whose survivor lives elsewhere has its history sent again (receivers
    /// count each event once). Single events are dropped: the histories hold them.
    pub fn forward_again(&mut self) -> Vec<Forward> {
        self.outbox.retain(|f| matches!(f, Forward::Broadcast(_)));
        self.forwarded.clear();
        self.reroute();
        self.take_forwards()
    }

    /// Records where `key`'s own events are read: here for an input event, at `origin` for a
    /// forwarded one (an input event wins).
    pub(super) fn locate(&mut self, key: &ContactKey, origin: Option<i32>) {
        let c = self.contacts.entry(key.clone()).or_default();
        match origin {
            None => c.place = Place::Home,
            Some(p) if c.place != Place::Home => c.place = Place::Elsewhere(p),
            Some(_) => {}
        }
    }

    /// The survivor of `key` and its partition, when that survivor lives on another partition.
    fn remote_root(&self, key: &ContactKey) -> Option<(i32, ContactKey)> {
        let root = self.resolve(key);
        if root == *key {
            return None;
        }
        match self.contacts.get(&root)?.place {
            Place::Elsewhere(p) => Some((p, root)),
            _ => None,
        }
    }

    /// An input event of a contact merged into a survivor elsewhere goes there too.
    pub(super) fn forward_if_remote(&mut self, ev: &Event, own: &ContactKey) {
        if let Some((to, root)) = self.remote_root(own) {
            self.outbox.push(Forward::Event {
                event: ev.clone(),
                to,
                key: root.contact_id,
            });
        }
    }

    /// After a merge: every merged-away contact of this partition whose survivor now lives on
    /// another partition (a new merge, or a chain that moved on) sends its history there.
    pub(super) fn reroute(&mut self) {
        let mut moved: Vec<(ContactKey, i32, Arc<str>)> = Vec::new();
        for k in &self.merged {
            if self.contacts.get(k).map(|c| c.place) != Some(Place::Home) {
                continue;
            }
            if let Some((to, root)) = self.remote_root(k) {
                if self.forwarded.get(k) != Some(&root.contact_id) {
                    moved.push((k.clone(), to, root.contact_id));
                }
            }
        }
        moved.sort();
        for (contact, to, key) in moved {
            self.forwarded.insert(contact.clone(), key.clone());
            self.outbox.push(Forward::History { contact, to, key });
        }
    }
}
