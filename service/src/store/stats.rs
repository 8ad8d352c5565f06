//! Read-only views for operators: task counts and the dispatch preview's candidates.

use std::collections::BTreeMap;

use super::{
    Store,
    model::Task,
    tx::{
        candidates::{self, lanes},
        read,
    },
};
use crate::{
    domain::{
        Status,
        dispatch::{self, TaskView},
    },
    error::Result,
};

impl Store {
    /// Every task counted by status, and the update time of the oldest ready task.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn task_stats(&self) -> Result<(BTreeMap<String, u64>, Option<i64>)> {
        self.call(|conn| {
            // Counted by board first: a scan of the `tasks_board_status` index in its order,
            // leaving one row per board and status to group (grouped by status alone, SQLite
            // sorted every task).
            let counts = conn
                .prepare_cached(
                    "SELECT status, sum(n) FROM (SELECT board, status, count(*) AS n FROM tasks
                                                  GROUP BY board, status)
                     GROUP BY status",
                )?
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
                })?
                .collect::<Result<_, _>>()?;
            let oldest: Option<i64> = conn
                .prepare_cached("SELECT min(updated_at) FROM tasks WHERE status = 'ready'")?
                .query_row([], |row| row.get(0))?;
            Ok((counts, oldest))
        })
        .await
    }

    /// Tasks counted by board and status, every status of every board listed (zeros
    /// included, so a gauge falls back to 0 when its last task leaves); a covering scan of
    /// the `tasks_board_status` index.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn tasks_by_board(&self) -> Result<BTreeMap<(String, &'static str), u64>> {
        self.call(|conn| {
            let mut counts = BTreeMap::new();
            let boards = conn
                .prepare_cached("SELECT slug FROM boards")?
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            for board in boards {
                for status in Status::ALL {
                    counts.insert((board.clone(), status.as_str()), 0);
                }
            }
            let mut query = conn.prepare_cached(
                "SELECT board, status, count(*) FROM tasks GROUP BY board, status",
            )?;
            let rows = query.query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (board, status, count) = row?;
                if let Some(status) = Status::ALL.iter().find(|s| s.as_str() == status) {
                    counts.insert((board, status.as_str()), count as u64);
                }
            }
            Ok(counts)
        })
        .await
    }

    /// Dispatch candidates for a preview.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn preview_candidates(
        &self,
        board: Option<String>,
        review_lane: bool,
        limit: u32,
    ) -> Result<Vec<(TaskView, Task)>> {
        self.call(move |conn| {
            let mut views = Vec::new();
            for &lane in lanes(review_lane) {
                views.extend(candidates::lane(conn, lane, board.as_deref(), limit)?);
            }
            dispatch::sort(&mut views);
            views.truncate(limit as usize);
            views
                .into_iter()
                .map(|view| {
                    let task = read::task(conn, &view.id)?;
                    Ok((view, task))
                })
                .collect()
        })
        .await
    }
}
