//! `kanband import hermes` on boards made by the real Hermes Agent 0.19 code
//! (`kanband_tests::hermes`), then kanband started on the imported data directory and every
//! field compared, through the gRPC API, with what Hermes stored.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    process::Stdio,
};

use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::{
    calls,
    daemon::{Daemon, PATIENCE, kanband_command},
    hermes,
};
use serde_json::Value;
use tokio::{io::AsyncBufReadExt as _, time::timeout};

use crate::support::shared;

/// What one `kanband import hermes` run said.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `kanband import hermes ARGS...`.
pub(crate) async fn import(args: &[&str]) -> Run {
    let output = timeout(
        PATIENCE,
        kanband_command()
            .args(["import", "hermes"])
            .args(args)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("kanband import finishes")
    .expect("run kanband import");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The `task HERMES -> KANBAND` lines of a report.
pub(crate) fn mapping(report: &str) -> HashMap<String, String> {
    report
        .lines()
        .filter_map(|line| line.trim().strip_prefix("task "))
        .filter_map(|rest| rest.split_once(" -> "))
        .map(|(from, to)| (from.to_owned(), to.to_owned()))
        .collect()
}

/// Every file under `dir` with its bytes.
pub(crate) fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn s<'a>(row: &'a Value, col: &str) -> &'a str {
    row[col].as_str().unwrap_or_default()
}

fn i(row: &Value, col: &str) -> i64 {
    row[col].as_i64().unwrap_or_default()
}

fn secs(ts: &Option<kanband_proto::Timestamp>) -> Option<i64> {
    ts.as_ref().map(|t| t.seconds)
}

fn status(hermes: &str) -> pb::TaskStatus {
    match hermes {
        "running" | "ready" => pb::TaskStatus::Ready,
        "triage" => pb::TaskStatus::Triage,
        "todo" => pb::TaskStatus::Todo,
        "scheduled" => pb::TaskStatus::Scheduled,
        "blocked" => pb::TaskStatus::Blocked,
        "review" => pb::TaskStatus::Review,
        "done" => pb::TaskStatus::Done,
        "archived" => pb::TaskStatus::Archived,
        other => panic!("status {other}"),
    }
}

fn outcome(hermes: &str) -> pb::RunOutcome {
    match hermes {
        "completed" => pb::RunOutcome::Completed,
        "blocked" => pb::RunOutcome::Blocked,
        "crashed" => pb::RunOutcome::Crashed,
        "timed_out" => pb::RunOutcome::TimedOut,
        "spawn_failed" => pb::RunOutcome::SpawnFailed,
        "gave_up" => pb::RunOutcome::GaveUp,
        "reclaimed" | "" => pb::RunOutcome::Reclaimed,
        "scheduled" => pb::RunOutcome::Scheduled,
        other => panic!("outcome {other}"),
    }
}

