//! A contact's lead score over time (`contacts/{id}/score-history`): every stored change of
//! the score, with the factors behind each new score and the ones that moved it. The drawer's
//! chart is drawn from it.

use axum::extract::{Path, Query, State};
use axum::Json;
use model::profile::Factor;
use model::sink::ScoreChange;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sinks::read::SCORE_HISTORY_MAX;

use crate::error::AppError;
use crate::timeline::visible_contact;
use crate::views::{rfc3339, FactorView};
use crate::AppState;

/// Changes returned when the query names no limit.
const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct HistoryQuery {
    /// The latest changes returned, 1–500, default 100.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScoreHistory {
    pub business_id: String,
    pub contact_id: String,
    /// The contact's current lead score.
    pub lead_score: i64,
    /// Oldest first.
    pub points: Vec<ScorePoint>,
}

/// One change of the lead score.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScorePoint {
    /// When the evaluation that changed it ran (RFC 3339, UTC).
    pub at: Option<String>,
    pub score: i64,
    /// The score before; null for the first one stored.
    pub previous: Option<i64>,
    /// `events` (caused by the events in `causedBy`) or `time` (a window moved on).
    pub reason: String,
    pub caused_by: Vec<String>,
    /// The factors behind the new score.
    pub factors: Vec<FactorView>,
    /// The factors whose points changed, with the change (all of them for the first point).
    pub moved: Vec<FactorMove>,
}

#[derive(Debug, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FactorMove {
    pub factor: String,
    /// Points it contributes now.
    pub points: i64,
    /// Points gained (negative: lost) since the previous change.
    pub delta: i64,
}

pub async fn score_history(
    State(s): State<AppState>,
    Path((business_id, contact_id)): Path<(String, String)>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<ScoreHistory>, AppError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=SCORE_HISTORY_MAX).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit must be between 1 and {SCORE_HISTORY_MAX}, got {limit}"
        )));
    }
    let p = visible_contact(&s, &business_id, &contact_id).await?;
    let changes = s
        .reader
        .score_history(&business_id, &contact_id, limit)
        .await?;
    Ok(Json(ScoreHistory {
        business_id,
        contact_id,
        lead_score: p.lead_score,
        points: points(&changes),
    }))
}

/// The changes as points, each with what moved since the one before.
fn points(changes: &[ScoreChange]) -> Vec<ScorePoint> {
    let mut before: &[Factor] = &[];
    changes
        .iter()
        .map(|c| {
            let point = ScorePoint {
                at: rfc3339(Some(c.evaluated_at)),
                score: c.new_score,
                previous: c.old_score,
                reason: c.reason.to_owned(),
                caused_by: c.caused_by.clone(),
                factors: c.factors.iter().map(FactorView::from).collect(),
                moved: moved(before, &c.factors),
            };
            before = &c.factors;
            point
        })
        .collect()
}

/// Factors whose points differ between `before` and `after` (a factor absent counts 0).
fn moved(before: &[Factor], after: &[Factor]) -> Vec<FactorMove> {
    let points =
        |fs: &[Factor], name: &str| fs.iter().find(|f| f.factor == name).map_or(0, |f| f.points);
    let mut names: Vec<&str> = after
        .iter()
        .chain(before)
        .map(|f| f.factor.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (was, now) = (points(before, name), points(after, name));
            (was != now).then(|| FactorMove {
                factor: name.to_owned(),
                points: now,
                delta: now - was,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(factor: &str, points: i64) -> Factor {
        Factor {
            factor: factor.into(),
            count: points.abs() / 10,
            points,
        }
    }

    #[test]
    fn moved_names_the_factors_that_changed_and_by_how_much() {
        let before = [f("bookings_completed", 20), f("invoices_unpaid", -10)];
        let after = [f("bookings_completed", 30), f("invoices_unpaid", -10)];
        assert_eq!(
            moved(&before, &after),
            vec![FactorMove {
                factor: "bookings_completed".into(),
                points: 30,
                delta: 10
            }]
        );
        // A factor that went away counts as back to 0; the first point moves every factor.
        assert_eq!(
            moved(&after, &[f("bookings_completed", 30)]),
            vec![FactorMove {
                factor: "invoices_unpaid".into(),
                points: 0,
                delta: 10
            }]
        );
        assert_eq!(moved(&[], &after).len(), 2);
    }

    #[test]
    fn points_keep_the_order_and_diff_each_against_the_one_before() {
        let change = |old: Option<i64>, new: i64, factors: Vec<Factor>, at: i64| ScoreChange {
            business_id: "b".into(),
            contact_id: "c".into(),
            partition: 0,
            old_score: old,
            new_score: new,
            factors,
            rule_version: "v1".into(),
            caused_by: vec!["e1".into()],
            reason: "events",
            evaluated_at: at,
        };
        let pts = points(&[
            change(None, 20, vec![f("bookings_completed", 20)], 1_000),
            change(
                Some(20),
                10,
                vec![f("bookings_completed", 20), f("tasks_overdue", -10)],
                2_000,
            ),
        ]);
        assert_eq!(pts.len(), 2);
        assert_eq!((pts[0].score, pts[0].previous), (20, None));
        assert_eq!(pts[0].moved.len(), 1);
        assert_eq!((pts[1].score, pts[1].previous), (10, Some(20)));
        assert_eq!(
            pts[1].moved,
            vec![FactorMove {
                factor: "tasks_overdue".into(),
                points: -10,
                delta: -10
            }]
        );
        assert_eq!(pts[1].at.as_deref(), Some("1970-01-01T00:00:02.000Z"));
    }
}
