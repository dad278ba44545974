-- Outstanding balance per contact at the engine's clock: invoices sent and not paid as of now.
--
-- Inputs: contacts(cid), invoices(cid, sent_at, paid_at, amount_cents), params(now, ...).
SELECT c.cid,
       CAST(COALESCE(SUM(i.amount_cents), 0) AS BIGINT) AS outstanding_balance_cents,
       COUNT(i.cid) AS unpaid_invoices
FROM contacts c
LEFT JOIN (
  SELECT i.cid, i.amount_cents
  FROM invoices i CROSS JOIN params p
  WHERE i.sent_at <= p.now AND (i.paid_at IS NULL OR i.paid_at > p.now)
) i ON i.cid = c.cid
GROUP BY c.cid
ORDER BY c.cid
