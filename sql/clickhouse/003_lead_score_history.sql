-- Every change of a lead score: old and new score, the factors and rule version behind the new
-- one, and the ids of the events that caused it (empty when time alone changed it). A replayed
-- change has the same key and collapses.
CREATE TABLE IF NOT EXISTS lead_score_history
(
    business_id     String,
    contact_id      String,
    partition       Int32,
    old_score       Nullable(Int64),
    new_score       Int64,
    factor_names    Array(String),
    factor_counts   Array(Int64),
    factor_points   Array(Int64),
    rule_version    String,
    caused_by       Array(String),
    reason          String,
    evaluated_at_ms Int64,
    version         UInt64,
    evaluated_at    DateTime DEFAULT toDateTime(intDiv(evaluated_at_ms, 1000))
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(evaluated_at)
ORDER BY (business_id, contact_id, evaluated_at_ms)
