//! The real `kanbanctl` binary against a real kanband started in this process
//! (`kanband_tests::spawn_service`): output shapes, exit codes, the worker flow with a claim
//! taken by the Rust client, and `watch` following the event stream across a restart.

use std::{process::Stdio, time::Duration};

use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::{TestService, spawn_service, spawn_service_in};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt as _, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

/// How long any one expected line of `watch` output may take.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

/// Environment variables kanbanctl reads; cleared so the caller's shell cannot leak in.
const KANBAN_ENV: [&str; 11] = [
    "KANBAN_OUTPUT",
    "KANBAN_ADDR",
    "KANBAN_TOKEN",
    "KANBAN_TOKEN_FILE",
    "KANBAN_BOARD",
    "KANBAN_JSON",
    "KANBAN_TASK",
    "KANBAN_CLAIM_TOKEN",
    "KANBAN_RUN_ID",
    "KANBAN_EPOCH",
    "KANBAN_PROFILE",
];

/// What one run of kanbanctl did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Stdout parsed as one JSON value.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Asserts the exit code and returns self.
    #[track_caller]
    fn expect(self, code: i32) -> Self {
        assert_eq!(self.code, code, "exit code of {self:?}");
        self
    }
}

/// A kanbanctl command with a clean environment, talking to `addr`.
fn command(addr: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kanbanctl"));
    for name in KANBAN_ENV {
        cmd.env_remove(name);
    }
    cmd.env("KANBAN_ADDR", addr).args(args).kill_on_drop(true);
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd
}

