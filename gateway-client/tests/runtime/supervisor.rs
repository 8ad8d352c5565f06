//! The supervisor runtime against a real kanband in this process: claims run as workers with
//! the claim in their environment, exits are reported, a reclaim kills the worker's process
//! group and is confirmed, a kanband restart leaves workers alone, and shutdown drains.
//!
//! Waits are bounded by real time ([`LIMIT`]) and poll the state; no fixed sleep is an
//! assertion.

use std::{collections::HashMap, future::Future, path::Path, time::Duration};

use kanband_gateway::{
    Client, Supervisor, SupervisorConfig, SupervisorError, SupervisorStatus, Target,
};
use kanband_proto::pb::{self, RunOutcome, TaskStatus};
use kanband_tests::{calls, spawn_service, spawn_service_in};
use nix::{sys::signal::killpg, unistd::Pid};
use tempfile::TempDir;
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};

/// Longest real time to wait for anything.
const LIMIT: Duration = Duration::from_secs(20);

/// The profile every test supervisor runs.
const PROFILE: &str = "p";

/// A supervisor running in a task.
struct Running {
    status: watch::Receiver<SupervisorStatus>,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), SupervisorError>>,
    root: TempDir,
}

impl Running {
    fn start(target: impl Into<Target>, command: &str, ttl_ms: u64, slots: u32) -> Running {
        let target = target.into();
        let root = tempfile::tempdir().expect("workspaces root");
        let mut config =
            SupervisorConfig::new(&target.addr, vec![PROFILE.into()], root.path(), command);
        config.token = target.token.map(kanband_gateway::Secret);
        config.ttl = Duration::from_millis(ttl_ms);
        config.slots = slots;
        config.kill_grace = Duration::from_secs(1);
        config.drain_limit = Duration::from_millis(500);
        config.acquire_wait = Duration::from_secs(5);
        let supervisor = Supervisor::new(config).expect("valid configuration");
        let status = supervisor.status();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(supervisor.run(async move {
            let _ = stopped.await;
        }));
        Running {
            status,
            stop: Some(stop),
            handle,
            root,
        }
    }

    fn status(&self) -> SupervisorStatus {
        self.status.borrow().clone()
    }

    /// The pid of the worker running `task_id`, once there is one.
    async fn worker_pid(&self, task_id: &str) -> i32 {
        eventually("the worker starts", || async {
            self.status()
                .workers
                .iter()
                .find(|w| w.task_id == task_id)
                .map(|w| w.pid as i32)
        })
        .await
    }

    /// Asks for shutdown and waits for the drain to end.
    async fn shutdown(mut self) -> TempDir {
        let _ = self.stop.take().expect("running").send(());
        tokio::time::timeout(LIMIT, &mut self.handle)
            .await
            .expect("the supervisor drains within the limit")
            .expect("the supervisor task")
            .expect("the supervisor ends cleanly");
        assert_eq!(self.status().session_id, None);
        self.root
    }
}

/// Polls `probe` every 50 ms until it returns `Some`, for up to [`LIMIT`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{what}: not reached within {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a task for [`PROFILE`], with a workspace if given.
async fn create(client: &Client, title: &str, workspace: Option<pb::Workspace>) -> pb::Task {
    let request = pb::CreateTaskRequest {
        assignee: PROFILE.into(),
        workspace,
        ..calls::new_task("", title)
    };
    calls::create_with(&mut client.clone(), request)
        .await
        .task
        .expect("task")
}

/// A task with its runs.
async fn detail(client: &Client, id: &str) -> pb::TaskDetail {
    calls::detail(&mut client.clone(), id).await
}

fn group_alive(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
}

