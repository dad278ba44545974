//! One fuzz input through the decoder, and the properties every input must keep. Shared by the
//! `decode` cargo-fuzz target (`fuzz/fuzz_targets/decode.rs`) and the unit test that replays the
//! committed crash inputs (`fuzz/regressions/decode/`), so a finding stays fixed.
//!
//! Input layout: byte 0 is the key length `n` (0 = the message has no key), the next `n` bytes
//! the key, the rest the payload. A short input is cut where it ends.

use chrono::{DateTime, Utc};

use super::{payload_from_parts, Decoder, Rejection, EARLIEST_OCCURRED_AT_MS, MAX_FUTURE_SKEW_MS};

/// The processor's clock in every fuzz run: the decoder is deterministic for a given "now".
pub const NOW_MS: i64 = 1_795_176_000_000; // 2026-11-20T12:00:00Z

/// The largest payload the fuzz decoder accepts (the production default).
pub const MAX_BYTES: usize = 64 * 1024;

/// Splits a fuzz input into the message key and payload.
pub fn split(data: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (None, data);
    };
    if n == 0 {
        return (None, rest);
    }
    let n = usize::from(n).min(rest.len());
    let (key, payload) = rest.split_at(n);
    (Some(key), payload)
}

/// The inverse of [`split`] (how seeds are written from the corpus).
pub fn join(key: Option<&[u8]>, payload: &[u8]) -> Vec<u8> {
    let key = key.map_or(&[][..], |k| &k[..k.len().min(255)]);
    let mut out = Vec::with_capacity(1 + key.len() + payload.len());
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.extend_from_slice(payload);
    out
}

fn decoder() -> Decoder {
    Decoder::new(crate::config::IngestConfig::default().sources, MAX_BYTES)
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(NOW_MS).expect("a valid instant")
}

/// Decodes one input; panics if a property is broken:
/// - a refusal has a non-empty reason and class;
/// - an accepted event's `occurred_at` lies within the bounds;
/// - its `data`, as stores write it, reads back to the same payload;
/// - the event, serialised, decodes again to itself (normalisation is idempotent).
pub fn check(data: &[u8]) {
    let (key, payload) = split(data);
    let decoder = decoder();
    let event = match decoder.decode_at(key, payload, now()) {
        Ok(event) => event,
        Err(why) => {
            assert!(!why.to_string().is_empty(), "empty reason for {why:?}");
            assert!(!why.code().is_empty(), "empty class for {why:?}");
            return;
        }
    };
    let at = event.occurred_at.timestamp_millis();
    assert!(
        (EARLIEST_OCCURRED_AT_MS..=NOW_MS + MAX_FUTURE_SKEW_MS).contains(&at),
        "accepted occurred_at {} out of bounds",
        event.occurred_at
    );
    let kind = event.payload.type_name();
    let stored = event.payload.data_json();
    assert_eq!(
        payload_from_parts(kind, &stored).as_ref(),
        Ok(&event.payload),
        "data {stored} of {kind} does not read back"
    );
    let again = serde_json::to_vec(&event).expect("an event serialises");
    match decoder.decode_at(Some(event.contact_id.as_bytes()), &again, now()) {
        Ok(second) => assert_eq!(second, event, "decoding is not idempotent"),
        // Escaping may grow a payload that was just under the limit.
        Err(Rejection::Oversized { .. }) => {}
        Err(why) => panic!(
            "the accepted event, re-encoded, is refused: {why}: {}",
            String::from_utf8_lossy(&again)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_join_are_inverse() {
        for (key, payload) in [
            (None, &b"{}"[..]),
            (Some(&b"c1"[..]), &b"{\"a\":1}"[..]),
            (Some(&b"k"[..]), &b""[..]),
        ] {
            assert_eq!(split(&join(key, payload)), (key, payload));
        }
        assert_eq!(split(b""), (None, &b""[..]));
        assert_eq!(split(b"\x09ab"), (Some(&b"ab"[..]), &b""[..]));
    }

    /// The future bound the fuzz runs check against follows the pinned clock: an event at the
    /// last allowed instant is accepted, one millisecond later is refused as in the future.
    #[test]
    fn the_future_bound_follows_the_pinned_clock() {
        let at = |ms: i64| {
            let t = DateTime::from_timestamp_millis(ms).expect("a valid instant");
            format!(
                r#"{{"event_id":"e1","type":"contact.deleted","business_id":"b1","contact_id":"c1","occurred_at":"{}","source":"manual"}}"#,
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            )
        };
        let last = NOW_MS + MAX_FUTURE_SKEW_MS;
        let ok = decoder().decode_at(Some(b"c1"), at(last).as_bytes(), now());
        assert_eq!(ok.map(|e| e.occurred_at.timestamp_millis()), Ok(last));
        let late = decoder().decode_at(Some(b"c1"), at(last + 1).as_bytes(), now());
        assert_eq!(late.map_err(|r| r.code()), Err("future_occurred_at"));
        check(&join(Some(b"c1"), at(last).as_bytes()));
    }

    /// Every committed crash input and every corpus case keeps the properties.
    #[test]
    fn regressions_and_corpus_keep_the_properties() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut seen = 0;
        for dir in ["fuzz/regressions/decode", "tests/corpus/bad"] {
            let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                // Regressions are framed fuzz inputs; corpus files are bare payloads.
                if dir.starts_with("fuzz") {
                    check(&bytes);
                } else {
                    check(&join(None, &bytes));
                    check(&join(Some(b"c1"), &bytes));
                }
                seen += 1;
            }
        }
        assert!(seen > 0, "no regression or corpus input found");
    }
}
