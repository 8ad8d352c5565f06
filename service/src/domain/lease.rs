//! The lease rules as plain functions: fencing, exit classification and failure accounting.
//! Nothing here does I/O; the store's transactions apply the verdicts.

use std::time::Duration;

use super::{
    limits::{
        DEFAULT_MAX_RETRIES, OUTCOMELESS_LIMIT, PROTOCOL_VIOLATION_LIMIT, RATE_LIMIT_COOLDOWN,
    },
    status::RunOutcome,
};

/// Where a claim is in its life, as far as fencing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimState {
    /// Held and renewable.
    Live,
    /// Fenced; the holder may only confirm (release or report exit).
    Revoking(RevokeCause),
    /// Over.
    Ended(EndReason),
}

/// Why a claim was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevokeCause {
    /// The task was archived.
    Archived,
    /// An operator reclaimed it.
    Reclaimed,
    /// An operator scheduled it.
    Scheduled,
    /// Its board was reset.
    BoardReset,
    /// It ran past its maximum runtime.
    MaxRuntime,
    /// Its holder renewed without progress for too long.
    StaleProgress,
}

impl RevokeCause {
    /// Every cause.
    pub const ALL: [RevokeCause; 6] = [
        RevokeCause::Archived,
        RevokeCause::Reclaimed,
        RevokeCause::Scheduled,
        RevokeCause::BoardReset,
        RevokeCause::MaxRuntime,
        RevokeCause::StaleProgress,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeCause::Archived => "archived",
            RevokeCause::Reclaimed => "reclaimed",
            RevokeCause::Scheduled => "scheduled",
            RevokeCause::BoardReset => "board_reset",
            RevokeCause::MaxRuntime => "max_runtime",
            RevokeCause::StaleProgress => "stale_progress",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// How a claim ended, as stored in `claims.end_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The holder reported an outcome (complete, block, review, changes) or an exit.
    Outcome,
    /// The holder released it, or its session closed.
    Released,
    /// The lease ran out.
    Expired,
    /// It was revoked and the revocation finished.
    Revoked,
    /// Its board was reset.
    BoardReset,
}

impl EndReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Outcome => "outcome",
            EndReason::Released => "released",
            EndReason::Expired => "expired",
            EndReason::Revoked => "revoked",
            EndReason::BoardReset => "board_reset",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Outcome,
            Self::Released,
            Self::Expired,
            Self::Revoked,
            Self::BoardReset,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// Why a token was refused (the `kanban-lease-lost` trailer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseLost {
    /// The lease ran out.
    Expired,
    /// The claim was revoked.
    Revoked,
    /// The task has a newer claim.
    Superseded,
    /// The board was reset.
    BoardReset,
    /// Never issued, or already ended by its holder.
    Unknown,
}

impl LeaseLost {
    /// Every reason.
    pub const ALL: [LeaseLost; 5] = [
        LeaseLost::Expired,
        LeaseLost::Revoked,
        LeaseLost::Superseded,
        LeaseLost::BoardReset,
        LeaseLost::Unknown,
    ];

    /// The trailer value.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseLost::Expired => "expired",
            LeaseLost::Revoked => "revoked",
            LeaseLost::Superseded => "superseded",
            LeaseLost::BoardReset => "board_reset",
            LeaseLost::Unknown => "unknown",
        }
    }
}

/// What a holder call wants to do with its claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Renew, heartbeat, or report an outcome: needs a live claim.
    Hold,
    /// Release or report an exit: also allowed on a revoked claim, to confirm the revocation.
    Confirm,
}

/// Decides whether a token may be used. `claim` is what is known of the token's claim (its
/// epoch and state), `task_epoch` the task's current epoch (`None` if the task is gone).
pub fn fence(
    claim: Option<(u64, ClaimState)>,
    task_epoch: Option<u64>,
    wanted: Use,
) -> Result<(), LeaseLost> {
    let Some((epoch, state)) = claim else {
        return Err(LeaseLost::Unknown);
    };
    if task_epoch.is_some_and(|current| current > epoch) {
        return Err(LeaseLost::Superseded);
    }
    match (state, wanted) {
        (ClaimState::Live, _) => Ok(()),
        (ClaimState::Revoking(_), Use::Confirm) => Ok(()),
        (ClaimState::Revoking(RevokeCause::BoardReset), Use::Hold) => Err(LeaseLost::BoardReset),
        (ClaimState::Revoking(_), Use::Hold) => Err(LeaseLost::Revoked),
        (ClaimState::Ended(reason), _) => Err(match reason {
            EndReason::Expired => LeaseLost::Expired,
            EndReason::Revoked => LeaseLost::Revoked,
            EndReason::BoardReset => LeaseLost::BoardReset,
            EndReason::Outcome | EndReason::Released => LeaseLost::Unknown,
        }),
    }
}

