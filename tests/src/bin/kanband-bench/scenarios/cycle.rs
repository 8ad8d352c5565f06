//! `cycle`: durable claim -> complete cycles per second. `--cycle-tasks` ready tasks are
//! created first; then `--cycle-sessions` sessions (ttl 30 s, kept alive) each run one worker
//! per slot looping Acquire(wait 1 s) -> Complete. Only acknowledged completes count.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use anyhow::bail;
use kanband_proto::pb;

use super::{
    Env, Measured,
    hold::kept_session,
    load::{Step, create_tasks, for_duration, per_second},
};

/// Lease time of the sessions.
const TTL_MS: u32 = 30_000;

/// Runs the scenario.
pub(crate) async fn run(env: &mut Env<'_>) -> anyhow::Result<Measured> {
    let sizes = env.sizes;
    let profile = env.profile("cycle");
    let tasks = sizes.cycle_tasks.max(1);
    let took = create_tasks(&env.pool, tasks, &profile, sizes.bulk_concurrency).await?;

    let slots = sizes.cycle_slots.max(1);
    let mut sessions = Vec::new();
    let mut alive = Vec::new();
    for _ in 0..sizes.cycle_sessions.max(1) {
        let mut client = env.pool.get();
        let (id, kept) = kept_session(&mut client, &profile, slots, TTL_MS).await?;
        alive.push(kept);
        sessions.push(id);
    }
    let sessions = Arc::new(sessions);
    let workers = sessions.len() * slots as usize;
    let pool = env.pool.clone();
    let completed = Arc::new(AtomicUsize::new(0));
    let cpu = env.cpu_meter();
    let tally = for_duration(workers, sizes.duration(), move |worker| {
        let mut client = pool.get();
        let session_id = sessions[worker / slots as usize].clone();
        let completed = completed.clone();
        async move {
            let grant = client
                .leases
                .acquire(pb::AcquireRequest {
                    session_id,
                    wait_ms: 1000,
                })
                .await?
                .into_inner()
                .grant;
            let Some(grant) = grant else {
                // Empty for a whole second: done if every task has been completed.
                return Ok(if completed.load(Ordering::Relaxed) >= tasks {
                    Step::Exhausted
                } else {
                    Step::Idle
                });
            };
            client
                .leases
                .complete(pb::CompleteRequest {
                    claim_token: grant.claim_token,
                    ..Default::default()
                })
                .await?;
            completed.fetch_add(1, Ordering::Relaxed);
            Ok(Step::Done)
        }
    })
    .await;
    let cpu = cpu.note(env);
    for keep_alive in &alive {
        keep_alive.check()?;
    }
    if tally.done == 0 {
        bail!(
            "no cycle completed; {}",
            tally.error_note().unwrap_or_default()
        );
    }
    let latency = tally.samples.summary().expect("samples of counted cycles");
    let mut measured = Measured::new(tally.rate())
        .note(format!(
            "{} cycles in {:.1} s{}; {} sessions x {slots} workers",
            tally.done,
            tally.elapsed.as_secs_f64(),
            if tally.exhausted {
                " (the pre-created tasks ran out: timed to the last complete)"
            } else {
                ""
            },
            alive.len()
        ))
        .note(format!("acquire+complete latency {}", latency.describe()))
        .note(cpu)
        .note(format!(
            "pre-created {tasks} tasks in {:.1} s ({})",
            took.as_secs_f64(),
            per_second(tasks, took)
        ))
        .detail("cycles", tally.done)
        .detail("exhausted", tally.exhausted)
        .detail("p50_us", latency.p50_us)
        .detail("p99_us", latency.p99_us);
    if let Some(errors) = tally.error_note() {
        measured = measured.note(errors);
    }
    Ok(measured)
}
