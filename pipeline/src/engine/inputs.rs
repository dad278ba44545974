//! The engine's input tables, built from the state of the contacts being evaluated. Instants are
//! UTC milliseconds (`BIGINT`), so the SQL does window arithmetic with plain integers.
//!
//! Each table appends straight into Arrow builders: a contact's strings are copied once, into
//! the column (no row structs, no serialisation). Each column's name, type and nullability are
//! written once, where its array is finished, and the planned schemas are those of the empty
//! tables.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, RecordBatch, StringBuilder, UInt32Builder,
};
use datafusion::arrow::error::ArrowError;

use crate::state::{ContactKey, ContactState};

/// One column, finished: its name, its values, and whether it may hold nulls.
type Column = (&'static str, ArrayRef, bool);

fn column(name: &'static str, array: ArrayRef, nullable: bool) -> Column {
    (name, array, nullable)
}

#[derive(Default)]
struct Contacts {
    cid: UInt32Builder,
    contact_id: StringBuilder,
    status: StringBuilder,
    created_at: Int64Builder,
    last_interaction_at: Int64Builder,
    visible: BooleanBuilder,
}

impl Contacts {
    fn finish(&mut self) -> Vec<Column> {
        vec![
            column("cid", Arc::new(self.cid.finish()), false),
            column("contact_id", Arc::new(self.contact_id.finish()), false),
            column("status", Arc::new(self.status.finish()), false),
            column("created_at", Arc::new(self.created_at.finish()), true),
            column(
                "last_interaction_at",
                Arc::new(self.last_interaction_at.finish()),
                true,
            ),
            column("visible", Arc::new(self.visible.finish()), false),
        ]
    }
}

#[derive(Default)]
struct Tags {
    cid: UInt32Builder,
    tag: StringBuilder,
}

impl Tags {
    fn finish(&mut self) -> Vec<Column> {
        vec![
            column("cid", Arc::new(self.cid.finish()), false),
            column("tag", Arc::new(self.tag.finish()), false),
        ]
    }
}

#[derive(Default)]
struct Bookings {
    cid: UInt32Builder,
    booking_id: StringBuilder,
    service_id: StringBuilder,
    service_name: StringBuilder,
    price_cents: Int64Builder,
    starts_at: Int64Builder,
    created_at: Int64Builder,
    confirmed_at: Int64Builder,
    cancelled_at: Int64Builder,
    completed_at: Int64Builder,
}

impl Bookings {
    fn finish(&mut self) -> Vec<Column> {
        vec![
            column("cid", Arc::new(self.cid.finish()), false),
            column("booking_id", Arc::new(self.booking_id.finish()), false),
            column("service_id", Arc::new(self.service_id.finish()), true),
            column("service_name", Arc::new(self.service_name.finish()), true),
            column("price_cents", Arc::new(self.price_cents.finish()), true),
            column("starts_at", Arc::new(self.starts_at.finish()), true),
            column("created_at", Arc::new(self.created_at.finish()), true),
            column("confirmed_at", Arc::new(self.confirmed_at.finish()), true),
            column("cancelled_at", Arc::new(self.cancelled_at.finish()), true),
            column("completed_at", Arc::new(self.completed_at.finish()), true),
        ]
    }
}

#[derive(Default)]
struct Invoices {
    cid: UInt32Builder,
    invoice_id: StringBuilder,
    amount_cents: Int64Builder,
    due_at: Int64Builder,
    booking_id: StringBuilder,
    service_id: StringBuilder,
    sent_at: Int64Builder,
    paid_at: Int64Builder,
    overdue_at: Int64Builder,
}

impl Invoices {
    fn finish(&mut self) -> Vec<Column> {
        vec![
            column("cid", Arc::new(self.cid.finish()), false),
            column("invoice_id", Arc::new(self.invoice_id.finish()), false),
            column("amount_cents", Arc::new(self.amount_cents.finish()), false),
            column("due_at", Arc::new(self.due_at.finish()), true),
            column("booking_id", Arc::new(self.booking_id.finish()), true),
            column("service_id", Arc::new(self.service_id.finish()), true),
            column("sent_at", Arc::new(self.sent_at.finish()), true),
            column("paid_at", Arc::new(self.paid_at.finish()), true),
            column("overdue_at", Arc::new(self.overdue_at.finish()), true),
        ]
    }
}

#[derive(Default)]
struct Tasks {
    cid: UInt32Builder,
    task_id: StringBuilder,
    title: StringBuilder,
    created_at: Int64Builder,
    due_at: Int64Builder,
    completed_at: Int64Builder,
}

impl Tasks {
    fn finish(&mut self) -> Vec<Column> {
        vec![
            column("cid", Arc::new(self.cid.finish()), false),
            column("task_id", Arc::new(self.task_id.finish()), false),
            column("title", Arc::new(self.title.finish()), true),
            column("created_at", Arc::new(self.created_at.finish()), true),
            column("due_at", Arc::new(self.due_at.finish()), true),
            column("completed_at", Arc::new(self.completed_at.finish()), true),
        ]
    }
}

#[derive(Default)]
struct Interactions {
    cid: UInt32Builder,
    at: Int64Builder,
}

impl Interactions {
    fn finish(&mut self) -> Vec<Column> {
        vec![
            column("cid", Arc::new(self.cid.finish()), false),
            column("at", Arc::new(self.at.finish()), false),
        ]
    }
}

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
fn by_id<V>(map: &std::collections::HashMap<String, V>) -> Vec<(&String, &V)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
}

impl Inputs {
    /// Adds contact number `cid` with the status and tags it is shown with.
    pub fn add(
        &mut self,
        cid: u32,
        key: &ContactKey,
        c: &ContactState,
        status: &str,
        mut tags: Vec<String>,
    ) {
        let t = &mut self.contacts;
        t.cid.append_value(cid);
        t.contact_id.append_value(&*key.contact_id);
        t.status.append_value(status);
        t.created_at.append_option(c.created_at);
        t.last_interaction_at.append_option(c.last_interaction_at);
        t.visible.append_value(c.visible());

        tags.sort_unstable();
        tags.dedup();
        for tag in &tags {
            self.tags.cid.append_value(cid);
            self.tags.tag.append_value(tag);
        }

        let t = &mut self.bookings;
        for (id, b) in by_id(&c.bookings) {
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
        for (id, i) in by_id(&c.invoices) {
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
        for (id, k) in by_id(&c.tasks) {
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
