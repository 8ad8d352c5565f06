//! `latency`: ready -> granted to a waiting supervisor. `--latency-waiters` sessions (one slot
//! each) wait in Acquire(wait 30 s); the driver creates one ready task at a time for their
//! profile and measures from just before sending CreateTask to the moment a waiter's Acquire
//! returns the grant (one process, one monotonic clock). The waiter completes the task,
//! reports, and waits again; the next task is created once the report arrives. The figure
//! includes the create's own durable commit.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kanband_proto::pb;
use tokio::{sync::mpsc, task::JoinSet};

use super::{
    Env, Measured,
    hold::kept_session,
    load::{new_task, stats},
};
use crate::stats::Samples;

/// Lease time of the sessions.
const TTL_MS: u32 = 30_000;
/// How long to wait for Admin.Stats to show every waiter parked in Acquire.
const PARK_LIMIT: Duration = Duration::from_secs(3);
/// How long one sample may take.
const SAMPLE_LIMIT: Duration = Duration::from_secs(10);

/// Runs the scenario.
pub(crate) async fn run(env: &mut Env<'_>) -> anyhow::Result<Measured> {
    let sizes = env.sizes;
    let profile = env.profile("latency");
    let waiters = sizes.latency_waiters.max(1);
    let (granted_tx, mut granted) = mpsc::unbounded_channel::<anyhow::Result<(String, Instant)>>();
    let mut alive = Vec::new();
    let mut set = JoinSet::new();
    for _ in 0..waiters {
        let mut client = env.pool.get();
        let (session_id, kept) = kept_session(&mut client, &profile, 1, TTL_MS).await?;
        alive.push(kept);
        let granted_tx = granted_tx.clone();
        set.spawn(async move {
            loop {
                let answer = client
                    .leases
                    .acquire(pb::AcquireRequest {
                        session_id: session_id.clone(),
                        wait_ms: 30_000,
                    })
                    .await;
                let at = Instant::now();
                let report = async {
                    let Some(grant) = answer.context("Acquire")?.into_inner().grant else {
                        return Ok(None);
                    };
                    let task_id = grant.task.map(|t| t.id).unwrap_or_default();
                    client
                        .leases
                        .complete(pb::CompleteRequest {
                            claim_token: grant.claim_token,
                            ..Default::default()
                        })
                        .await
                        .context("Complete")?;
                    Ok(Some((task_id, at)))
                }
                .await;
                let failed = report.is_err();
                if let Some(report) = report.transpose()
                    && (granted_tx.send(report).is_err() || failed)
                {
                    return;
                }
            }
        });
    }
    drop(granted_tx);
    // Give the waiters time to reach the dispatcher's queue. Admin.Stats counts the queue,
    // which a dispatch pass empties while it runs, so the count is a hint, not a gate.
    let mut admin = env.pool.get();
    let mut most_parked = 0;
    let settle = Instant::now() + PARK_LIMIT;
    while Instant::now() < settle {
        if let Ok(Err(why)) = granted.try_recv() {
            return Err(why.context("a waiter failed"));
        }
        most_parked = most_parked.max(stats(&mut admin).await?.waiting_pollers as usize);
        if most_parked >= waiters {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut to_grant = Samples::default();
    let mut to_ack = Samples::default();
    let mut client = env.pool.get();
    let cpu = env.cpu_meter();
    for n in 0..sizes.latency_samples.max(1) {
        let sent = Instant::now();
        let task = client
            .tasks
            .create_task(new_task(&profile, n))
            .await
            .context("CreateTask")?
            .into_inner()
            .task
            .context("CreateTask answered no task")?;
        to_ack.push(sent.elapsed());
        let (task_id, at) = match tokio::time::timeout(SAMPLE_LIMIT, granted.recv()).await {
            Ok(Some(report)) => report?,
            Ok(None) => bail!("every waiter stopped"),
            Err(_) => bail!("task {} was not granted within {SAMPLE_LIMIT:?}", task.id),
        };
        if task_id != task.id {
            bail!("created {} but {task_id} was granted", task.id);
        }
        to_grant.push(at - sent);
    }
    let cpu = cpu.note(env);
    set.abort_all();
    for keep_alive in &alive {
        keep_alive.check()?;
    }
    let grant = to_grant.summary().expect("samples");
    let ack = to_ack.summary().expect("samples");
    Ok(Measured::new(grant.p99_us as f64 / 1000.0)
        .note(format!("ready->granted {}", grant.describe()))
        .note(format!(
            "CreateTask acknowledged {} (its durable commit is inside the figure)",
            ack.describe()
        ))
        .note(format!("{waiters} waiters, one task at a time"))
        .note(if most_parked >= waiters {
            format!("Admin.Stats showed all {waiters} waiters parked before the first task")
        } else {
            format!(
                "Admin.Stats never showed all {waiters} waiters parked (at most {most_parked} \
                 within {PARK_LIMIT:?}); the dispatcher may be busy with them"
            )
        })
        .note(cpu)
        .detail("count", grant.count)
        .detail("p50_us", grant.p50_us)
        .detail("p99_us", grant.p99_us)
        .detail("max_us", grant.max_us)
        .detail("create_ack_p50_us", ack.p50_us)
        .detail("create_ack_p99_us", ack.p99_us))
}
