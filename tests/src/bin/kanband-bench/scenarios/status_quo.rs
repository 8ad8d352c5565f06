//! `status-quo`: the platform kanband replaces, measured in the same invocation so README's
//! ratio comes from one run. Runs `bench/hermes_status_quo.py`, which drives the real Hermes
//! Agent 0.19.0 `hermes_cli.kanban_db` the way its gateways do (a fresh SQLite connection per
//! operation) on a fresh board, and reports its claim -> complete cycles per second (its
//! creates per second are a detail). No kanband is started.

use std::{path::PathBuf, process::Stdio};

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::process::Command;

use super::{Measured, Sizes};

/// The script, relative to the repository root (the bench runs from there).
const SCRIPT: &str = "bench/hermes_status_quo.py";

/// Runs the scenario.
pub(crate) async fn run(sizes: &Sizes) -> anyhow::Result<Measured> {
    let script = PathBuf::from(SCRIPT);
    if !script.is_file() {
        bail!("{SCRIPT} not found: run kanband-bench from the repository root");
    }
    let mut command = Command::new(&sizes.python);
    command
        .arg(&script)
        .arg("--tasks")
        .arg(sizes.status_quo_tasks.to_string())
        .arg("--clients")
        .arg(sizes.status_quo_clients.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(path) = &sizes.hermes_path {
        command.arg("--hermes-path").arg(path);
    }
    let out = command
        .output()
        .await
        .with_context(|| format!("starting {} {SCRIPT}", sizes.python.display()))?;
    if !out.status.success() {
        bail!(
            "{SCRIPT} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let report: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{SCRIPT} printed no JSON object"))?;
    let number = |key: &str| {
        report[key]
            .as_f64()
            .with_context(|| format!("{SCRIPT} reported no {key}"))
    };
    let cycles = number("cycles_per_s")?;
    let creates = number("creates_per_s")?;
    let failed = &report["failed_operations"];
    Ok(Measured::new(cycles)
        .note(format!(
            "hermes-agent {} kanban_db, a connection per operation, {} client processes, {} \
             tasks: {creates:.0} creates/s, {cycles:.0} claim->complete cycles/s",
            report["hermes_version"].as_str().unwrap_or("unknown"),
            sizes.status_quo_clients,
            report["tasks"]
        ))
        .note(format!("failed operations by kind: {failed}"))
        .detail("creates_per_s", creates)
        .detail("cycles", report["cycles"].clone())
        .detail("hermes_version", report["hermes_version"].clone())
        .detail("failed_operations", failed.clone()))
}
