//! `keyflow import` against the embedded broker of a running KeyFlow: accepted rows reach the
//! API as contacts, refused rows are reported by line, and a second import adds nothing.

use std::sync::atomic::Ordering::Relaxed;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_reaches_the_api_reports_bad_rows_and_adds_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    let (_, shared) = clock("2026-11-20T12:00:00Z");
    let running = keyflow::run::start(&cfg, shared).await.unwrap();
    cfg.brokers = Some(running.bootstrap.clone());
    let file = dir.path().join("contacts.csv");
    std::fs::write(
        &file,
        "contactId,name,email,tags,status,created_at\n\
         c1,Ann  Lee,ANN@X.IO,vip;new,LEAD,2026-11-01T09:00:00Z\n\
         c2,,bo@x.io,,,2026-11-01T09:00:00Z\n\
         c3,Cy,,,,yesterday\n\
         c1,,,,CLIENT,2026-11-02T09:00:00Z\n\
         c4,Di,\"di@x.io\",\"a,b\",,2026-11-03T09:00:00Z\n",
    )
    .unwrap();

    let report = keyflow::import::run(&cfg, &file, Some("imp"))
        .await
        .unwrap();
    assert_eq!((report.rows, report.produced), (5, 3), "{report:?}");
    let lines: Vec<usize> = report.rejected.iter().map(|r| r.0).collect();
    assert_eq!(lines, vec![3, 4], "{report:?}");
    assert!(report.rejected[0].1.contains("name"), "{report:?}");
    assert!(report.rejected[1].1.contains("created_at"), "{report:?}");

    let status = running.status.clone();
    wait_for(60, "three imported events", || {
        status.events_in.load(Relaxed) >= 3
    })
    .await;
    let base = format!("http://{}/v1/businesses/imp/contacts", running.api_addr);
    let mut c1 = serde_json::Value::Null;
    for _ in 0..200 {
        c1 = get_json(&format!("{base}/c1")).await.1;
        if c1["status"] == "CLIENT" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(c1["status"], "CLIENT", "{c1}");
    assert_eq!(c1["name"], "Ann Lee", "normalised like the stream: {c1}");
    assert_eq!(c1["email"], "ann@x.io", "{c1}");
    assert_eq!(c1["tags"], serde_json::json!(["new", "vip"]), "{c1}");
    let (code, c4) = get_json(&format!("{base}/c4")).await;
    assert_eq!(code, 200, "{c4}");
    assert_eq!(c4["tags"], serde_json::json!(["a", "b"]), "{c4}");
    assert_eq!(status.dead_letters.load(Relaxed), 0);

    // The same file again: the same event ids, each counted once.
    let again = keyflow::import::run(&cfg, &file, Some("imp"))
        .await
        .unwrap();
    assert_eq!(again, report);
    wait_for(60, "three duplicates", || {
        status.duplicates.load(Relaxed) >= 3
    })
    .await;
    assert_eq!(status.events_in.load(Relaxed), 3, "nothing new was counted");
    running.stop().await.unwrap();
}
