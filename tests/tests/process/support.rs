//! Helpers shared by the process-level tests: a start `kanband` must refuse, running `kanbanctl`, polling with a real-time
//! bound and a diagnosis on timeout, a fleet of `kanband-gateway` supervisors that leaves no
//! worker behind, and the check every scenario ends with (one live holder per task at a time).

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use kanband_gateway::{Client, Target};
use kanband_proto::pb;
use kanband_tests::{
    calls,
    daemon::{Gateway, PATIENCE, kanband_command, workspace_bin},
};
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::{
    process::Command,
    sync::{RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::{Instant, sleep, timeout},
};

/// The machine's cores: a scenario under load takes them all (its timings assume no other
/// test competes), the light process tests share them with each other, as they did when each
/// scenario was a test binary of its own.
static MACHINE: RwLock<()> = RwLock::const_new(());

/// Holds the machine for a scenario under load: no other process test runs meanwhile.
pub(crate) async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    MACHINE.write().await
}

/// Shares the machine with the other light process tests, never with a scenario.
pub(crate) async fn shared() -> RwLockReadGuard<'static, ()> {
    MACHINE.read().await
}

/// Runs `kanband --data-dir DATA ARGS...` where it must refuse to start: exit 1 and no ready
/// line. Returns what it said on stderr.
pub(crate) async fn refused_start(data: &Path, args: &[&str]) -> String {
    let output = timeout(
        PATIENCE,
        kanband_command()
            .arg("--data-dir")
            .arg(data)
            .args(args)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("kanband exits in time")
    .expect("run kanband");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        output.stdout.is_empty(),
        "no ready line from a refused start"
    );
    stderr
}

/// What one `kanbanctl` run said.
#[derive(Debug, Clone)]
pub(crate) struct Ctl {
    /// Exit code (-1 if killed by a signal).
    pub(crate) code: i32,
    /// Standard output, trimmed.
    pub(crate) stdout: String,
    /// Standard error, trimmed.
    pub(crate) stderr: String,
}

/// Runs `kanbanctl --addr ADDR ARGS...` as a fresh process, with the target's token (if any)
/// in `KANBAN_TOKEN`.
pub(crate) async fn kanbanctl(target: impl Into<Target>, args: &[&str]) -> Ctl {
    let target = target.into();
    let mut command = Command::new(workspace_bin("kanbanctl"));
    command
        .env_remove("KANBAN_TOKEN")
        .env_remove("KANBAN_TOKEN_FILE");
    if let Some(token) = &target.token {
        command.env("KANBAN_TOKEN", token);
    }
    let output = timeout(
        PATIENCE,
        command
            .arg("--addr")
            .arg(&target.addr)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("kanbanctl {args:?} did not finish within {PATIENCE:?}"))
    .expect("run kanbanctl");
    Ctl {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    }
}

