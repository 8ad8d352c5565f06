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
    domain::dispatch::{self, TaskView},
    error::Result,
};

impl Store {
    /// Every task counted by status, and the update time of the oldest ready task.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn task_stats(&self) -> Result<(BTreeMap<String, u64>, Option<i64>)> {
        self.call(|conn| {
            let counts = conn
                .prepare_cached("SELECT status, count(*) FROM tasks GROUP BY status")?
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
