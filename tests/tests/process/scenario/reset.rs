//! Reset under load, from a field report: seven
//! `kanband-gateway` supervisors hold claims on board `load` (and on board `other`) when an
//! operator runs `kanbanctl board reset load`. In the field, re-initialising deleted the file
//! under seven live gateways: `database disk image is malformed`. Here the reset is one
//! transaction inside the database, so:
//!
//! - every holder of a `load` claim is told `board_reset` (pushed on its keep-alive stream; the
//!   supervisor logs the revocation and stops its worker, whose SIGTERM trap records that a
//!   last `kanbanctl heartbeat` is refused with exit 3 naming `board_reset`), the claims end and
//!   every such worker's process group is gone;
//! - nothing else errors: the `other` board's claims run on and complete, the supervisors keep
//!   their sessions and take new `load` work afterwards, nothing logs a warning;
//! - `PRAGMA integrity_check` on a backup taken afterwards (Admin.Backup) says `ok`.

use std::{collections::HashSet, path::Path, time::Duration};

use crate::support::{
    Fleet, assert_one_holder_at_a_time, count, detail, eventually, exclusive, kanbanctl,
    live_groups, sh_path, warnings, worker_script,
};
use kanband_proto::pb;
use kanband_tests::{
    calls::{all_tasks, assert_invariants, events_where, stats},
    daemon::{Daemon, Gateway, data_dir},
};
use tokio::time::Instant;
use tokio_rusqlite::rusqlite;

/// Supervisors, one profile each: `p0` to `p6`.
const PROFILES: usize = 7;
/// Claims each supervisor holds on `load` when the board is reset.
const LOAD_PER_PROFILE: usize = 2;
/// Lease time of the supervisors' sessions and claims.
const TTL_MS: &str = "15000";
/// Real-time bound for each wait.
const BOUND: Duration = Duration::from_secs(60);

