//! API latency under a fixed request rate. The server runs in the harness process over the
//! engine phase's embedded store (every contact loaded); the load comes from a separate
//! process (`keyflow-bench child load`), an open-loop generator: requests leave on a fixed
//! schedule whether or not earlier ones returned, and each latency is measured from its
//! scheduled instant, so a stall is charged to every request it delays (no coordinated
//! omission). Requests go over a fixed number of keep-alive connections, as wrk's `-c` or a
//! fleet of browsers would send them; a request waits in the generator for a free connection,
//! and that wait is part of its latency. With `--api-connections 0` the generator opens a new
//! connection whenever none is idle instead: under overload that floods the server's listen
//! queue (the kernel drops the SYNs, and clients retry after 1, 3, 7, 15 and 31 s).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use pipeline::status::ProcessorStatus;
use serde::{Deserialize, Serialize};
use sinks::store::EmbeddedStore;

use super::{child, rss_bytes, BenchArgs};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    pub route: String,
    pub target_rps: u32,
    pub seconds: u64,
    pub requests: u64,
    pub ok: u64,
    /// Failed requests, not counting `shed`.
    pub errors: u64,
    /// Requests refused at once with the API's 503 `overloaded` (load shedding, documented).
    #[serde(default)]
    pub shed: u64,
    pub achieved_rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Keep-alive connections the requests shared (0: a new one whenever none was idle).
    #[serde(default)]
    pub connections: usize,
}

const KEY: &str = "bench-admin-key-0123456789";

/// The routes measured, each with the paths its requests cycle through.
fn routes(contacts_per_business: usize) -> Vec<(&'static str, Vec<String>)> {
    let b = "/v1/businesses/lumen-salon";
    let contact_paths = (0..1000)
        .map(|i| {
            let n = (i * 7919) % contacts_per_business.max(1);
            format!("{b}/contacts/lumen-salon-c{n:05}")
        })
        .collect();
    vec![
        ("highlights", vec![format!("{b}/crm/highlights")]),
        ("segments", vec![format!("{b}/crm/segments")]),
        ("contact detail", contact_paths),
        (
            "search /leadScore>70",
            vec![format!("{b}/crm/search?q=%2FleadScore%3E70&limit=20")],
        ),
        (
            "search #segment:silver",
            vec![format!("{b}/crm/search?q=%23segment%3Asilver&limit=20")],
        ),
    ]
}

