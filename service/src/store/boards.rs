//! Board operations.

use tokio_rusqlite::rusqlite::{Connection, OptionalExtension as _, params};

use super::{
    Store, claims,
    events::{self, NewEvent},
    lifecycle,
    model::{Board, BoardChanges, NewBoard},
    now_ms, rows,
};
use crate::{
    error::{Error, Result},
    leases::rules::RevokeCause,
};

/// The board that always exists and cannot be archived.
pub const DEFAULT_BOARD: &str = "default";

/// Reads a board, archived or not.
pub(super) fn get(conn: &Connection, slug: &str) -> Result<Board> {
    let sql = format!("SELECT {} FROM boards WHERE slug = ?1", rows::BOARD_COLUMNS);
    conn.prepare_cached(&sql)?
        .query_row([slug], rows::board)
        .optional()?
        .ok_or_else(|| Error::not_found("board", slug))
}

/// Reads a board that must accept new tasks.
pub(super) fn get_open(conn: &Connection, slug: &str) -> Result<Board> {
    let board = get(conn, slug)?;
    if board.archived {
        return Err(Error::FailedPrecondition(format!(
            "board {slug:?} is archived and accepts no new tasks"
        )));
    }
    Ok(board)
}

impl Store {
    /// Creates a board.
    pub async fn create_board(&self, new: NewBoard, actor: String) -> Result<Board> {
        self.write(move |tx, _| {
            if get(tx, &new.slug).is_ok() {
                return Err(Error::AlreadyExists(format!(
                    "board {:?} already exists",
                    new.slug
                )));
            }
            let now = now_ms();
            let display_name = if new.display_name.is_empty() {
                new.slug.clone()
            } else {
                new.display_name
            };
            tx.execute(
                "INSERT INTO boards (slug, display_name, metadata, default_assignee, max_retries,
                                     max_running, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                params![
                    new.slug,
                    display_name,
                    rows::map_json(&new.metadata),
                    new.default_assignee,
                    new.max_retries,
                    new.max_running,
                    now
                ],
            )?;
            events::append(
                tx,
                NewEvent {
                    board: &new.slug,
                    task_id: "",
                    kind: "board_created",
                    actor: &actor,
                    details: &[],
                },
            )?;
            let board = get(tx, &new.slug)?;
            Ok(board)
        })
        .await
    }

    /// Reads a board.
    pub async fn get_board(&self, slug: String) -> Result<Board> {
        self.call(move |conn| get(conn, &slug)).await
    }

    /// Lists boards in slug order.
    pub async fn list_boards(&self, include_archived: bool) -> Result<Vec<Board>> {
        self.call(move |conn| {
            let sql = format!(
                "SELECT {} FROM boards WHERE ?1 OR NOT archived ORDER BY slug",
                rows::BOARD_COLUMNS
            );
            let boards = conn
                .prepare_cached(&sql)?
                .query_map([include_archived], rows::board)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(boards)
        })
        .await
    }

    /// Changes the fields that are set.
    pub async fn update_board(
        &self,
        slug: String,
        changes: BoardChanges,
        actor: String,
    ) -> Result<Board> {
        self.write(move |tx, _| {
            let mut board = get(tx, &slug)?;
            let mut fields = Vec::new();
            if let Some(name) = changes.display_name {
                board.display_name = if name.is_empty() { slug.clone() } else { name };
                fields.push("display_name");
            }
            if let Some(metadata) = changes.metadata {
                board.metadata = metadata;
                fields.push("metadata");
            }
            if let Some(assignee) = changes.default_assignee {
                board.default_assignee = assignee;
                fields.push("default_assignee");
            }
            if let Some(max) = changes.max_retries {
                board.max_retries = max;
                fields.push("max_retries");
            }
            if let Some(max) = changes.max_running {
                board.max_running = max;
                fields.push("max_running");
            }
            if fields.is_empty() {
                return Ok(board);
            }
            tx.execute(
                "UPDATE boards SET display_name = ?2, metadata = ?3, default_assignee = ?4,
                        max_retries = ?5, max_running = ?6, updated_at = ?7
                 WHERE slug = ?1",
                params![
                    slug,
                    board.display_name,
                    rows::map_json(&board.metadata),
                    board.default_assignee,
                    board.max_retries,
                    board.max_running,
                    now_ms()
                ],
            )?;
            events::append(
                tx,
                NewEvent {
                    board: &slug,
                    task_id: "",
                    kind: "board_updated",
                    actor: &actor,
                    details: &[("fields", fields.join(","))],
                },
            )?;
            let board = get(tx, &slug)?;
            Ok(board)
        })
        .await
    }

    /// Archives a board and every task on it.
    pub async fn archive_board(&self, slug: String, actor: String) -> Result<Board> {
        self.write(move |tx, fx| {
            if slug == DEFAULT_BOARD {
                return Err(Error::FailedPrecondition(
                    "board \"default\" always exists and cannot be archived".into(),
                ));
            }
            let board = get(tx, &slug)?;
            if board.archived {
                return Err(Error::FailedPrecondition(format!(
                    "board {slug:?} is already archived"
                )));
            }
            let ids: Vec<String> = tx
                .prepare_cached("SELECT id FROM tasks WHERE board = ?1 AND status <> 'archived'")?
                .query_map([&slug], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            for id in &ids {
                lifecycle::archive_in(tx, id, &actor, fx)?;
            }
            tx.execute(
                "UPDATE boards SET archived = 1, updated_at = ?2 WHERE slug = ?1",
                params![slug, now_ms()],
            )?;
            events::append(
                tx,
                NewEvent {
                    board: &slug,
                    task_id: "",
                    kind: "board_archived",
                    actor: &actor,
                    details: &[("tasks_archived", ids.len().to_string())],
                },
            )?;
            let board = get(tx, &slug)?;
            Ok(board)
        })
        .await
    }

    /// Deletes every task of a board in one transaction and records a `board_reset` event.
    /// Returns the number of tasks removed and the event id.
    pub async fn reset_board(&self, slug: String, actor: String) -> Result<(u64, i64)> {
        self.write(move |tx, fx| {
            get(tx, &slug)?;
            for claim in claims::of_board(tx, &slug)? {
                // A claim whose task an earlier reset deleted is already being revoked.
                if let Ok(task) = super::tasks::load(tx, &claim.task_id) {
                    claims::revoke_in(tx, &task, RevokeCause::BoardReset, None, &actor, fx)?;
                }
            }
            let removed = tx.execute("DELETE FROM tasks WHERE board = ?1", [&slug])?;
            let event_id = events::append(
                tx,
                NewEvent {
                    board: &slug,
                    task_id: "",
                    kind: "board_reset",
                    actor: &actor,
                    details: &[("tasks_removed", removed.to_string())],
                },
            )?;
            Ok((removed as u64, event_id))
        })
        .await
    }
}
