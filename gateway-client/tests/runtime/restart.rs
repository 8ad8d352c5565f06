//! A restart of the real `kanband` binary shorter than the supervisor's tolerated outage
//! ([`jeopardy::longest_tolerated_restart`]) costs no worker: the supervisor (the library, in
//! this process) keeps its workers and its session through the outage, re-attaches as soon
//! as kanband serves again, and every worker's own `kanbanctl complete` lands afterwards.
//!
//! The binaries come from the workspace's target directory (`cargo build --workspace --bins`,
//! which `scripts/test` runs first). The outage is the one deliberate duration here; every
//! other wait is for a condition.
//!
//! `KANBAN_RESTART_TTL_MS` and `KANBAN_RESTART_OUTAGES_MS` (comma-separated) drive the ignored
//! `measure_the_tolerated_restart`, which prints, for each outage, whether the workers lived.

use std::{
    future::Future,
    path::Path,
    time::{Duration, Instant},
};

use kanband_gateway::{Supervisor, SupervisorConfig, SupervisorStatus, supervisor::jeopardy};
use kanband_proto::pb::{self, RunOutcome, TaskStatus};
use kanband_tests::daemon::{self, Daemon};
use nix::{sys::signal::killpg, unistd::Pid};
use tokio::sync::{oneshot, watch};

/// Longest real time to wait for any condition.
const LIMIT: Duration = Duration::from_secs(60);

/// Polls `probe` every 20 ms until it returns `Some`, for up to [`LIMIT`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + LIMIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < end, "{what}: not reached within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn group_alive(pgid: u32) -> bool {
    killpg(Pid::from_raw(pgid as i32), None).is_ok()
}

/// What one restart did to a supervisor's workers.
#[derive(Debug)]
struct Restart {
    /// From SIGTERM to kanband's ready line on the same data directory.
    outage: Duration,
    /// When the supervisor tried to connect during the outage, and last when it was renewed
    /// again.
    attempts: Vec<Instant>,
    /// From kanband's ready line to the supervisor being renewed again.
    reattached_after: Duration,
    /// The same session was re-attached and every worker was still alive.
    survived: bool,
}

impl Restart {
    /// The longest time between two connection attempts, the last being the one that worked.
    /// A doubling backoff that is not held down shows here however its jitter falls: its
    /// attempt before kanband's return is followed by a delay of at least 1.6 s.
    fn widest_gap(&self) -> Duration {
        self.attempts
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default()
    }
}

/// Listens on kanband's socket path while kanband is down, noting when each connection
/// arrives and dropping it at once: how often the supervisor tries to reconnect.
fn note_attempts(path: &Path) -> (tokio::task::JoinHandle<Vec<Instant>>, oneshot::Sender<()>) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => panic!("remove {}: {err}", path.display()),
    }
    let listener = tokio::net::UnixListener::bind(path).expect("bind the socket path");
    let (done, mut finished) = oneshot::channel::<()>();
    let path = path.to_owned();
    let task = tokio::spawn(async move {
        let mut attempts = Vec::new();
        loop {
            tokio::select! {
                _ = &mut finished => break,
                accepted = listener.accept() => {
                    accepted.expect("accept");
                    attempts.push(Instant::now());
                }
            }
        }
        drop(listener);
        std::fs::remove_file(&path).expect("remove the socket path");
        attempts
    });
    (task, done)
}

