//! Row types of the embedded store and their Arrow schemas (timestamps as UTC milliseconds, so
//! `keyflow sql` shows real times).

use std::sync::{Arc, OnceLock};

use std::collections::HashMap;

use datafusion::arrow::array::{
    ArrayRef, AsArray, RecordBatch, RecordBatchOptions, StringArray, StructArray, UInt32Array,
};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Fields, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit,
    TimestampMillisecondType,
};
use datafusion::arrow::error::ArrowError;
use model::profile::ContactProfile;
use serde_arrow::schema::{SchemaLike, TracingOptions};

use crate::rows::{HistoryRow, SignalRow, StoredEvent, StoredEventRef};

/// The Arrow fields of a row type, traced from its serde shape: every field in declaration
/// order, strings as Utf8, lists as List with items named `item`, and every instant (a
/// millisecond field named `*_at`, or `since`) as a UTC millisecond timestamp, so
/// `keyflow sql` shows real times. The row types are the only list of their columns.
fn fields_of<T: serde::de::DeserializeOwned>() -> Vec<FieldRef> {
    let options = TracingOptions::default()
        .strings_as_large_utf8(false)
        .sequence_as_large_list(false);
    Vec::<FieldRef>::from_type::<T>(options)
        .expect("the store's row types trace to Arrow fields")
        .iter()
        .map(|f| Arc::new(shape(f)))
        .collect()
}

fn shape(f: &Field) -> Field {
    let instant = f.name().ends_with("_at") || f.name() == "since";
    let data_type = match f.data_type() {
        DataType::Int64 if instant => {
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        }
        DataType::List(item) => DataType::List(Arc::new(shape(item).with_name("item"))),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| shape(f)).collect::<Fields>())
        }
        other => other.clone(),
    };
    Field::new(f.name(), data_type, f.is_nullable())
}

/// Columns of the event segments: [`StoredEvent`].
pub fn event_fields() -> Vec<FieldRef> {
    static FIELDS: OnceLock<Vec<FieldRef>> = OnceLock::new();
    FIELDS.get_or_init(fields_of::<StoredEvent>).clone()
}

/// A row type whose struct members (the profile's metric sections) are stored as their own
/// columns, in place: `keyflow sql` and the stored segments see one flat table.
struct Flat {
    /// The row type's fields as traced, sections as struct fields.
    nested: Vec<FieldRef>,
    /// The stored columns: every section replaced by its fields.
    flat: Vec<FieldRef>,
}

impl Flat {
    fn of<T: serde::de::DeserializeOwned>() -> Self {
        let nested = fields_of::<T>();
        let flat: Vec<FieldRef> = nested
            .iter()
            .flat_map(|f| match f.data_type() {
                DataType::Struct(children) => children.iter().cloned().collect(),
                _ => vec![f.clone()],
            })
            .collect();
        for (i, f) in flat.iter().enumerate() {
            assert!(
                flat[..i].iter().all(|g| g.name() != f.name()),
                "column {} is stored twice: a section field repeats a name",
                f.name()
            );
        }
        Self { nested, flat }
    }

    fn batch<T: serde::Serialize>(&self, rows: &[T]) -> Result<RecordBatch, serde_arrow::Error> {
        let nested = serde_arrow::to_record_batch(&self.nested, &rows)?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.flat.len());
        for (f, c) in self.nested.iter().zip(nested.columns()) {
            match f.data_type() {
                DataType::Struct(_) => columns.extend(c.as_struct().columns().iter().cloned()),
                _ => columns.push(c.clone()),
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(nested.num_rows()));
        RecordBatch::try_new_with_options(schema(&self.flat), columns, &options).map_err(arrow)
    }

