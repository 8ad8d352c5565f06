//! A claim's fencing and its end: whether a token may still be used, and what ending a claim
//! writes (its run, the task's failure counters, the task's next status and events).

use std::collections::BTreeMap;

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    events::{self, NewEvent},
    read,
    status::{self, refused, set_status, status_columns},
};
use crate::domain::Author;
use crate::{
    clock::now_ms,
    domain::{
        BlockKind, EventKind, RunOutcome,
        lease::{
            self, ClaimState, Counters, EndReason, Ending, HolderCall, LeaseLost, Next,
            RevokeCause, Use,
        },
        transitions::{Op, next_status},
    },
    error::{Error, Result},
    store::{
        effect::{Effect, LiveLeases},
        model::{ClaimRecord, Task},
    },
};

impl Finish {
    /// The holder call this end is, if a holder asked for it.
    pub(crate) fn call(&self) -> Option<HolderCall> {
        match self {
            Finish::Complete { .. } => Some(HolderCall::Complete),
            Finish::Block { .. } => Some(HolderCall::Block),
            Finish::RequestReview { .. } => Some(HolderCall::RequestReview),
            Finish::RequestChanges { .. } => Some(HolderCall::RequestChanges),
            Finish::Release { .. } => Some(HolderCall::Release),
            Finish::End(Ending::Exited(_)) => Some(HolderCall::ReportExit),
            Finish::End(_) | Finish::Revoked => None,
        }
    }
}

/// Loads a claim and checks that its token may be used as `wanted`.
pub(in crate::store) fn fenced(conn: &Connection, token: &str, wanted: Use) -> Result<ClaimRecord> {
    let claim = read::claim(conn, token)?;
    let epoch = match &claim {
        Some(c) => read::task_epoch(conn, &c.task_id)?,
        None => None,
    };
    fence_at(claim, epoch, wanted)
}

/// [`fenced`] for a claim and the epoch of its task (`None` if the task is gone), both loaded
/// by the caller in this transaction.
pub(in crate::store) fn fence_at(
    claim: Option<ClaimRecord>,
    task_epoch: Option<u64>,
    wanted: Use,
) -> Result<ClaimRecord> {
    lease::fence(
        claim.as_ref().map(|c| (c.epoch, c.state)),
        task_epoch,
        wanted,
    )
    .map_err(|lost| Error::lease_lost(lost, task_epoch))?;
    Ok(claim.expect("fence passed, so the claim exists"))
}

/// Checks that `token` is the live claim on `task`, for a holder's call that names the task
/// (a worker's comment or attachment): fenced like any holder call, and refused (`unknown`)
/// when it is a claim on another task.
pub(in crate::store) fn fenced_on(
    conn: &Connection,
    leases: &dyn LiveLeases,
    token: &str,
    task: &Task,
) -> Result<ClaimRecord> {
    let claim = fenced(conn, token, Use::Hold)?;
    if claim.task_id != task.id {
        return Err(Error::LeaseLost {
            reason: LeaseLost::Unknown,
            current_epoch: task.epoch,
            message: format!("the claim token is not a claim on task {}", task.id),
        });
    }
    refuse_overdue(leases, &claim, conn)?;
    Ok(claim)
}

/// Refuses a live claim whose deadline has passed: the server's clock decides, even before the
/// expiry transaction has run.
pub(in crate::store) fn refuse_overdue(
    leases: &dyn LiveLeases,
    claim: &ClaimRecord,
    conn: &Connection,
) -> Result<()> {
    if claim.state == ClaimState::Live && leases.claim_overdue(&claim.token) {
        return Err(Error::lease_lost(
            LeaseLost::Expired,
            read::task_epoch(conn, &claim.task_id)?,
        ));
    }
    Ok(())
}

/// How a claim ends.
#[derive(Debug, Clone)]
pub(crate) enum Finish {
    /// The holder completed the task.
    Complete {
        /// Result text.
        result: String,
        /// Summary.
        summary: String,
        /// Extra facts for the event.
        metadata: BTreeMap<String, String>,
    },
    /// The holder blocked it.
    Block {
        /// Kind.
        kind: BlockKind,
        /// Reason.
        reason: String,
    },
    /// The holder asks for review.
    RequestReview {
        /// Summary.
        summary: String,
    },
    /// The reviewer asks for changes.
    RequestChanges {
        /// Reason.
        reason: String,
    },
    /// The holder gave the claim back, saying why.
    Release {
        /// The holder's reason, recorded on the run and its event.
        reason: String,
    },
    /// No outcome: expiry, drain, exit without outcome, timeout.
    End(Ending),
    /// A revocation finishes (the holder confirmed, or the lease ran out).
    Revoked,
}

