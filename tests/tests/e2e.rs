//! End to end, process level: kanband, a `kanband-gateway` supervisor and `kanbanctl`, all real
//! binaries. The worker commands are small shell scripts that call `kanbanctl` with the
//! environment the supervisor gives them.

use std::{path::Path, time::Duration};

use kanband_proto::pb;
use kanband_tests::daemon::{Daemon, Gateway, PATIENCE, data_dir, workspace_bin};
use tokio::process::Command;

/// Runs `kanbanctl` against `addr`; returns exit code and stdout.
async fn kanbanctl(addr: &str, args: &[&str]) -> (i32, String) {
    let output = Command::new(workspace_bin("kanbanctl"))
        .arg("--addr")
        .arg(addr)
        .args(args)
        .output()
        .await
        .expect("run kanbanctl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
    )
}

/// Polls the task until `check` accepts it, for up to [`PATIENCE`].
async fn until(
    daemon: &Daemon,
    id: &str,
    what: &str,
    check: impl Fn(&pb::TaskDetail) -> bool,
) -> pb::TaskDetail {
    let mut client = daemon.client().await;
    let end = tokio::time::Instant::now() + PATIENCE;
    loop {
        let detail = client
            .tasks
            .get_task(pb::GetTaskRequest {
                id: id.to_owned(),
                recent_events: 100,
            })
            .await
            .unwrap()
            .into_inner();
        if check(&detail) {
            return detail;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{what}: not within {PATIENCE:?}; last: {detail:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn status(detail: &pb::TaskDetail) -> pb::TaskStatus {
    detail
        .task
        .as_ref()
        .map_or(pb::TaskStatus::Unspecified, |t| t.status())
}

async fn create_task(addr: &str, title: &str, assignee: &str) -> String {
    let (code, id) = kanbanctl(
        addr,
        &["task", "create", "--title", title, "--assignee", assignee],
    )
    .await;
    assert_eq!(code, 0, "kanbanctl task create: {id}");
    assert!(id.starts_with("t_"), "prints the new id: {id:?}");
    id
}

fn workspaces(dir: &Path) -> std::path::PathBuf {
    dir.join("workspaces")
}

#[tokio::test]
async fn a_worker_script_heartbeats_and_completes_through_kanbanctl() {
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
    let id = create_task(&daemon.tcp_addr, "e2e", "p").await;
    let detail = until(&daemon, &id, "done", |d| status(d) == pb::TaskStatus::Done).await;
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
    let (code, json) = kanbanctl(&daemon.unix_addr, &["--json", "task", "show", &id]).await;
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&json).expect("task show --json is JSON");
    assert_eq!(shown["status"], "done");
}

#[tokio::test]
async fn a_revoked_claim_kills_the_worker_and_its_late_complete_exits_3() {
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
    let id = create_task(&daemon.tcp_addr, "revoke me", "p").await;
    let marker = |epoch: u32, what: &str| dir.path().join(format!("late-exit{what}-{epoch}"));
    let wait_for = |path: std::path::PathBuf| {
        let stderr = gateway.stderr.clone();
        async move {
            let end = tokio::time::Instant::now() + PATIENCE;
            while !path.exists() {
                assert!(
                    tokio::time::Instant::now() < end,
                    "{} never appeared; gateway stderr:\n{}",
                    path.display(),
                    stderr.lock().unwrap()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            std::fs::read_to_string(&path).unwrap()
        }
    };
    wait_for(marker(1, "-started")).await;
    let (code, said) = kanbanctl(&daemon.tcp_addr, &["task", "reclaim", &id]).await;
    assert_eq!(code, 0, "{said}");
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
    let (code, said) = kanbanctl(&daemon.tcp_addr, &["task", "archive", &id]).await;
    assert_eq!(code, 0, "{said}");
    assert_eq!(wait_for(marker(2, "")).await.trim(), "3");
    until(&daemon, &id, "archived with its last run revoked", |d| {
        status(d) == pb::TaskStatus::Archived
            && d.runs
                .last()
                .is_some_and(|r| r.outcome() == pb::RunOutcome::Revoked)
    })
    .await;
}

#[tokio::test]
async fn a_kanband_restart_does_not_kill_the_worker_and_its_completion_lands() {
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
    let id = create_task(&daemon.tcp_addr, "survive", "p").await;
    let workspace = workspaces(dir.path()).join(&id);
    until(&daemon, &id, "running", |d| {
        status(d) == pb::TaskStatus::Running && workspace.join("started").exists()
    })
    .await;

    daemon.terminate().await;
    let daemon = Daemon::start(&data).await;
    std::fs::write(workspace.join("go"), "").unwrap();
    let detail = until(&daemon, &id, "done", |d| status(d) == pb::TaskStatus::Done).await;
    assert_eq!(detail.task.unwrap().summary, "across a restart");
    assert_eq!(detail.runs.len(), 1, "the same claim, never re-granted");
    assert!(
        gateway.child.try_wait().unwrap().is_none(),
        "the supervisor is still running"
    );
}
