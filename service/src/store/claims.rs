//! Claims: grants, the holder's outcomes, fencing, expiry and revocation, each one
//! transaction whose effects reach the lease registry right after its commit.

use std::collections::{BTreeMap, HashMap, HashSet};

use tokio_rusqlite::rusqlite::{self, Connection, OptionalExtension as _, Row, params};

use super::{
    Store,
    events::{self, NewEvent},
    lifecycle::{self, refused},
    now_ms, sessions, tasks,
};
use crate::{
    dispatch::rules::{self as dispatch, Load, SessionView, TaskView},
    domain::{
        BlockKind, RunOutcome, Status, ids,
        transitions::{Op, next_status},
    },
    error::{Error, Result},
    leases::{
        registry::{ClaimRecord, Effect, Registry, SessionRecord},
        rules::{
            self, ClaimState, Counters, EndReason, Ending, Exit, LeaseLost, Next, RevokeCause, Use,
        },
    },
    store::model::Task,
};

/// Prefix of claim tokens.
pub const TOKEN: &str = "c_";
/// Prefix of session ids.
pub const SESSION: &str = "s_";

const CLAIM_COLUMNS: &str = "token, task_id, board, epoch, run_id, session_id, profile, review, \
    state, revoke_cause, end_reason, revoke_until";

fn claim(row: &Row<'_>) -> rusqlite::Result<ClaimRecord> {
    let state: String = row.get(8)?;
    let cause: Option<String> = row.get(9)?;
    let end: Option<String> = row.get(10)?;
    let state = match state.as_str() {
        "live" => ClaimState::Live,
        "revoking" => ClaimState::Revoking(
            cause
                .as_deref()
                .and_then(RevokeCause::parse)
                .unwrap_or(RevokeCause::Reclaimed),
        ),
        _ => ClaimState::Ended(
            end.as_deref()
                .and_then(EndReason::parse)
                .unwrap_or(EndReason::Outcome),
        ),
    };
    Ok(ClaimRecord {
        token: row.get(0)?,
        task_id: row.get(1)?,
        board: row.get(2)?,
        epoch: row.get::<_, i64>(3)? as u64,
        run_id: row.get(4)?,
        session_id: row.get(5)?,
        profile: row.get(6)?,
        review: row.get(7)?,
        state,
        revoke_until: row.get(11)?,
    })
}

/// A claim by token, in any state.
pub(super) fn load(conn: &Connection, token: &str) -> Result<Option<ClaimRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM claims WHERE token = ?1"
        ))?
        .query_row([token], claim)
        .optional()?)
}

/// The unended claim of a task, if any.
pub(super) fn unended_for_task(conn: &Connection, task_id: &str) -> Result<Option<ClaimRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM claims WHERE task_id = ?1 AND state <> 'ended'"
        ))?
        .query_row([task_id], claim)
        .optional()?)
}

/// The unended claims of a session.
pub(super) fn of_session(conn: &Connection, session_id: &str) -> Result<Vec<ClaimRecord>> {
    let claims = conn
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM claims WHERE session_id = ?1 AND state <> 'ended'"
        ))?
        .query_map([session_id], claim)?
        .collect::<Result<_, _>>()?;
    Ok(claims)
}

/// The unended claims of a board.
pub(super) fn of_board(conn: &Connection, board: &str) -> Result<Vec<ClaimRecord>> {
    let claims = conn
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM claims WHERE board = ?1 AND state <> 'ended'"
        ))?
        .query_map([board], claim)?
        .collect::<Result<_, _>>()?;
    Ok(claims)
}

