//! What a request may weigh before any handler sees it: the `[api.limits]` settings and the
//! middleware that enforces the URI, id and header limits (the body limit is axum's
//! `DefaultBodyLimit`, set from the same settings in [`crate::app`]; the in-flight limit is
//! [`crate::shed`]'s, the connection cap [`crate::connections`]'s). Every refusal is a 4xx
//! JSON error naming the limit and the setting that raises it.
//!
//! hyper refuses what is beyond its own fixed bounds first, with an empty body: a request head
//! over ~400 KiB or with more than 100 headers (431), a URI over 64 KiB (414).

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::AppState;

/// The `[api.limits]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimits {
    /// Largest request body accepted, in bytes (the only body is `crm/actions`' small JSON);
    /// larger is a 413, at once when `Content-Length` announces it, else once that much was
    /// streamed.
    pub max_body_bytes: usize,
    /// Longest request target (path and query string, as sent), in bytes; longer is a 414.
    pub max_uri_bytes: usize,
    /// Longest path segment once percent-decoded (a business, contact or segment id), in bytes;
    /// longer is a 400 naming the parameter.
    pub max_id_bytes: usize,
    /// Most bytes of header names and values together; more is a 431.
    pub max_header_bytes: usize,
    /// Most `/v1/` requests handled at once; past it a request is answered at once with a 503
    /// `overloaded` and `Retry-After: 1` (see [`crate::shed`]).
    pub max_in_flight: usize,
    /// Longest a runnable task may wait for a worker before `/v1/` requests get the same 503
    /// (the server's CPU is saturated; see [`crate::shed`]); 0 turns it off. `keyflow run`
    /// turns it off: its processor shares the runtime, and its evaluation would read as API
    /// overload. `keyflow api` and the bench's API server apply it.
    pub max_queue_delay_ms: u64,
    /// Most connections served at once; on a connection past it every `/v1/` request gets the
    /// same 503 and the connection is closed after the answer (see [`crate::connections`]).
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_uri_bytes: 4 * 1024,
            max_id_bytes: 256,
            max_header_bytes: 16 * 1024,
            max_in_flight: 512,
            max_queue_delay_ms: 50,
            max_connections: 1024,
        }
    }
}

impl HttpLimits {
    pub fn validate(&self) -> Result<(), String> {
        let zero = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_uri_bytes", self.max_uri_bytes),
            ("max_id_bytes", self.max_id_bytes),
            ("max_header_bytes", self.max_header_bytes),
            ("max_in_flight", self.max_in_flight),
            ("max_connections", self.max_connections),
        ]
        .into_iter()
        .find(|(_, v)| *v == 0);
        match zero {
            Some((name, _)) => Err(format!("api.limits.{name} must be at least 1")),
            None => Ok(()),
        }
    }

    /// The first limit `req` breaks, as the error to answer with.
    pub fn check(&self, req: &Request) -> Result<(), AppError> {
        let uri = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if uri > self.max_uri_bytes {
            return Err(AppError::UriTooLong(format!(
                "the request target is {uri} bytes; at most {} are accepted \
                 (api.limits.max_uri_bytes)",
                self.max_uri_bytes
            )));
        }
        let headers: usize = req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        if headers > self.max_header_bytes {
            return Err(AppError::HeadersTooLarge(format!(
                "the headers are {headers} bytes; at most {} are accepted \
                 (api.limits.max_header_bytes)",
                self.max_header_bytes
            )));
        }
        // An announced body over the limit is refused before a byte of it is read.
        let announced = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(n) = announced.filter(|n| *n > self.max_body_bytes as u64) {
            return Err(AppError::Rejected {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                message: format!(
                    "the body is {n} bytes; at most {} are accepted (api.limits.max_body_bytes)",
                    self.max_body_bytes
                ),
            });
        }
        let template = req
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        self.check_ids(req.uri().path(), template)
    }

    /// Every id in the path, percent-decoded, within `max_id_bytes`: the route's parameters
    /// (named in the error, `contact_id`), or every segment of a path no route matched.
    fn check_ids(&self, path: &str, template: Option<&str>) -> Result<(), AppError> {
        let names: Option<Vec<&str>> = template.map(|t| t.split('/').collect());
        for (i, raw) in path.split('/').enumerate() {
            let param = match &names {
                Some(names) => match names.get(i).and_then(|n| n.strip_prefix('{')) {
                    Some(n) => Some(n.trim_end_matches('}')),
                    // A literal segment of the matched route: its length is the route's.
                    None => continue,
                },
                None => None,
            };
            // Decoding never produces more bytes than it reads: short raw segments pass as is.
            if raw.len() <= self.max_id_bytes {
                continue;
            }
            let len = percent_encoding::percent_decode_str(raw).count();
            if len <= self.max_id_bytes {
                continue;
            }
            let what = param.map_or_else(|| format!("path segment {i}"), str::to_owned);
            return Err(AppError::BadRequest(format!(
                "{what} is {len} bytes; ids longer than {} bytes are refused \
                 (api.limits.max_id_bytes)",
                self.max_id_bytes
            )));
        }
        Ok(())
    }
}

/// Middleware: refuses a request over the URI, header or id limits before it reaches a handler
/// (or the key check).
pub async fn enforce(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match s.api.limits.check(&req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> HttpLimits {
        HttpLimits {
            max_id_bytes: 8,
            ..Default::default()
        }
    }

    #[test]
    fn ids_are_measured_decoded_and_named_by_the_route() {
        let l = limits();
        let t = Some("/v1/businesses/{business_id}/contacts/{contact_id}");
        assert!(
            l.check_ids("/v1/businesses/acme/contacts/c1", t).is_ok(),
            "\"businesses\" is longer than 8 bytes but is the route's, not an id"
        );
        assert!(
            l.check_ids("/v1/businesses/acme/contacts/%61%61%61%61%61%61%61%61", t)
                .is_ok(),
            "24 bytes raw, 8 decoded"
        );
        let e = l
            .check_ids("/v1/businesses/acme/contacts/aaaaaaaaa", t)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("contact_id is 9 bytes"), "{e}");
        let e = l.check_ids("/nowhere/aaaaaaaaa", None).unwrap_err();
        assert!(
            e.to_string().starts_with("path segment 2 is 9 bytes"),
            "{e}"
        );
    }

    #[test]
    fn zero_limits_are_refused() {
        assert!(HttpLimits::default().validate().is_ok());
        let e = HttpLimits {
            max_uri_bytes: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("api.limits.max_uri_bytes"), "{e}");
    }
}
