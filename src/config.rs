//! The `keyflow` configuration: defaults, then a TOML file, then `KEYFLOW_*` environment
//! variables, then command-line flags, each overriding the one before.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use model::calendar::Calendar;
use pipeline::config::{
    BusinessOverride, BusinessRules, IngestConfig, MetricsConfig, ProcessingConfig, ScoringConfig,
    TopicsConfig,
};
use pipeline::engine::{InteractionRules, Rules};
use serde::{Deserialize, Serialize};
use sinks::clickhouse::ClickHouseConfig;

/// Every setting. TOML keys are the field names; nested tables are `[topics]`, `[ingest]`,
/// `[processing]`, `[scoring]` and `[kafka]` (librdkafka settings passed through).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded broker log and the embedded store live.
    pub data_dir: PathBuf,
    /// External Kafka bootstrap servers (`host:port,...`); unset starts the embedded broker.
    pub brokers: Option<String>,
    /// Listen address of the embedded broker.
    pub broker_addr: SocketAddr,
    /// Listen address of the HTTP API.
    pub api_addr: SocketAddr,
    /// `[api]`: bearer keys (`admin_key`, `[api.keys] <business> = ["..."]`) and
    /// `cors_origins`. Without any key an admin key is generated into the data directory.
    pub api: api::ApiConfig,
    pub topics: TopicsConfig,
    pub ingest: IngestConfig,
    pub processing: ProcessingConfig,
    pub scoring: ScoringConfig,
    /// Windows and thresholds of the other metrics, segments and the Next Action queue.
    pub metrics: MetricsConfig,
    /// Which events count as interactions (last interaction, gaps, cold and stale leads); the
    /// same for every business.
    pub interactions: InteractionRules,
    /// The time zone and first day of the week every business counts days in, unless its
    /// `[business.<id>]` table sets `timezone` / `week_starts_on`.
    pub calendar: Calendar,
    /// Per-business overrides: `timezone` and `week_starts_on`, and `[business.<id>.scoring]` /
    /// `[business.<id>.metrics]` tables with any keys of `[scoring]` / `[metrics]`.
    pub business: BTreeMap<String, BusinessOverride>,
    /// ClickHouse as the store (instead of the embedded store) when `clickhouse.url` is set.
    pub clickhouse: ClickHouseConfig,
    /// librdkafka settings passed through to every client, e.g. `"fetch.wait.max.ms" = "50"`.
    pub kafka: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./keyflow-data"),
            brokers: None,
            broker_addr: "127.0.0.1:9092".parse().expect("valid default"),
            api_addr: "127.0.0.1:8080".parse().expect("valid default"),
            api: api::ApiConfig::default(),
            topics: TopicsConfig::default(),
            ingest: IngestConfig::default(),
            processing: ProcessingConfig::default(),
            scoring: ScoringConfig::default(),
            metrics: MetricsConfig::default(),
            interactions: InteractionRules::default(),
            calendar: Calendar::default(),
            business: BTreeMap::new(),
            clickhouse: ClickHouseConfig::default(),
            kafka: BTreeMap::new(),
        }
    }
}

