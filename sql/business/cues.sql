-- Integration cues of a business: invoices paid in the recent-paid window (count, sum), bookings
-- pending confirmation, overdue invoices, overdue tasks, promotions suggested.
-- Inputs: contacts(recent_paid_invoices, recent_paid_cents, pending_confirmations,
-- overdue_invoices, overdue_tasks, promotion_suggested) for the visible contacts of one business.
SELECT CAST(COALESCE(SUM(recent_paid_invoices), 0) AS BIGINT)  AS paid_invoices,
       CAST(COALESCE(SUM(recent_paid_cents), 0) AS BIGINT)     AS paid_cents,
       CAST(COALESCE(SUM(pending_confirmations), 0) AS BIGINT) AS bookings_pending_confirmation,
       CAST(COALESCE(SUM(overdue_invoices), 0) AS BIGINT)      AS overdue_invoices,
       CAST(COALESCE(SUM(overdue_tasks), 0) AS BIGINT)         AS overdue_tasks,
       CAST(COALESCE(SUM(CASE WHEN promotion_suggested THEN 1 ELSE 0 END), 0) AS BIGINT) AS promotions_suggested
FROM contacts
