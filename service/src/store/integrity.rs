//! The integrity check run in the background right after start-up: SQLite's `quick_check`
//! (every page of every b-tree is well formed), one table with its indexes per call, so the
//! writes and reads of a serving kanband interleave with it instead of waiting for the whole
//! file. A damaged page would otherwise go unnoticed until some query happened to read it.

use super::Store;
use crate::error::Result;

impl Store {
    /// Runs `PRAGMA quick_check` on every table and its indexes; returns one line per damaged
    /// table naming it, its indexes and what SQLite found (empty when all is well).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn quick_check(&self) -> Result<Vec<String>> {
        let tables: Vec<(String, String)> = self
            .call(|conn| {
                Ok(conn
                    .prepare(
                        "SELECT t.name, coalesce(group_concat(i.name, ', '), '')
                         FROM sqlite_schema t
                         LEFT JOIN sqlite_schema i ON i.type = 'index' AND i.tbl_name = t.name
                         WHERE t.type = 'table' GROUP BY t.name ORDER BY t.name",
                    )?
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<_, _>>()?)
            })
            .await?;
        let mut damage = Vec::new();
        for (table, indexes) in tables {
            let name = table.clone();
            let found: Vec<String> = self
                .call(move |conn| {
                    let sql = format!("PRAGMA quick_check(\"{}\")", name.replace('"', "\"\""));
                    let rows = conn.prepare(&sql).and_then(|mut stmt| {
                        stmt.query_map([], |row| row.get::<_, String>(0))?
                            .collect::<Result<Vec<_>, _>>()
                    });
                    Ok(match rows {
                        Ok(rows) if rows == ["ok"] => Vec::new(),
                        Ok(rows) => rows,
                        Err(err) => vec![err.to_string()],
                    })
                })
                .await?;
            if !found.is_empty() {
                let indexes = if indexes.is_empty() {
                    String::new()
                } else {
                    format!(" (indexes {indexes})")
                };
                damage.push(format!("table {table}{indexes}: {}", found.join("; ")));
            }
        }
        Ok(damage)
    }
}
