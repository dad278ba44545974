//! The one place that decides what is retried: network trouble, timeouts and overload back off;
//! a schema or type error is permanent and stops the processor with the server's message (which
//! names the table and column).

use model::sink::SinkError;

/// ClickHouse error codes that are worth a retry (overload, timeouts, network, too many parts).
const TRANSIENT_CODES: &[u32] = &[159, 164, 202, 203, 209, 210, 241, 242, 252, 285, 319, 425];

fn server_code(message: &str) -> Option<u32> {
    let rest = message.split("Code: ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Classifies a client error for `what` (e.g. "insert into events").
pub fn classify(what: &str, err: clickhouse::error::Error) -> SinkError {
    use clickhouse::error::Error as E;
    let msg = format!("{what}: {err}");
    match &err {
        E::Network(_) | E::TimedOut => SinkError::Transient(msg),
        E::BadResponse(text) => match server_code(text) {
            Some(code) if TRANSIENT_CODES.contains(&code) => SinkError::Transient(msg),
            // No code: an HTTP-level failure (proxy 502/503, server restarting).
            None => SinkError::Transient(msg),
            Some(_) => SinkError::Permanent(msg),
        },
        _ => SinkError::Permanent(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::error::Error as E;

    #[test]
    fn schema_errors_are_permanent_and_overload_is_not() {
        let bad = E::BadResponse(
            "Code: 16, e.displayText() = DB::Exception: No such column naem in table events".into(),
        );
        let err = classify("insert into events", bad);
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("naem in table events"));
        let busy = E::BadResponse(
            "Code: 202, e.displayText() = DB::Exception: Too many simultaneous queries".into(),
        );
        assert!(classify("x", busy).is_retryable());
        assert!(classify("x", E::TimedOut).is_retryable());
    }
}
