//! `keyflow import FILE`: onboards an existing CRM's contacts. Each row of a CSV file (header
//! row first) or a JSONL file becomes a `contact.created` event, or `contact.updated` for a
//! later row of a contact already in the file, with `source = import`. Every event goes through
//! the stream's own decoder (the same normalisation and checks) and is produced to the contacts
//! topic through the Kafka protocol, keyed by contact. Event ids are derived from each row's
//! content, so importing a file again adds nothing (the processor counts an event id once).
//! Nothing is dropped silently: every refused row is reported with its line and reason.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use pipeline::decode::Decoder;
use pipeline::kafka::{client_config, topics};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use serde_json::{json, Map, Value};

use crate::config::Config;

/// The columns an import row may have, each with the spellings accepted in a header or a JSON
/// key. `contact_id` is required; `name` is required on a contact's first row; `business_id`
/// may come from `--business` instead; `created_at` (RFC 3339) is the event's `occurred_at`
/// (default: the start of the import).
const COLUMNS: &[(&str, &[&str])] = &[
    ("business_id", &["business_id", "businessId"]),
    ("contact_id", &["contact_id", "contactId", "id"]),
    ("name", &["name"]),
    ("email", &["email"]),
    ("phone", &["phone"]),
    ("status", &["status"]),
    ("tags", &["tags"]),
    ("photo_url", &["photo_url", "photoUrl"]),
    ("created_at", &["created_at", "createdAt"]),
];

/// The source every imported event carries.
pub const SOURCE: &str = "import";

/// What an import did.
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    /// Rows read (header excluded).
    pub rows: usize,
    /// Events produced (one per accepted row).
    pub produced: usize,
    /// Refused rows: (line in the file, reason).
    pub rejected: Vec<(usize, String)>,
}

/// A row as read: its line, and its values by canonical column name or why it could not be read.
type Read = (usize, Result<Map<String, Value>, String>);

fn canonical(key: &str) -> Option<&'static str> {
    let key = key.trim();
    COLUMNS
        .iter()
        .find(|(_, names)| names.contains(&key))
        .map(|(c, _)| *c)
}

fn unknown_column(key: &str) -> String {
    let known: Vec<&str> = COLUMNS.iter().map(|(c, _)| *c).collect();
    format!("unknown column {key:?} (columns: {})", known.join(", "))
}

/// Reads `text` as CSV with a header row, one row at a time. A header naming an unknown column
/// stops the import before any row is read.
fn csv_rows(text: &str) -> anyhow::Result<impl Iterator<Item = Read> + '_> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<&'static str> = reader
        .headers()
        .context("reading the header row")?
        .iter()
        .map(|h| canonical(h).ok_or_else(|| anyhow::anyhow!("line 1: {}", unknown_column(h))))
        .collect::<anyhow::Result<_>>()?;
    Ok(reader.into_records().map(move |record| match record {
        Ok(r) => {
            let line = r.position().map_or(0, |p| p.line() as usize);
            let values = headers
                .iter()
                .zip(r.iter())
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(h, v)| ((*h).to_owned(), Value::String(v.to_owned())))
                .collect();
            (line, Ok(values))
        }
        Err(e) => {
            let line = e.position().map_or(0, |p| p.line() as usize);
            (line, Err(format!("not a CSV row: {e}")))
        }
    }))
}

