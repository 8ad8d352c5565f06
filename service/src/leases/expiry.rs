//! What happens when a deadline passes: the one table from [`Deadline`] to action, and the
//! loop that waits for each deadline and runs it.
//!
//! Deadlines are armed by the [`Registry`] as committed changes reach it (a grant arms its
//! lease, maximum runtime and stale-progress deadlines; a schedule arms its wake-up) and by
//! renewals (which move a lease deadline). Each action is one store transaction that re-checks
//! the deadline inside it (a renewal may have won the race), so a stale timer does nothing.

use std::{future::Future, sync::Arc};

use super::{registry::Registry, timers::Deadline};
use crate::{clock::Instant, domain::lease::RevokeCause, error::Result, store::Store};

/// Acts on deadlines as they pass, until `stop` resolves; then waits for the actions in
/// flight to finish. Each deadline is handled in its own task, so many deadlines passing
/// together (a mass expiry) share group commits instead of queueing behind one another.
pub async fn run(store: Arc<Store>, registry: Arc<Registry>, stop: impl Future<Output = ()>) {
    let mut running = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            (deadline, at) = registry.next_deadline() => {
                running.spawn(on_deadline(store.clone(), registry.clone(), deadline, at));
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
            () = &mut stop => break,
        }
    }
    running.shutdown().await;
}

/// The action of one deadline that was due `at`.
async fn on_deadline(store: Arc<Store>, registry: Arc<Registry>, deadline: Deadline, at: Instant) {
    let result = act(&store, &registry, deadline.clone(), at).await;
    if let Err(err) = result {
        tracing::warn!(?deadline, error = %err, "acting on a deadline failed");
    }
}

/// The deadline -> action table.
async fn act(store: &Store, registry: &Registry, deadline: Deadline, at: Instant) -> Result<()> {
    // The lag from a lease deadline to its committed release, once per claim released.
    let lag = |released: u32| {
        let lag = Instant::now().saturating_duration_since(at);
        for _ in 0..released {
            registry.record_lag(lag);
        }
    };
    match deadline {
        // A scheduled task's wake-up: ready again, unless it was changed since.
        Deadline::Wake { task_id, until_ms } => store.wake(task_id, until_ms).await.map(drop),
        // A cooldown only makes the task claimable again: no write, wake the dispatcher.
        Deadline::Cooldown { .. } => {
            registry.poke();
            Ok(())
        }
        // A claim's lease ran out: released as expired (or its revocation finishes).
        Deadline::Claim(token) => store
            .expire_claim(token)
            .await
            .map(|released| lag(released.into())),
        // A session's lease ran out: closed, and its claims expire with it (one keep-alive
        // renews them all, so they share its deadline).
        Deadline::Session(id) => store.expire_session(id).await.map(lag),
        // Server-side revocations: phase one (fence and tell the holder).
        Deadline::MaxRuntime(token) => store.revoke_claim(token, RevokeCause::MaxRuntime).await,
        Deadline::StaleProgress(token) => {
            store.revoke_claim(token, RevokeCause::StaleProgress).await
        }
        // The grace an operator gave the holder is over: revoke as a reclaim.
        Deadline::Grace(token) => store.revoke_claim(token, RevokeCause::Reclaimed).await,
    }
}
