-- Time between interactions per contact: the gaps, in days, between consecutive events of the
-- contact inside the trailing interaction window (mean and median, 1 decimal), and whole days
-- since the last interaction (any time).
WITH w AS (
  SELECT i.cid, i.at
  FROM params p CROSS JOIN interactions i
  WHERE i.at <= p.now AND i.at > p.now - p.interaction_window_days * p.day_ms
),
gaps AS (
  SELECT w.cid, CAST(w.at - LAG(w.at) OVER (PARTITION BY w.cid ORDER BY w.at) AS DOUBLE) / p.day_ms AS gap
  FROM params p CROSS JOIN w
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
            THEN GREATEST(0, (p.now - c.last_interaction_at) / p.day_ms)
       END AS days_since_last_interaction
FROM params p
CROSS JOIN contacts c
LEFT JOIN g ON g.cid = c.cid
ORDER BY c.cid
