//! What a run leaves behind, in a form two runs can be compared by: the analysts' ClickHouse
//! view, the embedded store's final profiles, event counts, and the net state of the signals.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::array::Int64Array;
use sinks::store::EmbeddedStore;

#[derive(Debug, Clone, clickhouse::Row, serde::Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ViewRow {
    pub business_id: String,
    pub contact_id: String,
    pub lead_score: i64,
    pub outstanding_balance_cents: i64,
    pub factor_points: Vec<i64>,
    pub status: String,
    pub email: Option<String>,
}

/// What the analysts' view shows, evaluation instants aside.
pub async fn view(ch: &clickhouse::Client) -> Vec<ViewRow> {
    ch.query(
        "SELECT business_id, contact_id, lead_score, outstanding_balance_cents, factor_points, status, email \
         FROM contact_profiles_current ORDER BY business_id, contact_id",
    )
    .fetch_all()
    .await
    .unwrap()
}

/// (rows in events FINAL, distinct event ids).
pub async fn event_counts(ch: &clickhouse::Client) -> (u64, u64) {
    let total = ch
        .query("SELECT count() FROM events FINAL")
        .fetch_one::<u64>()
        .await
        .unwrap();
    let distinct = ch
        .query("SELECT uniqExact(event_id) FROM events")
        .fetch_one::<u64>()
        .await
        .unwrap();
    (total, distinct)
}

/// Every contact's final profile content (evaluation instant aside), by business and contact.
pub fn profiles(store: &EmbeddedStore) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for p in store.partitions().unwrap() {
        for pr in store.latest_profiles(p).unwrap() {
            out.insert(
                (pr.business_id.clone(), pr.contact_id.clone()),
                pr.fingerprint(),
            );
        }
    }
    out
}

/// (stored events, distinct event ids) in the embedded store.
pub async fn stored_event_counts(store: &EmbeddedStore) -> (i64, i64) {
    let b = sinks::sql::query(
        store,
        "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM events",
    )
    .await
    .unwrap();
    let col = |i: usize| {
        b[0].column(i)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    };
    (col(0), col(1))
}

/// What automation knows after reading a signals topic to its end, and how it got there.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SignalState {
    /// (type, business, contact, subject) whose last change is entered, opened or suggested
    /// (`next_action` stands for both next_action types).
    pub on: BTreeSet<(String, String, String, String)>,
    /// Ids of the per-event flow-feed prompts.
    pub prompts: BTreeSet<String>,
}

/// Folds signals in topic order (each contact's signals share a partition, so their order
/// holds) into the state they leave. Also returns how many messages repeated an id already
/// seen: replays after a crash republish with the same id, and consumers drop them by it.
pub fn signal_state(signals: &[serde_json::Value]) -> (SignalState, usize) {
    let mut state = SignalState::default();
    let mut seen = BTreeMap::new();
    let mut repeats = 0;
    let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    for sig in signals {
        let id = s(sig, "signal_id");
        if let Some(first) = seen.insert(id.clone(), sig.clone()) {
            repeats += 1;
            assert_eq!(
                strip_volatile(&first),
                strip_volatile(sig),
                "a repeated signal id carries the same content"
            );
            continue;
        }
        let kind = s(sig, "type");
        // next_action.opened and next_action.resolved are one item's two changes.
        let kind = match kind.strip_prefix("next_action.") {
            Some(_) => "next_action".to_owned(),
            None => kind,
        };
        if kind == "ai.feed.prompt" {
            state.prompts.insert(id);
            continue;
        }
        let subject = if sig.get("ref_id").is_some() {
            format!("{}:{}", s(sig, "kind"), s(sig, "ref_id"))
        } else {
            s(sig, "segment") + s(sig, "to").as_str()
        };
        let key = (kind, s(sig, "business_id"), s(sig, "contact_id"), subject);
        match sig["change"].as_str().unwrap_or_default() {
            "entered" | "opened" | "suggested" => {
                state.on.insert(key);
            }
            _ => {
                state.on.remove(&key);
            }
        }
    }
    (state, repeats)
}

/// A signal without what depends on batch boundaries: which events shared its batch, and the
/// reason worded from them ("resolved after new events" or "resolved as time passed").
fn strip_volatile(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("caused_by");
        m.remove("reason");
    }
    v
}
