//! `memory`: resident memory of the kanband process with `--memory-tasks` tasks of which
//! `--memory-claims` are held by live, kept-alive claims (sessions of 250, ttl 30 s); the
//! others are ready for a profile no session runs. Reads
//! `VmRSS` from `/proc/<pid>/status` once everything is in place (a second after the last
//! claim, so in-flight buffers settle).

use std::time::Duration;

use anyhow::{Context as _, bail};

use super::{
    Env, Measured,
    hold::{check_alive, hold},
    load::{create_tasks, per_second, stats},
};

/// Lease time of the sessions.
const TTL_MS: u32 = 30_000;
/// Claims per session.
const PER_SESSION: u32 = 250;

/// Runs the scenario.
pub(crate) async fn run(env: &mut Env<'_>) -> anyhow::Result<Measured> {
    let sizes = env.sizes;
    if env.server.is_none() {
        bail!("needs a kanband the bench started (to read its /proc); drop --addr");
    }
    let claims = sizes.memory_claims.min(sizes.memory_tasks);
    let idle = env.profile("memory-idle");
    let busy = env.profile("memory-held");
    // The held tasks first, then the rest: the dispatcher's passes then only see the tasks
    // meant for the sessions (the figure is about the final state, not how it was reached).
    let mut took = create_tasks(&env.pool, claims, &busy, sizes.bulk_concurrency).await?;
    let held = hold(
        &env.pool,
        &busy,
        claims,
        PER_SESSION,
        TTL_MS,
        Some(Duration::from_millis(u64::from(TTL_MS) / 6)),
    )
    .await?;
    took += create_tasks(
        &env.pool,
        sizes.memory_tasks - claims,
        &idle,
        sizes.bulk_concurrency,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = stats(&mut env.pool.get()).await?;
    let server = env.server.as_ref().context("the started kanband")?;
    let (rss_kib, peak_kib) = server.memory_kib()?;
    check_alive(&held)?;
    let tasks: u64 = now.tasks_by_status.values().sum();
    if (now.live_claims as usize) < claims {
        bail!("only {} live claims of {claims}", now.live_claims);
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(Measured::new(mib(rss_kib))
        .note(format!(
            "VmRSS of kanband (pid {}) with {tasks} tasks and {} live claims in {} sessions; \
             peak (VmHWM) {:.1} MiB",
            server.pid(),
            now.live_claims,
            held.len(),
            mib(peak_kib)
        ))
        .note(format!(
            "created the tasks in {:.1} s ({}); data directory {:.1} MiB",
            took.as_secs_f64(),
            per_second(sizes.memory_tasks, took),
            server.data_bytes() as f64 / (1024.0 * 1024.0)
        ))
        .detail("rss_kib", rss_kib)
        .detail("hwm_kib", peak_kib)
        .detail("tasks", tasks)
        .detail("live_claims", now.live_claims))
}
