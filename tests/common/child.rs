//! The processor as a process of its own: `keyflow run` over the test's broker, started from the
//! built binary with a test configuration turned into flags, so a test can SIGKILL it the way a
//! crash or an OOM kill would. Its log goes to a file the test prints when something fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use keyflow::config::Config;
use pipeline::config::TopicsConfig;
use pipeline::kafka::client_config;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// The instant every child process evaluates at (`--frozen-clock`).
pub const FROZEN_AT: &str = "2026-11-20T12:00:00Z";

pub struct ProcessorProcess {
    child: Child,
    pub log: PathBuf,
    pub name: String,
    /// The log's length when this process started.
    log_start: usize,
}

/// What `keyflow run` prints once it is up (and listens for SIGTERM).
const RUNNING: &str = "KeyFlow running";

/// Starts `keyflow run` with `cfg` (its broker must be external: `cfg.brokers`), logging to
/// `<data_dir>/<name>.log` (appended across restarts).
pub fn spawn(cfg: &Config, name: &str) -> ProcessorProcess {
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    let log = cfg.data_dir.join(format!("{name}.log"));
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let set = |k: &str, v: &dyn std::fmt::Display| ["--set".to_owned(), format!("{k}={v}")];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyflow"));
    cmd.arg("run")
        .args(["--data-dir", cfg.data_dir.to_str().unwrap()])
        .args([
            "--brokers",
            cfg.brokers.as_deref().expect("an external broker"),
        ])
        .args(["--api-addr", &cfg.api_addr.to_string()])
        .args(["--frozen-clock", FROZEN_AT])
        .args(set("processing.group_id", &cfg.processing.group_id))
        .args(set(
            "processing.batch_max_events",
            &cfg.processing.batch_max_events,
        ))
        .args(set("processing.tick_ms", &cfg.processing.tick_ms))
        .args(set(
            "processing.batch_linger_ms",
            &cfg.processing.batch_linger_ms,
        ))
        .args(set(
            "processing.stall_after_ms",
            &cfg.processing.stall_after_ms,
        ))
        .args(set("topics.contacts", &cfg.topics.contacts))
        .args(set("topics.invoices", &cfg.topics.invoices))
        .args(set("topics.bookings", &cfg.topics.bookings))
        .args(set("topics.tasks", &cfg.topics.tasks))
        .args(set("topics.dlq", &cfg.topics.dlq))
        .args(set("topics.signals", &cfg.topics.signals))
        .args(set("topics.partitions", &cfg.topics.partitions))
        .args(set("api.admin_key", &super::ADMIN_KEY))
        .args(set("api.views_max_staleness_ms", &0))
        .env("RUST_LOG", "info,tansu=warn,libsql=warn,librdkafka=warn")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    for (k, v) in &cfg.kafka {
        cmd.args(set(&format!("kafka.{k}"), v));
    }
    if let Some(url) = &cfg.clickhouse.url {
        cmd.args(["--clickhouse-url", url])
            .args(set("clickhouse.database", &cfg.clickhouse.database))
            .args(set("clickhouse.cache_ttl_ms", &0));
    }
    let log_start = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
    ProcessorProcess {
        child: cmd.spawn().expect("keyflow binary starts"),
        log,
        name: name.to_owned(),
        log_start,
    }
}

