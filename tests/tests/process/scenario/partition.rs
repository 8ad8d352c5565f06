//! The partition scenario, from a field report: a
//! `kanband-gateway` supervisor holding a claim is frozen with SIGSTOP past its TTL, as a
//! machine cut off from kanband would be. Its worker (its own process group) keeps running.
//!
//! - The claim expires on kanband's own clock and is granted to a second supervisor of the same
//!   profile with a higher epoch (the first run ends `expired`, the second runs).
//! - The stale worker's writes are refused: its `kanbanctl heartbeat` and `kanbanctl complete`
//!   exit 3 naming `superseded`, and nothing it wrote after the stop landed (no completion, no
//!   heartbeat note on either run, the summary is the successor's).
//! - After SIGCONT, the first supervisor finds its lease lost (jeopardy: no renewal acknowledged
//!   within its TTL; or kanband saying the session is gone), kills its worker (whose SIGTERM
//!   trap records it), and its confirmation is refused as superseded. It carries on with a new
//!   session.

use std::{path::Path, time::Duration};

use crate::support::{
    Fleet, assert_one_holder_at_a_time, detail, eventually, exclusive, grep, group_alive, sh_path,
    worker_script,
};
use kanband_proto::pb;
use kanband_tests::{
    calls::{assert_invariants, events_where},
    daemon::{Daemon, Gateway, data_dir},
};
use nix::sys::signal::Signal;
use tokio::time::Instant;

/// Lease time of both supervisors.
const TTL_MS: &str = "3000";
/// Real-time bound for each wait.
const BOUND: Duration = Duration::from_secs(30);

