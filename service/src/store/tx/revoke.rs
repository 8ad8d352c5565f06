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
/// the holder confirms or the lease runs out. A non-empty `reason` (an operator's) goes into
/// the `revoked` event.
pub(in crate::store) fn revoke_in(
    conn: &Connection,
    task: &Task,
    cause: RevokeCause,
    until: Option<i64>,
    reason: &str,
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
            details: &with_reason(
                vec![
                    ("cause", cause.as_str().to_owned()),
                    ("run", claim.run_id.clone()),
                    ("epoch", claim.epoch.to_string()),
                ],
                reason,
            ),
        },
    )?;
    fx.push(Effect::Revoked(claim.token, cause));
    Ok(())
}

/// Asks the holder of a running task's live claim to stop within `grace`; the claim is revoked
/// when the grace ends. A claim already being revoked is left as it is. A non-empty `reason`
/// goes into the `cancel_requested` event.
pub(in crate::store) fn request_cancel_in(
    conn: &Connection,
    task: &Task,
    grace: Duration,
    reason: &str,
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
            details: &with_reason(
                vec![
                    ("run", claim.run_id.clone()),
                    ("grace_seconds", grace.as_secs().to_string()),
                ],
                reason,
            ),
        },
    )?;
    fx.push(Effect::CancelRequested(claim.token, grace));
    Ok(())
}

/// Archives one task inside the caller's transaction. A running task's claim is revoked (the
/// task is archived at once; its holder confirms or its lease runs out). A non-empty `reason`
/// goes into the `archived` event.
pub(in crate::store) fn archive_in(
    conn: &Connection,
    id: &str,
    reason: &str,
    by: &Author,
    fx: &mut Vec<Effect>,
) -> Result<Task> {
    let task = read::task(conn, id)?;
    let to = status::next(conn, &task, Op::Archive, "archive")?;
    if task.status == Status::Running {
        revoke_in(conn, &task, RevokeCause::Archived, None, "", by, fx)?;
    }
    let details = with_reason(Vec::new(), reason);
    set_status(conn, &task, to, EventKind::Archived, by, &details)?;
    read::task(conn, id)
}

/// An event's details with `("reason", reason)` added when there is one, so an event written
/// without a reason reads as it always has.
fn with_reason(
    mut details: Vec<(&'static str, String)>,
    reason: &str,
) -> Vec<(&'static str, String)> {
    if !reason.is_empty() {
        details.push(("reason", reason.to_owned()));
    }
    details
}