/// Reads `text` as JSONL, one object per non-empty line, one line at a time.
fn jsonl_rows(text: &str) -> impl Iterator<Item = Read> + '_ {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let parsed = serde_json::from_str(l)
                .map_err(|e| format!("not a JSON object: {e}"))
                .and_then(|o: Map<String, Value>| {
                    o.into_iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| {
                            canonical(&k)
                                .map(|c| (c.to_owned(), v))
                                .ok_or_else(|| unknown_column(&k))
                        })
                        .collect()
                });
            (i + 1, parsed)
        })
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The event of one row: its key (the contact id) and its JSON, or why the row is refused
/// before the decoder sees it. `seen` holds the contacts already created by earlier rows.
fn envelope(
    values: &Map<String, Value>,
    business: Option<&str>,
    seen: &mut HashSet<(String, String)>,
    now: DateTime<Utc>,
) -> Result<(String, Vec<u8>), String> {
    let get = |k: &str| {
        values
            .get(k)
            .and_then(text)
            .filter(|s| !s.trim().is_empty())
    };
    let contact = get("contact_id").ok_or("contact_id is missing")?;
    let business = get("business_id")
        .or_else(|| business.map(str::to_owned))
        .ok_or("business_id is missing (a column, or --business)")?;
    let occurred_at = match get("created_at") {
        Some(t) => DateTime::parse_from_rfc3339(t.trim())
            .map_err(|e| format!("created_at {t:?} is not an RFC 3339 instant: {e}"))?
            .with_timezone(&Utc),
        None => now,
    };
    let mut data = Map::new();
    for k in ["name", "email", "phone", "status", "photo_url"] {
        if let Some(v) = get(k) {
            data.insert(k.to_owned(), Value::String(v));
        }
    }
    match values.get("tags") {
        Some(Value::Array(tags)) => {
            data.insert("tags".into(), Value::Array(tags.clone()));
        }
        Some(v) => {
            let tags: Vec<Value> = text(v)
                .unwrap_or_default()
                .split([';', '|', ','])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| Value::String(t.to_owned()))
                .collect();
            data.insert("tags".into(), Value::Array(tags));
        }
        None => {}
    }
    let first = !seen.contains(&(business.clone(), contact.clone()));
    let kind = if first {
        "contact.created"
    } else {
        "contact.updated"
    };
    let data = Value::Object(data);
    // The content decides the id: the same row imported again is the same event.
    let id = model::signal::fnv(&[SOURCE, &business, &contact, kind, &data.to_string()]);
    let event = json!({
        "event_id": format!("import-{id}"),
        "type": kind,
        "business_id": business,
        "contact_id": contact,
        "occurred_at": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "source": SOURCE,
        "data": data,
    });
    let bytes = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
    Ok((contact, bytes))
}

/// Imports `file` (`.csv`, or `.jsonl`/`.ndjson`) into the contacts topic of the broker `cfg`
/// names (`brokers`, or the embedded broker of a running `keyflow` at `broker_addr`). Rows are
/// read, checked and produced one at a time (acknowledgements awaited every [`IN_FLIGHT`]), so
/// memory does not grow with the file; the report lists the refused ones.
pub async fn run(cfg: &Config, file: &Path, business: Option<&str>) -> anyhow::Result<Report> {
    let raw =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let rows: Box<dyn Iterator<Item = Read>> = match ext.to_ascii_lowercase().as_str() {
        "csv" => Box::new(csv_rows(&raw)?),
        "jsonl" | "ndjson" => Box::new(jsonl_rows(&raw)),
        other => bail!(
            "{}: unknown format {other:?} (.csv or .jsonl)",
            file.display()
        ),
    };
    let producer = connect(cfg).await?;
    let decoder = Decoder::new(cfg.ingest.sources.clone(), cfg.ingest.max_event_bytes);
    let now = Utc::now();
    let progress = indicatif::ProgressBar::new(raw.lines().count() as u64);
    let mut seen = HashSet::new();
    let mut report = Report::default();
    let mut pending = Vec::with_capacity(IN_FLIGHT);
    for (line, values) in rows {
        progress.inc(1);
        report.rows += 1;
        let checked = values
            .and_then(|v| envelope(&v, business, &mut seen, now))
            .and_then(|(key, bytes)| {
                decoder
                    .decode_at(Some(key.as_bytes()), &bytes, now)
                    .map(|ev| (ev, key, bytes))
                    .map_err(|r| format!("{r} ({})", r.code()))
            });
        let (ev, key, bytes) = match checked {
            Ok(accepted) => accepted,
            Err(reason) => {
                report.rejected.push((line, reason));
                continue;
            }
        };
        seen.insert((ev.business_id, ev.contact_id));
        let record = FutureRecord::to(&cfg.topics.contacts)
            .key(&key)
            .payload(&bytes);
        pending.push(producer.send_result(record).map_err(|(e, _)| e)?);
        report.produced += 1;
        if pending.len() >= IN_FLIGHT {
            acknowledged(&mut pending).await?;
        }
    }
    acknowledged(&mut pending).await?;
    producer.flush(Duration::from_secs(10))?;
    progress.finish_and_clear();
    Ok(report)
}

/// Most events produced before their acknowledgements are awaited.
const IN_FLIGHT: usize = 5_000;

