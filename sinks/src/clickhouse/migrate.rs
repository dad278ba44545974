//! Applies the numbered migrations in `sql/clickhouse/` and records them in `schema_migrations`.
//! Safe to run twice and from several processors at once: every CREATE is `IF NOT EXISTS`, and an
//! `ALTER ... ADD COLUMN` that finds its columns already added counts as applied.

use clickhouse::Row;
use serde::{Deserialize, Serialize};

use super::config::{valid_identifier, ClickHouseConfig};

/// The migrations, in order: (version, name, DDL).
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "events",
        include_str!("../../../sql/clickhouse/001_events.sql"),
    ),
    (
        2,
        "contact_profiles",
        include_str!("../../../sql/clickhouse/002_contact_profiles.sql"),
    ),
    (
        3,
        "lead_score_history",
        include_str!("../../../sql/clickhouse/003_lead_score_history.sql"),
    ),
    (
        4,
        "views",
        include_str!("../../../sql/clickhouse/004_views.sql"),
    ),
    (
        5,
        "profile_metrics",
        include_str!("../../../sql/clickhouse/005_profile_metrics.sql"),
    ),
    (
        6,
        "signals",
        include_str!("../../../sql/clickhouse/006_signals.sql"),
    ),
    (
        7,
        "metric_views",
        include_str!("../../../sql/clickhouse/007_metric_views.sql"),
    ),
    (
        8,
        "signal_batches",
        include_str!("../../../sql/clickhouse/008_signal_batches.sql"),
    ),
    (
        9,
        "status_source",
        include_str!("../../../sql/clickhouse/009_status_source.sql"),
    ),
    (
        10,
        "local_day_queue",
        include_str!("../../../sql/clickhouse/010_local_day_queue.sql"),
    ),
    (
        11,
        "promotion_eligible",
        include_str!("../../../sql/clickhouse/011_promotion_eligible.sql"),
    ),
];

const SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
    (version UInt32, name String, applied_at DateTime DEFAULT now()) \
    ENGINE = ReplacingMergeTree ORDER BY version";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("clickhouse.url is not set")]
    NoUrl,
    #[error("database name {0:?} is not a plain identifier")]
    BadDatabase(String),
    #[error("migration {version} ({name}) failed: {source}")]
    Statement {
        version: u32,
        name: String,
        source: clickhouse::error::Error,
    },
    #[error("ClickHouse at {url} is not reachable: {source}")]
    Unreachable {
        url: String,
        source: clickhouse::error::Error,
    },
}

#[derive(Debug, Row, Serialize, Deserialize)]
struct Applied {
    version: u32,
    name: String,
}

/// The statements of one migration file: split on `;` at a line end, comments dropped.
pub fn statements(sql: &str) -> Vec<String> {
    sql.split(";\n")
        .chain(std::iter::once(""))
        .map(|chunk| {
            chunk
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .trim_end_matches(';')
                .to_owned()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Brings the configured database to the latest version; returns the versions it applied.
pub async fn migrate(cfg: &ClickHouseConfig) -> Result<Vec<u32>, MigrateError> {
    let url = cfg.url.as_deref().ok_or(MigrateError::NoUrl)?;
    if !valid_identifier(&cfg.database) {
        return Err(MigrateError::BadDatabase(cfg.database.clone()));
    }
    let server = ClickHouseConfig {
        database: "default".into(),
        ..cfg.clone()
    }
    .client(url);
    // The name is a validated identifier: safe to place in DDL, which cannot bind it.
    server
        .query(&format!("CREATE DATABASE IF NOT EXISTS {}", cfg.database))
        .execute()
        .await
        .map_err(|source| MigrateError::Unreachable {
            url: url.to_owned(),
            source,
        })?;
    let client = cfg.client(url);
    let fail = |version: u32, name: &str| {
        let name = name.to_owned();
        move |source| MigrateError::Statement {
            version,
            name,
            source,
        }
    };
    client
        .query(SCHEMA_MIGRATIONS)
        .execute()
        .await
        .map_err(fail(0, "schema_migrations"))?;
    let applied: Vec<u32> = client
        .query("SELECT DISTINCT version FROM schema_migrations")
        .fetch_all::<u32>()
        .await
        .map_err(fail(0, "schema_migrations"))?;
    let mut done = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        for stmt in statements(sql) {
            match client.query(&stmt).execute().await {
                Ok(()) => {}
                // ClickHouse 18.16 has no `ADD COLUMN IF NOT EXISTS`: another processor migrating
                // at the same moment added the columns first.
                Err(e) if stmt.starts_with("ALTER") && e.to_string().contains("already exists") => {
                    tracing::info!(
                        version,
                        name,
                        "columns already added by a concurrent migration"
                    );
                }
                Err(e) => return Err(fail(*version, name)(e)),
            }
        }
        let mut insert = client
            .insert::<Applied>("schema_migrations")
            .await
            .map_err(fail(*version, name))?;
        insert
            .write(&Applied {
                version: *version,
                name: name.to_string(),
            })
            .await
            .map_err(fail(*version, name))?;
        insert.end().await.map_err(fail(*version, name))?;
        tracing::info!(version, name, database = %cfg.database, "migration applied");
        done.push(*version);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_on_line_end_semicolons_and_drop_comments() {
        let sql = "-- a view\nCREATE VIEW a AS SELECT 1;\n\n-- another\nCREATE VIEW b AS\nSELECT ';' AS x\n";
        assert_eq!(
            statements(sql),
            vec![
                "CREATE VIEW a AS SELECT 1",
                "CREATE VIEW b AS\nSELECT ';' AS x"
            ]
        );
    }

    #[test]
    fn every_migration_has_statements_and_versions_increase() {
        let mut last = 0;
        for (v, name, sql) in MIGRATIONS {
            assert!(*v > last, "{name}");
            last = *v;
            assert!(!statements(sql).is_empty(), "{name}");
        }
    }
}
