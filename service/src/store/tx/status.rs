//! Every status change: the rules' view of a task, the write with its event, the promotion of
//! children a finished task causes, and the block rule. The rules themselves are in
//! [`crate::domain::transitions`]; these helpers ask them before writing.

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    events::{self, NewEvent},
    graph, read,
};
use crate::domain::Author;
use crate::{
    clock::now_ms,
    domain::{
        BlockKind, EventKind, Status,
        transitions::{Context, Op, Refused, block_outcome, next_status},
    },
    error::{Error, Result},
    store::model::Task,
};

/// The rules' view of a task for `op`: its parents are looked up only if the rule for `op`
/// reads them ([`Op::reads_parents`]).
pub(in crate::store) fn context(conn: &Connection, task: &Task, op: Op) -> Result<Context> {
    let parents_finished = op.reads_parents() && graph::parents_finished(conn, &task.id)?;
    Ok(context_knowing(task, parents_finished))
}

/// The rules' view of a task whose parents' state the caller already knows.
pub(in crate::store) fn context_knowing(task: &Task, parents_finished: bool) -> Context {
    Context {
        parents_finished,
        review_lane: false,
        last_block_kind: task.block_kind,
        block_recurrences: task.block_recurrences,
    }
}

/// The error for a refused transition: names the task, the operation and the current status.
pub(in crate::store) fn refused(id: &str, verb: &str, refused: Refused) -> Error {
    Error::FailedPrecondition(format!(
        "cannot {verb} task {id}: it is {}; {}",
        refused.status, refused.hint
    ))
}

/// The status `op` moves the task to by the rules, or the refusal naming `verb`.
pub(in crate::store) fn next(conn: &Connection, task: &Task, op: Op, verb: &str) -> Result<Status> {
    let ctx = context(conn, task, op)?;
    next_status(task.status, op, &ctx).map_err(|r| refused(&task.id, verb, r))
}

/// The columns every status change writes, for a statement that writes other columns of the
/// task with it (one row write instead of two): `?1` is the task's id, `?2` the new status and
/// `?3` the time. A wake-up time is cleared when leaving `scheduled`, and `done` stamps the
/// completion. [`with_status`] is the same change on a task already loaded.
macro_rules! status_columns {
    () => {
        "status = ?2, updated_at = ?3,
         scheduled_until = CASE WHEN ?2 = 'scheduled' THEN scheduled_until END,
         completed_at = CASE WHEN ?2 = 'done' THEN ?3 ELSE completed_at END"
    };
}
pub(in crate::store) use status_columns;

/// `task` as a statement writing [`status_columns!`] with `to` at `at` leaves it, for a caller
/// that answers with the task instead of reading it back.
pub(in crate::store) fn with_status(task: Task, to: Status, at: i64) -> Task {
    Task {
        status: to,
        updated_at: at,
        scheduled_until: task.scheduled_until.filter(|_| to == Status::Scheduled),
        completed_at: if to == Status::Done {
            Some(at)
        } else {
            task.completed_at
        },
        ..task
    }
}

/// Writes a new status with an event, clearing a wake-up time when leaving `scheduled`, and
/// promotes children when the task finishes (demotes its ready ones when it is unfinished
/// again).
pub(in crate::store) fn set_status(
    conn: &Connection,
    task: &Task,
    to: Status,
    kind: EventKind,
    by: &Author,
    details: &[(&str, String)],
) -> Result<()> {
    conn.prepare_cached(concat!(
        "UPDATE tasks SET ",
        status_columns!(),
        " WHERE id = ?1"
    ))?
    .execute(params![task.id, to.as_str(), now_ms()])?;
    status_written(conn, task, to, kind, by, details)
}

/// The rest of a status change once the task's row has it ([`status_columns!`]): the event
/// (from `task`'s status to `to`, with `details`), and the children promoted when the task
/// finishes or demoted when it is unfinished again.
pub(in crate::store) fn status_written(
    conn: &Connection,
    task: &Task,
    to: Status,
    kind: EventKind,
    by: &Author,
    details: &[(&str, String)],
) -> Result<()> {
    let mut all = vec![("from", task.status.to_string()), ("to", to.to_string())];
    all.extend(details.iter().map(|(k, v)| (*k, v.clone())));
    events::append(
        conn,
        NewEvent {
            board: &task.board,
            task_id: &task.id,
            kind,
            by,
            details: &all,
        },
    )?;
    if to.is_finished() && !task.status.is_finished() {
        promote_children(conn, &task.id, by)?;
    }
    if task.status.is_finished() && !to.is_finished() {
        demote_children(conn, &task.id, by)?;
    }
    Ok(())
}

/// Sends each `ready` child of `parent_id` back to `todo` now that the parent is unfinished
/// again (as when a new unfinished parent is linked).
fn demote_children(conn: &Connection, parent_id: &str, by: &Author) -> Result<()> {
    for child_id in graph::neighbours(conn, parent_id, false)? {
        let child = read::task(conn, &child_id)?;
        let to = next(conn, &child, Op::ParentUnfinished, "demote")?;
        if to != child.status {
            set_status(
                conn,
                &child,
                to,
                EventKind::Demoted,
                by,
                &[("reason", "a parent is unfinished again".into())],
            )?;
        }
    }
    Ok(())
}

/// Promotes each `todo` child of `parent_id` whose parents are now all finished.
fn promote_children(conn: &Connection, parent_id: &str, by: &Author) -> Result<()> {
    for child_id in graph::neighbours(conn, parent_id, false)? {
        promote_if_ready(conn, &child_id, by)?;
    }
    Ok(())
}

/// Moves a `todo` task to `ready` if its parents are all finished.
pub(in crate::store) fn promote_if_ready(conn: &Connection, id: &str, by: &Author) -> Result<()> {
    let task = read::task(conn, id)?;
    if task.status != Status::Todo || !graph::parents_finished(conn, id)? {
        return Ok(());
    }
    let to = next(conn, &task, Op::ParentsFinished, "promote")?;
    set_status(
        conn,
        &task,
        to,
        EventKind::Promoted,
        by,
        &[("reason", "parents finished".into())],
    )
}

/// Blocks a task by the block rule, recording kind, reason and recurrences.
pub(in crate::store) fn block_in(
    conn: &Connection,
    task: &Task,
    op: Op,
    kind: BlockKind,
    reason: &str,
    by: &Author,
) -> Result<()> {
    let to = next(conn, task, op, "block")?;
    let outcome = block_outcome(kind, &context(conn, task, op)?);
    conn.execute(
        "UPDATE tasks SET block_kind = ?2, block_reason = ?3, block_recurrences = ?4 WHERE id = ?1",
        params![task.id, kind.as_str(), reason, outcome.recurrences],
    )?;
    let details = [("kind", kind.to_string()), ("reason", reason.to_owned())];
    set_status(conn, task, to, EventKind::Blocked, by, &details)?;
    if outcome.loop_detected {
        events::append(
            conn,
            NewEvent {
                board: &task.board,
                task_id: &task.id,
                kind: EventKind::BlockLoopDetected,
                by,
                details: &[
                    ("kind", kind.to_string()),
                    ("recurrences", outcome.recurrences.to_string()),
                ],
            },
        )?;
    }
    Ok(())
}
