//! `keyflow-bench`: the end-to-end load harness, a binary of its own that drives the product
//! (`keyflow`'s library: the same `run::start`, engine and stores). One run measures, on this machine and beside
//! their physical limits: engine throughput with the full contact count (and its cost as the
//! retained window grows), the rebuild of state from the store, the bare-consumer limit of the
//! broker against the pipeline into the embedded store and ClickHouse, freshness at a fixed
//! produce rate, API latency under a fixed request rate from a separate process, and what an
//! analyst's ClickHouse recompute costs instead. It writes `results.md`, `results.json` and
//! `results.svg` into the output directory.
//!
//! Heavy phases run in child processes of the same binary (`keyflow-bench child ...`), so each
//! one's memory is measured on its own and the load generator is not the server.

pub mod alloc;
pub mod analyst;
pub mod engine;
pub mod kafka;
pub mod load;
pub mod report;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// What to measure and how big.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct BenchArgs {
    /// Contacts loaded for the engine, rebuild and API phases.
    #[arg(long, default_value_t = 1_000_000)]
    pub contacts: usize,
    /// Contacts for the cost-growth runs (each at window 1x, 10x, 100x).
    #[arg(long, default_value_t = 2_000)]
    pub growth_contacts: usize,
    /// Events produced through the broker for the limit and pipeline phases.
    #[arg(long, default_value_t = 300_000)]
    pub events: usize,
    /// Produce rate of the freshness phase, events/s.
    #[arg(long, default_value_t = 5_000)]
    pub fresh_rate: u32,
    /// Length of the freshness phase, seconds.
    #[arg(long, default_value_t = 30)]
    pub fresh_seconds: u64,
    /// Request rate of the API phase, per route, requests/s.
    #[arg(long, default_value_t = 5_000)]
    pub api_rate: u32,
    /// Length of each route's API run, seconds.
    #[arg(long, default_value_t = 10)]
    pub api_seconds: u64,
    /// Keep-alive connections the API load is sent over (0: a new connection whenever none is
    /// idle, which under overload floods the server's listen queue).
    #[arg(long, default_value_t = 256)]
    #[serde(default)]
    pub api_connections: usize,
    /// The API server's `api.limits.max_queue_delay_ms` (default: the API's default).
    #[arg(long)]
    #[serde(default)]
    pub api_max_queue_delay_ms: Option<u64>,
    /// ClickHouse HTTP URL for the ClickHouse pipeline and the analyst query (skipped if it
    /// does not answer).
    #[arg(long, default_value = "http://127.0.0.1:8123")]
    pub clickhouse: String,
    /// Seed of the generated stream.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Most events per micro-batch in the engine phases (the processor's
    /// `processing.batch_max_events`; default: its default).
    #[arg(long, default_value_t = pipeline::config::ProcessingConfig::default().batch_max_events)]
    pub batch_events: usize,
    /// Phases to run (comma-separated): engine,memory,growth,rebuild,api,kafka,analyst.
    #[arg(long, default_value = "engine,memory,growth,rebuild,api,kafka,analyst")]
    pub phases: String,
    /// Where results go (results.md, results.json, results.svg).
    #[arg(long, default_value = "benches/results")]
    pub out: PathBuf,
    /// Scratch directory for stores and the broker log (emptied first).
    #[arg(long, default_value = "keyflow-bench-data")]
    pub work: PathBuf,
}

impl BenchArgs {
    fn wants(&self, phase: &str) -> bool {
        self.phases.split(',').any(|p| p.trim() == phase)
    }
}

/// The phases `bench` runs in child processes.
#[derive(Debug, clap::Subcommand)]
pub enum ChildCommand {
    /// Generated events through the engine into an embedded store.
    Engine {
        #[arg(long)]
        contacts: usize,
        #[arg(long)]
        scale: usize,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        batch_events: usize,
        #[arg(long)]
        store: PathBuf,
        /// Then measure what each owner holds (see `engine::Retained`).
        #[arg(long)]
        retained: bool,
    },
    /// State rebuilt from an embedded store.
    Rebuild {
        #[arg(long)]
        store: PathBuf,
    },
    /// The open-loop HTTP load generator.
    Load {
        #[arg(long)]
        url: String,
        #[arg(long)]
        rate: u32,
        #[arg(long)]
        seconds: u64,
        #[arg(long)]
        paths: PathBuf,
        #[arg(long)]
        route: String,
        #[arg(long, default_value_t = 256)]
        connections: usize,
    },
}