/// Runs kanbanctl to the end.
async fn kanbanctl_env(addr: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = command(addr, args, env)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("kanbanctl runs");
    Run {
        code: output.status.code().expect("kanbanctl exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

/// Runs kanbanctl without extra environment.
async fn kanbanctl(addr: &str, args: &[&str]) -> Run {
    kanbanctl_env(addr, args, &[]).await
}

/// An address where nothing listens: a port that was just free.
fn dead_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Creates a task with kanbanctl and returns its id.
async fn create(svc: &TestService, args: &[&str]) -> String {
    let mut all = vec!["task", "create"];
    all.extend_from_slice(args);
    let run = kanbanctl(&svc.unix_addr, &all).await.expect(0);
    let id = run.stdout.trim().to_owned();
    assert!(id.starts_with("t_"), "task create prints the id: {run:?}");
    id
}

/// The status of a task, as `task show --json` reports it.
async fn status(svc: &TestService, id: &str) -> String {
    let run = kanbanctl(&svc.unix_addr, &["task", "show", id, "--json"])
        .await
        .expect(0);
    run.json()["task"]["status"]
        .as_str()
        .expect("status is a string")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_create_prints_an_id_and_show_reports_ready() {
    let svc = spawn_service().await;
    let id = create(&svc, &["--title", "first task"]).await;
    let shown = kanbanctl(&svc.unix_addr, &["task", "show", &id, "--json"])
        .await
        .expect(0)
        .json();
    // The proto3 JSON of the TaskDetail message, as grpcurl prints it: camelCase names, enums
    // by proto name, empty lists left out.
    assert_eq!(shown["task"]["id"], id.as_str());
    assert_eq!(shown["task"]["status"], "TASK_STATUS_READY");
    assert_eq!(shown["task"]["title"], "first task");
    assert_eq!(
        shown.get("runs"),
        None,
        "an empty list is left out: {shown}"
    );
    assert_eq!(shown["recentEvents"][0]["kind"], "created");

    let human = kanbanctl(&svc.unix_addr, &["task", "show", &id])
        .await
        .expect(0);
    assert!(
        human
            .stdout
            .starts_with(&format!("{id} ready \"first task\"")),
        "{human:?}"
    );

    // With --json (the same as -o json), create answers with the CreateTaskResponse.
    let created = kanbanctl(
        &svc.unix_addr,
        &["task", "create", "--title", "second", "--json"],
    )
    .await
    .expect(0)
    .json();
    assert!(created["task"]["id"].as_str().unwrap().starts_with("t_"));
    assert_eq!(created["task"]["status"], "TASK_STATUS_READY");
    assert_eq!(created["created"], true);

    // A child of an unfinished parent waits in todo; done parents promote it.
    let child = create(&svc, &["--title", "child", "--parent", &id]).await;
    assert_eq!(status(&svc, &child).await, "TASK_STATUS_TODO");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_outputs_parse() {
    let svc = spawn_service().await;
    let addr = svc.unix_addr.as_str();
    let board = kanbanctl(
        addr,
        &[
            "board",
            "create",
            "ops",
            "--name",
            "Operations",
            "--default-assignee",
            "p",
            "--json",
        ],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(board["slug"], "ops");
    assert_eq!(board["defaultAssignee"], "p");

    let boards = kanbanctl(addr, &["board", "list", "--json"])
        .await
        .expect(0)
        .json();
    let slugs: Vec<&str> = boards["boards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["default", "ops"]);
    kanbanctl(addr, &["board", "show", "ops", "--json"])
        .await
        .expect(0)
        .json();

    // Tasks on another board, through --board and KANBAN_BOARD.
    let high = kanbanctl(
        addr,
        &[
            "--board",
            "ops",
            "task",
            "create",
            "--title",
            "high",
            "--priority",
            "5",
        ],
    )
    .await
    .expect(0)
    .stdout
    .trim()
    .to_owned();
    kanbanctl_env(
        addr,
        &["create", "--title", "low", "--priority", "-5"],
        &[("KANBAN_BOARD", "ops")],
    )
    .await
    .expect(0);
    let listed = kanbanctl(
        addr,
        &[
            "task", "list", "--board", "ops", "--status", "ready", "--json",
        ],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed["tasks"][0]["id"], high.as_str());
    let todo = kanbanctl(
        addr,
        &["list", "--board", "ops", "--status", "todo", "--json"],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(todo, serde_json::json!({}), "no tasks: an empty message");

    let stats = kanbanctl(addr, &["stats", "--json"]).await.expect(0).json();
    assert_eq!(stats["tasksByStatus"]["ready"], "2", "{stats}");
    let preview = kanbanctl(
        addr,
        &[
            "dispatch",
            "preview",
            "--board",
            "ops",
            "--profile",
            "p",
            "--json",
        ],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(
        preview["candidates"][0]["task"]["id"],
        high.as_str(),
        "{preview}"
    );
    assert_eq!(preview["candidates"][0]["wouldGrant"], true);

    // Operator transitions print the task.
    let blocked = kanbanctl(
        addr,
        &[
            "task",
            "block",
            &high,
            "--reason",
            "waiting for a person",
            "--kind",
            "needs_input",
            "--json",
        ],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(blocked["status"], "TASK_STATUS_BLOCKED");
    assert_eq!(blocked["blockKind"], "BLOCK_KIND_NEEDS_INPUT");
    let unblocked = kanbanctl(addr, &["task", "unblock", &high]).await.expect(0);
    assert!(unblocked.stdout.contains(" ready "), "{unblocked:?}");
    let comment = kanbanctl(
        addr,
        &[
            "task",
            "comment",
            &high,
            "--body",
            "looks fine",
            "--author",
            "op",
            "--json",
        ],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(comment["author"], "op");
    let archived = kanbanctl(addr, &["task", "archive", &high, "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(archived["status"], "TASK_STATUS_ARCHIVED");

    let reset = kanbanctl(addr, &["board", "reset", "ops", "--json", "--yes"])
        .await
        .expect(0)
        .json();
    assert_eq!(reset["tasksRemoved"], "2", "{reset}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_things_exit_4() {
    let svc = spawn_service().await;
    let run = kanbanctl(&svc.unix_addr, &["task", "show", "t_00000000deadbeef"])
        .await
        .expect(4);
    assert!(run.stderr.starts_with("kanbanctl: "), "{run:?}");
    assert!(run.stderr.contains("not found"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    kanbanctl(&svc.unix_addr, &["board", "show", "nosuchboard"])
        .await
        .expect(4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_exits_5() {
    let run = kanbanctl(&dead_addr(), &["task", "list"]).await.expect(5);
    assert!(
        run.stderr.starts_with("kanbanctl: cannot reach kanband"),
        "{run:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix:{}", dir.path().join("none.sock").display());
    kanbanctl(&socket, &["stats"]).await.expect(5);
    // The watcher must connect once before it starts retrying.
    kanbanctl(&dead_addr(), &["watch"]).await.expect(5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usage_exits_2_before_connecting() {
    let dead = dead_addr();
    for args in [
        &["frobnicate"][..],
        &["task", "show"],
        &["task", "list", "--status", "finished"],
        &["block", "--reason", "x", "--kind", "sideways"],
        &["complete"],
    ] {
        let run = kanbanctl(&dead, args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
    }
    let run = kanbanctl("localhost", &["stats"]).await.expect(2);
    assert!(run.stderr.contains("host:port"), "names the forms: {run:?}");

    // Worker verbs outside a worker: a clear message, not a connection error.
    for args in [
        &["show"][..],
        &["complete", "--summary", "ok"],
        &["heartbeat"],
        &["comment", "--body", "hi"],
        &["request-review"],
    ] {
        let run = kanbanctl(&dead, args).await.expect(2);
        assert!(run.stderr.contains("KANBAN_TASK is not set"), "{run:?}");
    }
    let run = kanbanctl_env(
        &dead,
        &["complete", "--summary", "ok"],
        &[("KANBAN_TASK", "t_0000000000000001")],
    )
    .await
    .expect(2);
    assert!(
        run.stderr.contains("KANBAN_CLAIM_TOKEN is not set"),
        "{run:?}"
    );

    // --help documents the exit codes.
    let help = kanbanctl(&dead, &["--help"]).await.expect(0);
    assert!(help.stdout.contains("3  lease lost"), "{help:?}");
}

/// Opens a session for profile `p` and claims the one claimable task.
async fn claim(client: &mut Client) -> pb::Grant {
    let session = client
        .leases
        .open_session(pb::OpenSessionRequest {
            machine_id: "m1".into(),
            hostname: "test".into(),
            profiles: vec!["p".into()],
            capabilities: vec![],
            slots: 1,
            ttl_ms: 30_000,
            review_lane: false,
        })
        .await
        .expect("OpenSession")
        .into_inner();
    client
        .leases
        .acquire(pb::AcquireRequest {
            session_id: session.id,
            wait_ms: 0,
        })
        .await
        .expect("Acquire")
        .into_inner()
        .grant
        .expect("a grant for the ready task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_flow_heartbeat_complete_then_fenced() {
    let svc = spawn_service().await;
    let id = create(&svc, &["--title", "work", "--assignee", "p"]).await;
    let mut client = svc.tcp.clone();
    let grant = claim(&mut client).await;
    assert_eq!(grant.task.as_ref().unwrap().id, id);
    let epoch = grant.epoch.to_string();
    // The worker talks over the Unix socket, as a local supervisor's worker would.
    let env = [
        ("KANBAN_TASK", id.as_str()),
        ("KANBAN_CLAIM_TOKEN", grant.claim_token.as_str()),
        ("KANBAN_RUN_ID", grant.run_id.as_str()),
        ("KANBAN_EPOCH", epoch.as_str()),
        ("KANBAN_PROFILE", "p"),
    ];
    let addr = svc.unix_addr.as_str();

    let shown = kanbanctl_env(addr, &["show", "--json"], &env)
        .await
        .expect(0)
        .json();
    assert_eq!(shown["task"]["id"], id.as_str());
    assert_eq!(shown["task"]["status"], "TASK_STATUS_RUNNING");
    assert_eq!(shown["task"]["epoch"], grant.epoch.to_string());
    kanbanctl_env(addr, &["heartbeat", "--note", "halfway"], &env)
        .await
        .expect(0);
    let comment = kanbanctl_env(addr, &["comment", "--body", "found it", "--json"], &env)
        .await
        .expect(0)
        .json();
    assert_eq!(comment["author"], "p");
    let done = kanbanctl_env(addr, &["complete", "--summary", "ok"], &env)
        .await
        .expect(0);
    let row = done.stdout.lines().nth(1).unwrap_or_default();
    assert!(row.starts_with(&format!("{id}  done ")), "{done:?}");
    assert_eq!(status(&svc, &id).await, "TASK_STATUS_DONE");
    let detail = kanbanctl(&svc.unix_addr, &["task", "show", &id, "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(detail["task"]["summary"], "ok");
    assert_eq!(detail["runs"][0]["outcome"], "RUN_OUTCOME_COMPLETED");
    assert_eq!(detail["runs"][0]["lastHeartbeatNote"], "halfway");
    assert_eq!(detail["comments"][0]["body"], "found it");

    // The claim ended with its outcome: another outcome with the same token is refused, exit 3,
    // reason on stderr (the same `complete` retried would be answered as already recorded).
    let again = kanbanctl_env(addr, &["block", "--reason", "too late"], &env)
        .await
        .expect(3);
    // `unknown`: the token was this task's claim, but that claim has ended with its outcome
    // (not expired, revoked, superseded or reset).
    assert!(
        again
            .stderr
            .starts_with("kanbanctl: lease lost (unknown, current epoch 1"),
        "{again:?}"
    );
    kanbanctl_env(addr, &["heartbeat"], &env).await.expect(3);
}

/// A running `kanbanctl watch --json` and its output lines.
struct Watcher {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Watcher {
    fn spawn(addr: &str, args: &[&str]) -> Watcher {
        let mut all = vec!["watch", "--json"];
        all.extend_from_slice(args);
        let mut child = command(addr, &all, &[])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kanbanctl watch starts");
        let stdout = child.stdout.take().expect("piped stdout");
        Watcher {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Like [`Watcher::spawn`], from the beginning of the history.
    fn from_start(addr: &str, args: &[&str]) -> Watcher {
        let mut all = vec!["--from-start"];
        all.extend_from_slice(args);
        Watcher::spawn(addr, &all)
    }

    /// The next event printed.
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(LINE_TIMEOUT, self.lines.next_line())
            .await
            .expect("watch prints an event in time")
            .expect("read stdout")
            .expect("watch still running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Events until (and including) the `created` event of `task`.
    async fn until_created(&mut self, task: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let event = self.next().await;
            let found = event["kind"] == "created" && event["taskId"] == task;
            seen.push(event);
            if found {
                return seen;
            }
        }
    }
}

/// The ids of every event of the default board, as the service lists them.
async fn listed_event_ids(client: &mut Client) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut after_id = 0;
    loop {
        let page = client
            .tasks
            .list_events(pb::ListEventsRequest {
                board: "default".into(),
                task_id: String::new(),
                after_id,
                page_size: 1000,
            })
            .await
            .expect("ListEvents")
            .into_inner();
        if page.events.is_empty() {
            return ids;
        }
        ids.extend(page.events.iter().map(|e| e.id));
        after_id = page.next_after_id;
    }
}

fn ids(events: &[Value]) -> Vec<u64> {
    // uint64 is a string in proto3 JSON.
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_json_prints_events_and_ctrl_c_exits_0() {
    let svc = spawn_service().await;
    let first = create(&svc, &["--title", "one"]).await;
    let mut watcher = Watcher::from_start(&svc.unix_addr, &[]);
    let mut seen = watcher.until_created(&first).await;
    let second = create(&svc, &["--title", "two"]).await;
    seen.extend(watcher.until_created(&second).await);
    for event in &seen {
        assert!(
            event["kind"].is_string() && event["createdAt"].is_string(),
            "{event}"
        );
        assert_eq!(event["board"], "default");
    }
    let mut client = svc.tcp.clone();
    let printed = ids(&seen);
    let listed = listed_event_ids(&mut client).await;
    assert_eq!(
        printed,
        listed[..printed.len()],
        "every event, in order, once"
    );

    // Filters, and a resume point.
    let mut only_second = Watcher::spawn(
        &svc.unix_addr,
        &["--task", &second, "--kind", "created", "--after", "0"],
    );
    let event = only_second.next().await;
    assert_eq!(event["taskId"], second.as_str());
    only_second.child.kill().await.expect("kill the watcher");

    // Ctrl-C ends a watch cleanly.
    let pid = watcher.child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let exit = tokio::time::timeout(LINE_TIMEOUT, watcher.child.wait())
        .await
        .expect("watch ends on SIGINT")
        .expect("wait");
    assert_eq!(exit.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_across_a_restart_without_gap_or_duplicate() {
    let svc = spawn_service().await;
    // The Unix socket keeps its path across a restart on the same data directory.
    let addr = svc.unix_addr.clone();
    let before = create(&svc, &["--title", "before"]).await;
    let mut watcher = Watcher::from_start(&addr, &[]);
    let mut seen = watcher.until_created(&before).await;

    let dir = svc.stop().await;
    let svc = spawn_service_in(dir).await;
    assert_eq!(svc.unix_addr, addr);
    let after = create(&svc, &["--title", "after"]).await;
    seen.extend(watcher.until_created(&after).await);

    let printed = ids(&seen);
    let mut client = svc.tcp.clone();
    let listed = listed_event_ids(&mut client).await;
    let upto = listed
        .iter()
        .position(|&id| id == *printed.last().unwrap())
        .expect("the last printed event is listed");
    assert_eq!(printed, listed[..=upto], "no gap, no duplicate");
    watcher.child.kill().await.expect("kill the watcher");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_invariants() {
    let svc = spawn_service().await;
    create(&svc, &["--title", "checked"]).await;
    let run = kanbanctl(&svc.unix_addr, &["check"]).await.expect(0);
    assert!(run.stdout.starts_with("ok: 1 tasks"), "{run:?}");
    let report = kanbanctl(&svc.unix_addr, &["--json", "check"])
        .await
        .expect(0)
        .json();
    assert_eq!(report["ok"], true);
    assert_eq!(report.get("violations"), None, "none: left out");
    assert!(report["events"].as_str().unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_verbs_wait_for_a_restarting_kanband() {
    let svc = spawn_service().await;
    let id = create(&svc, &["--title", "outlives a restart", "--assignee", "p"]).await;
    let mut client = svc.tcp.clone();
    let grant = claim(&mut client).await;
    let addr = svc.unix_addr.clone();
    let dir = svc.stop().await;

    // kanband is down when the worker sends its heartbeat and its comment.
    let env = [
        ("KANBAN_TASK", id.as_str()),
        ("KANBAN_CLAIM_TOKEN", grant.claim_token.as_str()),
        ("KANBAN_RETRY_FOR", "30s"),
    ];
    let spawn = |args: &[&str]| {
        command(&addr, args, &env)
            .env_remove("KANBAN_LEASE_TTL_MS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kanbanctl starts")
    };
    let mut heartbeat = spawn(&["heartbeat", "--note", "during the restart"]);
    let mut comment = spawn(&["comment", "--body", "written during the restart"]);
    // Both say they are retrying (the condition that they started before kanband is back).
    let mut notes = Vec::new();
    for child in [&mut heartbeat, &mut comment] {
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = BufReader::new(stderr).lines();
        let note = tokio::time::timeout(LINE_TIMEOUT, lines.next_line())
            .await
            .expect("a note in time")
            .expect("read stderr")
            .expect("a line");
        assert!(note.contains("retrying for up to"), "{note}");
        notes.push(note);
    }
    // The outage: a deliberate duration, a few seconds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let svc = spawn_service_in(dir).await;
    assert_eq!(svc.unix_addr, addr, "the socket path is stable");

    for (name, child) in [("heartbeat", heartbeat), ("comment", comment)] {
        let output = tokio::time::timeout(LINE_TIMEOUT, child.wait_with_output())
            .await
            .expect("kanbanctl ends once kanband is back")
            .expect("kanbanctl output");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name}: {output:?} {notes:?}"
        );
    }
    let detail = kanbanctl(&svc.unix_addr, &["task", "show", &id, "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(detail["task"]["status"], "TASK_STATUS_RUNNING");
    assert_eq!(detail["runs"][0]["lastHeartbeatNote"], "during the restart");
    let comments = detail["comments"].as_array().expect("comments");
    assert_eq!(comments.len(), 1, "exactly one comment: {comments:?}");
    assert_eq!(comments[0]["body"], "written during the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_verbs_give_up_after_their_bound_and_operators_at_once() {
    let dead = dead_addr();
    let claim = [
        ("KANBAN_TASK", "t_0000000000000001"),
        ("KANBAN_CLAIM_TOKEN", "c_gone"),
    ];
    let timed = |args: &'static [&'static str], env: Vec<(&'static str, &'static str)>| {
        let dead = dead.clone();
        async move {
            let started = std::time::Instant::now();
            let mut cmd = command(&dead, args, &[]);
            cmd.env_remove("KANBAN_RETRY_FOR")
                .env_remove("KANBAN_LEASE_TTL_MS")
                .stdin(Stdio::null());
            for (name, value) in &env {
                cmd.env(name, value);
            }
            let output = cmd.output().await.expect("kanbanctl runs");
            let run = Run {
                code: output.status.code().expect("exited"),
                stdout: String::from_utf8(output.stdout).unwrap(),
                stderr: String::from_utf8(output.stderr).unwrap(),
            };
            (run, started.elapsed())
        }
    };
    let bound = Duration::from_millis(1500);

    // --retry-for bounds the retrying; then exit 5 with the last failure.
    let mut env = claim.to_vec();
    env.push(("KANBAN_RETRY_FOR", "1500ms"));
    let (run, took) = timed(&["heartbeat"], env).await;
    let run = run.expect(5);
    assert!(run.stderr.contains("retrying for up to"), "{run:?}");
    assert!(run.stderr.contains("cannot reach kanband"), "{run:?}");
    assert!(took >= bound && took < bound * 8, "{took:?}");

    // Without a flag, the claim's lease time is the bound.
    let mut env = claim.to_vec();
    env.push(("KANBAN_LEASE_TTL_MS", "1500"));
    let (run, took) = timed(&["complete", "--summary", "ok"], env).await;
    run.expect(5);
    assert!(took >= bound && took < bound * 8, "{took:?}");

    // 0 turns it off; operator commands never retry.
    let mut env = claim.to_vec();
    env.push(("KANBAN_RETRY_FOR", "0"));
    let (run, _) = timed(&["heartbeat"], env).await;
    let run = run.expect(5);
    assert!(!run.stderr.contains("retrying"), "{run:?}");
    let (run, _) = timed(&["task", "list"], claim.to_vec()).await;
    let run = run.expect(5);
    assert!(!run.stderr.contains("retrying"), "{run:?}");

    // A bad bound is a usage error.
    let mut env = claim.to_vec();
    env.push(("KANBAN_RETRY_FOR", "soon"));
    timed(&["heartbeat"], env).await.0.expect(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_holder_verbs_need_the_claim_token_as_the_exit_codes_say() {
    let svc = spawn_service().await;
    let id = create(&svc, &["--title", "commented by hand"]).await;
    let task_only = [("KANBAN_TASK", id.as_str())];
    // show and comment need only the task: a comment without a token is an operator's.
    kanbanctl_env(&svc.unix_addr, &["show"], &task_only)
        .await
        .expect(0);
    kanbanctl_env(
        &svc.unix_addr,
        &["comment", "--body", "by hand"],
        &task_only,
    )
    .await
    .expect(0);
    // Every holder verb without the token is a usage error, before anything is sent.
    for args in [
        &["heartbeat"][..],
        &["complete", "--summary", "ok"],
        &["block", "--reason", "stuck"],
        &["request-review"],
        &["request-changes", "--reason", "redo"],
    ] {
        let run = kanbanctl_env(&svc.unix_addr, args, &task_only)
            .await
            .expect(2);
        assert!(
            run.stderr.contains("KANBAN_CLAIM_TOKEN is not set"),
            "{run:?}"
        );
    }
    let help = kanbanctl(&svc.unix_addr, &["--help"]).await.expect(0);
    assert!(
        help.stdout
            .contains("request-review or request-changes without KANBAN_CLAIM_TOKEN"),
        "{help:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_exits_0_while_serving_and_5_when_unreachable() {
    let svc = spawn_service().await;
    for addr in [&svc.tcp_addr, &svc.unix_addr] {
        let run = kanbanctl(addr, &["health"]).await.expect(0);
        assert_eq!(run.stdout, "kanband: SERVING\n", "{run:?}");
        let run = kanbanctl(addr, &["health", "--service", "kanban.v1.Leases", "--json"])
            .await
            .expect(0);
        assert_eq!(run.json()["status"], "SERVING");
    }
    let run = kanbanctl(&svc.tcp_addr, &["health", "--service", "kanban.v1.Nope"]).await;
    assert_eq!(run.code, 4, "an unknown service is not found: {run:?}");
    kanbanctl(&dead_addr(), &["health"]).await.expect(5);

    // A stalled store (a write waiting past half the smallest TTL): NOT_SERVING, exit 5.
    let mut client = svc.tcp.clone();
    let write = tokio::spawn(async move { kanband_tests::calls::create(&mut client, "w").await });
    let probe = async {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let run = kanbanctl(&svc.tcp_addr, &["health", "--service", "kanban.v1.Leases"]).await;
            if run.code == 5 {
                assert_eq!(
                    run.stderr,
                    "kanbanctl: kanband is unavailable: kanban.v1.Leases is NOT_SERVING\n",
                    "{run:?}"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "never NOT_SERVING: {run:?}"
            );
        }
    };
    tokio::join!(svc.stall_store(Duration::from_millis(2_000)), probe);
    write.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_healthcheck_is_a_kanbanctl_command_line_that_works() {
    let file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/Containerfile"
    ))
    .expect("read deploy/Containerfile");
    let check = file
        .lines()
        .find_map(|line| line.trim().strip_prefix("CMD [\"kanbanctl\", "))
        .expect("the HEALTHCHECK runs kanbanctl");
    let args: Vec<String> =
        serde_json::from_str(&format!("[{check}")).expect("the HEALTHCHECK's CMD is a JSON array");
    let socket = args
        .iter()
        .position(|a| a == "--addr")
        .expect("it names the address");
    assert_eq!(args[socket + 1], "unix:/var/lib/kanband/kanband.sock");
    let svc = spawn_service().await;
    let mut args = args;
    args[socket + 1] = svc.unix_addr.clone();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    kanbanctl("", &args).await.expect(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_list_get_and_delete_a_file() {
    let svc = spawn_service().await;
    let id = create(&svc, &["--title", "with a file", "--assignee", "p"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.md");
    let bytes: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let path = file.to_str().unwrap();

    let attached = kanbanctl(&svc.unix_addr, &["attach", &id, path, "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(attached["name"], "report.md");
    assert_eq!(
        attached["mediaType"], "text/markdown",
        "guessed from the extension"
    );
    assert_eq!(attached["size"], bytes.len().to_string());
    let att_id = attached["id"].as_str().unwrap().to_owned();
    let renamed = kanbanctl(
        &svc.unix_addr,
        &["attach", &id, path, "--name", "../other name"],
    )
    .await
    .expect(0);
    assert!(renamed.stdout.contains("  ../other name\n"), "{renamed:?}");

    let listed = kanbanctl(&svc.unix_addr, &["attachments", &id])
        .await
        .expect(0);
    assert_eq!(
        listed.stdout.lines().count(),
        3,
        "a header, two rows: {listed:?}"
    );
    assert!(
        listed.stdout.starts_with("ID ")
            && listed.stdout.lines().nth(1).unwrap().starts_with(&att_id),
        "oldest first: {listed:?}"
    );

    let out = dir.path().join("copy");
    let got = kanbanctl(
        &svc.unix_addr,
        &[
            "attachment",
            "get",
            &att_id,
            "-O",
            out.to_str().unwrap(),
            "--json",
        ],
    )
    .await
    .expect(0);
    assert_eq!(got.json()["sha256"], attached["sha256"]);
    assert!(std::fs::read(&out).unwrap() == bytes, "the same bytes");
    let to_stdout = command(&svc.unix_addr, &["attachment", "get", &att_id], &[])
        .output()
        .await
        .unwrap();
    assert!(to_stdout.status.success());
    assert!(
        to_stdout.stdout == bytes,
        "without -o the bytes go to stdout"
    );

    kanbanctl(&svc.unix_addr, &["attachment", "delete", &att_id, "--yes"])
        .await
        .expect(0);
    kanbanctl(&svc.unix_addr, &["attachment", "get", &att_id])
        .await
        .expect(4);
    kanbanctl(&svc.unix_addr, &["attachments", &id])
        .await
        .expect(0);
    kanbanctl(&svc.unix_addr, &["attach", "t_0000000000000000", path])
        .await
        .expect(4);
    kanbanctl(&svc.unix_addr, &["attach", &id, "/nonexistent/file"])
        .await
        .expect(2);
    kanbanctl(&svc.unix_addr, &["attach", &id, "-"])
        .await
        .expect(2);
    kanbanctl(&svc.unix_addr, &["attachment", "get", &att_id, "--json"])
        .await
        .expect(2);

    // A worker's own task: its token from the environment fences the upload.
    let mut client = svc.tcp.clone();
    let grant = claim(&mut client).await;
    let worker = [
        ("KANBAN_TASK", id.as_str()),
        ("KANBAN_CLAIM_TOKEN", grant.claim_token.as_str()),
    ];
    kanbanctl_env(&svc.unix_addr, &["attach", &id, path], &worker)
        .await
        .expect(0);
    client
        .leases
        .complete(pb::CompleteRequest {
            claim_token: grant.claim_token.clone(),
            summary: "done".into(),
            ..Default::default()
        })
        .await
        .expect("Complete");
    let fenced = kanbanctl_env(&svc.unix_addr, &["attach", &id, path], &worker)
        .await
        .expect(3);
    assert!(fenced.stderr.contains("lease lost"), "{fenced:?}");
    // Another task: the worker's token is not sent, so it is an ordinary upload.
    let other = create(&svc, &["--title", "other"]).await;
    kanbanctl_env(&svc.unix_addr, &["attach", &other, path], &worker)
        .await
        .expect(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_formats_table_wide_and_the_proto3_json_of_the_response() {
    let svc = spawn_service().await;
    let addr = svc.unix_addr.as_str();
    let id = create(&svc, &["--title", "formatted", "--assignee", "p"]).await;

    let table = kanbanctl(addr, &["task", "list"]).await.expect(0);
    let mut lines = table.stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("ID ") && header.contains("STATUS") && header.contains("TITLE"),
        "{table:?}"
    );
    assert!(!header.contains("EPOCH"), "table leaves wide columns out");
    let row = lines.next().unwrap_or_default();
    assert!(row.starts_with(&id) && row.contains(" ready "), "{table:?}");
    let wide = kanbanctl(addr, &["task", "list", "-o", "wide"])
        .await
        .expect(0);
    let wide_header = wide.stdout.lines().next().unwrap_or_default();
    assert!(
        wide_header.starts_with(header.trim_end()) && wide_header.contains("EPOCH"),
        "wide adds columns: {wide:?}"
    );

    // -o json and --json are one thing: the response message's proto3 JSON, exactly what
    // pbjson's serde impls make of the message the service answered.
    let json = kanbanctl(addr, &["task", "list", "-o", "json"])
        .await
        .expect(0);
    let synonym = kanbanctl(addr, &["task", "list", "--json"]).await.expect(0);
    assert_eq!(json.stdout, synonym.stdout);
    let mut client = svc.tcp.clone();
    let listed = client
        .tasks
        .list_tasks(pb::ListTasksRequest {
            board: "default".into(),
            ..Default::default()
        })
        .await
        .expect("ListTasks")
        .into_inner();
    assert_eq!(json.json(), serde_json::to_value(&listed).unwrap());
    assert_eq!(json.json()["tasks"][0]["status"], "TASK_STATUS_READY");

    kanbanctl(addr, &["task", "list", "-o", "yaml"])
        .await
        .expect(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_yes_no_and_durations_as_people_type_them() {
    let svc = spawn_service().await;
    // A bare socket path, and host:port with a host name, as grpcurl and etcdctl take them.
    let path = svc.unix_addr.strip_prefix("unix:").expect("unix:PATH");
    kanbanctl(path, &["stats"]).await.expect(0);
    let host_port = svc
        .tcp_addr
        .strip_prefix("http://")
        .expect("http://HOST:PORT")
        .replace("127.0.0.1", "localhost");
    let run = kanbanctl(&host_port, &["health"]).await.expect(0);
    assert_eq!(run.stdout, "kanband: SERVING\n", "{run:?}");

    // Yes/no in the environment: six words in any case, anything else refused.
    let run = kanbanctl_env(&svc.unix_addr, &["stats"], &[("KANBAN_JSON", "Yes")])
        .await
        .expect(0);
    run.json();
    let run = kanbanctl_env(&svc.unix_addr, &["stats"], &[("KANBAN_JSON", "0")])
        .await
        .expect(0);
    assert!(run.stdout.starts_with("tasks: "), "{run:?}");
    let run = kanbanctl_env(&svc.unix_addr, &["stats"], &[("KANBAN_JSON", "maybe")])
        .await
        .expect(2);
    assert!(run.stderr.contains("yes/no"), "{run:?}");

    // `--delay 5m` is five minutes, bare numbers are still seconds.
    let id = create(&svc, &["--title", "later"]).await;
    for (delay, seconds) in [("5m", 300), ("45", 45)] {
        kanbanctl(&svc.unix_addr, &["task", "schedule", &id, "--delay", delay])
            .await
            .expect(0);
        let mut client = svc.tcp.clone();
        let task = client
            .tasks
            .get_task(pb::GetTaskRequest {
                id: id.clone(),
                recent_events: 0,
            })
            .await
            .expect("GetTask")
            .into_inner()
            .task
            .expect("task");
        let parked_for = task.scheduled_until.expect("scheduled").seconds
            - task.updated_at.expect("updated").seconds;
        assert!(
            (seconds - 1..=seconds + 1).contains(&parked_for),
            "--delay {delay}: parked for {parked_for} s"
        );
        kanbanctl(&svc.unix_addr, &["task", "promote", &id])
            .await
            .expect(0);
    }
    kanbanctl(
        &svc.unix_addr,
        &["task", "schedule", &id, "--delay", "5 fortnights"],
    )
    .await
    .expect(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_starts_at_the_newest_event_unless_told_otherwise() {
    let svc = spawn_service().await;
    let addr = svc.unix_addr.as_str();
    let before = create(&svc, &["--title", "before the watch"]).await;
    kanbanctl(addr, &["board", "create", "other"])
        .await
        .expect(0);

    // Only what happens from now on, on every board with --all-boards. Whether the watch has
    // started is only known once it prints: create tasks until it prints one of them.
    let mut watcher = Watcher::spawn(addr, &["--all-boards"]);
    let mut made = Vec::new();
    let first = loop {
        assert!(made.len() < 100, "the watcher printed nothing");
        let board = if made.len() % 2 == 0 {
            "other"
        } else {
            "default"
        };
        made.push(create(&svc, &["--title", "during", "--board", board]).await);
        match tokio::time::timeout(Duration::from_millis(300), watcher.lines.next_line()).await {
            Ok(line) => {
                let line = line.expect("read stdout").expect("watch still running");
                break serde_json::from_str::<Value>(&line).expect("JSON");
            }
            Err(_) => continue,
        }
    };
    let first_task = first["taskId"].as_str().unwrap_or_default().to_owned();
    assert!(
        made.contains(&first_task),
        "the first event is of a task made after the watch started, not {first}"
    );
    // Every board: the tasks after it, on both boards, arrive in order.
    let at = made.iter().position(|t| *t == first_task).unwrap();
    for task in &made[at + 1..] {
        let seen = watcher.until_created(task).await;
        assert!(seen.iter().all(|e| e["taskId"] != before.as_str()));
    }
    watcher.child.kill().await.expect("kill the watcher");

    // --after N and --from-start reach back.
    let mut from_start = Watcher::from_start(addr, &["--task", &before]);
    assert_eq!(from_start.next().await["taskId"], before.as_str());
    from_start.child.kill().await.expect("kill the watcher");
    let mut after = Watcher::spawn(addr, &["--after", "0", "--task", &before]);
    assert_eq!(after.next().await["taskId"], before.as_str());
    after.child.kill().await.expect("kill the watcher");
    kanbanctl(addr, &["watch", "--after", "3", "--from-start"])
        .await
        .expect(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destructive_verbs_need_yes_without_a_terminal_and_repeats_say_so() {
    let svc = spawn_service().await;
    let addr = svc.unix_addr.as_str();
    kanbanctl(addr, &["board", "create", "scratch"])
        .await
        .expect(0);
    let id = create(&svc, &["--title", "kept", "--board", "scratch"]).await;
    for args in [
        &["board", "reset", "scratch"][..],
        &["board", "archive", "scratch"],
        &["token", "revoke", "nobody"],
        &["attachment", "delete", "a_0000000000000000"],
    ] {
        // stdin is not a terminal here: refused before anything is sent.
        let run = kanbanctl(addr, args).await.expect(2);
        assert!(run.stderr.contains("pass --yes"), "{args:?}: {run:?}");
    }
    assert_eq!(
        status(&svc, &id).await,
        "TASK_STATUS_READY",
        "nothing was reset"
    );
    let run = kanbanctl(addr, &["board", "reset", "scratch", "--yes"])
        .await
        .expect(0);
    assert!(run.stdout.contains("1 tasks removed"), "{run:?}");
    kanbanctl(addr, &["-y", "token", "revoke", "nobody"])
        .await
        .expect(4);

    // The same idempotency key again: the task that exists, and a note that it did.
    let args = [
        "task",
        "create",
        "--title",
        "once",
        "--idempotency-key",
        "k1",
    ];
    let first = kanbanctl(addr, &args).await.expect(0);
    assert!(first.stderr.is_empty(), "{first:?}");
    let again = kanbanctl(addr, &args).await.expect(0);
    assert_eq!(again.stdout, first.stdout, "the same task");
    assert!(again.stderr.contains("already existed"), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_say_what_happened_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("kanband.sock");
    let run = kanbanctl(missing.to_str().unwrap(), &["stats"])
        .await
        .expect(5);
    assert!(
        run.stderr
            .contains(&format!("no socket file at {}", missing.display()))
            && run
                .stderr
                .contains("is kanband running? start it with `kanband`"),
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "one line: {run:?}");
    let run = kanbanctl(&dead_addr(), &["stats"]).await.expect(5);
    assert!(
        run.stderr
            .contains("connection refused; is kanband running?"),
        "{run:?}"
    );

    // Token refused, role refused: exit 6, saying which.
    let svc = spawn_service().await;
    let run = kanbanctl_env(&svc.tcp_addr, &["stats"], &[("KANBAN_TOKEN", "k_bogus")])
        .await
        .expect(6);
    assert!(
        run.stderr.contains("token refused (UNAUTHENTICATED)"),
        "{run:?}"
    );
    let reader = kanbanctl(
        &svc.unix_addr,
        &["token", "create", "eve", "--role", "reader"],
    )
    .await
    .expect(0)
    .stdout
    .trim()
    .to_owned();
    let run = kanbanctl_env(
        &svc.tcp_addr,
        &["board", "reset", "default", "--yes"],
        &[("KANBAN_TOKEN", &reader)],
    )
    .await
    .expect(6);
    assert!(
        run.stderr.contains("not allowed (PERMISSION_DENIED)") && run.stderr.contains("admin"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_made_with_expires_in_is_listed_with_its_expiry_and_stops_then() {
    let svc = spawn_service().await;
    let create_ci = |expires_in: &'static str| {
        let args = [
            "token",
            "create",
            "ci",
            "--role",
            "reader",
            "--expires-in",
            expires_in,
        ];
        let addr = svc.unix_addr.clone();
        async move { kanbanctl(&addr, &args).await }
    };
    for (bad, says) in [
        ("0", "more than 0"),
        ("5x", "unknown unit"),
        ("soon", "duration"),
    ] {
        let run = create_ci(bad).await.expect(2);
        assert!(run.stderr.contains(says), "{bad}: {run:?}");
    }
    let made = create_ci("1s").await.expect(0);
    assert!(made.stderr.contains("working until 20"), "{made:?}");
    let secret = made.stdout.trim().to_owned();
    let listed = kanbanctl(&svc.unix_addr, &["token", "list"])
        .await
        .expect(0)
        .stdout;
    let header = listed.lines().next().unwrap();
    assert!(header.contains("EXPIRES"), "{listed}");
    let row = |name: &str| {
        listed
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} in {listed}"))
            .to_owned()
    };
    assert!(row("admin").contains("never"), "{listed}");
    assert!(
        row("ci").contains("20") && !row("ci").contains("never"),
        "{listed}"
    );
    // Refused once the second is over, saying so.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let run = kanbanctl_env(&svc.tcp_addr, &["stats"], &[("KANBAN_TOKEN", &secret)]).await;
        if run.code != 0 {
            break run;
        }
        assert!(std::time::Instant::now() < deadline, "still works: {run:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refused.code, 6, "{refused:?}");
    assert!(refused.stderr.contains("\"ci\" expired at"), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_is_a_note_beside_the_authenticated_identity() {
    let svc = spawn_service().await;
    let secret = svc
        .unix
        .clone()
        .admin
        .create_token(pb::CreateTokenRequest {
            name: "ops-cli".into(),
            role: "operator".into(),
            ..Default::default()
        })
        .await
        .expect("CreateToken")
        .into_inner()
        .secret;
    let id = create(&svc, &["--title", "on behalf of"]).await;
    kanbanctl_env(
        &svc.tcp_addr,
        &["--actor", "admin", "task", "block", &id, "--reason", "wait"],
        &[("KANBAN_TOKEN", secret.as_str())],
    )
    .await
    .expect(0);
    let shown = kanbanctl(&svc.unix_addr, &["task", "show", &id])
        .await
        .expect(0);
    assert!(
        shown
            .stdout
            .contains("blocked by ops-cli (operator), note: admin"),
        "the forged name is only the note: {shown:?}"
    );
    let help = kanbanctl(&svc.unix_addr, &["--help"]).await.expect(0);
    assert!(
        help.stdout.contains("never instead of it"),
        "--help says what --actor is: {help:?}"
    );
}

/// The `details` of the newest event of a task, from `kanbanctl task show --json`, which must
/// be of `kind`.
async fn last_event_details(svc: &TestService, id: &str, kind: &str) -> Value {
    let shown = kanbanctl(&svc.unix_addr, &["task", "show", id, "--json"])
        .await
        .expect(0)
        .json();
    let events = shown["recentEvents"].as_array().expect("recent events");
    let last = events.last().expect("an event");
    assert_eq!(last["kind"], kind, "{shown}");
    last["details"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reason_on_block_archive_and_reclaim_reaches_the_event() {
    let svc = spawn_service().await;
    let addr = svc.unix_addr.as_str();

    let id = create(&svc, &["--title", "to block"]).await;
    kanbanctl(
        addr,
        &["task", "block", &id, "--reason", "waits for the API key"],
    )
    .await
    .expect(0);
    let details = last_event_details(&svc, &id, "blocked").await;
    assert_eq!(details["reason"], "waits for the API key");

    let id = create(&svc, &["--title", "to archive"]).await;
    kanbanctl(
        addr,
        &["task", "archive", &id, "--reason", "duplicate of t_1"],
    )
    .await
    .expect(0);
    let details = last_event_details(&svc, &id, "archived").await;
    assert_eq!(details["reason"], "duplicate of t_1");

    let id = create(&svc, &["--title", "to reclaim", "--assignee", "p"]).await;
    let mut client = svc.tcp.clone();
    assert_eq!(claim(&mut client).await.task.unwrap().id, id);
    kanbanctl(
        addr,
        &["task", "reclaim", &id, "--reason", "worker is stuck"],
    )
    .await
    .expect(0);
    let details = last_event_details(&svc, &id, "revoked").await;
    assert_eq!(details["reason"], "worker is stuck");
    assert_eq!(details["cause"], "reclaimed");

    // A reason kanband refuses fails (exit 1, invalid argument) naming the field.
    let id = create(&svc, &["--title", "kept"]).await;
    let run = kanbanctl(addr, &["task", "archive", &id, "--reason", "a\rb"])
        .await
        .expect(1);
    assert!(run.stderr.contains("reason"), "{run:?}");
    assert_eq!(status(&svc, &id).await, "TASK_STATUS_READY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_create_again_prints_the_board_as_it_is_and_says_it_already_existed() {
    let svc = spawn_service().await;
    let addr = svc.unix_addr.as_str();
    let args = [
        "board",
        "create",
        "ops",
        "--default-assignee",
        "alice",
        "--json",
    ];
    let first = kanbanctl(addr, &args).await.expect(0);
    assert!(first.stderr.is_empty(), "{first:?}");
    assert_eq!(first.json()["defaultAssignee"], "alice");

    // Again, asking for another default assignee: the board as it is, and a note.
    let again = [
        "board",
        "create",
        "ops",
        "--default-assignee",
        "bob",
        "--json",
    ];
    let again = kanbanctl(addr, &again).await.expect(0);
    assert_eq!(again.json(), first.json(), "the same board, unchanged");
    assert!(
        again
            .stderr
            .contains("board ops already existed; nothing was created or changed"),
        "{again:?}"
    );
    let human = kanbanctl(addr, &["board", "create", "ops"]).await.expect(0);
    assert!(human.stdout.contains("ops"), "{human:?}");
    assert!(human.stderr.contains("already existed"), "{human:?}");

    // An archived board keeps its slug but takes no tasks: creating it again is refused.
    kanbanctl(addr, &["board", "archive", "ops", "--yes"])
        .await
        .expect(0);
    let refused = kanbanctl(addr, &["board", "create", "ops"]).await.expect(1);
    assert!(refused.stderr.contains("already exists"), "{refused:?}");
}