/// Ends `claim` for `reason`, recording the holder call that ended it if its `ended_by` names
/// one (so a retry of that call can be told from a new outcome).
fn end_claim(conn: &Connection, claim: &ClaimRecord, reason: EndReason) -> Result<()> {
    conn.prepare_cached(
        "UPDATE claims SET state = 'ended', end_reason = ?2, ended_at = ?3, ended_by = ?4
         WHERE token = ?1",
    )?
    .execute(params![
        claim.token,
        reason.as_str(),
        now_ms(),
        claim.ended_by.map(HolderCall::as_str)
    ])?;
    Ok(())
}

fn end_run(
    conn: &Connection,
    run_id: &str,
    outcome: RunOutcome,
    summary: &str,
    error: &str,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE runs SET ended_at = ?2, outcome = ?3, summary = ?4, error = ?5 WHERE id = ?1",
    )?
    .execute(params![run_id, now_ms(), outcome.as_str(), summary, error])?;
    Ok(())
}

fn set_counters(conn: &Connection, task_id: &str, c: Counters, error: Option<&str>) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tasks SET consecutive_failures = ?2, protocol_violations = ?3,
                outcomeless_attempts = ?4, last_failure_error = coalesce(?5, last_failure_error),
                current_run_id = NULL
         WHERE id = ?1",
    )?
    .execute(params![
        task_id,
        c.consecutive_failures,
        c.protocol_violations,
        c.outcomeless_attempts,
        error
    ])?;
    Ok(())
}

fn counters(task: &Task) -> Counters {
    Counters {
        consecutive_failures: task.consecutive_failures,
        protocol_violations: task.protocol_violations,
        outcomeless_attempts: task.outcomeless_attempts,
    }
}

/// Ends a claim that ended without an outcome: an operator reclaim if its holder ended it while
/// a cancel request was pending, else settled by the failure rules. `note` is the holder's
/// reason, if it gave one.
fn end_without_outcome(
    conn: &Connection,
    claim: &ClaimRecord,
    task: &Task,
    ending: Ending,
    note: &str,
    by: &Author,
    fx: &mut Vec<Effect>,
) -> Result<()> {
    let reason = if ending == Ending::Expired {
        EndReason::Expired
    } else {
        EndReason::Released
    };
    end_claim(conn, claim, reason)?;
    if lease::ends_as_reclaim(ending, claim.cancel_until.is_some()) {
        return reclaim_in(conn, claim, task, RunOutcome::Reclaimed, note, by);
    }
    settle_in(conn, claim, task, ending, note, by, fx)
}

/// An operator reclaim finishes: the run ends with `outcome` (`reclaimed`, or `revoked` when a
/// cancel's grace ran out), no failure is counted and the breaker is reset, the task goes back
/// to ready (event `requeued`), and the dispatcher prefers another session for it.
fn reclaim_in(
    conn: &Connection,
    claim: &ClaimRecord,
    task: &Task,
    outcome: RunOutcome,
    note: &str,
    by: &Author,
) -> Result<()> {
    end_run(conn, &claim.run_id, outcome, note, "")?;
    set_counters(conn, &task.id, Counters::default(), None)?;
    conn.execute(
        "UPDATE tasks SET reclaimed_from = ?2 WHERE id = ?1",
        params![task.id, claim.session_id],
    )?;
    let mut ctx = status::context(conn, task, Op::Requeue)?;
    ctx.review_lane = claim.review;
    let to =
        next_status(task.status, Op::Requeue, &ctx).map_err(|r| refused(&task.id, "reclaim", r))?;
    let mut details = vec![
        ("run", claim.run_id.clone()),
        ("epoch", claim.epoch.to_string()),
        ("outcome", outcome.as_str().to_owned()),
    ];
    if !note.is_empty() {
        details.push(("reason", note.to_owned()));
    }
    set_status(conn, task, to, EventKind::Requeued, by, &details)
}

