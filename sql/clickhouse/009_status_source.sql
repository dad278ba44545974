-- Who decided the status shown: crm (a contact event) or keyflow (UNKNOWN before any contact
-- event, or a LEAD promoted by `auto_promote`). Rows written before read as crm.
ALTER TABLE contact_profiles
    ADD COLUMN status_source String DEFAULT 'crm' AFTER status;

-- ClickHouse fixes a view's columns when it is created: rebuild the current-profiles view so
-- that it shows the new column (as 007 did for 005's).
DROP TABLE IF EXISTS contact_profiles_current;

CREATE VIEW IF NOT EXISTS contact_profiles_current AS
SELECT *
FROM contact_profiles FINAL
WHERE deleted = 0 AND isNull(merged_into);
