//! When a contact's results next change with no new event. Every metric compares a fact's instant
//! with `now` shifted by a window or threshold, so the candidates are each fact instant shifted
//! by each configured offset; whole-day ages add the next day boundary after their anchor.

use crate::clock::Ms;
use crate::config::BusinessRules;
use crate::profile::ContactProfile;
use crate::state::ContactState;

pub use crate::clock::{DAY_MS, HOUR_MS};

/// Offsets at which a comparison against a fact instant flips: at the instant, 1 ms after it
/// (strict `<`), at the end of every window, and the hour thresholds of the booking rules.
fn offsets(rules: &BusinessRules) -> Vec<Ms> {
    let m = &rules.metrics;
    let mut o = vec![0, 1, rules.scoring.window_days * DAY_MS];
    o.extend(m.windows_days().into_iter().map(|d| d * DAY_MS));
    o.push(-m.unconfirmed_starts_within_hours * HOUR_MS);
    o.push(m.unconfirmed_created_hours * HOUR_MS);
    o.sort_unstable();
    o.dedup();
    o
}

/// The first instant after `now` at which one of `c`'s results changes by time alone.
pub fn next_change(
    c: &ContactState,
    profile: &ContactProfile,
    now: Ms,
    rules: &BusinessRules,
) -> Option<Ms> {
    let offsets = offsets(rules);
    let mut next: Option<Ms> = None;
    let mut consider = |t: Ms| {
        if t > now {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    };
    let mut fact = |t: Option<Ms>| {
        if let Some(t) = t {
            for o in &offsets {
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
    // Whole-day ages: days since the last interaction, days overdue, queue item ages.
    let mut day_tick = |anchor: Option<Ms>| {
        if let Some(a) = anchor {
            if a <= now {
                consider(a + ((now - a) / DAY_MS + 1) * DAY_MS);
            }
        }
    };
    day_tick(c.last_interaction_at);
    day_tick(profile.oldest_unpaid_due_at);
    for a in &profile.next_actions {
        day_tick(Some(a.since));
    }
    next
}