/// Compares one Hermes board with kanband's view of it, field by field.
async fn compare_board(
    client: &mut Client,
    slug: &str,
    board: &Value,
    ids: &HashMap<String, String>,
) {
    let tables = &board["tables"];
    let rows = |t: &str| tables[t].as_array().unwrap().clone();
    let new = |hermes: &str| {
        ids.get(hermes)
            .unwrap_or_else(|| panic!("{hermes} mapped"))
            .clone()
    };

    for task in rows("tasks") {
        let hermes_id = s(&task, "id");
        let d = calls::detail_with_events(client, &new(hermes_id), 1000).await;
        let t = d.task.clone().unwrap();
        let what = format!("{slug}/{hermes_id}");
        assert_eq!(t.board, slug, "{what}");
        assert_eq!(t.title, s(&task, "title"), "{what}");
        assert_eq!(t.body, s(&task, "body"), "{what}");
        assert_eq!(t.assignee, s(&task, "assignee"), "{what}");
        assert_eq!(t.status(), status(s(&task, "status")), "{what}");
        assert_eq!(i64::from(t.priority), i(&task, "priority"), "{what}");
        assert_eq!(t.created_by, s(&task, "created_by"), "{what}");
        assert_eq!(secs(&t.created_at), Some(i(&task, "created_at")), "{what}");
        assert_eq!(secs(&t.started_at), task["started_at"].as_i64(), "{what}");
        assert_eq!(
            secs(&t.completed_at),
            task["completed_at"].as_i64(),
            "{what}"
        );
        assert_eq!(t.tenant, s(&task, "tenant"), "{what}");
        assert_eq!(t.idempotency_key, s(&task, "idempotency_key"), "{what}");
        assert_eq!(t.result, s(&task, "result"), "{what}");
        let ws = t.workspace.clone().unwrap();
        assert_eq!(
            ws.kind().as_str_name().to_lowercase(),
            format!("workspace_kind_{}", s(&task, "workspace_kind")),
            "{what}"
        );
        assert_eq!(ws.path, s(&task, "workspace_path"), "{what}");
        assert_eq!(ws.branch, s(&task, "branch_name"), "{what}");
        assert_eq!(
            i64::from(t.max_runtime_seconds),
            i(&task, "max_runtime_seconds"),
            "{what}"
        );
        assert_eq!(i64::from(t.max_retries), i(&task, "max_retries"), "{what}");
        let options = t.worker_options.clone().unwrap_or_default();
        let skills: Vec<String> = task["skills"]
            .as_str()
            .map(|s| serde_json::from_str(s).unwrap())
            .unwrap_or_default();
        assert_eq!(options.skills, skills, "{what}");
        assert_eq!(options.model, s(&task, "model_override"), "{what}");
        assert_eq!(
            i64::from(t.consecutive_failures),
            i(&task, "consecutive_failures"),
            "{what}"
        );
        assert_eq!(
            t.last_failure_error,
            s(&task, "last_failure_error"),
            "{what}"
        );
        let kind = match task["block_kind"].as_str() {
            Some("needs_input") => pb::BlockKind::NeedsInput,
            Some(other) => panic!("block kind {other}"),
            None if s(&task, "status") == "blocked" => pb::BlockKind::None,
            None => pb::BlockKind::Unspecified,
        };
        assert_eq!(t.block_kind(), kind, "{what}");
        assert_eq!(
            i64::from(t.block_recurrences),
            i(&task, "block_recurrences"),
            "{what}"
        );
        assert!(t.current_run_id.is_empty(), "{what}: no claim came over");
        // The whole source row, every column Hermes has, is the task's source record.
        let record: Value = serde_json::from_str(&d.imported).expect("imported is JSON");
        assert_eq!(record["system"], "hermes", "{what}");
        assert_eq!(record["row"], task, "{what}");

        // Links.
        let mut parents: Vec<String> = rows("task_links")
            .iter()
            .filter(|l| s(l, "child_id") == hermes_id)
            .map(|l| new(s(l, "parent_id")))
            .collect();
        let mut children: Vec<String> = rows("task_links")
            .iter()
            .filter(|l| s(l, "parent_id") == hermes_id)
            .map(|l| new(s(l, "child_id")))
            .collect();
        parents.sort();
        children.sort();
        let (mut got_parents, mut got_children) = (d.parents.clone(), d.children.clone());
        got_parents.sort();
        got_children.sort();
        assert_eq!(got_parents, parents, "{what}");
        assert_eq!(got_children, children, "{what}");

        // Comments.
        let comments: Vec<(String, String, i64)> = rows("task_comments")
            .iter()
            .filter(|c| s(c, "task_id") == hermes_id)
            .map(|c| {
                (
                    s(c, "author").into(),
                    s(c, "body").into(),
                    i(c, "created_at"),
                )
            })
            .collect();
        let got: Vec<(String, String, i64)> = d
            .comments
            .iter()
            .map(|c| {
                (
                    c.author.clone(),
                    c.body.clone(),
                    secs(&c.created_at).unwrap(),
                )
            })
            .collect();
        assert_eq!(got, comments, "{what}");

        // Runs, with epochs 1.. and the task's epoch after them.
        let runs: Vec<Value> = rows("task_runs")
            .into_iter()
            .filter(|r| s(r, "task_id") == hermes_id)
            .collect();
        assert_eq!(d.runs.len(), runs.len(), "{what}");
        assert_eq!(t.epoch, runs.len() as u64, "{what}");
        for (n, (got, run)) in d.runs.iter().zip(&runs).enumerate() {
            assert_eq!(got.epoch, n as u64 + 1, "{what}");
            assert_eq!(got.profile, s(run, "profile"), "{what}");
            assert_eq!(got.outcome(), outcome(s(run, "outcome")), "{what}");
            assert_eq!(got.summary, s(run, "summary"), "{what}");
            assert_eq!(secs(&got.started_at), Some(i(run, "started_at")), "{what}");
            assert!(
                got.ended_at.is_some(),
                "{what}: every imported run is ended"
            );
            if run["ended_at"].is_i64() {
                assert_eq!(secs(&got.ended_at), run["ended_at"].as_i64(), "{what}");
                assert_eq!(got.error, s(run, "error"), "{what}");
            }
            assert_eq!(
                secs(&got.last_heartbeat_at),
                run["last_heartbeat_at"].as_i64(),
                "{what}"
            );
        }

        // The history: Hermes's events in order, then the import's own.
        let history: Vec<Value> = rows("task_events")
            .into_iter()
            .filter(|e| s(e, "task_id") == hermes_id)
            .collect();
        let events = calls::task_events(client, &t.id).await;
        for (got, event) in events.iter().zip(&history) {
            assert_eq!(
                got.details["hermes_event_id"],
                i(event, "id").to_string(),
                "{what}"
            );
            assert_eq!(got.details["hermes_kind"], s(event, "kind"), "{what}");
            assert_eq!(
                secs(&got.created_at),
                Some(i(event, "created_at")),
                "{what}"
            );
            if let Some(payload) = event["payload"].as_str() {
                assert_eq!(got.details["hermes_payload"], payload, "{what}");
            }
            let kind = match s(event, "kind") {
                "heartbeat" => format!("hermes_{}", s(event, "kind")),
                same => same.to_owned(),
            };
            assert_eq!(got.kind, kind, "{what}");
        }
        assert!(
            events.windows(2).all(|w| w[0].id < w[1].id),
            "{what}: ids in order"
        );
        let own: Vec<&str> = events[history.len()..]
            .iter()
            .map(|e| e.kind.as_str())
            .collect();
        if s(&task, "status") == "running" {
            assert_eq!(own, ["imported", "requeued"], "{what}");
            let requeued = events.last().unwrap();
            assert!(
                requeued.details["reason"].contains("not carried over"),
                "{requeued:?}"
            );
            assert_eq!(requeued.details["run"], d.runs.last().unwrap().id, "{what}");
        } else {
            assert_eq!(own, ["imported"], "{what}");
        }
        assert_eq!(
            events[history.len()].details["hermes_task_id"],
            hermes_id,
            "{what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hermes_install_is_imported_whole_and_served_field_by_field() {
    let _machine = shared().await;
    let root = tempfile::tempdir().unwrap();
    let source = hermes::make_boards(root.path());
    let before = files(root.path());
    let (_dir, data) = kanband_tests::daemon::data_dir();
    let data_arg = data.to_str().unwrap();
    let root_arg = root.path().to_str().unwrap();

    // A dry run reports everything and writes nothing, not even the data directory.
    let dry = import(&[root_arg, "--data-dir", data_arg, "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout.contains("dry run: nothing was written"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("would be imported into kanband board ops"),
        "{}",
        dry.stdout
    );
    assert!(!data.exists(), "a dry run created {}", data.display());

    let done = import(&[root_arg, "--data-dir", data_arg]).await;
    assert_eq!(done.code, 0, "{done:?}");
    for table in [
        "tasks                      11       11        0",
        "task_events                36       36        0",
        "task_runs                   9        9        0",
        "kanban_notify_subs          3        3        0",
        "task_attachments            1        1        0",
        "tasks                       2        2        0",
    ] {
        assert!(done.stdout.contains(table), "{table}\n{}", done.stdout);
    }
    let ids = mapping(&done.stdout);
    assert_eq!(ids.len(), 13, "{}", done.stdout);
    // The Hermes install was only read: every file is as it was. A read-only SQLite open of a
    // WAL database nobody has open leaves its (empty) WAL and shared-memory index beside it,
    // as any Hermes reader would; nothing else appears.
    let after = files(root.path());
    for (path, bytes) in &before {
        assert!(after.get(path) == Some(bytes), "{path} changed");
    }
    for (path, bytes) in &after {
        if !before.contains_key(path) {
            assert!(
                path.ends_with("kanban.db-shm")
                    || (path.ends_with("kanban.db-wal") && bytes.is_empty()),
                "{path} appeared"
            );
        }
    }

    // A second import of the same boards is a no-op.
    let again = import(&[root_arg, "--data-dir", data_arg]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        again.stdout.matches("already imported").count(),
        2,
        "{}",
        again.stdout
    );

    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    for slug in ["default", "ops"] {
        compare_board(&mut client, slug, &source[slug], &ids).await;
    }
    let ops = client
        .boards
        .get_board(pb::GetBoardRequest { slug: "ops".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ops.display_name, "Operations");
    assert_eq!(ops.metadata["hermes_description"], "Runbooks and chores");
    assert_eq!(ops.metadata["hermes_color"], "#aa3300");
    assert_eq!(ops.metadata["hermes_icon"], "wrench");
    // The attachment: its bytes copied by content, its row mapped.
    let hermes_attachment = &source["default"]["tables"]["task_attachments"][0];
    let listed = client
        .attachments
        .list(pb::ListAttachmentsRequest {
            task_id: ids[s(hermes_attachment, "task_id")].clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .attachments;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let a = &listed[0];
    assert_eq!(
        (
            a.name.as_str(),
            a.media_type.as_str(),
            a.size as i64,
            a.uploaded_by.as_str()
        ),
        (
            "notes.txt",
            "text/plain",
            i(hermes_attachment, "size"),
            "alice"
        )
    );
    assert_eq!(
        secs(&a.created_at),
        Some(i(hermes_attachment, "created_at"))
    );
    let mut download = client
        .attachments
        .download(pb::DownloadRequest { id: a.id.clone() })
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(part) = download.message().await.unwrap() {
        bytes.extend(part.chunk);
    }
    assert_eq!(
        bytes,
        std::fs::read(s(hermes_attachment, "stored_path")).unwrap()
    );
    let blobs: Vec<_> = std::fs::read_dir(data.join("attachments"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(
        blobs.len(),
        1,
        "one blob, stored once by content: {blobs:?}"
    );
    let all = calls::all_events(&mut client).await;
    assert_eq!(all.first().unwrap().id, 1);
    assert!(all.windows(2).all(|w| w[1].id == w[0].id + 1), "gap-free");
    let invariants = client
        .admin
        .check_invariants(pb::CheckInvariantsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        invariants.violations.is_empty(),
        "{:?}",
        invariants.violations
    );

    // Subscriptions: the cursor is the new id of the last event Hermes delivered, so the
    // notifier gets exactly what Hermes had not delivered: the spec's archive (its completion
    // was delivered), and the block of the never-delivered subscription.
    let default = &source["default"]["tables"];
    let subs = client
        .notifications
        .list_subscriptions(pb::ListSubscriptionsRequest {
            owner_profile: "alice".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(subs.len(), 2, "{subs:?}");
    let telegram = subs.iter().find(|s| s.platform == "telegram").unwrap();
    let slack = subs.iter().find(|s| s.platform == "slack").unwrap();
    let delivered = i(&default["kanban_notify_subs"][0], "last_event_id");
    let cursor_event = all
        .iter()
        .find(|e| {
            e.board == "default" && e.details.get("hermes_event_id") == Some(&delivered.to_string())
        })
        .unwrap();
    assert_eq!(telegram.cursor, cursor_event.id);
    assert_eq!(slack.cursor, 0, "nothing was delivered before the import");
    assert_eq!(
        (
            telegram.platform.as_str(),
            telegram.chat_id.as_str(),
            telegram.thread_id.as_str()
        ),
        ("telegram", "42", "7")
    );
    let unowned = client
        .notifications
        .list_subscriptions(pb::ListSubscriptionsRequest {
            owner_profile: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(
        unowned.len(),
        1,
        "an unowned Hermes subscription goes to the default profile"
    );
    let mut stream = client
        .notifications
        .deliver(pb::DeliverRequest {
            profiles: vec!["alice".into()],
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    for _ in 0..2 {
        let n = timeout(PATIENCE, stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let event = n.event.unwrap();
        got.push((event.task_id, event.kind));
    }
    got.sort();
    let spec = ids[s(&default["tasks"][0], "id")].clone();
    let asked = ids[s(&default["tasks"][2], "id")].clone();
    let mut want = vec![(spec, "archived".to_owned()), (asked, "blocked".to_owned())];
    want.sort();
    assert_eq!(got, want);
    drop(stream);
    daemon.terminate().await;

    // What kanband has no column for stays in the source records of runs, comments and
    // subscriptions.
    let conn = tokio_rusqlite::rusqlite::Connection::open(data.join("kanband.db")).unwrap();
    let runs: Vec<String> = conn
        .prepare("SELECT imported FROM runs ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let first: Value = serde_json::from_str(&runs[0]).unwrap();
    assert_eq!(first["row"], default["task_runs"][0]);
    let sub: String = conn
        .query_row(
            "SELECT imported FROM subscriptions ORDER BY created_at, rowid LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let sub: Value = serde_json::from_str(&sub).unwrap();
    assert_eq!(sub["row"]["user_id"], "u1");
}

/// A live Hermes: a process holding its board open in WAL mode and writing to it the whole
/// time. The import copies one consistent state without disturbing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_hermes_board_is_copied_consistently_while_hermes_keeps_writing() {
    let _machine = shared().await;
    let root = tempfile::tempdir().unwrap();
    let mut writer = tokio::process::Command::new(hermes::python())
        .arg(hermes::script("live_board.py"))
        .arg(root.path())
        .arg(hermes::wheel())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start live_board.py");
    let mut lines = tokio::io::BufReader::new(writer.stdout.take().unwrap()).lines();
    let ready = timeout(PATIENCE, lines.next_line()).await.unwrap().unwrap();
    assert_eq!(ready.as_deref(), Some("ready"));
    assert!(
        root.path().join("kanban.db-wal").exists(),
        "Hermes holds the board in WAL mode"
    );

    let (_dir, data) = kanband_tests::daemon::data_dir();
    let done = import(&[
        root.path().to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .await;
    assert_eq!(done.code, 0, "{done:?}");

    // Hermes wrote on through the import, then stops and says how many tasks it made.
    drop(writer.stdin.take());
    let total: usize = timeout(PATIENCE, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("live_board.py prints its task count")
        .parse()
        .unwrap();
    assert!(
        timeout(PATIENCE, writer.wait())
            .await
            .unwrap()
            .unwrap()
            .success()
    );
    let imported = mapping(&done.stdout).len();
    assert!(
        imported >= 3 && imported < total,
        "{imported} of {total} tasks (it kept writing)"
    );
    let check = std::process::Command::new(hermes::python())
        .args(["-c", "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])"])
        .arg(root.path().join("kanban.db"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");

    // One consistent state: every task imported came with the event Hermes wrote in the same
    // transaction (its creation), and every comment with its task.
    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    let mut comments = 0;
    for id in mapping(&done.stdout).values() {
        let d = calls::detail_with_events(&mut client, id, 100).await;
        comments += d.comments.len();
        let events = calls::task_events(&mut client, id).await;
        assert_eq!(events[0].kind, "created", "{id}");
    }
    assert!(
        comments + 1 >= imported,
        "{comments} comments for {imported} tasks"
    );
    daemon.terminate().await;
}
