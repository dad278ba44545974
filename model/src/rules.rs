//! The rules a business is evaluated with: the lead score's weights and window, every metric's
//! windows and thresholds, per-business overrides, and [`Rules`], the resolved set of every
//! business. Every value reaches the metric SQL as a `params` column, and the API renders the
//! segment definitions from the same values.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, WeekStart, Zone};

/// Lead-score rules: score = clamp(Σ weight·min(count, cap), 0, 100).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    /// Trailing window, in days, for completed bookings and paid invoices.
    pub window_days: i64,
    /// Points per booking completed in the window.
    pub booking_weight: i64,
    /// Most completed bookings that count.
    pub booking_cap: i64,
    /// Points per invoice paid in the window.
    pub paid_weight: i64,
    /// Most paid invoices that count.
    pub paid_cap: i64,
    /// Points removed per invoice sent and not paid.
    pub unpaid_weight: i64,
    /// Most unpaid invoices that count.
    pub unpaid_cap: i64,
    /// Points removed per open task past its due date.
    pub overdue_task_weight: i64,
    /// Most overdue tasks that count.
    pub overdue_task_cap: i64,
    /// Name of this rule set, stored beside every score; change it when the rules change.
    pub rule_version: String,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            window_days: 14,
            booking_weight: 15,
            booking_cap: 4,
            paid_weight: 10,
            paid_cap: 4,
            unpaid_weight: 10,
            unpaid_cap: 3,
            overdue_task_weight: 5,
            overdue_task_cap: 4,
            rule_version: "lead-score/v1".into(),
        }
    }
}

impl ScoringConfig {
    /// Every weight and cap by name: validated here, handed to the SQL as `params` columns.
    pub fn terms(&self) -> [(&'static str, i64); 8] {
        [
            ("booking_weight", self.booking_weight),
            ("booking_cap", self.booking_cap),
            ("paid_weight", self.paid_weight),
            ("paid_cap", self.paid_cap),
            ("unpaid_weight", self.unpaid_weight),
            ("unpaid_cap", self.unpaid_cap),
            ("overdue_task_weight", self.overdue_task_weight),
            ("overdue_task_cap", self.overdue_task_cap),
        ]
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.window_days <= 0 {
            return Err(format!(
                "scoring.window_days must be positive, got {}",
                self.window_days
            ));
        }
        for (name, v) in self.terms() {
            if !(0..=100).contains(&v) {
                return Err(format!("scoring.{name} must be within 0..=100, got {v}"));
            }
        }
        if self.rule_version.trim().is_empty() {
            return Err("scoring.rule_version must not be empty".into());
        }
        Ok(())
    }
}

/// Windows and thresholds of every metric, segment and queue rule besides the lead score. All
/// durations are whole days or hours; every number reaches the SQL as a `params` column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Payment reliability counts invoices whose due date lies in this trailing window.
    pub reliability_window_days: i64,
    /// Service affinity counts bookings created in this trailing window.
    pub affinity_window_days: i64,
    /// Gaps between interactions are measured over this trailing window.
    pub interaction_window_days: i64,
    /// Completed bookings (all time) after which a LEAD is suggested for promotion.
    pub promotion_min_completed: i64,
    /// `cold_leads_unpaid`: LEADs untouched for at least this many local days (days since
    /// the last interaction) with an unpaid invoice.
    pub cold_lead_days: i64,
    /// `top_clients`: window of the paid-invoice and booking counts.
    pub top_clients_days: i64,
    pub top_clients_min_paid: i64,
    pub top_clients_min_bookings: i64,
    /// `high_frequency_vip`: bookings in this window.
    pub vip_days: i64,
    pub vip_min_bookings: i64,
    /// `delayed_payment_follow_up`: reliability below this (or any overdue invoice).
    pub delayed_reliability_below: i64,
    /// Score tiers: gold from this score up.
    pub gold_min_score: i64,
    /// Score tiers: silver from this score up (below gold), bronze below.
    pub silver_min_score: i64,
    /// `booking_unconfirmed`: starts within this many hours...
    pub unconfirmed_starts_within_hours: i64,
    /// ...or was created at least this many hours ago.
    pub unconfirmed_created_hours: i64,
    /// `lead_stale`: a LEAD untouched for at least this many local days.
    pub lead_stale_days: i64,
    /// Per-service bookings, completions and revenue are counted over this window.
    pub service_window_days: i64,
    /// Highlights: revenue in this window ranks the "top spenders" spotlight.
    pub revenue_window_days: i64,
    /// Integration cues: invoices paid in this window.
    pub recent_paid_days: i64,
    /// Show a LEAD as CLIENT (status source `keyflow`) once it has `promotion_min_completed`
    /// completed bookings, and tell the CRM with a `contact.updated` signal; a status the CRM
    /// sets after that wins. Off by default: the CRM owns the status, KeyFlow only suggests
    /// (`contact.promotion.suggested`).
    pub auto_promote: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            reliability_window_days: 180,
            affinity_window_days: 90,
            interaction_window_days: 90,
            promotion_min_completed: 3,
            cold_lead_days: 14,
            top_clients_days: 90,
            top_clients_min_paid: 2,
            top_clients_min_bookings: 3,
            vip_days: 30,
            vip_min_bookings: 4,
            delayed_reliability_below: 60,
            gold_min_score: 70,
            silver_min_score: 40,
            unconfirmed_starts_within_hours: 24,
            unconfirmed_created_hours: 48,
            lead_stale_days: 4,
            service_window_days: 90,
            revenue_window_days: 90,
            recent_paid_days: 7,
            auto_promote: false,
        }
    }
}

