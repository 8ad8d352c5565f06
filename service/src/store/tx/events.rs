//! Appending to the event log: every change appends an event in its own transaction.

use std::collections::BTreeMap;

use tokio_rusqlite::rusqlite::{Connection, params};

use crate::{
    clock::now_ms,
    domain::{Author, EventKind},
    error::{Error, Result},
};

/// A change to record.
#[derive(Debug)]
pub(in crate::store) struct NewEvent<'a> {
    pub(in crate::store) board: &'a str,
    pub(in crate::store) task_id: &'a str,
    pub(in crate::store) kind: EventKind,
    /// Who caused it: the authenticated identity, and the caller's note (`events.actor`).
    pub(in crate::store) by: &'a Author,
    pub(in crate::store) details: &'a [(&'a str, String)],
}

/// Appends an event inside the caller's transaction and returns its id.
pub(in crate::store) fn append(conn: &Connection, event: NewEvent<'_>) -> Result<i64> {
    // A JSON object of strings, keys sorted (as a `serde_json::Map` orders them), written
    // without building a `serde_json::Value` first.
    let details: BTreeMap<&str, &str> = event
        .details
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let details = serde_json::to_string(&details).map_err(|_| Error::Internal)?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events (board, task_id, kind, actor, details, created_at, identity,
                             identity_role)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    stmt.execute(params![
        event.board,
        event.task_id,
        event.kind.as_str(),
        event.by.note,
        details,
        now_ms(),
        event.by.identity,
        event.by.role,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// The id of the newest event (0 if none).
pub(in crate::store) fn latest_id(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM events")?
        .query_row([], |row| row.get(0))?)
}