/// A kanband on a fresh data directory, a supervisor with `workers` running workers (each
/// waits for a `go` file in its workspace, then completes its own claim with kanbanctl); then
/// kanband is stopped with SIGTERM, left down for `down`, and started again on the same data
/// directory. With `finish`, the workers are then let go and every task must end done by its
/// worker's own outcome.
async fn restart(ttl: Duration, down: Duration, workers: usize, finish: bool) -> Restart {
    let (_tmp, data) = daemon::data_dir();
    let kanband = Daemon::start(&data).await;
    let addr = kanband.unix_addr.clone();
    let kanbanctl = daemon::workspace_bin("kanbanctl");
    let command = format!(
        "while [ ! -e go ]; do sleep 0.05; done; exec '{}' complete --summary 'done after a restart'",
        kanbanctl.display()
    );
    let root = tempfile::tempdir().unwrap();
    let mut config = SupervisorConfig::new(&addr, vec!["p".into()], root.path(), command);
    config.ttl = ttl;
    config.slots = workers as u32;
    config.drain_limit = Duration::from_millis(500);
    let supervisor = Supervisor::new(config).expect("valid configuration");
    let status: watch::Receiver<SupervisorStatus> = supervisor.status();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(supervisor.run(async move {
        let _ = stopped.await;
    }));

    let client = kanband.client().await;
    let mut ids = Vec::new();
    for n in 0..workers {
        let task = client
            .tasks
            .clone()
            .create_task(pb::CreateTaskRequest {
                title: format!("survives a restart {n}"),
                assignee: "p".into(),
                ..Default::default()
            })
            .await
            .expect("CreateTask")
            .into_inner()
            .task
            .expect("task");
        ids.push(task.id);
    }
    let before = eventually("every worker runs, renewed", || async {
        let s = status.borrow().clone();
        (s.attached && s.workers.len() == workers).then_some(s)
    })
    .await;
    let session = before.session_id.clone().expect("session");

    let stopped_at = Instant::now();
    kanband.terminate().await;
    let socket = Path::new(addr.strip_prefix("unix:").expect("a unix: address"));
    let (noting, done) = note_attempts(socket);
    // The outage itself: a deliberate duration, not a wait for anything.
    tokio::time::sleep(down.saturating_sub(stopped_at.elapsed())).await;
    let _ = done.send(());
    let attempts = noting.await.expect("the listener task");
    let kanband = Daemon::start(&data).await;
    let outage = stopped_at.elapsed();
    assert_eq!(kanband.unix_addr, addr, "the socket path is stable");

    // Either the session is re-attached, or jeopardy killed the workers and a new one is open.
    let after = eventually("the supervisor is renewed again", || async {
        let s = status.borrow().clone();
        s.attached.then_some(s)
    })
    .await;
    let reattached_after = stopped_at.elapsed() - outage;
    let mut attempts = attempts;
    attempts.push(Instant::now());
    let survived = after.session_id.as_deref() == Some(session.as_str())
        && after.sessions_opened == 1
        && before.workers.iter().all(|w| group_alive(w.pid));

    if finish {
        assert!(survived, "outage {outage:?}: workers were lost: {after:?}");
        for w in &before.workers {
            std::fs::write(root.path().join(&w.task_id).join("go"), "").unwrap();
        }
        let client = kanband.client().await;
        for id in &ids {
            let detail = eventually("the worker's completion lands", || async {
                let d = client
                    .tasks
                    .clone()
                    .get_task(pb::GetTaskRequest {
                        id: id.clone(),
                        recent_events: 100,
                    })
                    .await
                    .expect("GetTask")
                    .into_inner();
                (d.task.as_ref()?.status() == TaskStatus::Done).then_some(d)
            })
            .await;
            assert_eq!(
                detail.runs.len(),
                1,
                "one run, never re-granted: {detail:?}"
            );
            let run = &detail.runs[0];
            assert_eq!(run.outcome(), RunOutcome::Completed, "{run:?}");
            assert_eq!(run.session_id, session, "{run:?}");
        }
    }
    let _ = stop.send(());
    tokio::time::timeout(LIMIT, running)
        .await
        .expect("the supervisor drains")
        .expect("the supervisor task")
        .expect("the supervisor ends cleanly");
    drop(kanband);
    Restart {
        outage,
        attempts,
        reattached_after,
        survived,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_within_the_tolerated_outage_costs_no_worker() {
    // A 10 s lease tolerates 10 - 2 (margin) - 1.67 (renewal interval) - 1.5 (reconnect) =
    // 4.83 s in the worst phase. The outage is most of that: long enough that an uncapped
    // reconnect backoff (doubling to 5 s) would sleep through kanband's return.
    let ttl = Duration::from_secs(10);
    let budget = jeopardy::longest_tolerated_restart(ttl);
    assert_eq!(budget.as_millis(), 4833);
    let down = Duration::from_millis(3800);
    let r = restart(ttl, down, 3, true).await;
    assert!(r.survived);
    // Starting kanband took the rest; past the budget the test proves nothing.
    assert!(
        r.outage < budget,
        "the outage ({:?}) overran the tolerated {budget:?}: the machine is too slow for this test",
        r.outage
    );
    // While it holds claims the supervisor tries at least every second (here every few hundred
    // milliseconds: a tenth of what is left before jeopardy), so it is renewed within the
    // reconnect granularity of kanband's return.
    assert!(r.attempts.len() >= 4, "{r:?}");
    let slack = Duration::from_millis(200);
    assert!(
        r.widest_gap() <= jeopardy::HOLDING_RECONNECT_MAX + slack,
        "reconnect attempts {:?} apart: {r:?}",
        r.widest_gap()
    );
    assert!(
        r.reattached_after <= jeopardy::RECONNECT_GRANULARITY,
        "renewed {:?} after kanband was back: {r:?}",
        r.reattached_after
    );
    eprintln!(
        "outage {:?} of a tolerated {budget:?}: no worker lost; {} reconnect attempts, at most \
         {:?} apart; renewed {:?} after kanband was back",
        r.outage,
        r.attempts.len(),
        r.widest_gap(),
        r.reattached_after
    );
}

fn env_ms(name: &str) -> Option<Vec<Duration>> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .split(',')
            .map(|ms| Duration::from_millis(ms.trim().parse().expect("milliseconds")))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand with KANBAN_RESTART_TTL_MS and KANBAN_RESTART_OUTAGES_MS"]
async fn measure_the_tolerated_restart() {
    let ttl = env_ms("KANBAN_RESTART_TTL_MS").map_or(Duration::from_secs(10), |v| v[0]);
    let downs = env_ms("KANBAN_RESTART_OUTAGES_MS").unwrap_or_else(|| vec![ttl / 2]);
    let budget = jeopardy::longest_tolerated_restart(ttl);
    for down in downs {
        let r = restart(ttl, down, 1, false).await;
        eprintln!(
            "ttl {ttl:?} (tolerated in the worst phase: {budget:?}): outage {:?}: {} \
             (attempts at most {:?} apart, renewed {:?} after the return)",
            r.outage,
            if r.survived {
                "workers kept"
            } else {
                "workers killed"
            },
            r.widest_gap(),
            r.reattached_after
        );
    }
}