impl ProcessorProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown hook runs, nothing is flushed or committed.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit (panics on a failure exit, with the log's tail).
    /// Waits first until the process is up: a test that finds nothing left to do can stop a
    /// process a few milliseconds after it started.
    pub fn stop(mut self) {
        for _ in 0..1200 {
            if self.is_running() {
                break;
            }
            self.assert_alive();
            std::thread::sleep(Duration::from_millis(50));
        }
        self.terminate();
    }

    /// Waits up to `secs` until this process's part of the log contains `text`.
    pub fn wait_for_log(&mut self, text: &str, secs: u64) {
        for _ in 0..secs * 50 {
            if self.own_log().contains(text) {
                return;
            }
            self.assert_alive();
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} never logged {text:?}\n{}", self.name, self.tail());
    }

    /// Whether this process has logged that it is up.
    pub fn is_running(&self) -> bool {
        self.own_log().contains(RUNNING)
    }

    /// The log from this process's start on (the file is appended across restarts).
    fn own_log(&self) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(text.get(self.log_start..).unwrap_or_default()).into_owned()
    }

    /// SIGTERM now, whatever the process is doing, then waits for a clean exit (panics on a
    /// failure exit, with the log's tail).
    pub fn terminate(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{} exited with {status}\n{}",
                    self.name,
                    self.tail()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("{} did not stop within 30 s\n{}", self.name, self.tail());
    }

    /// Panics with the log's tail if the process has exited.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited early with {status}\n{}", self.name, self.tail());
        }
    }

    /// The last lines of the log.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The partitions of the last assignment the log reports (empty before the first).
    pub fn assigned(&self) -> Vec<i32> {
        assigned_in(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for ProcessorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Partitions of the last `partitions assigned partitions={0, 1}` line in a log.
pub fn assigned_in(log: &str) -> Vec<i32> {
    log.lines()
        .rev()
        .find(|l| l.contains("partitions assigned"))
        .and_then(|l| l.split("partitions={").nth(1))
        .and_then(|rest| rest.split('}').next())
        .map(|set| {
            set.split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn offsets_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    client_config(bootstrap, &Default::default())
        .set("group.id", group)
        .create()
        .unwrap()
}

/// Sum over the input topics of `group`'s committed offsets.
pub async fn committed(bootstrap: &str, group: &str, topics: &TopicsConfig) -> i64 {
    committed_in(bootstrap, group, &topics.inputs(), topics.partitions).await
}

/// Sum of `group`'s committed offsets over `partitions` partitions of each of `names`.
async fn committed_in(bootstrap: &str, group: &str, names: &[&str], partitions: i32) -> i64 {
    let consumer = offsets_consumer(bootstrap, group);
    let mut tpl = rdkafka::TopicPartitionList::new();
    for topic in names {
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
    }
    tokio::task::spawn_blocking(move || {
        consumer
            .committed_offsets(tpl, Duration::from_secs(5))
            .map(|c| {
                c.elements()
                    .iter()
                    .map(|e| e.offset().to_raw().unwrap_or(0).max(0))
                    .sum()
            })
            .unwrap_or(0)
    })
    .await
    .unwrap()
}

/// Sum over the input topics of the high watermarks: every message produced so far.
pub async fn end_offsets(bootstrap: &str, topics: &TopicsConfig) -> i64 {
    end_offsets_in(bootstrap, &topics.inputs(), topics.partitions).await
}

/// Sum of the high watermarks over `partitions` partitions of each of `names`.
async fn end_offsets_in(bootstrap: &str, names: &[&str], partitions: i32) -> i64 {
    let consumer = offsets_consumer(bootstrap, "end-offsets");
    let names: Vec<String> = names.iter().map(|t| t.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut sum = 0;
        for topic in &names {
            for p in 0..partitions {
                sum += consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(5))
                    .unwrap()
                    .1;
            }
        }
        sum
    })
    .await
    .unwrap()
}

/// Waits until the group of `cfg` has committed all `total` input offsets and everything on
/// its re-key topic: then every merge was forwarded and applied. The re-key topic's committed
/// offsets are read before its ends, and a forward is delivered before the offset of what
/// caused it is committed, so equal sums mean nothing is left in flight.
pub async fn wait_drained(
    child: &mut ProcessorProcess,
    bootstrap: &str,
    cfg: &Config,
    total: i64,
    secs: u64,
) {
    let group = &cfg.processing.group_id;
    let started = tokio::time::Instant::now();
    wait_committed(child, bootstrap, group, &cfg.topics, total, secs).await;
    let rekey = cfg.topics.rekey_for(group);
    let n = cfg.topics.partitions;
    loop {
        let done = committed_in(bootstrap, group, &[&rekey], n).await;
        let end = end_offsets_in(bootstrap, &[&rekey], n).await;
        if done >= end {
            return;
        }
        child.assert_alive();
        if started.elapsed() > Duration::from_secs(secs) {
            panic!(
                "{} committed {done} of {end} re-key offsets in {secs} s\n{}",
                child.name,
                child.tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `group` has committed at least `target` input offsets; panics with the child's
/// log after `secs`, or as soon as the child dies.
pub async fn wait_committed(
    child: &mut ProcessorProcess,
    bootstrap: &str,
    group: &str,
    topics: &TopicsConfig,
    target: i64,
    secs: u64,
) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let at = committed(bootstrap, group, topics).await;
        if at >= target {
            return at;
        }
        child.assert_alive();
        if tokio::time::Instant::now() > deadline {
            panic!(
                "{} committed {at} of {target} offsets in {secs} s\n{}",
                child.name,
                child.tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A data directory path under `dir`.
pub fn sub(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
