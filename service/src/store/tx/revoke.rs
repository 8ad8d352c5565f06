//! Phase one of a revocation (the token is fenced and its holder told at once), a request to
//! stop within a grace period, and archiving, which revokes a running task's claim.

use std::time::Duration;

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    events::{self, NewEvent},
    read,
    status::{self, set_status},
};
use crate::domain::Author;
use crate::{
    clock::now_ms,
    domain::{
        EventKind, Status,
        lease::{ClaimState, RevokeCause},
        transitions::Op,
    },
    error::Result,
    store::{effect::Effect, model::Task},
};

/// Fences the live claim of a running task (two-phase revocation, phase one): the token is
/// refused from now on, the holder is told at once, and the task goes to no one else until
/// the holder confirms or the lease runs out.
pub(in crate::store) fn revoke_in(
    conn: &Connection,
    task: &Task,
    cause: RevokeCause,
    until: Option<i64>,
    by: &Author,
    fx: &mut Vec<Effect>,
) -> Result<()> {
    let Some(claim) = read::task_claim(conn, &task.id)? else {
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
            kind: EventKind::Revoked,
            by,
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
pub(in crate::store) fn request_cancel_in(
    conn: &Connection,
    task: &Task,
    grace: Duration,
    by: &Author,
    fx: &mut Vec<Effect>,
) -> Result<()> {
    let Some(claim) = read::task_claim(conn, &task.id)? else {
        return Ok(());
    };
    if claim.state != ClaimState::Live {
        return Ok(());
    }
    conn.execute(
        "UPDATE claims SET cancel_until = ?2 WHERE token = ?1",
        params![claim.token, now_ms() + grace.as_millis() as i64],
    )?;
    events::append(
        conn,
        NewEvent {
            board: &task.board,
            task_id: &task.id,
            kind: EventKind::CancelRequested,
            by,
            details: &[
                ("run", claim.run_id.clone()),
                ("grace_seconds", grace.as_secs().to_string()),
            ],
        },
    )?;
    fx.push(Effect::CancelRequested(claim.token, grace));
    Ok(())
}

/// Archives one task inside the caller's transaction. A running task's claim is revoked (the
/// task is archived at once; its holder confirms or its lease runs out).
pub(in crate::store) fn archive_in(
    conn: &Connection,
    id: &str,
    by: &Author,
    fx: &mut Vec<Effect>,
) -> Result<Task> {
    let task = read::task(conn, id)?;
    let to = status::next(conn, &task, Op::Archive, "archive")?;
    if task.status == Status::Running {
        revoke_in(conn, &task, RevokeCause::Archived, None, by, fx)?;
    }
    set_status(conn, &task, to, EventKind::Archived, by, &[])?;
    read::task(conn, id)
}
