//! The WAL wedge of a field report replayed: kanband,
//! seven `kanband-gateway` supervisors with different profiles and 2,100 tasks whose workers
//! are short shell scripts running fresh `kanbanctl` processes (heartbeat, comment, show, block,
//! complete), each connecting and exiting. In the field, a few such short-lived processes
//! opening the database wedged every later write with `disk I/O error` and left the gateway
//! holding deleted `-wal` inodes. Here nothing but kanband touches the file, so:
//!
//! - zero errors: every task reaches the terminal status its profile's worker drives it to, with
//!   one run of the matching outcome, and no `kanbanctl` call by any worker fails;
//! - throughout the run (sampled every 200 ms from `/proc/<kanband pid>/fd`), kanband's open
//!   descriptors under the data directory are exactly `kanband.db`, `kanband.db-wal` and
//!   `kanband.lock`, and no descriptor of kanband refers to a deleted file.
//!
//! What is accepted outside the data directory: descriptors that are not paths at all
//! (`socket:[...]`, which is how both listeners, including the Unix socket `kanband.sock`, and
//! every accepted connection show; `pipe:[...]`; `anon_inode:[...]` for epoll and eventfd) and
//! paths elsewhere (`/dev/null`, the test's stdout and stderr pipes). Every distinct kind seen
//! is printed at the end.
//!
//! No deleted file is accepted anywhere: kanband keeps SQLite's temporary storage in memory
//! (`temp_store=MEMORY`), so it never holds an unlinked temporary file either.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::support::{
    Fleet, assert_one_holder_at_a_time, connect, count, detail, eventually, exclusive, sh_path,
    tail, warnings, worker_script,
};
use kanband_proto::pb;
use kanband_tests::{
    calls::{all_tasks, assert_invariants, events_where, stats},
    daemon::{Daemon, Gateway, data_dir},
};
use tokio::time::Instant;

/// Supervisors, one profile each: `p0` to `p6`.
const PROFILES: usize = 7;
/// Tasks, spread evenly over the profiles.
const TASKS: usize = 2_100;
/// Clients creating the tasks at the same time.
const CREATORS: usize = 7;
/// Workers per supervisor.
const SLOTS: &str = "4";
/// Lease time of the supervisors' sessions.
const TTL_MS: &str = "10000";
/// Real-time bound for every task to reach its terminal status.
const SETTLE: Duration = Duration::from_secs(180);

/// What the worker of a profile does, and so what its tasks end as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    /// heartbeat, comment, complete: `done`.
    Complete,
    /// heartbeat, block (needs_input): `blocked`.
    Block,
    /// comment, show, complete: `done`.
    CommentShowComplete,
}

fn verb_of(profile: usize) -> Verb {
    match profile {
        0..=4 => Verb::Complete,
        5 => Verb::Block,
        _ => Verb::CommentShowComplete,
    }
}

/// The worker script of a verb. Every `kanbanctl` is a fresh process; any failure is appended
/// to `failures` (outside every workspace) and makes the worker exit 1, which the supervisor
/// would report as a crash.
fn script(verb: Verb, failures: &Path) -> String {
    let fail = format!(
        "fail() {{ echo \"$KANBAN_TASK $KANBAN_PROFILE epoch $KANBAN_EPOCH: kanbanctl $1 exited $2\" >> {}; exit 1; }}\n",
        sh_path(failures)
    );
    let steps = match verb {
        Verb::Complete => {
            "kanbanctl heartbeat --note working || fail heartbeat $?\n\
             kanbanctl comment --body hi || fail comment $?\n\
             kanbanctl complete --summary ok || fail complete $?\n"
        }
        Verb::Block => {
            "kanbanctl heartbeat --note working || fail heartbeat $?\n\
             kanbanctl block --reason 'needs a human' --kind needs_input || fail block $?\n"
        }
        Verb::CommentShowComplete => {
            "kanbanctl comment --body hi || fail comment $?\n\
             kanbanctl --json show > /dev/null || fail show $?\n\
             kanbanctl complete --summary ok || fail complete $?\n"
        }
    };
    format!("{fail}{steps}")
}

/// What the descriptor sampler saw.
#[derive(Debug, Default)]
struct FdReport {
    samples: usize,
    /// Distinct descriptor targets under the data directory.
    under_data: BTreeSet<String>,
    /// Distinct kinds of other targets (`socket`, `pipe`, `anon_inode:[eventpoll]`, paths).
    elsewhere: BTreeSet<String>,
    /// What broke the rule, with the sample number.
    violations: Vec<String>,
}

