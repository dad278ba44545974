-- Every signal KeyFlow published on the signals topic, with the event ids and rule version that
-- produced it. A signal republished after a crash has the same signal_id and collapses.
CREATE TABLE IF NOT EXISTS signals
(
    signal_id    String,
    type         String,
    business_id  String,
    contact_id   String,
    partition    Int32,
    subject      String,
    change       String,
    reason       String,
    at_ms        Int64,
    rule_version String,
    caused_by    Array(String),
    detail       String,
    at           DateTime DEFAULT toDateTime(intDiv(at_ms, 1000))
)
ENGINE = ReplacingMergeTree(at_ms)
PARTITION BY toYYYYMM(at)
ORDER BY (business_id, type, contact_id, signal_id);

-- Segment entries and exits (the lineage of every segment change).
CREATE TABLE IF NOT EXISTS segment_changes
(
    signal_id    String,
    business_id  String,
    contact_id   String,
    segment      String,
    change       String,
    reason       String,
    at_ms        Int64,
    rule_version String,
    caused_by    Array(String),
    at           DateTime DEFAULT toDateTime(intDiv(at_ms, 1000))
)
ENGINE = ReplacingMergeTree(at_ms)
PARTITION BY toYYYYMM(at)
ORDER BY (business_id, segment, contact_id, signal_id)
