//! ClickHouse settings, their defaults, and the validation that runs before any connection.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP endpoint, e.g. `http://127.0.0.1:8123`; unset keeps the embedded store.
    pub url: Option<String>,
    /// Database holding KeyFlow's tables (created by the migrations).
    pub database: String,
    /// User name, when the server wants one.
    pub user: Option<String>,
    /// Password of `user`.
    pub password: Option<String>,
    /// How long the API may serve a per-business aggregate (highlights) from its cache, in ms.
    pub cache_ttl_ms: u64,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: None,
            database: "keyflow".into(),
            user: None,
            password: None,
            cache_ttl_ms: 2_000,
        }
    }
}

/// Whether `name` can be used as a database or table identifier without quoting.
pub fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

impl ClickHouseConfig {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "clickhouse.url must be an http(s) URL, got {url:?}"
                ));
            }
        }
        if !valid_identifier(&self.database) {
            return Err(format!(
                "clickhouse.database {:?} is not a plain identifier",
                self.database
            ));
        }
        Ok(())
    }

    /// A client for `url`, bound to the configured database.
    pub fn client(&self, url: &str) -> clickhouse::Client {
        let mut c = clickhouse::Client::default()
            .with_url(url)
            .with_database(&self.database)
            // RowBinary without the schema round trip: 18.16 has no RowBinaryWithNamesAndTypes.
            .with_validation(false);
        if let Some(u) = &self.user {
            c = c.with_user(u);
        }
        if let Some(p) = &self.password {
            c = c.with_password(p);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_validated_not_escaped() {
        assert!(valid_identifier("keyflow_test_1"));
        for bad in ["", "1abc", "a-b", "x; DROP TABLE events", "a`b"] {
            assert!(!valid_identifier(bad), "{bad}");
        }
        let cfg = ClickHouseConfig {
            database: "x;y".into(),
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
    }
}
