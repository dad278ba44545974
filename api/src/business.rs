//! Per-business views over the current profiles of one business: the service view with its top
//! fans, the three highlight spotlights, the integration cues and the ranked Next Action queue.
//! The definitions are the SQL files in `sql/business/`, run with DataFusion over tables built
//! from the profiles, so both stores (and any API replica) answer them the same way.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::FieldRef;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};
use serde_arrow::schema::SchemaLike;

use model::calendar::Calendar;
use model::clock::Ms;
use model::profile::ContactProfile;
use serde_arrow::schema::TracingOptions;

pub const SERVICES_SQL: &str = include_str!("../../sql/business/services.sql");
pub const HIGHLIGHTS_SQL: &str = include_str!("../../sql/business/highlights.sql");
pub const CUES_SQL: &str = include_str!("../../sql/business/cues.sql");
pub const QUEUE_SQL: &str = include_str!("../../sql/business/next_actions.sql");

/// A business view query that failed: which one, and why.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("business view {query} failed: {source}")]
    Query {
        query: &'static str,
        source: datafusion::error::DataFusionError,
    },
    #[error("business view {query}: rows of an unexpected shape: {source}")]
    Shape {
        query: &'static str,
        source: serde_arrow::Error,
    },
}

/// Arrow shapes the views' input tables are built with (plain Utf8 and List, as DataFusion's
/// SQL literals are).
fn options() -> TracingOptions {
    TracingOptions::default()
        .strings_as_large_utf8(false)
        .sequence_as_large_list(false)
}

#[derive(Serialize, Deserialize)]
struct ContactRow {
    contact_id: String,
    status: String,
    lead_score: i64,
    outstanding_balance_cents: i64,
    overdue_invoices: i64,
    overdue_tasks: i64,
    recent_bookings: i64,
    revenue_cents: i64,
    recent_paid_invoices: i64,
    recent_paid_cents: i64,
    pending_confirmations: i64,
    promotion_suggested: bool,
}

#[derive(Serialize, Deserialize)]
struct ServiceInput {
    contact_id: String,
    service_id: String,
    service_name: Option<String>,
    bookings: i64,
    completed: i64,
    revenue_cents: i64,
}

#[derive(Serialize, Deserialize)]
struct QueueInput {
    contact_id: String,
    kind: String,
    ref_id: String,
    since: Ms,
    /// The local day (the business's calendar) `since` falls on.
    since_day: i64,
    message: String,
    lead_score: i64,
}

#[derive(Serialize, Deserialize)]
struct Params {
    now: Ms,
    /// Today's local day in the business's calendar.
    today: i64,
}

/// One service of the business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceView {
    pub service_id: String,
    pub service_name: Option<String>,
    pub bookings: i64,
    pub completed: i64,
    pub revenue_cents: i64,
    pub revenue_rank: u64,
    pub volume_rank: u64,
    pub fan_1: Option<String>,
    pub fan_2: Option<String>,
    pub fan_3: Option<String>,
}

impl ServiceView {
    pub fn top_fans(&self) -> Vec<&str> {
        [&self.fan_1, &self.fan_2, &self.fan_3]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect()
    }
}

/// One highlight card's place: which spotlight, its rank, the contact and its call to action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpotlightRow {
    pub spotlight: String,
    pub rank: i64,
    pub contact_id: String,
    pub action: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cues {
    pub paid_invoices: i64,
    pub paid_cents: i64,
    pub bookings_pending_confirmation: i64,
    pub overdue_invoices: i64,
    pub overdue_tasks: i64,
    pub promotions_suggested: i64,
}

/// One ranked item of the Next Action queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    pub contact_id: String,
    pub kind: String,
    pub ref_id: String,
    pub since: Ms,
    pub age_days: i64,
    pub priority: f64,
    pub message: String,
}

/// Everything per business.
#[derive(Debug, Clone, Default)]
pub struct BusinessViews {
    pub services: Vec<ServiceView>,
    pub spotlights: Vec<SpotlightRow>,
    pub cues: Cues,
    pub queue: Vec<QueueItem>,
}

fn table<T: Serialize + for<'de> Deserialize<'de>>(
    ctx: &SessionContext,
    name: &'static str,
    rows: &[T],
) -> Result<(), ViewError> {
    let shape = |source| ViewError::Shape {
        query: name,
        source,
    };
    let fields = Vec::<FieldRef>::from_type::<T>(options()).map_err(shape)?;
    let batch = serde_arrow::to_record_batch(&fields, &rows).map_err(shape)?;
    let q = |source| ViewError::Query {
        query: name,
        source,
    };
    let t = MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(q)?;
    ctx.register_table(name, Arc::new(t)).map_err(q)?;
    Ok(())
}

async fn query<T: serde::de::DeserializeOwned>(
    ctx: &SessionContext,
    name: &'static str,
    sql: &str,
) -> Result<Vec<T>, ViewError> {
    let q = |source| ViewError::Query {
        query: name,
        source,
    };
    let batches: Vec<RecordBatch> = ctx.sql(sql).await.map_err(q)?.collect().await.map_err(q)?;
    let mut out = Vec::new();
    for b in &batches {
        out.extend(
            serde_arrow::from_record_batch::<Vec<T>>(b).map_err(|source| ViewError::Shape {
                query: name,
                source,
            })?,
        );
    }
    Ok(out)
}

