//! The reference Cockpit page in headless Chromium (Debian's `chromium` + `chromium-driver`,
//! driven over WebDriver), over the demo's data on the embedded broker and store: the spotlight
//! shows three cards, typing `/leadScore>70` filters the results to what the API answers, the
//! contact drawer shows the score's factors, and the timeline receives a newly produced event
//! live. Saves screenshots under the test's target tmp dir (`cockpit.png`, `cockpit-search.png`,
//! `cockpit-contact.png`).

use crate::common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::webdriver::{Session, ENTER};
use common::*;
use keyflow::demo::generator::{self, DemoSpec};
use pipeline::clock::{Clock, SystemClock};
use pipeline::event::{NoteCreated, Payload};
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
            "--disable-component-update", "--disable-sync", "--window-size=1440,1300",
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
    assert!(count(&c, "[data-testid=ai-card]").await <= 3);
    let url = c.current_url().await.unwrap();
    assert!(!url.contains('#'), "the key left the address bar: {url}");
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cockpit.png");
    std::fs::write(&shot, c.screenshot().await.unwrap()).unwrap();

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

    // The contact drawer with the score's factor breakdown.
    c.find("[data-testid=spotlight-card]")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(15, "the contact drawer with factors", || async {
        let f = c.find("[data-testid=factors]").await.ok()?;
        (!f.text().await.ok()?.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let drawer_shot = shot.with_file_name("cockpit-contact.png");
    std::fs::write(&drawer_shot, c.screenshot().await.unwrap()).unwrap();
    println!(
        "screenshots: {} {} {}",
        shot.display(),
        search_shot.display(),
        drawer_shot.display()
    );

    c.close().await.unwrap();
    running.stop().await.unwrap();
}
