-- The business's service view over the service window: per service the bookings, completed
-- bookings and revenue summed over its contacts (contact_services.sql), ranked by revenue and
-- by volume, with its top 3 fans (most bookings of it; ties by revenue, then contact id).
-- Inputs: services(contact_id, service_id, service_name, bookings, completed, revenue_cents)
-- for the visible contacts of one business.
WITH per AS (
  SELECT service_id, MAX(service_name) AS service_name,
         CAST(SUM(bookings) AS BIGINT) AS bookings,
         CAST(SUM(completed) AS BIGINT) AS completed,
         CAST(SUM(revenue_cents) AS BIGINT) AS revenue_cents
  FROM services
  GROUP BY service_id
),
fans AS (
  SELECT service_id, contact_id,
         ROW_NUMBER() OVER (PARTITION BY service_id
                            ORDER BY bookings DESC, revenue_cents DESC, contact_id ASC) AS rn
  FROM services
  WHERE bookings > 0
)
SELECT per.service_id, per.service_name, per.bookings, per.completed, per.revenue_cents,
       ROW_NUMBER() OVER (ORDER BY per.revenue_cents DESC, per.bookings DESC, per.service_id) AS revenue_rank,
       ROW_NUMBER() OVER (ORDER BY per.bookings DESC, per.revenue_cents DESC, per.service_id) AS volume_rank,
       MAX(CASE WHEN f.rn = 1 THEN f.contact_id END) AS fan_1,
       MAX(CASE WHEN f.rn = 2 THEN f.contact_id END) AS fan_2,
       MAX(CASE WHEN f.rn = 3 THEN f.contact_id END) AS fan_3
FROM per
LEFT JOIN fans f ON f.service_id = per.service_id AND f.rn <= 3
GROUP BY per.service_id, per.service_name, per.bookings, per.completed, per.revenue_cents
ORDER BY revenue_rank
