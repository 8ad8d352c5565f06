//! The machine a run measured, for the result file: cores, CPU model, memory, kernel, the
//! fsync rate of the file system the data directories live on (measured at the start, since
//! it bounds every durable figure), the load before the run, and the git revision measured.

use std::{
    fs::OpenOptions,
    io::Write as _,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::server::load_average;

/// How long the fsync rate is measured.
const FSYNC_PROBE: Duration = Duration::from_secs(2);

/// The machine, as one JSON object.
pub(crate) fn describe(data_root: &Path) -> Value {
    let fsyncs = fsync_rate(data_root, FSYNC_PROBE);
    json!({
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "cpu_model": cpu_model(),
        "memory_gib": memory_gib(),
        "kernel": read_trimmed("/proc/sys/kernel/osrelease"),
        "fsyncs_per_s": fsyncs.as_ref().ok(),
        "fsync_probe_error": fsyncs.as_ref().err().map(ToString::to_string),
        "fsync_probe_dir": data_root.display().to_string(),
        "load_average_1m_at_start": load_average(),
        "git_revision": git_revision(),
    })
}

/// Overwrites one 4 KiB block of a fresh file in `dir` and fsyncs it, back to back, for
/// `probe`: the rate a commit's `fsync` can reach there.
fn fsync_rate(dir: &Path, probe: Duration) -> std::io::Result<f64> {
    let file_path = dir.join(format!(".kanband-bench-fsync-{}", std::process::id()));
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&file_path)?;
    let block = [0u8; 4096];
    let started = Instant::now();
    let mut syncs = 0u64;
    let result = loop {
        if let Err(err) = file.write_all(&block).and_then(|()| file.sync_data()) {
            break Err(err);
        }
        syncs += 1;
        if started.elapsed() >= probe {
            break Ok(syncs as f64 / started.elapsed().as_secs_f64());
        }
        if let Err(err) = std::io::Seek::rewind(&mut file) {
            break Err(err);
        }
    };
    let _ = std::fs::remove_file(&file_path);
    result
}

/// The CPU's model name from /proc/cpuinfo.
fn cpu_model() -> Option<String> {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, name)| name.trim().to_owned())
}

/// Total memory from /proc/meminfo, in GiB.
fn memory_gib() -> Option<f64> {
    let kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((kib / 1024.0 / 1024.0 * 10.0).round() / 10.0)
}

fn read_trimmed(path: &str) -> Option<String> {
    Some(std::fs::read_to_string(path).ok()?.trim().to_owned())
}

/// `git rev-parse HEAD` of the current directory, with `-dirty` when tracked files differ
/// from it; `None` outside a checkout.
pub(crate) fn git_revision() -> Option<String> {
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|changes| !changes.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}
