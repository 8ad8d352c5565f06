//! The dispatch candidates, in dispatch order: by what a session can run, for the grant pass,
//! and a whole lane, for the preview.
//!
//! A task goes to the profile its assignee names, else its board's default assignee. So the
//! tasks a session may take sit under a few keys (profile or no assignee, board, lane), each
//! served in dispatch order by the `tasks_dispatch_by_assignee` index: the grant pass seeks
//! straight to them, and ready tasks no waiting session runs, however many, cost it nothing.
//!
//! Both dispatch indexes hold only the tasks of the two lanes (ready and review), so a task
//! leaving a lane costs one index entry and its later changes none. SQLite uses such a partial
//! index only for a query whose text proves that its rows are in it, so each query is written
//! once per lane with the lane's status in the text, never bound.

use std::sync::LazyLock;

use tokio_rusqlite::rusqlite::{Connection, params};

use crate::{
    domain::{Status, dispatch::TaskView},
    error::Result,
    store::rows::{self, CANDIDATE_COLUMNS},
};

/// The tasks of one status a session claims from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(in crate::store) enum Lane {
    /// Ready tasks.
    Work = 0,
    /// Tasks in review, for a session with the review lane.
    Review = 1,
}

impl Lane {
    /// Every lane, in the order of their discriminants.
    const ALL: [Lane; 2] = [Lane::Work, Lane::Review];

    /// The status of the lane's tasks.
    pub(in crate::store) fn status(self) -> Status {
        match self {
            Lane::Work => Status::Ready,
            Lane::Review => Status::Review,
        }
    }
}

/// The lanes a session claims from: ready tasks, and review for the review lane.
pub(in crate::store) fn lanes(review_lane: bool) -> &'static [Lane] {
    if review_lane {
        &Lane::ALL
    } else {
        &[Lane::Work]
    }
}

/// A board that is not archived, with its default assignee.
#[derive(Debug, Clone)]
pub(in crate::store) struct OpenBoard {
    slug: String,
    default_assignee: String,
}

