//! The analyst baseline of `keyflow-bench`: what it costs to get every contact's lead score
//! without KeyFlow, by recomputing it in ClickHouse from the raw `events` table.
//!
//! [`measure`] creates a fresh database ([`DATABASE`]) with the project's own migrations, fills
//! its `events` table server-side (`INSERT INTO ... SELECT ... FROM numbers(N)`, so no row crosses
//! the network) with about twelve events per contact of the shapes the pipeline writes, runs
//! `sql/analyst/lead_score_recompute.sql` a few times, and drops the database. Each run is timed
//! as `SELECT count() FROM (<query>)`: the server computes every row and sends back one number,
//! so the time is the query's, not the transfer of a million rows.
//!
//! The query and this generator run on ClickHouse 18.16 and on current releases.

use std::time::Instant;

use anyhow::Context;
use sinks::clickhouse::ClickHouseConfig;

/// The database [`measure`] creates and drops.
pub const DATABASE: &str = "keyflow_bench_analyst";

/// The recompute query, with [`NOW_PLACEHOLDER`] for the scoring instant.
pub const RECOMPUTE_SQL: &str = include_str!("../../../sql/analyst/lead_score_recompute.sql");

/// Stands for the scoring instant (UTC milliseconds) in [`RECOMPUTE_SQL`].
pub const NOW_PLACEHOLDER: &str = "{now_ms}";

/// The instant the synthetic history ends at and the scores are computed at:
/// 2026-01-01T00:00:00Z. Fixed, so every run loads the same events and gets the same scores.
pub const NOW_MS: i64 = 1_767_225_600_000;

/// One analyst measurement.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AnalystResult {
    /// Contacts loaded.
    pub contacts: u64,
    /// Rows in `events` after the load.
    pub events: u64,
    /// Wall time of the server-side `INSERT ... SELECT` that filled `events`.
    pub load_seconds: f64,
    /// Wall time of each run of the recompute query, in ms.
    pub refresh_ms: Vec<f64>,
    /// Rows the query returned (one per contact).
    pub rows: u64,
}

/// [`RECOMPUTE_SQL`] scoring at `now_ms`.
pub fn recompute_query(now_ms: i64) -> String {
    RECOMPUTE_SQL.replace(NOW_PLACEHOLDER, &now_ms.to_string())
}

/// The timed form of the query: every row computed server-side, only their count sent back.
/// The newlines keep the closing parenthesis out of a trailing `--` comment.
fn timed_query(now_ms: i64) -> String {
    format!("SELECT count() FROM (\n{}\n)", recompute_query(now_ms))
}

/// Synthetic history of `{contacts}` contacts ending at `{now}` (UTC ms), generated
/// server-side. Contact `n` belongs to business `bench-{n % 100}`, owns Kafka partition `n % 8`,
/// and gets up to twenty events (about twelve on average; any later than `{now}` is left out,
/// as the demo does), with the `type` strings and `data` JSON of the pipeline
/// (`Payload::data_json`, normalised: trimmed names, lower-case emails, upper-case currency):
/// created 90 to 30 days ago; one or two notes, sometimes a phone update; an older booking
/// (created, mostly confirmed, sometimes cancelled, mostly completed) and a recent one, each
/// completed paid booking invoiced (paid on time, late, or not at all; overdue marked);
/// a recent task due 1 to 6 days after it was created (with milliseconds), half completed,
/// and sometimes an older one. Every value derives from `cityHash64(n, k)`, so the load is
/// deterministic. `offset` and `ingest_seq` are `n * 32 + slot`: unique, ascending per contact.
const GENERATE_SQL: &str = r#"INSERT INTO events
    (business_id, contact_id, event_id, type, occurred_at_ms, source, data, topic, partition, offset, ingest_seq)
SELECT
    biz,
    cid,
    concat(cid, '-e', toString(tupleElement(ev, 1))),
    tupleElement(ev, 2),
    tupleElement(ev, 3),
    ['booking_form', 'automation', 'public_link', 'import', 'manual', 'commerce'][1 + cityHash64(n, tupleElement(ev, 1), 99) % 6],
    tupleElement(ev, 4),
    tupleElement(ev, 5),
    toInt32(n % 8),
    toInt64(n * 32 + tupleElement(ev, 1)),
    toUInt64(n * 32 + tupleElement(ev, 1))
