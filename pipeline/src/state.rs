//! Windowed state of one partition: every contact's profile fields and the facts the metrics
//! need (bookings, invoices, tasks), folded from events in any order, each event counted once.
//!
//! Facts are kept by id with one timestamp per life-cycle step, so applying the same set of
//! events in any order gives the same state. Profile fields are last-writer-wins by `occurred_at`.

use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use siphasher::sip128::SipHasher13;

use chrono::DateTime;

use crate::event::{ContactCreated, ContactUpdated, Event, Payload};
use crate::signal::{
    Signal, ACTION_OPENED, ACTION_RESOLVED, PROMOTION_SUGGESTED, SEGMENT_UPDATED, STATUS_CHANGED,
};

use crate::clock::Ms;
use model::hash::{Map, Set};
use model::rules::InteractionRules;

mod facts;
mod rekey;
pub use facts::Facts;
pub use rekey::{Forward, Place};

/// One contact of one business.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactKey {
    pub business_id: Arc<str>,
    pub contact_id: Arc<str>,
}

impl ContactKey {
    pub fn new(business_id: &str, contact_id: &str) -> Self {
        Self {
            business_id: business_id.into(),
            contact_id: contact_id.into(),
        }
    }
}

/// Which create event a fact's details come from: its `occurred_at`, then its event id. Of two
/// creates for one booking, invoice or task id, the later `occurred_at` wins (tie: the greater
/// event id), whatever order they arrive in.
pub type Version = Option<(Ms, String)>;