/// Every board that is not archived (the grant pass reads them once).
pub(in crate::store) fn open_boards(conn: &Connection) -> Result<Vec<OpenBoard>> {
    let boards = conn
        .prepare_cached(OPEN_BOARDS)?
        .query_map([], |row| {
            Ok(OpenBoard {
                slug: row.get(0)?,
                default_assignee: row.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(boards)
}

/// One place a session's candidates sit: one lane's tasks with one assignee (empty: none, on
/// a board whose default assignee the session runs) on one board.
/// Owned and hashable, so a grant pass can keep what it read under each key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(in crate::store) struct Key {
    assignee: String,
    board: String,
    lane: Lane,
}

/// Every key under which a task a session with these profiles and lanes could run sits.
pub(in crate::store) fn keys(
    boards: &[OpenBoard],
    profiles: &[String],
    review_lane: bool,
) -> Vec<Key> {
    let mut keys = Vec::new();
    for board in boards {
        let default_runs = profiles.contains(&board.default_assignee);
        let assignees = profiles
            .iter()
            .map(String::as_str)
            .chain(default_runs.then_some(""));
        for assignee in assignees {
            for &lane in lanes(review_lane) {
                let key = Key {
                    assignee: assignee.to_owned(),
                    board: board.slug.clone(),
                    lane,
                };
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
    }
    keys
}

/// The query of [`under_key`], for each lane.
static UNDER_KEY: LazyLock<[String; 2]> = LazyLock::new(|| {
    Lane::ALL.map(|lane| {
        format!(
            "SELECT {CANDIDATE_COLUMNS}
               FROM tasks t INDEXED BY tasks_dispatch_by_assignee
                 JOIN boards b ON b.slug = t.board
               WHERE t.assignee = ?1 AND t.board = ?2 AND t.status = '{}' AND NOT b.archived
               ORDER BY t.priority DESC, t.created_at, t.id
               LIMIT ?3 OFFSET ?4",
            lane.status()
        )
    })
});

/// The query of [`lane`], for each lane.
static LANE: LazyLock<[String; 2]> = LazyLock::new(|| {
    Lane::ALL.map(|lane| {
        format!(
            "SELECT {CANDIDATE_COLUMNS}
               FROM tasks t INDEXED BY tasks_dispatch JOIN boards b ON b.slug = t.board
               WHERE t.status = '{}' AND NOT b.archived AND (?1 IS NULL OR t.board = ?1)
               ORDER BY t.priority DESC, t.created_at, t.id
               LIMIT ?2",
            lane.status()
        )
    })
});

/// Boards to look candidates up on.
const OPEN_BOARDS: &str = "SELECT slug, default_assignee FROM boards WHERE NOT archived";

/// The SQLite virtual-machine steps this module's queries took on `conn` since the last call
/// (the work of looking candidates up, whatever the plan), for tests that bound it.
#[cfg(test)]
pub(in crate::store) fn steps_since_last(conn: &Connection) -> Result<i64> {
    use tokio_rusqlite::rusqlite::StatementStatus;
    let mut steps = 0;
    for sql in UNDER_KEY
        .iter()
        .chain(LANE.iter())
        .map(String::as_str)
        .chain([OPEN_BOARDS])
    {
        let stmt = conn.prepare_cached(sql)?;
        steps += i64::from(stmt.get_status(StatementStatus::VmStep));
        stmt.reset_status(StatementStatus::VmStep);
    }
    Ok(steps)
}

#[cfg(test)]
thread_local! {
    /// Candidate rows [`under_key`] has returned on this thread, the connection's own.
    static ROWS_READ: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The candidate rows read under keys on `conn`'s thread since the last call (run it on the
/// connection, as the reads were), for tests that bound how much a pass decodes.
#[cfg(test)]
pub(in crate::store) fn rows_read_since_last(_conn: &Connection) -> usize {
    ROWS_READ.with(|rows| rows.replace(0))
}

/// How often SQLite has prepared this module's queries again since they were first prepared
/// on `conn` (a plan that depended on a bound value goes stale when it is bound again).
#[cfg(test)]
pub(in crate::store) fn prepared_again(conn: &Connection) -> Result<i64> {
    use tokio_rusqlite::rusqlite::StatementStatus;
    let mut again = 0;
    for sql in UNDER_KEY
        .iter()
        .chain(LANE.iter())
        .map(String::as_str)
        .chain([OPEN_BOARDS])
    {
        again += i64::from(
            conn.prepare_cached(sql)?
                .get_status(StatementStatus::RePrepare),
        );
    }
    Ok(again)
}

/// One page of the tasks under `key`, in dispatch order: a seek into
/// `tasks_dispatch_by_assignee` (named, so no plan can fall back to walking the whole lane)
/// that reads about as many rows as the page holds.
pub(in crate::store) fn under_key(
    conn: &Connection,
    key: &Key,
    limit: u32,
    offset: u32,
) -> Result<Vec<TaskView>> {
    let views = conn
        .prepare_cached(&UNDER_KEY[key.lane as usize])?
        .query_map(params![key.assignee, key.board, limit, offset], |row| {
            rows::candidate(row, key.lane.status())
        })?
        .collect::<Result<Vec<_>, _>>()?;
    #[cfg(test)]
    ROWS_READ.with(|rows| rows.set(rows.get() + views.len()));
    Ok(views)
}

/// The first `limit` tasks of one lane, on one board or all open boards, in dispatch order,
/// whoever runs them (the preview). Served by the `tasks_dispatch` index, so it costs about as
/// many rows as it returns.
pub(in crate::store) fn lane(
    conn: &Connection,
    lane: Lane,
    board: Option<&str>,
    limit: u32,
) -> Result<Vec<TaskView>> {
    let views = conn
        .prepare_cached(&LANE[lane as usize])?
        .query_map(params![board, limit], |row| {
            rows::candidate(row, lane.status())
        })?
        .collect::<Result<_, _>>()?;
    Ok(views)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(slug: &str, default_assignee: &str) -> OpenBoard {
        OpenBoard {
            slug: slug.into(),
            default_assignee: default_assignee.into(),
        }
    }

    #[test]
    fn keys_cover_each_profile_and_the_defaults_the_session_runs() {
        let boards = [board("a", "coder"), board("b", "writer"), board("c", "")];
        let profiles = ["coder".to_owned(), "tester".to_owned(), "coder".to_owned()];
        let owned: Vec<(String, String, &str)> = keys(&boards, &profiles, true)
            .into_iter()
            .map(|k| (k.assignee, k.board, k.lane.status().as_str()))
            .collect();
        let mut listed: Vec<(&str, &str, &str)> = owned
            .iter()
            .map(|(a, b, l)| (a.as_str(), b.as_str(), *l))
            .collect();
        listed.sort();
        let mut want = Vec::new();
        for (assignee, board) in [
            ("", "a"),
            ("coder", "a"),
            ("coder", "b"),
            ("coder", "c"),
            ("tester", "a"),
            ("tester", "b"),
            ("tester", "c"),
        ] {
            want.push((assignee, board, "ready"));
            want.push((assignee, board, "review"));
        }
        want.sort();
        assert_eq!(listed, want);
        assert!(
            keys(&boards, &profiles, false)
                .iter()
                .all(|k| k.lane == Lane::Work),
            "without the review lane only ready tasks"
        );
        assert!(
            keys(&boards, &[], false).is_empty(),
            "a session without profiles runs nothing"
        );
    }
}
