//! The decoder's unit tests: one accepted event of each shape, one refusal of each class.

use super::*;

fn decoder() -> Decoder {
    Decoder::new(["manual".to_string(), "booking_form".into()], 4096)
}

fn envelope(kind: &str, data: &str) -> String {
    format!(
        r#"{{"event_id":"e1","type":"{kind}","business_id":"b1","contact_id":"c1","occurred_at":"2026-11-01T10:00:00Z","source":"manual","data":{data}}}"#
    )
}

fn reject(bytes: &[u8]) -> Rejection {
    decoder().decode(Some(b"c1"), bytes).unwrap_err()
}

#[test]
fn decodes_and_normalises_a_contact() {
    let raw = envelope(
        "contact.created",
        r#"{"name":"  Ada  Lovelace ","email":" Ada@Example.com ","phone":"+44 (20) 7946-0000","tags":["VIP"," vip"]}"#,
    );
    let ev = decoder().decode(Some(b"c1"), raw.as_bytes()).unwrap();
    match ev.payload {
        Payload::ContactCreated(c) => {
            assert_eq!(c.name, "Ada Lovelace");
            assert_eq!(c.email.as_deref(), Some("ada@example.com"));
            assert_eq!(c.phone.as_deref(), Some("442079460000"));
            assert_eq!(c.tags, Some(vec!["vip".to_string()]));
            assert_eq!(c.status.as_deref(), Some("LEAD"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn accepts_the_task_completed_alias() {
    let raw = envelope("contact.task.completed", r#"{"task_id":"t1"}"#);
    let ev = decoder().decode(Some(b"c1"), raw.as_bytes()).unwrap();
    assert_eq!(ev.payload.type_name(), "task.completed");
}

/// The seed's shape: a camelCase envelope and a status change as `fromStatus`/`toStatus`.
#[test]
fn accepts_camel_case_envelopes_and_status_changes() {
    let raw = r#"{"eventId":"e9","type":"contact.updated","businessId":"b1","contactId":"c1","occurredAt":"2026-11-01T10:00:00Z","source":"manual","schemaVersion":1,"data":{"contactId":"c1","businessId":"b1","fromStatus":"lead","toStatus":" client "}}"#;
    let ev = decoder().decode(Some(b"c1"), raw.as_bytes()).unwrap();
    assert_eq!(
        (
            ev.event_id.as_str(),
            ev.business_id.as_str(),
            ev.contact_id.as_str()
        ),
        ("e9", "b1", "c1")
    );
    assert_eq!(ev.occurred_at.to_rfc3339(), "2026-11-01T10:00:00+00:00");
    match ev.payload {
        Payload::ContactUpdated(u) => {
            assert_eq!(u.status.as_deref(), Some("CLIENT"));
            assert_eq!(u.from_status.as_deref(), Some("LEAD"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // A status change that names only the old status changes nothing: refused with its reason.
    let only_from = envelope("contact.updated", r#"{"fromStatus":"LEAD"}"#);
    assert_eq!(reject(only_from.as_bytes()).code(), "empty_update");
    // Both spellings of one key: serde's duplicate-field reason, into the dead-letter topic.
    let both = r#"{"event_id":"e1","eventId":"e2","type":"contact.deleted","business_id":"b1","contact_id":"c1","occurred_at":"2026-11-01T10:00:00Z","source":"manual"}"#;
    let err = reject(both.as_bytes());
    assert_eq!(err.code(), "invalid_envelope");
    assert!(err.to_string().contains("event_id"), "{err}");
}

/// The decoder reads its own envelope (`RawEnvelope`): each alias of the contract's list must be
/// accepted there too, and mean the same as its key.
#[test]
fn the_decoder_reads_every_envelope_alias() {
    let snake: serde_json::Value =
        serde_json::from_str(&envelope("contact.updated", r#"{"status":"CLIENT"}"#)).unwrap();
    let expected = decoder()
        .decode(Some(b"c1"), snake.to_string().as_bytes())
        .unwrap();
    for (key, alias) in crate::event::ENVELOPE_ALIASES {
        let mut v = snake.clone();
        let m = v.as_object_mut().unwrap();
        let value = m.remove(*key).unwrap_or(serde_json::json!(SCHEMA_VERSION));
        m.insert((*alias).into(), value);
        let read = decoder()
            .decode(Some(b"c1"), v.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{alias}: {e}"));
        assert_eq!(read, expected, "{alias}");
    }
}

#[test]
fn data_may_be_absent_for_empty_types() {
    let raw = r#"{"event_id":"e1","type":"contact.deleted","business_id":"b1","contact_id":"c1","occurred_at":"2026-11-01T10:00:00Z","source":"manual"}"#;
    assert!(decoder().decode(Some(b"c1"), raw.as_bytes()).is_ok());
}

#[test]
fn every_class_of_bad_input_has_its_reason() {
    assert_eq!(reject(&[b'x'; 5000]).code(), "oversized");
    assert_eq!(reject(b"").code(), "empty");
    assert_eq!(reject(b"{\"a\":\"\xff\"}").code(), "invalid_utf8");
    assert_eq!(reject(b"{\"event_id\":").code(), "invalid_envelope");
    assert_eq!(
        reject(envelope("contact.exploded", "{}").as_bytes()).code(),
        "unknown_type"
    );
    let missing = reject(envelope("task.created", r#"{"task_id":"t1","title":"x"}"#).as_bytes());
    assert_eq!(
        missing.to_string(),
        "data of task.created is not valid: missing field `due_at`"
    );
    let mistyped = reject(envelope("invoice.sent", r#"{"invoice_id":"i","amount_cents":"12","currency":"EUR","due_at":"2026-11-01T00:00:00Z"}"#).as_bytes());
    assert_eq!(mistyped.code(), "invalid_data");
    assert!(
        mistyped.to_string().contains("invalid type: string \"12\""),
        "{mistyped}"
    );
    let bad_time = reject(
        envelope("contact.deleted", "{}")
            .replace("2026-11-01T10:00:00Z", "yesterday")
            .as_bytes(),
    );
    assert_eq!(bad_time.code(), "invalid_envelope");
    let negative = reject(envelope("invoice.sent", r#"{"invoice_id":"i","amount_cents":-5,"currency":"EUR","due_at":"2026-11-01T00:00:00Z"}"#).as_bytes());
    assert_eq!(
        negative.to_string(),
        "data.amount_cents must not be negative, got -5"
    );
    let source = reject(
        envelope("contact.deleted", "{}")
            .replace("\"manual\"", "\"fax\"")
            .as_bytes(),
    );
    assert_eq!(
        source.to_string(),
        "unknown source \"fax\" (known: booking_form, manual)"
    );
    assert_eq!(
        reject(envelope("contact.updated", "{}").as_bytes()).code(),
        "empty_update"
    );
    assert_eq!(
        reject(envelope("contact.merged", r#"{"merged_contact_id":"c1"}"#).as_bytes()).code(),
        "self_merge"
    );
    let raw = envelope("contact.deleted", "{}");
    assert_eq!(
        decoder()
            .decode(Some(b"c2"), raw.as_bytes())
            .unwrap_err()
            .code(),
        "key_mismatch"
    );
    assert_eq!(
        decoder().decode(None, raw.as_bytes()).unwrap_err().code(),
        "missing_key"
    );
    let v2 = raw.replace("{\"event_id\"", "{\"schema_version\":2,\"event_id\"");
    assert_eq!(reject(v2.as_bytes()).code(), "unsupported_version");
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn occurred(when: &str) -> String {
    envelope("contact.deleted", "{}").replace("2026-11-01T10:00:00Z", when)
}

#[test]
fn occurred_at_may_lead_the_clock_by_a_day_of_skew() {
    let now = at("2026-11-20T12:00:00Z");
    for ok in [
        "2026-11-20T12:00:00Z",
        "2026-11-21T12:00:00Z",
        "2000-01-01T00:00:00Z",
    ] {
        let raw = occurred(ok);
        assert!(
            decoder()
                .decode_at(Some(b"c1"), raw.as_bytes(), now)
                .is_ok(),
            "{ok} refused"
        );
    }
    let far = occurred("2030-01-01T00:00:00Z");
    let why = decoder()
        .decode_at(Some(b"c1"), far.as_bytes(), now)
        .unwrap_err();
    assert_eq!(why.code(), "future_occurred_at");
    assert_eq!(
        why.to_string(),
        "occurred_at 2030-01-01T00:00:00Z is in the future: more than 24 hours after now \
         (2026-11-20T12:00:00Z)"
    );
    let just_over = occurred("2026-11-21T12:00:00.001Z");
    assert_eq!(
        decoder()
            .decode_at(Some(b"c1"), just_over.as_bytes(), now)
            .unwrap_err()
            .code(),
        "future_occurred_at"
    );
    // Without a "now" (benchmarks, tools) there is no future bound.
    assert!(decoder().decode(Some(b"c1"), far.as_bytes()).is_ok());
}

#[test]
fn the_future_bound_follows_the_given_clock_not_the_system_one() {
    let raw = occurred("2040-06-01T00:00:00Z");
    let then = at("2040-06-01T00:00:00Z");
    assert!(decoder()
        .decode_at(Some(b"c1"), raw.as_bytes(), then)
        .is_ok());
}

#[test]
fn occurred_at_before_2000_is_ancient() {
    for old in [
        "1999-12-31T23:59:59.999Z",
        "1970-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
    ] {
        let why = reject(occurred(old).as_bytes());
        assert_eq!(why.code(), "ancient_occurred_at", "{old}");
    }
    assert_eq!(
        reject(occurred("1970-01-01T00:00:00Z").as_bytes()).to_string(),
        "occurred_at 1970-01-01T00:00:00Z is ancient: before 2000-01-01T00:00:00Z"
    );
}

/// The committed corpus (`tests/corpus/bad/MANIFEST.tsv`) with the decoder alone: every
/// dead-letter case is refused with its reason, every `handled:` and `stateful:` case is
/// accepted (what the state then does with it is checked end to end in
/// `tests/dead_letters.rs`).
#[test]
fn corpus_cases_are_refused_with_their_reason() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/corpus/bad");
    let manifest = std::fs::read_to_string(format!("{dir}/MANIFEST.tsv")).unwrap();
    let decoder = Decoder::new(crate::config::IngestConfig::default().sources, 2048);
    let now = at("2026-11-20T12:00:00Z");
    let mut cases = 0;
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let [file, key, class, expect] = line.split('\t').collect::<Vec<_>>()[..] else {
            panic!("malformed manifest line {line:?}");
        };
        let bytes = std::fs::read(format!("{dir}/{file}")).unwrap();
        let key = (key != "-").then_some(key.as_bytes());
        let got = decoder.decode_at(key, &bytes, now);
        let accepted = expect
            .strip_prefix("handled:")
            .or_else(|| expect.strip_prefix("stateful:"));
        match (accepted, got) {
            (Some(_), Ok(_)) => {}
            (Some(_), Err(why)) => panic!("{file} ({class}) is handled, yet refused: {why}"),
            (None, Ok(ev)) => panic!("{file} ({class}) was accepted: {ev:?}"),
            (None, Err(why)) => assert!(
                why.to_string().contains(expect),
                "{file} ({class}): reason {:?} lacks {expect:?}",
                why.to_string()
            ),
        }
        cases += 1;
    }
    assert!(cases >= 20, "only {cases} corpus cases");
}
