//! A contact's recent events packed into one allocation of exactly their encoded size.
//!
//! The read model keeps up to [`crate::read::CONTACT_RECENT`] events per contact for the
//! contact page. Kept as `Arc<Activity>`, each cost a shared header, a 168-byte struct and six
//! strings (the business and contact ids repeated in every one): about 360 bytes of heap per
//! event. Packed, an event is its texts and 40 bytes, and the ids come from the contact's key.
//! The page decodes them back into [`Activity`] values when it asks, a few microseconds for a
//! contact's events.
//!
//! Layout of one record, little-endian: `len: u32` (the whole record's bytes), `seq: u64`,
//! `occurred_at: i64`, `partition: i32`, then `event_id`, `kind`, `source` and `data`, each a
//! `u32` length and its UTF-8 bytes. Records are in arrival order.

use crate::read::Activity;

const FIXED: usize = 4 + 8 + 8 + 4;

/// One contact's events, oldest first.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Packed {
    bytes: Box<[u8]>,
    len: usize,
}

/// A record read in place: the fields of [`Activity`] but the contact's ids.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record<'a> {
    pub seq: u64,
    pub occurred_at: i64,
    pub partition: i32,
    pub event_id: &'a str,
    pub kind: &'a str,
    pub source: &'a str,
    pub data: &'a str,
}

impl Record<'_> {
    fn encoded_len(&self) -> usize {
        FIXED + 16 + self.event_id.len() + self.kind.len() + self.source.len() + self.data.len()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.encoded_len() as u32).to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.occurred_at.to_le_bytes());
        out.extend_from_slice(&self.partition.to_le_bytes());
        for text in [self.event_id, self.kind, self.source, self.data] {
            out.extend_from_slice(&(text.len() as u32).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
    }

    /// The event as the API reads it, with the contact's ids.
    pub fn to_activity(self, business_id: &str, contact_id: &str) -> Activity {
        Activity {
            seq: self.seq,
            partition: self.partition,
            event_id: self.event_id.to_owned(),
            kind: self.kind.to_owned(),
            business_id: business_id.to_owned(),
            contact_id: contact_id.to_owned(),
            occurred_at: self.occurred_at,
            source: self.source.to_owned(),
            data: self.data.to_owned(),
        }
    }

    /// The record of `a` (its ids are the contact's key, not stored).
    #[cfg(test)]
    pub fn of(a: &Activity) -> Record<'_> {
        Record {
            seq: a.seq,
            occurred_at: a.occurred_at,
            partition: a.partition,
            event_id: &a.event_id,
            kind: &a.kind,
            source: &a.source,
            data: &a.data,
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as usize
}

/// Decodes the record at the start of `b` (written by [`Record::encode`], so well formed).
fn decode(b: &[u8]) -> Record<'_> {
    let seq = u64::from_le_bytes(b[4..12].try_into().expect("8 bytes"));
    let occurred_at = i64::from_le_bytes(b[12..20].try_into().expect("8 bytes"));
    let partition = i32::from_le_bytes(b[20..24].try_into().expect("4 bytes"));
    let mut at = FIXED;
    let mut text = || {
        let n = u32_at(b, at);
        let s = std::str::from_utf8(&b[at + 4..at + 4 + n]).expect("written from a str");
        at += 4 + n;
        s
    };
    Record {
        seq,
        occurred_at,
        partition,
        event_id: text(),
        kind: text(),
        source: text(),
        data: text(),
    }
}

