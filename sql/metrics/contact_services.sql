-- Per contact and service, over the trailing service window: non-cancelled bookings created in
-- it, how many of those are completed, and the revenue of invoices paid in it that name the
-- service directly or through their booking. The business service view and its top fans are
-- sums of these rows (sql/business/services.sql).
WITH bk AS (
  SELECT b.cid, b.service_id, MAX(b.service_name) AS service_name,
         COUNT(*) AS bookings,
         SUM(CASE WHEN b.completed_at <= p.now THEN 1 ELSE 0 END) AS completed
  FROM params p CROSS JOIN bookings b
  WHERE b.service_id IS NOT NULL
    AND b.created_at <= p.now
    AND b.created_at > p.now - p.service_window_days * p.day_ms
    AND (b.cancelled_at IS NULL OR b.cancelled_at > p.now)
  GROUP BY b.cid, b.service_id
),
rev AS (
  SELECT i.cid, COALESCE(i.service_id, b.service_id) AS service_id,
         MAX(b.service_name) AS service_name,
         SUM(i.amount_cents) AS revenue
  FROM params p
  CROSS JOIN invoices i
  LEFT JOIN bookings b ON b.cid = i.cid AND b.booking_id = i.booking_id
  WHERE i.paid_at <= p.now
    AND i.paid_at > p.now - p.service_window_days * p.day_ms
    AND COALESCE(i.service_id, b.service_id) IS NOT NULL
  GROUP BY i.cid, COALESCE(i.service_id, b.service_id)
)
SELECT COALESCE(bk.cid, rev.cid)                         AS cid,
       COALESCE(bk.service_id, rev.service_id)           AS service_id,
       COALESCE(bk.service_name, rev.service_name)       AS service_name,
       CAST(COALESCE(bk.bookings, 0) AS BIGINT)          AS bookings,
       CAST(COALESCE(bk.completed, 0) AS BIGINT)         AS completed,
       CAST(COALESCE(rev.revenue, 0) AS BIGINT)          AS revenue_cents
FROM bk
FULL OUTER JOIN rev ON rev.cid = bk.cid AND rev.service_id = bk.service_id
ORDER BY cid, service_id
