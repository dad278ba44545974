//! Bearer-key access: one admin key (every business) and keys per business, from config.
//! A request under `/v1/` without a key, or with a key nobody issued, is a 401; a business key
//! used on another business is a 403. Keys are compared in constant time and never logged
//! (their `Debug` is redacted, and the request log records the path only).

use std::collections::BTreeMap;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::limits::HttpLimits;
use crate::AppState;

/// A key from config: usable, comparable, never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The key itself, for the one place that must hand it out (the demo's Cockpit link).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The `[api]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Reads every business (and lists them).
    pub admin_key: Option<Secret>,
    /// Keys per business id: `[api.keys] biz_1 = ["..."]`.
    pub keys: BTreeMap<String, Vec<Secret>>,
    /// Origins allowed to call the API from a browser (`["*"]` for any); empty: same origin
    /// only.
    pub cors_origins: Vec<String>,
    /// How stale a per-business aggregate (highlights, segments, search results) may be served
    /// while the store keeps changing, in ms; 0 recomputes after every write. Unchanged data is
    /// always served from the cache.
    pub views_max_staleness_ms: u64,
    /// Request size limits (`[api.limits]`: body, URI, id and header bytes); see
    /// [`HttpLimits`].
    pub limits: HttpLimits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            admin_key: None,
            keys: BTreeMap::new(),
            cors_origins: Vec::new(),
            views_max_staleness_ms: 1_000,
            limits: HttpLimits::default(),
        }
    }
}

/// Shortest key accepted: a guessable key is no key.
pub const MIN_KEY_LEN: usize = 16;

impl ApiConfig {
    pub fn has_keys(&self) -> bool {
        self.admin_key.is_some() || self.keys.values().any(|k| !k.is_empty())
    }

    pub fn validate(&self) -> Result<(), String> {
        self.limits.validate()?;
        let short = |k: &Secret| k.0.len() < MIN_KEY_LEN;
        if self.admin_key.as_ref().is_some_and(short) {
            return Err(format!(
                "api.admin_key must be at least {MIN_KEY_LEN} characters"
            ));
        }
        for (business, keys) in &self.keys {
            if keys.iter().any(short) {
                return Err(format!(
                    "api.keys.{business}: every key must be at least {MIN_KEY_LEN} characters"
                ));
            }
        }
        Ok(())
    }
}

/// What a key may read; handlers find it in the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Admin,
    Business(String),
}

impl Grant {
    pub fn allows(&self, business_id: &str) -> bool {
        match self {
            Grant::Admin => true,
            Grant::Business(b) => b == business_id,
        }
    }
}

/// Equal length and bytes, without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl ApiConfig {
    /// The grant of a presented key, checking every configured key.
    pub fn grant(&self, presented: &str) -> Option<Grant> {
        let p = presented.as_bytes();
        let mut found = None;
        if self
            .admin_key
            .as_ref()
            .is_some_and(|k| same(k.0.as_bytes(), p))
        {
            found = Some(Grant::Admin);
        }
        for (business, keys) in &self.keys {
            for k in keys {
                if same(k.0.as_bytes(), p) && found.is_none() {
                    found = Some(Grant::Business(business.clone()));
                }
            }
        }
        found
    }
}

/// The business id of a `/v1/businesses/{id}/...` path, percent-decoded as the router decodes
/// it for the handlers (comparing the raw segment would let `%xx` spellings through).
fn business_of(path: &str) -> Option<Result<String, ()>> {
    let raw = path
        .strip_prefix("/v1/businesses/")?
        .split('/')
        .next()
        .filter(|s| !s.is_empty())?;
    Some(
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| ()),
    )
}

/// Middleware over `/v1/`: 401 without a known key, 403 on another business's data.
pub async fn require_key(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !path.starts_with("/v1/") {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return AppError::Unauthorized("send the API key as 'Authorization: Bearer <key>'".into())
            .into_response();
    };
    let Some(grant) = s.api.grant(token) else {
        return AppError::Unauthorized("unknown API key".into()).into_response();
    };
    if let Some(business) = business_of(path) {
        let Ok(business) = business else {
            return AppError::BadRequest("the business id is not valid UTF-8".into())
                .into_response();
        };
        if !grant.allows(&business) {
            return AppError::Forbidden(format!("this key does not grant business {business}"))
                .into_response();
        }
    }
    req.extensions_mut().insert(grant);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ApiConfig {
        ApiConfig {
            admin_key: Some(Secret::new("admin-key-0123456789")),
            keys: [("biz_1".to_owned(), vec![Secret::new("biz1-key-0123456789")])].into(),
            cors_origins: vec![],
            ..Default::default()
        }
    }

    #[test]
    fn keys_grant_what_they_were_issued_for() {
        let c = config();
        assert_eq!(c.grant("admin-key-0123456789"), Some(Grant::Admin));
        assert_eq!(
            c.grant("biz1-key-0123456789"),
            Some(Grant::Business("biz_1".into()))
        );
        assert_eq!(c.grant("biz1-key-012345678"), None);
        assert_eq!(c.grant(""), None);
        assert!(Grant::Business("biz_1".into()).allows("biz_1"));
        assert!(!Grant::Business("biz_1".into()).allows("biz_2"));
    }

    #[test]
    fn keys_are_never_printed_and_short_ones_are_refused() {
        let c = config();
        assert!(!format!("{c:?}").contains("0123456789"));
        let mut weak = c.clone();
        weak.admin_key = Some(Secret::new("short"));
        assert!(weak.validate().unwrap_err().contains("16 characters"));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn the_business_is_read_from_the_path() {
        assert_eq!(
            business_of("/v1/businesses/b1/crm/x"),
            Some(Ok("b1".into()))
        );
        assert_eq!(business_of("/v1/businesses/b1"), Some(Ok("b1".into())));
        assert_eq!(
            business_of("/v1/businesses/%62%31/x"),
            Some(Ok("b1".into()))
        );
        assert_eq!(business_of("/v1/businesses/%FF/x"), Some(Err(())));
        assert_eq!(business_of("/v1/businesses"), None);
        assert_eq!(business_of("/v1/businesses/"), None);
    }
}
