//! The engine's input tables, built from the state of the contacts being evaluated. Instants are
//! UTC milliseconds (`BIGINT`), so the SQL does window arithmetic with plain integers.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::FieldRef;
use serde::{Deserialize, Serialize};
use serde_arrow::schema::{SchemaLike, TracingOptions};

use crate::clock::Ms;
use crate::state::{ContactKey, ContactState};

#[derive(Serialize, Deserialize)]
pub struct ContactRow {
    pub cid: u32,
    pub contact_id: String,
    pub status: String,
    pub created_at: Option<Ms>,
    pub last_interaction_at: Option<Ms>,
    pub visible: bool,
}

#[derive(Serialize, Deserialize)]
pub struct TagRow {
    pub cid: u32,
    pub tag: String,
}

#[derive(Serialize, Deserialize)]
pub struct BookingRow {
    pub cid: u32,
    pub booking_id: String,
    pub service_id: Option<String>,
    pub service_name: Option<String>,
    pub price_cents: Option<i64>,
    pub starts_at: Option<Ms>,
    pub created_at: Option<Ms>,
    pub confirmed_at: Option<Ms>,
    pub cancelled_at: Option<Ms>,
    pub completed_at: Option<Ms>,
}

#[derive(Serialize, Deserialize)]
pub struct InvoiceRow {
    pub cid: u32,
    pub invoice_id: String,
    pub amount_cents: i64,
    pub due_at: Option<Ms>,
    pub booking_id: Option<String>,
    pub service_id: Option<String>,
    pub sent_at: Option<Ms>,
    pub paid_at: Option<Ms>,
    pub overdue_at: Option<Ms>,
}

#[derive(Serialize, Deserialize)]
pub struct TaskRow {
    pub cid: u32,
    pub task_id: String,
    pub title: Option<String>,
    pub created_at: Option<Ms>,
    pub due_at: Option<Ms>,
    pub completed_at: Option<Ms>,
}

#[derive(Serialize, Deserialize)]
pub struct InteractionRow {
    pub cid: u32,
    pub at: Ms,
}

/// Rows of every input table for one evaluation.
#[derive(Default)]
pub struct Inputs {
    pub contacts: Vec<ContactRow>,
    pub tags: Vec<TagRow>,
    pub bookings: Vec<BookingRow>,
    pub invoices: Vec<InvoiceRow>,
    pub tasks: Vec<TaskRow>,
    pub interactions: Vec<InteractionRow>,
}

pub fn options() -> TracingOptions {
    TracingOptions::default()
        .strings_as_large_utf8(false)
        .sequence_as_large_list(false)
}

fn batch<T: Serialize + for<'de> Deserialize<'de>>(
    rows: &[T],
) -> Result<RecordBatch, serde_arrow::Error> {
    let fields = Vec::<FieldRef>::from_type::<T>(options())?;
    serde_arrow::to_record_batch(&fields, &rows)
}

impl Inputs {
    /// Adds contact number `cid` with the status and tags it is shown with (sorted map
    /// iteration keeps the rows deterministic).
    pub fn add(
        &mut self,
        cid: u32,
        key: &ContactKey,
        c: &ContactState,
        status: &str,
        mut tags: Vec<String>,
    ) {
        self.contacts.push(ContactRow {
            cid,
            contact_id: key.contact_id.to_string(),
            status: status.to_owned(),
            created_at: c.created_at,
            last_interaction_at: c.last_interaction_at,
            visible: c.visible(),
        });
        tags.sort();
        tags.dedup();
        self.tags
            .extend(tags.into_iter().map(|tag| TagRow { cid, tag }));
        let mut bookings: Vec<_> = c.bookings.iter().collect();
        bookings.sort_by(|a, b| a.0.cmp(b.0));
        for (id, b) in bookings {
            self.bookings.push(BookingRow {
                cid,
                booking_id: id.clone(),
                service_id: b.service_id.clone(),
                service_name: b.service_name.clone(),
                price_cents: b.price_cents,
                starts_at: b.starts_at,
                created_at: b.created_at,
                confirmed_at: b.confirmed_at,
                cancelled_at: b.cancelled_at,
                completed_at: b.completed_at,
            });
        }
        let mut invoices: Vec<_> = c.invoices.iter().collect();
        invoices.sort_by(|a, b| a.0.cmp(b.0));
        for (id, i) in invoices {
            self.invoices.push(InvoiceRow {
                cid,
                invoice_id: id.clone(),
                amount_cents: i.amount_cents.unwrap_or(0),
                due_at: i.due_at,
                booking_id: i.booking_id.clone(),
                service_id: i.service_id.clone(),
                sent_at: i.sent_at,
                paid_at: i.paid_at,
                overdue_at: i.overdue_at,
            });
        }
        let mut tasks: Vec<_> = c.tasks.iter().collect();
        tasks.sort_by(|a, b| a.0.cmp(b.0));
        for (id, t) in tasks {
            self.tasks.push(TaskRow {
                cid,
                task_id: id.clone(),
                title: t.title.clone(),
                created_at: t.created_at,
                due_at: t.due_at,
                completed_at: t.completed_at,
            });
        }
        self.interactions
            .extend(c.interactions.iter().map(|&at| InteractionRow { cid, at }));
    }

    /// The tables by name.
    pub fn tables(&self) -> Result<Vec<(&'static str, RecordBatch)>, serde_arrow::Error> {
        Ok(vec![
            ("contacts", batch(&self.contacts)?),
            ("contact_tags", batch(&self.tags)?),
            ("bookings", batch(&self.bookings)?),
            ("invoices", batch(&self.invoices)?),
            ("tasks", batch(&self.tasks)?),
            ("interactions", batch(&self.interactions)?),
        ])
    }
}
