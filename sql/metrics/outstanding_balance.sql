-- Outstanding balance per contact at the engine's clock: invoices sent and not paid as of now,
-- how many there are and how many are past due, and the oldest of them (earliest due date; ties:
-- earliest sent, then invoice id) with its whole days past due (0 while not yet due).
WITH unpaid AS (
  SELECT i.cid, i.invoice_id, i.amount_cents, i.due_at,
         CASE WHEN i.due_at < p.now THEN 1 ELSE 0 END AS is_overdue,
         CASE WHEN i.due_at < p.now THEN (p.now - i.due_at) / p.day_ms ELSE 0 END AS days_overdue,
         ROW_NUMBER() OVER (PARTITION BY i.cid ORDER BY i.due_at ASC NULLS LAST, i.sent_at ASC, i.invoice_id ASC) AS rn
  FROM params p CROSS JOIN invoices i
  WHERE i.sent_at <= p.now AND (i.paid_at IS NULL OR i.paid_at > p.now)
)
SELECT c.cid,
       CAST(COALESCE(SUM(u.amount_cents), 0) AS BIGINT)     AS outstanding_balance_cents,
       COUNT(u.cid)                                        AS unpaid_invoices,
       CAST(COALESCE(SUM(u.is_overdue), 0) AS BIGINT)       AS overdue_invoices,
       MAX(CASE WHEN u.rn = 1 THEN u.invoice_id END)       AS oldest_unpaid_invoice_id,
       MAX(CASE WHEN u.rn = 1 THEN u.due_at END)           AS oldest_unpaid_due_at,
       MAX(CASE WHEN u.rn = 1 THEN u.days_overdue END)     AS days_overdue
FROM contacts c
LEFT JOIN unpaid u ON u.cid = c.cid
GROUP BY c.cid
ORDER BY c.cid
