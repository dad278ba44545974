-- Next Action items per contact at now. Each item: kind, ref id, since (the instant its age
-- counts from), age in local days (the business's time zone: midnights since `since`),
-- priority = age_days × (1 + lead_score / 100), message (instants in local time).
--   invoice_overdue      the oldest unpaid invoice, once overdue (since = its overdue_from: the
--                        due date, or an earlier invoice.overdue)
--   booking_unconfirmed  created, neither confirmed, cancelled nor completed, not started yet,
--                        and starting within the next unconfirmed_starts_within_hours or
--                        created at least unconfirmed_created_hours ago (since = creation). It
--                        leaves the queue at the booking's start for good: opened once and
--                        resolved once, never reopened by the creation-age rule.
--   task_stale           an open task past its due date (since = due date)
--   lead_stale           a LEAD untouched for at least lead_stale_days local days (since = last
--                        interaction)
-- Deleted and merged-away contacts have no items. Reads lead_score and outstanding_balance.
WITH items AS (
  SELECT o.cid, 'invoice_overdue' AS kind, o.oldest_unpaid_invoice_id AS ref_id,
         o.oldest_overdue_since AS since,
         'Invoice #' || o.oldest_unpaid_invoice_id || ' overdue by '
           || CAST(o.days_overdue AS VARCHAR) || ' days — send reminder' AS message
  FROM params p CROSS JOIN outstanding_balance o
  WHERE o.oldest_overdue_since IS NOT NULL
  UNION ALL
  SELECT b.cid, 'booking_unconfirmed', b.booking_id, b.created_at,
         'Booking for ' || COALESCE(b.service_name, b.service_id, 'a service') || ' on '
           || local_minute(b.starts_at, p.zone) || ' not confirmed — confirm it'
  FROM params p CROSS JOIN bookings b
  WHERE b.created_at <= p.now
    AND (b.confirmed_at IS NULL OR b.confirmed_at > p.now)
    AND (b.cancelled_at IS NULL OR b.cancelled_at > p.now)
    AND (b.completed_at IS NULL OR b.completed_at > p.now)
    AND b.starts_at > p.now
    AND (b.starts_at <= p.now + p.unconfirmed_starts_within_hours * p.hour_ms
         OR b.created_at <= p.now - p.unconfirmed_created_hours * p.hour_ms)
  UNION ALL
  SELECT t.cid, 'task_stale', t.task_id, t.due_at,
         'Task "' || COALESCE(t.title, t.task_id) || '" overdue by '
           || CAST(p.today - local_day(t.due_at, p.zone) AS VARCHAR) || ' days — complete or reschedule it'
  FROM params p CROSS JOIN tasks t
  WHERE t.created_at <= p.now
    AND (t.completed_at IS NULL OR t.completed_at > p.now)
    AND t.due_at < p.now
  UNION ALL
  SELECT c.cid, 'lead_stale', c.contact_id, c.last_interaction_at,
         'Follow up with lead not touched in '
           || CAST(p.today - local_day(c.last_interaction_at, p.zone) AS VARCHAR) || ' days'
  FROM params p CROSS JOIN contacts c
  WHERE UPPER(c.status) = 'LEAD'
    AND c.last_interaction_at <= p.now
    AND p.today - local_day(c.last_interaction_at, p.zone) >= p.lead_stale_days
)
SELECT i.cid, i.kind, i.ref_id, i.since,
       GREATEST(0, p.today - local_day(i.since, p.zone)) AS age_days,
       ROUND(CAST(GREATEST(0, p.today - local_day(i.since, p.zone)) AS DOUBLE) * (1.0 + CAST(s.lead_score AS DOUBLE) / 100.0), 2) AS priority,
       i.message
FROM params p
CROSS JOIN items i
JOIN contacts c   ON c.cid = i.cid
JOIN lead_score s ON s.cid = i.cid
WHERE c.visible
ORDER BY i.cid, priority DESC, i.kind, i.ref_id
