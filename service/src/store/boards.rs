//! Board operations: create, read, list, update, archive (with every task on it) and reset
//! (deleting every task on it, inside the database).

use tokio_rusqlite::rusqlite::params;

use super::{
    Store,
    model::{Board, BoardChanges, NewBoard},
    rows,
    tx::{
        events::{self, NewEvent},
        read, revoke,
    },
};
use crate::domain::Author;
use crate::{
    clock::now_ms,
    domain::{EventKind, ids::DEFAULT_BOARD, lease::RevokeCause},
    error::{Error, Result},
};

impl Store {
    /// Creates a board.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_board(&self, new: NewBoard, by: Author) -> Result<Board> {
        self.write(move |tx, _| {
            if read::board(tx, &new.slug).is_ok() {
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
                    kind: EventKind::BoardCreated,
                    by: &by,
                    details: &[],
                },
            )?;
            let board = read::board(tx, &new.slug)?;
            Ok(board)
        })
        .await
    }

    /// Reads a board.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn get_board(&self, slug: String) -> Result<Board> {
        self.call(move |conn| read::board(conn, &slug)).await
    }

    /// Lists boards in slug order.
    #[tracing::instrument(level = "debug", skip_all)]
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
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn update_board(
        &self,
        slug: String,
        changes: BoardChanges,
        by: Author,
    ) -> Result<Board> {
        self.write(move |tx, _| {
            let mut board = read::board(tx, &slug)?;
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
                    kind: EventKind::BoardUpdated,
                    by: &by,
                    details: &[("fields", fields.join(","))],
                },
            )?;
            let board = read::board(tx, &slug)?;
            Ok(board)
        })
        .await
    }

    /// Archives a board and every task on it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn archive_board(&self, slug: String, by: Author) -> Result<Board> {
        self.write(move |tx, fx| {
            if slug == DEFAULT_BOARD {
                return Err(Error::FailedPrecondition(
                    "board \"default\" always exists and cannot be archived".into(),
                ));
            }
            let board = read::board(tx, &slug)?;
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
                revoke::archive_in(tx, id, "", &by, fx)?;
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
                    kind: EventKind::BoardArchived,
                    by: &by,
                    details: &[("tasks_archived", ids.len().to_string())],
                },
            )?;
            let board = read::board(tx, &slug)?;
            Ok(board)
        })
        .await
    }

    /// Deletes every task of a board in one transaction and records a `board_reset` event.
    /// Returns the number of tasks removed and the event id.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn reset_board(&self, slug: String, by: Author) -> Result<(u64, i64)> {
        let (removed, event_id, blobs) = self
            .write(move |tx, fx| {
                read::board(tx, &slug)?;
                for claim in read::board_claims(tx, &slug)? {
                    // A claim whose task an earlier reset deleted is already being revoked.
                    if let Ok(task) = read::task(tx, &claim.task_id) {
                        revoke::revoke_in(tx, &task, RevokeCause::BoardReset, None, "", &by, fx)?;
                    }
                }
                // Their attachments go with the tasks; the blobs once the reset has committed.
                let blobs = tx
                .prepare(
                    "SELECT DISTINCT a.sha256 FROM attachments a JOIN tasks t ON t.id = a.task_id
                     WHERE t.board = ?1",
                )?
                .query_map([&slug], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
                let removed = tx.execute("DELETE FROM tasks WHERE board = ?1", [&slug])?;
                let event_id = events::append(
                    tx,
                    NewEvent {
                        board: &slug,
                        task_id: "",
                        kind: EventKind::BoardReset,
                        by: &by,
                        details: &[("tasks_removed", removed.to_string())],
                    },
                )?;
                Ok((removed as u64, event_id, blobs))
            })
            .await?;
        self.release_blobs(blobs).await;
        Ok((removed, event_id))
    }
}