/// The views of one business from its visible profiles, at `now`, counting days in the
/// business's calendar.
pub async fn views(
    profiles: &[Arc<ContactProfile>],
    now: Ms,
    calendar: &Calendar,
) -> Result<BusinessViews, ViewError> {
    let visible: Vec<&ContactProfile> = profiles
        .iter()
        .map(Arc::as_ref)
        .filter(|p| p.visible())
        .collect();
    let ctx = SessionContext::new();
    let contacts: Vec<ContactRow> = visible
        .iter()
        .map(|p| ContactRow {
            contact_id: p.contact_id.clone(),
            status: p.status.clone(),
            lead_score: p.lead_score,
            outstanding_balance_cents: p.balance.outstanding_balance_cents,
            overdue_invoices: p.balance.overdue_invoices,
            overdue_tasks: p
                .factors
                .iter()
                .find(|f| f.factor == "tasks_overdue")
                .map_or(0, |f| f.count),
            recent_bookings: p.activity.recent_bookings,
            revenue_cents: p.activity.revenue_cents,
            recent_paid_invoices: p.activity.recent_paid_invoices,
            recent_paid_cents: p.activity.recent_paid_cents,
            pending_confirmations: p.activity.pending_confirmations,
            promotion_suggested: p.promotion_suggested_at.is_some(),
        })
        .collect();
    let services: Vec<ServiceInput> = visible
        .iter()
        .flat_map(|p| {
            p.services.iter().map(|s| ServiceInput {
                contact_id: p.contact_id.clone(),
                service_id: s.service_id.clone(),
                service_name: s.service_name.clone(),
                bookings: s.bookings,
                completed: s.completed,
                revenue_cents: s.revenue_cents,
            })
        })
        .collect();
    let queue: Vec<QueueInput> = visible
        .iter()
        .flat_map(|p| {
            p.next_actions.iter().map(|a| QueueInput {
                contact_id: p.contact_id.clone(),
                kind: a.kind.clone(),
                ref_id: a.ref_id.clone(),
                since: a.since,
                since_day: calendar.local_day(a.since),
                message: a.message.clone(),
                lead_score: p.lead_score,
            })
        })
        .collect();
    table(&ctx, "contacts", &contacts)?;
    table(&ctx, "services", &services)?;
    table(&ctx, "queue", &queue)?;
    table(
        &ctx,
        "params",
        &[Params {
            now,
            today: calendar.local_day(now),
        }],
    )?;
    let cues: Vec<Cues> = query(&ctx, "business cues", CUES_SQL).await?;
    Ok(BusinessViews {
        services: query(&ctx, "business services", SERVICES_SQL).await?,
        spotlights: query(&ctx, "business highlights", HIGHLIGHTS_SQL).await?,
        cues: cues.into_iter().next().unwrap_or_default(),
        queue: query(&ctx, "business next actions", QUEUE_SQL).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::clock::DAY_MS;
    use model::profile::{NextAction, ServiceStat};

    fn p(id: &str, score: i64, status: &str) -> ContactProfile {
        ContactProfile {
            business_id: "b".into(),
            contact_id: id.into(),
            status: status.into(),
            lead_score: score,
            ..Default::default()
        }
    }

    fn svc(id: &str, bookings: i64, revenue: i64) -> ServiceStat {
        ServiceStat {
            service_id: id.into(),
            service_name: Some(id.to_uppercase()),
            bookings,
            completed: bookings / 2,
            revenue_cents: revenue,
        }
    }

    #[tokio::test]
    async fn services_rank_by_revenue_and_volume_with_top_fans() {
        let mut a = p("a", 80, "CLIENT");
        a.services = vec![svc("cut", 3, 1000), svc("color", 1, 9000)];
        a.balance.overdue_invoices = 1;
        a.activity.recent_bookings = 2;
        a.activity.revenue_cents = 10_000;
        let mut b = p("b", 50, "LEAD");
        b.services = vec![svc("cut", 3, 2000)];
        b.activity.recent_bookings = 1;
        let mut c = p("c", 50, "CLIENT");
        c.services = vec![svc("cut", 1, 0)];
        c.next_actions = vec![NextAction {
            kind: "task_stale".into(),
            ref_id: "t".into(),
            since: 0,
            age_days: 0,
            priority: 0.0,
            message: "m".into(),
        }];
        let mut gone = p("d", 99, "CLIENT");
        gone.deleted = true;
        gone.services = vec![svc("cut", 9, 9)];
        let all: Vec<Arc<ContactProfile>> = [a, b, c, gone].into_iter().map(Arc::new).collect();
        let v = views(&all, 3 * DAY_MS, &Calendar::default()).await.unwrap();

        let cut = v.services.iter().find(|s| s.service_id == "cut").unwrap();
        assert_eq!((cut.bookings, cut.revenue_cents), (7, 3000), "d is deleted");
        // Ties on bookings (a and b: 3) break by revenue: b first.
        assert_eq!(cut.top_fans(), ["b", "a", "c"]);
        let color = v.services.iter().find(|s| s.service_id == "color").unwrap();
        assert_eq!((color.revenue_rank, color.volume_rank), (1, 2));
        assert_eq!((cut.revenue_rank, cut.volume_rank), (2, 1));

        let spot = |name: &str| -> Vec<(String, String)> {
            v.spotlights
                .iter()
                .filter(|s| s.spotlight == name)
                .map(|s| (s.contact_id.clone(), s.action.clone()))
                .collect()
        };
        assert_eq!(
            spot("lead_score"),
            [
                ("a".into(), "send_reminder".into()),
                ("b".into(), "call".into()),
                ("c".into(), "book".into())
            ]
        );
        assert_eq!(spot("recent_bookings").len(), 2);
        assert_eq!(spot("revenue"), [("a".into(), "send_reminder".into())]);
        assert_eq!(v.cues.overdue_invoices, 1);
        assert_eq!(v.queue.len(), 1);
        assert_eq!((v.queue[0].age_days, v.queue[0].priority), (3, 4.5));
    }
}
