//! End to end, process level: kanband, a `kanband-gateway` supervisor and `kanbanctl`, all real
//! binaries. The worker commands are small shell scripts that call `kanbanctl` with the
//! environment the supervisor gives them.

use std::path::{Path, PathBuf};

use kanband_gateway::Target;
use kanband_proto::pb;
use kanband_tests::{
    calls::status_in,
    daemon::{Daemon, Gateway, PATIENCE, data_dir},
};

use crate::support::{Ctl, detail, eventually, kanbanctl, shared};

/// Polls the task (with its last 100 events) until `check` accepts it, for up to [`PATIENCE`].
async fn until(
    daemon: &Daemon,
    id: &str,
    what: &str,
    check: impl Fn(&pb::TaskDetail) -> bool,
) -> pb::TaskDetail {
    let mut client = daemon.client().await;
    eventually(what, PATIENCE, String::new, async || {
        let detail = detail(&mut client, id).await;
        if check(&detail) {
            Ok(detail)
        } else {
            Err(format!("{detail:?}"))
        }
    })
    .await
}

async fn create_task(addr: impl Into<Target>, title: &str, assignee: &str) -> String {
    let Ctl {
        code, stdout: id, ..
    } = kanbanctl(
        addr,
        &["task", "create", "--title", title, "--assignee", assignee],
    )
    .await;
    assert_eq!(code, 0, "kanbanctl task create: {id}");
    assert!(id.starts_with("t_"), "prints the new id: {id:?}");
    id
}

fn workspaces(dir: &Path) -> PathBuf {
    dir.join("workspaces")
}

#[tokio::test]
async fn a_worker_script_heartbeats_and_completes_through_kanbanctl() {
    let _machine = shared().await;
    let (dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let _gateway = Gateway::start(
        &daemon.unix_addr,
        "p",
        "kanbanctl heartbeat --note working && kanbanctl complete --summary 'done by the script'",
        &workspaces(dir.path()),
        &["--ttl-ms", "5000"],
    )
    .await;
    let id = create_task(daemon.tcp_target(), "e2e", "p").await;
    let detail = until(&daemon, &id, "done", |d| {
        status_in(d) == pb::TaskStatus::Done
    })
    .await;
    let task = detail.task.unwrap();
    assert_eq!(task.summary, "done by the script");
    assert_eq!(detail.runs.len(), 1);
    assert_eq!(detail.runs[0].outcome(), pb::RunOutcome::Completed);
    assert_eq!(detail.runs[0].last_heartbeat_note, "working");
    let kinds: Vec<&str> = detail
        .recent_events
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    for kind in ["created", "claimed", "completed"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let Ctl {
        code, stdout: json, ..
    } = kanbanctl(&daemon.unix_addr, &["--json", "task", "show", &id]).await;
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&json).expect("task show --json is JSON");
    assert_eq!(shown["task"]["status"], "TASK_STATUS_DONE");
}

#[tokio::test]
async fn a_revoked_claim_kills_the_worker_and_its_late_complete_exits_3() {
    let _machine = shared().await;
    let (dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    // On SIGTERM the worker tries to complete anyway and records kanbanctl's exit code, per
    // epoch, outside its workspace (a new claim gets a fresh workspace).
    let out = dir.path().join("late-exit");
    let script = format!(
        "trap 'kanbanctl complete --summary late; echo $? > {out}-$KANBAN_EPOCH; exit 0' TERM; \
         touch {out}-started-$KANBAN_EPOCH; sleep 60 & wait",
        out = out.display()
    );
    let gateway = Gateway::start(
        &daemon.unix_addr,
        "p",
        &script,
        &workspaces(dir.path()),
        &["--ttl-ms", "5000", "--kill-grace-ms", "10000"],
    )
    .await;
    let id = create_task(daemon.tcp_target(), "revoke me", "p").await;
    let marker = |epoch: u32, what: &str| dir.path().join(format!("late-exit{what}-{epoch}"));
    // A marker is complete once it exists and, for an exit code, once its line is written (the
    // shell creates the file before `echo` writes to it).
    let wait_for = |path: PathBuf| {
        let stderr = gateway.stderr.clone();
        async move {
            let what = format!("{} is written", path.display());
            let diag = || format!("gateway stderr:\n{}", stderr.lock().unwrap());
            eventually(
                &what,
                PATIENCE,
                diag,
                async || match std::fs::read_to_string(&path) {
                    Ok(text) if path.to_string_lossy().contains("-started-") => Ok(text),
                    Ok(text) if text.ends_with('\n') => Ok(text),
                    Ok(text) => Err(format!("{text:?} so far")),
                    Err(err) => Err(err.to_string()),
                },
            )
            .await
        }
    };
    wait_for(marker(1, "-started")).await;
    let reclaim = kanbanctl(daemon.tcp_target(), &["task", "reclaim", &id]).await;
    assert_eq!(reclaim.code, 0, "{}", reclaim.stderr);
    assert_eq!(
        wait_for(marker(1, "")).await.trim(),
        "3",
        "a fenced complete exits 3"
    );
    let detail = until(&daemon, &id, "the revocation confirmed", |d| {
        d.runs
            .first()
            .is_some_and(|r| r.outcome() == pb::RunOutcome::Reclaimed)
    })
    .await;
    assert!(
        detail
            .runs
            .iter()
            .all(|r| r.outcome() != pb::RunOutcome::Completed),
        "the late completion did not land: {:?}",
        detail.runs
    );

    // Reclaimed work is claimed again; archiving stops that worker the same way.
    wait_for(marker(2, "-started")).await;
    let archive = kanbanctl(daemon.tcp_target(), &["task", "archive", &id]).await;
    assert_eq!(archive.code, 0, "{}", archive.stderr);
    assert_eq!(wait_for(marker(2, "")).await.trim(), "3");
    until(&daemon, &id, "archived with its last run revoked", |d| {
        status_in(d) == pb::TaskStatus::Archived
            && d.runs
                .last()
                .is_some_and(|r| r.outcome() == pb::RunOutcome::Revoked)
    })
    .await;
}

#[tokio::test]
async fn a_kanband_restart_does_not_kill_the_worker_and_its_completion_lands() {
    let _machine = shared().await;
    let (dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let script = "touch \"$KANBAN_WORKSPACE/started\"; \
                  while [ ! -e \"$KANBAN_WORKSPACE/go\" ]; do sleep 0.05; done; \
                  kanbanctl complete --summary 'across a restart'";
    let mut gateway = Gateway::start(
        &daemon.unix_addr,
        "p",
        script,
        &workspaces(dir.path()),
        &["--ttl-ms", "10000"],
    )
    .await;
    let id = create_task(daemon.tcp_target(), "survive", "p").await;
    let workspace = workspaces(dir.path()).join(&id);
    until(&daemon, &id, "running", |d| {
        status_in(d) == pb::TaskStatus::Running && workspace.join("started").exists()
    })
    .await;

    daemon.terminate().await;
    let daemon = Daemon::start(&data).await;
    std::fs::write(workspace.join("go"), "").unwrap();
    let detail = until(&daemon, &id, "done", |d| {
        status_in(d) == pb::TaskStatus::Done
    })
    .await;
    assert_eq!(detail.task.unwrap().summary, "across a restart");
    assert_eq!(detail.runs.len(), 1, "the same claim, never re-granted");
    assert!(
        gateway.child.try_wait().unwrap().is_none(),
        "the supervisor is still running"
    );
}
