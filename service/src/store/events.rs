//! Reading the event log: pages for `ListEvents` and `Watch`, and the newest id.

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    Store,
    model::{Event, EventFilter, WatchFilter},
    rows,
    tx::{events::latest_id, read},
};
use crate::error::{Error, Result};

/// Events matching `filter`, in id order.
fn list(conn: &Connection, filter: &EventFilter) -> Result<Vec<Event>> {
    let sql = format!(
        "SELECT {} FROM events
         WHERE id > ?1 AND (?2 IS NULL OR board = ?2) AND (?3 IS NULL OR task_id = ?3)
         ORDER BY id LIMIT ?4",
        rows::EVENT_COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let events = stmt
        .query_map(
            params![filter.after_id, filter.board, filter.task_id, filter.limit],
            rows::event,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(events)
}

/// Refuses a filter that names a board or task kanband never had (NOT_FOUND), so a typo is not
/// answered with an empty history or a watch that waits forever. A task deleted by its board's
/// reset still has its history, and is known by it.
fn known(conn: &Connection, board: Option<&str>, task_id: Option<&str>) -> Result<()> {
    if let Some(board) = board {
        read::board(conn, board)?;
    }
    if let Some(id) = task_id {
        let seen: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM tasks WHERE id = ?1)
                     OR EXISTS (SELECT 1 FROM events WHERE task_id = ?1)",
            )?
            .query_row([id], |row| row.get(0))?;
        if !seen {
            return Err(Error::not_found("task", id));
        }
    }
    Ok(())
}

impl Store {
    /// Events after `filter.after_id`, filtered by board and task (which must exist).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_events(&self, filter: EventFilter) -> Result<Vec<Event>> {
        self.call(move |conn| {
            known(conn, filter.board.as_deref(), filter.task_id.as_deref())?;
            list(conn, &filter)
        })
        .await
    }

    /// Refuses a watch of a board or task kanband never had (NOT_FOUND).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn check_watch(&self, filter: WatchFilter) -> Result<()> {
        self.call(move |conn| known(conn, filter.board.as_deref(), filter.task_id.as_deref()))
            .await
    }
}

impl Store {
    /// Up to `limit` events after `after_id` that match `filter`, in id order.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn watch_page(
        &self,
        filter: WatchFilter,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Event>> {
        self.call(move |conn| {
            let sql = format!(
                "SELECT {} FROM events
                 WHERE id > ?1 AND (?2 IS NULL OR board = ?2) AND (?3 IS NULL OR task_id = ?3)
                   AND (?4 IS NULL OR kind IN (SELECT value FROM json_each(?4)))
                   AND (?5 IS NULL OR task_id IN (SELECT id FROM tasks WHERE assignee = ?5))
                 ORDER BY id LIMIT ?6",
                rows::EVENT_COLUMNS
            );
            let kinds = (!filter.kinds.is_empty()).then(|| rows::list_json(&filter.kinds));
            let events = conn
                .prepare_cached(&sql)?
                .query_map(
                    params![
                        after_id,
                        filter.board,
                        filter.task_id,
                        kinds,
                        filter.assignee,
                        limit
                    ],
                    rows::event,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(events)
        })
        .await
    }

    /// The id of the newest event (0 if none).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn latest_event_id(&self) -> Result<i64> {
        self.call(|conn| latest_id(conn)).await
    }
}