/// Every unended claim with its recorded deadline and its task's maximum runtime.
pub(super) fn all_unended(conn: &Connection) -> Result<Vec<(ClaimRecord, i64, u32)>> {
    let columns = CLAIM_COLUMNS
        .split(", ")
        .map(|c| format!("c.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let claims = conn
        .prepare(&format!(
            "SELECT {columns}, c.expires_at, coalesce(t.max_runtime_seconds, 0)
             FROM claims c LEFT JOIN tasks t ON t.id = c.task_id WHERE c.state <> 'ended'"
        ))?
        .query_map([], |row| Ok((claim(row)?, row.get(12)?, row.get(13)?)))?
        .collect::<Result<_, _>>()?;
    Ok(claims)
}

/// The task's current epoch, if the task exists.
fn task_epoch(conn: &Connection, task_id: &str) -> Result<Option<u64>> {
    Ok(conn
        .prepare_cached("SELECT epoch FROM tasks WHERE id = ?1")?
        .query_row([task_id], |row| row.get::<_, i64>(0))
        .optional()?
        .map(|e| e as u64))
}

/// The error for a refused token.
pub(crate) fn lease_lost(lost: LeaseLost, epoch: Option<u64>) -> Error {
    let message = match lost {
        LeaseLost::Expired => "the claim's lease expired before it was renewed",
        LeaseLost::Revoked => "the claim was revoked",
        LeaseLost::Superseded => "the task has been claimed again since",
        LeaseLost::BoardReset => "the task's board was reset",
        LeaseLost::Unknown => {
            "the claim token is not a live claim (never issued, or already ended)"
        }
    };
    Error::LeaseLost {
        reason: lost,
        current_epoch: epoch.unwrap_or(0),
        message: message.into(),
    }
}

/// Loads a claim and checks that its token may be used as `wanted`.
pub(super) fn fenced(conn: &Connection, token: &str, wanted: Use) -> Result<ClaimRecord> {
    let claim = load(conn, token)?;
    let epoch = match &claim {
        Some(c) => task_epoch(conn, &c.task_id)?,
        None => None,
    };
    rules::fence(claim.as_ref().map(|c| (c.epoch, c.state)), epoch, wanted)
        .map_err(|lost| lease_lost(lost, epoch))?;
    Ok(claim.expect("fence passed, so the claim exists"))
}

/// Refuses a live claim whose deadline has passed: the server's clock decides, even before the
/// expiry transaction has run.
fn refuse_overdue(registry: &Registry, claim: &ClaimRecord, conn: &Connection) -> Result<()> {
    if claim.state == ClaimState::Live && registry.claim_overdue(&claim.token) {
        return Err(lease_lost(
            LeaseLost::Expired,
            task_epoch(conn, &claim.task_id)?,
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
    /// No outcome: release, expiry, drain, exit without outcome, timeout.
    End(Ending),
    /// A revocation finishes (the holder confirmed, or the lease ran out).
    Revoked,
}

fn end_claim(conn: &Connection, token: &str, reason: EndReason) -> Result<()> {
    conn.prepare_cached(
        "UPDATE claims SET state = 'ended', end_reason = ?2, ended_at = ?3 WHERE token = ?1",
    )?
    .execute(params![token, reason.as_str(), now_ms()])?;
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

fn board_max_retries(conn: &Connection, board: &str) -> Result<u32> {
    Ok(conn
        .prepare_cached("SELECT max_retries FROM boards WHERE slug = ?1")?
        .query_row([board], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Applies a settlement of a claim that ended without an outcome.
fn settle_in(
    conn: &Connection,
    claim: &ClaimRecord,
    task: &Task,
    ending: Ending,
    actor: &str,
    fx: &mut Vec<Effect>,
) -> Result<()> {
    let limit = rules::failure_limit(task.max_retries, board_max_retries(conn, &task.board)?);
    let s = rules::settle(ending, counters(task), limit);
    let error = s.error.clone().unwrap_or_default();
    end_run(conn, &claim.run_id, s.outcome, "", &error)?;
    set_counters(conn, &task.id, s.counters, s.error.as_deref())?;
    let mut ctx = lifecycle::context(conn, task)?;
    ctx.review_lane = claim.review;
    let details = [("run", claim.run_id.clone()), ("error", error.clone())];
    match s.next {
        Next::Requeue | Next::Cooldown(_) => {
            let to = next_status(task.status, Op::Requeue, &ctx)
                .map_err(|r| refused(&task.id, "requeue", r))?;
            lifecycle::set_status(conn, task, to, s.outcome.as_str(), actor, &details)?;
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
            lifecycle::set_status(conn, task, to, s.outcome.as_str(), actor, &details)?;
            if gave_up {
                events::append(
                    conn,
                    NewEvent {
                        board: &task.board,
                        task_id: &task.id,
                        kind: "gave_up",
                        actor,
                        details: &[("error", error)],
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// Ends a claim as `finish` says, inside the caller's transaction.
pub(super) fn finish_in(
    conn: &Connection,
    claim: &ClaimRecord,
    finish: Finish,
    actor: &str,
    fx: &mut Vec<Effect>,
) -> Result<Option<Task>> {
    fx.push(Effect::Ended(claim.token.clone()));
    let task = match tasks::load(conn, &claim.task_id) {
        Ok(task) => task,
        Err(Error::NotFound { .. }) => {
            // The board was reset: the task and its runs are gone; only the claim remains.
            end_claim(conn, &claim.token, EndReason::BoardReset)?;
            return Ok(None);
        }
        Err(err) => return Err(err),
    };
    let outcome_reset = |conn: &Connection, task: &Task, complete: bool| -> Result<()> {
        let c = Counters {
            consecutive_failures: if complete {
                0
            } else {
                task.consecutive_failures
            },
            ..Counters::default()
        };
        set_counters(conn, &task.id, c, None)
    };
    let mut ctx = lifecycle::context(conn, &task)?;
    ctx.review_lane = claim.review;
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
            let to = next_status(task.status, Op::Complete, &ctx)
                .map_err(|r| refused(&task.id, "complete", r))?;
            end_claim(conn, &claim.token, EndReason::Outcome)?;
            end_run(conn, &claim.run_id, RunOutcome::Completed, &summary, "")?;
            outcome_reset(conn, &task, true)?;
            conn.execute(
                "UPDATE tasks SET result = ?2, summary = ?3, block_recurrences = 0 WHERE id = ?1",
                params![task.id, result, summary],
            )?;
            let metadata: Vec<(String, String)> = metadata
                .into_iter()
                .map(|(k, v)| (format!("meta.{k}"), v))
                .collect();
            let mut details = run.to_vec();
            details.extend(metadata.iter().map(|(k, v)| (k.as_str(), v.clone())));
            lifecycle::set_status(conn, &task, to, "completed", actor, &details)?;
        }
        Finish::Block { kind, reason } => {
            end_claim(conn, &claim.token, EndReason::Outcome)?;
            end_run(conn, &claim.run_id, RunOutcome::Blocked, &reason, "")?;
            outcome_reset(conn, &task, false)?;
            lifecycle::block_in(conn, &task, Op::HolderBlock(kind), kind, &reason, actor)?;
        }
        Finish::RequestReview { summary } => {
            let to = next_status(task.status, Op::RequestReview, &ctx)
                .map_err(|r| refused(&task.id, "request review of", r))?;
            end_claim(conn, &claim.token, EndReason::Outcome)?;
            end_run(
                conn,
                &claim.run_id,
                RunOutcome::ReviewRequested,
                &summary,
                "",
            )?;
            outcome_reset(conn, &task, false)?;
            conn.execute(
                "UPDATE tasks SET summary = ?2 WHERE id = ?1",
                params![task.id, summary],
            )?;
            lifecycle::set_status(conn, &task, to, "review_requested", actor, &run)?;
        }
        Finish::RequestChanges { reason } => {
            let to = next_status(task.status, Op::RequestChanges, &ctx)
                .map_err(|r| refused(&task.id, "request changes to", r))?;
            end_claim(conn, &claim.token, EndReason::Outcome)?;
            end_run(
                conn,
                &claim.run_id,
                RunOutcome::ChangesRequested,
                &reason,
                "",
            )?;
            outcome_reset(conn, &task, false)?;
            let mut details = run.to_vec();
            details.push(("reason", reason));
            lifecycle::set_status(conn, &task, to, "changes_requested", actor, &details)?;
        }
        Finish::End(ending) => {
            let reason = if ending == Ending::Expired {
                EndReason::Expired
            } else {
                EndReason::Released
            };
            end_claim(conn, &claim.token, reason)?;
            settle_in(conn, claim, &task, ending, actor, fx)?;
        }
        Finish::Revoked => {
            let ClaimState::Revoking(cause) = claim.state else {
                return Err(Error::FailedPrecondition(format!(
                    "claim of task {} is not being revoked",
                    task.id
                )));
            };
            end_claim(conn, &claim.token, EndReason::Revoked)?;
            match cause {
                RevokeCause::Archived | RevokeCause::BoardReset => {
                    end_run(conn, &claim.run_id, RunOutcome::Revoked, "", "")?;
                    conn.execute(
                        "UPDATE tasks SET current_run_id = NULL WHERE id = ?1",
                        [&task.id],
                    )?;
                }
                RevokeCause::Reclaimed => {
                    end_run(conn, &claim.run_id, RunOutcome::Reclaimed, "", "")?;
                    set_counters(conn, &task.id, Counters::default(), None)?;
                    let to = next_status(task.status, Op::Requeue, &ctx)
                        .map_err(|r| refused(&task.id, "reclaim", r))?;
                    lifecycle::set_status(conn, &task, to, "requeued", actor, &run)?;
                }
                RevokeCause::Scheduled => {
                    end_run(conn, &claim.run_id, RunOutcome::Scheduled, "", "")?;
                    conn.execute(
                        "UPDATE tasks SET current_run_id = NULL WHERE id = ?1",
                        [&task.id],
                    )?;
                    let to = next_status(task.status, Op::Schedule, &ctx)
                        .map_err(|r| refused(&task.id, "schedule", r))?;
                    lifecycle::set_status(conn, &task, to, "scheduled", actor, &run)?;
                    conn.execute(
                        "UPDATE tasks SET scheduled_until = ?2 WHERE id = ?1",
                        params![task.id, claim.revoke_until],
                    )?;
                    if let Some(until) = claim.revoke_until {
                        fx.push(Effect::Wake(task.id.clone(), until));
                    }
                }
                RevokeCause::MaxRuntime | RevokeCause::StaleProgress => {
                    settle_in(conn, claim, &task, Ending::TimedOut, actor, fx)?;
                }
            }
        }
    }
    Ok(Some(tasks::load(conn, &claim.task_id)?))
}

/// Fences the live claim of a running task (two-phase revocation, phase one): the token is
/// refused from now on, the holder is told at once, and the task goes to no one else until
/// the holder confirms or the lease runs out.
pub(super) fn revoke_in(
    conn: &Connection,
    task: &Task,
    cause: RevokeCause,
    until: Option<i64>,
    actor: &str,
    fx: &mut Vec<Effect>,
) -> Result<()> {
    let Some(claim) = unended_for_task(conn, &task.id)? else {
        return Ok(());
    };
    if claim.state == ClaimState::Revoking(RevokeCause::BoardReset) {
        return Ok(());
    }
    conn.execute(
        "UPDATE claims SET state = 'revoking', revoke_cause = ?2, revoke_until = ?3 WHERE token = ?1",
        params![claim.token, cause.as_str(), until],
    )?;
    events::append(
        conn,
        NewEvent {
            board: &task.board,
            task_id: &task.id,
            kind: "revoked",
            actor,
            details: &[
                ("cause", cause.as_str().to_owned()),
                ("run", claim.run_id.clone()),
                ("epoch", claim.epoch.to_string()),
            ],
        },
    )?;
    fx.push(Effect::Revoked(claim.token, cause));
    Ok(())
}

/// Asks the holder of a running task's live claim to stop within `grace`; the claim is revoked
/// when the grace ends. A claim already being revoked is left as it is.
pub(super) fn request_cancel_in(
    conn: &Connection,
    task: &Task,
    grace: std::time::Duration,
    actor: &str,
    fx: &mut Vec<Effect>,
) -> Result<()> {
    let Some(claim) = unended_for_task(conn, &task.id)? else {
        return Ok(());
    };
    if claim.state != ClaimState::Live {
        return Ok(());
    }
    events::append(
        conn,
        NewEvent {
            board: &task.board,
            task_id: &task.id,
            kind: "cancel_requested",
            actor,
            details: &[
                ("run", claim.run_id.clone()),
                ("grace_seconds", grace.as_secs().to_string()),
            ],
        },
    )?;
    fx.push(Effect::CancelRequested(claim.token, grace));
    Ok(())
}

/// The statuses a session claims from: ready, and review for the review lane.
fn lanes(review_lane: bool) -> &'static [Status] {
    if review_lane {
        &[Status::Ready, Status::Review]
    } else {
        &[Status::Ready]
    }
}

/// One lane's tasks (`status` ready or review) with what the dispatch rules need, in dispatch
/// order. Served by the `tasks_dispatch` index, so a page costs about as many rows as it holds.
pub(super) fn candidates(
    conn: &Connection,
    lane: Status,
    profiles: Option<&[String]>,
    board: Option<&str>,
    limit: u32,
    offset: u32,
) -> Result<Vec<TaskView>> {
    let sql = "SELECT t.id, t.board, t.status, t.priority, t.created_at, t.assignee,
                      b.default_assignee, b.max_running,
                      NOT EXISTS (SELECT 1 FROM task_links l JOIN tasks p ON p.id = l.parent_id
                                  WHERE l.child_id = t.id AND p.status NOT IN ('done', 'archived')),
                      t.cooldown_until, t.required_capabilities, t.target_machine
               FROM tasks t JOIN boards b ON b.slug = t.board
               WHERE t.status = ?1 AND NOT b.archived
                 AND (?2 IS NULL
                      OR t.assignee IN (SELECT value FROM json_each(?2))
                      OR (t.assignee = '' AND b.default_assignee IN (SELECT value FROM json_each(?2))))
                 AND (?3 IS NULL OR t.board = ?3)
               ORDER BY t.priority DESC, t.created_at, t.id
               LIMIT ?4 OFFSET ?5";
    let profiles = profiles.map(super::rows::list_json);
    let views = conn
        .prepare_cached(sql)?
        .query_map(
            params![lane.as_str(), profiles, board, limit, offset],
            |row| {
                let status: String = row.get(2)?;
                let caps: String = row.get(10)?;
                Ok(TaskView {
                    id: row.get(0)?,
                    board: row.get(1)?,
                    status: Status::parse(&status).unwrap_or(lane),
                    priority: row.get(3)?,
                    created_at: row.get(4)?,
                    assignee: row.get(5)?,
                    board_default_assignee: row.get(6)?,
                    board_max_running: row.get(7)?,
                    parents_finished: row.get(8)?,
                    cooldown_until: row.get(9)?,
                    required_capabilities: serde_json::from_str(&caps).unwrap_or_default(),
                    target_machine: row.get(11)?,
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    Ok(views)
}

/// A granted claim.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The task, now running.
    pub task: Task,
    /// The claim.
    pub claim: ClaimRecord,
    /// Lease time.
    pub ttl_ms: u32,
}

fn grant_in(
    conn: &Connection,
    view: &TaskView,
    session: &SessionRecord,
    fx: &mut Vec<Effect>,
) -> Result<Grant> {
    let task = tasks::load(conn, &view.id)?;
    let ctx = lifecycle::context(conn, &task)?;
    let review = task.status == Status::Review;
    let to =
        next_status(task.status, Op::Claim, &ctx).map_err(|r| refused(&task.id, "claim", r))?;
    let profile = view.profile().unwrap_or_default().to_owned();
    let epoch = task.epoch + 1;
    let run_id = ids::ordered(ids::RUN);
    let token = ids::fresh(TOKEN);
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO runs (id, task_id, epoch, session_id, profile, machine_id, review, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        run_id,
        task.id,
        epoch as i64,
        session.id,
        profile,
        session.machine_id,
        review,
        now
    ])?;
    conn.prepare_cached(
        "INSERT INTO claims (token, task_id, board, epoch, run_id, session_id, profile, review,
                             state, granted_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'live', ?9, ?10)",
    )?
    .execute(params![
        token,
        task.id,
        task.board,
        epoch as i64,
        run_id,
        session.id,
        profile,
        review,
        now,
        now + i64::from(session.ttl_ms)
    ])?;
    conn.prepare_cached(
        "UPDATE tasks SET epoch = ?2, current_run_id = ?3, started_at = coalesce(started_at, ?4),
                cooldown_until = NULL
         WHERE id = ?1",
    )?
    .execute(params![task.id, epoch as i64, run_id, now])?;
    let details = [
        ("run", run_id.clone()),
        ("epoch", epoch.to_string()),
        ("session", session.id.clone()),
        ("profile", profile.clone()),
    ];
    lifecycle::set_status(conn, &task, to, "claimed", &session.id, &details)?;
    let claim = ClaimRecord {
        token,
        task_id: task.id.clone(),
        board: task.board.clone(),
        epoch,
        run_id,
        session_id: session.id.clone(),
        profile,
        review,
        state: ClaimState::Live,
        revoke_until: None,
    };
    fx.push(Effect::Granted(claim.clone(), task.max_runtime_seconds));
    Ok(Grant {
        task: tasks::load(conn, &task.id)?,
        claim,
        ttl_ms: session.ttl_ms,
    })
}

/// Candidates fetched per query while looking for a grant.
const CANDIDATE_PAGE: u32 = 16;

/// The first task in dispatch order that `view` may claim, paging through the candidates.
fn first_claimable(
    conn: &Connection,
    session: &SessionRecord,
    view: &SessionView,
    load: &Load,
    now: i64,
) -> Result<Option<TaskView>> {
    let mut best: Option<TaskView> = None;
    for &lane in lanes(session.review_lane) {
        let mut offset = 0;
        let found = loop {
            let page = candidates(
                conn,
                lane,
                Some(&session.profiles),
                None,
                CANDIDATE_PAGE,
                offset,
            )?;
            if let Some(task) = dispatch::choose(&page, view, load, now) {
                break Some(task.clone());
            }
            if page.len() < CANDIDATE_PAGE as usize {
                break None;
            }
            offset += CANDIDATE_PAGE;
        };
        if let Some(task) = found
            && best
                .as_ref()
                .is_none_or(|b| task.order_key() < b.order_key())
        {
            best = Some(task);
        }
    }
    Ok(best)
}

impl Store {
    /// One dispatcher pass in one transaction: for each session in order (oldest waiter
    /// first), grants the first task the dispatch rules allow, if any. Slots and caps count the
    /// grants made earlier in the same pass. A session that is not open gets its own error.
    pub async fn grant_pass(&self, waiters: Vec<String>) -> Result<Vec<Result<Option<Grant>>>> {
        let registry = self.registry.clone();
        self.write_quietly(move |tx, fx| {
            let mut load = registry.load();
            let mut granted: HashMap<String, u32> = HashMap::new();
            let mut exhausted: HashSet<String> = HashSet::new();
            let now = now_ms();
            let mut answers = Vec::with_capacity(waiters.len());
            for session_id in waiters {
                if exhausted.contains(&session_id) {
                    answers.push(Ok(None));
                    continue;
                }
                let session = match sessions::load_open(tx, &session_id) {
                    Ok(session) => session,
                    Err(err) => {
                        answers.push(Err(err));
                        continue;
                    }
                };
                let taken = granted.get(&session_id).copied().unwrap_or(0);
                let view = SessionView {
                    profiles: session.profiles.clone(),
                    capabilities: session.capabilities.clone(),
                    machine_id: session.machine_id.clone(),
                    review_lane: session.review_lane,
                    free_slots: registry.free_slots(&session_id).saturating_sub(taken),
                };
                let grant = if view.free_slots == 0 {
                    None
                } else {
                    first_claimable(tx, &session, &view, &load, now)?
                        .map(|task| grant_in(tx, &task, &session, fx))
                        .transpose()?
                };
                match &grant {
                    Some(grant) => {
                        *granted.entry(session_id).or_default() += 1;
                        *load.by_board.entry(grant.claim.board.clone()).or_default() += 1;
                        *load
                            .by_profile
                            .entry(grant.claim.profile.clone())
                            .or_default() += 1;
                    }
                    None => {
                        exhausted.insert(session_id);
                    }
                }
                answers.push(Ok(grant));
            }
            Ok(answers)
        })
        .await
    }

    /// Ends a claim with its holder's outcome, after fencing the token.
    pub(crate) async fn holder_finish(
        &self,
        token: String,
        wanted: Use,
        finish: Finish,
    ) -> Result<Task> {
        let registry = self.registry.clone();
        self.write(move |tx, fx| {
            let claim = fenced(tx, &token, wanted)?;
            refuse_overdue(&registry, &claim, tx)?;
            let finish = match (&claim.state, finish) {
                (ClaimState::Revoking(_), _) => Finish::Revoked,
                (_, finish) => finish,
            };
            let actor = claim.session_id.clone();
            finish_in(tx, &claim, finish, &actor, fx)
        })
        .await?
        // The claim's end is committed even when its task is gone (its board was reset); the
        // holder then hears why there is no task to return.
        .ok_or_else(|| lease_lost(LeaseLost::BoardReset, None))
    }

    /// Records the worker's exit on its run and classifies it if the claim had no outcome.
    pub(crate) async fn report_exit(
        &self,
        token: String,
        exit: Exit,
        tail: String,
    ) -> Result<Task> {
        self.write(move |tx, fx| {
            let code = match exit {
                Exit::Code(code) => Some(code),
                _ => None,
            };
            let record = |tx: &Connection, run_id: &str| -> Result<()> {
                tx.execute(
                    "UPDATE runs SET exit_code = coalesce(?2, exit_code),
                            error = CASE WHEN ?3 = '' THEN error ELSE ?3 END
                     WHERE id = ?1",
                    params![run_id, code, tail],
                )?;
                Ok(())
            };
            // An exit after the holder's own outcome only completes the run's record.
            if let Some(done) = load(tx, &token)?
                && done.state == ClaimState::Ended(EndReason::Outcome)
            {
                record(tx, &done.run_id)?;
                return tasks::load(tx, &done.task_id).map(Some);
            }
            let claim = fenced(tx, &token, Use::Confirm)?;
            let finish = match claim.state {
                ClaimState::Revoking(_) => Finish::Revoked,
                _ => Finish::End(Ending::Exited(exit)),
            };
            let actor = claim.session_id.clone();
            let task = finish_in(tx, &claim, finish, &actor, fx)?;
            if task.is_some() {
                record(tx, &claim.run_id)?;
            }
            Ok(task)
        })
        .await?
        .ok_or_else(|| lease_lost(LeaseLost::BoardReset, None))
    }

    /// Records a progress heartbeat.
    pub async fn heartbeat(&self, token: String, note: String) -> Result<()> {
        let registry = self.registry.clone();
        self.write(move |tx, fx| {
            let claim = fenced(tx, &token, Use::Hold)?;
            refuse_overdue(&registry, &claim, tx)?;
            tx.prepare_cached(
                "UPDATE runs SET last_heartbeat_at = ?2, last_heartbeat_note = ?3 WHERE id = ?1",
            )?
            .execute(params![claim.run_id, now_ms(), note])?;
            fx.push(Effect::Progress(token));
            Ok(())
        })
        .await
    }

    /// Releases a claim whose lease ran out (or finishes its revocation), unless a renewal won
    /// the race. Returns whether it was released.
    pub async fn expire_claim(&self, token: String) -> Result<bool> {
        let registry = self.registry.clone();
        self.write(move |tx, fx| {
            if !registry.claim_overdue(&token) {
                return Ok(false);
            }
            let Some(claim) = load(tx, &token)? else {
                return Ok(false);
            };
            let finish = match claim.state {
                ClaimState::Live => Finish::End(Ending::Expired),
                ClaimState::Revoking(_) => Finish::Revoked,
                ClaimState::Ended(_) => return Ok(false),
            };
            finish_in(tx, &claim, finish, "kanband", fx)?;
            Ok(true)
        })
        .await
    }

    /// Revokes a live claim for a server-side reason (maximum runtime, stale progress).
    pub async fn revoke_claim(&self, token: String, cause: RevokeCause) -> Result<()> {
        self.write(move |tx, fx| {
            let Some(claim) = load(tx, &token)? else {
                return Ok(());
            };
            if claim.state != ClaimState::Live {
                return Ok(());
            }
            let task = tasks::load(tx, &claim.task_id)?;
            revoke_in(tx, &task, cause, None, "kanband", fx)
        })
        .await
    }

    /// Why a token cannot be used now, if the database knows a reason.
    pub async fn lease_lost(&self, token: String) -> Result<Option<Error>> {
        self.call(move |conn| Ok(fenced(conn, &token, Use::Hold).err()))
            .await
    }

    /// Every task counted by status, and the update time of the oldest ready task.
    pub async fn task_stats(&self) -> Result<(BTreeMap<String, u64>, Option<i64>)> {
        self.call(|conn| {
            let counts = conn
                .prepare_cached("SELECT status, count(*) FROM tasks GROUP BY status")?
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
                })?
                .collect::<Result<_, _>>()?;
            let oldest: Option<i64> = conn
                .prepare_cached("SELECT min(updated_at) FROM tasks WHERE status = 'ready'")?
                .query_row([], |row| row.get(0))?;
            Ok((counts, oldest))
        })
        .await
    }

    /// Dispatch candidates for a preview.
    pub async fn preview_candidates(
        &self,
        board: Option<String>,
        review_lane: bool,
        limit: u32,
    ) -> Result<Vec<(TaskView, Task)>> {
        self.call(move |conn| {
            let mut views = Vec::new();
            for &lane in lanes(review_lane) {
                views.extend(candidates(conn, lane, None, board.as_deref(), limit, 0)?);
            }
            dispatch::sort(&mut views);
            views.truncate(limit as usize);
            views
                .into_iter()
                .map(|view| {
                    let task = tasks::load(conn, &view.id)?;
                    Ok((view, task))
                })
                .collect()
        })
        .await
    }
}
