-- Segment membership per contact at now, with the reason shown beside it. Reads the results of
-- the metric files run before it (lead_score, outstanding_balance, payment_reliability,
-- interaction_gaps, activity). Deleted and merged-away contacts belong to no segment.
-- Each branch carries its `-- definition <segment>: <text>` line: the API renders it with the
-- `params` values in force for the business ({name} is the params column), so what a user reads
-- is the rule that ran.
WITH s AS (
  SELECT c.cid, UPPER(c.status) = 'LEAD' AS is_lead, c.created_at, c.last_interaction_at,
         l.lead_score, r.payment_reliability, o.unpaid_invoices, o.overdue_invoices,
         g.days_since_last_interaction, a.top_clients_paid, a.top_clients_bookings, a.vip_bookings
  FROM contacts c
  JOIN lead_score l          ON l.cid = c.cid
  JOIN payment_reliability r ON r.cid = c.cid
  JOIN outstanding_balance o ON o.cid = c.cid
  JOIN interaction_gaps g    ON g.cid = c.cid
  JOIN activity a            ON a.cid = c.cid
  WHERE c.visible
),
m AS (
  -- definition new_leads_this_week: status LEAD, created since {week_starts_on} 00:00 {timezone}, the start of this week
  SELECT s.cid, 'new_leads_this_week' AS segment,
         'lead created ' || to_char(to_timestamp_millis(local_day(s.created_at, p.zone) * p.day_ms), '%Y-%m-%d') AS reason
  FROM params p CROSS JOIN s
  WHERE s.is_lead AND s.created_at <= p.now AND s.created_at >= p.week_start
  UNION ALL
  -- definition cold_leads_unpaid: status LEAD, no interaction for {cold_lead_days} days (local days), at least one unpaid invoice
  SELECT s.cid, 'cold_leads_unpaid',
         'lead untouched for ' || CAST(s.days_since_last_interaction AS VARCHAR) || ' days with '
           || CAST(s.unpaid_invoices AS VARCHAR) || ' unpaid invoice(s)'
  FROM params p CROSS JOIN s
  WHERE s.is_lead AND s.days_since_last_interaction >= p.cold_lead_days
    AND s.unpaid_invoices >= 1
  UNION ALL
  -- definition top_clients: at least {top_clients_min_paid} invoices paid and {top_clients_min_bookings} non-cancelled bookings in the last {top_clients_days} days
  SELECT s.cid, 'top_clients',
         CAST(s.top_clients_paid AS VARCHAR) || ' invoices paid and '
           || CAST(s.top_clients_bookings AS VARCHAR) || ' bookings in '
           || CAST(p.top_clients_days AS VARCHAR) || ' days'
  FROM params p CROSS JOIN s
  WHERE s.top_clients_paid >= p.top_clients_min_paid
    AND s.top_clients_bookings >= p.top_clients_min_bookings
  UNION ALL
  -- definition high_frequency_vip: at least {vip_min_bookings} non-cancelled bookings in the last {vip_days} days
  SELECT s.cid, 'high_frequency_vip',
         CAST(s.vip_bookings AS VARCHAR) || ' bookings in ' || CAST(p.vip_days AS VARCHAR) || ' days'
  FROM params p CROSS JOIN s
  WHERE s.vip_bookings >= p.vip_min_bookings
  UNION ALL
  -- definition delayed_payment_follow_up: an overdue unpaid invoice, or payment reliability below {delayed_reliability_below}
  SELECT s.cid, 'delayed_payment_follow_up',
         CASE WHEN s.overdue_invoices >= 1
              THEN CAST(s.overdue_invoices AS VARCHAR) || ' overdue invoice(s)'
              ELSE 'payment reliability ' || CAST(s.payment_reliability AS VARCHAR) || '%'
         END
  FROM params p CROSS JOIN s
  WHERE s.overdue_invoices >= 1 OR s.payment_reliability < p.delayed_reliability_below
  UNION ALL
  -- definition gold: lead score {gold_min_score} or more
  -- definition silver: lead score {silver_min_score} or more and below {gold_min_score}
  -- definition bronze: lead score below {silver_min_score}
  SELECT s.cid,
         CASE WHEN s.lead_score >= p.gold_min_score THEN 'gold'
              WHEN s.lead_score >= p.silver_min_score THEN 'silver'
              ELSE 'bronze' END,
         'lead score ' || CAST(s.lead_score AS VARCHAR)
  FROM params p CROSS JOIN s
  UNION ALL
  -- definition tag:*: contacts tagged {tag}
  SELECT s.cid, 'tag:' || t.tag, 'tagged ' || t.tag
  FROM s JOIN contact_tags t ON t.cid = s.cid
)
SELECT cid, segment, reason
FROM m
ORDER BY cid, segment