/// Shown by `keyflow --help`: every key, its environment variable and default.
pub const SETTINGS_HELP: &str = "\
Settings (flag > KEYFLOW_* environment > TOML file > default). Any key can be set with
--set KEY=VALUE or the environment variable shown; nested keys use '__' in variables.

  data_dir                    KEYFLOW_DATA_DIR                   ./keyflow-data
  brokers                     KEYFLOW_BROKERS                    (unset: embedded broker)
  broker_addr                 KEYFLOW_BROKER_ADDR                127.0.0.1:9092
  api_addr                    KEYFLOW_API_ADDR                   127.0.0.1:8080
  api.admin_key               KEYFLOW_API__ADMIN_KEY             (unset: generated into data_dir/admin.key)
  api.keys.<business>         [api.keys] biz_1 = [\"...\"]         keys of one business (16+ characters)
  api.cors_origins            KEYFLOW_API__CORS_ORIGINS          [] (same origin only; [\"*\"] for any)
  api.views_max_staleness_ms  KEYFLOW_API__VIEWS_MAX_STALENESS_MS 1000 (highlights/segments/search cache
                                                                 while the store changes; 0: exact)
  topics.contacts|invoices|bookings|tasks|dlq|signals
                              KEYFLOW_TOPICS__CONTACTS ...       crm.contacts, crm.invoices, crm.bookings,
                                                                 crm.tasks, crm.dlq, crm.signals
  topics.partitions           KEYFLOW_TOPICS__PARTITIONS         3 (when KeyFlow creates the topics)
  ingest.sources              KEYFLOW_INGEST__SOURCES            [booking_form, automation, public_link,
                                                                 import, manual, commerce]
  ingest.max_event_bytes      KEYFLOW_INGEST__MAX_EVENT_BYTES    65536
  processing.group_id         KEYFLOW_PROCESSING__GROUP_ID       keyflow
  processing.batch_max_events KEYFLOW_PROCESSING__BATCH_MAX_EVENTS 50000
  processing.batch_max_bytes  KEYFLOW_PROCESSING__BATCH_MAX_BYTES  16777216
  processing.batch_linger_ms  KEYFLOW_PROCESSING__BATCH_LINGER_MS  100
  processing.tick_ms          KEYFLOW_PROCESSING__TICK_MS        1000
  processing.ready_max_lag    KEYFLOW_PROCESSING__READY_MAX_LAG  1000
  processing.stall_after_ms   KEYFLOW_PROCESSING__STALL_AFTER_MS 30000 (rejoin the group when
                                                                 unowned partitions stall)
  scoring.window_days         KEYFLOW_SCORING__WINDOW_DAYS       14
  scoring.booking_weight|booking_cap|paid_weight|paid_cap|unpaid_weight|unpaid_cap|
          overdue_task_weight|overdue_task_cap                   15|4|10|4|10|3|5|4
  scoring.rule_version        KEYFLOW_SCORING__RULE_VERSION      lead-score/v1
  metrics.<key>               KEYFLOW_METRICS__<KEY>             windows and thresholds of the other
                                                                 metrics; see `[metrics]` in README.md
  interactions.types          KEYFLOW_INTERACTIONS__TYPES        contact.created, contact.updated, note.created,
                                                                 booking.*, invoice.paid, task.completed
  interactions.excluded_sources KEYFLOW_INTERACTIONS__EXCLUDED_SOURCES automation, import
  calendar.timezone           KEYFLOW_CALENDAR__TIMEZONE         UTC (IANA name: days, weeks, midnights)
  calendar.week_starts_on     KEYFLOW_CALENDAR__WEEK_STARTS_ON   monday
  business.<id>.timezone|week_starts_on                          a business's own calendar
  business.<id>.scoring.<key> / business.<id>.metrics.<key>      per-business overrides (TOML or --set)
  clickhouse.url              KEYFLOW_CLICKHOUSE__URL            (unset: embedded store)
  clickhouse.database|user|password|cache_ttl_ms                  keyflow|-|-|2000
  kafka.<librdkafka key>      KEYFLOW_KAFKA__<KEY with _ for .>  (librdkafka defaults)
";

/// Values given on the command line, applied last.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub brokers: Option<String>,
    pub broker_addr: Option<SocketAddr>,
    pub api_addr: Option<SocketAddr>,
    pub clickhouse_url: Option<String>,
    /// `key=value` pairs from `--set`.
    pub set: Vec<String>,
}

const ENV_PREFIX: &str = "KEYFLOW_";
const KAFKA_ENV_PREFIX: &str = "KEYFLOW_KAFKA__";
/// Variables with the prefix that are not settings (test and tooling switches).
const NOT_SETTINGS: &[&str] = &["KEYFLOW_BLESS", "KEYFLOW_TEST_", "KEYFLOW_LOG"];

impl Config {
    /// Layers defaults, `file` (if any), the environment and `overrides`, then validates.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Self> {
        Self::load_from(file, overrides, std::env::vars())
    }

    pub fn load_from(
        file: Option<&Path>,
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                bail!("config file {} does not exist", path.display());
            }
            fig = fig.merge(Toml::file(path));
        }
        // Known variables only (KEYFLOW_KAFKA__* are handled below: their keys contain dots).
        let plain: Vec<(String, String)> = env
            .iter()
            .filter(|(k, _)| {
                !k.starts_with(KAFKA_ENV_PREFIX) && !NOT_SETTINGS.iter().any(|n| k.starts_with(n))
            })
            .map(|(k, v)| {
                (
                    k[ENV_PREFIX.len()..].to_lowercase().replace("__", "."),
                    v.clone(),
                )
            })
            .collect();
        for (key, value) in plain {
            fig = fig.merge(Serialized::global(&key, parse_value(&value)));
        }
        if let Some(d) = &overrides.data_dir {
            fig = fig.merge(Serialized::global("data_dir", d));
        }
        if let Some(b) = &overrides.brokers {
            fig = fig.merge(Serialized::global("brokers", b));
        }
        if let Some(a) = &overrides.broker_addr {
            fig = fig.merge(Serialized::global("broker_addr", a.to_string()));
        }
        if let Some(a) = &overrides.api_addr {
            fig = fig.merge(Serialized::global("api_addr", a.to_string()));
        }
        if let Some(u) = &overrides.clickhouse_url {
            fig = fig.merge(Serialized::global("clickhouse.url", u));
        }
        let mut kafka_sets = Vec::new();
        for kv in &overrides.set {
            let Some((key, value)) = kv.split_once('=') else {
                bail!("--set expects KEY=VALUE, got {kv:?}");
            };
            match key.trim().strip_prefix("kafka.") {
                Some(k) => kafka_sets.push((k.to_owned(), value.to_owned())),
                None => fig = fig.merge(Serialized::global(key.trim(), parse_value(value))),
            }
        }
        let mut cfg: Config = fig.extract().context("invalid configuration")?;
        for (k, v) in &env {
            if let Some(rest) = k.strip_prefix(KAFKA_ENV_PREFIX) {
                cfg.kafka
                    .insert(rest.to_lowercase().replace('_', "."), v.clone());
            }
        }
        cfg.kafka.extend(kafka_sets);
        cfg.validate()?;
        Ok(cfg)
    }

    /// The engine rules: `[scoring]` and `[metrics]`, with each business's overrides applied.
    pub fn rules(&self) -> anyhow::Result<Rules> {
        let default = BusinessRules {
            scoring: self.scoring.clone(),
            metrics: self.metrics.clone(),
            calendar: self.calendar,
        };
        Rules::new(default, &self.business).map_err(anyhow::Error::msg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        let checks = [
            self.topics.validate(),
            self.processing.validate(),
            self.scoring.validate(),
            self.metrics.validate(),
            self.interactions.validate(),
            self.api.validate(),
        ];
        for c in checks {
            c.map_err(anyhow::Error::msg)?;
        }
        if self.ingest.sources.is_empty() {
            bail!("ingest.sources must name at least one source");
        }
        if let Some(b) = &self.brokers {
            if b.trim().is_empty() {
                bail!("brokers is set but empty");
            }
        }
        self.rules()?;
        Ok(())
    }
}

