-- The Next Action queue in each business's own calendar. 007 recomputed ages at query time as
-- whole 24-hour periods since `since` in UTC; ages now count the business's local days
-- (`[business.<id>] timezone`), which the database does not know. The processor re-evaluates
-- every contact with a queue item at each local midnight of its business, so the stored age and
-- priority are the current ones while it runs; `evaluated_at_ms` says as of when.
DROP TABLE IF EXISTS next_action_queue;

CREATE VIEW IF NOT EXISTS next_action_queue AS
SELECT
    business_id,
    contact_id,
    name,
    kind,
    ref_id,
    since_ms,
    age_days,
    priority,
    message,
    lead_score,
    evaluated_at_ms
FROM contact_profiles_current
ARRAY JOIN action_kinds AS kind, action_refs AS ref_id, action_since_ms AS since_ms,
           action_age_days AS age_days, action_priorities AS priority, action_messages AS message
ORDER BY business_id, priority DESC, contact_id, ref_id;
