//! A synthetic, realistic CRM stream: businesses with services, contacts going through the
//! booking life cycle, invoices paid on time, late or never, tasks done and overdue, notes, and a
//! sprinkle of malformed events. The same seed and clock give the same stream.

use chrono::{DateTime, Duration, Utc};
use pipeline::event::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One message to produce.
#[derive(Debug, Clone)]
pub struct DemoMessage {
    pub family: TopicFamily,
    pub key: String,
    pub payload: Vec<u8>,
    pub occurred_at: DateTime<Utc>,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    pub seed: u64,
    pub businesses: usize,
    pub contacts_per_business: usize,
    /// How far back the history reaches.
    pub history_days: i64,
    /// Share of malformed messages (0.0..1.0).
    pub bad_ratio: f64,
    /// Activity per contact, as a multiple of the demo's (bookings, tasks, notes): with
    /// `history_days` scaled alike, the same rate of activity over a longer retained window.
    pub activity_scale: usize,
}

impl Default for DemoSpec {
    fn default() -> Self {
        Self {
            seed: 7,
            businesses: 4,
            contacts_per_business: 750,
            history_days: 30,
            bad_ratio: 0.002,
            activity_scale: 1,
        }
    }
}

/// A service a business sells: (id, name, price in cents).
type Service = (&'static str, &'static str, i64);

const KINDS: [(&str, &[Service]); 4] = [
    (
        "lumen-salon",
        &[
            ("svc-cut", "Haircut", 4500),
            ("svc-colour", "Colour", 9500),
            ("svc-blowdry", "Blow-dry", 3000),
            ("svc-treat", "Scalp treatment", 6000),
        ],
    ),
    (
        "north-yoga",
        &[
            ("svc-flow", "Vinyasa flow", 1800),
            ("svc-private", "Private session", 7000),
            ("svc-pack10", "10-class pack", 15000),
        ],
    ),
    (
        "cedar-clinic",
        &[
            ("svc-physio", "Physiotherapy", 8000),
            ("svc-massage", "Sports massage", 6500),
            ("svc-assess", "Assessment", 9000),
            ("svc-rehab", "Rehab plan", 12000),
        ],
    ),
    (
        "atlas-coaching",
        &[
            ("svc-call", "Discovery call", 0),
            ("svc-session", "Coaching session", 12000),
            ("svc-program", "8-week program", 90000),
        ],
    ),
];

const FIRST: [&str; 24] = [
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Katherine",
    "Niklaus",
    "Sophie",
    "Yukihiro",
    "Anita",
    "Guido",
    "Mary",
    "Bjarne",
    "Shafi",
    "Leslie",
];
const LAST: [&str; 20] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "McCarthy",
    "Johnson",
    "Wirth",
    "Wilson",
    "Matsumoto",
    "Borg",
    "Goldwasser",
];
const TAGS: [&str; 6] = [
    "vip",
    "referral",
    "newsletter",
    "student",
    "corporate",
    "instagram",
];

struct Gen {
    rng: StdRng,
    /// The sources KeyFlow accepts by default.
    sources: Vec<String>,
    now: DateTime<Utc>,
    seq: u64,
    out: Vec<DemoMessage>,
}

impl Gen {
    fn event(&mut self, business: &str, contact: &str, at: DateTime<Utc>, payload: Payload) {
        if at > self.now {
            return;
        }
        self.seq += 1;
        let sources = &self.sources;
        let source = sources[self.rng.random_range(0..sources.len())].clone();
        let ev = Event {
            schema_version: SCHEMA_VERSION,
            event_id: format!("demo-{:08}", self.seq),
            business_id: business.into(),
            contact_id: contact.into(),
            occurred_at: at,
            source,
            payload,
        };
        let family = ev.payload.family();
        let payload = serde_json::to_vec(&ev).expect("events serialise");
        self.out.push(DemoMessage {
            family,
            key: contact.into(),
            payload,
            occurred_at: at,
        });
    }