/// Connects to `target`, retrying for up to [`PATIENCE`] (kanband may be restarting).
pub(crate) async fn connect(target: impl Into<Target>) -> Client {
    let target = target.into();
    let end = Instant::now() + PATIENCE;
    loop {
        match Client::connect(&target).await {
            Ok(client) => return client,
            Err(err) if Instant::now() >= end => panic!("connect to {}: {err}", target.addr),
            Err(_) => sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Calls `probe` every 100 ms until it returns `Ok`, for up to `bound` of real time. On
/// timeout, panics with `what`, the probe's last `Err` (what it saw) and `diag()` (such as the
/// supervisors' log tails).
pub(crate) async fn eventually<T>(
    what: &str,
    bound: Duration,
    diag: impl Fn() -> String,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= bound => {
                panic!(
                    "{what}: not within {bound:?}\n--- last seen:\n{last}\n--- diagnosis:\n{}",
                    diag()
                )
            }
            Err(_) => sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The last `lines` lines of `text`.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The lines of `log` that contain any of `patterns`.
pub(crate) fn grep(log: &str, patterns: &[&str]) -> String {
    log.lines()
        .filter(|line| patterns.iter().any(|p| line.contains(p)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` without ANSI escape sequences (kanband colours its log even into a pipe).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ parameters... final letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Lines of a log at WARN or ERROR level (the `tracing` text format, with or without colours),
/// for "nothing errored".
pub(crate) fn warnings(log: &str) -> Vec<String> {
    strip_ansi(log)
        .lines()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .map(str::to_owned)
        .collect()
}

/// The process groups that have a live (not zombie) member, from one pass over `/proc`.
pub(crate) fn live_groups() -> HashSet<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashSet::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            (fields.len() > 3 && fields[0] != "Z")
                .then(|| fields[2].parse().ok())
                .flatten()
        })
        .collect()
}

/// Whether any process of process group `pgid` is alive (not a zombie).
pub(crate) fn group_alive(pgid: u32) -> bool {
    live_groups().contains(&pgid)
}

/// Supervisors started for one scenario. Dropping the fleet (a failing test) kills every
/// worker process group its supervisors started that is still alive, then the supervisors
/// themselves (`kill_on_drop`), so no worker outlives the test.
#[derive(Debug, Default)]
pub(crate) struct Fleet {
    /// The supervisors, in start order.
    pub(crate) gateways: Vec<Gateway>,
    /// A label per supervisor, for diagnostics.
    pub(crate) labels: Vec<String>,
}

impl Fleet {
    /// Adds a started supervisor.
    pub(crate) fn add(&mut self, label: impl Into<String>, gateway: Gateway) -> &Gateway {
        self.labels.push(label.into());
        self.gateways.push(gateway);
        self.gateways.last().expect("just pushed")
    }

    /// The last `lines` lines of every supervisor's log.
    pub(crate) fn diag(&self, lines: usize) -> String {
        let mut out = String::new();
        for (label, gateway) in self.labels.iter().zip(&self.gateways) {
            let log = gateway.stderr.lock().expect("buffer").clone();
            out.push_str(&format!(
                "--- kanband-gateway {label} (session {}), last {lines} lines:\n{}\n",
                gateway.session,
                tail(&log, lines)
            ));
        }
        out
    }

    /// Every supervisor's full log, concatenated.
    pub(crate) fn logs(&self) -> Vec<(String, String)> {
        self.labels
            .iter()
            .zip(&self.gateways)
            .map(|(label, g)| (label.clone(), g.stderr.lock().expect("buffer").clone()))
            .collect()
    }

    /// Asserts every supervisor is still running.
    pub(crate) fn assert_running(&mut self) {
        for (label, gateway) in self.labels.iter().zip(&mut self.gateways) {
            let exited = gateway.child.try_wait().expect("try_wait");
            assert!(
                exited.is_none(),
                "kanband-gateway {label} exited ({exited:?}); stderr:\n{}",
                tail(&gateway.stderr.lock().expect("buffer"), 60)
            );
        }
    }

    /// SIGTERM to every supervisor, then waits for each to drain and exit 0.
    pub(crate) async fn terminate(&mut self, limit: Duration) {
        for gateway in &self.gateways {
            gateway.signal(Signal::SIGTERM);
        }
        for (label, gateway) in self.labels.iter().zip(&mut self.gateways) {
            let status: ExitStatus = gateway.terminate(limit).await;
            assert!(
                status.success(),
                "kanband-gateway {label} exited with {status} after SIGTERM; stderr:\n{}",
                tail(&gateway.stderr.lock().expect("buffer"), 60)
            );
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // For a post-mortem: KANBAND_SCENARIO_LOGS=<dir> keeps every supervisor's whole log.
        if let Some(dir) = std::env::var_os("KANBAND_SCENARIO_LOGS") {
            let dir = std::path::PathBuf::from(dir);
            let _ = std::fs::create_dir_all(&dir);
            for (label, log) in self.logs() {
                let _ = std::fs::write(dir.join(format!("gateway-{label}.log")), log);
            }
        }
        let live = live_groups();
        for gateway in &self.gateways {
            for (_, pid) in gateway.started_workers() {
                if live.contains(&pid) {
                    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                }
            }
        }
    }
}

/// Writes a worker script to `dir/name` and returns the `--command` that runs it. The
/// supervisor runs the command with `sh -c`; `exec` makes the script's shell the worker
/// process itself (the group leader the supervisor signals and waits for), so the script's
/// traps run when the worker is stopped instead of the outer shell dying at once.
pub(crate) fn worker_script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write the worker script");
    format!("exec sh {}", sh_path(&path))
}

/// Quotes a path for a shell script (the temporary paths hold no single quote).
pub(crate) fn sh_path(path: &Path) -> String {
    let text = path.display().to_string();
    assert!(!text.contains('\''), "{text} holds a quote");
    format!("'{text}'")
}

/// A task with its runs, comments and last 100 events.
pub(crate) async fn detail(client: &mut Client, id: &str) -> pb::TaskDetail {
    calls::detail_with_events(client, id, 100).await
}

/// Reads the event log and checks that no task ever had two live holders: per task, every
/// `claimed` event (status to `running`) is followed by an event that takes the task out of
/// `running` before the next `claimed`, and the claims' epochs strictly grow. Returns how many
/// claims were seen.
///
/// Every status change carries `from` and `to` in its details; a claim ends with the change
/// that leaves `running` (completed, blocked, expired, released, crashed, requeued, ...). Not
/// covered: archiving a running task (it leaves `running` while its holder is still being
/// revoked); no scenario does that.
pub(crate) fn assert_one_holder_at_a_time(events: &[pb::Event]) -> usize {
    #[derive(Default)]
    struct Holder {
        live: Option<(u64, u64)>,
        last_epoch: u64,
    }
    let mut tasks: HashMap<&str, Holder> = HashMap::new();
    let mut claims = 0;
    for event in events.iter().filter(|e| !e.task_id.is_empty()) {
        let holder = tasks.entry(event.task_id.as_str()).or_default();
        let detail = |key: &str| event.details.get(key).map_or("", String::as_str);
        if event.kind == "claimed" {
            claims += 1;
            let epoch: u64 = detail("epoch")
                .parse()
                .unwrap_or_else(|_| panic!("claimed event #{} has no epoch: {event:?}", event.id));
            assert!(
                holder.live.is_none(),
                "task {} claimed at epoch {epoch} (event #{}) while the claim of epoch {:?} was \
                 live: two live holders",
                event.task_id,
                event.id,
                holder.live
            );
            assert!(
                epoch > holder.last_epoch,
                "task {}: epoch {epoch} (event #{}) after epoch {}",
                event.task_id,
                event.id,
                holder.last_epoch
            );
            holder.live = Some((epoch, event.id));
            holder.last_epoch = epoch;
        } else if detail("from") == "running" && detail("to") != "running" {
            assert!(
                holder.live.is_some(),
                "task {} left running (event #{} {}) without a live claim",
                event.task_id,
                event.id,
                event.kind
            );
            holder.live = None;
        }
    }
    claims
}

/// How many tasks Stats counts in `status` (a status name such as `done`).
pub(crate) fn count(stats: &pb::StatsResponse, status: &str) -> u64 {
    stats.tasks_by_status.get(status).copied().unwrap_or(0)
}