/// Waits for every delivery in `pending`; the first failure fails the import.
async fn acknowledged(pending: &mut Vec<DeliveryFuture>) -> anyhow::Result<()> {
    for p in pending.drain(..) {
        p.await
            .context("delivery cancelled")?
            .map_err(|(e, _)| e)
            .context("producing an imported event")?;
    }
    Ok(())
}

/// A producer on the broker `cfg` names, once it answers; the embedded broker's topics are
/// created as `keyflow run` creates them (an external cluster's are its operators' to create).
async fn connect(cfg: &Config) -> anyhow::Result<FutureProducer> {
    let bootstrap = cfg
        .brokers
        .clone()
        .unwrap_or_else(|| cfg.broker_addr.to_string());
    let client = client_config(&bootstrap, &cfg.kafka);
    let producer =
        crate::demo::producer_with(&mut client.clone()).context("creating the producer")?;
    producer
        .client()
        .fetch_metadata(None, Duration::from_secs(10))
        .with_context(|| {
            format!(
                "no Kafka broker answers at {bootstrap}: start `keyflow run` (its embedded broker \
                 listens on broker_addr) or pass --brokers"
            )
        })?;
    if cfg.brokers.is_none() {
        topics::ensure_topics(&client, &cfg.topics)
            .await
            .context("creating the input topics")?;
    }
    Ok(producer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    type Rows = Vec<(usize, Map<String, Value>)>;
    type Bad = Vec<(usize, String)>;

    /// The rows read, and the lines that could not be read with why.
    fn split(rows: impl Iterator<Item = Read>) -> (Rows, Bad) {
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        for (line, r) in rows {
            match r {
                Ok(v) => ok.push((line, v)),
                Err(e) => bad.push((line, e)),
            }
        }
        (ok, bad)
    }

    #[test]
    fn csv_headers_take_both_spellings_and_unknown_ones_are_refused() {
        let (rows, bad) = split(
            csv_rows("contactId,name,email,tags\nc1,Ann,ANN@x.io,vip;new\nc2,Bo,,\n").unwrap(),
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[0].1["contact_id"], "c1");
        assert!(!rows[1].1.contains_key("email"), "empty cells are absent");
        let err = csv_rows("contact_id,nmae\nc1,Ann\n")
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("unknown column \"nmae\""), "{err}");
        let (_, bad) = split(csv_rows("contact_id,name\nc1,Ann,extra\n").unwrap());
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 2, "{bad:?}");
    }

    #[test]
    fn rows_become_creates_then_updates_with_ids_from_their_content() {
        let (rows, bad) = split(jsonl_rows(
            "{\"contact_id\": \"c1\", \"name\": \"Ann\", \"tags\": [\"vip\"]}\n\n\
             {\"contact_id\": \"c1\", \"status\": \"CLIENT\"}\nnot json\n{\"contact_id\": \"c2\", \"colour\": 1}\n",
        ));
        assert_eq!(rows.len(), 2);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), vec![4, 5]);
        assert!(bad[1].1.contains("unknown column \"colour\""), "{bad:?}");
        let mut seen = HashSet::new();
        let (key, first) = envelope(&rows[0].1, Some("b"), &mut seen, now()).unwrap();
        seen.insert(("b".into(), "c1".into()));
        let (_, second) = envelope(&rows[1].1, Some("b"), &mut seen, now()).unwrap();
        let (first, second): (Value, Value) = (
            serde_json::from_slice(&first).unwrap(),
            serde_json::from_slice(&second).unwrap(),
        );
        assert_eq!(key, "c1");
        assert_eq!(first["type"], "contact.created");
        assert_eq!(first["source"], "import");
        assert_eq!(second["type"], "contact.updated");
        // The same content gives the same id, whenever it is imported.
        let later = now() + chrono::Duration::days(1);
        let (_, again) = envelope(&rows[0].1, Some("b"), &mut HashSet::new(), later).unwrap();
        let again: Value = serde_json::from_slice(&again).unwrap();
        assert_eq!(again["event_id"], first["event_id"]);
        assert_ne!(second["event_id"], first["event_id"]);
        let missing = envelope(&rows[0].1, None, &mut HashSet::new(), now()).unwrap_err();
        assert!(missing.contains("business_id"), "{missing}");
    }
}
