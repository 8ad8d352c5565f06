//! `kanband-bench`: the load generator that measures the figures of README's performance table
//! against the real `kanband` binary, over real gRPC on loopback, in a separate process whose
//! memory can be read.
//!
//! Layout:
//! - [`server`]: starts `kanband` on a fresh temporary data directory, learns its addresses
//!   from the ready line, reads its memory, and stops it with SIGTERM.
//! - [`scenarios`]: one module per figure, plus the shared load helpers (connection pool, bulk
//!   creation, sessions that hold claims).
//! - [`stats`]: latency samples and percentiles (a sorted `Vec`; a few hundred thousand samples
//!   at most, so no histogram is needed).
//! - [`report`]: the rows, the table and the `--json` object.
//!
//! Each scenario runs on its own fresh `kanband` (unless `--addr` names a running one), so the
//! scenarios do not disturb each other. A scenario that fails prints its error in place of a
//! figure; the exit status is non-zero when any scenario failed (a missed target is not a
//! failure of the bench).

mod report;
mod scenarios;
mod server;
mod stats;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::Parser;

use crate::scenarios::{Scenario, Sizes};

/// Load generator for kanband: measures the figures of README's performance table (creates/s, claim ->
/// complete cycles/s, renewals/s, expiry lag, ready -> granted latency, resident memory,
/// start-up time) against the real `kanband` binary.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// The kanband binary to start. Default: target/release/kanband under the current
    /// directory, else the kanband next to this executable.
    #[arg(long, env = "KANBAND_BENCH_KANBAND", value_name = "PATH")]
    kanband: Option<PathBuf>,

    /// Use an already running kanband at this address (unix:/path or http://host:port)
    /// instead of starting one per scenario. The memory and start-up scenarios need a kanband
    /// the bench started and fail with this option.
    #[arg(long, env = "KANBAND_BENCH_ADDR", value_name = "ADDR")]
    addr: Option<String>,

    /// Connect over TCP instead of the Unix socket (when the bench starts kanband).
    #[arg(long, env = "KANBAND_BENCH_TCP")]
    tcp: bool,

    /// Directory in which the temporary data directories are made (it decides which file
    /// system pays for the fsyncs). Default: the system's temporary directory.
    #[arg(long, env = "KANBAND_BENCH_DATA_ROOT", value_name = "DIR")]
    data_root: Option<PathBuf>,

    /// Scenarios to run, in order; repeat for several. Default: all.
    #[arg(
        long = "scenario",
        env = "KANBAND_BENCH_SCENARIOS",
        value_delimiter = ','
    )]
    scenarios: Vec<Scenario>,

    /// Print one JSON object with every row on stdout instead of the table.
    #[arg(long, env = "KANBAND_BENCH_JSON")]
    json: bool,

    #[command(flatten)]
    sizes: Sizes,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let scenarios = if cli.scenarios.is_empty() {
        Scenario::all()
    } else {
        cli.scenarios.clone()
    };
    let target = match scenarios::Launch::new(
        cli.kanband.clone(),
        cli.addr.clone(),
        cli.tcp,
        cli.data_root.clone(),
    ) {
        Ok(target) => target,
        Err(err) => {
            eprintln!("kanband-bench: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    for scenario in scenarios {
        eprintln!("kanband-bench: running {}", scenario.name());
        let row = scenarios::run(scenario, &target, &cli.sizes).await;
        eprintln!("kanband-bench: {}", row.one_line());
        rows.push(row);
        // Let the previous kanband's exit settle (page cache writeback) before the next.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let failed = rows.iter().any(|row| row.value.is_err());
    if cli.json {
        println!("{}", report::json(&rows, &target.describe(), &cli.sizes));
    } else {
        print!("{}", report::table(&rows));
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
