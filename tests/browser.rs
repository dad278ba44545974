//! The reference Cockpit page in headless Chromium (Debian's `chromium` + `chromium-driver`,
//! driven over WebDriver), over the demo's data on the embedded broker and store. Each panel is
//! compared with the API it reads: the three spotlights (order and call to action per tab), the
//! Next Action queue (length, first item, the kind filter, a context action that posts and
//! marks its item), the services (rows, totals, one chart bar per service), the tier chart;
//! typing `/leadScore>70` filters the results to what the API answers, the contact drawer shows
//! the score's factors and its score over time (a new point after a produced booking moves it),
//! the timeline receives a newly produced event live and filters by type,
//! `/` focuses the search, a contact's completion chosen with the arrow keys and Enter opens it
//! in the drawer, and at 390 px wide the page has no horizontal scroll. Saves
//! screenshots under the test's target tmp dir (`cockpit.png` at 1500 × 1100,
//! `cockpit-search.png`, `cockpit-contact.png`, `cockpit-390.png`); `docs/cockpit-*.png` are
//! copies of them.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::webdriver::{Session, ARROW_DOWN, ENTER};
use common::*;
use keyflow::demo::generator::{self, DemoSpec};
use pipeline::clock::{Clock, SystemClock};
use pipeline::event::{BookingCreated, BookingRef, ContactCreated, NoteCreated, Payload};
use serde_json::json;

const BUSINESS: &str = "lumen-salon";

/// Kills chromedriver (and with it the browser) when the test ends, pass or fail.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn chromium(profile: &std::path::Path) -> (Driver, Session) {
    let port = free_addr().port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver not found: install chromium and chromium-driver (scripts/test does)");
    let driver = Driver(child);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let options = json!({
        "binary": "/usr/bin/chromium",
        // This machine's network is closed: without the background-networking switches
        // Chromium keeps trying Google's hosts.
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=1500,1100",
            format!("--user-data-dir={}", profile.display()),
        ]
    });
    let client = Session::start(&format!("http://127.0.0.1:{port}"), options)
        .await
        .expect("a Chromium session");
    (driver, client)
}

/// Polls `f` until it returns Some, up to `secs`.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn count(c: &Session, css: &str) -> usize {
    c.find_all(css).await.map_or(0, |v| v.len())
}