    /// The rows of a stored batch. A column it lacks (a segment written before the field was
    /// added) reads as the field's default.
    fn rows<T: serde::de::DeserializeOwned>(
        &self,
        batch: &RecordBatch,
    ) -> Result<Vec<T>, serde_arrow::Error> {
        let stored = batch.schema();
        let column = |name: &str| {
            let i = stored.index_of(name).ok()?;
            Some((stored.fields()[i].clone(), batch.column(i).clone()))
        };
        let (mut fields, mut columns): (Vec<FieldRef>, Vec<ArrayRef>) = (Vec::new(), Vec::new());
        for f in &self.nested {
            match f.data_type() {
                DataType::Struct(children) => {
                    let (fs, cs): (Vec<FieldRef>, Vec<ArrayRef>) =
                        children.iter().filter_map(|c| column(c.name())).unzip();
                    if fs.is_empty() {
                        continue;
                    }
                    let fs = Fields::from(fs);
                    fields.push(Arc::new(Field::new(
                        f.name(),
                        DataType::Struct(fs.clone()),
                        false,
                    )));
                    columns.push(Arc::new(StructArray::try_new(fs, cs, None).map_err(arrow)?));
                }
                _ => {
                    if let Some((field, c)) = column(f.name()) {
                        fields.push(field);
                        columns.push(c);
                    }
                }
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let nested =
            RecordBatch::try_new_with_options(schema(&fields), columns, &options).map_err(arrow)?;
        serde_arrow::from_record_batch(&nested)
    }
}

fn arrow(e: ArrowError) -> serde_arrow::Error {
    <serde_arrow::Error as serde::ser::Error>::custom(e)
}

fn profile_layout() -> &'static Flat {
    static LAYOUT: OnceLock<Flat> = OnceLock::new();
    LAYOUT.get_or_init(Flat::of::<ContactProfile>)
}

/// Columns of the profile segments: [`ContactProfile`], each metric section's fields in its
/// place.
pub fn profile_fields() -> Vec<FieldRef> {
    profile_layout().flat.clone()
}

/// Columns of a batch's signals: [`SignalRow`], the same row ClickHouse stores.
pub fn signal_fields() -> Vec<FieldRef> {
    static FIELDS: OnceLock<Vec<FieldRef>> = OnceLock::new();
    FIELDS.get_or_init(fields_of::<SignalRow>).clone()
}

pub fn score_fields() -> Vec<FieldRef> {
    static FIELDS: OnceLock<Vec<FieldRef>> = OnceLock::new();
    FIELDS.get_or_init(fields_of::<HistoryRow>).clone()
}

pub fn scores_batch(scores: &[HistoryRow]) -> Result<RecordBatch, serde_arrow::Error> {
    serde_arrow::to_record_batch(&score_fields(), &scores)
}

pub fn scores_from(batch: &RecordBatch) -> Result<Vec<HistoryRow>, serde_arrow::Error> {
    serde_arrow::from_record_batch(batch)
}

pub fn schema(fields: &[FieldRef]) -> SchemaRef {
    Arc::new(Schema::new(fields.to_vec()))
}

/// The event segment of `events`: [`StoredEvent`]s, or the [`crate::rows::StoredEventRef`]s
/// a write borrows from its output (the columns are `StoredEvent`'s either way).
pub fn events_batch<R: serde::Serialize>(events: &[R]) -> Result<RecordBatch, serde_arrow::Error> {
    serde_arrow::to_record_batch(&event_fields(), &events)
}

/// The rows of an event segment, borrowed from its columns (a write records the activity from
/// the batch it stored, with no copy of each event's texts).
pub fn event_refs(batch: &RecordBatch) -> Result<Vec<StoredEventRef<'_>>, ArrowError> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| ArrowError::SchemaError(format!("event rows without column {name}")))
    };
    let text = |name: &str| -> Result<&StringArray, ArrowError> {
        column(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| ArrowError::SchemaError(format!("event column {name} is not Utf8")))
    };
    let partition = column("partition")?
        .as_primitive_opt::<Int32Type>()
        .ok_or_else(|| ArrowError::SchemaError("event column partition is not Int32".into()))?;
    let offset = column("offset")?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| ArrowError::SchemaError("event column offset is not Int64".into()))?;
    let occurred_at = column("occurred_at")?
        .as_primitive_opt::<TimestampMillisecondType>()
        .ok_or_else(|| {
            ArrowError::SchemaError(
                "event column occurred_at is not a millisecond timestamp".into(),
            )
        })?;
    let (topic, event_id, kind) = (text("topic")?, text("event_id")?, text("type")?);
    let (business_id, contact_id) = (text("business_id")?, text("contact_id")?);
    let (source, data) = (text("source")?, text("data")?);
    Ok((0..batch.num_rows())
        .map(|i| StoredEventRef {
            partition: partition.value(i),
            topic: topic.value(i),
            offset: offset.value(i),
            event_id: event_id.value(i),
            kind: kind.value(i),
            business_id: business_id.value(i),
            contact_id: contact_id.value(i),
            occurred_at: occurred_at.value(i),
            source: source.value(i),
            data: data.value(i),
        })
        .collect())
}