/// The worker, the same for both supervisors, keyed by its epoch: waits for `out/go-<epoch>`,
/// then heartbeats and completes, recording each `kanbanctl` exit code and stderr. A worker
/// whose completion was refused keeps running (as a long job would) until it is stopped; its
/// SIGTERM trap writes `out/term-<epoch>`. Every wait is bounded, so nothing outlives the test.
fn script(out: &Path) -> String {
    let out = sh_path(out);
    format!(
        r#"out={out}
e="$KANBAN_EPOCH"
trap 'echo term > "$out/term-$e.tmp"; mv "$out/term-$e.tmp" "$out/term-$e"; exit 0' TERM
echo $$ > "$out/started-$e"
i=0
while [ ! -e "$out/go-$e" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
kanbanctl heartbeat --note "epoch $e" 2> "$out/heartbeat-$e.err"
echo $? > "$out/heartbeat-$e"
kanbanctl complete --summary "epoch $e" 2> "$out/complete-$e.err"
echo $? > "$out/complete-$e.tmp"
mv "$out/complete-$e.tmp" "$out/complete-$e"
if [ "$(cat "$out/complete-$e")" != 0 ]; then
  sleep 30 &
  wait
fi
"#
    )
}

/// Reads a file the worker wrote, trimmed.
fn read(out: &Path, name: &str) -> String {
    std::fs::read_to_string(out.join(name))
        .unwrap_or_else(|err| panic!("{name}: {err}"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_supervisor_loses_its_claim_to_a_higher_epoch_and_kills_its_worker() {
    let _machine = exclusive().await;
    let started = Instant::now();
    let (dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let addr = daemon.unix_addr.clone();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let command = worker_script(dir.path(), "worker.sh", &script(&out));
    let args = ["--ttl-ms", TTL_MS, "--kill-grace-ms", "2000"];
    let mut fleet = Fleet::default();

    // Supervisor A takes the task.
    let a = Gateway::start(
        &addr,
        "p",
        &command,
        &dir.path().join("workspaces-a"),
        &args,
    )
    .await;
    let a_session = a.session.clone();
    fleet.add("A", a);
    let mut client = daemon.client().await;
    let id = client
        .tasks
        .create_task(pb::CreateTaskRequest {
            title: "partitioned".into(),
            assignee: "p".into(),
            ..Default::default()
        })
        .await
        .expect("CreateTask")
        .into_inner()
        .task
        .expect("the task")
        .id;
    eventually(
        "A's worker starts",
        BOUND,
        || fleet.diag(20),
        async || {
            if out.join("started-1").exists() {
                Ok(())
            } else {
                Err(format!("{:#?}", detail(&mut client, &id).await))
            }
        },
    )
    .await;
    let a_worker: u32 = read(&out, "started-1").parse().expect("a pid");

    // Supervisor B, same profile, waits for work. A is frozen past its TTL.
    let b = Gateway::start(
        &addr,
        "p",
        &command,
        &dir.path().join("workspaces-b"),
        &args,
    )
    .await;
    let b_session = b.session.clone();
    fleet.add("B", b);
    fleet.gateways[0].signal(Signal::SIGSTOP);
    let stopped_at = Instant::now();

    let regranted = eventually(
        "the claim expires and is granted to B with a higher epoch",
        BOUND,
        || fleet.diag(20),
        async || {
            let d = detail(&mut client, &id).await;
            let task = d.task.clone().unwrap_or_default();
            let ok = task.epoch == 2
                && task.status() == pb::TaskStatus::Running
                && d.runs.len() == 2
                && d.runs[0].outcome() == pb::RunOutcome::Expired
                && d.runs[0].session_id == a_session
                && d.runs[0].epoch == 1
                && d.runs[1].session_id == b_session
                && d.runs[1].epoch == 2
                && out.join("started-2").exists();
            if ok { Ok(d) } else { Err(format!("{d:#?}")) }
        },
    )
    .await;
    let regrant_after = stopped_at.elapsed();
    assert!(
        group_alive(a_worker),
        "A's worker is still running while A is frozen"
    );

    // The stale worker writes while A is frozen: refused as superseded, exit 3.
    std::fs::write(out.join("go-1"), "").unwrap();
    eventually(
        "the stale worker's complete returns",
        BOUND,
        || fleet.diag(20),
        async || {
            if out.join("complete-1").exists() {
                Ok(())
            } else {
                Err("no complete-1 yet".to_owned())
            }
        },
    )
    .await;
    for verb in ["heartbeat", "complete"] {
        let code = read(&out, &format!("{verb}-1"));
        let err = read(&out, &format!("{verb}-1.err"));
        assert_eq!(
            code, "3",
            "the stale worker's {verb} exits 3 (lease lost): {err}"
        );
        assert!(
            err.contains("superseded"),
            "{verb}: the reason is superseded: {err}"
        );
        assert!(
            err.contains("current epoch 2"),
            "{verb}: names the current epoch: {err}"
        );
    }

    // A resumes: it finds its lease lost and kills its worker itself.
    fleet.gateways[0].signal(Signal::SIGCONT);
    let resumed_at = Instant::now();
    eventually(
        "A stops its worker after SIGCONT",
        BOUND,
        || fleet.diag(20),
        async || {
            if out.join("term-1").exists() && !group_alive(a_worker) {
                Ok(())
            } else {
                Err(format!(
                    "term-1 recorded: {}, worker group alive: {}",
                    out.join("term-1").exists(),
                    group_alive(a_worker)
                ))
            }
        },
    )
    .await;
    let killed_after = resumed_at.elapsed();
    let a_log = fleet.logs()[0].1.clone();
    let why = grep(
        &a_log,
        &["stopping the worker", "jeopardy", "session lost", "report"],
    );
    assert!(
        a_log.contains(&format!("stopping the worker task={id}"))
            && (a_log.contains("could not renew its lease in time")
                || a_log.contains("session was lost")),
        "A stopped its worker because its lease was lost:\n{why}"
    );
    eventually(
        "A's confirmation is refused as superseded",
        BOUND,
        || fleet.diag(20),
        async || {
            let log = fleet.logs()[0].1.clone();
            let refused = log.lines().any(|l| {
                l.contains("dropping the report")
                    && l.contains(&format!("task={id}"))
                    && l.contains("reason=superseded")
            });
            if refused {
                Ok(())
            } else {
                Err(grep(&log, &["report", "stopping"]))
            }
        },
    )
    .await;

    // B's worker finishes the task: only its writes landed.
    std::fs::write(out.join("go-2"), "").unwrap();
    let d = eventually(
        "B completes the task",
        BOUND,
        || fleet.diag(20),
        async || {
            let d = detail(&mut client, &id).await;
            if d.task
                .as_ref()
                .is_some_and(|t| t.status() == pb::TaskStatus::Done)
            {
                Ok(d)
            } else {
                Err(format!("{d:#?}"))
            }
        },
    )
    .await;
    assert_eq!(read(&out, "complete-2"), "0");
    let task = d.task.clone().unwrap();
    assert_eq!(task.summary, "epoch 2", "{d:#?}");
    assert_eq!(task.epoch, 2);
    assert_eq!(d.runs.len(), 2, "{d:#?}");
    assert_eq!(d.runs[0].outcome(), pb::RunOutcome::Expired, "{d:#?}");
    assert_eq!(
        d.runs[0].last_heartbeat_note, "",
        "A's worker's heartbeat did not land"
    );
    assert_eq!(d.runs[1].outcome(), pb::RunOutcome::Completed, "{d:#?}");
    assert_eq!(d.runs[1].last_heartbeat_note, "epoch 2");
    let completions: Vec<&pb::Event> = d
        .recent_events
        .iter()
        .filter(|e| e.kind == "completed")
        .collect();
    assert_eq!(completions.len(), 1, "{:#?}", d.recent_events);
    assert_eq!(
        completions[0].details.get("epoch").map(String::as_str),
        Some("2")
    );
    assert!(!out.join("term-2").exists(), "B's worker was never stopped");

    // A carries on with a new session; both supervisors run.
    eventually(
        "A opens a new session",
        BOUND,
        || fleet.diag(20),
        async || {
            let log = fleet.logs()[0].1.clone();
            if log.matches("session open").count() >= 2 {
                Ok(())
            } else {
                Err(grep(&log, &["session"]))
            }
        },
    )
    .await;
    fleet.assert_running();
    let events = events_where(&mut client, "", "").await;
    assert_eq!(assert_one_holder_at_a_time(&events), 2);
    assert_invariants(&mut client).await;

    drop(client);
    fleet.terminate(Duration::from_secs(30)).await;
    daemon.terminate().await;
    println!(
        "partition: regranted {regrant_after:?} after SIGSTOP (ttl {TTL_MS} ms; first run {:?}), \
         A stopped its worker {killed_after:?} after SIGCONT; total {:?}",
        regranted.runs[0].outcome(),
        started.elapsed()
    );
}
