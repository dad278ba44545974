//! The Cockpit's command search: `q` is whitespace-separated tokens, all of which must match
//! (AND). `#tag:x` and `#segment:x` filter by tag and segment; `/metric<op>number` compares a
//! metric (`/leadScore>70`, `/outstandingBalance>=10000`, `/paymentReliability<60`); any other
//! word is free text matched against name, email and phone, normalised as at ingest (email
//! lower-cased, phone digits only). A malformed token is an error naming it and its position.

use model::profile::ContactProfile;

/// Reads one metric from a profile (None = the contact has no value for it).
pub type Reader = fn(&ContactProfile) -> Option<f64>;

/// Metrics a `/` filter can name, with how to read each from a profile.
pub const METRICS: &[(&str, Reader)] = &[
    ("leadScore", |p| Some(p.lead_score as f64)),
    ("outstandingBalance", |p| {
        Some(p.balance.outstanding_balance_cents as f64)
    }),
    ("unpaidInvoices", |p| Some(p.balance.unpaid_invoices as f64)),
    ("overdueInvoices", |p| {
        Some(p.balance.overdue_invoices as f64)
    }),
    ("paymentReliability", |p| {
        p.reliability.payment_reliability.map(|v| v as f64)
    }),
    ("avgDaysLate", |p| p.reliability.avg_days_late),
    ("daysSinceLastInteraction", |p| {
        p.gaps.days_since_last_interaction.map(|v| v as f64)
    }),
    ("recentBookings", |p| {
        Some(p.activity.recent_bookings as f64)
    }),
    ("revenue", |p| Some(p.activity.revenue_cents as f64)),
    ("completedBookings", |p| {
        Some(p.activity.completed_bookings_total as f64)
    }),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Text(String),
    Tag(String),
    Segment(String),
    Metric { metric: usize, op: Op, value: f64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("search token {position} {token:?}: {problem}")]
pub struct ParseError {
    /// 1-based position of the token in the query.
    pub position: usize,
    pub token: String,
    pub problem: String,
}

fn metric_names() -> String {
    METRICS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_token(tok: &str) -> Result<Term, String> {
    if let Some(rest) = tok.strip_prefix('#') {
        let (kind, value) = rest
            .split_once(':')
            .ok_or("expected #tag:<name> or #segment:<name>")?;
        if value.is_empty() {
            return Err(format!("#{kind}: needs a name after the colon"));
        }
        return match kind {
            "tag" => Ok(Term::Tag(value.to_owned())),
            "segment" => Ok(Term::Segment(value.to_owned())),
            other => Err(format!("unknown filter #{other}; use #tag: or #segment:")),
        };
    }
    if let Some(rest) = tok.strip_prefix('/') {
        let at = rest
            .find(['>', '<', '=', '!'])
            .ok_or("expected /<metric><op><number>, e.g. /leadScore>70")?;
        let (name, tail) = rest.split_at(at);
        let metric = METRICS
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("unknown metric {name:?}; known: {}", metric_names()))?;
        let (op, number) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ]
        .into_iter()
        .find_map(|(s, op)| tail.strip_prefix(s).map(|n| (op, n)))
        .ok_or("unknown operator; use >, >=, <, <=, = or !=")?;
        let value: f64 = number
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| format!("{number:?} is not a number"))?;
        return Ok(Term::Metric { metric, op, value });
    }
    Ok(Term::Text(tok.to_lowercase()))
}

/// Parses a whole query; an empty query matches everything.
pub fn parse(q: &str) -> Result<Vec<Term>, ParseError> {
    q.split_whitespace()
        .enumerate()
        .map(|(i, tok)| {
            parse_token(tok).map_err(|problem| ParseError {
                position: i + 1,
                token: tok.to_owned(),
                problem,
            })
        })
        .collect()
}

/// Whether `p` satisfies every term.
pub fn matches(terms: &[Term], p: &ContactProfile) -> bool {
    terms.iter().all(|t| match t {
        Term::Tag(tag) => p.tags.iter().any(|x| x.eq_ignore_ascii_case(tag)),
        Term::Segment(s) => p.segment_names().any(|x| x.eq_ignore_ascii_case(s)),
        Term::Metric { metric, op, value } => {
            (METRICS[*metric].1)(p).is_some_and(|v| op.holds(v, *value))
        }
        Term::Text(text) => {
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            p.name
                .as_deref()
                .is_some_and(|n| n.to_lowercase().contains(text.as_str()))
                || p.email
                    .as_deref()
                    .is_some_and(|e| e.contains(text.as_str()))
                || (!digits.is_empty()
                    && digits.len() == text.chars().filter(|c| !"+-() ".contains(*c)).count()
                    && p.phone.as_deref().is_some_and(|ph| ph.contains(&digits)))
        }
    })
}

