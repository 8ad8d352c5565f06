//! Starting and stopping the real `kanband` binary.
//!
//! The bench talks to kanband as a separate process so its figures include real gRPC over
//! loopback and a real process's memory. kanband prints one ready line on stdout once it
//! serves (`kanband ready: data dir D listening on http://A unix:P`); the addresses come from
//! that line, since TCP binds port 0.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use nix::{sys::signal, unistd::Pid};
use tempfile::TempDir;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader},
    process::{Child, Command},
};

/// How long kanband may take to print its ready line or to exit after SIGTERM.
const PATIENCE: Duration = Duration::from_secs(120);

/// How much of kanband's stderr is kept to explain a failure.
const STDERR_TAIL: usize = 4096;

/// A `kanband` process the bench started. Dropping it kills the process (`kill_on_drop`), so a
/// failing scenario leaves nothing behind.
#[derive(Debug)]
pub(crate) struct Kanband {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:<port>`.
    pub(crate) tcp_addr: String,
    /// `unix:<data dir>/kanband.sock`.
    pub(crate) unix_addr: String,
    /// The admin token kanband wrote at first start (TCP needs a token).
    pub(crate) admin_token: String,
    /// From spawning the process to reading its ready line.
    pub(crate) ready_after: Duration,
    /// Holds the data directory (`<dir>/data`) until the process is stopped.
    dir: DataDir,
    stderr: Arc<Mutex<String>>,
}

/// Where kanband keeps its data: `<root>/data`, under a temporary directory that is removed
/// when dropped, or under a directory kept across runs (`--startup-data`).
#[derive(Debug)]
pub(crate) enum DataDir {
    /// Removed when dropped.
    Temp(TempDir),
    /// Kept.
    Kept(PathBuf),
}

impl DataDir {
    /// The data directory inside.
    pub(crate) fn data(&self) -> PathBuf {
        match self {
            DataDir::Temp(dir) => dir.path().join("data"),
            DataDir::Kept(dir) => dir.join("data"),
        }
    }
}

impl Kanband {
    /// Starts `bin` on `dir` (fresh or kept from a stopped kanband) and waits for its ready
    /// line.
    pub(crate) async fn start(bin: &Path, dir: DataDir) -> anyhow::Result<Kanband> {
        let data = dir.data();
        let socket = data.join("kanband.sock");
        let mut command = Command::new(bin);
        command
            .arg("--data-dir")
            .arg(&data)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--socket")
            .arg(&socket)
            .arg("--http")
            .arg("127.0.0.1:0")
            .env_remove("KANBAND_DATA_DIR")
            .env_remove("KANBAND_LISTEN")
            .env_remove("KANBAND_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        // KANBAND_BENCH_LOG=<filter> shows kanband's own log on the bench's stderr;
        // otherwise only warnings are kept, to explain a failure.
        match std::env::var("KANBAND_BENCH_LOG") {
            Ok(filter) => command.env("KANBAND_LOG", filter).stderr(Stdio::inherit()),
            Err(_) => command.env("KANBAND_LOG", "warn").stderr(Stdio::piped()),
        };
        let spawned = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let pid = child.id().context("kanband exited at once")?;
        let stderr = match child.stderr.take() {
            Some(pipe) => tail(pipe),
            None => Arc::default(),
        };
        let mut stdout = BufReader::new(child.stdout.take().context("stdout is piped")?).lines();
        let ready = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = stdout.next_line().await? {
                if line.starts_with("kanband ready:") {
                    return Ok(Some(line));
                }
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let ready_after = spawned.elapsed();
        let line = match ready {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) | Ok(Err(_)) => {
                let status = child.wait().await.ok();
                bail!(
                    "kanband exited before it was ready ({status:?}): {}",
                    said(&stderr)
                );
            }
            Err(_) => bail!(
                "kanband printed no ready line within {PATIENCE:?}: {}",
                said(&stderr)
            ),
        };
        // Keep reading stdout so kanband never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        let addresses = line
            .split_once("listening on ")
            .map(|(_, rest)| rest)
            .with_context(|| format!("unexpected ready line {line:?}"))?;
        let pick = |prefix: &str| {
            addresses
                .split_whitespace()
                .find(|a| a.starts_with(prefix))
                .map(str::to_owned)
                .with_context(|| format!("no {prefix} address in the ready line {line:?}"))
        };
        let token_file = line
            .split_once(" admin token ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .with_context(|| format!("no admin token file in the ready line {line:?}"))?;
        let admin_token = std::fs::read_to_string(token_file)
            .with_context(|| format!("cannot read the admin token {token_file}"))?
            .trim()
            .to_owned();
        Ok(Kanband {
            admin_token,
            tcp_addr: pick("http://")?,
            unix_addr: pick("unix:")?,
            child,
            pid,
            ready_after,
            dir,
            stderr,
        })
    }

    /// Starts `bin` on a fresh data directory under `root` (the system's temporary directory
    /// if `None`).
    pub(crate) async fn start_fresh(bin: &Path, root: Option<&Path>) -> anyhow::Result<Kanband> {
        let dir = match root {
            Some(root) => tempfile::Builder::new()
                .prefix("kanband-bench-")
                .tempdir_in(root),
            None => tempfile::Builder::new().prefix("kanband-bench-").tempdir(),
        }
        .context("cannot make a temporary data directory")?;
        Kanband::start(bin, DataDir::Temp(dir)).await
    }

    /// The process id, for reading its memory.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident memory now and at its peak, in KiB (`VmRSS`, `VmHWM` of /proc/PID/status).
    pub(crate) fn memory_kib(&self) -> anyhow::Result<(u64, u64)> {
        let path = format!("/proc/{}/status", self.pid);
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .with_context(|| format!("no {name} in {path}"))
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// CPU time (user + system, every thread) the process has used so far.
    pub(crate) fn cpu_time(&self) -> Option<Duration> {
        cpu_time(&format!("/proc/{}/stat", self.pid))
    }

    /// Size of the files in the data directory, in bytes.
    pub(crate) fn data_bytes(&self) -> u64 {
        std::fs::read_dir(self.dir.data())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Stops kanband with SIGTERM and waits for a clean exit; returns the data directory (for
    /// a restart) and how long the exit took.
    pub(crate) async fn stop(mut self) -> anyhow::Result<(DataDir, Duration)> {
        let asked = Instant::now();
        let pid = i32::try_from(self.pid).context("process id out of range")?;
        signal::kill(Pid::from_raw(pid), signal::Signal::SIGTERM)
            .context("cannot send SIGTERM to kanband")?;
        let status = match tokio::time::timeout(PATIENCE, self.child.wait()).await {
            Ok(status) => status.context("cannot wait for kanband")?,
            Err(_) => bail!(
                "kanband did not exit within {PATIENCE:?} of SIGTERM: {}",
                said(&self.stderr)
            ),
        };
        if !status.success() {
            bail!(
                "kanband exited with {status} after SIGTERM: {}",
                said(&self.stderr)
            );
        }
        Ok((self.dir, asked.elapsed()))
    }
}

/// CPU time this bench process has used so far.
pub(crate) fn own_cpu_time() -> Option<Duration> {
    cpu_time("/proc/self/stat")
}

/// CPU time every process on the machine has used (all CPUs), from /proc/stat: user, nice,
/// system, irq, softirq and steal. Other work on the machine shows up as the difference
/// between this and what kanband and the bench used.
pub(crate) fn machine_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    Some(Duration::from_millis(busy * 1000 / TICKS_PER_SECOND))
}

/// The 1-minute load average of the machine (`unknown` if unreadable).
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// Clock ticks per second of /proc/PID/stat times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// User + system time from a /proc/PID/stat file (fields 14 and 15).
fn cpu_time(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces; the fields after it follow its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// Collects the last [`STDERR_TAIL`] bytes a pipe says, in the background.
fn tail(pipe: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
    let buffer = Arc::new(Mutex::new(String::new()));
    let sink = buffer.clone();
    tokio::spawn(async move {
        let mut pipe = pipe;
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            let mut text = sink.lock().expect("stderr buffer");
            text.push_str(&String::from_utf8_lossy(&chunk[..n]));
            if text.len() > 2 * STDERR_TAIL {
                let mut cut = text.len() - STDERR_TAIL;
                while !text.is_char_boundary(cut) {
                    cut += 1;
                }
                text.drain(..cut);
            }
        }
    });
    buffer
}

/// What kanband said on stderr, trimmed, for an error message.
fn said(stderr: &Arc<Mutex<String>>) -> String {
    let text = stderr.lock().expect("stderr buffer");
    let text = text.trim();
    if text.is_empty() {
        "(nothing on stderr)".into()
    } else {
        let mut cut = text.len().saturating_sub(STDERR_TAIL);
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        format!("stderr: {}", &text[cut..])
    }
}
