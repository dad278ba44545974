-- Activity counters per contact that the segments, highlights and cues read (all as of now):
--   completed_bookings_total   bookings completed, all time (status promotion)
--   recent_bookings            non-cancelled bookings created this week (the business's calendar
--                              week, from its first day's local midnight)
--   top_clients_bookings       ... created in the top-clients window
--   vip_bookings               ... created in the VIP window
--   pending_confirmations      future bookings neither confirmed, cancelled nor completed
--   top_clients_paid           invoices paid in the top-clients window
--   revenue_cents              sum of invoices paid in the revenue window
--   recent_paid_invoices/_cents invoices paid in the recent-paid window
--   promotion_eligible         a LEAD (known from contact.created, so an early booking does not
--                              count as a lead's) with promotion_min_completed completed bookings
WITH b AS (
  SELECT b.cid,
         SUM(CASE WHEN b.completed_at <= p.now THEN 1 ELSE 0 END) AS completed_total,
         SUM(CASE WHEN live AND b.created_at >= p.week_start THEN 1 ELSE 0 END) AS recent,
         SUM(CASE WHEN live AND b.created_at > p.now - p.top_clients_days * p.day_ms THEN 1 ELSE 0 END) AS top_clients,
         SUM(CASE WHEN live AND b.created_at > p.now - p.vip_days * p.day_ms THEN 1 ELSE 0 END) AS vip,
         SUM(CASE WHEN live AND b.starts_at > p.now
                   AND (b.confirmed_at IS NULL OR b.confirmed_at > p.now)
                   AND (b.completed_at IS NULL OR b.completed_at > p.now) THEN 1 ELSE 0 END) AS pending
  FROM params p CROSS JOIN (
    SELECT b.*,
           (b.created_at <= p.now AND (b.cancelled_at IS NULL OR b.cancelled_at > p.now)) AS live
    FROM params p CROSS JOIN bookings b
  ) b
  GROUP BY b.cid
),
i AS (
  SELECT i.cid,
         SUM(CASE WHEN i.paid_at <= p.now AND i.paid_at > p.now - p.top_clients_days * p.day_ms THEN 1 ELSE 0 END) AS top_clients_paid,
         SUM(CASE WHEN i.paid_at <= p.now AND i.paid_at > p.now - p.revenue_window_days * p.day_ms THEN i.amount_cents ELSE 0 END) AS revenue,
         SUM(CASE WHEN i.paid_at <= p.now AND i.paid_at > p.now - p.recent_paid_days * p.day_ms THEN 1 ELSE 0 END) AS recent_paid,
         SUM(CASE WHEN i.paid_at <= p.now AND i.paid_at > p.now - p.recent_paid_days * p.day_ms THEN i.amount_cents ELSE 0 END) AS recent_paid_cents
  FROM params p CROSS JOIN invoices i
  GROUP BY i.cid
)
SELECT c.cid,
       CAST(COALESCE(b.completed_total, 0) AS BIGINT)  AS completed_bookings_total,
       CAST(COALESCE(b.recent, 0) AS BIGINT)           AS recent_bookings,
       CAST(COALESCE(b.top_clients, 0) AS BIGINT)      AS top_clients_bookings,
       CAST(COALESCE(b.vip, 0) AS BIGINT)              AS vip_bookings,
       CAST(COALESCE(b.pending, 0) AS BIGINT)          AS pending_confirmations,
       CAST(COALESCE(i.top_clients_paid, 0) AS BIGINT) AS top_clients_paid,
       CAST(COALESCE(i.revenue, 0) AS BIGINT)          AS revenue_cents,
       CAST(COALESCE(i.recent_paid, 0) AS BIGINT)      AS recent_paid_invoices,
       CAST(COALESCE(i.recent_paid_cents, 0) AS BIGINT) AS recent_paid_cents,
       (UPPER(c.status) = 'LEAD' AND c.created_at IS NOT NULL AND c.visible
        AND COALESCE(b.completed_total, 0) >= p.promotion_min_completed) AS promotion_eligible
FROM params p
CROSS JOIN contacts c
LEFT JOIN b ON b.cid = c.cid
LEFT JOIN i ON i.cid = c.cid
ORDER BY c.cid