/// The holder call that ended a claim, as stored in `claims.ended_by`: a retry of the same call
/// with the same token (its reply was lost) is answered as already recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderCall {
    /// `Complete`.
    Complete,
    /// `Block`.
    Block,
    /// `RequestReview`.
    RequestReview,
    /// `RequestChanges`.
    RequestChanges,
    /// `Release` (also a confirmation of a revocation).
    Release,
    /// `ReportExit` (also a confirmation of a revocation).
    ReportExit,
}

impl HolderCall {
    const ALL: [HolderCall; 6] = [
        HolderCall::Complete,
        HolderCall::Block,
        HolderCall::RequestReview,
        HolderCall::RequestChanges,
        HolderCall::Release,
        HolderCall::ReportExit,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            HolderCall::Complete => "complete",
            HolderCall::Block => "block",
            HolderCall::RequestReview => "request_review",
            HolderCall::RequestChanges => "request_changes",
            HolderCall::Release => "release",
            HolderCall::ReportExit => "report_exit",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// Whether `call` on a claim its holder already ended with `ended_by` is a retry of that same
/// outcome (answered with success, flagged as already recorded) rather than a second, different
/// outcome (refused by fencing).
pub fn already_recorded(ended_by: Option<HolderCall>, call: HolderCall) -> bool {
    ended_by == Some(call)
}

/// How a worker process ended, as the supervisor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with a code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
    /// It could not be started.
    SpawnFailed,
}

/// Why a claim ended without an outcome from its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The lease ran out (not a failure).
    Expired,
    /// The holder gave it back.
    Released,
    /// The holder's session closed (drain): neither a failure nor an attempt.
    Drained,
    /// The worker exited without reporting an outcome.
    Exited(Exit),
    /// The run passed its maximum runtime, or made no progress for too long.
    TimedOut,
}

/// Whether a claim that ended without an outcome is an operator reclaim: an operator had asked
/// its holder to stop (a cancel request with a grace is pending) and the holder then gave the
/// claim back or reported its worker's exit, with any code or signal. Such an end counts no
/// failure and resets the breaker, whatever the exit was: the worker stopped because it was
/// asked to.
pub fn ends_as_reclaim(ending: Ending, cancel_pending: bool) -> bool {
    cancel_pending && matches!(ending, Ending::Released | Ending::Exited(_))
}

/// A lease's deadline is persisted again once it has moved past its persisted copy by more
/// than this fraction of its TTL: renewals cost no write each, and a restart misjudges a lease
/// whose deadline had not passed only when kanband was down for most of a TTL.
pub const PERSIST_FRACTION: u32 = 4;

/// Whether a lease whose exact deadline is `ahead` of its persisted copy is due to be written.
pub fn persist_due(ahead: Duration, ttl: Duration) -> bool {
    ahead > ttl / PERSIST_FRACTION
}

/// The failure counters of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Crashes, spawn failures and timeouts in a row.
    pub consecutive_failures: u32,
    /// Exits with code 0 but no outcome, in a row.
    pub protocol_violations: u32,
    /// Claims in a row that ended without an outcome.
    pub outcomeless_attempts: u32,
}

/// Where a task goes after a claim ends without an outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Back to ready (or review, for the review lane).
    Requeue,
    /// Back to ready, but not claimable until the cooldown has passed.
    Cooldown(Duration),
    /// Blocked; `gave_up` when a breaker tripped (event `gave_up`).
    Block {
        /// A breaker tripped.
        gave_up: bool,
        /// The error to record.
        error: String,
    },
}

/// The outcome recorded on the run, the new counters and where the task goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The run's outcome.
    pub outcome: RunOutcome,
    /// New counters.
    pub counters: Counters,
    /// Where the task goes.
    pub next: Next,
    /// The error text, if the ending was a failure.
    pub error: Option<String>,
}

