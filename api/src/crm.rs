//! The per-business Cockpit routes (`/v1/businesses/{id}/crm/...`): spotlights, the service
//! view, integration cues, the ranked Next Action queue, segment sizes, and the AI stub cards.
//! Each reads the business's visible profiles and runs `business::views` at the
//! instant the results are complete up to.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::business::{self, BusinessViews, Cues};
use crate::segments;
use axum::extract::{Path, Query, State};
use axum::Json;
use model::ai_hooks::{self, ActionCard, PredictedSegment};
use model::profile::{ContactProfile, NextAction};
use model::rules::BusinessRules;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::views::{rfc3339, CalendarView, ContactView, Items};
use crate::AppState;

/// The instant results are complete up to (the engine clock of the last batch), else now.
pub(crate) fn as_of(s: &AppState) -> i64 {
    match s.status.complete_up_to_ms.load(Ordering::Relaxed) {
        0 => chrono::Utc::now().timestamp_millis(),
        ms => ms,
    }
}

/// The visible profiles of a business, or a 404 naming it.
/// Served from the view cache while the store is unchanged (see [`crate::cache`]).
pub(crate) async fn profiles_of(
    s: &AppState,
    business_id: &str,
) -> Result<Arc<Vec<Arc<ContactProfile>>>, AppError> {
    s.views
        .get(business_id, "profiles", s.reader.generation(), || async {
            s.reader
                .business(business_id)
                .await?
                .ok_or_else(|| AppError::NotFound(format!("business {business_id} not found")))
        })
        .await
}

/// One page of `contacts` as contact views, serialized.
fn page_of<'a>(
    contacts: impl Iterator<Item = &'a Arc<ContactProfile>>,
    offset: usize,
    limit: usize,
) -> Result<Items, AppError> {
    let views: Vec<ContactView> = contacts
        .skip(offset)
        .take(limit)
        .map(|p| ContactView::from(p.as_ref()))
        .collect();
    Items::of(&views).map_err(|e| AppError::Internal(format!("contact page: {e}")))
}

/// The business's profiles with the `sql/business/` views over them, the instant they were
/// computed at and an index by contact id (so a page of cards does not rebuild a map of every
/// profile per request); cached like [`profiles_of`].
struct Loaded {
    profiles: Arc<Vec<Arc<ContactProfile>>>,
    views: BusinessViews,
    now: i64,
    by_id: HashMap<String, usize>,
}

impl Loaded {
    fn get(&self, contact_id: &str) -> Option<&Arc<ContactProfile>> {
        self.by_id.get(contact_id).map(|&i| &self.profiles[i])
    }
}

