//! The crash scenario: `kill -9` of kanband in the middle of a mixed load (clients
//! creating tasks, four `kanband-gateway` supervisors claiming them, workers heartbeating and
//! completing through fresh `kanbanctl` processes), then a restart on the same data directory.
//! The Unix socket path is stable, so supervisors, workers and clients reconnect by themselves.
//!
//! The clients keep a ledger of what they saw acknowledged: the ids of created tasks (each
//! create carries an idempotency key and is retried with the same key until acknowledged), and
//! every completion a worker saw succeed (the worker appends `task epoch` to a file after
//! `kanbanctl complete` exits 0). After the restart:
//!
//! - every acknowledged create exists, and no retry made a duplicate;
//! - every acknowledged completion's task is done with a completed run of that epoch;
//! - no task ever had two live holders (the event log, and Admin.CheckInvariants);
//! - the supervisors carried on without killing a child: they kept their sessions, never
//!   stopped a worker, and every task ends done, without any run released or crashed.
//!
//! Workers retry a `kanbanctl` call when it exits 5 (kanband unavailable, including a call whose
//! connection the kill broke mid-flight); any other failure is recorded and fails the test. A
//! completion
//! committed just before the kill whose answer was lost is retried and refused (exit 3): that
//! worker records the refusal, and the test accepts it only if the task is done by a completed
//! run of that very epoch.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::support::{
    Fleet, assert_one_holder_at_a_time, connect, count, detail, eventually, exclusive, grep,
    sh_path, tail, worker_script,
};
use kanband_proto::pb;
use kanband_tests::{
    calls::{all_tasks, assert_invariants, events_where, stats},
    daemon::{Daemon, Gateway, data_dir},
};
use tokio::time::Instant;

/// Supervisors, one profile each: `p0` to `p3`.
const PROFILES: usize = 4;
/// Clients creating tasks.
const CREATORS: usize = 4;
/// Tasks each client creates.
const PER_CREATOR: usize = 75;
/// Pause between a client's creates, so the load spans the crash.
const CREATE_PACE: Duration = Duration::from_millis(40);
/// Lease time: long enough that the restart costs no claim.
const TTL_MS: &str = "15000";
/// Real-time bound for each wait.
const BOUND: Duration = Duration::from_secs(120);
/// Real-time bound for every task to be done after the restart (the whole load takes seconds).
const SETTLE: Duration = Duration::from_secs(60);

/// The worker: heartbeat, a short pause, complete; each `kanbanctl` retried while kanband is
/// unavailable (exit 5). Writes `task epoch` to `out/ledger` once a completion is acknowledged,
/// and any other failure to `out/failures`.
fn script(out: &Path) -> String {
    let out = sh_path(out);
    format!(
        r#"out={out}
err="$KANBAN_WORKSPACE/kanbanctl-stderr"
retry() {{
  n=0
  while :; do
    kanbanctl "$@" 2> "$err" && return 0
    rc=$?
    cat "$err" >> "$out/kanbanctl-stderr"
    echo "$KANBAN_TASK epoch $KANBAN_EPOCH: kanbanctl $1 exited $rc (try $n)" >> "$out/retries"
    if [ $rc -ne 5 ]; then
      return $rc
    fi
    if [ $n -ge 600 ]; then return $rc; fi
    n=$((n+1))
    sleep 0.1
  done
}}
retry heartbeat --note started || {{ echo "$KANBAN_TASK $KANBAN_EPOCH heartbeat $?" >> "$out/failures"; exit 1; }}
sleep 0.2
retry complete --summary "epoch $KANBAN_EPOCH"
rc=$?
if [ $rc -eq 0 ]; then echo "$KANBAN_TASK $KANBAN_EPOCH" >> "$out/ledger"; exit 0; fi
echo "$KANBAN_TASK $KANBAN_EPOCH complete $rc" >> "$out/failures"
exit 1
"#
    )
}

/// What the creating clients saw acknowledged.
#[derive(Debug, Default)]
struct Creates {
    /// Idempotency key -> task id, for every acknowledged create.
    acked: HashMap<String, String>,
    /// Calls that failed (and were retried with the same key).
    errors: Vec<String>,
}

/// One client: creates its tasks with idempotency keys, retrying each (reconnecting) until it
/// is acknowledged.
async fn creator(addr: String, c: usize, creates: Arc<Mutex<Creates>>, acked: Arc<AtomicUsize>) {
    let mut client = connect(&addr).await;
    for n in 0..PER_CREATOR {
        let key = format!("crash-{c}-{n}");
        let i = c * PER_CREATOR + n;
        let request = pb::CreateTaskRequest {
            title: format!("crash {i}"),
            assignee: format!("p{}", i % PROFILES),
            idempotency_key: key.clone(),
            created_by: format!("creator-{c}"),
            ..Default::default()
        };
        let end = Instant::now() + BOUND;
        let task = loop {
            match client.tasks.create_task(request.clone()).await {
                Ok(response) => break response.into_inner().task.expect("the task"),
                Err(status) => {
                    assert!(
                        Instant::now() < end,
                        "create {key}: still failing: {status}"
                    );
                    creates.lock().unwrap().errors.push(format!(
                        "{key}: {:?} {}",
                        status.code(),
                        status.message()
                    ));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    client = connect(&addr).await;
                }
            }
        };
        creates.lock().unwrap().acked.insert(key, task.id);
        acked.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(CREATE_PACE).await;
    }
}

