//! `create`: durable creates per second. `--concurrency` clients call CreateTask back to back
//! for `--duration`; only acknowledged creates count (kanband commits before it answers).

use anyhow::bail;

use super::{
    Env, Measured,
    load::{Step, for_duration, new_task},
};

/// Runs the scenario.
pub(crate) async fn run(env: &mut Env<'_>) -> anyhow::Result<Measured> {
    let assignee = env.profile("create");
    let clients = env.sizes.concurrency.max(1);
    let pool = env.pool.clone();
    let cpu = env.cpu_meter();
    let tally = for_duration(clients, env.sizes.duration(), move |worker| {
        let mut client = pool.get();
        let request = new_task(&assignee, worker);
        async move {
            client.tasks.create_task(request).await?;
            Ok(Step::Done)
        }
    })
    .await;
    if tally.done == 0 {
        bail!(
            "no create was acknowledged; {}",
            tally.error_note().unwrap_or_default()
        );
    }
    let latency = tally.samples.summary().expect("samples of counted creates");
    let mut measured = Measured::new(tally.rate())
        .note(format!(
            "{} creates in {:.1} s from {clients} clients over {} connections",
            tally.done,
            tally.elapsed.as_secs_f64(),
            env.sizes.connections
        ))
        .note(format!("call latency {}", latency.describe()))
        .note(cpu.note(env))
        .detail("creates", tally.done)
        .detail("p50_us", latency.p50_us)
        .detail("p99_us", latency.p99_us);
    if let Some(errors) = tally.error_note() {
        measured = measured.note(errors);
    }
    Ok(measured)
}
