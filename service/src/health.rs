//! What `grpc.health.v1.Health` reports, and the check that ties it to lease correctness.
//!
//! A lease promise is only as good as kanband's promptness: a claim whose deadline passes must
//! be released within a small fraction of the shortest lease it grants, and a holder's call
//! must commit in time for it to know where it stands. So a monitor looks every
//! [`CHECK_EVERY`] at two lags, and when either reaches [`THRESHOLD`] (half the smallest
//! allowed TTL, 1,000 ms) turns the overall status and `kanban.v1.Leases` NOT_SERVING, so a
//! probe takes this kanband out of rotation; both are SERVING again at the first check where
//! both lags are back under it:
//!
//! - **timer lag**: how long the earliest armed deadline has been due without being taken. It
//!   counts when the same deadline is still the earliest at the next check, and as the smaller
//!   of two checks in a row, so a deadline the loop takes as soon as it passes never counts,
//!   nor one seen just after a jump of a paused test clock;
//! - **commit latency**: the longest wait of a write for its commit: the oldest unanswered
//!   one's so far, or any answered since the previous check.
//!
//! The other parts of the status: a damaged database (the page check after start) turns the
//! overall status NOT_SERVING for good; shutdown turns everything NOT_SERVING.

use std::{future::Future, time::Duration};

use tokio::{sync::Mutex, time::Instant};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    coordinator::Coordinator, domain::limits::TTL_MIN_MS, leases::timers::Deadline, metrics,
};

/// The lag at which lease health turns NOT_SERVING: half the smallest allowed TTL.
pub const THRESHOLD: Duration = Duration::from_millis(TTL_MIN_MS as u64 / 2);

/// How often the monitor looks.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);

/// The lags one check measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lags {
    /// How long a due deadline has waited to be taken.
    pub timer: Duration,
    /// How long writes wait for their commit.
    pub commit: Duration,
}

impl Lags {
    /// Whether kanband can still keep its lease promises.
    pub fn keeps_leases(self) -> bool {
        self.timer < THRESHOLD && self.commit < THRESHOLD
    }
}

/// The timer lag from two looks at the earliest deadline: only one that was already the
/// earliest at the previous look, and is due, counts.
pub fn timer_lag(
    previous: Option<&(Deadline, Instant)>,
    earliest: Option<&(Deadline, Instant)>,
    now: Instant,
) -> Duration {
    match (previous, earliest) {
        (Some(before), Some(now_first)) if before == now_first => {
            now.saturating_duration_since(now_first.1)
        }
        _ => Duration::ZERO,
    }
}

/// The health status kanband reports, from every part that sets it.
#[derive(Debug)]
pub struct Health {
    reporter: HealthReporter,
    state: Mutex<Parts>,
}

#[derive(Debug, Clone, Copy)]
struct Parts {
    started: bool,
    stopping: bool,
    damaged: bool,
    keeps_leases: bool,
    /// What was last set (overall, leases, the other services), so watchers hear only changes.
    published: Option<(bool, bool, bool)>,
}

