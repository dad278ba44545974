-- Time between interactions per contact: the gaps, in days, between consecutive distinct local
-- days (the business's time zone) on which the contact had an interaction inside the trailing
-- interaction window (mean and median, 1 decimal; a visit of several events is one day, so it
-- adds no gap), and the local days since the last interaction (any time): midnights passed, so
-- yesterday evening is 1 day ago this morning. Which events are interactions is
-- `[interactions]` (the state keeps only those).
WITH days AS (
  SELECT DISTINCT i.cid, local_day(i.at, p.zone) AS day
  FROM params p CROSS JOIN interactions i
  WHERE i.at <= p.now AND i.at > p.now - p.interaction_window_days * p.day_ms
),
gaps AS (
  SELECT d.cid, CAST(d.day - LAG(d.day) OVER (PARTITION BY d.cid ORDER BY d.day) AS DOUBLE) AS gap
  FROM days d
),
g AS (
  SELECT cid, AVG(gap) AS mean_gap, MEDIAN(gap) AS median_gap
  FROM gaps
  WHERE gap IS NOT NULL
  GROUP BY cid
)
SELECT c.cid,
       ROUND(g.mean_gap, 1)   AS mean_gap_days,
       ROUND(g.median_gap, 1) AS median_gap_days,
       CASE WHEN c.last_interaction_at IS NOT NULL
            THEN GREATEST(0, p.today - local_day(c.last_interaction_at, p.zone))
       END AS days_since_last_interaction
FROM params p
CROSS JOIN contacts c
LEFT JOIN g ON g.cid = c.cid
ORDER BY c.cid
