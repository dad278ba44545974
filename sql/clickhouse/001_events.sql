-- Every accepted, normalised event. A replayed event has the same sorting key and collapses
-- (read through FINAL or the views). Partitioned by the month the event occurred in.
CREATE TABLE IF NOT EXISTS events
(
    business_id    String,
    contact_id     String,
    event_id       String,
    type           String,
    occurred_at_ms Int64,
    source         String,
    data           String,
    topic          String,
    partition      Int32,
    offset         Int64,
    ingest_seq     UInt64,
    occurred_at    DateTime DEFAULT toDateTime(intDiv(occurred_at_ms, 1000))
)
ENGINE = ReplacingMergeTree(ingest_seq)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (business_id, contact_id, event_id)