FROM
(
    SELECT
        n,
        biz,
        cid,
        arrayMap(x -> concat(replaceOne(toString(toDateTime(toUInt32(intDiv(x, 1000)), 'UTC')), ' ', 'T'), if(x % 1000 = 0, '', concat('.', substring(toString(1000 + x % 1000), 2, 3))), 'Z'),
                 [b1_starts, b2_starts, i1_due, i2_due, t1_due, t2_due]) AS texts,
        arrayJoin(arrayFilter(e -> tupleElement(e, 3) <= {now}, [
            tuple(toUInt8(0), 'contact.created', created, concat('{"name":"', first, ' ', last, '","email":"', lower(first), '.', lower(last), toString(n), '@example.com","phone":"+4420', toString(10000000 + n % 90000000), '"', if(r1 % 5 = 0, ',"tags":["vip"]', ''), ',"status":"', if(r1 % 10 < 3, 'CLIENT', 'LEAD'), '"}'), 'crm.contacts'),
            tuple(toUInt8(1), 'note.created', created + r2 % (30 * 86400000), concat('{"note_id":"', cid, '-n0","body":"', ['Prefers mornings', 'Asked about gift cards', 'Allergic to lavender', 'Referred by a friend'][1 + r2 % 4], '"}'), 'crm.contacts'),
            tuple(toUInt8(2), 'note.created', if(r3 % 2 = 0, greatest(created, {now} - r3 % (40 * 86400000)), never), concat('{"note_id":"', cid, '-n1","body":"Called about rescheduling"}'), 'crm.contacts'),
            tuple(toUInt8(3), 'contact.updated', if(r3 % 10 = 1, created + r4 % (20 * 86400000), never), concat('{"phone":"+447700', toString(100000 + r4 % 900000), '"}'), 'crm.contacts'),
            tuple(toUInt8(4), 'booking.created', b1_at, concat('{"booking_id":"', cid, '-b0","service_id":"', svc_ids[s1], '","service_name":"', svc_names[s1], '","starts_at":"', texts[1], '","price_cents":', toString(svc_prices[s1]), '}'), 'crm.bookings'),
            tuple(toUInt8(5), 'booking.confirmed', if(b1_r < 85, b1_at + 2 * 3600000, never), concat('{"booking_id":"', cid, '-b0"}'), 'crm.bookings'),
            tuple(toUInt8(6), 'booking.cancelled', if(b1_r < 10, b1_at + 3600000, never), concat('{"booking_id":"', cid, '-b0"}'), 'crm.bookings'),
            tuple(toUInt8(7), 'booking.completed', if(b1_done, b1_starts + 3600000, never), concat('{"booking_id":"', cid, '-b0"}'), 'crm.bookings'),
            tuple(toUInt8(8), 'invoice.sent', if(i1_has, i1_sent, never), concat('{"invoice_id":"', cid, '-i0","amount_cents":', toString(svc_prices[s1]), ',"currency":"EUR","due_at":"', texts[3], '","booking_id":"', cid, '-b0","service_id":"', svc_ids[s1], '"}'), 'crm.invoices'),
            tuple(toUInt8(9), 'invoice.paid', if(i1_has, multiIf(i1_r < 65, i1_sent + r5 % (7 * 86400000), i1_r < 82, i1_due + (2 + r5 % 10) * 86400000, never), never), concat('{"invoice_id":"', cid, '-i0"}'), 'crm.invoices'),
            tuple(toUInt8(10), 'invoice.overdue', if(i1_has AND i1_r >= 65, i1_due + 86400000, never), concat('{"invoice_id":"', cid, '-i0"}'), 'crm.invoices'),
            tuple(toUInt8(11), 'booking.created', b2_at, concat('{"booking_id":"', cid, '-b1","service_id":"', svc_ids[s2], '","service_name":"', svc_names[s2], '","starts_at":"', texts[2], '","price_cents":', toString(svc_prices[s2]), '}'), 'crm.bookings'),
            tuple(toUInt8(12), 'booking.confirmed', if(b2_r < 85, b2_at + 2 * 3600000, never), concat('{"booking_id":"', cid, '-b1"}'), 'crm.bookings'),
            tuple(toUInt8(13), 'booking.completed', if(b2_done, b2_starts + 3600000, never), concat('{"booking_id":"', cid, '-b1"}'), 'crm.bookings'),
            tuple(toUInt8(14), 'invoice.sent', if(i2_has, i2_sent, never), concat('{"invoice_id":"', cid, '-i1","amount_cents":', toString(svc_prices[s2]), ',"currency":"EUR","due_at":"', texts[4], '","booking_id":"', cid, '-b1","service_id":"', svc_ids[s2], '"}'), 'crm.invoices'),
            tuple(toUInt8(15), 'invoice.paid', if(i2_has AND i2_r < 60, i2_sent + r6 % (7 * 86400000), never), concat('{"invoice_id":"', cid, '-i1"}'), 'crm.invoices'),
            tuple(toUInt8(16), 'task.created', t1_at, concat('{"task_id":"', cid, '-t0","title":"Call back","due_at":"', texts[5], '"}'), 'crm.tasks'),
            tuple(toUInt8(17), 'task.completed', if(r7 % 2 = 0, t1_at + r7 % (t1_due - t1_at), never), concat('{"task_id":"', cid, '-t0"}'), 'crm.tasks'),
            tuple(toUInt8(18), 'task.created', if(r8 % 2 = 0, t2_at, never), concat('{"task_id":"', cid, '-t1","title":"Send price list","due_at":"', texts[6], '"}'), 'crm.tasks'),
            tuple(toUInt8(19), 'task.completed', if(r8 % 4 = 0, t2_at + r9 % (t2_due - t2_at), never), concat('{"task_id":"', cid, '-t1"}'), 'crm.tasks')
        ])) AS ev
    FROM
    (
        SELECT
            number AS n,
            concat('bench-', toString(n % 100)) AS biz,
            concat(biz, '-c', toString(intDiv(n, 100))) AS cid,
            toInt64({now} + 1) AS never,
            ['Ada', 'Grace', 'Alan', 'Linus', 'Margaret', 'Barbara', 'Edsger', 'Radia'][1 + cityHash64(n, 1) % 8] AS first,
            ['Lovelace', 'Hopper', 'Turing', 'Torvalds', 'Hamilton', 'Liskov', 'Dijkstra', 'Perlman'][1 + cityHash64(n, 2) % 8] AS last,
            ['svc-cut', 'svc-colour', 'svc-massage', 'svc-consult'] AS svc_ids,
            ['Haircut', 'Colour', 'Massage', 'Consultation'] AS svc_names,
            [4500, 9000, 6500, 0] AS svc_prices,
            toInt64(cityHash64(n, 3) % 1000000000000) AS r1,
            toInt64(cityHash64(n, 4) % 1000000000000) AS r2,
            toInt64(cityHash64(n, 5) % 1000000000000) AS r3,
            toInt64(cityHash64(n, 6) % 1000000000000) AS r4,
            toInt64(cityHash64(n, 7) % 1000000000000) AS r5,
            toInt64(cityHash64(n, 8) % 1000000000000) AS r6,
            toInt64(cityHash64(n, 9) % 1000000000000) AS r7,
            toInt64(cityHash64(n, 10) % 1000000000000) AS r8,
            toInt64(cityHash64(n, 11) % 1000000000000) AS r9,
            toInt64(cityHash64(n, 12) % 1000000000000) AS r10,
            toInt64(cityHash64(n, 13) % 1000000000000) AS r11,
            -- Created 90 to 30 days ago.
            {now} - 90 * 86400000 + r1 % (60 * 86400000) AS created,
            -- An older booking, made within 10 days of creation, starting 12 h to 6 days later.
            1 + r2 % 4 AS s1,
            created + 3600000 + r3 % (10 * 86400000) AS b1_at,
            b1_at + 12 * 3600000 + r4 % (132 * 3600000) AS b1_starts,
            r5 % 100 AS b1_r,
            b1_r >= 10 AND b1_r < 80 AS b1_done,
            b1_done AND svc_prices[s1] > 0 AS i1_has,
            b1_starts + 3600000 + 30 * 60000 AS i1_sent,
            i1_sent + 7 * 86400000 AS i1_due,
            r6 % 100 AS i1_r,
            -- A recent booking, made in the last 25 days.
            1 + r7 % 4 AS s2,
            greatest(created + 3600000, {now} - 2 * 3600000 - r8 % (25 * 86400000)) AS b2_at,
            b2_at + 12 * 3600000 + r9 % (132 * 3600000) AS b2_starts,
            r10 % 100 AS b2_r,
            b2_r >= 10 AND b2_r < 85 AS b2_done,
            b2_done AND svc_prices[s2] > 0 AS i2_has,
            b2_starts + 3600000 + 30 * 60000 AS i2_sent,
            i2_sent + 7 * 86400000 AS i2_due,
            r11 % 100 AS i2_r,
            -- Tasks: one in the last 20 days, due 1 to 6 days later (with milliseconds); maybe an
            -- older one.
            greatest(created, {now} - r9 % (20 * 86400000)) AS t1_at,
            t1_at + 86400000 + r10 % (5 * 86400000) AS t1_due,
            created + r11 % (30 * 86400000) AS t2_at,
            t2_at + 86400000 + r1 % (4 * 86400000) AS t2_due
        FROM numbers({contacts})
    )
)"#;

