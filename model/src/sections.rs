//! The profile's metric sections: each is the row one file of `sql/metrics/` returns per
//! contact, read by column name, and a member of [`crate::profile::ContactProfile`] as it is.
//!
//! A section's fields are its file's columns, written here once. From this one definition come
//! the engine's check of the file's output (the section is traced to Arrow fields), the
//! profile's fingerprint (derived `Hash`), the embedded store's columns (the sections flattened
//! into the profile's columns) and the ClickHouse columns ([`Section::COLUMNS`]). Adding a metric
//! column is the SQL, one field here, one ClickHouse migration and the API view
//! (`docs/ADDING_A_METRIC.md`).

use std::hash::{Hash, Hasher};

use crate::clock::Ms;

/// A profile section: the metric file that fills it and the columns it is stored as.
pub trait Section {
    /// The file of `sql/metrics/` (without `.sql`) whose output row this is.
    const FILE: &'static str;
    /// Each field's column in ClickHouse's `contact_profiles`, in field order: the field's name,
    /// or the name given after `=>` where an older table named the column otherwise.
    const COLUMNS: &'static [&'static str];
}

/// What [`section!`](crate::section) expands to, reachable from any crate.
#[doc(hidden)]
pub mod __private {
    pub use educe::Educe;
    pub use serde::{Deserialize, Serialize};
}

/// Defines a section struct and its [`Section`] impl from one field list:
/// `Name from "file" { field: Type, ... }`. A field may end in `=> "column"` to name its
/// ClickHouse column differently from the field. The struct derives what the layers need
/// (serde for Arrow and RowBinary, `Hash` for the fingerprint, `Default` for a contact the file
/// returns no row for); a crate that uses it depends on `serde`.
#[macro_export]
macro_rules! section {
    (
        $(#[$meta:meta])*
        $name:ident from $file:literal {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty $(=> $column:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug,
            Clone,
            PartialEq,
            Default,
            $crate::sections::__private::Serialize,
            $crate::sections::__private::Deserialize,
            $crate::sections::__private::Educe,
        )]
        #[educe(Hash)]
        #[serde(default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $crate::sections::Section for $name {
            const FILE: &'static str = $file;
            const COLUMNS: &'static [&'static str] =
                &[$($crate::section_column!($($column)? $field)),*];
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! section_column {
    ($column:literal $field:ident) => {
        $column
    };
    ($field:ident) => {
        stringify!($field)
    };
}

pub(crate) fn hash_opt_f64<H: Hasher>(v: &Option<f64>, h: &mut H) {
    v.map(f64::to_bits).hash(h);
}

section! {
    /// Invoices sent and not paid as of the evaluation.
    Balance from "outstanding_balance" {
        outstanding_balance_cents: i64,
        unpaid_invoices: i64,
        /// Unpaid invoices past their due date.
        overdue_invoices: i64,
        /// The unpaid invoice with the earliest due date, its due date and the local days (the
        /// business's calendar) it has been overdue.
        oldest_unpaid_invoice_id: Option<String>,
        oldest_unpaid_due_at: Option<Ms> => "oldest_unpaid_due_at_ms",
        days_overdue: Option<i64>,
    }
}

section! {
    /// Invoices due in the reliability window, by outcome.
    Reliability from "payment_reliability" {
        invoices_on_time: i64,
        invoices_late: i64,
        invoices_overdue: i64,
        /// round(100 · on_time / (on_time + late + overdue)); None without any such invoice.
        payment_reliability: Option<i64>,
        /// Mean days late over late payments, 1 decimal.
        #[educe(Hash(method(hash_opt_f64)))]
        avg_days_late: Option<f64>,
    }
}

section! {
    /// The most booked service in the affinity window and its share of the bookings there.
    Affinity from "service_affinity" {
        top_service_id: Option<String>,
        top_service_name: Option<String>,
        top_service_bookings: i64,
        affinity_bookings: i64,
        #[educe(Hash(method(hash_opt_f64)))]
        top_service_share: Option<f64>,
    }
}

section! {
    /// Gaps between consecutive interaction days in the interaction window, in days (1 decimal),
    /// and the local days since the last interaction.
    Gaps from "interaction_gaps" {
        #[educe(Hash(method(hash_opt_f64)))]
        mean_gap_days: Option<f64>,
        #[educe(Hash(method(hash_opt_f64)))]
        median_gap_days: Option<f64>,
        days_since_last_interaction: Option<i64>,
    }
}

section! {
    /// Counters the segments, highlights and cues read.
    Activity from "activity" {
        /// Bookings completed, all time.
        completed_bookings_total: i64,
        /// Non-cancelled bookings created this week (the business's calendar week).
        recent_bookings: i64,
        /// Paid invoices in the revenue window.
        revenue_cents: i64,
        /// Invoices paid in the recent-paid window, count and sum.
        recent_paid_invoices: i64,
        recent_paid_cents: i64,
        /// Future bookings neither confirmed nor cancelled.
        pending_confirmations: i64,
        /// A LEAD with `promotion_min_completed` completed bookings (see the profile's
        /// `promotion_suggested_at`).
        promotion_eligible: bool,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_follow_the_fields_unless_renamed() {
        assert_eq!(Balance::FILE, "outstanding_balance");
        assert_eq!(
            Balance::COLUMNS,
            [
                "outstanding_balance_cents",
                "unpaid_invoices",
                "overdue_invoices",
                "oldest_unpaid_invoice_id",
                "oldest_unpaid_due_at_ms",
                "days_overdue",
            ]
        );
        assert_eq!(Activity::COLUMNS.len(), 7);
        assert_eq!(Activity::COLUMNS[6], "promotion_eligible");
    }
}
