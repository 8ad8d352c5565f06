//! `expiry`: lag from a lease's deadline to its committed release, with `--expiry-held` live
//! leases. The held claims sit in sessions of 250 (ttl 30 s) kept alive by KeepAlive streams;
//! meanwhile `--expiry-sessions` short-lived sessions (ttl 1 s, the minimum), opened
//! `--expiry-stagger-ms` apart, each take `--expiry-claims` claims and are never renewed, so
//! they expire with their claims. The figure is kanband's own measurement,
//! `Admin.Stats.expiry_lag`, read once every short-lived claim has been released.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::task::JoinSet;

use super::{
    Env, Measured,
    hold::{acquire_n, check_alive, hold, open_session},
    load::{create_tasks, stats, wait_for_stats},
};
use crate::stats::ms;

/// Lease time of the held sessions.
const HELD_TTL_MS: u32 = 30_000;
/// Claims per held session (slots are at most 256).
const HELD_PER_SESSION: u32 = 250;
/// Lease time of the short-lived sessions: the smallest kanband accepts.
const SHORT_TTL_MS: u32 = 1000;

/// Runs the scenario.
pub(crate) async fn run(env: &mut Env<'_>) -> anyhow::Result<Measured> {
    let sizes = env.sizes;
    let held_profile = env.profile("expiry-held");
    let short_profile = env.profile("expiry-short");
    let short_claims = sizes.expiry_claims.max(1);
    let short_total = sizes.expiry_sessions * short_claims as usize;
    create_tasks(
        &env.pool,
        sizes.expiry_held,
        &held_profile,
        sizes.bulk_concurrency,
    )
    .await?;
    create_tasks(
        &env.pool,
        short_total,
        &short_profile,
        sizes.bulk_concurrency,
    )
    .await?;
    let held = hold(
        &env.pool,
        &held_profile,
        sizes.expiry_held,
        HELD_PER_SESSION,
        HELD_TTL_MS,
        Some(Duration::from_millis(u64::from(HELD_TTL_MS) / 6)),
    )
    .await?;
    let mut admin = env.pool.get();
    let before = stats(&mut admin).await?;
    if (before.live_claims as usize) < sizes.expiry_held {
        bail!(
            "only {} live claims after holding {}",
            before.live_claims,
            sizes.expiry_held
        );
    }
    let baseline = before.expiry_lag.unwrap_or_default().count;

    let cpu = env.cpu_meter();
    let started = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..sizes.expiry_sessions {
        let mut client = env.pool.get();
        let profile = short_profile.clone();
        let at = started + Duration::from_millis(sizes.expiry_stagger_ms * i as u64);
        set.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let id = open_session(&mut client, &profile, short_claims, SHORT_TTL_MS).await?;
            acquire_n(&mut client, &id, short_claims as usize, 200)
                .await
                .with_context(|| format!("short-lived session {i}"))
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.expect("bench worker panicked")?;
    }
    let held_sessions = held.len() as u64;
    let after = wait_for_stats(
        &mut admin,
        Duration::from_millis(u64::from(SHORT_TTL_MS)) + Duration::from_secs(30),
        "the release of every short-lived claim",
        |s| {
            s.expiry_lag.unwrap_or_default().count >= baseline + short_total as u64
                && s.live_sessions <= held_sessions
        },
    )
    .await?;
    let cpu = cpu.note(env);
    check_alive(&held)?;
    if (after.live_claims as usize) < sizes.expiry_held {
        bail!(
            "held claims were lost: {} live claims, {} held",
            after.live_claims,
            sizes.expiry_held
        );
    }
    let lag = after.expiry_lag.unwrap_or_default();
    if lag.count == 0 {
        bail!("kanband recorded no expiry (were any short-lived sessions asked for?)");
    }
    let mut measured = Measured::new(lag.p99_us as f64 / 1000.0)
        .note(format!(
            "p50 {} ms, p99 {} ms, max {} ms over {} released claims (Admin.Stats.expiry_lag)",
            ms(lag.p50_us),
            ms(lag.p99_us),
            ms(lag.max_us),
            lag.count
        ))
        .note(format!(
            "{} live claims held in {} kept-alive sessions; {} sessions x {short_claims} \
             claims expired, {} ms apart; a session's claims share its deadline, so they \
             share one release",
            after.live_claims,
            held.len(),
            sizes.expiry_sessions,
            sizes.expiry_stagger_ms
        ))
        .note(cpu)
        .detail("count", lag.count)
        .detail("p50_us", lag.p50_us)
        .detail("p99_us", lag.p99_us)
        .detail("max_us", lag.max_us)
        .detail("live_claims", after.live_claims);
    if baseline > 0 {
        measured = measured.note(format!(
            "kanband had {baseline} earlier samples, which are included"
        ));
    }
    Ok(measured)
}