impl MetricsConfig {
    /// Every value by name, as the SQL sees it in `params`.
    pub fn terms(&self) -> Vec<(&'static str, i64)> {
        vec![
            ("reliability_window_days", self.reliability_window_days),
            ("affinity_window_days", self.affinity_window_days),
            ("interaction_window_days", self.interaction_window_days),
            ("promotion_min_completed", self.promotion_min_completed),
            ("cold_lead_days", self.cold_lead_days),
            ("top_clients_days", self.top_clients_days),
            ("top_clients_min_paid", self.top_clients_min_paid),
            ("top_clients_min_bookings", self.top_clients_min_bookings),
            ("vip_days", self.vip_days),
            ("vip_min_bookings", self.vip_min_bookings),
            ("delayed_reliability_below", self.delayed_reliability_below),
            ("gold_min_score", self.gold_min_score),
            ("silver_min_score", self.silver_min_score),
            (
                "unconfirmed_starts_within_hours",
                self.unconfirmed_starts_within_hours,
            ),
            ("unconfirmed_created_hours", self.unconfirmed_created_hours),
            ("lead_stale_days", self.lead_stale_days),
            ("service_window_days", self.service_window_days),
            ("revenue_window_days", self.revenue_window_days),
            ("recent_paid_days", self.recent_paid_days),
        ]
    }

    /// The trailing windows, in days, whose edges change a metric with no new event (the
    /// day-count thresholds change at local midnights instead).
    pub fn windows_days(&self) -> Vec<i64> {
        vec![
            self.reliability_window_days,
            self.affinity_window_days,
            self.interaction_window_days,
            self.top_clients_days,
            self.vip_days,
            self.service_window_days,
            self.revenue_window_days,
            self.recent_paid_days,
        ]
    }

    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in self.terms() {
            let ok = match name {
                "delayed_reliability_below" | "gold_min_score" | "silver_min_score" => {
                    (0..=101).contains(&v)
                }
                _ => (0..=3650).contains(&v),
            };
            if !ok {
                return Err(format!("metrics.{name} is out of range: {v}"));
            }
        }
        if self.silver_min_score > self.gold_min_score {
            return Err(format!(
                "metrics.silver_min_score ({}) must not exceed metrics.gold_min_score ({})",
                self.silver_min_score, self.gold_min_score
            ));
        }
        Ok(())
    }
}

/// Which events are interactions: what "last interaction", the time between interactions, cold
/// leads and stale leads are measured from. By default, the events the contact or the staff take
/// part in: a contact created or updated, a note, a booking's steps, a payment, a completed task.
/// Not an invoice sent or falling overdue, a task created, a delete, an erase or a merge, and no
/// event whose `source` is a system's (`automation`, `import`). `[interactions]` in the
/// configuration; the same for every business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InteractionRules {
    /// Event types that count (each one of the contract's types).
    pub types: Vec<String>,
    /// Sources whose events never count, whatever their type.
    pub excluded_sources: Vec<String>,
}