/// Settles a claim that ended without an outcome. `max_retries` is the task's limit, else the
/// board's, else [`DEFAULT_MAX_RETRIES`].
pub fn settle(ending: Ending, counters: Counters, max_retries: u32) -> Settlement {
    use RunOutcome as O;
    let mut c = counters;
    let attempt = |c: &mut Counters| c.outcomeless_attempts += 1;
    let (outcome, error, failure) = match ending {
        Ending::Drained => {
            return Settlement {
                outcome: O::Released,
                counters: c,
                next: Next::Requeue,
                error: None,
            };
        }
        Ending::Expired => (O::Expired, None, false),
        Ending::Released => (O::Released, None, false),
        Ending::TimedOut => (O::TimedOut, Some("the run timed out".to_owned()), true),
        Ending::Exited(Exit::SpawnFailed) => (
            O::SpawnFailed,
            Some("the worker could not be started".to_owned()),
            true,
        ),
        Ending::Exited(Exit::Signal(signal)) => (
            O::Crashed,
            Some(format!("the worker was killed by signal {signal}")),
            true,
        ),
        Ending::Exited(Exit::Code(75)) => {
            return Settlement {
                outcome: O::RateLimited,
                counters: c,
                next: Next::Cooldown(RATE_LIMIT_COOLDOWN),
                error: None,
            };
        }
        Ending::Exited(Exit::Code(78)) => {
            let error = "terminal provider error (exit 78)".to_owned();
            attempt(&mut c);
            return Settlement {
                outcome: O::Crashed,
                counters: c,
                next: Next::Block {
                    gave_up: false,
                    error: error.clone(),
                },
                error: Some(error),
            };
        }
        Ending::Exited(Exit::Code(0)) => {
            attempt(&mut c);
            c.protocol_violations += 1;
            let error = "the worker exited 0 without reporting an outcome".to_owned();
            let next = if c.protocol_violations >= PROTOCOL_VIOLATION_LIMIT {
                Next::Block {
                    gave_up: true,
                    error: format!("{error} {PROTOCOL_VIOLATION_LIMIT} times in a row"),
                }
            } else {
                Next::Requeue
            };
            return Settlement {
                outcome: O::Crashed,
                counters: c,
                next,
                error: Some(error),
            };
        }
        Ending::Exited(Exit::Code(code)) => (
            O::Crashed,
            Some(format!("the worker exited with code {code}")),
            true,
        ),
    };
    attempt(&mut c);
    if failure {
        c.consecutive_failures += 1;
    }
    let next = if failure && c.consecutive_failures >= max_retries {
        Next::Block {
            gave_up: true,
            error: format!(
                "gave up after {} failures in a row; last: {}",
                c.consecutive_failures,
                error.as_deref().unwrap_or_default()
            ),
        }
    } else if c.outcomeless_attempts >= OUTCOMELESS_LIMIT {
        Next::Block {
            gave_up: true,
            error: format!("{OUTCOMELESS_LIMIT} claims in a row ended without an outcome"),
        }
    } else {
        Next::Requeue
    };
    Settlement {
        outcome,
        counters: c,
        next,
        error,
    }
}