/// Clicks the first element matching `css`.
async fn click(c: &Session, css: &str) {
    c.find(css)
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// The `attr` of every element matching `css`, in page order.
async fn attrs(c: &Session, css: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(css).await.unwrap_or_default() {
        out.push(e.attr(attr).await.ok().flatten().unwrap_or_default());
    }
    out
}

/// The API's answer to `path` under the business.
async fn business_json(base: &str, path: &str) -> serde_json::Value {
    let (code, v) = get_json(&format!("{base}/v1/businesses/{BUSINESS}/{path}")).await;
    assert_eq!(code, 200, "{path}: {v}");
    v
}

/// The contact ids and calls to action of one spotlight as the API serves it.
fn spotlight(h: &serde_json::Value, tab: &str) -> (Vec<String>, Vec<String>) {
    let cards = h["spotlights"][tab].as_array().unwrap();
    let field = |k: &str| {
        cards
            .iter()
            .map(|c| c[k].as_str().unwrap().to_owned())
            .collect()
    };
    (field("contactId"), field("action"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cockpit_page_works_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let clock: Arc<SystemClock> = Arc::new(SystemClock);
    let running = keyflow::run::start(&cfg, clock.clone()).await.unwrap();
    let spec = DemoSpec {
        businesses: 2,
        contacts_per_business: 200,
        ..Default::default()
    };
    let history = generator::generate(&spec, clock.now());
    let producer = keyflow::demo::producer(&running.bootstrap).unwrap();
    keyflow::demo::produce_all(&producer, &cfg.topics, &history)
        .await
        .unwrap();
    let status = running.status.clone();
    wait_for(120, "the demo history processed and ready", || {
        status.is_ready() && status.lag.load(std::sync::atomic::Ordering::Relaxed) == 0
    })
    .await;
    let base = format!("http://{}", running.api_addr);
    let (code, api_hits) = get_json(&format!(
        "{base}/v1/businesses/{BUSINESS}/crm/search?q=%2FleadScore%3E70&limit=500"
    ))
    .await;
    assert_eq!(code, 200, "{api_hits}");
    let (_, everyone) = get_json(&format!(
        "{base}/v1/businesses/{BUSINESS}/crm/search?q=&limit=500"
    ))
    .await;
    let expected = api_hits["total"].as_u64().unwrap() as usize;
    assert!(expected > 0, "the demo has contacts above 70");
    assert!(expected < everyone["total"].as_u64().unwrap() as usize);

    let profile = tempfile::tempdir().unwrap();
    let (_driver, c) = chromium(profile.path()).await;
    c.goto(&format!("{base}/#business={BUSINESS}&key={ADMIN_KEY}"))
        .await
        .unwrap();

    // The spotlight: three cards.
    let cards = eventually(30, "three spotlight cards", || async {
        (count(&c, "[data-testid=spotlight-card]").await == 3).then_some(3)
    })
    .await;
    assert_eq!(cards, 3);
    let url = c.current_url().await.unwrap();
    assert!(!url.contains('#'), "the key left the address bar: {url}");

    // Every spotlight: the API's order and its computed call to action on each card.
    let highlights = business_json(&base, "crm/highlights").await;
    for tab in ["leadScore", "recentBookings", "revenue"] {
        let (ids, ctas) = spotlight(&highlights, tab);
        assert!(!ids.is_empty(), "the demo fills the {tab} spotlight");
        click(&c, &format!("[data-testid=spotlight-tab][data-tab={tab}]")).await;
        let shown = eventually(10, &format!("the {tab} spotlight"), || async {
            let shown = attrs(&c, "[data-testid=spotlight-card]", "data-contact").await;
            (shown == ids).then_some(shown)
        })
        .await;
        assert_eq!(shown, ids, "{tab}");
        assert_eq!(
            attrs(&c, "[data-testid=spotlight-cta]", "data-action").await,
            ctas,
            "{tab}"
        );
    }
    click(&c, "[data-testid=spotlight-tab][data-tab=leadScore]").await;

    // The Next Action queue: the API's first page, highest priority first.
    let queue = business_json(&base, "crm/next-actions?limit=8").await;
    let api_refs: Vec<String> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["refId"].as_str().unwrap().to_owned())
        .collect();
    assert!(!api_refs.is_empty(), "the demo has open actions");
    let refs = eventually(15, "the queue's first page", || async {
        let refs = attrs(&c, "[data-testid=queue-item]", "data-ref").await;
        (refs == api_refs).then_some(refs)
    })
    .await;
    assert_eq!(refs.len(), api_refs.len().min(8));
    let meta = c.find("#queue-meta").await.unwrap().text().await.unwrap();
    assert!(
        meta.contains(&format!("of {}", queue["total"])),
        "{meta} / total {}",
        queue["total"]
    );
    // The kind filter: only that kind, as many as the API counts (up to a page).
    let kind = queue["items"][0]["kind"].as_str().unwrap().to_owned();
    let of_kind = queue["kinds"][&kind].as_u64().unwrap() as usize;
    click(&c, &format!("[data-testid=queue-filter][data-kind={kind}]")).await;
    let kinds = eventually(10, "the queue filtered by kind", || async {
        let kinds = attrs(&c, "[data-testid=queue-item]", "data-kind").await;
        (!kinds.is_empty() && kinds.iter().all(|k| *k == kind)).then_some(kinds)
    })
    .await;
    assert_eq!(kinds.len(), of_kind.min(8), "{kind}");
    // A context action posts to crm/actions and marks its item.
    let first = c.find("[data-testid=queue-item]").await.unwrap();
    let first_ref = first.attr("data-ref").await.unwrap().unwrap();
    click(&c, "[data-testid=queue-item] [data-testid=queue-action]").await;
    eventually(10, "the actioned queue item", || async {
        let item = c
            .find(&format!("[data-testid=queue-item][data-ref='{first_ref}']"))
            .await
            .ok()?;
        (item.attr("data-state").await.ok()??.as_str() == "actioned").then_some(())
    })
    .await;
    let toast = c.find("#toast").await.unwrap().text().await.unwrap();
    assert!(toast.contains("logged at"), "{toast}");
    click(&c, "[data-testid=queue-filter][data-kind='']").await;

    // Services: one row and one bar per service, with the API's totals.
    let services = business_json(&base, "crm/services").await;
    let services = services["services"].as_array().unwrap();
    assert!(!services.is_empty(), "the demo books services");
    let rows = eventually(10, "the service rows", || async {
        let rows = attrs(&c, "[data-testid=service-row]", "data-revenue").await;
        (rows.len() == services.len()).then_some(rows)
    })
    .await;
    let revenue: i64 = rows.iter().map(|r| r.parse::<i64>().unwrap()).sum();
    let api_revenue: i64 = services
        .iter()
        .map(|s| s["revenue"].as_i64().unwrap())
        .sum();
    assert_eq!(revenue, api_revenue);
    assert_eq!(
        count(&c, "[data-testid=service-chart] rect.bar").await,
        services.len()
    );
    assert_eq!(count(&c, "[data-testid=tier-chart] rect.bar").await, 3);
    assert!(
        count(&c, "[data-testid=fan]").await > 0,
        "top fans are listed"
    );

    // The AI cards: as many as the API serves, up to three.
    let ai = business_json(&base, "crm/ai/next-actions").await;
    let ai_cards = ai["cards"].as_array().unwrap().len().min(3);
    assert!(ai_cards > 0, "the demo has AI cards");
    eventually(10, "the AI cards", || async {
        (count(&c, "[data-testid=ai-card]").await == ai_cards).then_some(())
    })
    .await;
    let login = c.find("#login").await.unwrap();
    assert!(
        !login.is_displayed().await.unwrap(),
        "the key form stays hidden once connected"
    );
    // Let the AI cards, cues and timeline fill in, then photograph the overview.
    eventually(15, "the timeline", || async {
        (count(&c, "[data-testid=timeline-item]").await > 0).then_some(())
    })
    .await;
    // The timeline's titles are the API's, readable; the type filter hides the others.
    let timeline = business_json(&base, "crm/timeline?limit=60").await;
    let titles: Vec<&str> = timeline["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    let first_title = c
        .find("[data-testid=timeline-item] .title")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(titles.contains(&first_title.as_str()), "{first_title}");
    click(&c, "#timeline-filter [data-badge=booking]").await;
    let visible = eventually(10, "only bookings in the timeline", || async {
        let mut badges = Vec::new();
        for li in c.find_all("[data-testid=timeline-item]").await.ok()? {
            if li.is_displayed().await.ok()? {
                badges.push(li.attr("data-badge").await.ok()??);
            }
        }
        (!badges.is_empty() && badges.iter().all(|b| b == "booking")).then_some(badges)
    })
    .await;
    assert!(!visible.is_empty());
    click(&c, "#timeline-filter [data-badge='']").await;

    tokio::time::sleep(Duration::from_millis(500)).await;
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cockpit.png");
    std::fs::write(&shot, c.screenshot().await.unwrap()).unwrap();

    // "/" focuses the search from anywhere on the page.
    let focused = c
        .execute(
            "document.activeElement.blur(); document.dispatchEvent(new KeyboardEvent('keydown', {key: '/'})); \
             return document.activeElement.id;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focused, json!("search"));
    c.execute("document.activeElement.blur(); return null;", vec![])
        .await
        .unwrap();

    // The command search: suggestions while typing, then results that all match.
    let input = c.find("[data-testid=search-input]").await.unwrap();
    input.send_keys("/lead").await.unwrap();
    eventually(10, "the /leadScore suggestion", || async {
        let items = c.find_all("#suggest li").await.ok()?;
        for li in items {
            if li.attr("data-value").await.ok()?.as_deref() == Some("/leadScore>") {
                return Some(());
            }
        }
        None
    })
    .await;
    input.send_keys("Score>70").await.unwrap();
    input.send_keys(ENTER).await.unwrap();
    let shown = eventually(15, "search results for /leadScore>70", || async {
        let meta = c.find("#results-meta").await.ok()?.text().await.ok()?;
        if !meta.contains("/leadScore>70") {
            return None;
        }
        let rows = c.find_all("[data-testid=search-result]").await.ok()?;
        let mut scores = Vec::new();
        for r in rows {
            scores.push(r.attr("data-score").await.ok()??.parse::<i64>().ok()?);
        }
        Some((meta, scores))
    })
    .await;
    let (meta, scores) = shown;
    assert!(meta.starts_with(&format!("{expected} match")), "{meta}");
    assert_eq!(scores.len(), expected.min(25));
    assert!(scores.iter().all(|s| *s > 70), "{scores:?}");

    // The timeline: a note produced now shows up without a reload.
    let contact = format!("{BUSINESS}-c00001");
    let body = format!("Browser test note {}", uuid_like());
    let note = msg(
        &format!("note-{}", uuid_like()),
        BUSINESS,
        &contact,
        &clock.now().to_rfc3339(),
        Payload::NoteCreated(NoteCreated {
            note_id: "browser-note".into(),
            body: body.clone(),
        }),
    );
    keyflow::demo::produce_all(&producer, &cfg.topics, &[note])
        .await
        .unwrap();
    eventually(30, "the new note in the live timeline", || async {
        let first = c.find("[data-testid=timeline-item]").await.ok()?;
        first.text().await.ok()?.contains(&body).then_some(())
    })
    .await;
    let search_shot = shot.with_file_name("cockpit-search.png");
    std::fs::write(&search_shot, c.screenshot().await.unwrap()).unwrap();

    // From the keyboard: the first letters of a contact's name, the down arrow to its
    // completion, and Enter opens that contact in the drawer.
    let named = everyone["items"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|c| c["name"].as_str())
        .expect("the demo's contacts have names");
    let prefix: String = named.chars().take(3).collect();
    c.execute(
        "const i = document.getElementById('search'); i.value = ''; i.focus(); return null;",
        vec![],
    )
    .await
    .unwrap();
    input.send_keys(&prefix).await.unwrap();
    let id = eventually(10, "a contact completion first", || async {
        let li = c.find("#suggest li").await.ok()?;
        let id = li.attr("data-contact").await.ok()??;
        let value = li.attr("data-value").await.ok()??.to_lowercase();
        let current = value.starts_with(&prefix.to_lowercase());
        (li.attr("data-kind").await.ok()?.as_deref() == Some("contact")
            && current
            && !id.is_empty())
        .then_some(id)
    })
    .await;
    let (code, shown) = get_json(&format!("{base}/v1/businesses/{BUSINESS}/contacts/{id}")).await;
    assert_eq!(code, 200, "{shown}");
    let name = shown["name"].as_str().unwrap().to_owned();
    assert!(
        name.to_lowercase().contains(&prefix.to_lowercase()),
        "{name} completes {prefix}"
    );
    input.send_keys(ARROW_DOWN).await.unwrap();
    input.send_keys(ENTER).await.unwrap();
    eventually(15, "the drawer opened from the keyboard", || async {
        let h = c.find("[data-testid=drawer-contact] h2").await.ok()?;
        (h.text().await.ok()? == name).then_some(())
    })
    .await;
    // Escape closes it (the page's key handler), and the drawer slides out before the next
    // click lands on the page under it.
    c.execute(
        "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'})); return null;",
        vec![],
    )
    .await
    .unwrap();
    eventually(5, "the drawer closed by Escape", || async {
        let class = c.find("#drawer").await.ok()?.attr("class").await.ok()??;
        (!class.split_whitespace().any(|k| k == "open")).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    // The contact drawer with the score's factor breakdown.
    click(&c, "[data-testid=spotlight-card]").await;
    eventually(15, "the contact drawer with factors", || async {
        let f = c.find("[data-testid=factors]").await.ok()?;
        (!f.text().await.ok()?.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let drawer_shot = shot.with_file_name("cockpit-contact.png");
    std::fs::write(&drawer_shot, c.screenshot().await.unwrap()).unwrap();

    // The drawer's score over time: one dot per stored change, as the API's history. A new
    // contact's first profile is one point; a booking completed now moves its score, and the
    // reopened drawer shows a second point with the API's score.
    let newcomer = format!("{BUSINESS}-browser-{}", uuid_like());
    let now = clock.now();
    let created = msg(
        &format!("created-{}", uuid_like()),
        BUSINESS,
        &newcomer,
        &now.to_rfc3339(),
        Payload::ContactCreated(ContactCreated {
            name: "Grace Newcomer".into(),
            ..Default::default()
        }),
    );
    keyflow::demo::produce_all(&producer, &cfg.topics, &[created])
        .await
        .unwrap();
    let history_url = format!("{base}/v1/businesses/{BUSINESS}/contacts/{newcomer}/score-history");
    // 404 until the contact's first profile is stored.
    let points = |n: usize| {
        let url = history_url.clone();
        async move {
            let (code, h) = get_json(&url).await;
            (code == 200 && h["points"].as_array()?.len() == n).then_some(h)
        }
    };
    let first = eventually(30, "the newcomer's first score point", || points(1)).await;
    const DOTS: &str = "[data-testid=score-history] circle.pt";
    let open = format!("openContact({newcomer:?}); return null;");
    c.execute(&open, vec![]).await.unwrap();
    eventually(15, "one dot in the drawer's score history", || async {
        let shown = attrs(&c, DOTS, "data-score").await;
        (shown == vec![first["points"][0]["score"].to_string()]).then_some(())
    })
    .await;
    let booking = format!("{newcomer}-k1");
    let at = clock.now();
    let booked = [
        msg(
            &format!("booked-{}", uuid_like()),
            BUSINESS,
            &newcomer,
            &(at - chrono::TimeDelta::hours(2)).to_rfc3339(),
            Payload::BookingCreated(BookingCreated {
                booking_id: booking.clone(),
                service_id: "balayage".into(),
                service_name: "Balayage".into(),
                starts_at: at - chrono::TimeDelta::hours(1),
                price_cents: Some(12_000),
            }),
        ),
        msg(
            &format!("done-{}", uuid_like()),
            BUSINESS,
            &newcomer,
            &at.to_rfc3339(),
            Payload::BookingCompleted(BookingRef {
                booking_id: booking,
            }),
        ),
    ];
    keyflow::demo::produce_all(&producer, &cfg.topics, &booked)
        .await
        .unwrap();
    let moved = eventually(30, "a second score point after the booking", || points(2)).await;
    let last = &moved["points"][1];
    assert_ne!(last["score"], moved["points"][0]["score"], "{moved}");
    assert_eq!(last["score"], moved["leadScore"], "{moved}");
    assert_eq!(last["moved"][0]["factor"], "bookings_completed", "{moved}");
    c.execute(&open, vec![]).await.unwrap();
    eventually(15, "two dots in the drawer's score history", || async {
        let shown = attrs(&c, DOTS, "data-score").await;
        let want: Vec<String> = moved["points"]
            .as_array()?
            .iter()
            .map(|p| p["score"].to_string())
            .collect();
        (shown == want).then_some(())
    })
    .await;

    // A phone: one column, nothing wider than the screen.
    c.execute(
        "document.getElementById('drawer-close').click(); \
         document.getElementById('results-close').click(); window.scrollTo(0, 0); return null;",
        vec![],
    )
    .await
    .unwrap();
    c.set_window_size(390, 844).await.unwrap();
    let overflow = eventually(10, "the 390 px layout", || async {
        let v = c
            .execute(
                "return [window.innerWidth, document.documentElement.scrollWidth];",
                vec![],
            )
            .await
            .ok()?;
        let (inner, scroll) = (v[0].as_u64()?, v[1].as_u64()?);
        (inner <= 400).then_some((inner, scroll))
    })
    .await;
    if overflow.1 > overflow.0 {
        let wide = c
            .execute(
                "return [...document.querySelectorAll('body *')]\
                 .filter((e) => e.getBoundingClientRect().right > window.innerWidth)\
                 .slice(0, 8).map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`);",
                vec![],
            )
            .await
            .unwrap();
        panic!(
            "horizontal scroll at 390 px: content {} px in a {} px window; wider: {wide}",
            overflow.1, overflow.0
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let phone_shot = shot.with_file_name("cockpit-390.png");
    std::fs::write(&phone_shot, c.screenshot().await.unwrap()).unwrap();
    println!(
        "screenshots: {} {} {} {}",
        shot.display(),
        search_shot.display(),
        drawer_shot.display(),
        phone_shot.display()
    );

    c.close().await.unwrap();
    running.stop().await.unwrap();
}