/// Serves the API from `store_dir` and runs the load generator against each route in turn;
/// also returns the server process's RSS after the load and its peak during it, in MB.
pub async fn api_phase(
    args: &BenchArgs,
    store_dir: &Path,
    p: &impl Fn(&str),
) -> anyhow::Result<(Vec<LoadResult>, f64, f64)> {
    let t = Instant::now();
    let store = EmbeddedStore::open(store_dir)?;
    let index = store.index();
    p(&format!(
        "api: embedded store opened in {:.1} s ({} contacts); {} requests/s per route for {} s",
        t.elapsed().as_secs_f64(),
        index.len(),
        args.api_rate,
        args.api_seconds
    ));
    let status = Arc::new(ProcessorStatus::default());
    status.set_ready(true);
    let mut cfg = api::ApiConfig {
        admin_key: Some(api::Secret::new(KEY)),
        ..Default::default()
    };
    if let Some(ms) = args.api_max_queue_delay_ms {
        cfg.limits.max_queue_delay_ms = ms;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let stop = tokio_util::sync::CancellationToken::new();
    let stopped = stop.clone();
    let server = tokio::spawn(api::serve(
        listener,
        api::AppState::new(Arc::new(store.clone()), status, cfg, Default::default()),
        async move { stopped.cancelled().await },
    ));
    // The server runs in this process: its peak RSS under load, sampled every 200 ms.
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(rss_bytes()));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                peak.fetch_max(rss_bytes(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let per_business = args.contacts.div_ceil(super::engine::BUSINESSES);
    let mut results = Vec::new();
    for (route, paths) in routes(per_business) {
        let slug: String = route
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let file = store_dir.with_file_name(format!("paths-{slug}.txt"));
        std::fs::write(&file, paths.join("\n"))?;
        let child_args = vec![
            "load".to_string(),
            "--url".into(),
            url.clone(),
            "--rate".into(),
            args.api_rate.to_string(),
            "--seconds".into(),
            args.api_seconds.to_string(),
            "--paths".into(),
            file.display().to_string(),
            "--route".into(),
            route.into(),
            "--connections".into(),
            args.api_connections.to_string(),
        ];
        let r: LoadResult = tokio::task::spawn_blocking(move || child(&child_args)).await??;
        p(&format!(
            "api {route}: p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms, {} errors, {} shed, {:.0} req/s",
            r.p50_ms, r.p99_ms, r.max_ms, r.errors, r.shed, r.achieved_rps
        ));
        results.push(r);
    }
    let rss = rss_bytes() as f64 / 1024.0 / 1024.0;
    stop.cancel();
    server.await??;
    sampler.await?;
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0 / 1024.0;
    Ok((results, rss, peak))
}

/// The load generator's side: `rate` requests/s for `seconds`, cycling through `paths`, over
/// `connections` keep-alive connections (0: a new connection whenever none is idle).
pub async fn generate(
    url: &str,
    rate: u32,
    seconds: u64,
    paths: Vec<String>,
    route: String,
    connections: usize,
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(!paths.is_empty() && rate > 0, "no paths or no rate");
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(4096)
        .build_http();
    let authority = url.trim_start_matches("http://").to_owned();
    let request = |path: &str| {
        hyper::Request::get(format!("{url}{path}"))
            .header("host", &authority)
            .header("authorization", format!("Bearer {KEY}"))
            .body(Empty::<Bytes>::new())
            .expect("valid request")
    };
    // Warm-up: connections, caches; not counted. A shed answer (503, e.g. while the previous
    // route's load drains) is retried for up to 10 s; any other failure ends the run.
    let warm_until = Instant::now() + Duration::from_secs(10);
    for path in paths.iter().cycle().take(200) {
        loop {
            let res = client.request(request(path)).await?;
            let status = res.status();
            let body = res.into_body().collect().await?.to_bytes();
            if status == StatusCode::SERVICE_UNAVAILABLE && Instant::now() < warm_until {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            anyhow::ensure!(
                status.is_success(),
                "{path}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            break;
        }
    }
    let total = rate as u64 * seconds;
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = Instant::now() + Duration::from_millis(50);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // With a fixed number of connections, each has a task that takes the next due request.
    let (jobs, queue) = tokio::sync::mpsc::unbounded_channel::<(Instant, hyper::Request<_>)>();
    let queue = Arc::new(tokio::sync::Mutex::new(queue));
    for _ in 0..connections {
        let (queue, tx, authority) = (queue.clone(), tx.clone(), authority.clone());
        tokio::spawn(async move {
            let mut conn = None;
            loop {
                let job = queue.lock().await.recv().await;
                let Some((scheduled, req)) = job else { break };
                let outcome = send(&mut conn, &authority, req).await;
                let _ = tx.send((scheduled.elapsed(), outcome));
            }
        });
    }
    let mut next = 0u64;
    while next < total {
        let now = Instant::now();
        while next < total && start + gap * next as u32 <= now {
            let scheduled = start + gap * next as u32;
            let req = request(&paths[next as usize % paths.len()]);
            if connections > 0 {
                jobs.send((scheduled, req))
                    .expect("workers wait for the queue's end");
            } else {
                let (client, tx) = (client.clone(), tx.clone());
                tokio::spawn(async move {
                    let outcome = match client.request(req).await {
                        Ok(res) => outcome(res).await,
                        Err(e) => Err(Some(format!("request: {e}"))),
                    };
                    let _ = tx.send((scheduled.elapsed(), outcome));
                });
            }
            next += 1;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    drop((tx, jobs));
    let mut latencies = Vec::with_capacity(total as usize);
    let (mut errors, mut shed, mut first_error) = (0u64, 0u64, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some((lat, outcome))) = tokio::time::timeout_at(deadline, rx.recv()).await {
        match outcome {
            Ok(()) => latencies.push(lat.as_secs_f64() * 1000.0),
            Err(None) => shed += 1,
            Err(Some(e)) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let answered = latencies.len() as u64 + errors + shed;
    errors += total - answered; // never answered within the grace period
    latencies.sort_by(f64::total_cmp);
    let q = |f: f64| {
        latencies
            .get(((latencies.len() as f64 * f) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(LoadResult {
        route,
        target_rps: rate,
        seconds,
        requests: total,
        ok: latencies.len() as u64,
        errors,
        shed,
        achieved_rps: latencies.len() as f64 / elapsed,
        p50_ms: q(0.50),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        first_error,
        connections,
    })
}

/// What one request came to: answered (`Ok`), shed with the API's 503 (`Err(None)`), or failed.
type Outcome = Result<(), Option<String>>;

async fn outcome(res: hyper::Response<hyper::body::Incoming>) -> Outcome {
    match res.status() {
        s if s.is_success() => match res.into_body().collect().await {
            Ok(_) => Ok(()),
            Err(e) => Err(Some(format!("body: {e}"))),
        },
        StatusCode::SERVICE_UNAVAILABLE => {
            // Read the body so the connection can carry the next request.
            let _ = res.into_body().collect().await;
            Err(None)
        }
        s => Err(Some(format!("status {s}"))),
    }
}

/// Sends `req` over the connection in `conn`, opening it first when there is none or the
/// server closed it.
async fn send(
    conn: &mut Option<http1::SendRequest<Empty<Bytes>>>,
    authority: &str,
    req: hyper::Request<Empty<Bytes>>,
) -> Outcome {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        let opened = async {
            let stream = tokio::net::TcpStream::connect(authority).await?;
            stream.set_nodelay(true)?;
            let (sender, driver) = http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(driver);
            anyhow::Ok(sender)
        };
        *conn = Some(opened.await.map_err(|e| Some(format!("connect: {e:#}")))?);
    }
    let sender = conn.as_mut().expect("opened above");
    let res = match sender.ready().await {
        Ok(()) => sender.send_request(req).await,
        Err(e) => Err(e),
    };
    match res {
        Ok(res) => outcome(res).await,
        Err(e) => {
            *conn = None;
            Err(Some(format!("request: {e}")))
        }
    }
}

/// Reads the paths file the harness wrote.
pub fn read_paths(file: &Path) -> anyhow::Result<Vec<String>> {
    Ok(std::fs::read_to_string(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .lines()
        .map(str::to_owned)
        .collect())
}
