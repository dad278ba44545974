//! Row types of the ClickHouse tables (RowBinary, field order = column list of the insert).

use clickhouse::Row;
use model::profile::{ContactProfile, Factor, Membership, NextAction, ServiceStat};
use model::sections::{Activity, Affinity, Balance, Gaps, Reliability, Section};
use model::signal::{Signal, SEGMENT_UPDATED};
use model::sink::AcceptedEvent;
use serde::{Deserialize, Serialize};

pub use crate::rows::HistoryRow;
use crate::rows::{split, StoredEvent};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct EventRow {
    pub business_id: String,
    pub contact_id: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at_ms: i64,
    pub source: String,
    pub data: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub ingest_seq: u64,
}

impl EventRow {
    pub fn new(a: &AcceptedEvent, ingest_seq: u64) -> Self {
        let e = &a.event;
        Self {
            business_id: e.business_id.clone(),
            contact_id: e.contact_id.clone(),
            event_id: e.event_id.clone(),
            kind: e.payload.type_name().to_owned(),
            occurred_at_ms: e.occurred_at.timestamp_millis(),
            source: e.source.clone(),
            data: e.payload.data_json(),
            topic: a.topic.clone(),
            partition: a.partition,
            offset: a.offset,
            ingest_seq,
        }
    }

    pub fn to_stored(&self) -> StoredEvent {
        StoredEvent {
            partition: self.partition,
            topic: self.topic.clone(),
            offset: self.offset,
            event_id: self.event_id.clone(),
            kind: self.kind.clone(),
            business_id: self.business_id.clone(),
            contact_id: self.contact_id.clone(),
            occurred_at: self.occurred_at_ms,
            source: self.source.clone(),
            data: self.data.clone(),
        }
    }
}

/// A row of `contact_profiles`: the profile's own fields ([`ProfileBase`]), then its metric
/// sections as they are (RowBinary writes a nested struct as its fields in order, and
/// [`Section::COLUMNS`] names their columns), so a section's new field needs only its migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRow {
    pub base: ProfileBase,
    pub balance: Balance,
    pub reliability: Reliability,
    pub affinity: Affinity,
    pub gaps: Gaps,
    pub activity: Activity,
}

/// The columns of [`ProfileRow`], in its serialisation order.
const PROFILE_COLUMN_COUNT: usize = ProfileBase::COLUMN_NAMES.len()
    + Balance::COLUMNS.len()
    + Reliability::COLUMNS.len()
    + Affinity::COLUMNS.len()
    + Gaps::COLUMNS.len()
    + Activity::COLUMNS.len();
const PROFILE_COLUMNS: [&str; PROFILE_COLUMN_COUNT] = concat(&[
    ProfileBase::COLUMN_NAMES,
    Balance::COLUMNS,
    Reliability::COLUMNS,
    Affinity::COLUMNS,
    Gaps::COLUMNS,
    Activity::COLUMNS,
]);

/// `parts` one after another, at compile time.
const fn concat<const N: usize>(parts: &[&[&'static str]]) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut i, mut k) = (0, 0);
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[k] = parts[i][j];
            (j, k) = (j + 1, k + 1);
        }
        i += 1;
    }
    assert!(k == N, "the count is the sum of the parts");
    out
}

// What `#[derive(Row)]` writes, with the column names of the base and the sections joined (the
// derive names a nested struct as one column).
impl Row for ProfileRow {
    const NAME: &'static str = "ProfileRow";
    const COLUMN_NAMES: &'static [&'static str] = &PROFILE_COLUMNS;
    const COLUMN_COUNT: usize = PROFILE_COLUMN_COUNT;
    const KIND: clickhouse::_priv::RowKind = clickhouse::_priv::RowKind::Struct;
    type Value<'a> = Self;
}