/// The `INSERT ... SELECT` that fills `events` with `contacts` contacts' history up to `now_ms`.
pub fn load_query(contacts: u64, now_ms: i64) -> String {
    GENERATE_SQL
        .replace("{now}", &now_ms.to_string())
        .replace("{contacts}", &contacts.to_string())
}

fn config(url: &str, database: &str) -> ClickHouseConfig {
    ClickHouseConfig {
        url: Some(url.to_owned()),
        database: database.to_owned(),
        ..Default::default()
    }
}

/// Loads `contacts` contacts into `database` (migrated from scratch); returns the rows in
/// `events` and the seconds the insert took.
async fn load(url: &str, database: &str, contacts: u64, now_ms: i64) -> anyhow::Result<(u64, f64)> {
    sinks::clickhouse::migrate::migrate(&config(url, database))
        .await
        .with_context(|| format!("migrating {database}"))?;
    let client = config(url, database).client(url);
    let started = Instant::now();
    client
        .query(&load_query(contacts, now_ms))
        .execute()
        .await
        .context("loading the synthetic events")?;
    let seconds = started.elapsed().as_secs_f64();
    let events = client
        .query("SELECT count() FROM events")
        .fetch_one::<u64>()
        .await
        .context("counting the events")?;
    Ok((events, seconds))
}