/// Runs one child phase and prints its result as the last line, in JSON.
pub async fn run_child(cmd: ChildCommand) -> anyhow::Result<()> {
    let json = match cmd {
        ChildCommand::Engine {
            contacts,
            scale,
            seed,
            batch_events,
            store,
            retained,
        } => serde_json::to_string(
            &engine::run_engine(contacts, scale, seed, batch_events, &store, retained).await?,
        )?,
        ChildCommand::Rebuild { store } => {
            serde_json::to_string(&engine::run_rebuild(&store).await?)?
        }
        ChildCommand::Load {
            url,
            rate,
            seconds,
            paths,
            route,
            connections,
        } => serde_json::to_string(
            &load::generate(
                &url,
                rate,
                seconds,
                load::read_paths(&paths)?,
                route,
                connections,
            )
            .await?,
        )?,
    };
    println!("{json}");
    Ok(())
}

/// Every measured figure of one run.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Results {
    pub args: Option<BenchArgs>,
    pub machine: String,
    pub engine: Option<engine::EngineResult>,
    /// The memory phase: an engine run whose end is broken down by owner.
    #[serde(default)]
    pub memory: Option<engine::EngineResult>,
    pub growth: Vec<engine::EngineResult>,
    pub rebuild: Option<engine::RebuildResult>,
    pub api: Vec<load::LoadResult>,
    pub api_server_rss_mb: Option<f64>,
    /// Peak RSS of the API server process during the API phase.
    #[serde(default)]
    pub api_server_peak_rss_mb: Option<f64>,
    pub kafka: Option<kafka::KafkaResult>,
    pub analyst: Option<analyst::AnalystResult>,
    pub analyst_error: Option<String>,
}

/// Prints one progress line, timestamped from the start of the run.
pub fn progress(started: Instant, msg: &str) {
    println!("[{:>7.1}s] {msg}", started.elapsed().as_secs_f64());
}

/// Resident set size of this process, in bytes (Linux), 0 if unknown.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Runs a `keyflow-bench child` with `args`, echoing its progress lines as they come; returns
/// what it printed last as JSON.
pub fn child<T: serde::de::DeserializeOwned>(args: &[String]) -> anyhow::Result<T> {
    child_with_env(args, &[])
}

/// [`child`], with `env` set in the child's environment.
pub fn child_with_env<T: serde::de::DeserializeOwned>(
    args: &[String],
    env: &[(&str, &str)],
) -> anyhow::Result<T> {
    use std::io::BufRead;
    let exe = std::env::current_exe()?;
    let mut proc = std::process::Command::new(exe)
        .arg("child")
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("starting a bench child")?;
    let stdout = proc.stdout.take().context("bench child stdout")?;
    let mut last = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("reading a bench child's output")?;
        if line.starts_with('{') {
            last = Some(line);
        } else {
            println!("    {line}");
        }
    }
    let status = proc.wait()?;
    anyhow::ensure!(status.success(), "bench child {args:?} failed: {status}");
    let last = last.context("bench child printed no result")?;
    Ok(serde_json::from_str(&last)?)
}

