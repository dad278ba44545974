//! The Cockpit's search grammar (api/src/search.rs): any UTF-8 query is parsed, and when it
//! parses it is matched against a small fixed set of profiles; completions are computed for
//! every query. Nothing may panic, an error names a token of the query, and the empty query
//! matches everyone.
#![no_main]

use std::sync::{Arc, OnceLock};

use api::search::{matches, parse, suggest};
use libfuzzer_sys::fuzz_target;
use pipeline::profile::{ContactProfile, Membership};

fn profiles() -> &'static [Arc<ContactProfile>] {
    static PROFILES: OnceLock<Vec<Arc<ContactProfile>>> = OnceLock::new();
    PROFILES.get_or_init(|| {
        let p = |id: &str, name: Option<&str>, email: Option<&str>, phone: Option<&str>| {
            ContactProfile {
                business_id: "acme".into(),
                contact_id: id.into(),
                name: name.map(str::to_owned),
                email: email.map(str::to_owned),
                phone: phone.map(str::to_owned),
                ..Default::default()
            }
        };
        vec![
            Arc::new(ContactProfile {
                tags: vec!["vip".into(), "Yoga".into()],
                lead_score: 75,
                outstanding_balance_cents: 12_000,
                payment_reliability: Some(40),
                avg_days_late: Some(3.5),
                segments: vec![Membership {
                    segment: "gold".into(),
                    reason: "lead score 75".into(),
                }],
                ..p(
                    "c1",
                    Some("Ada Lovelace"),
                    Some("ada@example.com"),
                    Some("15550102030"),
                )
            }),
            Arc::new(p("c2", Some("Ǆemal İnce ß"), None, Some(""))),
            Arc::new(p("c3", None, Some("x@y.z"), None)),
            Arc::new(ContactProfile {
                lead_score: i64::MIN,
                revenue_cents: i64::MAX,
                days_since_last_interaction: Some(-1),
                ..p("c4", Some(""), None, None)
            }),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    match parse(q) {
        Ok(terms) => {
            for p in profiles() {
                let hit = matches(&terms, p);
                assert!(!terms.is_empty() || hit, "the empty query matches everyone");
            }
        }
        Err(e) => {
            let tokens: Vec<&str> = q.split_whitespace().collect();
            assert!(
                e.position >= 1 && tokens.get(e.position - 1) == Some(&e.token.as_str()),
                "error {e} does not name a token of {q:?}"
            );
        }
    }
    let segments = ["gold".to_owned(), "silver".to_owned()];
    for limit in [0, 3, 50] {
        let out = suggest(q, profiles(), &segments, limit);
        assert!(out.len() <= limit);
    }
});
