//! Why the supervisor stops a worker, and what that decides: how hard it is stopped, and how
//! its exit is told to kanband.
//!
//! A worker that ends on its own is reported with ReportExit: its exit code or signal is its
//! outcome (crashed, rate limited, ...). A worker ended *for* a reason outside it must not
//! count as a failure: the supervisor gave the claim up (lost session, jeopardy, shutdown) or an
//! operator asked it to stop (`cancel_requested`), so its exit, whatever it is, is confirmed
//! with Release and the reason. If the worker had recorded an outcome itself before it exited
//! (`kanbanctl complete` in a SIGTERM trap), that Release is refused as ABORTED and dropped by
//! the reporter, so the outcome stands and nothing else is said. A revocation kanband pushed is
//! confirmed by ReportExit (kanband already knows why it ended the claim).

use std::time::Duration;

use super::{child::Ending, jeopardy, report::Report};

/// Why the supervisor is stopping a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// An operator asked for the worker to stop (`cancel_requested`); the claim is still live.
    Cancelled,
    /// kanband revoked the claim.
    Revoked,
    /// A renewal no longer listed the claim.
    NotRenewed,
    /// kanband said the session is gone.
    SessionLost,
    /// No renewal was acknowledged in time.
    Jeopardy,
    /// The supervisor is shutting down and the drain limit passed.
    Shutdown,
}

impl Stop {
    /// Whether the claim is handed back with Release rather than ReportExit.
    pub(super) fn releases(self) -> bool {
        matches!(
            self,
            Stop::Cancelled | Stop::SessionLost | Stop::Jeopardy | Stop::Shutdown
        )
    }

    /// Why, for logs and for the Release reason.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Stop::Cancelled => "the worker stopped on the operator's request (cancel requested)",
            Stop::Revoked => "the claim was revoked",
            Stop::NotRenewed => "the claim was no longer renewed",
            Stop::SessionLost => "the supervisor's session was lost",
            Stop::Jeopardy => "the supervisor could not renew its lease in time",
            Stop::Shutdown => "the supervisor shut down before the worker finished",
        }
    }

    /// Time between SIGTERM and SIGKILL, or `None` for SIGTERM alone. A cancel leaves the
    /// worker its whole grace to finish (kanband revokes the claim when the grace is over). When
    /// the lease itself is lost nobody waits for a confirmation and a successor may start at the
    /// server's deadline, so the grace is capped at the jeopardy margin.
    pub(super) fn kill_after(self, kill_grace: Duration, ttl: Duration) -> Option<Duration> {
        match self {
            Stop::Cancelled => None,
            Stop::Revoked | Stop::Shutdown => Some(kill_grace),
            Stop::NotRenewed | Stop::SessionLost | Stop::Jeopardy => {
                Some(kill_grace.min(jeopardy::margin(ttl)))
            }
        }
    }

    /// The reason to record when `next` comes on top of `earlier`: a release decided earlier
    /// stays a release (a cancelled worker whose grace ran out is still released, which also
    /// confirms the revocation).
    pub(super) fn after(earlier: Option<Stop>, next: Stop) -> Stop {
        match earlier {
            Some(stop) if stop.releases() => stop,
            _ => next,
        }
    }

    /// Whether a stop still leaves the claim to the renewal check (a claim that renewals stop
    /// listing is stopped as [`Stop::NotRenewed`]): only a cancel does, since the worker may
    /// ignore SIGTERM and the push of the revocation that follows may be lost.
    pub(super) fn watches_renewals(stop: Option<Stop>) -> bool {
        matches!(stop, None | Some(Stop::Cancelled))
    }
}

/// What to tell kanband about a worker that ended `ending`, given why (if at all) the
/// supervisor was stopping it. The output tail goes with a failure only: kanband records it as
/// the run's error, and the output of a worker that exited 0 is no error.
pub(super) fn report(
    stop: Option<Stop>,
    token: String,
    task_id: String,
    ending: Ending,
    tail: String,
) -> Report {
    match stop {
        Some(stop) if stop.releases() => Report::Release {
            token,
            task_id,
            reason: stop.reason().to_owned(),
        },
        _ => Report::Exit {
            token,
            task_id,
            exit: ending.to_pb(),
            tail: if ending == Ending::Code(0) {
                String::new()
            } else {
                tail
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use kanband_proto::pb;

    use super::*;

    fn kind(report: &Report) -> &'static str {
        match report {
            Report::Exit { .. } => "exit",
            Report::Release { .. } => "release",
        }
    }

    fn report_of(stop: Option<Stop>, ending: Ending) -> Report {
        report(stop, "c".into(), "t".into(), ending, "tail".into())
    }

    #[test]
    fn the_output_tail_goes_with_a_failed_exit_only() {
        let tail = |ending| match report_of(None, ending) {
            Report::Exit { tail, .. } => tail,
            other => panic!("{ending:?}: {other:?}"),
        };
        assert_eq!(tail(Ending::Code(0)), "");
        assert_eq!(tail(Ending::Code(1)), "tail");
        assert_eq!(tail(Ending::Signal(9)), "tail");
    }

    #[test]
    fn a_cancelled_worker_is_released_however_it_ends() {
        const SIGTERM: i32 = 15;
        for ending in [Ending::Signal(SIGTERM), Ending::Code(0), Ending::Code(3)] {
            let r = report_of(Some(Stop::Cancelled), ending);
            match r {
                Report::Release { reason, .. } => {
                    assert!(reason.contains("operator's request"), "{reason}")
                }
                other => panic!("{ending:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_worker_ending_on_its_own_or_revoked_reports_its_exit() {
        let r = report_of(None, Ending::Signal(15));
        assert!(matches!(
            r,
            Report::Exit {
                exit: pb::report_exit_request::Exit::Signal(15),
                ..
            }
        ));
        assert_eq!(
            kind(&report_of(Some(Stop::Revoked), Ending::Code(1))),
            "exit"
        );
        assert_eq!(
            kind(&report_of(Some(Stop::NotRenewed), Ending::Code(1))),
            "exit"
        );
        for stop in [Stop::SessionLost, Stop::Jeopardy, Stop::Shutdown] {
            assert_eq!(kind(&report_of(Some(stop), Ending::Signal(9))), "release");
        }
    }

    #[test]
    fn a_release_decided_first_stays_a_release() {
        assert_eq!(
            Stop::after(Some(Stop::Cancelled), Stop::Revoked),
            Stop::Cancelled
        );
        assert_eq!(
            Stop::after(Some(Stop::Jeopardy), Stop::Revoked),
            Stop::Jeopardy
        );
        assert_eq!(
            Stop::after(Some(Stop::Revoked), Stop::Shutdown),
            Stop::Shutdown
        );
        assert_eq!(Stop::after(None, Stop::Cancelled), Stop::Cancelled);
    }

    #[test]
    fn how_hard_each_stop_is() {
        let (grace, ttl) = (Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(Stop::Cancelled.kill_after(grace, ttl), None);
        assert_eq!(Stop::Revoked.kill_after(grace, ttl), Some(grace));
        assert_eq!(
            Stop::Jeopardy.kill_after(grace, Duration::from_secs(5)),
            Some(Duration::from_secs(1))
        );
        assert!(Stop::watches_renewals(None));
        assert!(Stop::watches_renewals(Some(Stop::Cancelled)));
        assert!(!Stop::watches_renewals(Some(Stop::Revoked)));
    }
}