/// The failure limit of a task: its own, else its board's, else the default.
pub fn failure_limit(task_max_retries: u32, board_max_retries: u32) -> u32 {
    [task_max_retries, board_max_retries]
        .into_iter()
        .find(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_RETRIES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_claims_pass_and_newer_epochs_supersede() {
        assert_eq!(
            fence(Some((3, ClaimState::Live)), Some(3), Use::Hold),
            Ok(())
        );
        assert_eq!(
            fence(Some((3, ClaimState::Live)), Some(4), Use::Hold),
            Err(LeaseLost::Superseded)
        );
        assert_eq!(fence(None, Some(4), Use::Hold), Err(LeaseLost::Unknown));
    }

    #[test]
    fn revoked_claims_may_only_confirm() {
        let revoking = ClaimState::Revoking(RevokeCause::Reclaimed);
        assert_eq!(fence(Some((1, revoking)), Some(1), Use::Confirm), Ok(()));
        assert_eq!(
            fence(Some((1, revoking)), Some(1), Use::Hold),
            Err(LeaseLost::Revoked)
        );
        let reset = ClaimState::Revoking(RevokeCause::BoardReset);
        assert_eq!(
            fence(Some((1, reset)), None, Use::Hold),
            Err(LeaseLost::BoardReset)
        );
    }

    #[test]
    fn ended_claims_say_why() {
        let cases = [
            (EndReason::Expired, LeaseLost::Expired),
            (EndReason::Revoked, LeaseLost::Revoked),
            (EndReason::BoardReset, LeaseLost::BoardReset),
            (EndReason::Outcome, LeaseLost::Unknown),
            (EndReason::Released, LeaseLost::Unknown),
        ];
        for (reason, lost) in cases {
            for wanted in [Use::Hold, Use::Confirm] {
                assert_eq!(
                    fence(Some((2, ClaimState::Ended(reason))), Some(2), wanted),
                    Err(lost)
                );
            }
        }
    }

    #[test]
    fn an_expired_lease_is_not_a_failure_but_counts_as_an_attempt() {
        let s = settle(Ending::Expired, Counters::default(), 2);
        assert_eq!(s.outcome, RunOutcome::Expired);
        assert_eq!(s.next, Next::Requeue);
        assert_eq!(s.counters.consecutive_failures, 0);
        assert_eq!(s.counters.outcomeless_attempts, 1);
    }

    #[test]
    fn crashes_trip_the_breaker_at_the_limit() {
        let first = settle(Ending::Exited(Exit::Code(1)), Counters::default(), 2);
        assert_eq!(
            (first.outcome, first.next.clone()),
            (RunOutcome::Crashed, Next::Requeue)
        );
        let second = settle(Ending::Exited(Exit::Signal(9)), first.counters, 2);
        assert!(
            matches!(second.next, Next::Block { gave_up: true, .. }),
            "{second:?}"
        );
        assert_eq!(second.counters.consecutive_failures, 2);
        let spawn = settle(Ending::Exited(Exit::SpawnFailed), Counters::default(), 1);
        assert_eq!(spawn.outcome, RunOutcome::SpawnFailed);
        assert!(matches!(spawn.next, Next::Block { gave_up: true, .. }));
        let timeout = settle(Ending::TimedOut, Counters::default(), 3);
        assert_eq!(
            (timeout.outcome, timeout.counters.consecutive_failures),
            (RunOutcome::TimedOut, 1)
        );
    }

    #[test]
    fn exit_codes_are_classified() {
        let rate = settle(Ending::Exited(Exit::Code(75)), Counters::default(), 2);
        assert_eq!(rate.outcome, RunOutcome::RateLimited);
        assert_eq!(rate.next, Next::Cooldown(RATE_LIMIT_COOLDOWN));
        assert_eq!(
            rate.counters,
            Counters::default(),
            "a rate limit is not a failure"
        );

        let provider = settle(Ending::Exited(Exit::Code(78)), Counters::default(), 2);
        assert!(matches!(provider.next, Next::Block { gave_up: false, .. }));

        let mut c = Counters::default();
        for round in 1..=PROTOCOL_VIOLATION_LIMIT {
            let s = settle(Ending::Exited(Exit::Code(0)), c, 100);
            c = s.counters;
            assert_eq!(c.protocol_violations, round);
            assert_eq!(c.consecutive_failures, 0, "exit 0 has its own budget");
            let blocked = matches!(s.next, Next::Block { gave_up: true, .. });
            assert_eq!(blocked, round == PROTOCOL_VIOLATION_LIMIT);
        }
    }

    #[test]
    fn attempts_without_outcome_cannot_spin_forever() {
        let mut c = Counters::default();
        let mut verdicts = Vec::new();
        for _ in 0..OUTCOMELESS_LIMIT {
            let s = settle(Ending::Expired, c, 2);
            c = s.counters;
            verdicts.push(matches!(s.next, Next::Block { gave_up: true, .. }));
        }
        assert_eq!(verdicts.iter().filter(|b| **b).count(), 1);
        assert!(verdicts.last().copied().unwrap());
        let drained = settle(Ending::Drained, Counters::default(), 2);
        assert_eq!(
            drained.counters,
            Counters::default(),
            "a drain is not an attempt"
        );
    }

    #[test]
    fn a_holder_ending_a_cancelled_claim_is_a_reclaim_whatever_the_exit() {
        for ending in [
            Ending::Released,
            Ending::Exited(Exit::Signal(15)),
            Ending::Exited(Exit::Code(0)),
            Ending::Exited(Exit::Code(1)),
            Ending::Exited(Exit::SpawnFailed),
        ] {
            assert!(ends_as_reclaim(ending, true), "{ending:?}");
            assert!(
                !ends_as_reclaim(ending, false),
                "{ending:?} without a cancel"
            );
        }
        for ending in [Ending::Expired, Ending::Drained, Ending::TimedOut] {
            assert!(
                !ends_as_reclaim(ending, true),
                "{ending:?} is not the holder's"
            );
        }
    }

    #[test]
    fn a_deadline_is_persisted_once_it_moved_a_quarter_ttl() {
        let ttl = Duration::from_secs(60);
        assert!(!persist_due(Duration::ZERO, ttl));
        assert!(!persist_due(Duration::from_secs(15), ttl));
        assert!(persist_due(Duration::from_millis(15_001), ttl));
    }

    #[test]
    fn only_the_same_holder_call_is_a_retry() {
        for call in HolderCall::ALL {
            assert_eq!(HolderCall::parse(call.as_str()), Some(call));
            assert!(already_recorded(Some(call), call));
            assert!(
                !already_recorded(None, call),
                "ended by kanband, not by a call"
            );
            for other in HolderCall::ALL.into_iter().filter(|o| *o != call) {
                assert!(
                    !already_recorded(Some(other), call),
                    "{other:?} then {call:?}"
                );
            }
        }
    }

    #[test]
    fn failure_limits_fall_back_from_task_to_board_to_default() {
        assert_eq!(failure_limit(5, 3), 5);
        assert_eq!(failure_limit(0, 3), 3);
        assert_eq!(failure_limit(0, 0), DEFAULT_MAX_RETRIES);
    }
}