async fn drop_database(url: &str, database: &str) -> anyhow::Result<()> {
    // `database` is one of this module's constants: a plain identifier.
    config(url, "default")
        .client(url)
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await
        .with_context(|| format!("dropping {database} on ClickHouse at {url}"))
}

/// Loads `contacts` contacts' events into a fresh [`DATABASE`] on the ClickHouse at `url`, runs
/// the recompute query `runs` times, and drops the database again (also after a failure).
pub async fn measure(
    url: &str,
    contacts: u64,
    runs: usize,
    progress: impl Fn(&str),
) -> anyhow::Result<AnalystResult> {
    drop_database(url, DATABASE).await?;
    let result = measure_in(url, contacts, runs, &progress).await;
    let dropped = drop_database(url, DATABASE).await;
    let result = result?;
    dropped?;
    Ok(result)
}

async fn measure_in(
    url: &str,
    contacts: u64,
    runs: usize,
    progress: &dyn Fn(&str),
) -> anyhow::Result<AnalystResult> {
    progress(&format!(
        "loading {contacts} contacts into {DATABASE}.events"
    ));
    let (events, load_seconds) = load(url, DATABASE, contacts, NOW_MS).await?;
    progress(&format!("loaded {events} events in {load_seconds:.1} s"));
    let client = config(url, DATABASE).client(url);
    let query = timed_query(NOW_MS);
    let mut refresh_ms = Vec::with_capacity(runs);
    let mut rows = 0;
    for run in 1..=runs {
        let started = Instant::now();
        rows = client
            .query(&query)
            .fetch_one::<u64>()
            .await
            .with_context(|| format!("recompute run {run}"))?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        progress(&format!("run {run}/{runs}: {ms:.0} ms, {rows} rows"));
        refresh_ms.push(ms);
    }
    Ok(AnalystResult {
        contacts,
        events,
        load_seconds,
        refresh_ms,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Constructs ClickHouse 18.16 lacks (or that bind differently there): the query must run on
    /// both it and current releases.
    const FORBIDDEN: [&str; 8] = [
        "JSONExtract",
        "JSON_VALUE",
        "DateTime64",
        "Map(",
        "{now_ms:",
        "param_",
        "fromUnixTimestamp64",
        "parseDateTime64",
    ];

    /// `sql` without its `--` comments (neither query has `--` inside a string).
    fn code(sql: &str) -> String {
        sql.lines()
            .map(|l| l.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_query_has_its_placeholder_and_only_old_constructs() {
        assert!(code(RECOMPUTE_SQL).contains(NOW_PLACEHOLDER));
        for sql in [RECOMPUTE_SQL, GENERATE_SQL] {
            // The clickhouse crate binds `?`, comments included: a stray one breaks the query.
            assert!(!sql.contains('?'));
            let code = code(sql);
            for f in FORBIDDEN {
                // As a name of its own: `arrayMap(` is fine, `Map(` is not.
                let used = code.match_indices(f).any(|(i, _)| {
                    !code[..i]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                });
                assert!(!used, "{f}");
            }
        }
        let q = recompute_query(NOW_MS);
        assert!(!q.contains(NOW_PLACEHOLDER));
        assert!(q.contains(&NOW_MS.to_string()));
        assert!(q.contains("FROM events FINAL"));
        // One statement: no `;` to split on.
        assert!(!code(&q).contains(';'));
        let timed = timed_query(NOW_MS);
        assert!(timed.starts_with("SELECT count() FROM (\n") && timed.ends_with("\n)"));
    }

    #[test]
    fn the_load_fills_in_every_placeholder() {
        let q = load_query(1_000, NOW_MS);
        assert!(q.contains("FROM numbers(1000)"));
        assert!(!q.contains("{now}") && !q.contains("{contacts}"));
        assert!(!code(&q).contains(';'));
        // Every type tag it writes is one the pipeline reads; twelve of them.
        let tags: std::collections::BTreeSet<&str> = q
            .split('\'')
            .filter(|s| {
                s.contains('.')
                    && !s.starts_with("crm.")
                    && s.starts_with(|c: char| c.is_ascii_lowercase())
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
            })
            .collect();
        for tag in &tags {
            assert!(pipeline::event::EVENT_TYPES.contains(tag), "{tag}");
        }
        assert_eq!(tags.len(), 12, "{tags:?}");
    }

    /// ClickHouse for the tests below: `KEYFLOW_TEST_CLICKHOUSE_URL`, or the local default.
    fn test_url() -> String {
        std::env::var("KEYFLOW_TEST_CLICKHOUSE_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:8123".into())
    }

    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, clickhouse::Row, serde::Deserialize)]
    struct Score {
        business_id: String,
        contact_id: String,
        lead_score: i64,
        bookings_completed: i64,
        invoices_paid: i64,
        invoices_unpaid: i64,
        tasks_overdue: i64,
    }

    /// Hand-made contacts of business `hand` for the edges the synthetic load does not reach:
    /// caps, the clamp at 0, window and `now` boundaries, millisecond due dates, facts after
    /// `now`, a fact whose step repeats (the earliest counts), and a replayed event. Returns the
    /// rows (written as the ClickHouse sink writes them) and each contact's expected
    /// (lead_score, B, P, U, O) under the default rules.
    fn hand_made() -> (Vec<sinks::clickhouse::rows::EventRow>, Vec<Score>) {
        use pipeline::event::*;
        use pipeline::sink::AcceptedEvent;
        use sinks::clickhouse::rows::EventRow;

        const H: i64 = 3_600_000;
        const D: i64 = 24 * H;
        let ms = |at: i64| chrono::DateTime::from_timestamp_millis(at).unwrap();
        let mut rows = Vec::new();
        let mut push = |contact: &str, at: i64, payload: Payload| {
            let seq = (1 << 40) + rows.len() as u64;
            let event = Event {
                schema_version: SCHEMA_VERSION,
                event_id: format!("hand-{seq}"),
                business_id: "hand".into(),
                contact_id: contact.into(),
                occurred_at: ms(at),
                source: "manual".into(),
                payload,
            };
            let accepted = AcceptedEvent {
                event,
                topic: "crm.contacts".into(),
                partition: 0,
                offset: seq as i64,
            };
            rows.push(EventRow::new(&accepted, seq));
        };
        let booking = |id: &str| BookingRef {
            booking_id: id.into(),
        };
        let invoice = |id: &str| InvoiceRef {
            invoice_id: id.into(),
        };
        let sent = |id: &str, due: i64| {
            Payload::InvoiceSent(InvoiceSent {
                invoice_id: id.into(),
                amount_cents: 1000,
                currency: "EUR".into(),
                due_at: ms(due),
                booking_id: None,
                service_id: None,
            })
        };
        let task = |id: &str, due: i64| {
            Payload::TaskCreated(TaskCreated {
                task_id: id.into(),
                title: "Call back".into(),
                due_at: ms(due),
            })
        };
        let done = |id: &str| TaskRef { task_id: id.into() };
        let now = NOW_MS;

        // a: every positive factor over its cap; b0's first completion is outside the window.
        for i in 0..6 {
            push(
                "a",
                now - (i + 1) * H,
                Payload::BookingCompleted(booking(&format!("b{i}"))),
            );
        }
        push("a", now - 20 * D, Payload::BookingCompleted(booking("b0")));
        for i in 0..5 {
            let id = format!("i{i}");
            push("a", now - 10 * D, sent(&id, now - 3 * D));
            push("a", now - D, Payload::InvoicePaid(invoice(&id)));
        }
        // b: penalties over their caps; completions at window_start (out) and at now (in).
        push("b", now - 14 * D, Payload::BookingCompleted(booking("b0")));
        push("b", now, Payload::BookingCompleted(booking("b1")));
        for i in 0..5 {
            push("b", now - 3 * D, sent(&format!("i{i}"), now + D));
        }
        push("b", now - 3 * D, sent("late", now - D));
        push("b", now + H, Payload::InvoicePaid(invoice("late")));
        for i in 0..6 {
            push("b", now - 5 * D, task(&format!("t{i}"), now - D));
        }
        push("b", now - 5 * D, task("due-now", now));
        push("b", now - 5 * D, task("due-1ms-ago", now - 1));
        push("b", now - 5 * D, task("done", now - D));
        push("b", now - 2 * D, Payload::TaskCompleted(done("done")));
        push("b", now - 5 * D, task("done-later", now - D));
        push("b", now + H, Payload::TaskCompleted(done("done-later")));
        // c: a middling score; millisecond due dates; facts that start after now.
        push("c", now - 2 * D, Payload::BookingCompleted(booking("b0")));
        push("c", now - 3 * D, Payload::BookingCompleted(booking("b1")));
        push("c", now - 4 * D, sent("i0", now + D));
        push("c", now - 2 * D, Payload::InvoicePaid(invoice("i0")));
        push("c", now + H, sent("future", now + D));
        push("c", now - D, task("t-999", now - 1));
        push("c", now - D, task("t-now", now));
        push("c", now + H, task("t-future", now - D));
        // A replay: the same event again, later ingested.
        let mut replay = rows.last().unwrap().clone();
        replay.ingest_seq += 1_000;
        rows.push(replay);

        let score = |contact: &str, lead_score, b, p, u, o| Score {
            business_id: "hand".into(),
            contact_id: contact.into(),
            lead_score,
            bookings_completed: b,
            invoices_paid: p,
            invoices_unpaid: u,
            tasks_overdue: o,
        };
        let expected = vec![
            // 15*min(5,4) + 10*min(5,4)
            score("a", 100, 5, 5, 0, 0),
            // 15*1 - 10*min(6,3) - 5*min(8,4) < 0
            score("b", 0, 1, 0, 6, 8),
            // 15*2 + 10*1 - 5*1
            score("c", 35, 2, 1, 0, 1),
        ];
        (rows, expected)
    }

    /// The query against the pipeline itself: 1,000 contacts loaded as [`measure`] loads them,
    /// plus the hand-made ones, read back, folded into the pipeline's state and scored by its
    /// engine (the DataFusion metrics) at the same instant; every contact's score and factor
    /// counts must match, and the hand-made ones must score what the rules say.
    /// Needs ClickHouse at KEYFLOW_TEST_CLICKHOUSE_URL (default http://127.0.0.1:8123), as every
    /// test command does: scripts/test starts it, and runs this again on ClickHouse 26.x.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recompute_matches_the_engine() {
        use pipeline::config::ScoringConfig;
        use pipeline::engine::Engine;
        use pipeline::event::{Event, Payload, SCHEMA_VERSION};
        use pipeline::state::{ContactKey, PartitionState};
        use sinks::clickhouse::rows::EventRow;

        let url = test_url();
        let db = "keyflow_bench_analyst_check";
        drop_database(&url, db).await.unwrap();
        let (events, _) = load(&url, db, 1_000, NOW_MS).await.unwrap();
        let client = config(&url, db).client(&url);
        let (hand, hand_expected) = hand_made();
        let mut insert = client.insert::<EventRow>("events").await.unwrap();
        for r in &hand {
            insert.write(r).await.unwrap();
        }
        insert.end().await.unwrap();
        let rows: Vec<EventRow> = client
            .query(
                "SELECT business_id, contact_id, event_id, type, occurred_at_ms, source, data, \
                 topic, partition, offset, ingest_seq FROM events ORDER BY ingest_seq",
            )
            .fetch_all()
            .await
            .unwrap();
        // The hand-made replay shares its event's key, and `events` is a ReplacingMergeTree: a
        // background merge may already have folded the two (ClickHouse 26 merges small parts
        // within the second, 18.16 later), so count keys, not rows.
        let keys: std::collections::HashSet<(&str, &str, &str)> = rows
            .iter()
            .map(|r| (&*r.business_id, &*r.contact_id, &*r.event_id))
            .collect();
        assert_eq!(keys.len(), events as usize + hand.len() - 1);
        assert!(rows.len() <= events as usize + hand.len(), "{}", rows.len());
        let mut actual: Vec<Score> = client
            .query(&recompute_query(NOW_MS))
            .fetch_all()
            .await
            .unwrap();
        drop_database(&url, db).await.unwrap();

        let mut state = PartitionState::default();
        for r in &rows {
            let payload: Payload = serde_json::from_value(serde_json::json!({
                "type": r.kind,
                "data": serde_json::from_str::<serde_json::Value>(&r.data).unwrap(),
            }))
            .unwrap_or_else(|e| panic!("{} {}: {e}", r.kind, r.data));
            state.apply(&Event {
                schema_version: SCHEMA_VERSION,
                event_id: r.event_id.clone(),
                business_id: r.business_id.clone(),
                contact_id: r.contact_id.clone(),
                occurred_at: chrono::DateTime::from_timestamp_millis(r.occurred_at_ms).unwrap(),
                source: r.source.clone(),
                payload,
            });
        }
        let mut keys: Vec<ContactKey> = state.contacts.keys().cloned().collect();
        keys.sort();
        let profiles = Engine::new(ScoringConfig::default())
            .evaluate(&mut state, &keys, NOW_MS, 0)
            .await
            .unwrap();
        let mut expected: Vec<Score> = profiles
            .iter()
            .map(|p| {
                let count = |name: &str| {
                    p.factors
                        .iter()
                        .find(|f| f.factor == name)
                        .map_or(0, |f| f.count)
                };
                Score {
                    business_id: p.business_id.clone(),
                    contact_id: p.contact_id.clone(),
                    lead_score: p.lead_score,
                    bookings_completed: count("bookings_completed"),
                    invoices_paid: count("invoices_paid"),
                    invoices_unpaid: count("invoices_unpaid"),
                    tasks_overdue: count("tasks_overdue"),
                }
            })
            .collect();
        expected.sort();
        actual.sort();
        assert_eq!(expected.len(), 1_003);
        assert_eq!(actual.len(), expected.len());
        let wrong: Vec<_> = actual
            .iter()
            .zip(&expected)
            .filter(|(a, e)| a != e)
            .collect();
        assert!(
            wrong.is_empty(),
            "{} contacts differ (query, engine), first: {:#?}",
            wrong.len(),
            &wrong[..wrong.len().min(3)]
        );
        let hand_actual: Vec<&Score> = actual.iter().filter(|s| s.business_id == "hand").collect();
        assert_eq!(hand_actual, hand_expected.iter().collect::<Vec<_>>());

        // The load exercises every factor and a spread of scores, not just zeros.
        let scores: std::collections::BTreeSet<i64> = actual.iter().map(|s| s.lead_score).collect();
        assert!(scores.len() >= 5, "{scores:?}");
        assert!(actual.iter().any(|s| s.bookings_completed > 0));
        assert!(actual.iter().any(|s| s.invoices_paid > 0));
        assert!(actual.iter().any(|s| s.invoices_unpaid > 0));
        assert!(actual.iter().any(|s| s.tasks_overdue > 0));
        println!("{} contacts match; scores seen: {scores:?}", actual.len());
    }

    /// The benchmark's own measurement at 1M contacts, by hand:
    /// `cargo test --release -p keyflow-bench --lib analyst::tests::one_million -- --ignored --nocapture`
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs ClickHouse; loads 1M contacts"]
    async fn one_million() {
        let r = measure(&test_url(), 1_000_000, 3, |m| println!("analyst: {m}"))
            .await
            .unwrap();
        assert_eq!(r.rows, 1_000_000);
        println!("{}", serde_json::to_string(&r).unwrap());
    }
}
