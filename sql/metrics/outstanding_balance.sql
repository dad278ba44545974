-- Outstanding balance per contact at the engine's clock: invoices sent and not paid as of now,
-- how many there are and how many are overdue, and the oldest of them (earliest overdue_from;
-- ties: earliest sent, then invoice id) with its days overdue: local days (the business's
-- time zone) since its overdue_from, 0 while not overdue.
-- An invoice is overdue once its due date has passed, or from the instant of an
-- `invoice.overdue` for it (even before its due date): overdue_from is the earlier of the two.
-- Also returns oldest_overdue_since (the oldest unpaid invoice's overdue_from once it is
-- overdue), which next_actions.sql reads.
WITH i AS (
  SELECT i.*,
         CASE WHEN i.overdue_at IS NOT NULL AND (i.due_at IS NULL OR i.overdue_at < i.due_at)
              THEN i.overdue_at ELSE i.due_at END AS overdue_from,
         (i.due_at < p.now OR i.overdue_at <= p.now) AS overdue
  FROM params p CROSS JOIN invoices i
),
unpaid AS (
  SELECT i.cid, i.invoice_id, i.amount_cents, i.due_at, i.overdue_from,
         CASE WHEN i.overdue THEN 1 ELSE 0 END AS is_overdue,
         CASE WHEN i.overdue THEN GREATEST(0, p.today - local_day(i.overdue_from, p.zone)) ELSE 0 END AS days_overdue,
         ROW_NUMBER() OVER (PARTITION BY i.cid ORDER BY i.overdue_from ASC NULLS LAST, i.sent_at ASC, i.invoice_id ASC) AS rn
  FROM params p CROSS JOIN i
  WHERE i.sent_at <= p.now AND (i.paid_at IS NULL OR i.paid_at > p.now)
)
SELECT c.cid,
       CAST(COALESCE(SUM(u.amount_cents), 0) AS BIGINT)     AS outstanding_balance_cents,
       COUNT(u.cid)                                        AS unpaid_invoices,
       CAST(COALESCE(SUM(u.is_overdue), 0) AS BIGINT)       AS overdue_invoices,
       MAX(CASE WHEN u.rn = 1 THEN u.invoice_id END)       AS oldest_unpaid_invoice_id,
       MAX(CASE WHEN u.rn = 1 THEN u.due_at END)           AS oldest_unpaid_due_at,
       MAX(CASE WHEN u.rn = 1 THEN u.days_overdue END)     AS days_overdue,
       MAX(CASE WHEN u.rn = 1 AND u.is_overdue = 1 THEN u.overdue_from END) AS oldest_overdue_since
FROM contacts c
LEFT JOIN unpaid u ON u.cid = c.cid
GROUP BY c.cid
ORDER BY c.cid
