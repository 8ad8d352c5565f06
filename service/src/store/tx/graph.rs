//! Parent/child queries over `task_links`.

use tokio_rusqlite::rusqlite::{Connection, params};

use crate::error::Result;

/// Whether every parent of `id` is done or archived.
pub(in crate::store) fn parents_finished(conn: &Connection, id: &str) -> Result<bool> {
    let unfinished: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM task_links l JOIN tasks p ON p.id = l.parent_id
             WHERE l.child_id = ?1 AND p.status NOT IN ('done', 'archived')",
        )?
        .query_row([id], |row| row.get(0))?;
    Ok(unfinished == 0)
}

/// Ids of the parents (`parents = true`) or children of `id`, sorted.
pub(in crate::store) fn neighbours(
    conn: &Connection,
    id: &str,
    parents: bool,
) -> Result<Vec<String>> {
    let sql = if parents {
        "SELECT parent_id FROM task_links WHERE child_id = ?1 ORDER BY parent_id"
    } else {
        "SELECT child_id FROM task_links WHERE parent_id = ?1 ORDER BY child_id"
    };
    let ids = conn
        .prepare_cached(sql)?
        .query_map([id], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Whether `ancestor` is `id` or one of its ancestors.
pub(in crate::store) fn is_ancestor_or_self(
    conn: &Connection,
    ancestor: &str,
    id: &str,
) -> Result<bool> {
    if ancestor == id {
        return Ok(true);
    }
    let found: i64 = conn
        .prepare_cached(
            "WITH RECURSIVE up(id) AS (
                 SELECT parent_id FROM task_links WHERE child_id = ?1
                 UNION
                 SELECT l.parent_id FROM task_links l JOIN up ON l.child_id = up.id)
             SELECT count(*) FROM up WHERE id = ?2",
        )?
        .query_row(params![id, ancestor], |row| row.get(0))?;
    Ok(found > 0)
}
