//! When a contact's results next change with no new event. Every trailing window compares a
//! fact's instant with `now` shifted by a window or threshold, so those candidates are each fact
//! instant shifted by each configured offset. Counts of local days (ages, days overdue, days
//! since the last interaction, and the thresholds on them) change at the business's local
//! midnights, and "this week" at the local midnight its next week starts.

use crate::clock::Ms;
use crate::config::BusinessRules;
use crate::profile::ContactProfile;
use crate::state::ContactState;

pub use crate::clock::{DAY_MS, HOUR_MS};

/// Offsets at which a comparison against a fact instant flips: at the instant, 1 ms after it
/// (strict `<`), at the end of every window, and the hour thresholds of the booking rules.
/// Computed once per evaluation run, for all its contacts (they share `rules`).
pub fn offsets(rules: &BusinessRules) -> Vec<Ms> {
    let m = &rules.metrics;
    let mut o = vec![0, 1, rules.scoring.window_days * DAY_MS];
    o.extend(m.windows_days().into_iter().map(|d| d * DAY_MS));
    o.push(-m.unconfirmed_starts_within_hours * HOUR_MS);
    o.push(m.unconfirmed_created_hours * HOUR_MS);
    o.sort_unstable();
    o.dedup();
    o
}

/// The first instant after `now` at which one of `c`'s results changes by time alone;
/// `offsets` are [`offsets`] of `rules`.
pub fn next_change(
    c: &ContactState,
    profile: &ContactProfile,
    now: Ms,
    rules: &BusinessRules,
    offsets: &[Ms],
) -> Option<Ms> {
    let mut next: Option<Ms> = None;
    let mut consider = |t: Ms| {
        if t > now {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    };
    let mut fact = |t: Option<Ms>| {
        if let Some(t) = t {
            for o in offsets {
                consider(t.saturating_add(*o));
            }
        }
    };
    fact(c.created_at);
    for b in c.bookings.values() {
        for t in [
            b.created_at,
            b.starts_at,
            b.confirmed_at,
            b.cancelled_at,
            b.completed_at,
        ] {
            fact(t);
        }
    }
    for i in c.invoices.values() {
        for t in [i.sent_at, i.paid_at, i.due_at, i.overdue_at] {
            fact(t);
        }
    }
    for t in c.tasks.values() {
        for x in [t.created_at, t.due_at, t.completed_at] {
            fact(x);
        }
    }
    for &t in &c.interactions {
        fact(Some(t));
    }
    fact(c.last_interaction_at);
    // Local-day counts: days since the last interaction, days overdue, queue item ages.
    let cal = &rules.calendar;
    let counts_days = c.last_interaction_at.is_some_and(|t| t <= now)
        || profile.balance.overdue_invoices > 0
        || !profile.next_actions.is_empty();
    if counts_days {
        consider(cal.next_midnight(now));
    }
    // This week's facts (new leads, bookings this week) leave it when the next week starts.
    let (week_start, week_end) = cal.week(now);
    let this_week = |t: Option<Ms>| t.is_some_and(|t| (week_start..=now).contains(&t));
    if this_week(c.created_at) || c.bookings.values().any(|b| this_week(b.created_at)) {
        consider(week_end);
    }
    next
}
