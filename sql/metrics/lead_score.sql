-- Lead score per contact at the engine's clock, factor by factor.
--
-- Inputs: the engine's tables (see README.md; instants are UTC milliseconds), of which
--   bookings(cid, completed_at), invoices(cid, sent_at, paid_at),
--   tasks(cid, created_at, due_at, completed_at), params(now, window_start, <weight>, <cap>...)
--
-- B = bookings completed in (window_start, now]
-- P = invoices paid in (window_start, now]
-- U = invoices sent and not paid as of now
-- O = tasks created, not completed as of now, with due_at < now
-- score = clamp(wB*min(B,cB) + wP*min(P,cP) - wU*min(U,cU) - wO*min(O,cO), 0, 100)
WITH
  b AS (
    SELECT k.cid, COUNT(*) AS n
    FROM params p CROSS JOIN bookings k
    WHERE k.completed_at > p.window_start AND k.completed_at <= p.now
    GROUP BY k.cid
  ),
  paid AS (
    SELECT i.cid, COUNT(*) AS n
    FROM params p CROSS JOIN invoices i
    WHERE i.paid_at > p.window_start AND i.paid_at <= p.now
    GROUP BY i.cid
  ),
  unpaid AS (
    SELECT i.cid, COUNT(*) AS n
    FROM params p CROSS JOIN invoices i
    WHERE i.sent_at <= p.now AND (i.paid_at IS NULL OR i.paid_at > p.now)
    GROUP BY i.cid
  ),
  overdue AS (
    SELECT t.cid, COUNT(*) AS n
    FROM params p CROSS JOIN tasks t
    WHERE t.created_at <= p.now
      AND (t.completed_at IS NULL OR t.completed_at > p.now)
      AND t.due_at < p.now
    GROUP BY t.cid
  ),
  counts AS (
    SELECT c.cid,
           COALESCE(b.n, 0)       AS bookings_completed,
           COALESCE(paid.n, 0)    AS invoices_paid,
           COALESCE(unpaid.n, 0)  AS invoices_unpaid,
           COALESCE(overdue.n, 0) AS tasks_overdue
    FROM contacts c
    LEFT JOIN b       ON b.cid = c.cid
    LEFT JOIN paid    ON paid.cid = c.cid
    LEFT JOIN unpaid  ON unpaid.cid = c.cid
    LEFT JOIN overdue ON overdue.cid = c.cid
  ),
  points AS (
    SELECT k.*,
            p.booking_weight      * LEAST(k.bookings_completed, p.booking_cap)      AS bookings_points,
            p.paid_weight         * LEAST(k.invoices_paid, p.paid_cap)              AS paid_points,
           -p.unpaid_weight       * LEAST(k.invoices_unpaid, p.unpaid_cap)          AS unpaid_points,
           -p.overdue_task_weight * LEAST(k.tasks_overdue, p.overdue_task_cap)      AS overdue_points
    FROM params p CROSS JOIN counts k
  )
SELECT cid,
       bookings_completed, bookings_points,
       invoices_paid, paid_points,
       invoices_unpaid, unpaid_points,
       tasks_overdue, overdue_points,
       GREATEST(0, LEAST(100, bookings_points + paid_points + unpaid_points + overdue_points)) AS lead_score
FROM points
ORDER BY cid