pub fn profiles_batch<P: std::borrow::Borrow<ContactProfile>>(
    profiles: &[P],
) -> Result<RecordBatch, serde_arrow::Error> {
    let rows: Vec<&ContactProfile> = profiles.iter().map(|p| p.borrow()).collect();
    profile_layout().batch(&rows)
}

/// The signal segment of `signals`: [`SignalRow`]s, or the [`crate::rows::SignalRowRef`]s a
/// write borrows from its output (the columns are `SignalRow`'s either way).
pub fn signals_batch<R: serde::Serialize>(
    signals: &[R],
) -> Result<RecordBatch, serde_arrow::Error> {
    serde_arrow::to_record_batch(&signal_fields(), &signals)
}

pub fn signals_from(batch: &RecordBatch) -> Result<Vec<SignalRow>, serde_arrow::Error> {
    serde_arrow::from_record_batch(batch)
}

pub fn events_from(batch: &RecordBatch) -> Result<Vec<StoredEvent>, serde_arrow::Error> {
    serde_arrow::from_record_batch(batch)
}

pub fn profiles_from(batch: &RecordBatch) -> Result<Vec<ContactProfile>, serde_arrow::Error> {
    profile_layout().rows(batch)
}

/// `batch` in the current profile columns: a segment written before a profile field was added
/// lacks its column; read back through [`ContactProfile`], the field takes its default.
fn upgrade_profiles(batch: &RecordBatch, current: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema() == *current {
        return Ok(batch.clone());
    }
    for key in ["business_id", "contact_id", "evaluated_at"] {
        if batch.schema().field_with_name(key).is_err() {
            return Err(ArrowError::SchemaError(format!(
                "profile rows need the column {key}"
            )));
        }
    }
    let external = |e: serde_arrow::Error| ArrowError::ExternalError(Box::new(e));
    profiles_batch(&profiles_from(batch).map_err(external)?).map_err(external)
}