    fn bad(&mut self, contact: &str, at: DateTime<Utc>) {
        let n = self.rng.random_range(0..3);
        let payload = match n {
            0 => br#"{"event_id":"broken","type":"invoice.sent","business_id":"#.to_vec(),
            1 => format!(r#"{{"event_id":"bad-{contact}","type":"invoice.sent","business_id":"lumen-salon","contact_id":"{contact}","occurred_at":"{}","source":"manual","data":{{"invoice_id":"x","amount_cents":-100,"currency":"EUR","due_at":"{}"}}}}"#, at.to_rfc3339(), at.to_rfc3339()).into_bytes(),
            _ => format!(r#"{{"event_id":"fax-{contact}","type":"note.created","business_id":"lumen-salon","contact_id":"{contact}","occurred_at":"{}","source":"fax","data":{{"note_id":"n","body":"sent by fax"}}}}"#, at.to_rfc3339()).into_bytes(),
        };
        self.out.push(DemoMessage {
            family: TopicFamily::Contacts,
            key: contact.into(),
            payload,
            occurred_at: at,
        });
    }

    fn between(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
        let span = (to - from).num_minutes().max(1);
        from + Duration::minutes(self.rng.random_range(0..span))
    }

    fn contact(&mut self, spec: &DemoSpec, business: &str, services: &[Service], n: usize) {
        let id = format!("{business}-c{n:05}");
        let start = self.now - Duration::days(spec.history_days);
        let created = self.between(start, self.now - Duration::hours(1));
        let (first, last) = (
            FIRST[self.rng.random_range(0..FIRST.len())],
            LAST[self.rng.random_range(0..LAST.len())],
        );
        let tags: Vec<String> = TAGS
            .iter()
            .filter(|_| self.rng.random_bool(0.15))
            .map(|t| t.to_string())
            .collect();
        let status = if self.rng.random_bool(0.3) {
            "CLIENT"
        } else {
            "LEAD"
        };
        // Raw, un-normalised contact details: KeyFlow cleans them up at ingest.
        let created_ev = ContactCreated {
            name: format!("  {first} {last} "),
            email: Some(format!(" {first}.{last}{n}@Example.com ")),
            phone: Some(format!(
                "+44 (20) {:04}-{:04}",
                self.rng.random_range(0..10000),
                n % 10000
            )),
            tags: (!tags.is_empty()).then_some(tags),
            status: Some(status.into()),
            photo_url: Some(format!("https://i.pravatar.cc/150?u={id}")),
        };
        self.event(business, &id, created, Payload::ContactCreated(created_ev));

        let bookings = self.rng.random_range(0..7) * spec.activity_scale;
        let mut cursor = created;
        for b in 0..bookings {
            let (svc_id, svc_name, price) = services[self.rng.random_range(0..services.len())];
            let booked = self.between(cursor, (cursor + Duration::days(6)).min(self.now));
            let starts = booked + Duration::hours(self.rng.random_range(12..24 * 6));
            cursor = booked;
            let booking_id = format!("{id}-b{b}");
            self.event(
                business,
                &id,
                booked,
                Payload::BookingCreated(BookingCreated {
                    booking_id: booking_id.clone(),
                    service_id: svc_id.into(),
                    service_name: svc_name.into(),
                    starts_at: starts,
                    price_cents: Some(price),
                }),
            );
            let r: f64 = self.rng.random();
            let bref = || BookingRef {
                booking_id: booking_id.clone(),
            };
            if r < 0.1 {
                let at = self.between(booked, starts);
                self.event(business, &id, at, Payload::BookingCancelled(bref()));
                continue;
            }
            if r < 0.85 {
                let at = booked + Duration::hours(2);
                self.event(business, &id, at, Payload::BookingConfirmed(bref()));
            }
            let done = starts + Duration::hours(1);
            if done > self.now || r >= 0.85 && self.rng.random_bool(0.5) {
                continue;
            }
            self.event(business, &id, done, Payload::BookingCompleted(bref()));
            if price == 0 {
                continue;
            }
            let invoice_id = format!("{id}-i{b}");
            let sent = done + Duration::minutes(30);
            let due = sent + Duration::days(7);
            self.event(
                business,
                &id,
                sent,
                Payload::InvoiceSent(InvoiceSent {
                    invoice_id: invoice_id.clone(),
                    amount_cents: price,
                    currency: "eur".into(),
                    due_at: due,
                    booking_id: Some(booking_id.clone()),
                    service_id: Some(svc_id.into()),
                }),
            );
            let iref = || InvoiceRef {
                invoice_id: invoice_id.clone(),
            };
            let pay: f64 = self.rng.random();
            if pay < 0.65 {
                let at = self.between(sent, due);
                self.event(business, &id, at, Payload::InvoicePaid(iref()));
            } else {
                self.event(
                    business,
                    &id,
                    due + Duration::days(1),
                    Payload::InvoiceOverdue(iref()),
                );
                if pay < 0.82 {
                    let at = due + Duration::days(self.rng.random_range(2..12));
                    self.event(business, &id, at, Payload::InvoicePaid(iref()));
                }
            }
        }

        for t in 0..self.rng.random_range(0..3) * spec.activity_scale {
            let at = self.between(created, self.now);
            let due = at + Duration::days(self.rng.random_range(1..6));
            let task_id = format!("{id}-t{t}");
            self.event(
                business,
                &id,
                at,
                Payload::TaskCreated(TaskCreated {
                    task_id: task_id.clone(),
                    title: [
                        "Call back",
                        "Send price list",
                        "Confirm intake form",
                        "Follow up on quote",
                    ][t % 4]
                        .into(),
                    due_at: due,
                }),
            );
            if self.rng.random_bool(0.5) {
                let done = self.between(at, due);
                self.event(
                    business,
                    &id,
                    done,
                    Payload::TaskCompleted(TaskRef { task_id }),
                );
            }
        }
        for k in 0..self.rng.random_range(0..3) * spec.activity_scale {
            let at = self.between(created, self.now);
            self.event(
                business,
                &id,
                at,
                Payload::NoteCreated(NoteCreated {
                    note_id: format!("{id}-n{k}"),
                    body: [
                        "Prefers mornings",
                        "Asked about gift cards",
                        "Allergic to lavender",
                        "Referred by a friend",
                    ][k % 4]
                        .into(),
                }),
            );
        }
        if self.rng.random_bool(0.1) {
            let at = self.between(created, self.now);
            let phone = format!("07700 {:06}", self.rng.random_range(0..1_000_000));
            self.event(
                business,
                &id,
                at,
                Payload::ContactUpdated(ContactUpdated {
                    phone: Some(phone),
                    ..Default::default()
                }),
            );
        }
        if self.rng.random_bool(spec.bad_ratio * 10.0) {
            let at = self.between(created, self.now);
            self.bad(&id, at);
        }
    }
}

/// The history up to `now`, ordered by event time.
pub fn generate(spec: &DemoSpec, now: DateTime<Utc>) -> Vec<DemoMessage> {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(spec.seed),
        sources: pipeline::config::IngestConfig::default().sources,
        now,
        seq: 0,
        out: Vec::new(),
    };
    for b in 0..spec.businesses {
        let (name, services) = KINDS[b % KINDS.len()];
        let business = if b < KINDS.len() {
            name.to_string()
        } else {
            format!("{name}-{b}")
        };
        for n in 0..spec.contacts_per_business {
            g.contact(spec, &business, services, n);
        }
    }
    g.out.sort_by_key(|m| m.occurred_at);
    g.out
}

/// One more live event for a random existing contact at `now`: the demo's trickle.
pub fn live(spec: &DemoSpec, rng: &mut StdRng, now: DateTime<Utc>, seq: u64) -> DemoMessage {
    let b = rng.random_range(0..spec.businesses);
    let (name, services) = KINDS[b % KINDS.len()];
    let business = if b < KINDS.len() {
        name.to_string()
    } else {
        format!("{name}-{b}")
    };
    let contact = format!(
        "{business}-c{:05}",
        rng.random_range(0..spec.contacts_per_business)
    );
    let booking_id = format!("{contact}-live{seq}");
    let payload = match rng.random_range(0..3) {
        0 => {
            let (svc_id, svc_name, price) = services[rng.random_range(0..services.len())];
            Payload::BookingCreated(BookingCreated {
                booking_id,
                service_id: svc_id.into(),
                service_name: svc_name.into(),
                starts_at: now + Duration::days(2),
                price_cents: Some(price),
            })
        }
        1 => Payload::BookingCompleted(BookingRef { booking_id }),
        _ => Payload::NoteCreated(NoteCreated {
            note_id: format!("{contact}-live{seq}"),
            body: "Walked in today".into(),
        }),
    };
    let ev = Event {
        schema_version: SCHEMA_VERSION,
        event_id: format!("live-{}-{seq}", spec.seed),
        business_id: business,
        contact_id: contact.clone(),
        occurred_at: now,
        source: "manual".into(),
        payload,
    };
    let family = ev.payload.family();
    DemoMessage {
        family,
        key: contact,
        payload: serde_json::to_vec(&ev).expect("serialises"),
        occurred_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let now = DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let spec = DemoSpec {
            contacts_per_business: 20,
            ..Default::default()
        };
        let a = generate(&spec, now);
        let b = generate(&spec, now);
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.payload == y.payload));
        assert!(a.iter().all(|m| m.occurred_at <= now));
        assert!(
            a.len() > 20 * 4 * 3,
            "a realistic amount of activity per contact"
        );
    }
}