impl Default for InteractionRules {
    fn default() -> Self {
        Self {
            types: [
                "contact.created",
                "contact.updated",
                "note.created",
                "booking.created",
                "booking.confirmed",
                "booking.cancelled",
                "booking.completed",
                "invoice.paid",
                "task.completed",
            ]
            .map(String::from)
            .to_vec(),
            excluded_sources: ["automation", "import"].map(String::from).to_vec(),
        }
    }
}

impl InteractionRules {
    /// Whether an event of this type from this (normalised, lower-case) source is an interaction.
    pub fn counts(&self, type_name: &str, source: &str) -> bool {
        self.types.iter().any(|t| t == type_name)
            && !self
                .excluded_sources
                .iter()
                .any(|s| s.eq_ignore_ascii_case(source))
    }

    pub fn validate(&self) -> Result<(), String> {
        match self
            .types
            .iter()
            .find(|t| !crate::event::EVENT_TYPES.contains(&t.as_str()))
        {
            Some(t) => Err(format!(
                "interactions.types: {t:?} is not an event type (one of {})",
                crate::event::EVENT_TYPES.join(", ")
            )),
            None => Ok(()),
        }
    }
}

/// The rules one business is evaluated with.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusinessRules {
    pub scoring: ScoringConfig,
    pub metrics: MetricsConfig,
    /// The time zone and week the business counts days in.
    pub calendar: Calendar,
}

/// Partial overrides of one business: its calendar (`timezone`, `week_starts_on`), and any
/// key of `[scoring]` or `[metrics]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusinessOverride {
    /// IANA time zone name, e.g. `"Europe/Berlin"`; unset, `[calendar] timezone`.
    #[serde(alias = "time_zone")]
    pub timezone: Option<Zone>,
    /// First day of the business's week, e.g. `"sunday"`; unset, `[calendar] week_starts_on`.
    #[serde(alias = "week_start", alias = "first_day_of_week")]
    pub week_starts_on: Option<WeekStart>,
    pub scoring: serde_json::Map<String, serde_json::Value>,
    pub metrics: serde_json::Map<String, serde_json::Value>,
}

fn overlay<T: Serialize + serde::de::DeserializeOwned>(
    base: &T,
    patch: &serde_json::Map<String, serde_json::Value>,
    what: &str,
) -> Result<T, String> {
    let mut v = serde_json::to_value(base).map_err(|e| e.to_string())?;
    if let serde_json::Value::Object(m) = &mut v {
        for (k, val) in patch {
            m.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(v).map_err(|e| format!("{what}: {e}"))
}

impl BusinessRules {
    /// These rules with one business's overrides applied; the result is validated.
    pub fn with(&self, business: &str, o: &BusinessOverride) -> Result<Self, String> {
        let rules = Self {
            scoring: overlay(
                &self.scoring,
                &o.scoring,
                &format!("business.{business}.scoring"),
            )?,
            metrics: overlay(
                &self.metrics,
                &o.metrics,
                &format!("business.{business}.metrics"),
            )?,
            calendar: Calendar {
                timezone: o.timezone.unwrap_or(self.calendar.timezone),
                week_starts_on: o.week_starts_on.unwrap_or(self.calendar.week_starts_on),
            },
        };
        rules
            .validate()
            .map_err(|e| format!("business.{business}: {e}"))?;
        Ok(rules)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.scoring.validate()?;
        self.metrics.validate()
    }
}

/// The rules of every business: the defaults and the per-business overrides resolved once.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    default: Arc<BusinessRules>,
    businesses: HashMap<String, Arc<BusinessRules>>,
}

impl Rules {
    /// `default` for every business, each of `overrides` applied over it; every result is
    /// validated, and the first invalid one is the error.
    pub fn new(
        default: BusinessRules,
        overrides: &BTreeMap<String, BusinessOverride>,
    ) -> Result<Self, String> {
        default.validate()?;
        let mut businesses = HashMap::new();
        for (b, o) in overrides {
            let r = default.with(b, o)?;
            businesses.insert(b.clone(), Arc::new(r));
        }
        Ok(Self {
            default: Arc::new(default),
            businesses,
        })
    }

    /// The same rules for every business.
    pub fn uniform(rules: BusinessRules) -> Self {
        Self {
            default: Arc::new(rules),
            businesses: HashMap::new(),
        }
    }

    pub fn for_business(&self, business_id: &str) -> &Arc<BusinessRules> {
        self.businesses.get(business_id).unwrap_or(&self.default)
    }
}
