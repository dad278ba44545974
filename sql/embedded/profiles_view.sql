-- Current profiles in the embedded store: the latest written version of each contact.
CREATE VIEW profiles AS
SELECT * EXCEPT (rn)
FROM (
  SELECT v.*,
         ROW_NUMBER() OVER (PARTITION BY business_id, contact_id ORDER BY evaluated_at DESC) AS rn
  FROM profile_versions v
)
WHERE rn = 1
