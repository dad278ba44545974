//! AI hook points — stubs. Each is a plain heuristic standing where a model would go, marked
//! `stub: true` with its `hookPoint` name, and logs when it is reached (tracing target
//! `keyflow::ai_hooks`: the first call of each hook at info, every call at debug).
//! `docs/AI_HOOKS.md` lists the hook points, their inputs and what a model would replace.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::event::{Event, Payload};
use crate::profile::{ContactProfile, NextAction};

/// Version tag stored as the `rule_version` of stub output.
pub const STUB_VERSION: &str = "ai-stub/v0";

pub const NEXT_ACTION_CARDS: &str = "next_action_cards";
pub const FLOW_FEED: &str = "flow_feed";
pub const PREDICTIVE_SEGMENTS: &str = "predictive_segments";

static FIRST: [AtomicBool; 3] = [
    AtomicBool::new(true),
    AtomicBool::new(true),
    AtomicBool::new(true),
];

fn reached(hook: &'static str, detail: &str) {
    let i = match hook {
        NEXT_ACTION_CARDS => 0,
        FLOW_FEED => 1,
        _ => 2,
    };
    if FIRST[i].swap(false, Ordering::Relaxed) {
        tracing::info!(target: "keyflow::ai_hooks", hook_point = hook, stub = true, "AI hook point reached (stub heuristic; later calls log at debug)");
    }
    tracing::debug!(target: "keyflow::ai_hooks", hook_point = hook, stub = true, detail, "AI hook point reached");
}

/// A prompt for the Cockpit's flow feed.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedPrompt {
    pub text: String,
    pub stub: bool,
    pub hook_point: &'static str,
}

/// Hook `flow_feed`: a suggestion for an event worth acting on, or None.
pub fn feed_prompt(ev: &Event) -> Option<FeedPrompt> {
    let text = match &ev.payload {
        Payload::InvoicePaid(i) => format!("Invoice #{} paid — send review request", i.invoice_id),
        Payload::BookingCreated(b) => format!("New booking for {} — confirm it", b.service_name),
        Payload::BookingCancelled(b) => {
            format!("Booking {} cancelled — offer another slot", b.booking_id)
        }
        Payload::ContactCreated(c) => format!("New contact {} — send a welcome message", c.name),
        _ => return None,
    };
    reached(FLOW_FEED, ev.payload.type_name());
    Some(FeedPrompt {
        text,
        stub: true,
        hook_point: FLOW_FEED,
    })
}

/// One AI next-action card.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionCard {
    pub contact_id: String,
    pub contact_name: Option<String>,
    pub title: String,
    pub body: String,
    pub kind: String,
    pub ref_id: String,
    pub priority: f64,
    pub stub: bool,
    pub hook_point: &'static str,
}

/// Hook `next_action_cards`: cards for the first three items of the business's Next Action
/// queue, as ranked at read time (`queue` is in that order; the queue's own heuristic stands
/// where a model would rank and word them).
pub fn next_action_cards(queue: &[(&ContactProfile, &NextAction)]) -> Vec<ActionCard> {
    reached(NEXT_ACTION_CARDS, "queue");
    queue
        .iter()
        .take(3)
        .map(|&(p, a)| {
            let who = p.name.clone().unwrap_or_else(|| p.contact_id.clone());
            let title = match a.kind.as_str() {
                "invoice_overdue" => format!("Chase payment from {who}"),
                "booking_unconfirmed" => format!("Confirm {who}'s booking"),
                "task_stale" => format!("Finish the task for {who}"),
                _ => format!("Follow up with {who}"),
            };
            ActionCard {
                contact_id: p.contact_id.clone(),
                contact_name: p.name.clone(),
                title,
                body: a.message.clone(),
                kind: a.kind.clone(),
                ref_id: a.ref_id.clone(),
                priority: a.priority,
                stub: true,
                hook_point: NEXT_ACTION_CARDS,
            }
        })
        .collect()
}

/// A predicted segment membership (placeholder).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictedSegment {
    pub segment: String,
    pub probability: f64,
    pub stub: bool,
    pub hook_point: &'static str,
}

/// Hook `predictive_segments`: placeholder for a churn / likely-to-book model. The stub names
/// `likely_to_churn` for contacts whose days since the last interaction exceed twice their median
/// gap, with a fixed probability; nothing else.
pub fn predicted_segments(p: &ContactProfile) -> Vec<PredictedSegment> {
    reached(PREDICTIVE_SEGMENTS, &p.contact_id);
    match (p.gaps.days_since_last_interaction, p.gaps.median_gap_days) {
        (Some(days), Some(gap)) if gap > 0.0 && days as f64 > 2.0 * gap => {
            vec![PredictedSegment {
                segment: "likely_to_churn".into(),
                probability: 0.5,
                stub: true,
                hook_point: PREDICTIVE_SEGMENTS,
            }]
        }
        _ => Vec::new(),
    }
}
