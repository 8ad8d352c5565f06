//! `cycle`: durable claim -> complete cycles per second. `--cycle-tasks` ready tasks are
//! created first; then `--cycle-sessions` sessions (ttl 30 s, kept alive) each run one worker
//! per slot looping Acquire(wait 1 s) -> Complete. Only acknowledged completes count.
//! `cycle-combined` is the same loop with one call per cycle: each worker acquires once, then
//! sends CompleteAndAcquire(wait 1 s) for the claim it holds.

use std::sync::{
    Arc, Mutex,
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

/// How a worker's loop calls kanband.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Calls {
    /// Acquire, then Complete: two calls per cycle.
    Separate,
    /// CompleteAndAcquire for the claim held: one call per cycle.
    Combined,
}

/// Runs the scenario.
pub(crate) async fn run(env: &mut Env<'_>, calls: Calls) -> anyhow::Result<Measured> {
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
    // The claim each worker holds between its calls (combined loop only).
    let held: Arc<Vec<Mutex<Option<String>>>> =
        Arc::new((0..workers).map(|_| Mutex::new(None)).collect());
    let tally = for_duration(workers, sizes.duration(), move |worker| {
        let mut client = pool.get();
        let session_id = sessions[worker / slots as usize].clone();
        let completed = completed.clone();
        let held = held.clone();
        async move {
            let acquire = pb::AcquireRequest {
                session_id,
                wait_ms: 1000,
            };
            let token = held[worker].lock().expect("held lock").take();
            let (grant, step) = match (calls, token) {
                (Calls::Combined, Some(claim_token)) => {
                    let answer = client
                        .leases
                        .complete_and_acquire(pb::CompleteAndAcquireRequest {
                            complete: Some(pb::CompleteRequest {
                                claim_token,
                                ..Default::default()
                            }),
                            acquire: Some(acquire),
                        })
                        .await?
                        .into_inner();
                    completed.fetch_add(1, Ordering::Relaxed);
                    (answer.grant, Step::Done)
                }
                (_, _) => {
                    let grant = client.leases.acquire(acquire).await?.into_inner().grant;
                    (grant, Step::Idle)
                }
            };
            let Some(grant) = grant else {
                // Empty for a whole second: done if every task has been completed.
                return Ok(if completed.load(Ordering::Relaxed) >= tasks {
                    Step::Exhausted
                } else {
                    step
                });
            };
            if calls == Calls::Combined {
                *held[worker].lock().expect("held lock") = Some(grant.claim_token);
                return Ok(step);
            }
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
