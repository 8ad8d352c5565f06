//! Loading one task, board, claim or session, or a set of claims, inside a transaction.

use std::sync::LazyLock;

use tokio_rusqlite::rusqlite::{Connection, OptionalExtension as _};

use crate::error::{Error, Result};
use crate::store::{
    effect::ClaimDeadlines,
    model::{Board, ClaimRecord, SessionRecord, Task},
    rows::{self, CLAIM_COLUMNS, SESSION_COLUMNS},
};

// The statements read on every grant and outcome, written once (not formatted per call).
static TASK: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM tasks WHERE id = ?1", rows::TASK_COLUMNS));
static BOARD: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM boards WHERE slug = ?1", rows::BOARD_COLUMNS));
static CLAIM: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {CLAIM_COLUMNS} FROM claims WHERE token = ?1"));
static OPEN_SESSION: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1 AND closed_at IS NULL")
});

/// A task by id.
pub(in crate::store) fn task(conn: &Connection, id: &str) -> Result<Task> {
    task_if_exists(conn, id)?.ok_or_else(|| Error::not_found("task", id))
}

/// A task by id, or `None` if there is none.
pub(in crate::store) fn task_if_exists(conn: &Connection, id: &str) -> Result<Option<Task>> {
    Ok(conn
        .prepare_cached(&TASK)?
        .query_row([id], rows::task)
        .optional()?)
}

/// A board, archived or not.
pub(in crate::store) fn board(conn: &Connection, slug: &str) -> Result<Board> {
    conn.prepare_cached(&BOARD)?
        .query_row([slug], rows::board)
        .optional()?
        .ok_or_else(|| Error::not_found("board", slug))
}

/// A board that must accept new tasks.
pub(in crate::store) fn open_board(conn: &Connection, slug: &str) -> Result<Board> {
    let board = board(conn, slug)?;
    if board.archived {
        return Err(Error::FailedPrecondition(format!(
            "board {slug:?} is archived and accepts no new tasks"
        )));
    }
    Ok(board)
}

/// The failure limit a board sets (0 if none, or if the board is gone).
pub(in crate::store) fn board_max_retries(conn: &Connection, board: &str) -> Result<u32> {
    Ok(conn
        .prepare_cached("SELECT max_retries FROM boards WHERE slug = ?1")?
        .query_row([board], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The task's current epoch, if the task exists.
pub(in crate::store) fn task_epoch(conn: &Connection, task_id: &str) -> Result<Option<u64>> {
    Ok(conn
        .prepare_cached("SELECT epoch FROM tasks WHERE id = ?1")?
        .query_row([task_id], |row| row.get::<_, i64>(0))
        .optional()?
        .map(|e| e as u64))
}

/// A claim by token, in any state.
pub(in crate::store) fn claim(conn: &Connection, token: &str) -> Result<Option<ClaimRecord>> {
    Ok(conn
        .prepare_cached(&CLAIM)?
        .query_row([token], rows::claim)
        .optional()?)
}

/// The unended claim of a task, if any.
pub(in crate::store) fn task_claim(
    conn: &Connection,
    task_id: &str,
) -> Result<Option<ClaimRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM claims WHERE task_id = ?1 AND state <> 'ended'"
        ))?
        .query_row([task_id], rows::claim)
        .optional()?)
}

/// The unended claims of a session.
pub(in crate::store) fn session_claims(
    conn: &Connection,
    session_id: &str,
) -> Result<Vec<ClaimRecord>> {
    let claims = conn
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM claims WHERE session_id = ?1 AND state <> 'ended'"
        ))?
        .query_map([session_id], rows::claim)?
        .collect::<Result<_, _>>()?;
    Ok(claims)
}

/// The unended claims of a board.
pub(in crate::store) fn board_claims(conn: &Connection, board: &str) -> Result<Vec<ClaimRecord>> {
    let claims = conn
        .prepare_cached(&format!(
            "SELECT {CLAIM_COLUMNS} FROM claims WHERE board = ?1 AND state <> 'ended'"
        ))?
        .query_map([board], rows::claim)?
        .collect::<Result<_, _>>()?;
    Ok(claims)
}

/// An unended claim as start-up restores it.
pub(in crate::store) struct Unended {
    /// The claim.
    pub(in crate::store) claim: ClaimRecord,
    /// Its persisted lease deadline (Unix ms).
    pub(in crate::store) expires_at: i64,
    /// Its other deadlines, as they were before the restart.
    pub(in crate::store) deadlines: ClaimDeadlines,
}

/// Every unended claim with its persisted deadline and the times its other deadlines count
/// from (its grant, its run's last heartbeat, its task's maximum runtime, a cancel's grace).
pub(in crate::store) fn unended_claims(conn: &Connection) -> Result<Vec<Unended>> {
    let columns = rows::qualified("c", CLAIM_COLUMNS);
    let n = rows::CLAIM_COLUMN_COUNT;
    let claims = conn
        .prepare(&format!(
            "SELECT {columns}, c.expires_at, c.granted_at, coalesce(t.max_runtime_seconds, 0),
                    max(c.granted_at, coalesce(r.last_heartbeat_at, 0))
             FROM claims c LEFT JOIN tasks t ON t.id = c.task_id
                  LEFT JOIN runs r ON r.id = c.run_id
             WHERE c.state <> 'ended'"
        ))?
        .query_map([], |row| {
            let claim = rows::claim(row)?;
            let mut deadlines = ClaimDeadlines::at_grant(row.get(n + 1)?, row.get(n + 2)?);
            deadlines.progress_at = row.get(n + 3)?;
            deadlines.grace_until = claim.cancel_until;
            Ok(Unended {
                claim,
                expires_at: row.get(n)?,
                deadlines,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(claims)
}

/// An open session.
pub(in crate::store) fn open_session(conn: &Connection, id: &str) -> Result<SessionRecord> {
    conn.prepare_cached(&OPEN_SESSION)?
        .query_row([id], rows::session)
        .optional()?
        .ok_or_else(|| Error::not_found("session", id))
}
