-- The business's Next Action queue, ranked, with age and priority recomputed at the query's
-- `now` (the stored values are as of each contact's last evaluation): age = local days (the
-- business's calendar) since `since`, priority = age × (1 + lead_score / 100); ties: older
-- first, then contact and ref id. Inputs: queue(contact_id, kind, ref_id, since, since_day,
-- message, lead_score), params(now, today).
SELECT q.contact_id, q.kind, q.ref_id, q.since,
       GREATEST(0, p.today - q.since_day) AS age_days,
       ROUND(CAST(GREATEST(0, p.today - q.since_day) AS DOUBLE) * (1.0 + CAST(q.lead_score AS DOUBLE) / 100.0), 2) AS priority,
       q.message
FROM params p CROSS JOIN queue q
ORDER BY priority DESC, q.since ASC, q.contact_id, q.ref_id
