//! The contact page (`contacts/{id}`: the profile with its recent events, notes, tasks,
//! bookings and invoices), the business timeline (`crm/timeline`), the same live as Server-Sent
//! Events (`crm/timeline/stream`), and the AI flow-feed stub (`crm/ai/feed`).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use model::ai_hooks::{self, FeedPrompt};
use model::profile::ContactProfile;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sinks::read::Activity;

use crate::activity::{self, ActivityView, BookingView, InvoiceView, NoteView, Paged, TaskView};
use crate::crm::{as_of, profiles_of};
use crate::error::AppError;
use crate::views::{rfc3339, ContactView};
use crate::AppState;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DetailQuery {
    /// Items per list (events, notes, tasks, bookings, invoices), 1–200, default 20.
    pub limit: Option<usize>,
    /// Items skipped in each list, default 0.
    pub offset: Option<usize>,
}

/// Everything the contact drawer shows.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactDetail {
    #[serde(flatten)]
    pub contact: ContactView,
    /// The contact's latest events, newest first.
    pub events: Paged<ActivityView>,
    pub notes: Paged<NoteView>,
    /// Open and overdue first by recency; done ones stay listed.
    pub tasks: Paged<TaskView>,
    pub bookings: Paged<BookingView>,
    pub invoices: Paged<InvoiceView>,
    pub as_of: Option<String>,
}

fn detail_bounds(q: &DetailQuery) -> Result<(usize, usize), AppError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=200).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit must be within 1..=200, got {limit}"
        )));
    }
    Ok((q.offset.unwrap_or(0), limit))
}

/// Longest chain of merges followed to a survivor (cycles are refused at merge time).
const MAX_MERGE_HOPS: usize = 16;

/// A visible contact's profile. A contact merged into another is a 404 with code `merged` naming
/// the survivor (the end of the chain when that one was merged too); any other missing or
/// deleted contact is a plain `not_found`.
pub(crate) async fn visible_contact(
    s: &AppState,
    business_id: &str,
    contact_id: &str,
) -> Result<Arc<ContactProfile>, AppError> {
    let not_found = || {
        AppError::NotFound(format!(
            "contact {contact_id} of business {business_id} not found"
        ))
    };
    let Some(p) = s.reader.stored(business_id, contact_id).await? else {
        return Err(not_found());
    };
    if p.visible() {
        return Ok(p);
    }
    let Some(mut into) = p.merged_into.clone() else {
        return Err(not_found());
    };
    for _ in 0..MAX_MERGE_HOPS {
        match s.reader.stored(business_id, &into).await? {
            Some(next) if next.visible() => break,
            Some(next) => match &next.merged_into {
                Some(further) if *further != *contact_id => into = further.clone(),
                _ => break,
            },
            None => break,
        }
    }
    Err(AppError::Merged {
        contact_id: contact_id.to_owned(),
        into,
    })
}

