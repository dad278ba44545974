//! The engine's input tables, built from the state of the contacts being evaluated. Instants are
//! UTC milliseconds (`BIGINT`), so the SQL does window arithmetic with plain integers.
//!
//! Each table appends straight into Arrow builders: a contact's strings are copied once, into
//! the column (no row structs, no serialisation). Each column's name, type and nullability are
//! written once, in its table's `table!` list, and the planned schemas are those of the empty
//! tables.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, RecordBatch, StringBuilder, UInt32Builder,
};
use datafusion::arrow::error::ArrowError;

use crate::state::{ContactKey, ContactState};

/// One column, finished: its name, its values, and whether it may hold nulls.
type Column = (&'static str, ArrayRef, bool);

/// A table's builders, one per column, and `finish`, which takes the columns in that order: each
/// column's name, builder (so its Arrow type) and nullability are written once, here.
macro_rules! table {
    ($name:ident { $($column:ident: $builder:ty, $nullable:literal;)* }) => {
        #[derive(Default)]
        struct $name {
            $($column: $builder,)*
        }

        impl $name {
            fn finish(&mut self) -> Vec<Column> {
                vec![$((stringify!($column), Arc::new(self.$column.finish()) as ArrayRef, $nullable),)*]
            }
        }
    };
}

table!(Contacts {
    cid: UInt32Builder, false;
    contact_id: StringBuilder, false;
    status: StringBuilder, false;
    created_at: Int64Builder, true;
    last_interaction_at: Int64Builder, true;
    visible: BooleanBuilder, false;
});

table!(Tags {
    cid: UInt32Builder, false;
    tag: StringBuilder, false;
});

table!(Bookings {
    cid: UInt32Builder, false;
    booking_id: StringBuilder, false;
    service_id: StringBuilder, true;
    service_name: StringBuilder, true;
    price_cents: Int64Builder, true;
    starts_at: Int64Builder, true;
    created_at: Int64Builder, true;
    confirmed_at: Int64Builder, true;
    cancelled_at: Int64Builder, true;
    completed_at: Int64Builder, true;
});

table!(Invoices {
    cid: UInt32Builder, false;
    invoice_id: StringBuilder, false;
    amount_cents: Int64Builder, false;
    due_at: Int64Builder, true;
    booking_id: StringBuilder, true;
    service_id: StringBuilder, true;
    sent_at: Int64Builder, true;
    paid_at: Int64Builder, true;
    overdue_at: Int64Builder, true;
});

table!(Tasks {
    cid: UInt32Builder, false;
    task_id: StringBuilder, false;
    title: StringBuilder, true;
    created_at: Int64Builder, true;
    due_at: Int64Builder, true;
    completed_at: Int64Builder, true;
});

table!(Interactions {
    cid: UInt32Builder, false;
    at: Int64Builder, false;
});

/// Every input table of one evaluation, as it is being built.
#[derive(Default)]
pub struct Inputs {
    contacts: Contacts,
    tags: Tags,
    bookings: Bookings,
    invoices: Invoices,
    tasks: Tasks,
    interactions: Interactions,
}

/// Sorts a map's entries by id, so that rows never depend on hash order.
impl Inputs {
    /// Adds contact number `cid` with the status and tags it is shown with.
    pub fn add(
        &mut self,
        cid: u32,
        key: &ContactKey,
        c: &ContactState,
        status: &str,
        tags: &[String],
    ) {
        let t = &mut self.contacts;
        t.cid.append_value(cid);
        t.contact_id.append_value(&*key.contact_id);
        t.status.append_value(status);
        t.created_at.append_option(c.created_at);
        t.last_interaction_at.append_option(c.last_interaction_at);
        t.visible.append_value(c.visible());

        // One row per distinct tag, in order. `PartitionState::tags_of` gives them so (tags are
        // normalised at ingest); anything else is sorted on a copy first.
        let sorted;
        let tags = if tags.windows(2).all(|w| w[0] < w[1]) {
            tags
        } else {
            let mut copy = tags.to_vec();
            copy.sort_unstable();
            copy.dedup();
            sorted = copy;
            &sorted
        };
        for tag in tags {
            self.tags.cid.append_value(cid);
            self.tags.tag.append_value(tag);
        }

        let t = &mut self.bookings;
        for (id, b) in c.bookings.iter() {
            t.cid.append_value(cid);
            t.booking_id.append_value(id);
            t.service_id.append_option(b.service_id.as_deref());
            t.service_name.append_option(b.service_name.as_deref());
            t.price_cents.append_option(b.price_cents);
            t.starts_at.append_option(b.starts_at);
            t.created_at.append_option(b.created_at);
            t.confirmed_at.append_option(b.confirmed_at);
            t.cancelled_at.append_option(b.cancelled_at);
            t.completed_at.append_option(b.completed_at);
        }

        let t = &mut self.invoices;
        for (id, i) in c.invoices.iter() {
            t.cid.append_value(cid);
            t.invoice_id.append_value(id);
            t.amount_cents.append_value(i.amount_cents.unwrap_or(0));
            t.due_at.append_option(i.due_at);
            t.booking_id.append_option(i.booking_id.as_deref());
            t.service_id.append_option(i.service_id.as_deref());
            t.sent_at.append_option(i.sent_at);
            t.paid_at.append_option(i.paid_at);
            t.overdue_at.append_option(i.overdue_at);
        }

        let t = &mut self.tasks;
        for (id, k) in c.tasks.iter() {
            t.cid.append_value(cid);
            t.task_id.append_value(id);
            t.title.append_option(k.title.as_deref());
            t.created_at.append_option(k.created_at);
            t.due_at.append_option(k.due_at);
            t.completed_at.append_option(k.completed_at);
        }

        let t = &mut self.interactions;
        for &at in &c.interactions {
            t.cid.append_value(cid);
            t.at.append_value(at);
        }
    }

    /// The tables by name; the builders are empty again afterwards.
    pub fn tables(&mut self) -> Result<Vec<(&'static str, RecordBatch)>, ArrowError> {
        let batch = RecordBatch::try_from_iter_with_nullable;
        Ok(vec![
            ("contacts", batch(self.contacts.finish())?),
            ("contact_tags", batch(self.tags.finish())?),
            ("bookings", batch(self.bookings.finish())?),
            ("invoices", batch(self.invoices.finish())?),
            ("tasks", batch(self.tasks.finish())?),
            ("interactions", batch(self.interactions.finish())?),
        ])
    }
}
