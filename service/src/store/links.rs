//! Parent/child link operations; a child whose last parent finishes is promoted at once.

use tokio_rusqlite::rusqlite::params;

use super::{
    Store,
    model::Task,
    tx::{
        events::{self, NewEvent},
        links::link_in,
        read,
        status::promote_if_ready,
    },
};
use crate::domain::Author;
use crate::{
    domain::EventKind,
    error::{Error, Result},
};

impl Store {
    /// Makes `parent_id` a parent of `child_id`; returns both afterwards.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn link(
        &self,
        parent_id: String,
        child_id: String,
        by: Author,
    ) -> Result<(Task, Task)> {
        self.write(move |tx, _| {
            let parent = read::task(tx, &parent_id)?;
            let child = read::task(tx, &child_id)?;
            link_in(tx, &parent, &child, &by)?;
            let pair = (read::task(tx, &parent_id)?, read::task(tx, &child_id)?);
            Ok(pair)
        })
        .await
    }

    /// Removes a link; a todo child whose parents are now all finished is promoted at once.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn unlink(
        &self,
        parent_id: String,
        child_id: String,
        by: Author,
    ) -> Result<(Task, Task)> {
        self.write(move |tx, _| {
            let parent = read::task(tx, &parent_id)?;
            let child = read::task(tx, &child_id)?;
            let removed = tx.execute(
                "DELETE FROM task_links WHERE parent_id = ?1 AND child_id = ?2",
                params![parent_id, child_id],
            )?;
            if removed == 0 {
                return Err(Error::not_found(
                    "link",
                    format!("{parent_id} -> {child_id}"),
                ));
            }
            events::append(
                tx,
                NewEvent {
                    board: &child.board,
                    task_id: &child.id,
                    kind: EventKind::Unlinked,
                    by: &by,
                    details: &[("parent", parent.id.clone())],
                },
            )?;
            promote_if_ready(tx, &child_id, &by)?;
            let pair = (read::task(tx, &parent_id)?, read::task(tx, &child_id)?);
            Ok(pair)
        })
        .await
    }
}
