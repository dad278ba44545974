-- The 14-day lead score of every contact, recomputed from the raw `events` table: what an
-- analyst would run against ClickHouse instead of reading KeyFlow's `contact_profiles`.
-- `keyflow bench` times it (src/bench/analyst.rs).
--
-- Placeholder: {now_ms} is the instant to score at, UTC milliseconds since the epoch; the caller
-- replaces every occurrence with an integer literal (ClickHouse 18.16 has no query parameters).
-- Left in place it is a syntax error, never a silent default.
--
-- The rules are those of sql/metrics/lead_score.sql (the engine's DataFusion version), with the
-- default [scoring] settings of pipeline/src/config.rs written in:
--   window 14 days = 1209600000 ms; window_start = now - window
--   B = bookings completed in (window_start, now]                 weight 15, cap 4
--   P = invoices paid in (window_start, now]                      weight 10, cap 4
--   U = invoices sent and not paid as of now                      weight 10, cap 3 (subtracted)
--   O = tasks created, not completed as of now, with due_at < now weight  5, cap 4 (subtracted)
--   lead_score = clamp(15*min(B,4) + 10*min(P,4) - 10*min(U,3) - 5*min(O,4), 0, 100)
-- Each fact's instant is the earliest event of its step, as the pipeline's state keeps it
-- (pipeline/src/state.rs): a booking's `completed_at` is its first `booking.completed`, an
-- invoice's `sent_at`/`paid_at` its first `invoice.sent`/`invoice.paid`, a task's
-- `created_at`/`completed_at` its first `task.created`/`task.completed`. Facts are keyed by
-- contact and the id in `data` (`booking_id`, `invoice_id`, `task_id`). A task's `due_at` is the
-- RFC 3339 string of its `task.created` (the latest ingested one if there are several), read to
-- the millisecond as chrono writes it (`2026-01-01T09:30:00Z`, `...:00.250Z`).
--
-- Every contact with at least one event gets a row, scored 0 when nothing counts. Replayed events
-- are read once (`FINAL`); the aggregates (earliest instant, any-of) would give the same answer
-- without it. Not reproduced: `contact.merged` (the pipeline folds a merged contact's facts into
-- the survivor; here each contact id keeps its own events) and per-business [scoring] overrides.
--
-- Written for ClickHouse 18.16 and current releases alike: visitParamExtract* (no JSONExtract),
-- parseDateTimeBestEffortOrZero, -If combinators, Int64 milliseconds (no DateTime64), no query
-- parameters, no Map.
SELECT
    business_id,
    contact_id,
    greatest(0, least(100,
          15 * least(bookings_completed, 4)
        + 10 * least(invoices_paid, 4)
        - 10 * least(invoices_unpaid, 3)
        -  5 * least(tasks_overdue, 4))) AS lead_score,
    bookings_completed,
    invoices_paid,
    invoices_unpaid,
    tasks_overdue
FROM
(
    -- Per contact: the four factor counts at {now_ms}.
    SELECT
        business_id,
        contact_id,
        toInt64(countIf(fact = 'booking'
            AND closed > 0 AND closed_at > {now_ms} - 1209600000 AND closed_at <= {now_ms})) AS bookings_completed,
        toInt64(countIf(fact = 'invoice'
            AND closed > 0 AND closed_at > {now_ms} - 1209600000 AND closed_at <= {now_ms})) AS invoices_paid,
        toInt64(countIf(fact = 'invoice'
            AND opened > 0 AND opened_at <= {now_ms}
            AND NOT (closed > 0 AND closed_at <= {now_ms}))) AS invoices_unpaid,
        toInt64(countIf(fact = 'task'
            AND opened > 0 AND opened_at <= {now_ms}
            AND NOT (closed > 0 AND closed_at <= {now_ms})
            AND toInt64(toUnixTimestamp(parseDateTimeBestEffortOrZero(due_text))) * 1000
                + toInt64OrZero(substring(concat(extract(due_text, '[.]([0-9]+)'), '000'), 1, 3))
                < {now_ms})) AS tasks_overdue
    FROM
    (
        -- Per fact (one booking, invoice or task of a contact): how many events opened and
        -- closed it, and the earliest of each. Events that matter to no factor collapse into
        -- one empty fact per contact, so every contact still gets a row above.
        --   booking: closed by booking.completed
        --   invoice: opened by invoice.sent, closed by invoice.paid
        --   task:    opened by task.created, closed by task.completed
        SELECT
            business_id,
            contact_id,
            multiIf(type = 'booking.completed', 'booking',
                    type IN ('invoice.sent', 'invoice.paid'), 'invoice',
                    type IN ('task.created', 'task.completed'), 'task',
                    '') AS fact,
            multiIf(fact = 'booking', visitParamExtractString(data, 'booking_id'),
                    fact = 'invoice', visitParamExtractString(data, 'invoice_id'),
                    fact = 'task', visitParamExtractString(data, 'task_id'),
                    '') AS fact_id,
            countIf(type IN ('invoice.sent', 'task.created')) AS opened,
            minIf(occurred_at_ms, type IN ('invoice.sent', 'task.created')) AS opened_at,
            countIf(type IN ('booking.completed', 'invoice.paid', 'task.completed')) AS closed,
            minIf(occurred_at_ms, type IN ('booking.completed', 'invoice.paid', 'task.completed')) AS closed_at,
            argMaxIf(visitParamExtractString(data, 'due_at'), ingest_seq, type = 'task.created') AS due_text
        FROM events FINAL
        GROUP BY business_id, contact_id, fact, fact_id
    )
    GROUP BY business_id, contact_id
)
ORDER BY business_id, contact_id