/// The worker. While `out/hold` exists, a `load` worker waits (up to 30 s) and, on SIGTERM,
/// tries one more heartbeat and records its exit code and stderr in `out/term/<task>`; an
/// `other` worker waits for `out/go` (up to 60 s). Every worker then completes its task, and
/// records a failing `kanbanctl complete` in `out/failures`.
fn script(out: &Path) -> String {
    let out = sh_path(out);
    format!(
        r#"out={out}
if [ -e "$out/hold" ] && [ "$KANBAN_BOARD" = load ]; then
  trap 'kanbanctl heartbeat --note after-the-reset 2> "$out/term/$KANBAN_TASK.err"; echo $? > "$out/term/$KANBAN_TASK.tmp"; mv "$out/term/$KANBAN_TASK.tmp" "$out/term/$KANBAN_TASK"; exit 0' TERM
  echo $$ > "$out/started/$KANBAN_TASK"
  sleep 30 &
  wait
  echo "$KANBAN_TASK: never stopped" >> "$out/failures"
  exit 1
fi
if [ -e "$out/hold" ] && [ "$KANBAN_BOARD" = other ]; then
  echo $$ > "$out/started/$KANBAN_TASK"
  i=0
  while [ ! -e "$out/go" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
fi
kanbanctl complete --summary "done on $KANBAN_BOARD" || {{ echo "$KANBAN_TASK: kanbanctl complete exited $?" >> "$out/failures"; exit 1; }}
"#
    )
}

async fn create(
    client: &mut kanband_gateway::Client,
    board: &str,
    title: &str,
    p: usize,
) -> String {
    client
        .tasks
        .create_task(pb::CreateTaskRequest {
            board: board.to_owned(),
            title: title.to_owned(),
            assignee: format!("p{p}"),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|status| panic!("CreateTask {title}: {status}"))
        .into_inner()
        .task
        .expect("the created task")
        .id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_board_reset_under_seven_holders_revokes_only_that_board() {
    let _machine = exclusive().await;
    let started = Instant::now();
    let (dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let addr = daemon.unix_addr.clone();
    let out = dir.path().join("out");
    for sub in ["started", "term"] {
        std::fs::create_dir_all(out.join(sub)).unwrap();
    }
    std::fs::write(out.join("hold"), "").unwrap();
    for board in ["load", "other"] {
        let made = kanbanctl(&addr, &["board", "create", board]).await;
        assert_eq!(made.code, 0, "board create {board}: {made:?}");
    }

    let command = worker_script(dir.path(), "worker.sh", &script(&out));
    let slots = (LOAD_PER_PROFILE + 1).to_string();
    let mut fleet = Fleet::default();
    for p in 0..PROFILES {
        let gateway = Gateway::start(
            &addr,
            &format!("p{p}"),
            &command,
            &dir.path().join(format!("workspaces-p{p}")),
            &[
                "--slots",
                &slots,
                "--ttl-ms",
                TTL_MS,
                "--kill-grace-ms",
                "5000",
            ],
        )
        .await;
        fleet.add(format!("p{p}"), gateway);
    }

    // Every supervisor fills its slots: two `load` claims and one `other` claim each.
    let mut client = daemon.client().await;
    let mut load = Vec::new();
    let mut other = Vec::new();
    for p in 0..PROFILES {
        for i in 0..LOAD_PER_PROFILE {
            load.push(create(&mut client, "load", &format!("load {p}.{i}"), p).await);
        }
        other.push(create(&mut client, "other", &format!("other {p}"), p).await);
    }
    let all: Vec<String> = load.iter().chain(&other).cloned().collect();
    eventually(
        "every worker started",
        BOUND,
        || fleet.diag(20),
        async || {
            let missing: Vec<&String> = all
                .iter()
                .filter(|id| !out.join("started").join(id).exists())
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("not started: {missing:?}"))
            }
        },
    )
    .await;
    let live_before = stats(&mut client).await.live_claims;
    assert_eq!(live_before, all.len() as u64, "every task is held");
    let workers: Vec<(String, u32)> = fleet
        .gateways
        .iter()
        .flat_map(|g| g.started_workers())
        .collect();
    let load_pgids: Vec<u32> = workers
        .iter()
        .filter(|(task, _)| load.contains(task))
        .map(|(_, pid)| *pid)
        .collect();
    assert_eq!(
        load_pgids.len(),
        load.len(),
        "one worker per load task: {workers:?}"
    );

    // The reset, by an operator's kanbanctl.
    let reset = kanbanctl(&addr, &["--json", "--yes", "board", "reset", "load"]).await;
    assert_eq!(reset.code, 0, "board reset: {reset:?}");
    let said: serde_json::Value = serde_json::from_str(&reset.stdout).expect("JSON");
    // The ResetBoardResponse's proto3 JSON: uint64 as strings.
    assert_eq!(said["tasksRemoved"], load.len().to_string(), "{said}");
    let reset_event: u64 = said["eventId"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("event id");
    let reset_at = Instant::now();

    // Holders are told `board_reset`: their workers get SIGTERM, and a last heartbeat from the
    // trap is refused with exit 3 naming the reason.
    eventually(
        "every load worker recorded its SIGTERM",
        BOUND,
        || fleet.diag(20),
        async || {
            let missing: Vec<&String> = load
                .iter()
                .filter(|id| !out.join("term").join(id).exists())
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("no SIGTERM recorded for {missing:?}"))
            }
        },
    )
    .await;
    for id in &load {
        let code = std::fs::read_to_string(out.join("term").join(id)).unwrap();
        let err = std::fs::read_to_string(out.join("term").join(format!("{id}.err"))).unwrap();
        assert_eq!(
            code.trim(),
            "3",
            "{id}: a heartbeat after the reset exits 3 ({err})"
        );
        assert!(
            err.contains("board_reset"),
            "{id}: kanbanctl names the reason: {err}"
        );
    }
    eventually(
        "every load worker's process group is gone",
        BOUND,
        || fleet.diag(20),
        async || {
            let live = live_groups();
            let alive: Vec<&u32> = load_pgids.iter().filter(|p| live.contains(p)).collect();
            if alive.is_empty() {
                Ok(())
            } else {
                Err(format!("still alive: {alive:?}"))
            }
        },
    )
    .await;
    // The supervisors logged the revocation and confirmed it (the exit report of each stopped
    // worker); once kanband has answered every confirmation, those claims are over: only the
    // `other` claims stay live, a TTL early. (Until then they count against their sessions'
    // slots: no new work would be granted to those supervisors.)
    let answered = eventually(
        "every supervisor's confirmation of the revocation was answered",
        BOUND,
        || fleet.diag(20),
        async || {
            let logs = fleet.logs();
            let mut answers = Vec::new();
            for id in &load {
                let task = format!("task={id}");
                let lines = || logs.iter().flat_map(|(_, log)| log.lines());
                let told = lines().any(|l| {
                    l.contains("claim revoked") && l.contains(&task) && l.contains("BoardReset")
                });
                let answer = lines().find(|l| {
                    l.contains(&task)
                        && (l.contains("report: reported") || l.contains("dropping the report"))
                });
                match (told, answer) {
                    (true, Some(answer)) => answers.push(answer.to_owned()),
                    _ => return Err(format!("{id}: told {told}, answer {answer:?}")),
                }
            }
            Ok(answers)
        },
    )
    .await;
    let s = stats(&mut client).await;
    assert_eq!(
        s.live_claims,
        other.len() as u64,
        "every holder confirmed the board_reset revocation and kanband answered, yet the \
         revoked claims still count as live (they end only when their lease runs out, {TTL_MS} \
         ms after the last renewal, and hold their sessions' slots until then); kanband's \
         answers, as the supervisors logged them:\n{}",
        answered.join("\n")
    );
    let claims_ended = reset_at.elapsed();

    // The other board is untouched: its claims are the first and only ones, still running.
    for id in &other {
        let d = detail(&mut client, id).await;
        let task = d.task.clone().unwrap();
        assert_eq!(task.status(), pb::TaskStatus::Running, "{id}: {d:#?}");
        assert_eq!(task.epoch, 1, "{id}");
    }
    let gone = client
        .tasks
        .get_task(pb::GetTaskRequest {
            id: load[0].clone(),
            recent_events: 0,
        })
        .await
        .expect_err("a reset task is gone");
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone:?}");
    let load_events = events_where(&mut client, "load", "").await;
    let revoked: HashSet<&str> = load_events
        .iter()
        .filter(|e| {
            e.kind == "revoked" && e.details.get("cause").is_some_and(|c| c == "board_reset")
        })
        .map(|e| e.task_id.as_str())
        .collect();
    assert_eq!(
        revoked.len(),
        load.len(),
        "a revoked(board_reset) event per held task"
    );
    assert!(
        load_events
            .iter()
            .any(|e| e.id == reset_event && e.kind == "board_reset"),
        "the board_reset event is #{reset_event}"
    );

    // The gateways carry on: the other board's work completes, and new work on `load` is taken
    // and completed by each supervisor's own session.
    std::fs::remove_file(out.join("hold")).unwrap();
    std::fs::write(out.join("go"), "").unwrap();
    let mut fresh = Vec::new();
    for p in 0..PROFILES {
        fresh.push((
            p,
            create(&mut client, "load", &format!("after the reset {p}"), p).await,
        ));
    }
    eventually(
        "the other board's and the new tasks are done",
        BOUND,
        || fleet.diag(20),
        async || {
            let s = stats(&mut client).await;
            let want = (other.len() + fresh.len()) as u64;
            if count(&s, "done") == want {
                Ok(())
            } else {
                Err(format!("{:?}, want {want} done", s.tasks_by_status))
            }
        },
    )
    .await;
    for id in &other {
        let d = detail(&mut client, id).await;
        assert_eq!(d.runs.len(), 1, "{id}: {d:#?}");
        assert_eq!(d.runs[0].outcome(), pb::RunOutcome::Completed, "{id}");
        assert_eq!(d.task.unwrap().summary, "done on other");
    }
    for (p, id) in &fresh {
        let d = detail(&mut client, id).await;
        assert_eq!(d.runs.len(), 1, "{id}: {d:#?}");
        assert_eq!(d.runs[0].outcome(), pb::RunOutcome::Completed, "{id}");
        assert_eq!(
            d.runs[0].session_id, fleet.gateways[*p].session,
            "{id}: p{p}'s session"
        );
    }
    assert_eq!(
        std::fs::read_to_string(out.join("failures")).unwrap_or_default(),
        "",
        "worker failures"
    );
    assert_eq!(all_tasks(&mut client, "load", &[]).await.len(), fresh.len());

    // Nothing else errored: the supervisors run on with their first session, nobody warned.
    fleet.assert_running();
    for (label, log) in fleet.logs() {
        let bad = warnings(&log);
        assert!(
            bad.is_empty(),
            "kanband-gateway {label} warned:\n{}",
            bad.join("\n")
        );
        assert_eq!(
            log.matches("session open").count(),
            1,
            "{label} kept its session:\n{log}"
        );
    }
    let bad = warnings(&daemon.stderr.lock().unwrap());
    assert!(bad.is_empty(), "kanband warned:\n{}", bad.join("\n"));
    let events = events_where(&mut client, "", "").await;
    assert_one_holder_at_a_time(&events);
    assert_invariants(&mut client).await;

    // A backup taken afterwards passes integrity_check (on a copy of it).
    let written = client
        .admin
        .backup(pb::BackupRequest {
            path: "backup.db".into(),
        })
        .await
        .expect("Backup")
        .into_inner();
    assert!(written.bytes > 0);
    let backup = std::path::PathBuf::from(written.path);
    let copy = dir.path().join("backup-copy.db");
    std::fs::copy(&backup, &copy).expect("copy the backup");
    let db = rusqlite::Connection::open(&copy).expect("open the backup copy");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let per_board = |board: &str| -> i64 {
        db.query_row(
            "SELECT count(*) FROM tasks WHERE board = ?1",
            [board],
            |row| row.get(0),
        )
        .expect("count tasks")
    };
    assert_eq!(per_board("load"), fresh.len() as i64);
    assert_eq!(per_board("other"), other.len() as i64);

    drop(client);
    fleet.terminate(Duration::from_secs(30)).await;
    daemon.terminate().await;
    println!(
        "reset under load: the revoked claims ended {claims_ended:?} after the reset; total {:?}",
        started.elapsed()
    );
}