/// Whether an event at `at` with id `event_id` is newer than `current`; if so it becomes current.
fn newer(current: &mut Version, at: Ms, event_id: &str) -> bool {
    if current
        .as_ref()
        .is_some_and(|(t, id)| (*t, id.as_str()) >= (at, event_id))
    {
        return false;
    }
    *current = Some((at, event_id.to_owned()));
    true
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Booking {
    pub version: Version,
    pub service_id: Option<String>,
    pub service_name: Option<String>,
    pub starts_at: Option<Ms>,
    pub price_cents: Option<i64>,
    pub created_at: Option<Ms>,
    pub confirmed_at: Option<Ms>,
    pub cancelled_at: Option<Ms>,
    pub completed_at: Option<Ms>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Invoice {
    pub version: Version,
    pub amount_cents: Option<i64>,
    pub currency: Option<String>,
    pub due_at: Option<Ms>,
    pub booking_id: Option<String>,
    pub service_id: Option<String>,
    pub sent_at: Option<Ms>,
    pub paid_at: Option<Ms>,
    pub overdue_at: Option<Ms>,
}

/// The earlier of two optional instants.
fn earliest(a: Option<Ms>, b: Option<Ms>) -> Option<Ms> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Booking {
    /// Folds in what `other` knows of the same booking: the newer create's details, the
    /// earliest instant of each step (the same result as applying both histories in any order).
    fn fold(&mut self, other: &Booking) {
        if other.version > self.version {
            self.version = other.version.clone();
            self.service_id = other.service_id.clone();
            self.service_name = other.service_name.clone();
            self.starts_at = other.starts_at;
            self.price_cents = other.price_cents;
        }
        self.created_at = earliest(self.created_at, other.created_at);
        self.confirmed_at = earliest(self.confirmed_at, other.confirmed_at);
        self.cancelled_at = earliest(self.cancelled_at, other.cancelled_at);
        self.completed_at = earliest(self.completed_at, other.completed_at);
    }
}

impl Invoice {
    /// As [`Booking::fold`], for an invoice.
    fn fold(&mut self, other: &Invoice) {
        if other.version > self.version {
            self.version = other.version.clone();
            self.amount_cents = other.amount_cents;
            self.currency = other.currency.clone();
            self.due_at = other.due_at;
            self.booking_id = other.booking_id.clone();
            self.service_id = other.service_id.clone();
        }
        self.sent_at = earliest(self.sent_at, other.sent_at);
        self.paid_at = earliest(self.paid_at, other.paid_at);
        self.overdue_at = earliest(self.overdue_at, other.overdue_at);
    }
}

impl Task {
    /// As [`Booking::fold`], for a task.
    fn fold(&mut self, other: &Task) {
        if other.version > self.version {
            self.version = other.version.clone();
            self.title = other.title.clone();
            self.due_at = other.due_at;
        }
        self.created_at = earliest(self.created_at, other.created_at);
        self.completed_at = earliest(self.completed_at, other.completed_at);
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Task {
    pub version: Version,
    pub title: Option<String>,
    pub due_at: Option<Ms>,
    pub created_at: Option<Ms>,
    pub completed_at: Option<Ms>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub note_id: String,
    pub body: String,
    pub at: Ms,
    /// The contact the note's event named (a merged-away contact's notes live with its
    /// survivor, and an erase of it blanks them there).
    pub contact_id: Arc<str>,
}

/// Profile fields, each with the event time it was last set at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Field<T> {
    pub value: T,
    pub at: Ms,
    set: bool,
}

impl<T> Field<T> {
    /// Sets the value unless a later write is already in place (ties: the later arrival wins).
    fn set(&mut self, value: T, at: Ms) {
        if !self.set || at >= self.at {
            self.value = value;
            self.at = at;
            self.set = true;
        }
    }
}

/// Most recent notes kept per contact.
pub const NOTES_KEPT: usize = 20;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactState {
    pub name: Field<Option<String>>,
    pub email: Field<Option<String>>,
    pub phone: Field<Option<String>>,
    pub status: Field<String>,
    pub tags: Field<Vec<String>>,
    pub photo_url: Field<Option<String>>,
    pub created_at: Option<Ms>,
    pub deleted_at: Option<Ms>,
    pub erased_at: Option<Ms>,
    /// The contact this one was merged into; it is then excluded from results.
    pub merged_into: Option<Arc<str>>,
    /// Ids of the contacts merged into this one (sorted): where their history went.
    pub aliases: Vec<String>,
    /// Which partition reads the contact's own events: whether this one evaluates and writes it.
    pub place: Place,
    /// The latest of `interactions`, kept after they are pruned.
    pub last_interaction_at: Option<Ms>,
    /// Instants of the contact's interactions (the events [`InteractionRules`] counts), sorted;
    /// pruned to the interaction window on evaluation.
    pub interactions: Vec<Ms>,
    /// How many distinct events were folded into this contact (a stable basis for signal ids).
    pub events_applied: u64,
    /// When the LEAD → CLIENT promotion was suggested (signalled once, never again).
    pub promotion_suggested_at: Option<Ms>,
    pub bookings: Facts<Booking>,
    pub invoices: Facts<Invoice>,
    pub tasks: Facts<Task>,
    pub notes: Vec<Note>,
    /// The instant at which a metric of this contact next changes with no new event.
    pub next_timer: Option<Ms>,
    /// Fingerprint of the last profile written, to write only real changes.
    pub last_written: Option<u64>,
    /// Lead score of the last profile written.
    pub last_score: Option<i64>,
    /// Segments of the last profile written (sorted), to signal entries and exits.
    pub last_segments: Vec<String>,
    /// Next Action items (kind, ref id) of the last profile written, to signal opened/resolved.
    pub last_actions: Vec<(String, String)>,
    /// Status of the last profile written, to signal a change of the status shown.
    pub last_status: Option<String>,
    /// Whether the last profile written was visible, to withdraw a promotion suggestion once
    /// the contact is merged away or deleted.
    pub last_visible: bool,
}

/// The status of a contact that no contact event has given one.
pub const UNKNOWN_STATUS: &str = "UNKNOWN";
/// The status a promotion gives.
pub const PROMOTED_STATUS: &str = "CLIENT";
/// Who decided the status shown: a contact event from the CRM, or KeyFlow itself.
pub const FROM_CRM: &str = "crm";
pub const FROM_KEYFLOW: &str = "keyflow";

impl ContactState {
    /// Status: [`UNKNOWN_STATUS`] until a contact event sets one (`contact.created` sets LEAD
    /// when it names none). A contact known only from its bookings, invoices or tasks (its
    /// creation left the topic's retention, or was never sent) is not a lead: lead-only
    /// segments, lead-stale items and the lead spotlight leave it out until a status arrives.
    pub fn status(&self) -> &str {
        if self.status.value.is_empty() {
            UNKNOWN_STATUS
        } else {
            &self.status.value
        }
    }

    /// The status shown at `now`, and who decided it. With `promote_after` (the `auto_promote`
    /// rule's number of completed bookings), a LEAD whose `promote_after`-th booking completed by
    /// `now` is shown as [`PROMOTED_STATUS`] by KeyFlow, unless the CRM set its status after that
    /// completion (the later status wins). The same threshold makes `activity.sql`'s
    /// `promotion_eligible`, which a promoted contact (no longer a LEAD) no longer is.
    pub fn shown_status(&self, promote_after: Option<i64>, now: Ms) -> (&str, &'static str) {
        if self.status.value.is_empty() {
            return (UNKNOWN_STATUS, FROM_KEYFLOW);
        }
        let promoted_at = promote_after
            .filter(|_| self.status.value == "LEAD" && self.created_at.is_some())
            .and_then(|n| self.nth_completion(n, now));
        match promoted_at {
            Some(at) if self.status.at <= at => (PROMOTED_STATUS, FROM_KEYFLOW),
            _ => (&self.status.value, FROM_CRM),
        }
    }

    /// When the `n`-th (from 1) of the bookings completed by `now` completed.
    pub fn nth_completion(&self, n: i64, now: Ms) -> Option<Ms> {
        let mut done: Vec<Ms> = self
            .bookings
            .values()
            .filter_map(|b| b.completed_at)
            .filter(|&t| t <= now)
            .collect();
        done.sort_unstable();
        usize::try_from(n.max(1) - 1)
            .ok()
            .and_then(|i| done.get(i).copied())
    }

    /// Whether the contact shows in results (not deleted, not merged away).
    pub fn visible(&self) -> bool {
        self.deleted_at.is_none() && self.merged_into.is_none()
    }

    /// Records an interaction at `at`.
    fn touch(&mut self, at: Ms) {
        self.last_interaction_at = Some(self.last_interaction_at.map_or(at, |l| l.max(at)));
        let i = self.interactions.partition_point(|&x| x <= at);
        self.interactions.insert(i, at);
    }

    /// Drops interactions at or before `before` (outside every window that reads them).
    pub fn prune_interactions(&mut self, before: Ms) {
        let n = self.interactions.partition_point(|&x| x <= before);
        self.interactions.drain(..n);
    }

    /// Takes a stored signal as written into `c`'s last-written state, the inverse of `signals::diff`:
    /// returns whether that changed anything. A store whose write is not atomic (ClickHouse) can
    /// hold, and the processor has then republished, a write's signals without its profiles; the
    /// rebuilt state must start from what was signalled, or a replay that undoes the change would
    /// compare against the older profile, find nothing to say, and leave the change announced
    /// forever (see `Recovered::signalled`).
    pub fn take_as_written(&mut self, s: &Signal) -> bool {
        let c = self;
        let detail = |k: &str| s.detail[k].as_str().unwrap_or_default().to_owned();
        match (s.kind, s.change) {
            (SEGMENT_UPDATED, "entered") => {
                if c.last_segments.contains(&s.subject) {
                    false
                } else {
                    c.last_segments.push(s.subject.clone());
                    true
                }
            }
            (SEGMENT_UPDATED, "exited") => {
                let before = c.last_segments.len();
                c.last_segments.retain(|x| *x != s.subject);
                c.last_segments.len() != before
            }
            (ACTION_OPENED, _) => {
                let item = (detail("kind"), detail("ref_id"));
                if c.last_actions.contains(&item) {
                    false
                } else {
                    c.last_actions.push(item);
                    true
                }
            }
            (ACTION_RESOLVED, _) => {
                let item = (detail("kind"), detail("ref_id"));
                let before = c.last_actions.len();
                c.last_actions.retain(|x| *x != item);
                c.last_actions.len() != before
            }
            (STATUS_CHANGED, _) => {
                let to = detail("toStatus");
                if c.last_status.as_deref() == Some(to.as_str()) {
                    false
                } else {
                    c.last_status = Some(to);
                    true
                }
            }
            (PROMOTION_SUGGESTED, "withdrawn") => std::mem::take(&mut c.last_visible),
            (PROMOTION_SUGGESTED, _) if c.promotion_suggested_at.is_none() => {
                let at = DateTime::parse_from_rfc3339(&detail("eligible_at"))
                    .map_or(s.at, |t| t.timestamp_millis());
                c.promotion_suggested_at = Some(at);
                true
            }
            _ => false,
        }
    }

    /// Remembers what was last written for this contact.
    pub fn remember(&mut self, p: &crate::profile::ContactProfile) {
        self.last_written = Some(p.fingerprint());
        self.last_score = Some(p.lead_score);
        self.last_segments = p.segment_names().map(str::to_owned).collect();
        self.last_status = Some(p.status.clone());
        self.last_visible = p.visible();
        self.last_actions = p
            .next_actions
            .iter()
            .map(|a| (a.kind.clone(), a.ref_id.clone()))
            .collect();
        if self.promotion_suggested_at.is_none() {
            self.promotion_suggested_at = p.promotion_suggested_at;
        }
    }

    fn erase_personal_data(&mut self) {
        let at = self.erased_at.unwrap_or_default();
        for f in [
            &mut self.name,
            &mut self.email,
            &mut self.phone,
            &mut self.photo_url,
        ] {
            f.value = None;
            f.at = f.at.max(at);
        }
        for n in &mut self.notes {
            n.body.clear();
        }
    }

    fn apply_created(&mut self, c: &ContactCreated, at: Ms) {
        self.created_at = Some(self.created_at.map_or(at, |x| x.min(at)));
        self.name.set(Some(c.name.clone()), at);
        if c.email.is_some() {
            self.email.set(c.email.clone(), at);
        }
        if c.phone.is_some() {
            self.phone.set(c.phone.clone(), at);
        }
        if let Some(tags) = &c.tags {
            self.tags.set(tags.clone(), at);
        }
        self.status
            .set(c.status.clone().unwrap_or_else(|| "LEAD".into()), at);
        if c.photo_url.is_some() {
            self.photo_url.set(c.photo_url.clone(), at);
        }
    }

    fn apply_updated(&mut self, u: &ContactUpdated, at: Ms) {
        let clearable = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        if let Some(n) = &u.name {
            self.name.set(Some(n.clone()), at);
        }
        if u.email.is_some() {
            self.email.set(clearable(&u.email), at);
        }
        if u.phone.is_some() {
            self.phone.set(clearable(&u.phone), at);
        }
        if let Some(t) = &u.tags {
            self.tags.set(t.clone(), at);
        }
        if let Some(s) = &u.status {
            self.status.set(s.clone(), at);
        }
        if u.photo_url.is_some() {
            self.photo_url.set(clearable(&u.photo_url), at);
        }
    }

    /// Folds a merged-away contact's facts into this one: bookings, invoices and tasks (fact by
    /// fact, so the result does not depend on which side saw an event first), interactions,
    /// notes and aliases. Its record (name, email, phone, status) stays its own, and its tags
    /// are read through the alias list at evaluation ([`PartitionState::tags_of`]), so a merge
    /// gives the same survivor whether the merged contact's events came before or after it.
    fn absorb(&mut self, other: &ContactState) {
        for (id, b) in other.bookings.iter() {
            self.bookings.entry(id).fold(b);
        }
        for (id, i) in other.invoices.iter() {
            self.invoices.entry(id).fold(i);
        }
        for (id, t) in other.tasks.iter() {
            self.tasks.entry(id).fold(t);
        }
        if let Some(at) = other.last_interaction_at {
            self.last_interaction_at = Some(self.last_interaction_at.map_or(at, |l| l.max(at)));
        }
        self.interactions.extend(other.interactions.iter().copied());
        self.aliases.extend(other.aliases.iter().cloned());
        self.aliases.sort();
        self.aliases.dedup();
        self.interactions.sort_unstable();
        self.events_applied += other.events_applied;
        for n in &other.notes {
            if !self.notes.iter().any(|x| x.note_id == n.note_id) {
                self.notes.push(n.clone());
            }
        }
        self.notes
            .sort_by(|a, b| (a.at, &a.note_id).cmp(&(b.at, &b.note_id)));
        let excess = self.notes.len().saturating_sub(NOTES_KEPT);
        self.notes.drain(..excess);
    }
}

/// Events about the contact record itself rather than a fact of its history.
fn identity(p: &Payload) -> bool {
    matches!(
        p,
        Payload::ContactCreated(_)
            | Payload::ContactUpdated(_)
            | Payload::ContactDeleted(_)
            | Payload::ContactErased(_)
    )
}

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// New event: state changed (or at least was touched) and the contact is dirty.
    New,
    /// Its `event_id` was seen before: nothing changed.
    Duplicate,
}

/// An event id as the dedupe set keeps it: its 128-bit SipHash-1-3. That is 16 bytes in place,
/// where the id itself took a 16-byte box and a 48-byte allocation for a 36-character UUID; the
/// set holds one per event ever applied, so it was the largest per-event cost of the state. Two
/// ids share a digest with probability 2^-128 per pair: even 10^12 events leave a chance of
/// about 10^-15 that one event is mistaken for a duplicate.
fn id_digest(event_id: &str) -> u128 {
    // Fixed keys: the digests never leave the process, and a fixed key keeps runs reproducible.
    const KEYS: (u64, u64) = (0x6b65_7966_6c6f_7721, 0x7365_656e_5f69_6473);
    SipHasher13::new_with_keys(KEYS.0, KEYS.1)
        .hash(event_id.as_bytes())
        .into()
}

/// Hashes a digest in the set by its low 64 bits: it is already a keyed hash, so hashing it
/// again (the default SipHash) would only cost time.
#[derive(Debug, Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = v as u64;
    }
}

