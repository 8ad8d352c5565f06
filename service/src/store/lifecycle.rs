//! Status changes an operator asks for: block, unblock, schedule, wake, promote, archive,
//! reopen review. Each one asks [`next_status`] first, so the rules stay in `domain`.

use std::time::Duration;

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    Store, claims,
    events::{self, NewEvent},
    links,
    model::Task,
    now_ms, tasks,
};
use crate::{
    domain::{
        BlockKind, Status,
        transitions::{Context, Op, Refused, block_outcome, next_status},
    },
    error::{Error, Result},
    leases::{registry::Effect, rules::RevokeCause},
};

/// The rules' view of a task.
pub(super) fn context(conn: &Connection, task: &Task) -> Result<Context> {
    Ok(Context {
        parents_finished: links::parents_finished(conn, &task.id)?,
        review_lane: false,
        last_block_kind: task.block_kind,
        block_recurrences: task.block_recurrences,
    })
}

/// The error for a refused transition: names the task, the operation and the current status.
pub(super) fn refused(id: &str, verb: &str, refused: Refused) -> Error {
    Error::FailedPrecondition(format!(
        "cannot {verb} task {id}: it is {}; {}",
        refused.status, refused.hint
    ))
}

/// Applies `op` by the rules and returns the new status.
fn apply(conn: &Connection, task: &Task, op: Op, verb: &str) -> Result<Status> {
    let ctx = context(conn, task)?;
    next_status(task.status, op, &ctx).map_err(|r| refused(&task.id, verb, r))
}

/// Writes a new status with an event, clearing a wake-up time when leaving `scheduled`, and
/// promotes children when the task finishes.
pub(super) fn set_status(
    conn: &Connection,
    task: &Task,
    to: Status,
    kind: &str,
    actor: &str,
    details: &[(&str, String)],
) -> Result<()> {
    let now = now_ms();
    conn.prepare_cached(
        "UPDATE tasks SET status = ?2, updated_at = ?3,
                scheduled_until = CASE WHEN ?2 = 'scheduled' THEN scheduled_until END,
                completed_at = CASE WHEN ?2 = 'done' THEN ?3 ELSE completed_at END
         WHERE id = ?1",
    )?
    .execute(params![task.id, to.as_str(), now])?;
    let mut all = vec![("from", task.status.to_string()), ("to", to.to_string())];
    all.extend(details.iter().map(|(k, v)| (*k, v.clone())));
    events::append(
        conn,
        NewEvent {
            board: &task.board,
            task_id: &task.id,
            kind,
            actor,
            details: &all,
        },
    )?;
    if to.is_finished() && !task.status.is_finished() {
        links::promote_children(conn, &task.id, actor)?;
    }
    Ok(())
}

/// Archives one task inside the caller's transaction. A running task's claim is revoked (the
/// task is archived at once; its holder confirms or its lease runs out).
pub(super) fn archive_in(
    conn: &Connection,
    id: &str,
    actor: &str,
    fx: &mut Vec<Effect>,
) -> Result<Task> {
    let task = tasks::load(conn, id)?;
    let to = apply(conn, &task, Op::Archive, "archive")?;
    if task.status == Status::Running {
        claims::revoke_in(conn, &task, RevokeCause::Archived, None, actor, fx)?;
    }
    set_status(conn, &task, to, "archived", actor, &[])?;
    tasks::load(conn, id)
}

/// Blocks a task by the block rule, recording kind, reason and recurrences.
pub(super) fn block_in(
    conn: &Connection,
    task: &Task,
    op: Op,
    kind: BlockKind,
    reason: &str,
    actor: &str,
) -> Result<()> {
    let to = apply(conn, task, op, "block")?;
    let outcome = block_outcome(kind, &context(conn, task)?);
    conn.execute(
        "UPDATE tasks SET block_kind = ?2, block_reason = ?3, block_recurrences = ?4 WHERE id = ?1",
        params![task.id, kind.as_str(), reason, outcome.recurrences],
    )?;
    let details = [("kind", kind.to_string()), ("reason", reason.to_owned())];
    set_status(conn, task, to, "blocked", actor, &details)?;
    if outcome.loop_detected {
        events::append(
            conn,
            NewEvent {
                board: &task.board,
                task_id: &task.id,
                kind: "block_loop_detected",
                actor,
                details: &[
                    ("kind", kind.to_string()),
                    ("recurrences", outcome.recurrences.to_string()),
                ],
            },
        )?;
    }
    Ok(())
}

impl Store {
    /// Runs `change` on a loaded task inside one transaction and returns the task afterwards.
    async fn change_task<F>(&self, id: String, change: F) -> Result<Task>
    where
        F: FnOnce(&Connection, &Task, &mut Vec<Effect>) -> Result<()> + Send + 'static,
    {
        self.write(move |tx, fx| {
            let task = tasks::load(tx, &id)?;
            change(tx, &task, fx)?;
            tasks::load(tx, &id)
        })
        .await
    }