impl Packed {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> {
        let mut rest = &self.bytes[..];
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let n = u32_at(rest, 0);
            let r = decode(&rest[..n]);
            rest = &rest[n..];
            Some(r)
        })
    }

    /// Appends `new` (oldest first), then drops the oldest records beyond `bound`. The kept
    /// bytes are copied once, as they are: nothing already packed is decoded.
    pub fn extend(&mut self, new: &[Record<'_>], bound: usize) {
        if new.is_empty() {
            return;
        }
        let over = (self.len + new.len()).saturating_sub(bound);
        let (old_gone, new_gone) = (over.min(self.len), over.saturating_sub(self.len));
        let mut start = 0;
        for _ in 0..old_gone {
            start += u32_at(&self.bytes, start);
        }
        let new = &new[new_gone..];
        let size = self.bytes.len() - start + new.iter().map(Record::encoded_len).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&self.bytes[start..]);
        for r in new {
            r.encode(&mut out);
        }
        debug_assert_eq!(out.len(), size);
        self.bytes = out.into_boxed_slice();
        self.len = self.len - old_gone + new.len();
    }

    /// Keeps the records `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&Record<'_>) -> bool) {
        let kept: Vec<Record<'_>> = self.iter().filter(|r| keep(r)).collect();
        if kept.len() != self.len {
            *self = encoded(&kept);
        }
    }

    /// Replaces each record's data with `data(record)`.
    pub fn map_data(&mut self, data: impl Fn(&Record<'_>) -> String) {
        let texts: Vec<String> = self.iter().map(|r| data(&r)).collect();
        let records: Vec<Record<'_>> = self
            .iter()
            .zip(&texts)
            .map(|(r, d)| Record { data: d, ..r })
            .collect();
        *self = encoded(&records);
    }
}

/// `records` encoded into an allocation of their exact size, and their count. They may borrow
/// from the value this replaces: it is written aside first.
fn encoded(records: &[Record<'_>]) -> Packed {
    let size = records.iter().map(Record::encoded_len).sum();
    let mut out = Vec::with_capacity(size);
    for r in records {
        r.encode(&mut out);
    }
    debug_assert_eq!(out.len(), size);
    Packed {
        bytes: out.into_boxed_slice(),
        len: records.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, data: &str) -> Activity {
        Activity {
            seq,
            partition: (seq % 3) as i32,
            event_id: format!("e{seq}"),
            kind: "note.created".into(),
            business_id: "b".into(),
            contact_id: "c".into(),
            occurred_at: -(seq as i64) * 1_000,
            source: if seq.is_multiple_of(2) { "crm" } else { "" }.into(),
            data: data.into(),
        }
    }

    fn records(a: &[Activity]) -> Vec<Record<'_>> {
        a.iter().map(Record::of).collect()
    }

    fn activities(p: &Packed) -> Vec<Activity> {
        p.iter().map(|r| r.to_activity("b", "c")).collect()
    }

    #[test]
    fn records_read_back_as_written_and_the_oldest_go_first() {
        let all: Vec<Activity> = (1..=7)
            .map(|s| record(s, &format!("{{\"body\":\"é{s}\"}}")))
            .collect();
        let mut p = Packed::default();
        p.extend(&records(&all[..3]), 5);
        assert_eq!(activities(&p), all[..3]);
        p.extend(&records(&all[3..]), 5);
        assert_eq!(p.len, 5);
        assert_eq!(activities(&p), all[2..]);
        // More new records than the bound: only the newest of them stay.
        let mut q = Packed::default();
        q.extend(&records(&all[..1]), 3);
        q.extend(&records(&all[1..]), 3);
        assert_eq!(activities(&q), all[4..]);
        let exact: usize = all[2..].iter().map(|a| Record::of(a).encoded_len()).sum();
        assert_eq!(p.bytes.len(), exact, "no spare capacity is kept");
    }

    #[test]
    fn retain_and_map_data_rewrite_in_place() {
        let all: Vec<Activity> = (1..=4).map(|s| record(s, "{}")).collect();
        let mut p = Packed::default();
        p.extend(&records(&all), 10);
        p.retain(|r| r.partition != 1);
        let seqs: Vec<u64> = p.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [2, 3]);
        p.map_data(|r| format!("{{\"seq\":{}}}", r.seq));
        let data: Vec<String> = activities(&p).into_iter().map(|a| a.data).collect();
        assert_eq!(data, ["{\"seq\":2}", "{\"seq\":3}"]);
        p.retain(|_| false);
        assert!(p.is_empty() && p.iter().next().is_none());
    }
}
