-- The current profile of every contact, one row per business and contact once merged:
-- ReplacingMergeTree keeps the highest version (the engine clock of the evaluation, in ms).
CREATE TABLE IF NOT EXISTS contact_profiles
(
    business_id               String,
    contact_id                String,
    partition                 Int32,
    name                      Nullable(String),
    email                     Nullable(String),
    phone                     Nullable(String),
    status                    String,
    tags                      Array(String),
    photo_url                 Nullable(String),
    created_at_ms             Nullable(Int64),
    deleted                   UInt8,
    erased                    UInt8,
    merged_into               Nullable(String),
    lead_score                Int64,
    factor_names              Array(String),
    factor_counts             Array(Int64),
    factor_points             Array(Int64),
    rule_version              String,
    last_interaction_at_ms    Nullable(Int64),
    outstanding_balance_cents Int64,
    unpaid_invoices           Int64,
    evaluated_at_ms           Int64,
    version                   UInt64,
    evaluated_at              DateTime DEFAULT toDateTime(intDiv(evaluated_at_ms, 1000))
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (business_id, contact_id)