/// Reads `/proc/<pid>/fd` once: the targets of every open descriptor.
fn read_fds(pid: u32) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            // A descriptor closed between the listing and the readlink is simply gone.
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((
                entry.file_name().to_string_lossy().into_owned(),
                target.to_string_lossy().into_owned(),
            ))
        })
        .collect()
}

/// Checks one sample against the rule; records what it saw.
fn check_sample(report: &mut FdReport, data: &Path, fds: &[(String, String)]) {
    report.samples += 1;
    let n = report.samples;
    let prefix = format!("{}/", data.display());
    let expected: BTreeSet<String> = ["kanband.db", "kanband.db-wal", "kanband.lock"]
        .iter()
        .map(|f| data.join(f).display().to_string())
        .collect();
    let mut under = BTreeSet::new();
    for (fd, target) in fds {
        if target.ends_with(" (deleted)") {
            report.violations.push(format!(
                "sample {n}: fd {fd} refers to a deleted file: {target}"
            ));
            continue;
        }
        if target.starts_with(&prefix) {
            under.insert(target.clone());
        } else if let Some((kind, _)) = target.split_once(":[") {
            let kind = if kind == "anon_inode" {
                target.clone()
            } else {
                kind.to_owned()
            };
            report.elsewhere.insert(kind);
        } else {
            report.elsewhere.insert(target.clone());
        }
    }
    if under != expected {
        report.violations.push(format!(
            "sample {n}: descriptors under the data directory are {under:?}, not {expected:?}"
        ));
    }
    report.under_data.extend(under);
}

