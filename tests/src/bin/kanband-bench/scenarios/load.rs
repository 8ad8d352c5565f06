//! Load helpers: workers that repeat an operation for a fixed time, bulk task creation, and
//! reading `Admin.Stats`.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use kanband_gateway::Client;
use kanband_proto::pb;
use tokio::task::JoinSet;

use super::Pool;
use crate::stats::Samples;

/// What one operation of a timed worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// One acknowledged operation, counted if it finished within the duration.
    Done,
    /// Nothing done this time (for example, a long poll came back empty); try again.
    Idle,
    /// Nothing left to do: this worker stops (for example, the pre-created tasks ran out).
    Exhausted,
}

/// What timed workers did.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Operations acknowledged within the duration.
    pub(crate) done: u64,
    /// Operations that failed.
    pub(crate) errors: u64,
    /// The first failure, for the notes.
    pub(crate) first_error: Option<String>,
    /// Latency of each counted operation.
    pub(crate) samples: Samples,
    /// The time the count is divided by: the duration, or the time of the last counted
    /// operation when every worker ran out of work before the duration ended.
    pub(crate) elapsed: Duration,
    /// Every worker ran out of work before the duration ended.
    pub(crate) exhausted: bool,
}

impl Tally {
    /// Counted operations per second.
    pub(crate) fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Adds `other`, a later stretch of the same operations, to this tally.
    pub(crate) fn merge(&mut self, other: Tally) {
        self.done += other.done;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.samples.merge(other.samples);
        self.elapsed += other.elapsed;
        self.exhausted |= other.exhausted;
    }

    /// A note on failures, if there were any.
    pub(crate) fn error_note(&self) -> Option<String> {
        self.first_error
            .as_ref()
            .map(|first| format!("{} failed calls, first: {first}", self.errors))
    }
}

/// A worker gives up after this many failed operations.
const ERRORS_PER_WORKER: u64 = 100;

/// Runs `workers` workers, each repeating `op(worker index)` until `duration` has passed, and
/// counts the operations acknowledged within it. The duration starts when this is called.
pub(crate) async fn for_duration<F, Fut>(workers: usize, duration: Duration, op: F) -> Tally
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<Step>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let end = start + duration;
    let mut set = JoinSet::new();
    for worker in 0..workers {
        let op = op.clone();
        set.spawn(async move {
            let mut tally = Tally::default();
            let mut last = Duration::ZERO;
            let mut exhausted = false;
            while Instant::now() < end {
                let sent = Instant::now();
                match op(worker).await {
                    Ok(Step::Done) => {
                        let now = Instant::now();
                        if now <= end {
                            tally.done += 1;
                            tally.samples.push(now - sent);
                            last = now - start;
                        }
                    }
                    Ok(Step::Idle) => {}
                    Ok(Step::Exhausted) => {
                        exhausted = true;
                        break;
                    }
                    Err(err) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert_with(|| format!("{err:#}"));
                        if tally.errors >= ERRORS_PER_WORKER {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (tally, last, exhausted)
        });
    }
    let mut total = Tally {
        exhausted: true,
        ..Tally::default()
    };
    let mut last = Duration::ZERO;
    while let Some(joined) = set.join_next().await {
        let (tally, worker_last, exhausted) = joined.expect("bench worker panicked");
        total.done += tally.done;
        total.errors += tally.errors;
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
        total.samples.merge(tally.samples);
        total.exhausted &= exhausted;
        last = last.max(worker_last);
    }
    total.elapsed = if total.exhausted { last } else { duration };
    total
}

/// A small ready task assigned to `assignee`.
pub(crate) fn new_task(assignee: &str, n: usize) -> pb::CreateTaskRequest {
    pb::CreateTaskRequest {
        title: format!("bench task {n}"),
        assignee: assignee.to_owned(),
        created_by: "kanband-bench".into(),
        ..Default::default()
    }
}

/// Creates `count` ready tasks assigned to `assignee` from `concurrency` concurrent clients;
/// returns how long that took. Fails on the first refused create.
pub(crate) async fn create_tasks(
    pool: &Pool,
    count: usize,
    assignee: &str,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..concurrency.clamp(1, count.max(1)) {
        let mut client = pool.get();
        let next = next.clone();
        let assignee = assignee.to_owned();
        set.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    return Ok::<_, anyhow::Error>(());
                }
                client
                    .tasks
                    .create_task(new_task(&assignee, n))
                    .await
                    .with_context(|| format!("CreateTask {n} of {count}"))?;
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.expect("bench worker panicked")?;
    }
    Ok(started.elapsed())
}

/// `Admin.Stats` now.
pub(crate) async fn stats(client: &mut Client) -> anyhow::Result<pb::StatsResponse> {
    Ok(client
        .admin
        .stats(pb::StatsRequest {})
        .await
        .context("Admin.Stats")?
        .into_inner())
}

/// Polls `Admin.Stats` until `done` says so, for at most `limit`; returns the last answer.
pub(crate) async fn wait_for_stats(
    client: &mut Client,
    limit: Duration,
    what: &str,
    done: impl Fn(&pb::StatsResponse) -> bool,
) -> anyhow::Result<pb::StatsResponse> {
    let until = Instant::now() + limit;
    loop {
        let now = stats(client).await?;
        if done(&now) {
            return Ok(now);
        }
        if Instant::now() >= until {
            bail!(
                "{what} did not happen within {limit:?} (live sessions {}, live claims {}, \
                 waiting pollers {})",
                now.live_sessions,
                now.live_claims,
                now.waiting_pollers
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A rate for notes: `12345/s`.
pub(crate) fn per_second(count: usize, took: Duration) -> String {
    format!("{:.0}/s", count as f64 / took.as_secs_f64().max(1e-9))
}
