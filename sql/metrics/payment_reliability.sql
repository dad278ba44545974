-- Payment reliability per contact over the invoices whose due date lies in the trailing
-- reliability window (now - reliability_window_days, ∞), each measured against its overdue_from
-- (the due date, or an earlier `invoice.overdue`, as in outstanding_balance.sql):
--   on_time = paid on or before overdue_from; late = paid after it;
--   overdue = not paid as of now, and past its due date or marked overdue by now.
-- reliability = round(100 · on_time / (on_time + late + overdue)), NULL when that is 0;
-- avg_days_late = mean of (paid_at - overdue_from) in days over the late ones, 1 decimal.
WITH i AS (
  SELECT i.*,
         CASE WHEN i.overdue_at IS NOT NULL AND (i.due_at IS NULL OR i.overdue_at < i.due_at)
              THEN i.overdue_at ELSE i.due_at END AS overdue_from
  FROM invoices i
),
w AS (
  SELECT i.cid,
         CASE
           WHEN i.paid_at <= p.now AND i.paid_at <= i.overdue_from THEN 'on_time'
           WHEN i.paid_at <= p.now THEN 'late'
           WHEN i.due_at < p.now OR i.overdue_at <= p.now THEN 'overdue'
         END AS outcome,
         CAST(i.paid_at - i.overdue_from AS DOUBLE) / p.day_ms AS days_late
  FROM params p CROSS JOIN i
  WHERE i.due_at > p.now - p.reliability_window_days * p.day_ms
),
k AS (
  SELECT cid,
         CAST(SUM(CASE WHEN outcome = 'on_time' THEN 1 ELSE 0 END) AS BIGINT) AS on_time,
         CAST(SUM(CASE WHEN outcome = 'late' THEN 1 ELSE 0 END) AS BIGINT)    AS late,
         CAST(SUM(CASE WHEN outcome = 'overdue' THEN 1 ELSE 0 END) AS BIGINT) AS overdue,
         AVG(CASE WHEN outcome = 'late' THEN days_late END)                    AS avg_days_late
  FROM w
  GROUP BY cid
)
SELECT c.cid,
       COALESCE(k.on_time, 0) AS invoices_on_time,
       COALESCE(k.late, 0)    AS invoices_late,
       COALESCE(k.overdue, 0) AS invoices_overdue,
       CASE WHEN k.on_time + k.late + k.overdue > 0
            THEN CAST(ROUND(100.0 * k.on_time / (k.on_time + k.late + k.overdue)) AS BIGINT)
       END AS payment_reliability,
       ROUND(k.avg_days_late, 1) AS avg_days_late
FROM contacts c
LEFT JOIN k ON k.cid = c.cid
ORDER BY c.cid
