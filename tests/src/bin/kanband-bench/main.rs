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
//! - [`report`]: the rows (the median of `--runs` runs each), the table and the JSON object.
//! - [`machine`]: cores, CPU, memory, kernel, the fsync rate measured at the start, and the git
//!   revision, for the result file.
//!
//! Every run writes its JSON object to a file in `--results` (`bench/results/`); README's
//! performance table is made from a committed one. Each scenario runs on its own fresh
//! `kanband` (unless `--addr` names a running one), so the scenarios do not disturb each other. A scenario that fails prints its error in place of a
//! figure; the exit status is non-zero when any scenario failed (a missed target is not a
//! failure of the bench).

mod machine;
mod report;
mod scenarios;
mod server;
mod stats;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, SystemTime},
};

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

    /// Runs of each scenario; each row is their median, with their spread.
    #[arg(long, env = "KANBAND_BENCH_RUNS", default_value_t = 3)]
    runs: usize,

    /// Directory the result file (the JSON object) is written to; `-` writes none.
    #[arg(
        long,
        env = "KANBAND_BENCH_RESULTS",
        value_name = "DIR",
        default_value = "bench/results"
    )]
    results: PathBuf,

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
    let data_root = cli.data_root.clone().unwrap_or_else(std::env::temp_dir);
    let machine = machine::describe(&data_root);
    eprintln!("kanband-bench: machine {machine}");
    let runs = cli.runs.max(1);
    let mut rows = Vec::new();
    for scenario in scenarios {
        let mut attempts = Vec::with_capacity(runs);
        for run in 1..=runs {
            eprintln!(
                "kanband-bench: running {} ({run} of {runs})",
                scenario.name()
            );
            let row = scenarios::run(scenario, &target, &cli.sizes).await;
            eprintln!("kanband-bench: {}", row.one_line());
            let failed = row.value.is_err();
            attempts.push(row);
            // Let the previous kanband's exit settle (page cache writeback) before the next.
            tokio::time::sleep(Duration::from_millis(200)).await;
            if failed {
                break;
            }
        }
        rows.push(report::Row::median_of(attempts));
    }
    let failed = rows.iter().any(|row| row.value.is_err());
    let json = report::json(&rows, &target.describe(), &cli.sizes, &machine);
    if cli.results != Path::new("-") {
        match write_result(&cli.results, &json) {
            Ok(path) => eprintln!("kanband-bench: wrote {}", path.display()),
            Err(err) => {
                eprintln!("kanband-bench: cannot write the result file: {err:#}");
                return ExitCode::FAILURE;
            }
        }
    }
    if cli.json {
        println!("{json}");
    } else {
        print!("{}", report::table(&rows));
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Writes the result object to `<dir>/<UTC time>-<revision>.json`; returns the path.
fn write_result(dir: &Path, json: &str) -> anyhow::Result<PathBuf> {
    use anyhow::Context as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let revision = machine::git_revision().unwrap_or_else(|| "unknown".into());
    let short: String = revision.chars().take(12).collect();
    let dirty = if revision.ends_with("-dirty") {
        "-dirty"
    } else {
        ""
    };
    let path = dir.join(format!(
        "{}-{short}{dirty}.json",
        utc_stamp(SystemTime::now())
    ));
    std::fs::write(&path, format!("{json}\n"))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `20261202T150405Z` for a time (the civil date from the days since 1970, proleptic
/// Gregorian).
fn utc_stamp(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_are_civil_dates() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(utc_stamp(at(0)), "19700101T000000Z");
        assert_eq!(utc_stamp(at(951_782_400)), "20000229T000000Z");
        assert_eq!(utc_stamp(at(1_798_206_245)), "20261225T134405Z");
    }
}
