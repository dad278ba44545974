-- The activity section's promotion_eligible (activity.sql): a LEAD with
-- promotion_min_completed completed bookings, as of the evaluation. Since 011 the profile's
-- metric sections are written whole (model/src/sections.rs), so every column of a section has
-- one here. Rows written before read 0; promotion_suggested_at_ms was already set for them.
ALTER TABLE contact_profiles
    ADD COLUMN promotion_eligible UInt8 DEFAULT 0 AFTER pending_confirmations;

-- Rebuild the current-profiles view so that it shows the new column (as 009 did).
DROP TABLE IF EXISTS contact_profiles_current;

CREATE VIEW IF NOT EXISTS contact_profiles_current AS
SELECT *
FROM contact_profiles FINAL
WHERE deleted = 0 AND isNull(merged_into);