impl Health {
    /// NOT_SERVING everywhere until [`Health::started`].
    pub async fn new(reporter: HealthReporter, services: &'static [&'static str]) -> Health {
        let health = Health {
            reporter,
            state: Mutex::new(Parts {
                started: false,
                stopping: false,
                damaged: false,
                keeps_leases: true,
                published: None,
            }),
        };
        health.publish(services, |_| {}).await;
        health
    }

    /// Every listener is up.
    pub async fn started(&self, services: &'static [&'static str]) {
        self.publish(services, |p| p.started = true).await;
    }

    /// Shutdown began: NOT_SERVING everywhere from now on.
    pub async fn stopping(&self, services: &'static [&'static str]) {
        self.publish(services, |p| p.stopping = true).await;
    }

    /// The database is damaged: the overall status stays NOT_SERVING.
    pub async fn damaged(&self, services: &'static [&'static str]) {
        self.publish(services, |p| p.damaged = true).await;
    }

    /// The lease check's latest verdict; returns whether it changed.
    async fn keeps_leases(&self, services: &'static [&'static str], keeps: bool) -> bool {
        let mut changed = false;
        self.publish(services, |p| {
            changed = p.keeps_leases != keeps;
            p.keeps_leases = keeps;
        })
        .await;
        changed
    }

    /// Applies `change` and sets every status from the parts (serialised, so two changes
    /// never publish out of order).
    async fn publish(&self, services: &'static [&'static str], change: impl FnOnce(&mut Parts)) {
        let mut parts = self.state.lock().await;
        change(&mut parts);
        let p = *parts;
        let up = p.started && !p.stopping;
        let now = (up && !p.damaged && p.keeps_leases, up && p.keeps_leases, up);
        if parts.published == Some(now) {
            return;
        }
        parts.published = Some(now);
        let status = |serving: bool| {
            if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        };
        ::metrics::gauge!(metrics::LEASE_HEALTH).set(if p.keeps_leases { 1.0 } else { 0.0 });
        let (overall, leases, others) = now;
        self.reporter.set_service_status("", status(overall)).await;
        for service in services {
            let serving = if *service == LEASES { leases } else { others };
            self.reporter
                .set_service_status(*service, status(serving))
                .await;
        }
    }
}

/// The health name of the lease service.
const LEASES: &str = "kanban.v1.Leases";

/// Checks the lags every [`CHECK_EVERY`] until `stop`, and sets lease health from them.
pub async fn monitor(
    app: &Coordinator,
    health: &Health,
    services: &'static [&'static str],
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut previous = None;
    let mut previous_lag = Duration::ZERO;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = &mut stop => return,
        }
        let earliest = app.earliest_deadline();
        let lag = timer_lag(previous.as_ref(), earliest.as_ref(), Instant::now());
        let lags = Lags {
            timer: lag.min(previous_lag),
            commit: app.store().commit_latency(),
        };
        previous = earliest;
        previous_lag = lag;
        let keeps = lags.keeps_leases();
        if health.keeps_leases(services, keeps).await {
            if keeps {
                tracing::info!(
                    timer_lag_ms = lags.timer.as_millis() as u64,
                    commit_latency_ms = lags.commit.as_millis() as u64,
                    "lease health is SERVING again"
                );
            } else {
                tracing::warn!(
                    timer_lag_ms = lags.timer.as_millis() as u64,
                    commit_latency_ms = lags.commit.as_millis() as u64,
                    threshold_ms = THRESHOLD.as_millis() as u64,
                    "lease health is NOT_SERVING: kanband is too slow to keep its lease promises"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_the_smallest_ttl_is_the_threshold() {
        assert_eq!(THRESHOLD, Duration::from_millis(500));
        let just_under = Duration::from_millis(499);
        assert!(
            Lags {
                timer: just_under,
                commit: just_under
            }
            .keeps_leases()
        );
        assert!(
            !Lags {
                timer: THRESHOLD,
                commit: Duration::ZERO
            }
            .keeps_leases()
        );
        assert!(
            !Lags {
                timer: Duration::ZERO,
                commit: THRESHOLD
            }
            .keeps_leases()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_deadline_still_first_at_the_next_look_counts_as_late() {
        let now = Instant::now();
        let due = (Deadline::Claim("c".into()), now);
        let later = now + Duration::from_millis(700);
        assert_eq!(timer_lag(None, Some(&due), later), Duration::ZERO);
        assert_eq!(
            timer_lag(Some(&due), Some(&due), later),
            Duration::from_millis(700)
        );
        let other = (Deadline::Claim("d".into()), now);
        assert_eq!(timer_lag(Some(&due), Some(&other), later), Duration::ZERO);
        let not_yet = (Deadline::Claim("c".into()), later + Duration::from_secs(1));
        assert_eq!(
            timer_lag(Some(&not_yet), Some(&not_yet), later),
            Duration::ZERO
        );
    }
}
