-- What each analyst view shows for the demo stream of tests/clickhouse.rs (`demo_stream`, seed 5,
-- clock 2026-11-20T12:00:00Z), one query per view; `-- view: <name>` starts a query and names
-- its golden file, `<name>.tsv` beside this one (TabSeparatedWithNames). The same rows are
-- expected from every ClickHouse version the tests run against (18.16 and 26.x).
-- next_action_queue's age_days and priority are the stored ones (local days, as of the evaluation).

-- view: contact_profiles_current
SELECT business_id, contact_id, status, lead_score, factor_names, factor_counts, factor_points,
       outstanding_balance_cents, unpaid_invoices, overdue_invoices, days_overdue,
       payment_reliability, round(avg_days_late, 3) AS avg_days_late, top_service_id,
       round(top_service_share, 3) AS top_service_share, round(mean_gap_days, 3) AS mean_gap_days,
       round(median_gap_days, 3) AS median_gap_days, days_since_last_interaction,
       completed_bookings_total, recent_bookings, revenue_cents, pending_confirmations,
       segment_names
FROM contact_profiles_current
ORDER BY business_id, contact_id

-- view: events_unique
SELECT business_id, type, count() AS events, uniqExact(contact_id) AS contacts
FROM events_unique
GROUP BY business_id, type
ORDER BY business_id, type

-- view: lead_score_daily
SELECT business_id, day, contacts_changed, round(avg_score, 3) AS avg_score, max_score
FROM lead_score_daily
ORDER BY business_id, day

-- view: segment_members
SELECT business_id, segment, contact_id, reason, lead_score, status
FROM segment_members
ORDER BY business_id, segment, contact_id

-- view: segment_sizes
SELECT business_id, segment, contacts
FROM segment_sizes
ORDER BY business_id, segment

-- view: next_action_queue
SELECT business_id, contact_id, name, kind, ref_id, since_ms, age_days, priority, message, lead_score,
       evaluated_at_ms
FROM next_action_queue
ORDER BY business_id, contact_id, kind, ref_id

-- view: business_services
SELECT business_id, service_id, service_name, bookings, completed, revenue_cents, top_fans
FROM business_services
ORDER BY business_id, revenue_cents DESC, bookings DESC, service_id
