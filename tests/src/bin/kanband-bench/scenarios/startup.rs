//! `startup`: start-up time on a data directory with `--startup-events` events. The events
//! are generated through the service (one `created` event per CreateTask, from
//! `--bulk-concurrency` clients); kanband is stopped with SIGTERM and started again on the
//! same directory `--startup-runs` times, each timed from spawning the process to reading its
//! ready line. The figure is the median. With `--startup-data DIR` the directory is kept and
//! reused, and only missing events are generated.

use anyhow::{Context as _, bail};
use kanband_gateway::Client;
use kanband_proto::pb;

use super::{
    Env, Measured, Pool,
    load::{create_tasks, per_second, stats},
};
use crate::server::{DataDir, load_average};

/// Runs the scenario.
pub(crate) async fn run(env: &mut Env<'_>) -> anyhow::Result<Measured> {
    let sizes = env.sizes;
    let fresh = env
        .server
        .take()
        .context("needs a kanband the bench started (to restart it); drop --addr")?;
    let (server, pool) = match &sizes.startup_data {
        None => (fresh, env.pool.clone()),
        Some(dir) => {
            fresh.stop().await?;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot make {}", dir.display()))?;
            let kept = env.launch.start(Some(DataDir::Kept(dir.clone()))).await?;
            let pool = Pool::connect(&env.launch.client_addr(&kept), sizes.connections).await?;
            (kept, pool)
        }
    };
    let mut client = pool.get();
    let had = last_event_id(&mut client).await?;
    let missing = sizes.startup_events.saturating_sub(had as usize);
    let took = create_tasks(
        &pool,
        missing,
        &env.profile("startup"),
        sizes.bulk_concurrency,
    )
    .await?;
    let events = last_event_id(&mut client).await?;
    if (events as usize) < sizes.startup_events {
        bail!("{missing} creates on top of {had} events made only {events} events");
    }
    drop((client, pool));
    let data_mib = server.data_bytes() as f64 / (1024.0 * 1024.0);
    let (mut dir, stopped_in) = server.stop().await?;

    let mut runs = Vec::new();
    for _ in 0..sizes.startup_runs.max(1) {
        let server = env.launch.start(Some(dir)).await?;
        runs.push(server.ready_after);
        // It serves what it had: the newest event is still there.
        let mut client = Client::connect(&env.launch.client_addr(&server)).await?;
        let now = last_event_id(&mut client).await?;
        if now < events {
            bail!("after the restart the newest event is {now}, before it was {events}");
        }
        stats(&mut client).await?;
        drop(client);
        dir = server.stop().await?.0;
    }
    let load = load_average();
    let mut sorted = runs.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let each: Vec<String> = runs
        .iter()
        .map(|r| format!("{:.0}", r.as_secs_f64() * 1000.0))
        .collect();
    let generated = if had > 0 {
        format!(
            "reused {had} events in {}, generated {missing} more",
            dir.data().display()
        )
    } else {
        format!("generated {missing} events")
    };
    Ok(Measured::new(median.as_secs_f64() * 1000.0)
        .note(format!(
            "spawn -> ready line, median of {} runs: {} ms",
            runs.len(),
            each.join(", ")
        ))
        .note(format!(
            "{events} events (newest event id); data directory {data_mib:.0} MiB"
        ))
        .note(format!(
            "{generated} in {:.1} s ({} creates); SIGTERM -> exit {:.2} s",
            took.as_secs_f64(),
            per_second(missing, took),
            stopped_in.as_secs_f64()
        ))
        .note(format!(
            "machine load average (1 min) after the runs: {load}"
        ))
        .detail("events", events)
        .detail(
            "runs_ms",
            runs.iter()
                .map(|r| r.as_secs_f64() * 1000.0)
                .collect::<Vec<_>>(),
        )
        .detail("generated", missing)
        .detail("generate_seconds", took.as_secs_f64()))
}

/// The newest event's id (0 if none), found by bisection with one-event pages.
async fn last_event_id(client: &mut Client) -> anyhow::Result<u64> {
    async fn any_after(client: &mut Client, after_id: u64) -> anyhow::Result<bool> {
        let page = client
            .tasks
            .list_events(pb::ListEventsRequest {
                after_id,
                page_size: 1,
                ..Default::default()
            })
            .await
            .context("ListEvents")?
            .into_inner();
        Ok(!page.events.is_empty())
    }
    // Invariant: some event is after `low`, none is after `high`.
    if !any_after(client, 0).await? {
        return Ok(0);
    }
    let mut low = 0;
    let mut high = 1024;
    while any_after(client, high).await? {
        low = high;
        high *= 2;
    }
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if any_after(client, mid).await? {
            low = mid;
        } else {
            high = mid;
        }
    }
    Ok(high)
}
