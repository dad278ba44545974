-- Service affinity per contact: bookings created in the trailing affinity window and not
-- cancelled (as of now), counted per service. The top service has the most of them (ties: the
-- most recent booking, then the smaller service id); its share is of all those bookings.
WITH w AS (
  SELECT b.cid, b.service_id, b.service_name, b.created_at
  FROM params p CROSS JOIN bookings b
  WHERE b.service_id IS NOT NULL
    AND b.created_at <= p.now
    AND b.created_at > p.now - p.affinity_window_days * p.day_ms
    AND (b.cancelled_at IS NULL OR b.cancelled_at > p.now)
),
per AS (
  SELECT cid, service_id, MAX(service_name) AS service_name, COUNT(*) AS n,
         MAX(created_at) AS last_at
  FROM w
  GROUP BY cid, service_id
),
ranked AS (
  SELECT per.*,
         SUM(n) OVER (PARTITION BY cid) AS total,
         ROW_NUMBER() OVER (PARTITION BY cid ORDER BY n DESC, last_at DESC, service_id ASC) AS rn
  FROM per
)
SELECT c.cid,
       r.service_id                                     AS top_service_id,
       r.service_name                                   AS top_service_name,
       COALESCE(r.n, 0)                                 AS top_service_bookings,
       CAST(COALESCE(r.total, 0) AS BIGINT)             AS affinity_bookings,
       ROUND(CAST(r.n AS DOUBLE) / r.total, 3)          AS top_service_share
FROM contacts c
LEFT JOIN ranked r ON r.cid = c.cid AND r.rn = 1
ORDER BY c.cid