fn read_env(path: &Path) -> Option<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_runs_with_its_environment_and_its_exit_is_reported() {
    let svc = spawn_service().await;
    let sup = Running::start(
        svc.tcp_target(),
        "echo hello from {task}; env > env.tmp && mv env.tmp env.txt; exit 0",
        30_000,
        1,
    );
    let task = create(&svc.tcp, "print the environment", None).await;
    let workspace = sup.root.path().join(&task.id);

    let env = eventually("the worker writes its environment", || async {
        read_env(&workspace.join("env.txt"))
    })
    .await;
    let session = sup.status().session_id.expect("a session is open");
    assert!(session.starts_with("s_"), "{session}");
    assert_eq!(env["KANBAN_TASK"], task.id);
    assert_eq!(env["HERMES_KANBAN_TASK"], task.id);
    assert_eq!(env["KANBAN_BOARD"], "default");
    assert_eq!(env["HERMES_KANBAN_BOARD"], "default");
    assert_eq!(env["KANBAN_PROFILE"], PROFILE);
    assert_eq!(env["KANBAN_ADDR"], svc.tcp_addr);
    assert!(env["KANBAN_CLAIM_TOKEN"].len() > 8, "{env:?}");
    assert!(env["KANBAN_RUN_ID"].starts_with("r_"));
    assert_eq!(env["HERMES_KANBAN_RUN_ID"], env["KANBAN_RUN_ID"]);
    assert!(env["KANBAN_EPOCH"].parse::<u64>().expect("epoch") >= 1);
    let dir = std::fs::canonicalize(&workspace).unwrap();
    for var in ["KANBAN_WORKSPACE", "HERMES_KANBAN_WORKSPACE", "PWD"] {
        assert_eq!(std::fs::canonicalize(&env[var]).unwrap(), dir, "{var}");
    }

    // Exit 0 without an outcome is a protocol violation: the run ends crashed with the exit
    // code (its output is no error, so not in the run's error), the task goes back to ready,
    // is claimed again, and after three in a row it is blocked.
    let runs = eventually(
        "three exits are reported and the task is blocked",
        || async {
            let d = detail(&svc.tcp, &task.id).await;
            let t = d.task.expect("task");
            (t.status() == TaskStatus::Blocked).then_some(d.runs)
        },
    )
    .await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    for run in &runs {
        assert_eq!(run.exit_code, Some(0), "{run:?}");
        assert_eq!(run.outcome(), RunOutcome::Crashed, "{run:?}");
        assert_eq!(
            run.error, "the worker exited 0 without reporting an outcome",
            "{run:?}"
        );
        assert_eq!(run.session_id, session);
    }
    assert!(
        runs.iter().any(|r| r.id == env["KANBAN_RUN_ID"]),
        "the environment named one of the runs"
    );
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_completes_and_exits_0_leaves_no_error_and_a_crash_keeps_its_output() {
    let svc = spawn_service().await;
    // The worker prints, hands over its claim, waits until the test has completed the task
    // with it, prints more and exits with the code the test leaves in `go`.
    let sup = Running::start(
        svc.tcp_target(),
        "echo progress of {task}; env > env.tmp && mv env.tmp env.txt; \
         until [ -e go ]; do sleep 0.05; done; echo finishing up; exit $(cat go)",
        30_000,
        1,
    );
    let done = create(&svc.tcp, "completes, then exits 0", None).await;
    let env = eventually("the worker writes its environment", || async {
        read_env(&sup.root.path().join(&done.id).join("env.txt"))
    })
    .await;
    calls::complete(&mut svc.tcp.clone(), &env["KANBAN_CLAIM_TOKEN"])
        .await
        .expect("Complete");
    std::fs::write(sup.root.path().join(&done.id).join("go"), "0").unwrap();
    let run = eventually("the exit 0 is reported", || async {
        let runs = detail(&svc.tcp, &done.id).await.runs;
        runs.into_iter().find(|r| r.exit_code.is_some())
    })
    .await;
    assert_eq!(run.outcome(), RunOutcome::Completed, "{run:?}");
    assert_eq!(run.exit_code, Some(0));
    assert_eq!(run.error, "", "a clean exit's output is no error: {run:?}");

    // A failed exit still carries the output's end, as the run's error.
    let crashed = create(&svc.tcp, "exits 3", None).await;
    eventually("the worker writes its environment", || async {
        read_env(&sup.root.path().join(&crashed.id).join("env.txt"))
    })
    .await;
    std::fs::write(sup.root.path().join(&crashed.id).join("go"), "3").unwrap();
    let run = eventually("the exit 3 is reported", || async {
        let runs = detail(&svc.tcp, &crashed.id).await.runs;
        runs.into_iter().find(|r| r.exit_code.is_some())
    })
    .await;
    assert_eq!(run.outcome(), RunOutcome::Crashed, "{run:?}");
    assert!(run.error.contains("finishing up"), "{run:?}");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_failures_are_reported() {
    let svc = spawn_service().await;
    let sup = Running::start(svc.tcp_target(), "exit 0", 30_000, 1);
    let missing = pb::Workspace {
        kind: pb::WorkspaceKind::Dir.into(),
        path: "/nonexistent/kanband-gateway-test".into(),
        branch: String::new(),
    };
    let task = create(&svc.tcp, "runs nowhere", Some(missing)).await;
    let run = eventually("the spawn failure is reported", || async {
        detail(&svc.tcp, &task.id)
            .await
            .runs
            .into_iter()
            .find(|r| r.outcome() == RunOutcome::SpawnFailed)
    })
    .await;
    assert!(run.error.contains("workspace"), "{run:?}");
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reclaim_kills_the_worker_group_and_is_confirmed_and_shutdown_drains() {
    let svc = spawn_service().await;
    // The shell stays (it runs two commands), so the group has two processes.
    let sup = Running::start(svc.tcp_target(), "sleep 30; true", 30_000, 1);
    let task = create(&svc.tcp, "sleep", None).await;
    let pgid = sup.worker_pid(&task.id).await;
    assert!(group_alive(pgid));
    let first = detail(&svc.tcp, &task.id).await.task.expect("task");
    assert_eq!(first.status(), TaskStatus::Running);

    svc.tcp
        .tasks
        .clone()
        .reclaim_task(pb::ReclaimTaskRequest {
            id: task.id.clone(),
            actor: "test".into(),
            grace_seconds: 0,
            reason: String::new(),
        })
        .await
        .expect("ReclaimTask");

    // The lease is 30 s, so only the supervisor's confirmation can end the run this soon.
    eventually("the worker's process group is gone", || async {
        (!group_alive(pgid)).then_some(())
    })
    .await;
    let d = eventually("the revocation is confirmed", || async {
        let d = detail(&svc.tcp, &task.id).await;
        (d.runs.first()?.outcome() == RunOutcome::Reclaimed).then_some(d)
    })
    .await;
    assert!(
        d.recent_events.iter().any(|e| e.kind == "requeued")
            || d.task.as_ref().unwrap().status() != TaskStatus::Running
            || d.runs.len() > 1,
        "the task went back to ready: {d:?}"
    );

    // Back to ready, the task is claimed again (a new epoch). Shutdown lets the worker run up
    // to the drain limit, then stops it and releases the claim without counting a failure.
    let again = eventually("the task is claimed again", || async {
        let w = sup.status().workers.into_iter().next()?;
        (w.epoch > first.epoch).then_some(w)
    })
    .await;
    sup.shutdown().await;
    // Killed at the end of the drain (stragglers are reaped by init, hence the wait).
    eventually("the drained worker's group is gone", || async {
        (!group_alive(again.pid as i32)).then_some(())
    })
    .await;
    let d = detail(&svc.tcp, &task.id).await;
    let t = d.task.expect("task");
    assert_eq!(t.status(), TaskStatus::Ready, "{t:?}");
    assert_eq!(t.consecutive_failures, 0);
    let last = d.runs.last().expect("runs");
    assert_eq!(last.outcome(), RunOutcome::Released, "{last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kanband_restart_leaves_workers_running_and_their_exits_are_reported() {
    let svc = spawn_service().await;
    let unix = svc.unix_addr.clone();
    let client = svc.unix.clone();
    // Each worker waits for a file in its workspace, then exits 3.
    let sup = Running::start(
        &unix,
        r#"while [ ! -e go ]; do sleep 0.05; done; exit 3"#,
        10_000,
        2,
    );
    let early = create(&client, "exits while kanband is down", None).await;
    let late = create(&client, "exits after the restart", None).await;
    let early_pid = sup.worker_pid(&early.id).await;
    let late_pid = sup.worker_pid(&late.id).await;
    let session = sup.status().session_id.expect("session");

    let dir = svc.stop().await;
    eventually("the supervisor sees the stream go", || async {
        (!sup.status().attached).then_some(())
    })
    .await;
    assert!(group_alive(early_pid) && group_alive(late_pid));
    std::fs::write(sup.root.path().join(&early.id).join("go"), "").unwrap();
    eventually("the early worker exits", || async {
        (!group_alive(early_pid)).then_some(())
    })
    .await;

    let svc = spawn_service_in(dir).await;
    assert_eq!(svc.unix_addr, unix, "the socket path is stable");
    let client = svc.unix.clone();
    let early_run = eventually("the early exit is reported after the restart", || async {
        detail(&client, &early.id)
            .await
            .runs
            .into_iter()
            .find(|r| r.exit_code.is_some())
    })
    .await;
    assert_eq!(early_run.exit_code, Some(3), "{early_run:?}");
    assert_eq!(early_run.outcome(), RunOutcome::Crashed);

    // The same session is re-attached and renewed with the late worker's claim still live.
    eventually("the stream is re-attached", || async {
        sup.status().attached.then_some(())
    })
    .await;
    assert_eq!(sup.status().session_id.as_deref(), Some(session.as_str()));
    assert!(group_alive(late_pid), "the restart did not kill the worker");
    std::fs::write(sup.root.path().join(&late.id).join("go"), "").unwrap();
    let late_run = eventually("the late exit is reported", || async {
        detail(&client, &late.id)
            .await
            .runs
            .into_iter()
            .find(|r| r.exit_code.is_some())
    })
    .await;
    assert_eq!(late_run.exit_code, Some(3), "{late_run:?}");
    assert_eq!(late_run.outcome(), RunOutcome::Crashed);
    assert_eq!(late_run.session_id, session);

    // The same session was re-attached, never replaced.
    let status = sup.status();
    assert_eq!(status.session_id.as_deref(), Some(session.as_str()));
    assert_eq!(status.sessions_opened, 1);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jeopardy_kills_workers_when_renewals_go_unanswered() {
    let svc = spawn_service().await;
    let unix = svc.unix_addr.clone();
    // A 2 s lease: jeopardy 1.5 s after the last acknowledged renewal was sent.
    let sup = Running::start(&unix, "sleep 30; true", 2_000, 1);
    let task = create(&svc.unix, "outlives its lease", None).await;
    let pgid = sup.worker_pid(&task.id).await;
    let first_session = sup.status().session_id.expect("session");

    // kanband stays down: nothing can be renewed, so the supervisor kills the worker itself.
    let dir = svc.stop().await;
    eventually("jeopardy kills the worker's group", || async {
        (!group_alive(pgid)).then_some(())
    })
    .await;
    assert!(sup.status().workers.is_empty());

    // Back up, a new session is opened; the old claim was given back (or ran out), and the
    // task runs again under the new session.
    let svc = spawn_service_in(dir).await;
    let second = eventually("a new session takes the task", || async {
        let s = sup.status();
        let id = s.session_id.clone()?;
        let w = s.workers.first()?.clone();
        (id != first_session).then_some((id, w))
    })
    .await;
    assert!(sup.status().sessions_opened >= 2);
    let d = detail(&svc.unix, &task.id).await;
    let first_run = d.runs.first().expect("runs");
    assert!(
        matches!(
            first_run.outcome(),
            RunOutcome::Released | RunOutcome::Expired
        ),
        "{first_run:?}"
    );
    assert_eq!(first_run.session_id, first_session);
    assert_eq!(d.runs.last().unwrap().session_id, second.0);
    assert_eq!(d.task.unwrap().consecutive_failures, 0);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_kills_its_workers_and_a_new_one_is_opened() {
    let svc = spawn_service().await;
    let sup = Running::start(svc.tcp_target(), "sleep 30; true", 30_000, 1);
    let task = create(&svc.tcp, "loses its session", None).await;
    let pgid = sup.worker_pid(&task.id).await;
    let first_session = sup.status().session_id.expect("session");

    // Closing the session from outside makes kanband end the keep-alive stream with ABORTED.
    svc.tcp
        .leases
        .clone()
        .close_session(pb::CloseSessionRequest {
            session_id: first_session.clone(),
        })
        .await
        .expect("CloseSession");
    eventually("the worker's group is killed", || async {
        (!group_alive(pgid)).then_some(())
    })
    .await;
    eventually("a new session runs the task again", || async {
        let s = sup.status();
        (s.session_id.as_ref()? != &first_session && !s.workers.is_empty()).then_some(())
    })
    .await;
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_worker_is_released_not_counted_as_a_crash() {
    let svc = spawn_service().await;
    // Each worker runs in a directory the test prepared, whose `mode` file says how it meets
    // SIGTERM: `trap` exits 143 from its trap, `die` is killed by the signal, `finish` waits in
    // its trap until the test has completed the claim with the worker's own token, then exits 0.
    let script = r#"env > env.tmp && mv env.tmp env.txt
case "$(cat mode)" in
  trap) trap 'echo term > term.txt; exit 143' TERM ;;
  finish) trap 'echo term > term.txt; while [ ! -e done ]; do sleep 0.05; done; exit 0' TERM ;;
esac
while true; do sleep 0.05; done"#;
    let sup = Running::start(svc.tcp_target(), script, 30_000, 3);
    let mut workers = Vec::new();
    for mode in ["trap", "die", "finish"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mode"), mode).unwrap();
        let workspace = pb::Workspace {
            kind: pb::WorkspaceKind::Dir.into(),
            path: dir.path().display().to_string(),
            branch: String::new(),
        };
        let task = create(&svc.tcp, mode, Some(workspace)).await;
        let pgid = sup.worker_pid(&task.id).await;
        let env = eventually("the worker writes its environment", || async {
            read_env(&dir.path().join("env.txt"))
        })
        .await;
        workers.push((mode, task, dir, pgid, env));
    }

    // An operator asks for each worker to stop within 30 s: kanband pushes cancel_requested,
    // the supervisor sends SIGTERM, and the worker's exit is confirmed long before the grace
    // (and the 30 s lease) could end the run.
    for (_, task, ..) in &workers {
        svc.tcp
            .tasks
            .clone()
            .reclaim_task(pb::ReclaimTaskRequest {
                id: task.id.clone(),
                actor: "test".into(),
                grace_seconds: 30,
                reason: String::new(),
            })
            .await
            .expect("ReclaimTask");
    }
    let (_, _, finish_dir, _, finish_env) = &workers[2];
    eventually("the finishing worker gets SIGTERM", || async {
        finish_dir.path().join("term.txt").exists().then_some(())
    })
    .await;
    svc.tcp
        .leases
        .clone()
        .complete(pb::CompleteRequest {
            claim_token: finish_env["KANBAN_CLAIM_TOKEN"].clone(),
            summary: "finished in its SIGTERM trap".into(),
            ..Default::default()
        })
        .await
        .expect("the worker's own outcome, within the grace");
    std::fs::write(finish_dir.path().join("done"), "").unwrap();

    for (mode, task, dir, pgid, _) in &workers {
        eventually("the worker's group is gone", || async {
            (!group_alive(*pgid)).then_some(())
        })
        .await;
        if *mode != "die" {
            assert!(dir.path().join("term.txt").exists(), "{mode}: no SIGTERM");
        }
        let d = eventually("the first run ends", || async {
            let d = detail(&svc.tcp, &task.id).await;
            (d.runs.first()?.outcome() != RunOutcome::Unspecified).then_some(d)
        })
        .await;
        let run = d.runs.first().unwrap();
        let t = d.task.as_ref().unwrap();
        if *mode == "finish" {
            // The worker's own outcome stands; the supervisor's release is refused and dropped.
            assert_eq!(run.outcome(), RunOutcome::Completed, "{run:?}");
            assert_eq!(t.status(), TaskStatus::Done, "{t:?}");
        } else {
            // Stopped on request: released (how kanband words that outcome is its own
            // business), never a crash, and no failure counted.
            assert!(
                matches!(
                    run.outcome(),
                    RunOutcome::Released | RunOutcome::Reclaimed | RunOutcome::Revoked
                ),
                "{mode}: {run:?}"
            );
            assert_eq!(run.exit_code, None, "{mode}: {run:?}");
            assert_eq!(t.consecutive_failures, 0, "{mode}: {t:?}");
        }
    }
    sup.shutdown().await;
}
