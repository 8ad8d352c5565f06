//! Parent/child links, and the promotion of children when their last parent finishes.

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    Store,
    events::{self, NewEvent},
    lifecycle::{self, refused},
    model::Task,
    tasks,
};
use crate::{
    domain::transitions::{Op, next_status},
    error::{Error, Result},
};

/// Whether every parent of `id` is done or archived.
pub(super) fn parents_finished(conn: &Connection, id: &str) -> Result<bool> {
    let unfinished: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM task_links l JOIN tasks p ON p.id = l.parent_id
             WHERE l.child_id = ?1 AND p.status NOT IN ('done', 'archived')",
        )?
        .query_row([id], |row| row.get(0))?;
    Ok(unfinished == 0)
}

/// Ids of the parents (`parents = true`) or children of `id`, sorted.
pub(super) fn neighbours(conn: &Connection, id: &str, parents: bool) -> Result<Vec<String>> {
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
fn is_ancestor_or_self(conn: &Connection, ancestor: &str, id: &str) -> Result<bool> {
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

/// Inserts a link after checking it: same board, no self-link, no cycle, child may take a
/// parent. Moves a ready child of an unfinished parent back to todo.
pub(super) fn link_in(conn: &Connection, parent: &Task, child: &Task, actor: &str) -> Result<()> {
    if parent.id == child.id {
        return Err(Error::invalid(
            "parent_id",
            "a task cannot be its own parent",
        ));
    }
    if parent.board != child.board {
        return Err(Error::invalid(
            "parent_id",
            format!(
                "task {} is on board {:?} but task {} is on board {:?}; links stay within a board",
                parent.id, parent.board, child.id, child.board
            ),
        ));
    }
    if is_ancestor_or_self(conn, &child.id, &parent.id)? {
        return Err(Error::FailedPrecondition(format!(
            "linking {} as a parent of {} would form a cycle: {} already depends on {}",
            parent.id, child.id, parent.id, child.id
        )));
    }
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO task_links (parent_id, child_id) VALUES (?1, ?2)",
        params![parent.id, child.id],
    )?;
    if inserted == 0 {
        return Err(Error::AlreadyExists(format!(
            "task {} is already a parent of {}",
            parent.id, child.id
        )));
    }
    let ctx = lifecycle::context(conn, child)?;
    let to = next_status(child.status, Op::AddParent, &ctx)
        .map_err(|r| refused(&child.id, "link", r))?;
    events::append(
        conn,
        NewEvent {
            board: &child.board,
            task_id: &child.id,
            kind: "linked",
            actor,
            details: &[("parent", parent.id.clone())],
        },
    )?;
    if to != child.status {
        lifecycle::set_status(
            conn,
            child,
            to,
            "demoted",
            actor,
            &[("reason", "unfinished parent".into())],
        )?;
    }
    Ok(())
}

/// Promotes each `todo` child of `parent_id` whose parents are now all finished.
pub(super) fn promote_children(conn: &Connection, parent_id: &str, actor: &str) -> Result<()> {
    for child_id in neighbours(conn, parent_id, false)? {
        promote_if_ready(conn, &child_id, actor)?;
    }
    Ok(())
}

/// Moves a `todo` task to `ready` if its parents are all finished.
fn promote_if_ready(conn: &Connection, id: &str, actor: &str) -> Result<()> {
    let task = tasks::load(conn, id)?;
    if task.status != crate::domain::Status::Todo || !parents_finished(conn, id)? {
        return Ok(());
    }
    let ctx = lifecycle::context(conn, &task)?;
    let to = next_status(task.status, Op::ParentsFinished, &ctx)
        .map_err(|r| refused(id, "promote", r))?;
    lifecycle::set_status(
        conn,
        &task,
        to,
        "promoted",
        actor,
        &[("reason", "parents finished".into())],
    )
}

impl Store {
    /// Makes `parent_id` a parent of `child_id`; returns both afterwards.
    pub async fn link(
        &self,
        parent_id: String,
        child_id: String,
        actor: String,
    ) -> Result<(Task, Task)> {
        self.write(move |tx, _| {
            let parent = tasks::load(tx, &parent_id)?;
            let child = tasks::load(tx, &child_id)?;
            link_in(tx, &parent, &child, &actor)?;
            let pair = (tasks::load(tx, &parent_id)?, tasks::load(tx, &child_id)?);
            Ok(pair)
        })
        .await
    }

    /// Removes a link; a todo child whose parents are now all finished is promoted at once.
    pub async fn unlink(
        &self,
        parent_id: String,
        child_id: String,
        actor: String,
    ) -> Result<(Task, Task)> {
        self.write(move |tx, _| {
            let parent = tasks::load(tx, &parent_id)?;
            let child = tasks::load(tx, &child_id)?;
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
                    kind: "unlinked",
                    actor: &actor,
                    details: &[("parent", parent.id.clone())],
                },
            )?;
            promote_if_ready(tx, &child_id, &actor)?;
            let pair = (tasks::load(tx, &parent_id)?, tasks::load(tx, &child_id)?);
            Ok(pair)
        })
        .await
    }
}
