//! The dispatch candidates of a lane, in dispatch order, for the grant pass and the preview.

use std::sync::LazyLock;

use tokio_rusqlite::rusqlite::{Connection, params};

use crate::{
    domain::{Status, dispatch::TaskView},
    error::Result,
    store::rows::{self, CANDIDATE_COLUMNS},
};

/// The statuses a session claims from: ready, and review for the review lane.
pub(in crate::store) fn lanes(review_lane: bool) -> &'static [Status] {
    if review_lane {
        &[Status::Ready, Status::Review]
    } else {
        &[Status::Ready]
    }
}

/// One lane's tasks (`status` ready or review) with what the dispatch rules need, in dispatch
/// order. Served by the `tasks_dispatch` index, so a page costs about as many rows as it holds.
pub(in crate::store) fn candidates(
    conn: &Connection,
    lane: Status,
    profiles: Option<&[String]>,
    board: Option<&str>,
    limit: u32,
    offset: u32,
) -> Result<Vec<TaskView>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {CANDIDATE_COLUMNS}
               FROM tasks t JOIN boards b ON b.slug = t.board
               WHERE t.status = ?1 AND NOT b.archived
                 AND (?2 IS NULL
                      OR t.assignee IN (SELECT value FROM json_each(?2))
                      OR (t.assignee = '' AND b.default_assignee IN (SELECT value FROM json_each(?2))))
                 AND (?3 IS NULL OR t.board = ?3)
               ORDER BY t.priority DESC, t.created_at, t.id
               LIMIT ?4 OFFSET ?5"
        )
    });
    let profiles = profiles.map(rows::list_json);
    let views = conn
        .prepare_cached(&SQL)?
        .query_map(
            params![lane.as_str(), profiles, board, limit, offset],
            |row| rows::candidate(row, lane),
        )?
        .collect::<Result<_, _>>()?;
    Ok(views)
}
