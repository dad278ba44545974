//! Golden tests: the fixture events of `sql/metrics/golden/fixture.jsonl` go through the decoder
//! and the state, every metric file runs at pinned instants, and its rows must equal
//! `sql/metrics/golden/<file>.txt`. The expected files were checked by hand against the
//! fixture (see the comments at the top of each); `KEYFLOW_BLESS=1` rewrites them, and the diff
//! must then be reviewed, not taken on trust.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::DateTime;
use datafusion::arrow::util::pretty::pretty_format_batches;

use super::*;
use crate::decode::Decoder;

/// The instants every file is evaluated at, each in a business calendar (time zone, first day
/// of the week): the fixture's "today" and two weeks later (windows closing, due dates passing,
/// with no new event) in UTC, and "today" again in Auckland (UTC+13, so 01:00 the next day,
/// with weeks from Sunday): local days, days overdue, ages and "this week" move.
const INSTANTS: [(&str, &str, &str); 3] = [
    ("2026-11-24T12:00:00Z", "UTC", "monday"),
    ("2026-12-08T12:00:00Z", "UTC", "monday"),
    ("2026-11-24T12:00:00Z", "Pacific/Auckland", "sunday"),
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sql/metrics/golden")
}

/// The fixture's events, decoded (normalised) as the processor would.
pub(super) fn fixture_events() -> Vec<crate::event::Event> {
    let text = std::fs::read_to_string(dir().join("fixture.jsonl")).expect("fixture");
    let decoder = Decoder::new(crate::config::IngestConfig::default().sources, 64 * 1024);
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("fixture line is JSON");
            let key = v["contact_id"].as_str().expect("contact_id").to_owned();
            decoder
                .decode(Some(key.as_bytes()), line.as_bytes())
                .unwrap_or_else(|e| panic!("fixture event refused: {e}: {line}"))
        })
        .collect()
}

fn fixture_state() -> (PartitionState, Vec<ContactKey>) {
    let mut state = PartitionState::default();
    for ev in fixture_events() {
        state.apply(&ev);
    }
    let mut keys: Vec<ContactKey> = state.contacts.keys().cloned().collect();
    keys.sort();
    (state, keys)
}

/// Every metric file's rows at every instant, as text.
async fn render() -> HashMap<&'static str, String> {
    let mut out: HashMap<&'static str, String> = HashMap::new();
    for (at, zone, week) in INSTANTS {
        let rules = BusinessRules {
            calendar: serde_json::from_value(serde_json::json!({
                "timezone": zone, "week_starts_on": week,
            }))
            .expect("a calendar"),
            ..Default::default()
        };
        let now = DateTime::parse_from_rfc3339(at).unwrap().timestamp_millis();
        let (state, keys) = fixture_state();
        let mut inputs = Inputs::default();
        for (cid, key) in keys.iter().enumerate() {
            inputs.add(
                cid as u32,
                key,
                &state.contacts[key],
                state.contacts[key].status(),
                &state.tags_of(key),
            );
        }
        let results = run_metrics(&mut inputs, &rules, now)
            .await
            .expect("metrics run");
        for (name, _) in METRICS {
            let table = pretty_format_batches(&results[name]).expect("printable");
            let text = out.entry(name).or_default();
            let header = match zone {
                "UTC" => format!("# now = {at}"),
                _ => format!("# now = {at} in {zone}, weeks from {week}"),
            };
            text.push_str(&format!("{header}\n{table}\n\n"));
        }
    }
    out
}

async fn check(name: &str) {
    let actual = render().await.remove(name).expect("a metric file");
    let path = dir().join(format!("{name}.txt"));
    if std::env::var_os("KEYFLOW_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing (KEYFLOW_BLESS=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{name}: rows differ from {}\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

#[test]
fn fixture_contacts_are_cid_ordered() {
    let (_, keys) = fixture_state();
    let ids: Vec<&str> = keys.iter().map(|k| &*k.contact_id).collect();
    assert_eq!(
        ids,
        ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"],
        "cid = index in this order"
    );
}

#[tokio::test]
async fn golden_lead_score() {
    check("lead_score").await;
}

#[tokio::test]
async fn golden_outstanding_balance() {
    check("outstanding_balance").await;
}

#[tokio::test]
async fn golden_payment_reliability() {
    check("payment_reliability").await;
}

#[tokio::test]
async fn golden_service_affinity() {
    check("service_affinity").await;
}

#[tokio::test]
async fn golden_interaction_gaps() {
    check("interaction_gaps").await;
}

#[tokio::test]
async fn golden_activity() {
    check("activity").await;
}

#[tokio::test]
async fn golden_contact_services() {
    check("contact_services").await;
}

#[tokio::test]
async fn golden_segments() {
    check("segments").await;
}

#[tokio::test]
async fn golden_next_actions() {
    check("next_actions").await;
}
