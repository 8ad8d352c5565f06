//! `backlog`: what a backlog no waiting supervisor may take costs the writes beside it.
//! `--backlog-pollers` sessions wait in Acquire(wait 30 s) for a profile no task is for, while
//! `--backlog-clients` clients create tasks (for another profile nobody runs) for `--duration`:
//! once with no backlog, then again after `--backlog-tasks` ready tasks for a third profile
//! nobody runs were created, on the same kanband (the second phase also has the first phase's
//! creates behind it). The figure is how much slower the creates were with the backlog, in
//! percent of the rate without it.

use std::time::Duration;

use anyhow::{Context as _, bail};
use kanband_proto::pb;
use tokio::task::JoinSet;

use super::{
    Env, Measured,
    hold::kept_session,
    load::{Step, Tally, create_tasks, for_duration, new_task, per_second, wait_for_stats},
};

/// Lease time of the polling sessions.
const TTL_MS: u32 = 30_000;
/// How long one Acquire waits.
const WAIT_MS: i64 = 30_000;
/// How long to wait for every poller to be parked in Acquire.
const PARK_LIMIT: Duration = Duration::from_secs(10);

/// Runs the scenario.
pub(crate) async fn run(env: &mut Env<'_>) -> anyhow::Result<Measured> {
    let sizes = env.sizes;
    let pollers = sizes.backlog_pollers;
    let waiting_for = env.profile("backlog-poller");
    let created_for = env.profile("backlog-created");
    let backlog_for = env.profile("backlog-nobody");

    let mut alive = Vec::new();
    let mut set = JoinSet::new();
    for _ in 0..pollers {
        let mut client = env.pool.get();
        let (session_id, kept) = kept_session(&mut client, &waiting_for, 1, TTL_MS).await?;
        alive.push(kept);
        set.spawn(async move {
            loop {
                let grant = client
                    .leases
                    .acquire(pb::AcquireRequest {
                        session_id: session_id.clone(),
                        wait_ms: WAIT_MS,
                    })
                    .await
                    .context("Acquire")?
                    .into_inner()
                    .grant;
                if let Some(grant) = grant {
                    let task = grant.task.map(|t| t.id).unwrap_or_default();
                    bail!("a poller was granted {task}, which no poller may take");
                }
            }
        });
    }
    let mut admin = env.pool.get();
    let parked = |want: usize| move |s: &pb::StatsResponse| s.waiting_pollers as usize >= want;
    let clients = sizes.backlog_clients.max(1);
    let timed = |env: &Env<'_>| {
        let pool = env.pool.clone();
        let assignee = created_for.clone();
        for_duration(clients, sizes.duration(), move |worker| {
            let mut client = pool.get();
            let request = new_task(&assignee, worker);
            async move {
                client.tasks.create_task(request).await?;
                Ok(Step::Done)
            }
        })
    };

    wait_for_stats(
        &mut admin,
        PARK_LIMIT,
        "every poller waiting",
        parked(pollers),
    )
    .await?;
    let cpu = env.cpu_meter();
    let without = timed(env).await;
    let cpu_without = cpu.note(env);
    check(&without, "without the backlog")?;

    let took = create_tasks(
        &env.pool,
        sizes.backlog_tasks,
        &backlog_for,
        sizes.bulk_concurrency,
    )
    .await?;
    wait_for_stats(
        &mut admin,
        PARK_LIMIT,
        "every poller waiting",
        parked(pollers),
    )
    .await?;
    let cpu = env.cpu_meter();
    let with = timed(env).await;
    let cpu_with = cpu.note(env);
    check(&with, "beside the backlog")?;

    if let Some(failed) = set.try_join_next() {
        failed.context("a poller")??;
        bail!("a poller stopped");
    }
    set.abort_all();
    for keep_alive in &alive {
        keep_alive.check()?;
    }
    let cost = (1.0 - with.rate() / without.rate()) * 100.0;
    Ok(Measured::new(cost)
        .note(format!(
            "creates/s from {clients} client(s): {:.0} without a backlog, {:.0} beside {} ready \
             tasks no poller may take, {pollers} pollers waiting throughout",
            without.rate(),
            with.rate(),
            sizes.backlog_tasks
        ))
        .note(format!(
            "backlog created in {:.1} s ({})",
            took.as_secs_f64(),
            per_second(sizes.backlog_tasks, took)
        ))
        .note(format!("without: {cpu_without}"))
        .note(format!("with: {cpu_with}"))
        .detail("creates_per_s_without", without.rate())
        .detail("creates_per_s_with", with.rate())
        .detail("backlog_tasks", sizes.backlog_tasks)
        .detail("pollers", pollers))
}

/// Fails a phase in which no create was acknowledged, or one failed.
fn check(tally: &Tally, phase: &str) -> anyhow::Result<()> {
    if let Some(errors) = tally.error_note() {
        bail!("creates {phase}: {errors}");
    }
    if tally.done == 0 {
        bail!("no create was acknowledged {phase}");
    }
    Ok(())
}