/// `task epoch` lines of a worker file.
fn lines_of(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_loses_nothing_acknowledged_and_spares_the_workers() {
    let _machine = exclusive().await;
    let started = Instant::now();
    let (dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let addr = daemon.unix_addr.clone();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let ledger = out.join("ledger");
    let failures = out.join("failures");

    let command = worker_script(dir.path(), "worker.sh", &script(&out));
    let mut fleet = Fleet::default();
    for p in 0..PROFILES {
        let gateway = Gateway::start(
            &addr,
            &format!("p{p}"),
            &command,
            &dir.path().join(format!("workspaces-p{p}")),
            &["--slots", "3", "--ttl-ms", TTL_MS],
        )
        .await;
        fleet.add(format!("p{p}"), gateway);
    }

    let creates: Arc<Mutex<Creates>> = Arc::default();
    let acked = Arc::new(AtomicUsize::new(0));
    let mut creators = tokio::task::JoinSet::new();
    for c in 0..CREATORS {
        creators.spawn(creator(addr.clone(), c, creates.clone(), acked.clone()));
    }

    // Kill in the middle: some creates and completions acknowledged, more to come.
    let total = CREATORS * PER_CREATOR;
    let mid = eventually(
        "the load is under way",
        BOUND,
        || fleet.diag(10),
        async || {
            let creates = acked.load(Ordering::SeqCst);
            let completions = lines_of(&ledger).len();
            if creates >= total * 2 / 5 && completions >= 30 {
                Ok((creates, completions))
            } else {
                Err(format!("{creates} creates, {completions} completions"))
            }
        },
    )
    .await;
    assert!(mid.0 < total, "the kill comes before the creates end");
    let killed_at = started.elapsed();
    daemon.kill9().await;
    let daemon = Daemon::start(&data).await;
    let restarted_after = started.elapsed() - killed_at;
    let mut client = daemon.client().await;

    while let Some(joined) = creators.join_next().await {
        joined.expect("a creator panicked");
    }
    let creates = std::mem::take(&mut *creates.lock().unwrap());
    assert_eq!(creates.acked.len(), total);

    // A grant whose answer the kill swallowed leaves a claim its supervisor does not know of.
    // The supervisor must give it back (or kanband must let it lapse); if neither happens, the
    // session's keep-alives renew it forever and the task never finishes: named on timeout.
    let sessions: HashMap<String, usize> = fleet
        .gateways
        .iter()
        .enumerate()
        .map(|(i, g)| (g.session.clone(), i))
        .collect();
    eventually(
        "every task is done",
        SETTLE,
        || {
            format!(
                "failures:\n{}\nretries:\n{}\n{}",
                tail(&std::fs::read_to_string(&failures).unwrap_or_default(), 20),
                tail(
                    &std::fs::read_to_string(out.join("retries")).unwrap_or_default(),
                    20
                ),
                fleet.diag(20)
            )
        },
        async || {
            let s = stats(&mut client).await;
            if count(&s, "done") == total as u64 {
                return Ok(());
            }
            let mut running = Vec::new();
            for task in all_tasks(&mut client, "", &[pb::TaskStatus::Running]).await {
                let d = detail(&mut client, &task.id).await;
                let run = d.runs.last().cloned().unwrap_or_default();
                let holder = sessions.get(&run.session_id).map(|i| &fleet.gateways[*i]);
                let worker =
                    holder.is_some_and(|g| g.started_workers().iter().any(|(t, _)| *t == task.id));
                let label = holder.map_or("?", |g| g.session.as_str());
                running.push(format!(
                    "{} epoch {} run {} held by session {label}: {}",
                    task.id,
                    task.epoch,
                    run.id,
                    if worker {
                        "its supervisor started a worker for it"
                    } else {
                        "ORPHANED, its supervisor never started a worker for it (a grant \
                         committed just before the kill, whose answer was lost), yet the \
                         claim stays live"
                    }
                ));
            }
            Err(format!(
                "{:?}, want {total} done; running:\n{}",
                s.tasks_by_status,
                running.join("\n")
            ))
        },
    )
    .await;
    let settled = started.elapsed();

    // Every acknowledged create is there, once.
    let tasks = all_tasks(&mut client, "", &[]).await;
    assert_eq!(
        tasks.len(),
        total,
        "no create lost, none duplicated by a retry"
    );
    let by_id: HashMap<&str, &pb::Task> = tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    for (key, id) in &creates.acked {
        let task = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("acknowledged create {key} -> {id} is missing"));
        assert_eq!(&task.idempotency_key, key);
    }

    // Every acknowledged completion is there: done, by a completed run of that epoch.
    let completions = lines_of(&ledger);
    let mut details = HashMap::new();
    for task in &tasks {
        details.insert(task.id.clone(), detail(&mut client, &task.id).await);
    }
    let completed_at = |id: &str, epoch: &str| {
        let d = &details[id];
        status_done(d)
            && d.runs
                .iter()
                .any(|r| r.epoch.to_string() == epoch && r.outcome() == pb::RunOutcome::Completed)
            && d.task
                .as_ref()
                .is_some_and(|t| t.summary == format!("epoch {epoch}"))
    };
    let mut acked_completions = HashSet::new();
    for line in &completions {
        let (id, epoch) = (&line[0], &line[1]);
        assert!(
            completed_at(id, epoch),
            "acknowledged completion of {id} at epoch {epoch} is missing: {:#?}",
            details[id.as_str()]
        );
        acked_completions.insert(id.clone());
    }
    // The only failure a worker may see: a completion committed just before the kill whose
    // answer was lost, refused on retry because its claim had ended.
    let mut lost_answers = 0;
    for line in lines_of(&failures) {
        let [id, epoch, verb, code] = line.as_slice() else {
            panic!("unexpected failure line {line:?}");
        };
        assert!(
            verb == "complete" && code == "3" && completed_at(id, epoch),
            "a worker failed: {line:?}; task: {:#?}\nkanbanctl stderr:\n{}",
            details[id.as_str()],
            tail(
                &std::fs::read_to_string(out.join("kanbanctl-stderr")).unwrap_or_default(),
                20
            )
        );
        lost_answers += 1;
    }

    // No worker was killed: every run a worker was started for completed, and no supervisor
    // lost its session. A grant whose answer the kill swallowed (no worker was ever started for
    // its run) may end `expired` or `released`, nothing else.
    let logs = fleet.logs();
    let started_runs: HashSet<String> = logs
        .iter()
        .flat_map(|(_, log)| log.lines())
        .filter(|line| line.contains("worker started"))
        .filter_map(|line| field(line, "run="))
        .collect();
    let mut lost_grants = 0;
    for d in details.values() {
        for run in &d.runs {
            match run.outcome() {
                pb::RunOutcome::Completed => {}
                pb::RunOutcome::Expired | pb::RunOutcome::Released
                    if !started_runs.contains(&run.id) =>
                {
                    lost_grants += 1;
                }
                other => panic!("run {} ended {other:?}: {d:#?}", run.id),
            }
        }
    }
    fleet.assert_running();
    // No supervisor stopped a worker: not across the restart, and not after a worker's own
    // outcome took its claim out of the renewals (a worker gets a renewal's time to end).
    let mut reattached = 0;
    for (label, log) in &logs {
        if let Some(line) = log.lines().find(|l| l.contains("stopping the worker")) {
            panic!(
                "{label} stopped a worker: {line}\nwhat it logged about its session, stream and \
                 workers:\n{}",
                grep(
                    log,
                    &[
                        "stopping", "revoked", "jeopardy", "session", "stream", "acquire"
                    ]
                )
            );
        }
        assert_eq!(
            log.matches("session open").count(),
            1,
            "{label} kept its session:\n{log}"
        );
        if log.contains("re-attaching the same session") {
            reattached += 1;
        }
    }
    assert!(
        reattached > 0,
        "the supervisors noticed the restart\n{}",
        fleet.diag(20)
    );

    let events = events_where(&mut client, "", "").await;
    let claims = assert_one_holder_at_a_time(&events);
    let rearmed = events.iter().filter(|e| e.kind == "lease_rearmed").count();
    assert_invariants(&mut client).await;

    drop(client);
    fleet.terminate(Duration::from_secs(30)).await;
    daemon.terminate().await;
    println!(
        "crash: killed after {killed_at:?} with {} of {total} creates and {} completions \
         acknowledged; back {restarted_after:?} later; {} create calls failed and were retried; \
         all done after {settled:?}; {} completions acknowledged in all, {lost_answers} lost \
         answers; \
         {claims} claims, {lost_grants} lost grants, {rearmed} lease_rearmed events; total {:?}",
        mid.0,
        mid.1,
        creates.errors.len(),
        acked_completions.len(),
        started.elapsed()
    );
}

/// The value of `name` (such as `run=`) in a log line.
fn field(line: &str, name: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(name))
        .map(str::to_owned)
}

fn status_done(detail: &pb::TaskDetail) -> bool {
    detail
        .task
        .as_ref()
        .is_some_and(|t| t.status() == pb::TaskStatus::Done)
}
