//! `keyflow`: command-line wiring only.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use keyflow::config::{Config, Overrides, SETTINGS_HELP};
use keyflow::demo::generator::DemoSpec;
use pipeline::clock::{ManualClock, SharedClock, SystemClock};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "keyflow", version, about = "Real-time intelligence for service-business CRMs", after_help = SETTINGS_HELP)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "KEYFLOW_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (embedded broker log, embedded store) [KEYFLOW_DATA_DIR].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// External Kafka bootstrap servers; without it an embedded broker starts [KEYFLOW_BROKERS].
    #[arg(long, global = true)]
    brokers: Option<String>,
    /// Embedded broker listen address [KEYFLOW_BROKER_ADDR].
    #[arg(long, global = true)]
    broker_addr: Option<SocketAddr>,
    /// API listen address [KEYFLOW_API_ADDR].
    #[arg(long, global = true)]
    api_addr: Option<SocketAddr>,
    /// ClickHouse HTTP URL; makes ClickHouse the store [KEYFLOW_CLICKHOUSE__URL].
    #[arg(long, global = true)]
    clickhouse_url: Option<String>,
    /// Any setting as KEY=VALUE (repeatable), e.g. scoring.window_days=7 or kafka.client.id=x.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Evaluate at this fixed instant (RFC 3339) instead of the system clock: replays and the
    /// fault tests compare runs that must score at the same instant.
    #[arg(long, global = true, hide = true)]
    frozen_clock: Option<chrono::DateTime<chrono::Utc>>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Consume, score and serve until ctrl-c.
    Run,
    /// Run on embedded defaults and feed a synthetic stream through the Kafka protocol.
    Demo {
        /// Seed of the synthetic stream.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Number of businesses.
        #[arg(long, default_value_t = 4)]
        businesses: usize,
        /// Contacts per business.
        #[arg(long, default_value_t = 750)]
        contacts: usize,
        /// Live events per second after the history.
        #[arg(long, default_value_t = 20)]
        rate: u32,
    },
    /// Run DataFusion SQL over the embedded store (tables: events, profile_versions, lead_score_history; view: profiles).
    Sql {
        /// The statement, e.g. "SELECT contact_id, lead_score FROM profiles ORDER BY lead_score DESC LIMIT 5".
        query: String,
    },
    /// Onboard contacts from a CSV (header row) or JSONL file: one contact.created (then
    /// contact.updated) event per row, source `import`, through the Kafka protocol (--brokers,
    /// or the embedded broker of a running `keyflow run`). Refused rows are listed by line; the
    /// exit code is non-zero when any row was refused. Importing a file again adds nothing.
    Import {
        /// The file: `.csv` or `.jsonl`.
        file: PathBuf,
        /// The business of rows without a business_id column.
        #[arg(long)]
        business: Option<String>,
    },
    /// Print the JSON Schema of the event envelope.
    Schema,
    /// Apply the ClickHouse migrations (needs --clickhouse-url).
    Migrate,
    /// Serve the API from ClickHouse only, without a processor (API replicas).
    Api,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    keyflow::alloc::tune();
    keyflow::init_tracing();
    let cli = Cli::parse();
    let overrides = Overrides {
        data_dir: cli.data_dir,
        brokers: cli.brokers,
        broker_addr: cli.broker_addr,
        api_addr: cli.api_addr,
        clickhouse_url: cli.clickhouse_url,
        set: cli.set,
    };
    let cfg = Config::load(cli.config.as_deref(), &overrides)?;
    let clock: SharedClock = match cli.frozen_clock {
        Some(at) => {
            tracing::warn!(%at, "the clock is frozen");
            Arc::new(ManualClock::at(at))
        }
        None => Arc::new(SystemClock),
    };
    match cli.command {
        Command::Run => {
            // Listening before the start: a stop requested meanwhile is a clean stop after it.
            let shutdown = keyflow::shutdown_signal();
            tracing::info!("KeyFlow starting (SIGINT/SIGTERM now stop it cleanly)");
            let mut running = keyflow::run::start(&cfg, clock).await?;
            println!("KeyFlow running: API on http://{}", running.api_addr);
            tokio::select! {
                _ = shutdown => {}
                res = running.processor_stopped() => res?,
            }
            running.stop().await
        }
        Command::Demo {
            seed,
            businesses,
            contacts,
            rate,
        } => {
            let spec = DemoSpec {
                seed,
                businesses,
                contacts_per_business: contacts,
                ..Default::default()
            };
            keyflow::demo::run(&cfg, clock, spec, rate).await
        }
        Command::Sql { query } => {
            // Read-only: a `keyflow run` may be writing the same store.
            let store = sinks::store::EmbeddedStore::open_read_only(cfg.data_dir.join("store"));
            let batches = sinks::sql::query(&store, &query).await?;
            println!(
                "{}",
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)?
            );
            Ok(())
        }
        Command::Migrate => {
            let applied = sinks::clickhouse::migrate::migrate(&cfg.clickhouse).await?;
            println!("applied migrations: {applied:?}");
            Ok(())
        }
        Command::Api => keyflow::run::serve_api_only(&cfg).await,
        Command::Import { file, business } => {
            let report = keyflow::import::run(&cfg, &file, business.as_deref()).await?;
            for (line, reason) in &report.rejected {
                eprintln!("{}:{line}: {reason}", file.display());
            }
            println!(
                "imported {} of {} rows from {} ({} events produced, {} rows refused)",
                report.rows - report.rejected.len(),
                report.rows,
                file.display(),
                report.produced,
                report.rejected.len()
            );
            if !report.rejected.is_empty() {
                anyhow::bail!("{} rows refused (listed above)", report.rejected.len());
            }
            Ok(())
        }
        Command::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&pipeline::event::json_schema())?
            );
            Ok(())
        }
    }
}