/// The profile's fields that are not metric sections: identity, status, the score with its
/// factors and the list sections, as ClickHouse stores them (instants in `*_ms`, lists as
/// parallel arrays).
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct ProfileBase {
    pub business_id: String,
    pub contact_id: String,
    pub partition: i32,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub status: String,
    pub tags: Vec<String>,
    pub photo_url: Option<String>,
    pub created_at_ms: Option<i64>,
    pub deleted: u8,
    pub erased: u8,
    pub merged_into: Option<String>,
    pub lead_score: i64,
    pub factor_names: Vec<String>,
    pub factor_counts: Vec<i64>,
    pub factor_points: Vec<i64>,
    pub rule_version: String,
    pub last_interaction_at_ms: Option<i64>,
    pub evaluated_at_ms: i64,
    pub version: u64,
    pub promotion_suggested_at_ms: Option<i64>,
    pub segment_names: Vec<String>,
    pub segment_reasons: Vec<String>,
    pub action_kinds: Vec<String>,
    pub action_refs: Vec<String>,
    pub action_since_ms: Vec<i64>,
    pub action_age_days: Vec<i64>,
    pub action_priorities: Vec<f64>,
    pub action_messages: Vec<String>,
    pub service_ids: Vec<String>,
    /// Empty string for a service without a name.
    pub service_names: Vec<String>,
    pub service_bookings: Vec<i64>,
    pub service_completed: Vec<i64>,
    pub service_revenue_cents: Vec<i64>,
    pub aliases: Vec<String>,
    pub status_source: String,
}

impl From<&ContactProfile> for ProfileRow {
    fn from(p: &ContactProfile) -> Self {
        let (factor_names, factor_counts, factor_points) = split(&p.factors);
        let base = ProfileBase {
            business_id: p.business_id.clone(),
            contact_id: p.contact_id.clone(),
            partition: p.partition,
            name: p.name.clone(),
            email: p.email.clone(),
            phone: p.phone.clone(),
            status: p.status.clone(),
            tags: p.tags.clone(),
            photo_url: p.photo_url.clone(),
            created_at_ms: p.created_at,
            deleted: p.deleted.into(),
            erased: p.erased.into(),
            merged_into: p.merged_into.clone(),
            lead_score: p.lead_score,
            factor_names,
            factor_counts,
            factor_points,
            rule_version: p.rule_version.clone(),
            last_interaction_at_ms: p.last_interaction_at,
            evaluated_at_ms: p.evaluated_at,
            version: p.evaluated_at.max(0) as u64,
            promotion_suggested_at_ms: p.promotion_suggested_at,
            segment_names: p.segments.iter().map(|m| m.segment.clone()).collect(),
            segment_reasons: p.segments.iter().map(|m| m.reason.clone()).collect(),
            action_kinds: p.next_actions.iter().map(|a| a.kind.clone()).collect(),
            action_refs: p.next_actions.iter().map(|a| a.ref_id.clone()).collect(),
            action_since_ms: p.next_actions.iter().map(|a| a.since).collect(),
            action_age_days: p.next_actions.iter().map(|a| a.age_days).collect(),
            action_priorities: p.next_actions.iter().map(|a| a.priority).collect(),
            action_messages: p.next_actions.iter().map(|a| a.message.clone()).collect(),
            service_ids: p.services.iter().map(|x| x.service_id.clone()).collect(),
            service_names: p
                .services
                .iter()
                .map(|x| x.service_name.clone().unwrap_or_default())
                .collect(),
            service_bookings: p.services.iter().map(|x| x.bookings).collect(),
            service_completed: p.services.iter().map(|x| x.completed).collect(),
            service_revenue_cents: p.services.iter().map(|x| x.revenue_cents).collect(),
            aliases: p.aliases.clone(),
            status_source: p.status_source.clone(),
        };
        Self {
            base,
            balance: p.balance.clone(),
            reliability: p.reliability.clone(),
            affinity: p.affinity.clone(),
            gaps: p.gaps.clone(),
            activity: p.activity.clone(),
        }
    }
}