/// Applies a settlement of a claim that ended without an outcome.
fn settle_in(
    conn: &Connection,
    claim: &ClaimRecord,
    task: &Task,
    ending: Ending,
    note: &str,
    by: &Author,
    fx: &mut Vec<Effect>,
) -> Result<()> {
    let limit = lease::failure_limit(
        task.max_retries,
        read::board_max_retries(conn, &task.board)?,
    );
    let s = lease::settle(ending, counters(task), limit);
    let error = s.error.clone().unwrap_or_default();
    end_run(conn, &claim.run_id, s.outcome, note, &error)?;
    set_counters(conn, &task.id, s.counters, s.error.as_deref())?;
    // For a requeue, which reads the parents, and for a block, which does not.
    let mut ctx = status::context(conn, task, Op::Requeue)?;
    ctx.review_lane = claim.review;
    let mut details = vec![("run", claim.run_id.clone()), ("error", error.clone())];
    if !note.is_empty() {
        details.push(("reason", note.to_owned()));
    }
    match s.next {
        Next::Requeue | Next::Cooldown(_) => {
            let to = next_status(task.status, Op::Requeue, &ctx)
                .map_err(|r| refused(&task.id, "requeue", r))?;
            set_status(conn, task, to, EventKind::ended(s.outcome), by, &details)?;
            if let Next::Cooldown(wait) = s.next {
                let until = now_ms() + wait.as_millis() as i64;
                conn.execute(
                    "UPDATE tasks SET cooldown_until = ?2 WHERE id = ?1",
                    params![task.id, until],
                )?;
                fx.push(Effect::Cooldown(task.id.clone(), until));
            }
        }
        Next::Block { gave_up, error } => {
            let to = next_status(task.status, Op::Fail, &ctx)
                .map_err(|r| refused(&task.id, "block", r))?;
            conn.execute(
                "UPDATE tasks SET block_reason = ?2, last_failure_error = ?2 WHERE id = ?1",
                params![task.id, error],
            )?;
            set_status(conn, task, to, EventKind::ended(s.outcome), by, &details)?;
            if gave_up {
                events::append(
                    conn,
                    NewEvent {
                        board: &task.board,
                        task_id: &task.id,
                        kind: EventKind::GaveUp,
                        by,
                        details: &[("error", error)],
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// Ends a claim as `finish` says, inside the caller's transaction.
pub(in crate::store) fn finish_in(
    conn: &Connection,
    claim: &ClaimRecord,
    finish: Finish,
    by: &Author,
    fx: &mut Vec<Effect>,
) -> Result<Option<Task>> {
    let task = read::task_if_exists(conn, &claim.task_id)?;
    finish_task_in(conn, claim, task, finish, by, fx)
}

/// [`finish_in`] for a claim whose task (`None` if it is gone) the caller has already loaded in
/// this transaction.
pub(in crate::store) fn finish_task_in(
    conn: &Connection,
    claim: &ClaimRecord,
    task: Option<Task>,
    finish: Finish,
    by: &Author,
    fx: &mut Vec<Effect>,
) -> Result<Option<Task>> {
    fx.push(Effect::Ended(claim.token.clone()));
    let Some(task) = task else {
        // The board was reset: the task and its runs are gone; only the claim remains.
        end_claim(conn, claim, EndReason::BoardReset)?;
        return Ok(None);
    };
    // An outcome other than complete resets the counters but the failures in a row.
    let outcome_reset = |conn: &Connection, task: &Task| -> Result<()> {
        let c = Counters {
            consecutive_failures: task.consecutive_failures,
            ..Counters::default()
        };
        set_counters(conn, &task.id, c, None)
    };
    // The rules' view of the task for the holder's outcome.
    let context = |op| -> Result<_> {
        let mut ctx = status::context(conn, &task, op)?;
        ctx.review_lane = claim.review;
        Ok(ctx)
    };
    let run = [
        ("run", claim.run_id.clone()),
        ("epoch", claim.epoch.to_string()),
    ];
    match finish {
        Finish::Complete {
            result,
            summary,
            metadata,
        } => {
            let to = next_status(task.status, Op::Complete, &context(Op::Complete)?)
                .map_err(|r| refused(&task.id, "complete", r))?;
            end_claim(conn, claim, EndReason::Outcome)?;
            end_run(conn, &claim.run_id, RunOutcome::Completed, &summary, "")?;
            // The outcome reset (every failure counter to 0, no current run), the result and
            // the status, in one row write.
            let at = now_ms();
            conn.prepare_cached(concat!(
                "UPDATE tasks SET ",
                status_columns!(),
                ", consecutive_failures = 0, protocol_violations = 0, outcomeless_attempts = 0,
                   current_run_id = NULL, result = ?4, summary = ?5, block_recurrences = 0
                 WHERE id = ?1"
            ))?
            .execute(params![task.id, to.as_str(), at, result, summary])?;
            let metadata: Vec<(String, String)> = metadata
                .into_iter()
                .map(|(k, v)| (format!("meta.{k}"), v))
                .collect();
            let mut details = run.to_vec();
            details.extend(metadata.iter().map(|(k, v)| (k.as_str(), v.clone())));
            status::status_written(conn, &task, to, EventKind::Completed, by, &details)?;
            // The task as the write above left it, without reading it back.
            return Ok(Some(Task {
                consecutive_failures: 0,
                protocol_violations: 0,
                outcomeless_attempts: 0,
                current_run_id: None,
                result,
                summary,
                block_recurrences: 0,
                ..status::with_status(task, to, at)
            }));
        }
        Finish::Block { kind, reason } => {
            end_claim(conn, claim, EndReason::Outcome)?;
            end_run(conn, &claim.run_id, RunOutcome::Blocked, &reason, "")?;
            outcome_reset(conn, &task)?;
            status::block_in(conn, &task, Op::HolderBlock(kind), kind, &reason, by)?;
        }
        Finish::RequestReview { summary } => {
            let to = next_status(task.status, Op::RequestReview, &context(Op::RequestReview)?)
                .map_err(|r| refused(&task.id, "request review of", r))?;
            end_claim(conn, claim, EndReason::Outcome)?;
            end_run(
                conn,
                &claim.run_id,
                RunOutcome::ReviewRequested,
                &summary,
                "",
            )?;
            outcome_reset(conn, &task)?;
            conn.execute(
                "UPDATE tasks SET summary = ?2 WHERE id = ?1",
                params![task.id, summary],
            )?;
            set_status(conn, &task, to, EventKind::ReviewRequested, by, &run)?;
        }
        Finish::RequestChanges { reason } => {
            let to = next_status(
                task.status,
                Op::RequestChanges,
                &context(Op::RequestChanges)?,
            )
            .map_err(|r| refused(&task.id, "request changes to", r))?;
            end_claim(conn, claim, EndReason::Outcome)?;
            end_run(
                conn,
                &claim.run_id,
                RunOutcome::ChangesRequested,
                &reason,
                "",
            )?;
            outcome_reset(conn, &task)?;
            let mut details = run.to_vec();
            details.push(("reason", reason));
            set_status(conn, &task, to, EventKind::ChangesRequested, by, &details)?;
        }
        Finish::Release { reason } => {
            end_without_outcome(conn, claim, &task, Ending::Released, &reason, by, fx)?;
        }
        Finish::End(ending) => end_without_outcome(conn, claim, &task, ending, "", by, fx)?,
        Finish::Revoked => {
            let ClaimState::Revoking(cause) = claim.state else {
                return Err(Error::FailedPrecondition(format!(
                    "claim of task {} is not being revoked",
                    task.id
                )));
            };
            end_claim(conn, claim, EndReason::Revoked)?;
            match cause {
                RevokeCause::Archived | RevokeCause::BoardReset => {
                    end_run(conn, &claim.run_id, RunOutcome::Revoked, "", "")?;
                    conn.execute(
                        "UPDATE tasks SET current_run_id = NULL WHERE id = ?1",
                        [&task.id],
                    )?;
                }
                RevokeCause::Reclaimed => {
                    // Revoked at the end of a cancel's grace: the holder did not stop in time.
                    let outcome = if claim.cancel_until.is_some() {
                        RunOutcome::Revoked
                    } else {
                        RunOutcome::Reclaimed
                    };
                    reclaim_in(conn, claim, &task, outcome, "", by)?;
                }
                RevokeCause::Scheduled => {
                    end_run(conn, &claim.run_id, RunOutcome::Scheduled, "", "")?;
                    conn.execute(
                        "UPDATE tasks SET current_run_id = NULL WHERE id = ?1",
                        [&task.id],
                    )?;
                    let to = next_status(task.status, Op::Schedule, &context(Op::Schedule)?)
                        .map_err(|r| refused(&task.id, "schedule", r))?;
                    set_status(conn, &task, to, EventKind::Scheduled, by, &run)?;
                    conn.execute(
                        "UPDATE tasks SET scheduled_until = ?2 WHERE id = ?1",
                        params![task.id, claim.revoke_until],
                    )?;
                    if let Some(until) = claim.revoke_until {
                        fx.push(Effect::Wake(task.id.clone(), until));
                    }
                }
                RevokeCause::MaxRuntime | RevokeCause::StaleProgress => {
                    settle_in(conn, claim, &task, Ending::TimedOut, "", by, fx)?;
                }
            }
        }
    }
    Ok(Some(read::task(conn, &claim.task_id)?))
}