/// Numbers and booleans as such, lists as `[a, b]`, anything else as a string.
fn parse_value(raw: &str) -> figment::value::Value {
    let t = raw.trim();
    if let Ok(i) = t.parse::<i64>() {
        return i.into();
    }
    if let Ok(b) = t.parse::<bool>() {
        return b.into();
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        let items: Vec<figment::value::Value> = inner
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string().into())
            .collect();
        return items.into();
    }
    raw.to_string().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let cfg = Config::load_from(None, &Overrides::default(), env(&[])).unwrap();
        assert_eq!(cfg, Config::default());
    }

    #[test]
    fn layers_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(
            &file,
            "api_addr = \"127.0.0.1:1\"\ndata_dir = \"/from/file\"\n[scoring]\nwindow_days = 7\n[kafka]\n\"fetch.wait.max.ms\" = \"10\"\n",
        )
        .unwrap();
        let vars = env(&[
            ("KEYFLOW_DATA_DIR", "/from/env"),
            ("KEYFLOW_SCORING__BOOKING_WEIGHT", "20"),
            ("KEYFLOW_KAFKA__SOCKET_TIMEOUT_MS", "5000"),
            ("KEYFLOW_INGEST__SOURCES", "[manual, fax]"),
        ]);
        let flags = Overrides {
            api_addr: Some("127.0.0.1:2".parse().unwrap()),
            set: vec!["scoring.paid_cap=2".into(), "kafka.client.id=x".into()],
            ..Default::default()
        };
        let cfg = Config::load_from(Some(&file), &flags, vars).unwrap();
        assert_eq!(cfg.api_addr.to_string(), "127.0.0.1:2");
        assert_eq!(cfg.data_dir, PathBuf::from("/from/env"));
        assert_eq!(
            (
                cfg.scoring.window_days,
                cfg.scoring.booking_weight,
                cfg.scoring.paid_cap
            ),
            (7, 20, 2)
        );
        assert_eq!(cfg.ingest.sources, vec!["manual".to_string(), "fax".into()]);
        assert_eq!(
            cfg.kafka.get("fetch.wait.max.ms").map(String::as_str),
            Some("10")
        );
        assert_eq!(
            cfg.kafka.get("socket.timeout.ms").map(String::as_str),
            Some("5000")
        );
        assert_eq!(cfg.kafka.get("client.id").map(String::as_str), Some("x"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let err = Config::load_from(
            None,
            &Overrides {
                set: vec!["scoring.nope=1".into()],
                ..Default::default()
            },
            env(&[]),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
        let err = Config::load_from(
            None,
            &Overrides::default(),
            env(&[("KEYFLOW_SCORING__WINDOW_DAYS", "0")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("window_days"), "{err}");
    }

    #[test]
    fn each_business_counts_days_in_its_own_calendar() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.toml");
        std::fs::write(
            &file,
            "[calendar]\nweek_starts_on = \"sunday\"\n[business.berlin]\ntimezone = \"Europe/Berlin\"\n[business.tokyo]\ntimezone = \"Asia/Tokyo\"\nweek_starts_on = \"saturday\"\n",
        )
        .unwrap();
        let cfg = Config::load_from(Some(&file), &Overrides::default(), env(&[])).unwrap();
        let rules = cfg.rules().unwrap();
        let cal = |b: &str| rules.for_business(b).calendar;
        assert_eq!(cal("berlin").timezone.to_string(), "Europe/Berlin");
        assert_eq!(
            serde_json::to_value(cal("berlin").week_starts_on).unwrap(),
            "sunday"
        );
        assert_eq!(cal("tokyo").timezone.to_string(), "Asia/Tokyo");
        assert_eq!(
            serde_json::to_value(cal("tokyo").week_starts_on).unwrap(),
            "saturday"
        );
        assert_eq!(cal("other").timezone.to_string(), "UTC");
        let err = Config::load_from(
            None,
            &Overrides {
                set: vec!["business.x.timezone=Europe/Berlinn".into()],
                ..Default::default()
            },
            env(&[]),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("not an IANA time zone"),
            "{err:#}"
        );
    }

    #[test]
    fn the_interaction_set_is_configured_and_checked() {
        let cfg = Config::load_from(
            None,
            &Overrides {
                set: vec![
                    "interactions.types=[invoice.sent, booking.completed]".into(),
                    "interactions.excluded_sources=[]".into(),
                ],
                ..Default::default()
            },
            env(&[]),
        )
        .unwrap();
        let i = &cfg.interactions;
        assert!(i.counts("invoice.sent", "automation"));
        assert!(!i.counts("contact.created", "manual"));
        assert!(!Config::default()
            .interactions
            .counts("invoice.sent", "manual"));
        assert!(!Config::default()
            .interactions
            .counts("note.created", "automation"));
        let err = Config::load_from(
            None,
            &Overrides {
                set: vec!["interactions.types=[invoice.sent, invoice.resent]".into()],
                ..Default::default()
            },
            env(&[]),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("\"invoice.resent\" is not an event type"),
            "{err:#}"
        );
    }
}