/// `contacts/{contact_id}`: the profile, its metrics and factors, and its recent records.
pub async fn contact(
    State(s): State<AppState>,
    Path((business_id, contact_id)): Path<(String, String)>,
    Query(q): Query<DetailQuery>,
) -> Result<Json<ContactDetail>, AppError> {
    let (offset, limit) = detail_bounds(&q)?;
    let p = visible_contact(&s, &business_id, &contact_id).await?;
    let events = s.reader.contact_events(&business_id, &contact_id).await?;
    let now = as_of(&s);
    let records = activity::records(&events, now);
    let known = activity::Known::of(events.iter().map(AsRef::as_ref));
    let views: Vec<ActivityView> = events
        .iter()
        .map(|a| activity::view(a, p.name.clone(), &known))
        .collect();
    Ok(Json(ContactDetail {
        contact: ContactView::from(p.as_ref()),
        events: Paged::of(&views, offset, limit),
        notes: Paged::of(&records.notes, offset, limit),
        tasks: Paged::of(&records.tasks, offset, limit),
        bookings: Paged::of(&records.bookings, offset, limit),
        invoices: Paged::of(&records.invoices, offset, limit),
        as_of: rfc3339(Some(now)),
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TimelineQuery {
    /// Events returned, 1–1000, default 50.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub business_id: String,
    pub as_of: Option<String>,
    /// Newest first by occurrence.
    pub items: Vec<ActivityView>,
    /// Where `crm/timeline/stream` continues from (`?after=` or `Last-Event-ID`).
    pub cursor: String,
}

/// What the stream or a page knows about each contact: its current name and what its events
/// say about the ids later events name ([`activity::Known`]).
#[derive(Default)]
struct Contacts {
    names: HashMap<String, Option<String>>,
    known: HashMap<String, activity::Known>,
}

impl Contacts {
    /// Learns from `items` (oldest first), then reads the events of each contact whose items
    /// still name an id it does not know (an event from before the page), once per contact.
    async fn learn(&mut self, s: &AppState, business_id: &str, items: &[Arc<Activity>]) {
        for a in items {
            if !self.names.contains_key(&a.contact_id) {
                let name = match s.reader.contact(business_id, &a.contact_id).await {
                    Ok(p) => p.and_then(|p| p.name.clone()),
                    Err(_) => None,
                };
                self.names.insert(a.contact_id.clone(), name);
            }
        }
        let mut read = std::collections::HashSet::new();
        for a in items {
            let data = a.data_value();
            let known = self.known.entry(a.contact_id.clone()).or_default();
            if known.lacks(&a.kind, &data) && read.insert(a.contact_id.clone()) {
                if let Ok(events) = s.reader.contact_events(business_id, &a.contact_id).await {
                    *known = activity::Known::of(events.iter().map(AsRef::as_ref));
                }
            }
            known.learn(&a.kind, &data);
        }
    }

    fn view(&self, a: &Activity) -> ActivityView {
        let name = self.names.get(&a.contact_id).cloned().flatten();
        let none = activity::Known::default();
        activity::view(a, name, self.known.get(&a.contact_id).unwrap_or(&none))
    }
}

/// `crm/timeline`: the latest events of the business (contacts, notes, tasks, bookings,
/// invoices and payments), newest first.
pub async fn timeline(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
    Query(q): Query<TimelineQuery>,
) -> Result<Json<Timeline>, AppError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=sinks::read::BUSINESS_RECENT).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit must be within 1..={}, got {limit}",
            sinks::read::BUSINESS_RECENT
        )));
    }
    // The cursor first: an event landing in between is sent twice (clients dedupe by event id),
    // never missed.
    let cursor = s.reader.timeline_since(&business_id, None, 1).await?.cursor;
    let Some(items) = s.reader.timeline(&business_id, limit).await? else {
        return Err(AppError::NotFound(format!(
            "business {business_id} not found"
        )));
    };
    // One read of the business for every name, rather than one read per contact.
    let mut contacts = Contacts {
        names: profiles_of(&s, &business_id)
            .await?
            .iter()
            .map(|p| (p.contact_id.clone(), p.name.clone()))
            .collect(),
        known: HashMap::new(),
    };
    let oldest_first: Vec<Arc<Activity>> = items.iter().rev().cloned().collect();
    contacts.learn(&s, &business_id, &oldest_first).await;
    Ok(Json(Timeline {
        business_id,
        as_of: rfc3339(Some(as_of(&s))),
        items: items.iter().map(|a| contacts.view(a)).collect(),
        cursor,
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct StreamQuery {
    /// Continue after this cursor (from `crm/timeline` or a previous event id); default: now.
    pub after: Option<String>,
}

/// How often the stream looks for new events.
const POLL: Duration = Duration::from_millis(200);
/// Events read per poll.
const POLL_BATCH: usize = 200;

struct Feed {
    s: AppState,
    business_id: String,
    cursor: String,
    pending: VecDeque<SseEvent>,
    contacts: Contacts,
}

impl Feed {
    async fn poll(&mut self) {
        match self
            .s
            .reader
            .timeline_since(&self.business_id, Some(&self.cursor), POLL_BATCH)
            .await
        {
            Ok(since) => {
                let (s, business_id) = (self.s.clone(), self.business_id.clone());
                self.contacts.learn(&s, &business_id, &since.items).await;
                let n = since.items.len();
                for (i, a) in since.items.iter().enumerate() {
                    let mut e = SseEvent::default().event("activity");
                    e = match e.json_data(self.contacts.view(a)) {
                        Ok(e) => e,
                        Err(err) => {
                            tracing::warn!(cause = %err, "activity not serialisable");
                            continue;
                        }
                    };
                    if i + 1 == n {
                        e = e.id(since.cursor.clone());
                    }
                    self.pending.push_back(e);
                }
                self.cursor = since.cursor;
            }
            Err(err) => {
                tracing::warn!(cause = %err, business_id = %self.business_id, "timeline stream read failed; retrying")
            }
        }
    }
}

/// `crm/timeline/stream`: new events as Server-Sent Events (`event: activity`, data: one
/// timeline item; the id of the last of each batch is the cursor to resume from, so a
/// reconnecting `EventSource` continues where it stopped). Ends when the server shuts down.
pub async fn stream(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, AppError> {
    if s.reader.timeline(&business_id, 1).await?.is_none() {
        return Err(AppError::NotFound(format!(
            "business {business_id} not found"
        )));
    }
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(q.after);
    // Validates a client's cursor (400 if foreign) and yields the cursor of "now" otherwise.
    let start = s
        .reader
        .timeline_since(&business_id, resume.as_deref(), 0)
        .await?;
    let cursor = resume.unwrap_or(start.cursor);
    let ready = SseEvent::default()
        .event("ready")
        .id(cursor.clone())
        .data("{}");
    let feed = Feed {
        s,
        business_id,
        cursor,
        pending: VecDeque::from([ready]),
        contacts: Contacts::default(),
    };
    let events = futures::stream::unfold(feed, |mut f| async move {
        loop {
            if let Some(e) = f.pending.pop_front() {
                return Some((Ok(e), f));
            }
            tokio::select! {
                _ = f.s.shutdown.cancelled() => return None,
                _ = tokio::time::sleep(POLL) => f.poll().await,
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedItem {
    pub event_id: String,
    pub contact_id: String,
    pub occurred_at: Option<String>,
    #[serde(flatten)]
    pub prompt: FeedPrompt,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedView {
    pub business_id: String,
    pub stub: bool,
    pub hook_point: String,
    pub items: Vec<FeedItem>,
}

/// `crm/ai/feed`: flow-feed prompts for the latest events worth acting on (AI stub).
pub async fn ai_feed(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
) -> Result<Json<FeedView>, AppError> {
    profiles_of(&s, &business_id).await?;
    let items = s
        .reader
        .timeline(&business_id, 100)
        .await?
        .unwrap_or_default();
    let prompts = items
        .iter()
        .filter_map(|a| {
            let payload = model::event::Payload::from_parts(&a.kind, &a.data).ok()?;
            let event = model::event::Event {
                schema_version: model::event::SCHEMA_VERSION,
                event_id: a.event_id.clone(),
                business_id: a.business_id.clone(),
                contact_id: a.contact_id.clone(),
                occurred_at: chrono::DateTime::from_timestamp_millis(a.occurred_at)?,
                source: a.source.clone(),
                payload,
            };
            let prompt = ai_hooks::feed_prompt(&event)?;
            Some(FeedItem {
                event_id: a.event_id.clone(),
                contact_id: a.contact_id.clone(),
                occurred_at: rfc3339(Some(a.occurred_at)),
                prompt,
            })
        })
        .take(10)
        .collect();
    Ok(Json(FeedView {
        business_id,
        stub: true,
        hook_point: ai_hooks::FLOW_FEED.into(),
        items: prompts,
    }))
}
