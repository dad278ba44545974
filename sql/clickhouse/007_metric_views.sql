-- Analyst views over step 3's metrics (current profiles only; deleted and merged-away excluded).

-- ClickHouse fixes a view's columns when it is created: rebuild the current-profiles view of 004
-- so that it shows the columns added by 005.
DROP TABLE IF EXISTS contact_profiles_current;

CREATE VIEW IF NOT EXISTS contact_profiles_current AS
SELECT *
FROM contact_profiles FINAL
WHERE deleted = 0 AND isNull(merged_into);

-- One row per contact and segment it belongs to now.
CREATE VIEW IF NOT EXISTS segment_members AS
SELECT business_id, contact_id, segment, reason, lead_score, status
FROM contact_profiles_current
ARRAY JOIN segment_names AS segment, segment_reasons AS reason;

-- Segment sizes per business.
CREATE VIEW IF NOT EXISTS segment_sizes AS
SELECT business_id, segment, count() AS contacts
FROM segment_members
GROUP BY business_id, segment;

-- The Next Action queue, with age and priority recomputed at query time (the stored ones are as
-- of the last evaluation), highest priority first.
CREATE VIEW IF NOT EXISTS next_action_queue AS
SELECT
    business_id,
    contact_id,
    name,
    kind,
    ref_id,
    since_ms,
    intDiv(toInt64(toUnixTimestamp(now())) * 1000 - since_ms, 86400000) AS age_days,
    round(intDiv(toInt64(toUnixTimestamp(now())) * 1000 - since_ms, 86400000) * (1 + lead_score / 100), 2) AS priority,
    message,
    lead_score
FROM contact_profiles_current
ARRAY JOIN action_kinds AS kind, action_refs AS ref_id, action_since_ms AS since_ms, action_messages AS message
ORDER BY business_id, priority DESC, contact_id, ref_id;

-- Per business and service over the service window: bookings, completed, revenue, and the top 3
-- fans (most bookings of it; ties by revenue, then contact id).
CREATE VIEW IF NOT EXISTS business_services AS
SELECT
    business_id,
    s_id AS service_id,
    any(s_name) AS service_name,
    sum(s_bookings) AS bookings,
    sum(s_completed) AS completed,
    sum(s_revenue) AS revenue_cents,
    arraySlice(arrayMap(x -> x.3, arraySort(x -> (-x.1, -x.2, x.3), groupArray((s_bookings, s_revenue, contact_id)))), 1, 3) AS top_fans
FROM contact_profiles_current
ARRAY JOIN service_ids AS s_id, service_names AS s_name, service_bookings AS s_bookings,
           service_completed AS s_completed, service_revenue_cents AS s_revenue
GROUP BY business_id, s_id
ORDER BY business_id, revenue_cents DESC, bookings DESC, service_id
