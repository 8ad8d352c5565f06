//! The append-only event log: every change appends an event in its own transaction.

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    Store,
    model::{Event, EventFilter},
    now_ms, rows,
};
use crate::error::Result;

/// A change to record.
#[derive(Debug)]
pub(super) struct NewEvent<'a> {
    pub(super) board: &'a str,
    pub(super) task_id: &'a str,
    pub(super) kind: &'a str,
    pub(super) actor: &'a str,
    pub(super) details: &'a [(&'a str, String)],
}

/// Appends an event inside the caller's transaction and returns its id.
pub(super) fn append(conn: &Connection, event: NewEvent<'_>) -> Result<i64> {
    let details: serde_json::Map<String, serde_json::Value> = event
        .details
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
        .collect();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events (board, task_id, kind, actor, details, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    stmt.execute(params![
        event.board,
        event.task_id,
        event.kind,
        event.actor,
        serde_json::Value::Object(details).to_string(),
        now_ms(),
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Events matching `filter`, in id order.
pub(super) fn list(conn: &Connection, filter: &EventFilter) -> Result<Vec<Event>> {
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

impl Store {
    /// Events after `filter.after_id`, filtered by board and task.
    pub async fn list_events(&self, filter: EventFilter) -> Result<Vec<Event>> {
        self.call(move |conn| list(conn, &filter)).await
    }
}

/// Filters of a watch: like [`EventFilter`] plus kinds and the task's current assignee.
#[derive(Debug, Clone, Default)]
pub struct WatchFilter {
    /// Board, if filtered.
    pub board: Option<String>,
    /// Task, if filtered.
    pub task_id: Option<String>,
    /// Kinds; empty means all.
    pub kinds: Vec<String>,
    /// Current assignee of the event's task, if filtered.
    pub assignee: Option<String>,
}

impl Store {
    /// Up to `limit` events after `after_id` that match `filter`, in id order.
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
    pub async fn latest_event_id(&self) -> Result<i64> {
        self.call(|conn| latest_id(conn)).await
    }
}

/// The id of the newest event (0 if none).
pub(super) fn latest_id(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM events")?
        .query_row([], |row| row.get(0))?)
}
