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
