-- The three spotlights of a business: top 3 contacts by lead score, by bookings in the recent
-- window, and by revenue in the revenue window (ties: lower unpaid balance, then contact id;
-- contacts with none of the ranked quantity are left out of the last two; contacts whose status
-- is UNKNOWN, never set by a contact event, are left out of the lead-score one). Each card carries a
-- suggested call to action: send_reminder (an overdue invoice), call (a LEAD), book (no recent
-- booking), otherwise tag.
-- Inputs: contacts(contact_id, status, lead_score, outstanding_balance_cents, overdue_invoices,
-- recent_bookings, revenue_cents) for the visible contacts of one business.
WITH cards AS (
  SELECT c.*,
         CASE WHEN overdue_invoices > 0 THEN 'send_reminder'
              WHEN UPPER(status) = 'LEAD' THEN 'call'
              WHEN recent_bookings = 0 THEN 'book'
              ELSE 'tag' END AS action
  FROM contacts c
),
ranked AS (
  SELECT 'lead_score' AS spotlight, contact_id, action,
         ROW_NUMBER() OVER (ORDER BY lead_score DESC, outstanding_balance_cents ASC, contact_id) AS rank
  FROM cards WHERE UPPER(status) <> 'UNKNOWN'
  UNION ALL
  SELECT 'recent_bookings', contact_id, action,
         ROW_NUMBER() OVER (ORDER BY recent_bookings DESC, outstanding_balance_cents ASC, contact_id)
  FROM cards WHERE recent_bookings > 0
  UNION ALL
  SELECT 'revenue', contact_id, action,
         ROW_NUMBER() OVER (ORDER BY revenue_cents DESC, outstanding_balance_cents ASC, contact_id)
  FROM cards WHERE revenue_cents > 0
)
SELECT spotlight, CAST(rank AS BIGINT) AS rank, contact_id, action
FROM ranked
WHERE rank <= 3
ORDER BY spotlight, rank