/// The newest version of each contact among `batches` of profile rows (of two rows of one
/// contact the later wins), ordered by `evaluated_at`, then by position. It works on the Arrow
/// columns and copies only the rows it keeps: a merge or a recovery decodes no row it drops
/// (decoding every version was most of a profile merge's 0.5-1.1 s).
pub fn latest_profile_rows(batches: &[RecordBatch]) -> Result<Option<RecordBatch>, ArrowError> {
    if batches.is_empty() {
        return Ok(None);
    }
    let current = schema(&profile_fields());
    let batches = batches
        .iter()
        .map(|b| upgrade_profiles(b, &current))
        .collect::<Result<Vec<_>, _>>()?;
    let all = concat_batches(&current, &batches)?;
    let text = |name: &str| -> Result<&StringArray, ArrowError> {
        all.column_by_name(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| ArrowError::SchemaError(format!("profile rows need a Utf8 {name}")))
    };
    let (business, contact) = (text("business_id")?, text("contact_id")?);
    let at = all
        .column_by_name("evaluated_at")
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .ok_or_else(|| {
            ArrowError::SchemaError("profile rows need a millisecond evaluated_at".into())
        })?;
    let mut latest: HashMap<(&str, &str), u32> = HashMap::with_capacity(all.num_rows());
    for i in 0..all.num_rows() {
        latest.insert((business.value(i), contact.value(i)), i as u32);
    }
    let mut keep: Vec<u32> = latest.into_values().collect();
    keep.sort_unstable_by_key(|&i| (at.value(i as usize), i));
    take_record_batch(&all, &UInt32Array::from(keep)).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_segment_from_borrowed_rows_is_the_same_and_reads_back_in_place() {
        use model::event::{Event, NoteCreated, Payload, SCHEMA_VERSION};
        use model::sink::AcceptedEvent;
        let accepted: Vec<AcceptedEvent> = (0..3)
            .map(|i| AcceptedEvent {
                event: Event {
                    schema_version: SCHEMA_VERSION,
                    event_id: format!("e{i}"),
                    business_id: "b".into(),
                    contact_id: format!("c{}", i % 2),
                    occurred_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + i)
                        .unwrap(),
                    source: "manual".into(),
                    payload: Payload::NoteCreated(NoteCreated {
                        note_id: format!("n{i}"),
                        body: "Call back \"soon\"".into(),
                    }),
                },
                topic: "crm.contacts".into(),
                partition: 1,
                offset: 40 + i,
            })
            .collect();
        let owned: Vec<StoredEvent> = accepted.iter().map(StoredEvent::from).collect();
        let data: Vec<String> = accepted
            .iter()
            .map(|a| a.event.payload.data_json())
            .collect();
        let borrowed: Vec<StoredEventRef<'_>> = (accepted.iter().zip(&data))
            .map(|(a, d)| StoredEventRef::new(a, d))
            .collect();
        let of_owned: Vec<StoredEventRef<'_>> = owned.iter().map(StoredEventRef::of).collect();
        assert_eq!(borrowed, of_owned);
        let a = events_batch(&owned).unwrap();
        let b = events_batch(&borrowed).unwrap();
        assert_eq!(a.num_rows(), 3);
        assert_eq!(a, b);
        assert_eq!(event_refs(&b).unwrap(), borrowed);
        assert_eq!(events_from(&b).unwrap(), owned);
    }

    /// The traced columns are the ones the store has always written (segments written by an
    /// earlier version are merged with new ones, so the shapes must stay equal): the lists
    /// below are that earlier hand-written schema, kept here as the golden.
    #[test]
    fn traced_columns_are_the_stored_format() {
        fn ts(name: &str, nullable: bool) -> Field {
            Field::new(
                name,
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                nullable,
            )
        }
        fn utf8(name: &str, nullable: bool) -> Field {
            Field::new(name, DataType::Utf8, nullable)
        }
        fn i64f(name: &str, nullable: bool) -> Field {
            Field::new(name, DataType::Int64, nullable)
        }
        fn f64f(name: &str, nullable: bool) -> Field {
            Field::new(name, DataType::Float64, nullable)
        }
        fn list_of(name: &str, fields: Vec<Field>) -> Field {
            Field::new(
                name,
                DataType::List(Arc::new(Field::new(
                    "item",
                    DataType::Struct(Fields::from(fields)),
                    false,
                ))),
                false,
            )
        }
        fn strings(name: &str) -> Field {
            Field::new(name, DataType::List(Arc::new(utf8("item", false))), false)
        }
        let events = vec![
            Field::new("partition", DataType::Int32, false),
            utf8("topic", false),
            Field::new("offset", DataType::Int64, false),
            utf8("event_id", false),
            utf8("type", false),
            utf8("business_id", false),
            utf8("contact_id", false),
            ts("occurred_at", false),
            utf8("source", false),
            utf8("data", false),
        ];
        let profiles = vec![
            utf8("business_id", false),
            utf8("contact_id", false),
            Field::new("partition", DataType::Int32, false),
            utf8("name", true),
            utf8("email", true),
            utf8("phone", true),
            utf8("status", false),
            utf8("status_source", false),
            strings("tags"),
            utf8("photo_url", true),
            ts("created_at", true),
            Field::new("deleted", DataType::Boolean, false),
            Field::new("erased", DataType::Boolean, false),
            utf8("merged_into", true),
            strings("aliases"),
            i64f("lead_score", false),
            list_of(
                "factors",
                vec![
                    utf8("factor", false),
                    i64f("count", false),
                    i64f("points", false),
                ],
            ),
            utf8("rule_version", false),
            ts("last_interaction_at", true),
            i64f("outstanding_balance_cents", false),
            i64f("unpaid_invoices", false),
            i64f("overdue_invoices", false),
            utf8("oldest_unpaid_invoice_id", true),
            ts("oldest_unpaid_due_at", true),
            i64f("days_overdue", true),
            i64f("invoices_on_time", false),
            i64f("invoices_late", false),
            i64f("invoices_overdue", false),
            i64f("payment_reliability", true),
            f64f("avg_days_late", true),
            utf8("top_service_id", true),
            utf8("top_service_name", true),
            i64f("top_service_bookings", false),
            i64f("affinity_bookings", false),
            f64f("top_service_share", true),
            f64f("mean_gap_days", true),
            f64f("median_gap_days", true),
            i64f("days_since_last_interaction", true),
            i64f("completed_bookings_total", false),
            i64f("recent_bookings", false),
            i64f("revenue_cents", false),
            i64f("recent_paid_invoices", false),
            i64f("recent_paid_cents", false),
            i64f("pending_confirmations", false),
            Field::new("promotion_eligible", DataType::Boolean, false),
            ts("promotion_suggested_at", true),
            list_of(
                "segments",
                vec![utf8("segment", false), utf8("reason", false)],
            ),
            list_of(
                "next_actions",
                vec![
                    utf8("kind", false),
                    utf8("ref_id", false),
                    ts("since", false),
                    i64f("age_days", false),
                    f64f("priority", false),
                    utf8("message", false),
                ],
            ),
            list_of(
                "services",
                vec![
                    utf8("service_id", false),
                    utf8("service_name", true),
                    i64f("bookings", false),
                    i64f("completed", false),
                    i64f("revenue_cents", false),
                ],
            ),
            ts("evaluated_at", false),
        ];
        let signals = vec![
            utf8("signal_id", false),
            utf8("type", false),
            utf8("business_id", false),
            utf8("contact_id", false),
            Field::new("partition", DataType::Int32, false),
            utf8("subject", false),
            utf8("change", false),
            utf8("reason", false),
            i64f("at_ms", false),
            utf8("rule_version", false),
            strings("caused_by"),
            utf8("detail", false),
            Field::new("batch", DataType::UInt64, false),
        ];
        for (name, golden, traced) in [
            ("events", events, event_fields()),
            ("profiles", profiles, profile_fields()),
            ("signals", signals, signal_fields()),
        ] {
            let golden: Vec<FieldRef> = golden.into_iter().map(Arc::new).collect();
            assert_eq!(schema(&traced), schema(&golden), "{name}");
        }
    }

    fn version(contact: &str, lead_score: i64, evaluated_at: i64) -> ContactProfile {
        ContactProfile {
            business_id: "b".into(),
            contact_id: contact.into(),
            lead_score,
            evaluated_at,
            ..Default::default()
        }
    }

    #[test]
    fn the_latest_version_of_each_contact_is_kept_in_evaluation_order() {
        let batches = [
            profiles_batch(&[version("c1", 1, 10), version("c2", 2, 20)]).unwrap(),
            profiles_batch::<ContactProfile>(&[]).unwrap(),
            profiles_batch(&[version("c3", 3, 15), version("c1", 5, 30)]).unwrap(),
        ];
        let latest = latest_profile_rows(&batches).unwrap().unwrap();
        assert_eq!(
            profiles_from(&latest).unwrap(),
            vec![
                version("c3", 3, 15),
                version("c2", 2, 20),
                version("c1", 5, 30)
            ]
        );
        assert_eq!(latest_profile_rows(&[]).unwrap(), None);
    }

    /// A segment written before a field was added (here `status_source`) merges with new ones,
    /// the field taking its default.
    #[test]
    fn a_segment_without_a_newer_field_reads_with_its_default() {
        let mut new = version("c1", 5, 30);
        new.status_source = "crm".into();
        let old = profiles_batch(&[version("c2", 2, 20)]).unwrap();
        let i = old.schema().index_of("status_source").unwrap();
        let mut old = old.clone();
        old.remove_column(i);
        let latest = latest_profile_rows(&[old, profiles_batch(&[new.clone()]).unwrap()])
            .unwrap()
            .unwrap();
        assert_eq!(latest.schema(), schema(&profile_fields()));
        assert_eq!(
            profiles_from(&latest).unwrap(),
            vec![version("c2", 2, 20), new]
        );
    }

    model::section! {
        /// `Activity` with one metric added, as docs/ADDING_A_METRIC.md adds it.
        ActivityWithVisits from "activity" {
            revenue_cents: i64,
            visits_last_30_days: i64,
        }
    }

    /// A profile of the fixture's shape: fields of its own and a section.
    #[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    struct FixtureProfile {
        contact_id: String,
        activity: ActivityWithVisits,
        evaluated_at: i64,
    }

    /// A field added to a section is a stored column, in the section's place, and a ClickHouse
    /// column, with no other list to edit; an older segment without it reads the default.
    #[test]
    fn a_field_added_to_a_section_is_a_new_column_everywhere() {
        use model::sections::Section;
        let layout = Flat::of::<FixtureProfile>();
        let names: Vec<&str> = layout.flat.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "contact_id",
                "revenue_cents",
                "visits_last_30_days",
                "evaluated_at"
            ]
        );
        assert_eq!(
            ActivityWithVisits::COLUMNS,
            ["revenue_cents", "visits_last_30_days"]
        );
        let p = FixtureProfile {
            contact_id: "c1".into(),
            activity: ActivityWithVisits {
                revenue_cents: 900,
                visits_last_30_days: 4,
            },
            evaluated_at: 7,
        };
        let batch = layout.batch(std::slice::from_ref(&p)).unwrap();
        let visits = batch.column_by_name("visits_last_30_days").unwrap();
        assert_eq!(
            visits
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0),
            4
        );
        assert_eq!(
            layout.rows::<FixtureProfile>(&batch).unwrap(),
            vec![p.clone()]
        );
        let mut older = batch.clone();
        older.remove_column(batch.schema().index_of("visits_last_30_days").unwrap());
        let mut expected = p;
        expected.activity.visits_last_30_days = 0;
        assert_eq!(
            layout.rows::<FixtureProfile>(&older).unwrap(),
            vec![expected]
        );
    }

    #[test]
    fn the_profile_sections_are_stored_in_place() {
        let p = ContactProfile {
            balance: model::sections::Balance {
                outstanding_balance_cents: 4_200,
                oldest_unpaid_due_at: Some(1_000),
                ..Default::default()
            },
            activity: model::sections::Activity {
                promotion_eligible: true,
                ..Default::default()
            },
            ..version("c1", 3, 10)
        };
        let batch = profiles_batch(std::slice::from_ref(&p)).unwrap();
        assert_eq!(batch.schema(), schema(&profile_fields()));
        assert!(batch.column_by_name("balance").is_none());
        assert_eq!(
            batch
                .column_by_name("outstanding_balance_cents")
                .unwrap()
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(0),
            4_200
        );
        assert_eq!(profiles_from(&batch).unwrap(), vec![p]);
    }

    #[test]
    fn rows_without_the_key_columns_are_refused_by_name() {
        let events = events_batch::<StoredEvent>(&[]).unwrap();
        let err = latest_profile_rows(&[events]).unwrap_err();
        assert!(err.to_string().contains("evaluated_at"), "{err}");
    }
}
