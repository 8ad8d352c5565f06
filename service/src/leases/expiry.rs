//! What happens when a deadline passes: the one table from [`Deadline`] to action, and the
//! loop that waits for each deadline and runs it.
//!
//! Deadlines are armed by the [`Registry`] as committed changes reach it (a grant arms its
//! lease, maximum runtime and stale-progress deadlines; a schedule arms its wake-up) and by
//! renewals (which move a lease deadline). Each action is one store transaction that re-checks
//! the deadline inside it (a renewal may have won the race), so a stale timer does nothing.
//!
//! An action whose write fails (a full disk, any transient storage error) is not dropped: the
//! same deadline is armed again in [`Retries`] with a backoff (50 ms doubling to 5 s) and tried
//! until it commits. Only the timers here re-arm it, so nothing else can cancel a retry; since
//! every action re-checks its deadline, a retry that is no longer needed commits nothing.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{
    registry::Registry,
    timers::{Deadline, Timers},
};
use crate::{clock::Instant, domain::lease::RevokeCause, error::Result, store::Store};

/// The first wait before a failed action is tried again.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Deadlines whose action failed, each armed again after its backoff.
#[derive(Debug, Default)]
pub struct Retries {
    timers: Timers<Deadline>,
    /// Per deadline: when it was first due (the expiry lag counts from there) and the wait
    /// before its next try.
    pending: Mutex<HashMap<Deadline, (Instant, Duration)>>,
}

impl Retries {
    /// How many deadlines wait for their action to be tried again (the backlog health shows).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no deadline waits for a retry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Arms `deadline` (first due `due`) to be tried again after its next backoff; returns
    /// whether this was its first failure.
    pub fn failed(&self, deadline: Deadline, due: Instant) -> bool {
        let mut pending = self.lock();
        let first = !pending.contains_key(&deadline);
        let (_, backoff) = pending
            .entry(deadline.clone())
            .and_modify(|(_, backoff)| *backoff = (*backoff * 2).min(MAX_BACKOFF))
            .or_insert((due, FIRST_BACKOFF));
        let at = Instant::now() + *backoff;
        drop(pending);
        self.timers.arm(deadline, at);
        first
    }

    /// Forgets a deadline whose action committed; returns whether it had been retried.
    fn succeeded(&self, deadline: &Deadline) -> bool {
        self.lock().remove(deadline).is_some()
    }

    /// Waits for the next retry to come due; returns it with the time it was first due.
    async fn next(&self) -> (Deadline, Instant) {
        let (deadline, at) = self.timers.next_expired().await;
        let due = self.lock().get(&deadline).map_or(at, |(due, _)| *due);
        (deadline, due)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Deadline, (Instant, Duration)>> {
        self.pending.lock().expect("retries lock")
    }
}

/// Acts on deadlines as they pass, and on failed ones again as their backoff ends, until
/// `stop` resolves; then waits for the actions in flight to finish. Each deadline is handled
/// in its own task, so many deadlines passing together (a mass expiry) share group commits
/// instead of queueing behind one another.
pub async fn run(
    store: Arc<Store>,
    registry: Arc<Registry>,
    retries: Arc<Retries>,
    stop: impl Future<Output = ()>,
) {
    let mut running = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let (deadline, at) = tokio::select! {
            next = registry.next_deadline() => next,
            next = retries.next() => next,
            Some(_) = running.join_next(), if !running.is_empty() => continue,
            () = &mut stop => break,
        };
        running.spawn(on_deadline(
            store.clone(),
            registry.clone(),
            retries.clone(),
            deadline,
            at,
        ));
    }
    running.shutdown().await;
}

/// The action of one deadline that was due `at`; if it fails, the deadline is tried again.
async fn on_deadline(
    store: Arc<Store>,
    registry: Arc<Registry>,
    retries: Arc<Retries>,
    deadline: Deadline,
    at: Instant,
) {
    match act(&store, &registry, deadline.clone(), at).await {
        Ok(()) => {
            if retries.succeeded(&deadline) {
                tracing::info!(?deadline, "a retried deadline's action committed");
            }
        }
        Err(err) => {
            if retries.failed(deadline.clone(), at) {
                tracing::warn!(?deadline, error = %err, "acting on a deadline failed; retrying with backoff");
            } else {
                tracing::debug!(?deadline, error = %err, "retrying a deadline failed again");
            }
        }
    }
}

/// The deadline -> action table.
async fn act(store: &Store, registry: &Registry, deadline: Deadline, at: Instant) -> Result<()> {
    // The lag from a lease deadline to its committed release, once per claim released.
    let lag = |released: u32, lease: &'static str| {
        metrics::counter!(crate::metrics::EXPIRIES, "lease" => lease).increment(released.into());
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
            .map(|released| lag(released.into(), "claim")),
        // A session's lease ran out: closed, and its claims expire with it (one keep-alive
        // renews them all, so they share its deadline).
        Deadline::Session(id) => store
            .expire_session(id)
            .await
            .map(|released| lag(released, "session")),
        // Server-side revocations: phase one (fence and tell the holder).
        Deadline::MaxRuntime(token) => store.revoke_claim(token, RevokeCause::MaxRuntime).await,
        Deadline::StaleProgress(token) => {
            store.revoke_claim(token, RevokeCause::StaleProgress).await
        }
        // The grace an operator gave the holder is over: revoke as a reclaim.
        Deadline::Grace(token) => store.revoke_claim(token, RevokeCause::Reclaimed).await,
        // Start-up could not write this restored claim's `lease_rearmed` event.
        Deadline::Rearmed(token) => store.record_rearmed(vec![token]).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failed_deadline_comes_back_after_a_doubling_backoff_of_at_most_5_s() {
        let retries = Retries::default();
        let deadline = Deadline::Claim("c".into());
        let due = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..9 {
            let before = Instant::now();
            retries.failed(deadline.clone(), due);
            assert_eq!(retries.next().await, (deadline.clone(), due));
            waits.push((Instant::now() - before).as_millis());
        }
        assert_eq!(waits, [50, 100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000]);
        assert_eq!(retries.len(), 1, "the backlog counts it until it commits");
        assert!(retries.succeeded(&deadline));
        assert!(retries.is_empty());
    }
}
