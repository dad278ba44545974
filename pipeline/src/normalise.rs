//! Ingest normalisation: one canonical form for emails, phones, names, tags and statuses, shared
//! by the decoder and by anything that must match what was stored (search, the API).

use crate::event::{ContactCreated, ContactUpdated, Event, Payload};

/// Trimmed and lower-cased; `None` when nothing is left.
pub fn email(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_lowercase())
}

/// Digits only (`+1 (555) 010-2030` becomes `15550102030`); `None` when no digit is left.
pub fn phone(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    (!digits.is_empty()).then_some(digits)
}

/// Trimmed, inner runs of white space folded to one space.
pub fn name(raw: &str) -> String {
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Trimmed and lower-cased, empties dropped, duplicates removed, sorted.
pub fn tags(raw: &[String]) -> Vec<String> {
    let mut out: Vec<String> = raw
        .iter()
        .map(|t| t.trim().to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Upper-case status (`lead` becomes `LEAD`).
pub fn status(raw: &str) -> String {
    raw.trim().to_uppercase()
}

fn opt_url(raw: Option<String>) -> Option<String> {
    raw.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty())
}

/// Rewrites an accepted event in place into its canonical form.
pub fn event(ev: &mut Event) {
    ev.source = ev.source.trim().to_lowercase();
    match &mut ev.payload {
        Payload::ContactCreated(c) => contact_created(c),
        Payload::ContactUpdated(u) => contact_updated(u),
        Payload::NoteCreated(n) => n.body = n.body.trim().to_owned(),
        Payload::TaskCreated(t) => t.title = name(&t.title),
        Payload::BookingCreated(b) => b.service_name = name(&b.service_name),
        Payload::InvoiceSent(i) => i.currency = i.currency.trim().to_uppercase(),
        _ => {}
    }
}

fn contact_created(c: &mut ContactCreated) {
    c.name = name(&c.name);
    c.email = c.email.as_deref().and_then(email);
    c.phone = c.phone.as_deref().and_then(phone);
    c.tags = c.tags.as_deref().map(tags);
    c.status = Some(
        c.status
            .as_deref()
            .map(status)
            .unwrap_or_else(|| "LEAD".into()),
    );
    c.photo_url = opt_url(c.photo_url.take());
}

fn contact_updated(u: &mut ContactUpdated) {
    u.name = u.name.as_deref().map(name);
    // An explicit empty email or phone clears the field: keep it as an empty string.
    u.email = u.email.as_deref().map(|e| email(e).unwrap_or_default());
    u.phone = u.phone.as_deref().map(|p| phone(p).unwrap_or_default());
    u.tags = u.tags.as_deref().map(tags);
    u.status = u.status.as_deref().map(status);
    u.from_status = u.from_status.as_deref().map(status);
    u.photo_url = u.photo_url.take().map(|p| p.trim().to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            email("  Ada.Lovelace@Example.COM \n"),
            Some("ada.lovelace@example.com".into())
        );
        assert_eq!(email("   "), None);
    }

    #[test]
    fn phones_keep_digits_only() {
        assert_eq!(phone("+1 (555) 010-2030"), Some("15550102030".into()));
        assert_eq!(phone("n/a"), None);
    }

    #[test]
    fn names_fold_white_space() {
        assert_eq!(name("  Ada \t  Lovelace "), "Ada Lovelace");
    }

    #[test]
    fn tags_are_canonical_sets() {
        let raw = vec![" VIP".to_string(), "vip".into(), "".into(), "Yoga ".into()];
        assert_eq!(tags(&raw), vec!["vip".to_string(), "yoga".into()]);
    }
}