/// Samples kanband's descriptors every 200 ms until `stop` is set.
fn sample_fds(pid: u32, data: PathBuf, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<FdReport> {
    tokio::spawn(async move {
        let mut report = FdReport::default();
        while !stop.load(Ordering::SeqCst) {
            let fds = read_fds(pid);
            check_sample(&mut report, &data, &fds);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        report
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn short_lived_kanbanctl_workers_never_wedge_the_database() {
    let _machine = exclusive().await;
    let started = Instant::now();
    let (dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let data = data.canonicalize().expect("the data directory exists");
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_fds(daemon.pid(), data.clone(), stop.clone());

    let failures = dir.path().join("failures");
    let mut fleet = Fleet::default();
    for p in 0..PROFILES {
        let command = worker_script(
            dir.path(),
            &format!("worker-p{p}.sh"),
            &script(verb_of(p), &failures),
        );
        let gateway = Gateway::start(
            &daemon.unix_addr,
            &format!("p{p}"),
            &command,
            &dir.path().join(format!("workspaces-p{p}")),
            &["--slots", SLOTS, "--ttl-ms", TTL_MS],
        )
        .await;
        fleet.add(format!("p{p}"), gateway);
    }
    let fleet_ready = started.elapsed();

    // Create the tasks from several clients at once while the supervisors already work.
    let created: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut creators = tokio::task::JoinSet::new();
    for c in 0..CREATORS {
        let addr = daemon.unix_addr.clone();
        let created = created.clone();
        creators.spawn(async move {
            let mut client = connect(&addr).await;
            for i in (c..TASKS).step_by(CREATORS) {
                let profile = i % PROFILES;
                let task = client
                    .tasks
                    .create_task(pb::CreateTaskRequest {
                        title: format!("wal {i}: {:?}", verb_of(profile)),
                        assignee: format!("p{profile}"),
                        created_by: format!("creator-{c}"),
                        ..Default::default()
                    })
                    .await
                    .unwrap_or_else(|status| panic!("CreateTask {i}: {status}"))
                    .into_inner()
                    .task
                    .expect("the created task");
                created.lock().unwrap().insert(task.id, profile);
            }
        });
    }
    while let Some(joined) = creators.join_next().await {
        joined.expect("a creator panicked");
    }
    let created = std::mem::take(&mut *created.lock().unwrap());
    assert_eq!(created.len(), TASKS, "every create made a new task");
    let creates_done = started.elapsed();

    let blocked_expected = created
        .values()
        .filter(|p| verb_of(**p) == Verb::Block)
        .count() as u64;
    let done_expected = TASKS as u64 - blocked_expected;
    let mut client = daemon.client().await;
    let failures_text = || std::fs::read_to_string(&failures).unwrap_or_default();
    eventually(
        "every task reaches its terminal status",
        SETTLE,
        || {
            format!(
                "worker failures:\n{}\n{}",
                tail(&failures_text(), 20),
                fleet.diag(25)
            )
        },
        async || {
            let s = stats(&mut client).await;
            if count(&s, "done") == done_expected && count(&s, "blocked") == blocked_expected {
                Ok(())
            } else {
                Err(format!(
                    "{:?}; want done {done_expected}, blocked {blocked_expected}",
                    s.tasks_by_status
                ))
            }
        },
    )
    .await;
    let settled = started.elapsed();

    // Zero errors: no worker saw a failing kanbanctl.
    assert_eq!(failures_text(), "", "kanbanctl calls failed in workers");

    // Every task: its expected status, one run with the matching outcome, what its worker did.
    let tasks = all_tasks(&mut client, "", &[]).await;
    assert_eq!(tasks.len(), TASKS, "no task more, no task less");
    let mut checkers = tokio::task::JoinSet::new();
    let ids: Vec<String> = created.keys().cloned().collect();
    for chunk in ids.chunks(TASKS.div_ceil(4)) {
        let chunk = chunk.to_vec();
        let created = created.clone();
        let mut client = client.clone();
        checkers.spawn(async move {
            for id in chunk {
                let d = detail(&mut client, &id).await;
                let verb = verb_of(created[&id]);
                let task = d.task.clone().expect("task");
                let (status, outcome) = match verb {
                    Verb::Block => (pb::TaskStatus::Blocked, pb::RunOutcome::Blocked),
                    _ => (pb::TaskStatus::Done, pb::RunOutcome::Completed),
                };
                assert_eq!(task.status(), status, "{id} ({verb:?}): {d:#?}");
                assert_eq!(d.runs.len(), 1, "{id}: exactly one run: {d:#?}");
                assert_eq!(d.runs[0].outcome(), outcome, "{id}: {d:#?}");
                assert_eq!(task.epoch, 1, "{id}: claimed once");
                match verb {
                    Verb::Complete => {
                        assert_eq!(task.summary, "ok");
                        assert_eq!(d.runs[0].last_heartbeat_note, "working");
                        assert_eq!(d.comments.len(), 1, "{id}: {d:#?}");
                    }
                    Verb::Block => {
                        assert_eq!(task.block_kind(), pb::BlockKind::NeedsInput);
                        assert_eq!(task.block_reason, "needs a human");
                        assert_eq!(d.runs[0].last_heartbeat_note, "working");
                    }
                    Verb::CommentShowComplete => {
                        assert_eq!(task.summary, "ok");
                        assert_eq!(d.comments.len(), 1, "{id}: {d:#?}");
                    }
                }
            }
        });
    }
    while let Some(joined) = checkers.join_next().await {
        joined.expect("a checker panicked");
    }

    let events = events_where(&mut client, "", "").await;
    let claims = assert_one_holder_at_a_time(&events);
    assert_eq!(claims, TASKS, "one claim per task");
    let invariants = assert_invariants(&mut client).await;

    // Nothing logged a warning or an error: supervisors and kanband.
    fleet.assert_running();
    for (label, log) in fleet.logs() {
        let bad = warnings(&log);
        assert!(
            bad.is_empty(),
            "kanband-gateway {label} warned:\n{}",
            bad.join("\n")
        );
        // No worker was stopped: not even one whose own outcome had just taken its claim out
        // of the renewals (a worker gets a renewal's time to end).
        assert!(
            !log.contains("stopping the worker"),
            "kanband-gateway {label} stopped a worker:\n{log}"
        );
    }
    let bad = warnings(&daemon.stderr.lock().unwrap());
    assert!(bad.is_empty(), "kanband warned:\n{}", bad.join("\n"));

    drop(client);
    fleet.terminate(Duration::from_secs(30)).await;
    stop.store(true, Ordering::SeqCst);
    let fds = sampler.await.expect("the sampler");
    assert!(
        fds.violations.is_empty(),
        "{} of {} descriptor samples broke the rule; first ones:\n{}",
        fds.violations.len(),
        fds.samples,
        fds.violations
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        fds.samples >= 50,
        "only {} samples: the run was too short to mean anything",
        fds.samples
    );
    daemon.terminate().await;
    println!(
        "wal wedge: {TASKS} tasks, {claims} claims, {} events; supervisors ready after {fleet_ready:?}, \
         creates acknowledged after {creates_done:?}, all settled after {settled:?}, total {:?}; \
         {} descriptor samples, under the data dir {:?}, elsewhere {:?}; invariants: {} tasks, {} claims, \
         {} events",
        events.len(),
        started.elapsed(),
        fds.samples,
        fds.under_data,
        fds.elsewhere,
        invariants.tasks,
        invariants.claims,
        invariants.events,
    );
}
