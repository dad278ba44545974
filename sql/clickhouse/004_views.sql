-- Analyst views over the tables above.

-- Current profiles, one row per contact, deleted and merged-away contacts excluded.
CREATE VIEW IF NOT EXISTS contact_profiles_current AS
SELECT *
FROM contact_profiles FINAL
WHERE deleted = 0 AND isNull(merged_into);

-- Every event once.
CREATE VIEW IF NOT EXISTS events_unique AS
SELECT *
FROM events FINAL;

-- Per business and day: how many contacts changed score, and their average and best end-of-day
-- score (the last change of each contact that day).
CREATE VIEW IF NOT EXISTS lead_score_daily AS
SELECT
    business_id,
    day,
    count() AS contacts_changed,
    avg(last_score) AS avg_score,
    max(last_score) AS max_score
FROM
(
    SELECT
        business_id,
        contact_id,
        toDate(evaluated_at) AS day,
        argMax(new_score, evaluated_at_ms) AS last_score
    FROM lead_score_history FINAL
    GROUP BY business_id, contact_id, day
)
GROUP BY business_id, day
ORDER BY business_id, day