/// All contacts of one partition, the event ids already counted, and the time-driven timers.
#[derive(Debug, Default)]
pub struct PartitionState {
    /// Boxed: a table slot is then a key and a pointer, not a whole state (~750 bytes), and
    /// the table's empty slots (up to half of them after it doubles) cost little.
    pub contacts: Map<ContactKey, Box<ContactState>>,
    /// Digests ([`id_digest`]) of the event ids already counted.
    seen: HashSet<u128, BuildHasherDefault<DigestHasher>>,
    timers: BTreeSet<(Ms, ContactKey)>,
    dirty: Set<ContactKey>,
    /// Which events count as interactions.
    interactions: Arc<InteractionRules>,
    /// Every contact merged away (the candidates for a forward when a merge re-roots them).
    merged: Set<ContactKey>,
    /// The survivor each merged-away contact's history was last forwarded to.
    forwarded: Map<ContactKey, Arc<str>>,
    /// What applying events asked to send to other partitions ([`PartitionState::take_forwards`]).
    outbox: Vec<Forward>,
}

impl PartitionState {
    /// An empty partition whose contacts' interactions are the events `interactions` counts.
    pub fn new(interactions: Arc<InteractionRules>) -> Self {
        Self {
            interactions,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }

    /// Whether this event id has already been counted.
    pub fn seen(&self, event_id: &str) -> bool {
        self.seen.contains(&id_digest(event_id))
    }

    /// The tags shown for `key`: its own and those of every contact merged into it (its tags
    /// as they are now, whenever its tag changes arrived).
    pub fn tags_of(&self, key: &ContactKey) -> Vec<String> {
        let Some(c) = self.contacts.get(key) else {
            return Vec::new();
        };
        if c.aliases.is_empty() {
            // Most contacts: their own tags, normalised (sorted, unique) at ingest.
            return c.tags.value.clone();
        }
        let mut tags: BTreeSet<String> = c.tags.value.iter().cloned().collect();
        for alias in &c.aliases {
            let k = ContactKey {
                business_id: key.business_id.clone(),
                contact_id: alias.as_str().into(),
            };
            if let Some(m) = self.contacts.get(&k) {
                tags.extend(m.tags.value.iter().cloned());
            }
        }
        tags.into_iter().collect()
    }

    /// Follows `merged_into` links to the surviving contact (a cycle stops where it closes).
    fn resolve(&self, key: &ContactKey) -> ContactKey {
        let mut current = key.clone();
        let mut hops = 0;
        while let Some(next) = self
            .contacts
            .get(&current)
            .and_then(|c| c.merged_into.clone())
        {
            hops += 1;
            if hops > 16 || *next == *key.contact_id {
                break;
            }
            current = ContactKey {
                business_id: current.business_id.clone(),
                contact_id: next,
            };
        }
        current
    }

    /// Applies one accepted, normalised event read from an input topic: the contact's own
    /// partition.
    pub fn apply(&mut self, ev: &Event) -> Applied {
        self.apply_from(ev, None)
    }

    /// Applies `ev` as read from an input topic (`origin` None) or forwarded by partition
    /// `origin` over the re-key topic (see [`rekey`]).
    fn apply_from(&mut self, ev: &Event, origin: Option<i32>) -> Applied {
        if !self.seen.insert(id_digest(&ev.event_id)) {
            return Applied::Duplicate;
        }
        let at = ev.occurred_at.timestamp_millis();
        let own = ContactKey::new(&ev.business_id, &ev.contact_id);
        self.locate(&own, origin);
        if let Payload::ContactMerged(m) = &ev.payload {
            self.merge(&own, &m.merged_contact_id);
            if origin.is_none() {
                self.outbox.push(Forward::Broadcast(ev.clone()));
            }
            self.reroute();
            return Applied::New;
        }
        if origin.is_none() {
            self.forward_if_remote(ev, &own);
        }
        let survivor = self.resolve(&own);
        // A merged-away contact keeps its own identity and lifecycle: a late create, update,
        // delete or erase of it acts on it alone, never on the survivor its facts went to.
        let key = if identity(&ev.payload) {
            own.clone()
        } else {
            survivor.clone()
        };
        if matches!(ev.payload, Payload::ContactErased(_)) && survivor != own {
            self.forget(&survivor, &own);
        }
        // A note's body is personal data of the contact it names, erased or not.
        let erased = self
            .contacts
            .get(&own)
            .is_some_and(|m| m.erased_at.is_some())
            || matches!(ev.payload, Payload::ContactErased(_));
        // Interactions always count for the survivor: the merged contact's history is its.
        if self.interactions.counts(ev.payload.type_name(), &ev.source) {
            self.contacts.entry(survivor.clone()).or_default().touch(at);
            self.dirty.insert(survivor.clone());
        }
        self.dirty.insert(key.clone());
        let c = self.contacts.entry(key).or_default();
        c.events_applied += 1;
        match &ev.payload {
            Payload::ContactCreated(cc) => {
                c.apply_created(cc, at);
                if c.erased_at.is_some() {
                    c.erase_personal_data();
                }
            }
            Payload::ContactUpdated(u) => {
                c.apply_updated(u, at);
                if c.erased_at.is_some() {
                    c.erase_personal_data();
                }
            }
            Payload::ContactMerged(_) => unreachable!("handled above"),
            Payload::ContactDeleted(_) => c.deleted_at = earliest(c.deleted_at, Some(at)),
            Payload::ContactErased(_) => {
                c.erased_at = earliest(c.erased_at, Some(at));
                c.erase_personal_data();
            }
            Payload::NoteCreated(n) => {
                if !c.notes.iter().any(|x| x.note_id == n.note_id) {
                    let body = if erased || c.erased_at.is_some() {
                        String::new()
                    } else {
                        n.body.clone()
                    };
                    c.notes.push(Note {
                        note_id: n.note_id.clone(),
                        body,
                        at,
                        contact_id: own.contact_id.clone(),
                    });
                    c.notes.sort_by_key(|n| n.at);
                    let excess = c.notes.len().saturating_sub(NOTES_KEPT);
                    c.notes.drain(..excess);
                }
            }
            Payload::TaskCreated(t) => {
                let task = c.tasks.entry(&t.task_id);
                if newer(&mut task.version, at, &ev.event_id) {
                    task.title = Some(t.title.clone());
                    task.due_at = Some(t.due_at.timestamp_millis());
                }
                task.created_at = earliest(task.created_at, Some(at));
            }
            Payload::TaskCompleted(t) => {
                let task = c.tasks.entry(&t.task_id);
                task.completed_at = earliest(task.completed_at, Some(at));
            }
            Payload::BookingCreated(b) => {
                let booking = c.bookings.entry(&b.booking_id);
                if newer(&mut booking.version, at, &ev.event_id) {
                    booking.service_id = Some(b.service_id.clone());
                    booking.service_name = Some(b.service_name.clone());
                    booking.starts_at = Some(b.starts_at.timestamp_millis());
                    booking.price_cents = b.price_cents;
                }
                booking.created_at = earliest(booking.created_at, Some(at));
            }
            Payload::BookingConfirmed(b) => {
                let booking = c.bookings.entry(&b.booking_id);
                booking.confirmed_at = earliest(booking.confirmed_at, Some(at));
            }
            Payload::BookingCancelled(b) => {
                let booking = c.bookings.entry(&b.booking_id);
                booking.cancelled_at = earliest(booking.cancelled_at, Some(at));
            }
            Payload::BookingCompleted(b) => {
                let booking = c.bookings.entry(&b.booking_id);
                booking.completed_at = earliest(booking.completed_at, Some(at));
            }
            Payload::InvoiceSent(i) => {
                let inv = c.invoices.entry(&i.invoice_id);
                if newer(&mut inv.version, at, &ev.event_id) {
                    inv.amount_cents = Some(i.amount_cents);
                    inv.currency = Some(i.currency.clone());
                    inv.due_at = Some(i.due_at.timestamp_millis());
                    inv.booking_id = i.booking_id.clone();
                    inv.service_id = i.service_id.clone();
                }
                inv.sent_at = earliest(inv.sent_at, Some(at));
            }
            Payload::InvoicePaid(i) => {
                let inv = c.invoices.entry(&i.invoice_id);
                inv.paid_at = earliest(inv.paid_at, Some(at));
            }
            Payload::InvoiceOverdue(i) => {
                let inv = c.invoices.entry(&i.invoice_id);
                inv.overdue_at = earliest(inv.overdue_at, Some(at));
            }
        }
        Applied::New
    }

    /// Takes back what a merge copied of `merged`'s personal data into `survivor`, before
    /// `merged` is erased: its id in the alias list and the bodies of its notes.
    fn forget(&mut self, survivor: &ContactKey, merged: &ContactKey) {
        let Some(s) = self.contacts.get_mut(survivor) else {
            return;
        };
        s.aliases.retain(|a| **a != *merged.contact_id);
        for n in s
            .notes
            .iter_mut()
            .filter(|n| n.contact_id == merged.contact_id)
        {
            n.body.clear();
        }
        self.dirty.insert(survivor.clone());
    }

    /// Why this partition refuses `ev` read from an input topic, if it does: a merge that
    /// would close a cycle (its survivor already ends, through merges this partition has
    /// seen, at the contact it merges). The processor dead-letters it instead of applying it.
    pub fn refusal(&self, ev: &Event) -> Option<crate::decode::Rejection> {
        let Payload::ContactMerged(m) = &ev.payload else {
            return None;
        };
        let survivor = ContactKey::new(&ev.business_id, &ev.contact_id);
        let merged = ContactKey::new(&ev.business_id, &m.merged_contact_id);
        (self.resolve(&survivor) == merged).then(|| crate::decode::Rejection::MergeCycle {
            survivor: ev.contact_id.to_string(),
            merged: m.merged_contact_id.clone(),
        })
    }

    /// `merged` is folded into `survivor`. A merge that would close a cycle is ignored: one
    /// read from an input topic was refused before (see [`PartitionState::refusal`]); one
    /// forwarded from another partition can still close one there (see docs/RELIABILITY.md).
    fn merge(&mut self, survivor: &ContactKey, merged: &str) {
        let merged_key = ContactKey::new(&survivor.business_id, merged);
        let target = self.resolve(survivor);
        if target == merged_key {
            tracing::warn!(survivor = %survivor.contact_id, merged, "merge would close a cycle; ignored");
            return;
        }
        self.merged.insert(merged_key.clone());
        // The merged contact's facts move to the survivor (its later ones resolve there): it
        // keeps only its own record, whichever of the merge and its events came first.
        let merged_state = {
            let m = self.contacts.entry(merged_key.clone()).or_default();
            m.merged_into = Some(target.contact_id.clone());
            let moved = m.clone();
            m.bookings.clear();
            m.invoices.clear();
            m.tasks.clear();
            m.notes.clear();
            m.aliases.clear();
            m.interactions.clear();
            m.last_interaction_at = None;
            moved
        };
        // Contacts merged into `merged` earlier now end at `target` too: every merged contact
        // names the end of its chain, and its route says where its history is.
        let earlier: Vec<ContactKey> = self
            .merged
            .iter()
            .filter(|k| {
                self.contacts.get(*k).and_then(|c| c.merged_into.as_deref()) == Some(merged)
            })
            .cloned()
            .collect();
        for k in earlier {
            if let Some(c) = self.contacts.get_mut(&k) {
                c.merged_into = Some(target.contact_id.clone());
            }
            self.dirty.insert(k);
        }
        let s = self.contacts.entry(target.clone()).or_default();
        s.absorb(&merged_state);
        if merged_state.erased_at.is_none() {
            if let Err(i) = s.aliases.binary_search_by(|a| (**a).cmp(merged)) {
                s.aliases.insert(i, merged.to_owned());
            }
        }
        s.events_applied += 1;
        self.dirty.insert(target);
        self.dirty.insert(merged_key);
    }

    /// Contacts changed since the last call, plus those whose timers fired by `now`.
    pub fn take_due(&mut self, now: Ms) -> Vec<ContactKey> {
        while let Some(first) = self.timers.first() {
            if first.0 > now {
                break;
            }
            let (at, key) = self.timers.pop_first().expect("first exists");
            if let Some(c) = self.contacts.get_mut(&key) {
                if c.next_timer == Some(at) {
                    c.next_timer = None;
                }
            }
            self.dirty.insert(key);
        }
        let contacts = &self.contacts;
        let mut keys: Vec<ContactKey> = self
            .dirty
            .drain()
            .filter(|k| contacts.get(k).is_none_or(|c| rekey::owns(c)))
            .collect();
        keys.sort();
        keys
    }

    /// A partition's state rebuilt from what its sink recovered: every stored event folded
    /// in, each contact's last stored profile remembered (so unchanged results are not
    /// re-emitted), and every contact due for evaluation.
    pub fn recovered(
        recovered: &crate::sink::Recovered,
        interactions: Arc<InteractionRules>,
    ) -> Self {
        let mut state = Self::new(interactions);
        for ev in &recovered.events {
            state.apply(ev);
        }
        for profile in &recovered.profiles {
            let key = ContactKey::new(&profile.business_id, &profile.contact_id);
            if let Some(c) = state.contacts.get_mut(&key) {
                c.remember(profile);
            }
        }
        for s in &recovered.signalled {
            let key = ContactKey::new(&s.business_id, &s.contact_id);
            if let Some(c) = state.contacts.get_mut(&key) {
                if c.take_as_written(s) {
                    // What was signalled is not what was stored: compare the next evaluation
                    // against the signals, and write its profile whatever it holds.
                    c.last_written = None;
                }
            }
        }
        state.mark_all_dirty();
        state
    }

    /// Marks every contact for re-evaluation (after a rebuild, or a rules change).
    pub fn mark_all_dirty(&mut self) {
        self.dirty.extend(self.contacts.keys().cloned());
    }

    /// Schedules re-evaluation of `key` at `at` (keeps only the earliest pending timer).
    pub fn schedule(&mut self, key: &ContactKey, at: Option<Ms>) {
        let Some(c) = self.contacts.get_mut(key) else {
            return;
        };
        if c.next_timer == at {
            return;
        }
        if let Some(old) = c.next_timer.take() {
            self.timers.remove(&(old, key.clone()));
        }
        if let Some(at) = at {
            c.next_timer = Some(at);
            self.timers.insert((at, key.clone()));
        }
    }

    /// Earliest pending timer, if any.
    pub fn next_timer(&self) -> Option<Ms> {
        self.timers.first().map(|t| t.0)
    }
}
