//! What each built-in segment means, for the business asking: the `-- definition` lines of
//! `sql/metrics/segments.sql` (the file that decides membership) rendered with the `params`
//! values in force for that business, its overrides included. One source: a threshold changed in
//! the rules or a branch reworded in the SQL shows in `crm/segments` as it is.

use model::rules::BusinessRules;

/// The metric file that decides segment membership, with a definition line per branch.
pub const SEGMENTS_SQL: &str = include_str!("../../sql/metrics/segments.sql");

/// The prefix of a definition line; `tag:*` defines every tag segment, `{tag}` the tag.
const MARK: &str = "-- definition ";

/// The built-in segments in the order the SQL lists them, each with its definition template.
pub fn templates() -> impl Iterator<Item = (&'static str, &'static str)> {
    SEGMENTS_SQL.lines().filter_map(|l| {
        let (name, text) = l.trim().strip_prefix(MARK)?.split_once(": ")?;
        Some((name.trim(), text.trim()))
    })
}

/// `template` with every `{param}` replaced by its value in `rules` (the calendar's
/// `{timezone}` and `{week_starts_on}` included); a name that is no parameter stays as written
/// (the golden test refuses such a template).
pub fn render(template: &str, rules: &BusinessRules) -> String {
    let cal = &rules.calendar;
    let terms: Vec<(&str, String)> = rules
        .metrics
        .terms()
        .into_iter()
        .chain(rules.scoring.terms())
        .chain([("window_days", rules.scoring.window_days)])
        .map(|(n, v)| (n, v.to_string()))
        .chain([
            ("timezone", cal.timezone.to_string()),
            ("week_starts_on", cal.week_starts_on.name().to_owned()),
        ])
        .collect();
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        match terms.iter().find(|(n, _)| *n == name) {
            Some((_, v)) => out.push_str(v),
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The definitions of the built-in segments (tag segments excluded) under `rules`.
pub fn definitions(rules: &BusinessRules) -> Vec<(String, String)> {
    templates()
        .filter(|(name, _)| !name.ends_with('*'))
        .map(|(name, t)| (name.to_owned(), render(t, rules)))
        .collect()
}

/// What the tag segment `tag:<tag>` means.
pub fn tag_definition(tag: &str) -> String {
    let template = templates()
        .find(|(name, _)| *name == "tag:*")
        .map_or("contacts tagged {tag}", |(_, t)| t);
    template.replace("{tag}", tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every segment the SQL can produce has a definition, and every `{name}` in one is a
    /// parameter the SQL reads as `p.<name>`.
    #[test]
    fn every_branch_is_defined_with_parameters_the_sql_reads() {
        let names: Vec<&str> = templates().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "new_leads_this_week",
                "cold_leads_unpaid",
                "top_clients",
                "high_frequency_vip",
                "delayed_payment_follow_up",
                "gold",
                "silver",
                "bronze",
                "tag:*"
            ]
        );
        for (name, t) in templates() {
            let mut rest = t;
            while let Some(open) = rest.find('{') {
                let close = rest[open..].find('}').expect("closed placeholder") + open;
                let param = &rest[open + 1..close];
                // The calendar reaches the SQL as the zone's number and the week's start.
                let read_as = match param {
                    "timezone" => "zone",
                    "week_starts_on" => "week_start",
                    other => other,
                };
                if param != "tag" {
                    assert!(
                        SEGMENTS_SQL.contains(&format!("p.{read_as}")),
                        "{name}: {{{param}}} is not a parameter segments.sql reads"
                    );
                }
                rest = &rest[close + 1..];
            }
            if !name.ends_with('*') {
                assert!(
                    SEGMENTS_SQL.contains(&format!("'{name}'")),
                    "{name}: no branch of segments.sql produces it"
                );
            }
        }
    }

    #[test]
    fn definitions_follow_the_rules_in_force() {
        let defaults = definitions(&BusinessRules::default());
        let find = |d: &[(String, String)], n: &str| {
            d.iter().find(|(name, _)| name == n).unwrap().1.clone()
        };
        assert_eq!(
            find(&defaults, "new_leads_this_week"),
            "status LEAD, created since monday 00:00 UTC, the start of this week"
        );
        assert_eq!(
            find(&defaults, "silver"),
            "lead score 40 or more and below 70"
        );
        let mut rules = BusinessRules::default();
        rules.metrics.gold_min_score = 85;
        rules.calendar =
            serde_json::from_str(r#"{"timezone": "Europe/Berlin", "week_starts_on": "sunday"}"#)
                .unwrap();
        let custom = definitions(&rules);
        assert_eq!(find(&custom, "gold"), "lead score 85 or more");
        assert_eq!(
            find(&custom, "silver"),
            "lead score 40 or more and below 85"
        );
        assert_eq!(
            find(&custom, "new_leads_this_week"),
            "status LEAD, created since sunday 00:00 Europe/Berlin, the start of this week"
        );
        assert_eq!(tag_definition("vip"), "contacts tagged vip");
    }

    #[test]
    fn an_unknown_placeholder_stays_visible() {
        let r = BusinessRules::default();
        assert_eq!(render("a {nope} b {vip_days}", &r), "a {nope} b 30");
        assert_eq!(render("open {vip_days", &r), "open {vip_days");
    }
}
