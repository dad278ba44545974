//! `keyflow-bench`: command-line wiring of the load harness only (see the library's doc).

use clap::{Parser, Subcommand};
use keyflow_bench::{BenchArgs, ChildCommand};

#[global_allocator]
static ALLOCATOR: keyflow_bench::alloc::Counting = keyflow_bench::alloc::Counting;

#[derive(Parser, Debug)]
#[command(
    name = "keyflow-bench",
    version,
    about = "KeyFlow's load harness: throughput, freshness, API latency and cost growth beside their limits"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Every phase asked for, then results.md, results.json and results.svg (see
    /// benches/RESULTS.md).
    Run(BenchArgs),
    /// One phase in its own process (started by `run`; also run by hand for A/B figures).
    Child {
        #[command(subcommand)]
        phase: ChildCommand,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    keyflow::alloc::tune();
    keyflow::init_tracing();
    match Cli::parse().command {
        Command::Run(args) => keyflow_bench::run(args).await,
        Command::Child { phase } => keyflow_bench::run_child(phase).await,
    }
}