    /// Operator block of a task that is not running.
    pub async fn block(
        &self,
        id: String,
        kind: BlockKind,
        reason: String,
        actor: String,
    ) -> Result<Task> {
        self.change_task(id, move |conn, task, _| {
            block_in(conn, task, Op::Block(kind), kind, &reason, &actor)
        })
        .await
    }

    /// Unblocks a blocked task and resets its failure count.
    pub async fn unblock(&self, id: String, actor: String) -> Result<Task> {
        self.change_task(id, move |conn, task, _| {
            let to = apply(conn, task, Op::Unblock, "unblock")?;
            conn.execute(
                "UPDATE tasks SET consecutive_failures = 0, protocol_violations = 0,
                        outcomeless_attempts = 0
                 WHERE id = ?1",
                [&task.id],
            )?;
            set_status(conn, task, to, "unblocked", &actor, &[])
        })
        .await
    }

    /// Parks a task in `scheduled`, until `until_ms` (Unix ms) if given. A running task's claim
    /// is revoked; the task is scheduled when its holder confirms or its lease runs out.
    pub async fn schedule(&self, id: String, until_ms: Option<i64>, actor: String) -> Result<Task> {
        self.change_task(id, move |conn, task, fx| {
            let to = apply(conn, task, Op::Schedule, "schedule")?;
            if task.status == Status::Running {
                return claims::revoke_in(conn, task, RevokeCause::Scheduled, until_ms, &actor, fx);
            }
            let details = [(
                "until_ms",
                until_ms.map(|t| t.to_string()).unwrap_or_default(),
            )];
            set_status(conn, task, to, "scheduled", &actor, &details)?;
            conn.execute(
                "UPDATE tasks SET scheduled_until = ?2 WHERE id = ?1",
                params![task.id, until_ms],
            )?;
            if let Some(until) = until_ms {
                fx.push(Effect::Wake(task.id.clone(), until));
            }
            Ok(())
        })
        .await
    }

    /// Wakes a scheduled task whose wake-up time `until_ms` has come. Returns `None` when the
    /// task was changed since (promoted, rescheduled, archived, deleted): the timer is stale.
    pub async fn wake(&self, id: String, until_ms: i64) -> Result<Option<Task>> {
        self.write(move |tx, _| {
            let task = match tasks::load(tx, &id) {
                Ok(task) => task,
                Err(Error::NotFound { .. }) => return Ok(None),
                Err(err) => return Err(err),
            };
            if task.status != Status::Scheduled || task.scheduled_until != Some(until_ms) {
                return Ok(None);
            }
            let to = apply(tx, &task, Op::Wake, "wake")?;
            set_status(tx, &task, to, "woke", "kanband", &[])?;
            Ok(Some(tasks::load(tx, &id)?))
        })
        .await
    }

    /// The deadlines recorded in the database (wake-ups and cooldown ends), to arm at start-up.
    pub async fn recorded_deadlines(&self) -> Result<Vec<Effect>> {
        self.call(|conn| {
            let mut effects: Vec<Effect> = conn
                .prepare(
                    "SELECT id, scheduled_until FROM tasks
                     WHERE status = 'scheduled' AND scheduled_until IS NOT NULL",
                )?
                .query_map([], |row| Ok(Effect::Wake(row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let cooldowns = conn
                .prepare("SELECT id, cooldown_until FROM tasks WHERE cooldown_until IS NOT NULL")?
                .query_map([], |row| Ok(Effect::Cooldown(row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            effects.extend(cooldowns);
            Ok(effects)
        })
        .await
    }

    /// Operator promotion.
    pub async fn promote(&self, id: String, actor: String) -> Result<Task> {
        self.change_task(id, move |conn, task, _| {
            let to = apply(conn, task, Op::Promote, "promote")?;
            set_status(conn, task, to, "promoted", &actor, &[])
        })
        .await
    }

    /// Archives a task.
    pub async fn archive(&self, id: String, actor: String) -> Result<Task> {
        self.change_task(id, move |conn, task, fx| {
            archive_in(conn, &task.id, &actor, fx).map(drop)
        })
        .await
    }

    /// Operator reclaim of a running task: its claim is revoked and the task returns to ready
    /// (with its failure count reset) when the holder confirms or its lease runs out.
    ///
    /// With a `grace`, the holder is first asked to stop (`cancel_requested`) and the claim is
    /// revoked when the grace ends, unless the holder has finished by then.
    pub async fn reclaim(&self, id: String, grace: Duration, actor: String) -> Result<Task> {
        self.change_task(id, move |conn, task, fx| {
            apply(conn, task, Op::Requeue, "reclaim")?;
            if grace.is_zero() {
                return claims::revoke_in(conn, task, RevokeCause::Reclaimed, None, &actor, fx);
            }
            claims::request_cancel_in(conn, task, grace, &actor, fx)
        })
        .await
    }

    /// Sends a done task back to review.
    pub async fn reopen_review(&self, id: String, actor: String) -> Result<Task> {
        self.change_task(id, move |conn, task, _| {
            let to = apply(conn, task, Op::ReopenReview, "reopen")?;
            set_status(conn, task, to, "review_reopened", &actor, &[])
        })
        .await
    }
}