fn fresh_dir(p: &Path) -> anyhow::Result<()> {
    if p.exists() {
        std::fs::remove_dir_all(p).with_context(|| format!("cannot empty {}", p.display()))?;
    }
    std::fs::create_dir_all(p)?;
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!(
        "{} cores ({cpu}), {mem_gib:.0} GiB",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

/// The whole run: each phase in turn, then the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let p = |m: &str| progress(started, m);
    // Without the engine phase, the rebuild and API phases read the store a previous run's
    // engine phase left in the work directory; everything else there is scratch.
    let (store, aside) = (
        args.work.join("engine-store"),
        args.work.with_extension("store"),
    );
    let keep = !args.wants("engine") && store.exists();
    if keep {
        std::fs::rename(&store, &aside)?;
    }
    fresh_dir(&args.work)?;
    if keep {
        std::fs::rename(&aside, &store)?;
    }
    std::fs::create_dir_all(&args.out)?;
    let work = std::fs::canonicalize(&args.work)?;
    let mut r = Results {
        args: Some(args.clone()),
        machine: machine(),
        ..Default::default()
    };
    let store = work.join("engine-store");

    if args.wants("engine") {
        p(&format!(
            "engine: {} contacts, events in memory -> decode, state, metrics, embedded store",
            args.contacts
        ));
        let e: engine::EngineResult = child(&engine::child_args(&args, args.contacts, 1, &store))?;
        p(&format!(
            "engine: {} events in {:.1} s = {:.0} events/s; RSS {:.0} MB",
            e.events, e.seconds, e.events_per_s, e.rss_end_mb
        ));
        r.engine = Some(e);
    }
    if args.wants("memory") {
        p("memory: the engine phase again, then what each owner holds at its end");
        let dir = work.join("memory-store");
        let mut child_args = engine::child_args(&args, args.contacts, 1, &dir);
        child_args.push("--retained".into());
        let e: engine::EngineResult =
            child_with_env(&child_args, &[("MIMALLOC_PURGE_DELAY", "0")])?;
        std::fs::remove_dir_all(&dir).ok();
        r.memory = Some(e);
    }
    write_report(&args.out, &r)?;
    if args.wants("growth") {
        for scale in [1, 10, 100] {
            p(&format!(
                "growth: {} contacts, retained window x{scale}",
                args.growth_contacts
            ));
            let dir = work.join(format!("growth-{scale}"));
            let e: engine::EngineResult = child(&engine::child_args(
                &args,
                args.growth_contacts,
                scale,
                &dir,
            ))?;
            p(&format!(
                "growth x{scale}: {:.0} events/s, {:.0} bytes per retained event",
                e.events_per_s, e.bytes_per_retained_event
            ));
            std::fs::remove_dir_all(&dir).ok();
            r.growth.push(e);
        }
    }
    write_report(&args.out, &r)?;
    if args.wants("rebuild") && store.exists() {
        p("rebuild: state of every partition from the embedded store");
        let rb: engine::RebuildResult = child(&[
            "rebuild".into(),
            "--store".into(),
            store.display().to_string(),
        ])?;
        p(&format!(
            "rebuild: {} events, {} contacts in {:.1} s ({:.0} events/s); first evaluation {:.1} s",
            rb.events, rb.contacts, rb.rebuild_seconds, rb.events_per_s, rb.evaluate_seconds
        ));
        r.rebuild = Some(rb);
    }
    write_report(&args.out, &r)?;
    if args.wants("api") && store.exists() {
        let (results, rss, peak) = load::api_phase(&args, &store, &p).await?;
        r.api = results;
        r.api_server_rss_mb = Some(rss);
        r.api_server_peak_rss_mb = Some(peak);
    }
    write_report(&args.out, &r)?;
    if args.wants("kafka") {
        r.kafka = Some(kafka::run(&args, &work, &p).await?);
    }
    write_report(&args.out, &r)?;
    if args.wants("analyst") {
        p(&format!(
            "analyst: ClickHouse recompute of every lead score at {} contacts",
            args.contacts
        ));
        match analyst::measure(&args.clickhouse, args.contacts as u64, 3, |m: &str| {
            p(&format!("analyst: {m}"))
        })
        .await
        {
            Ok(a) => r.analyst = Some(a),
            Err(e) => {
                p(&format!("analyst: skipped: {e:#}"));
                r.analyst_error = Some(format!("{e:#}"));
            }
        }
    }
    write_report(&args.out, &r)?;
    if let Err(e) = report::chart(&r, &args.out.join("results.svg")) {
        p(&format!("chart not written: {e:#}"));
    }
    println!("\n{}", report::markdown(&r));
    p(&format!("written to {}", args.out.display()));
    Ok(())
}

/// Writes results.md and results.json; called after every phase, so a run that fails or is
/// stopped half-way keeps what it measured.
fn write_report(out: &Path, r: &Results) -> anyhow::Result<()> {
    std::fs::write(out.join("results.md"), report::markdown(r))?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(r)?)?;
    Ok(())
}
