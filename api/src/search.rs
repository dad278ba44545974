//! The Cockpit's command search: `q` is whitespace-separated tokens, all of which must match
//! (AND). `#tag:x` and `#segment:x` filter by tag and segment; `/metric<op>number` compares a
//! metric (`/leadScore>70`, `/outstandingBalance>=10000`, `/paymentReliability<60`); any other
//! word is free text matched against name, email and phone, normalised as at ingest (email
//! lower-cased, phone digits only). A malformed token is an error naming it and its position.

use pipeline::profile::ContactProfile;

/// Reads one metric from a profile (None = the contact has no value for it).
pub type Reader = fn(&ContactProfile) -> Option<f64>;

/// Metrics a `/` filter can name, with how to read each from a profile.
pub const METRICS: &[(&str, Reader)] = &[
    ("leadScore", |p| Some(p.lead_score as f64)),
    ("outstandingBalance", |p| {
        Some(p.outstanding_balance_cents as f64)
    }),
    ("unpaidInvoices", |p| Some(p.unpaid_invoices as f64)),
    ("overdueInvoices", |p| Some(p.overdue_invoices as f64)),
    ("paymentReliability", |p| {
        p.payment_reliability.map(|v| v as f64)
    }),
    ("avgDaysLate", |p| p.avg_days_late),
    ("daysSinceLastInteraction", |p| {
        p.days_since_last_interaction.map(|v| v as f64)
    }),
    ("recentBookings", |p| Some(p.recent_bookings as f64)),
    ("revenue", |p| Some(p.revenue_cents as f64)),
    ("completedBookings", |p| {
        Some(p.completed_bookings_total as f64)
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

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline::profile::Membership;

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
            payment_reliability: None,
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
}