/// One completion: `value` is the whole query with its last token completed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    /// command, segment, tag or contact.
    pub kind: String,
    pub value: String,
    pub label: String,
    /// The contact a `contact` completion names, which Enter on it opens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
}

/// Completions of the last token of `q` (all commands when it is empty), at most `limit`:
/// `/` → metric commands, `#` → `#segment:` and `#tag:` names, other text → contact names
/// (best lead score first).
pub fn suggest(
    q: &str,
    profiles: &[std::sync::Arc<ContactProfile>],
    segments: &[String],
    limit: usize,
) -> Vec<Suggestion> {
    let ends_with_space = q.is_empty() || q.ends_with(char::is_whitespace);
    let last = if ends_with_space {
        ""
    } else {
        q.split_whitespace().last().unwrap_or("")
    };
    let head = &q[..q.len() - last.len()];
    let item = |kind: &str, token: String, label: String| Suggestion {
        kind: kind.into(),
        value: format!("{head}{token}"),
        label,
        contact_id: None,
    };
    let lower = last.to_lowercase();
    let mut out = Vec::new();
    if last.is_empty() || last.starts_with('/') {
        let typed = lower.trim_start_matches('/');
        for (name, _) in METRICS {
            if name.to_lowercase().starts_with(typed) {
                out.push(item(
                    "command",
                    format!("/{name}>"),
                    format!("/{name} > number (also >=, <, <=, =, !=)"),
                ));
            }
        }
    }
    if last.is_empty() || last.starts_with('#') {
        let typed = lower.trim_start_matches('#');
        for seg in segments {
            let token = format!("segment:{seg}");
            if token.starts_with(typed) || (!typed.is_empty() && seg.starts_with(typed)) {
                out.push(item(
                    "segment",
                    format!("#{token}"),
                    format!("segment {seg}"),
                ));
            }
        }
        let mut tags: Vec<&str> = profiles
            .iter()
            .flat_map(|p| p.tags.iter().map(String::as_str))
            .collect();
        tags.sort_unstable();
        tags.dedup();
        for tag in tags {
            let token = format!("tag:{}", tag.to_lowercase());
            if token.starts_with(typed)
                || (!typed.is_empty() && tag.to_lowercase().starts_with(typed))
            {
                out.push(item("tag", format!("#tag:{tag}"), format!("tag {tag}")));
            }
        }
    }
    if !last.is_empty() && !last.starts_with(['/', '#']) {
        let mut hits: Vec<&ContactProfile> = profiles
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| {
                p.name.as_deref().is_some_and(|n| {
                    n.to_lowercase()
                        .split_whitespace()
                        .any(|w| w.starts_with(&lower))
                })
            })
            .collect();
        hits.sort_by(|a, b| {
            b.lead_score
                .cmp(&a.lead_score)
                .then_with(|| a.contact_id.cmp(&b.contact_id))
        });
        for p in hits {
            let name = p.name.clone().unwrap_or_default();
            // A name completes to its first word that matches, so the query stays one token.
            let word = name
                .split_whitespace()
                .find(|w| w.to_lowercase().starts_with(&lower))
                .unwrap_or(last)
                .to_owned();
            out.push(Suggestion {
                kind: "contact".into(),
                value: format!("{head}{word}"),
                label: format!("{name} · score {}", p.lead_score),
                contact_id: Some(p.contact_id.clone()),
            });
        }
    }
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::profile::Membership;

    fn err(q: &str) -> ParseError {
        parse(q).unwrap_err()
    }

    #[test]
    fn every_operator_parses() {
        for (src, op) in [
            (">", Op::Gt),
            (">=", Op::Ge),
            ("<", Op::Lt),
            ("<=", Op::Le),
            ("=", Op::Eq),
            ("!=", Op::Ne),
        ] {
            assert_eq!(
                parse(&format!("/leadScore{src}70")).unwrap(),
                vec![Term::Metric {
                    metric: 0,
                    op,
                    value: 70.0
                }],
                "{src}"
            );
        }
    }

    #[test]
    fn filters_and_text_combine() {
        let terms = parse("  Ada #tag:vip   #segment:silver /outstandingBalance>=10000 ").unwrap();
        assert_eq!(terms.len(), 4);
        assert_eq!(terms[0], Term::Text("ada".into()));
        assert_eq!(terms[1], Term::Tag("vip".into()));
        assert_eq!(terms[2], Term::Segment("silver".into()));
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_token_and_position() {
        let e = err("ada /leadScore>>70");
        assert_eq!((e.position, e.token.as_str()), (2, "/leadScore>>70"));
        assert!(e.problem.contains("not a number"), "{e}");
        assert!(err("/nope>1").problem.contains("unknown metric"));
        assert!(err("/leadScore")
            .problem
            .contains("expected /<metric><op><number>"));
        assert!(err("/leadScore~5").problem.contains("expected"));
        assert!(err("/leadScore>abc").problem.contains("not a number"));
        assert!(err("/leadScore>inf").problem.contains("not a number"));
        assert!(err("#tag:").problem.contains("needs a name"));
        assert!(err("#segment").problem.contains("expected #tag"));
        assert!(err("#color:red").problem.contains("unknown filter"));
    }

    #[test]
    fn matching_uses_normalised_contact_fields() {
        let p = ContactProfile {
            name: Some("Ada Lovelace".into()),
            email: Some("ada@example.com".into()),
            phone: Some("15550102030".into()),
            tags: vec!["vip".into()],
            lead_score: 75,
            segments: vec![Membership {
                segment: "gold".into(),
                reason: "lead score 75".into(),
            }],
            ..Default::default()
        };
        let ok = |q: &str| matches(&parse(q).unwrap(), &p);
        assert!(ok("lovelace"));
        assert!(ok("ADA@EXAMPLE.COM"));
        assert!(ok("+1-555-0102"));
        assert!(ok("#tag:VIP #segment:gold /leadScore>70"));
        assert!(!ok("/leadScore>75"));
        assert!(!ok("/paymentReliability<60"), "no value never matches");
        assert!(!ok("#segment:silver"));
        assert!(!ok("babbage"));
    }

    #[test]
    fn suggestions_complete_the_last_token() {
        use std::sync::Arc;
        let p = |id: &str, name: &str, score: i64, tags: &[&str]| {
            Arc::new(ContactProfile {
                business_id: "b".into(),
                contact_id: id.into(),
                name: Some(name.into()),
                lead_score: score,
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                ..Default::default()
            })
        };
        let profiles = vec![
            p("c1", "Ana Lima", 40, &["vip"]),
            p("c2", "Anton Berg", 80, &[]),
        ];
        let segments = vec!["gold".to_owned(), "silver".to_owned()];
        let values = |q: &str| -> Vec<String> {
            suggest(q, &profiles, &segments, 8)
                .into_iter()
                .map(|s| s.value)
                .collect()
        };
        assert_eq!(values("/lead"), ["/leadScore>"]);
        assert_eq!(
            values("/leadScore>70 #seg"),
            [
                "/leadScore>70 #segment:gold",
                "/leadScore>70 #segment:silver"
            ]
        );
        assert_eq!(values("#sil"), ["#segment:silver"]);
        assert_eq!(values("#ta"), ["#tag:vip"]);
        assert_eq!(values("an"), ["Anton", "Ana"]);
        assert_eq!(values("berg"), ["Berg"]);
        // A contact completion names its contact (Enter on it opens the drawer); others none.
        let ids: Vec<Option<String>> = suggest("an", &profiles, &segments, 8)
            .into_iter()
            .map(|s| s.contact_id)
            .collect();
        assert_eq!(ids, [Some("c2".to_owned()), Some("c1".to_owned())]);
        assert!(suggest("#", &profiles, &segments, 8)
            .iter()
            .all(|s| s.contact_id.is_none() && s.kind != "contact"));
        assert_eq!(
            suggest("", &profiles, &segments, 50).len(),
            METRICS.len() + 3
        );
        assert!(values("zzz").is_empty());
    }
}
