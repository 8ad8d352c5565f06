//! The storage cap behind `Admin.SetStorageLimit`: SQLite's page-count limit, which makes a
//! write that would grow the database fail exactly as on a full disk. The cap is kept in the
//! `settings` table and applied at start-up before anything is written, so a database held at
//! its cap stays held there across a restart (and a full disk can be rehearsed at start-up).

use tokio_rusqlite::rusqlite::{Connection, OptionalExtension as _, params};

use super::Store;
use crate::error::Result;

/// SQLite's largest page count: no cap.
const NO_PAGE_LIMIT: u64 = 4_294_967_294;

/// The `settings` row that holds the cap in bytes.
const SETTING: &str = "storage_limit_bytes";

/// Sets SQLite's page-count limit to about `max_bytes` (0: none) on this connection; returns
/// the cap in force and the current size, in bytes.
fn apply(conn: &Connection, max_bytes: u64) -> Result<(u64, u64)> {
    let page: u64 = conn.query_row("PRAGMA page_size", [], |row| row.get::<_, i64>(0))? as u64;
    let pages = if max_bytes == 0 {
        NO_PAGE_LIMIT
    } else {
        (max_bytes / page).max(1)
    };
    let set: u64 = conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
        row.get::<_, i64>(0)
    })? as u64;
    let used: u64 = conn.query_row("PRAGMA page_count", [], |row| row.get::<_, i64>(0))? as u64;
    let cap = if set >= NO_PAGE_LIMIT { 0 } else { set * page };
    Ok((cap, used * page))
}

/// Applies the stored cap, if any (at start-up, before anything is written).
pub(super) fn restore(conn: &Connection) -> Result<()> {
    let stored: Option<i64> = conn
        .query_row(
            "SELECT value FROM settings WHERE name = ?1",
            [SETTING],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(max_bytes) = stored {
        let (cap, used) = apply(conn, max_bytes as u64)?;
        tracing::info!(cap, used, "the database is capped (Admin.SetStorageLimit)");
    }
    Ok(())
}

impl Store {
    /// Caps the database at about `max_bytes` (0 removes the cap), now and after a restart;
    /// returns the cap in force and the current size, in bytes. The cap is stored before it is
    /// applied and applied before it is removed from storage, so storing never hits it.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn set_storage_limit(&self, max_bytes: u64) -> Result<(u64, u64)> {
        if max_bytes == 0 {
            let applied = self.call(|conn| apply(conn, 0)).await?;
            self.write_quietly(|tx, _| {
                tx.execute("DELETE FROM settings WHERE name = ?1", [SETTING])?;
                Ok(())
            })
            .await?;
            return Ok(applied);
        }
        self.write_quietly(move |tx, _| {
            tx.execute(
                "INSERT INTO settings (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![SETTING, max_bytes as i64],
            )?;
            Ok(())
        })
        .await?;
        self.call(move |conn| apply(conn, max_bytes)).await
    }
}