impl From<ProfileRow> for ContactProfile {
    fn from(row: ProfileRow) -> Self {
        let r = row.base;
        let factors = r
            .factor_names
            .into_iter()
            .zip(r.factor_counts)
            .zip(r.factor_points)
            .map(|((factor, count), points)| Factor {
                factor,
                count,
                points,
            })
            .collect();
        Self {
            business_id: r.business_id,
            contact_id: r.contact_id,
            partition: r.partition,
            name: r.name,
            email: r.email,
            phone: r.phone,
            status: r.status,
            status_source: r.status_source,
            tags: r.tags,
            photo_url: r.photo_url,
            created_at: r.created_at_ms,
            deleted: r.deleted != 0,
            erased: r.erased != 0,
            merged_into: r.merged_into,
            aliases: r.aliases,
            lead_score: r.lead_score,
            factors,
            rule_version: r.rule_version,
            last_interaction_at: r.last_interaction_at_ms,
            balance: row.balance,
            reliability: row.reliability,
            affinity: row.affinity,
            gaps: row.gaps,
            activity: row.activity,
            promotion_suggested_at: r.promotion_suggested_at_ms,
            segments: r
                .segment_names
                .into_iter()
                .zip(r.segment_reasons)
                .map(|(segment, reason)| Membership { segment, reason })
                .collect(),
            next_actions: (0..r.action_kinds.len())
                .map(|i| NextAction {
                    kind: r.action_kinds[i].clone(),
                    ref_id: r.action_refs.get(i).cloned().unwrap_or_default(),
                    since: r.action_since_ms.get(i).copied().unwrap_or_default(),
                    age_days: r.action_age_days.get(i).copied().unwrap_or_default(),
                    priority: r.action_priorities.get(i).copied().unwrap_or_default(),
                    message: r.action_messages.get(i).cloned().unwrap_or_default(),
                })
                .collect(),
            services: (0..r.service_ids.len())
                .map(|i| ServiceStat {
                    service_id: r.service_ids[i].clone(),
                    service_name: r.service_names.get(i).filter(|n| !n.is_empty()).cloned(),
                    bookings: r.service_bookings.get(i).copied().unwrap_or_default(),
                    completed: r.service_completed.get(i).copied().unwrap_or_default(),
                    revenue_cents: r.service_revenue_cents.get(i).copied().unwrap_or_default(),
                })
                .collect(),
            evaluated_at: r.evaluated_at_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct SegmentChangeRow {
    pub signal_id: String,
    pub business_id: String,
    pub contact_id: String,
    pub segment: String,
    pub change: String,
    pub reason: String,
    pub at_ms: i64,
    pub rule_version: String,
    pub caused_by: Vec<String>,
}

impl SegmentChangeRow {
    /// The segment change a signal records, if it is one.
    pub fn of(s: &Signal) -> Option<Self> {
        (s.kind == SEGMENT_UPDATED).then(|| Self {
            signal_id: s.signal_id.clone(),
            business_id: s.business_id.clone(),
            contact_id: s.contact_id.clone(),
            segment: s.subject.clone(),
            change: s.change.to_owned(),
            reason: s.reason.clone(),
            at_ms: s.at,
            rule_version: s.rule_version.clone(),
            caused_by: s.caused_by.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, FieldRef};
    use serde_arrow::schema::{SchemaLike, TracingOptions};

    /// The insert's column list names every field RowBinary writes, in order: the base's
    /// fields, then each section's, a section field under its ClickHouse name.
    #[test]
    fn profile_columns_name_every_serialised_field_in_order() {
        let traced = Vec::<FieldRef>::from_type::<ProfileRow>(TracingOptions::default()).unwrap();
        let leaves: Vec<String> = traced
            .iter()
            .flat_map(|f| match f.data_type() {
                DataType::Struct(children) => children.iter().map(|c| c.name().clone()).collect(),
                _ => vec![f.name().clone()],
            })
            .map(|n| match n.as_str() {
                "oldest_unpaid_due_at" => "oldest_unpaid_due_at_ms".to_owned(),
                _ => n,
            })
            .collect();
        assert_eq!(ProfileRow::COLUMN_NAMES, leaves);
        assert!(ProfileRow::COLUMN_NAMES.contains(&"promotion_eligible"));
        for (i, c) in ProfileRow::COLUMN_NAMES.iter().enumerate() {
            assert!(!ProfileRow::COLUMN_NAMES[..i].contains(c), "{c} twice");
        }
    }

    #[test]
    fn a_profile_survives_the_row() {
        let p = ContactProfile {
            business_id: "b".into(),
            contact_id: "c".into(),
            balance: Balance {
                outstanding_balance_cents: 10,
                oldest_unpaid_due_at: Some(5),
                ..Default::default()
            },
            activity: Activity {
                promotion_eligible: true,
                ..Default::default()
            },
            evaluated_at: 9,
            ..Default::default()
        };
        assert_eq!(ContactProfile::from(ProfileRow::from(&p)), p);
    }
}
