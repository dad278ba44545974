-- Payment reliability per contact over the invoices whose due date lies in the trailing
-- reliability window (now - reliability_window_days, ∞):
--   on_time = paid on or before the due date; late = paid after it;
--   overdue = not paid as of now and due before now.
-- reliability = round(100 · on_time / (on_time + late + overdue)), NULL when that is 0;
-- avg_days_late = mean of (paid_at - due_at) in days over the late ones, 1 decimal.
WITH w AS (
  SELECT i.cid,
         CASE
           WHEN i.paid_at <= p.now AND i.paid_at <= i.due_at THEN 'on_time'
           WHEN i.paid_at <= p.now THEN 'late'
           WHEN i.due_at < p.now THEN 'overdue'
         END AS outcome,
         CAST(i.paid_at - i.due_at AS DOUBLE) / p.day_ms AS days_late
  FROM params p CROSS JOIN invoices i
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