async fn load(s: &AppState, business_id: &str) -> Result<Arc<Loaded>, AppError> {
    s.views
        .get(business_id, "views", s.reader.generation(), || async {
            let profiles = profiles_of(s, business_id).await?;
            let now = as_of(s);
            let calendar = s.rules.for_business(business_id).calendar;
            let views = business::views(&profiles, now, &calendar)
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?;
            let by_id = profiles
                .iter()
                .enumerate()
                .map(|(i, p)| (p.contact_id.clone(), i))
                .collect();
            Ok(Loaded {
                profiles,
                views,
                now,
                by_id,
            })
        })
        .await
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub contact_id: String,
    pub name: Option<String>,
    pub photo_url: Option<String>,
    pub lead_score: i64,
    pub unpaid_balance: i64,
    pub status: String,
    pub segments: Vec<String>,
    /// call, book, send_reminder or tag.
    pub action: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spotlights {
    pub lead_score: Vec<Card>,
    pub recent_bookings: Vec<Card>,
    pub revenue: Vec<Card>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HighlightsView {
    pub business_id: String,
    pub as_of: Option<String>,
    /// The calendar "this week" (the recent-bookings spotlight) is counted in.
    pub calendar: CalendarView,
    pub spotlights: Spotlights,
}

pub async fn highlights(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
) -> Result<Json<HighlightsView>, AppError> {
    let loaded = load(&s, &business_id).await?;
    let (v, now) = (&loaded.views, loaded.now);
    let cards = |name: &str| -> Vec<Card> {
        v.spotlights
            .iter()
            .filter(|r| r.spotlight == name)
            .filter_map(|r| {
                let p = loaded.get(&r.contact_id)?;
                Some(Card {
                    contact_id: p.contact_id.clone(),
                    name: p.name.clone(),
                    photo_url: p.photo_url.clone(),
                    lead_score: p.lead_score,
                    unpaid_balance: p.balance.outstanding_balance_cents,
                    status: p.status.clone(),
                    segments: p.segment_names().map(str::to_owned).collect(),
                    action: r.action.clone(),
                })
            })
            .collect()
    };
    Ok(Json(HighlightsView {
        calendar: (&s.rules.for_business(&business_id).calendar).into(),
        business_id,
        as_of: rfc3339(Some(now)),
        spotlights: Spotlights {
            lead_score: cards("lead_score"),
            recent_bookings: cards("recent_bookings"),
            revenue: cards("revenue"),
        },
    }))
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fan {
    pub contact_id: String,
    pub name: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceItem {
    pub service_id: String,
    pub name: Option<String>,
    pub bookings: i64,
    pub completed: i64,
    /// Cents.
    pub revenue: i64,
    pub revenue_rank: u64,
    pub volume_rank: u64,
    pub top_fans: Vec<Fan>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicesView {
    pub business_id: String,
    pub as_of: Option<String>,
    /// Ranked by revenue, then volume.
    pub services: Vec<ServiceItem>,
}

pub async fn services(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
) -> Result<Json<ServicesView>, AppError> {
    let loaded = load(&s, &business_id).await?;
    let (v, now) = (&loaded.views, loaded.now);
    let items: Vec<ServiceItem> = v
        .services
        .iter()
        .map(|sv| ServiceItem {
            service_id: sv.service_id.clone(),
            name: sv.service_name.clone(),
            bookings: sv.bookings,
            completed: sv.completed,
            revenue: sv.revenue_cents,
            revenue_rank: sv.revenue_rank,
            volume_rank: sv.volume_rank,
            top_fans: sv
                .top_fans()
                .into_iter()
                .map(|id| Fan {
                    contact_id: id.to_owned(),
                    name: loaded.get(id).and_then(|p| p.name.clone()),
                })
                .collect(),
        })
        .collect();
    Ok(Json(ServicesView {
        business_id,
        as_of: rfc3339(Some(now)),
        services: items,
    }))
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CuesView {
    pub paid_invoices: i64,
    /// Cents.
    pub paid_amount: i64,
    pub bookings_pending_confirmation: i64,
    pub overdue_invoices: i64,
    pub overdue_tasks: i64,
    pub promotions_suggested: i64,
}

impl From<&Cues> for CuesView {
    fn from(c: &Cues) -> Self {
        Self {
            paid_invoices: c.paid_invoices,
            paid_amount: c.paid_cents,
            bookings_pending_confirmation: c.bookings_pending_confirmation,
            overdue_invoices: c.overdue_invoices,
            overdue_tasks: c.overdue_tasks,
            promotions_suggested: c.promotions_suggested,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CuesResponse {
    pub business_id: String,
    pub as_of: Option<String>,
    pub cues: CuesView,
}

pub async fn cues(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
) -> Result<Json<CuesResponse>, AppError> {
    let loaded = load(&s, &business_id).await?;
    let (v, now) = (&loaded.views, loaded.now);
    Ok(Json(CuesResponse {
        business_id,
        as_of: rfc3339(Some(now)),
        cues: CuesView::from(&v.cues),
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct Page {
    /// Items per page, 1–500, default 50.
    pub limit: Option<usize>,
    /// Items skipped, default 0.
    pub offset: Option<usize>,
}

impl Page {
    fn bounds(&self) -> Result<(usize, usize), AppError> {
        let limit = self.limit.unwrap_or(50);
        if limit == 0 || limit > 500 {
            return Err(AppError::BadRequest(format!(
                "limit must be within 1..=500, got {limit}"
            )));
        }
        Ok((self.offset.unwrap_or(0), limit))
    }
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    pub contact_id: String,
    pub contact_name: Option<String>,
    pub kind: String,
    pub ref_id: String,
    pub since: Option<String>,
    pub age_days: i64,
    pub priority: f64,
    pub message: String,
    /// The context action that settles it: send_reminder, confirm_booking, mark_task_done or
    /// call (`crm/actions`).
    pub action: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueResponse {
    pub business_id: String,
    pub as_of: Option<String>,
    /// The calendar `ageDays` counts local days in.
    pub calendar: CalendarView,
    /// Items of the kind asked for (all kinds without `kind`).
    pub total: usize,
    pub offset: usize,
    /// Items of each kind, whatever `kind` asked for (the Cockpit's filter counts).
    pub kinds: BTreeMap<String, usize>,
    /// Highest priority first.
    pub items: Vec<QueueView>,
}

/// The queue's kinds (the branches of sql/metrics/next_actions.sql), each with the context
/// action that settles it.
pub const QUEUE_ACTIONS: &[(&str, &str)] = &[
    ("invoice_overdue", "send_reminder"),
    ("booking_unconfirmed", "confirm_booking"),
    ("task_stale", "mark_task_done"),
    ("lead_stale", "call"),
];

#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueueQuery {
    /// Items per page, 1–500, default 50.
    pub limit: Option<usize>,
    /// Items skipped, default 0.
    pub offset: Option<usize>,
    /// Only items of this kind: invoice_overdue, booking_unconfirmed, task_stale or lead_stale.
    pub kind: Option<String>,
}

pub async fn next_actions(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
    Query(q): Query<QueueQuery>,
) -> Result<Json<QueueResponse>, AppError> {
    let (offset, limit) = Page {
        limit: q.limit,
        offset: q.offset,
    }
    .bounds()?;
    if let Some(kind) = &q.kind {
        if QUEUE_ACTIONS.iter().all(|(k, _)| k != kind) {
            let kinds: Vec<&str> = QUEUE_ACTIONS.iter().map(|(k, _)| *k).collect();
            return Err(AppError::BadRequest(format!(
                "kind {kind:?} is not one of {}",
                kinds.join(", ")
            )));
        }
    }
    let loaded = load(&s, &business_id).await?;
    let (v, now) = (&loaded.views, loaded.now);
    let mut kinds: BTreeMap<String, usize> = QUEUE_ACTIONS
        .iter()
        .map(|(k, _)| ((*k).to_owned(), 0))
        .collect();
    for item in &v.queue {
        *kinds.entry(item.kind.clone()).or_default() += 1;
    }
    let wanted = |kind: &str| q.kind.as_deref().is_none_or(|k| k == kind);
    let items: Vec<QueueView> = v
        .queue
        .iter()
        .filter(|item| wanted(&item.kind))
        .skip(offset)
        .take(limit)
        .map(|item| QueueView {
            contact_id: item.contact_id.clone(),
            contact_name: loaded.get(&item.contact_id).and_then(|p| p.name.clone()),
            kind: item.kind.clone(),
            ref_id: item.ref_id.clone(),
            since: rfc3339(Some(item.since)),
            age_days: item.age_days,
            priority: item.priority,
            message: item.message.clone(),
            action: QUEUE_ACTIONS
                .iter()
                .find(|(k, _)| *k == item.kind)
                .map_or("call", |(_, a)| a)
                .to_owned(),
        })
        .collect();
    Ok(Json(QueueResponse {
        calendar: (&s.rules.for_business(&business_id).calendar).into(),
        business_id,
        as_of: rfc3339(Some(now)),
        total: v.queue.iter().filter(|item| wanted(&item.kind)).count(),
        offset,
        kinds,
        items,
    }))
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentSize {
    pub segment: String,
    pub size: usize,
    pub definition: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SegmentsView {
    pub business_id: String,
    pub as_of: Option<String>,
    pub segments: Vec<SegmentSize>,
}

/// Every segment the business has or can have (built-ins first by name, then tags), with its
/// size and its definition under the rules in force for the business.
pub(crate) fn segment_sizes(
    profiles: &[Arc<ContactProfile>],
    rules: &BusinessRules,
) -> Vec<SegmentSize> {
    let definitions = segments::definitions(rules);
    let mut sizes: BTreeMap<String, usize> =
        definitions.iter().map(|(n, _)| (n.clone(), 0)).collect();
    for p in profiles {
        for m in p.segment_names() {
            *sizes.entry(m.to_owned()).or_default() += 1;
        }
    }
    sizes
        .into_iter()
        .map(|(name, size)| {
            let definition = definitions
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| segments::tag_definition(name.trim_start_matches("tag:")));
            SegmentSize {
                segment: name,
                size,
                definition,
            }
        })
        .collect()
}

pub async fn segments(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
) -> Result<Json<SegmentsView>, AppError> {
    let sizes = s
        .views
        .get(&business_id, "segments", s.reader.generation(), || async {
            let profiles = profiles_of(&s, &business_id).await?;
            Ok::<_, AppError>(segment_sizes(&profiles, s.rules.for_business(&business_id)))
        })
        .await?;
    Ok(Json(SegmentsView {
        business_id,
        as_of: rfc3339(Some(as_of(&s))),
        segments: sizes.as_ref().clone(),
    }))
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AiCards {
    pub business_id: String,
    pub stub: bool,
    pub hook_point: String,
    pub cards: Vec<ActionCard>,
}

pub async fn ai_next_actions(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
) -> Result<Json<AiCards>, AppError> {
    let loaded = load(&s, &business_id).await?;
    // The queue as `crm/next-actions` ranks it now (ages and priorities at read time, not as
    // stored with each profile's last evaluation).
    let ranked: Vec<(&ContactProfile, NextAction)> = loaded
        .views
        .queue
        .iter()
        .filter_map(|q| {
            let p = loaded.get(&q.contact_id)?;
            Some((
                p.as_ref(),
                NextAction {
                    kind: q.kind.clone(),
                    ref_id: q.ref_id.clone(),
                    since: q.since,
                    age_days: q.age_days,
                    priority: q.priority,
                    message: q.message.clone(),
                },
            ))
        })
        .take(3)
        .collect();
    let queue: Vec<_> = ranked.iter().map(|(p, a)| (*p, a)).collect();
    let cards: Vec<ActionCard> = ai_hooks::next_action_cards(&queue);
    Ok(Json(AiCards {
        business_id,
        stub: true,
        hook_point: ai_hooks::NEXT_ACTION_CARDS.into(),
        cards,
    }))
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictedView {
    pub contact_id: String,
    pub stub: bool,
    pub hook_point: String,
    pub segments: Vec<PredictedSegment>,
}

pub async fn ai_predicted_segments(
    State(s): State<AppState>,
    Path((business_id, contact_id)): Path<(String, String)>,
) -> Result<Json<PredictedView>, AppError> {
    let p = crate::timeline::visible_contact(&s, &business_id, &contact_id).await?;
    let predicted: Vec<PredictedSegment> = ai_hooks::predicted_segments(&p);
    Ok(Json(PredictedView {
        contact_id,
        stub: true,
        hook_point: ai_hooks::PREDICTIVE_SEGMENTS.into(),
        segments: predicted,
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchQuery {
    /// Free text, `#tag:x`, `#segment:x` and `/metric<op>number` tokens, ANDed.
    #[serde(default)]
    pub q: String,
    /// Items per page, 1–500, default 50.
    pub limit: Option<usize>,
    /// Items skipped, default 0.
    pub offset: Option<usize>,
}

/// A page of contacts.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactsPage {
    pub business_id: String,
    pub as_of: Option<String>,
    /// The query (search) or segment (segment members) this page answers.
    pub query: String,
    pub total: usize,
    pub offset: usize,
    #[schemars(with = "Vec<ContactView>")]
    pub items: Items,
}

/// `crm/search?q=`: contacts matching every token (see `search`), best lead score first (ties:
/// contact id), paginated. A malformed token is a 400 naming it.
pub async fn search(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<ContactsPage>, AppError> {
    let terms = crate::search::parse(&query.q).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let (offset, limit) = Page {
        limit: query.limit,
        offset: query.offset,
    }
    .bounds()?;
    // Keyed by the parsed terms, so spelling variants of one query share an entry; the page
    // is cached serialized, as most of a request's work was turning 20 profiles into JSON.
    let key = format!("search:{terms:?}");
    let page_key = format!("search:{terms:?}:{offset}:{limit}");
    let generation = s.reader.generation();
    let page = s
        .views
        .get(&business_id, &page_key, generation, || async {
            let hits = s
                .views
                .get(&business_id, &key, generation, || async {
                    let profiles = profiles_of(&s, &business_id).await?;
                    let mut hits: Vec<Arc<ContactProfile>> = profiles
                        .iter()
                        .filter(|p| crate::search::matches(&terms, p))
                        .cloned()
                        .collect();
                    hits.sort_by(|a, b| {
                        b.lead_score
                            .cmp(&a.lead_score)
                            .then_with(|| a.contact_id.cmp(&b.contact_id))
                    });
                    Ok::<_, AppError>(hits)
                })
                .await?;
            // Only the page is touched: a broad query (a whole segment) has tens of thousands
            // of hits.
            Ok::<_, AppError>((hits.len(), page_of(hits.iter(), offset, limit)?))
        })
        .await?;
    let (total, items) = (page.0, page.1.clone());
    Ok(Json(ContactsPage {
        business_id,
        as_of: rfc3339(Some(as_of(&s))),
        query: query.q,
        total,
        offset,
        items,
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct MembersQuery {
    /// leadScore (default), outstandingBalance, lastInteractionAt or name.
    pub sort: Option<String>,
    /// desc (default) or asc.
    pub order: Option<String>,
    /// Items per page, 1–500, default 50.
    pub limit: Option<usize>,
    /// Items skipped, default 0.
    pub offset: Option<usize>,
}

/// `crm/segments/{segment}/contacts`: the members of one segment, sorted by `sort` (leadScore,
/// outstandingBalance, lastInteractionAt or name; default leadScore) in `order` (asc or desc;
/// default desc), ties by contact id, paginated.
pub async fn segment_members(
    State(s): State<AppState>,
    Path((business_id, segment)): Path<(String, String)>,
    Query(query): Query<MembersQuery>,
) -> Result<Json<ContactsPage>, AppError> {
    let (offset, limit) = Page {
        limit: query.limit,
        offset: query.offset,
    }
    .bounds()?;
    let sort = query.sort.as_deref().unwrap_or("leadScore");
    let key: fn(&ContactProfile) -> (i64, String) = match sort {
        "leadScore" => |p| (p.lead_score, String::new()),
        "outstandingBalance" => |p| (p.balance.outstanding_balance_cents, String::new()),
        "lastInteractionAt" => |p| (p.last_interaction_at.unwrap_or(i64::MIN), String::new()),
        "name" => |p| (0, p.name.clone().unwrap_or_default().to_lowercase()),
        other => {
            return Err(AppError::BadRequest(format!(
            "sort {other:?} is not one of leadScore, outstandingBalance, lastInteractionAt, name"
        )))
        }
    };
    let descending = match query.order.as_deref().unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        other => {
            return Err(AppError::BadRequest(format!(
                "order {other:?} is not asc or desc"
            )))
        }
    };
    let profiles = profiles_of(&s, &business_id).await?;
    let mut members: Vec<&Arc<ContactProfile>> = profiles
        .iter()
        .filter(|p| p.segment_names().any(|m| m == segment))
        .collect();
    members.sort_by(|a, b| {
        let o = key(a).cmp(&key(b));
        let o = if descending { o.reverse() } else { o };
        o.then_with(|| a.contact_id.cmp(&b.contact_id))
    });
    let items = page_of(members.iter().copied(), offset, limit)?;
    Ok(Json(ContactsPage {
        business_id,
        as_of: rfc3339(Some(as_of(&s))),
        query: segment,
        total: members.len(),
        offset,
        items,
    }))
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SuggestQuery {
    /// The query typed so far; the last token is completed.
    #[serde(default)]
    pub q: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suggestions {
    pub business_id: String,
    pub query: String,
    pub items: Vec<crate::search::Suggestion>,
}

/// `crm/search/suggest?q=`: completions of the last token: commands (`/leadScore>`), segment
/// names (`#segment:silver`), tags (`#tag:vip`) and contact names.
pub async fn suggest(
    State(s): State<AppState>,
    Path(business_id): Path<String>,
    Query(query): Query<SuggestQuery>,
) -> Result<Json<Suggestions>, AppError> {
    let profiles = profiles_of(&s, &business_id).await?;
    let segments: Vec<String> = segment_sizes(&profiles, s.rules.for_business(&business_id))
        .into_iter()
        .map(|sz| sz.segment)
        .filter(|n| !n.starts_with("tag:"))
        .collect();
    let items = crate::search::suggest(&query.q, &profiles, &segments, 8);
    Ok(Json(Suggestions {
        business_id,
        query: query.q,
        items,
    }))
}

#[cfg(test)]
mod tests {
    use super::QUEUE_ACTIONS;

    /// Every branch of the queue's SQL (`SELECT x.cid, '<kind>'`) has its context action here,
    /// and nothing else does.
    #[test]
    fn every_queue_kind_has_a_context_action() {
        let sql = include_str!("../../sql/metrics/next_actions.sql");
        let kinds: Vec<&str> = sql
            .lines()
            .filter_map(|l| l.trim().strip_prefix("SELECT "))
            .filter_map(|l| l.split_once(".cid, '"))
            .filter_map(|(_, rest)| rest.split_once('\''))
            .map(|(kind, _)| kind)
            .collect();
        let ours: Vec<&str> = QUEUE_ACTIONS.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, ours);
    }
}
