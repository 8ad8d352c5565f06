//! Adding a checked parent link.

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    events::{self, NewEvent},
    graph,
    status::{self, set_status},
};
use crate::domain::Author;
use crate::{
    domain::{EventKind, transitions::Op},
    error::{Error, Result},
    store::model::Task,
};

/// Inserts a link after checking it: same board, no self-link, no cycle, child may take a
/// parent. Moves a ready child of an unfinished parent back to todo.
pub(in crate::store) fn link_in(
    conn: &Connection,
    parent: &Task,
    child: &Task,
    by: &Author,
) -> Result<()> {
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
    if graph::is_ancestor_or_self(conn, &child.id, &parent.id)? {
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
    let to = status::next(conn, child, Op::AddParent, "link")?;
    events::append(
        conn,
        NewEvent {
            board: &child.board,
            task_id: &child.id,
            kind: EventKind::Linked,
            by,
            details: &[("parent", parent.id.clone())],
        },
    )?;
    if to != child.status {
        set_status(
            conn,
            child,
            to,
            EventKind::Demoted,
            by,
            &[("reason", "unfinished parent".into())],
        )?;
    }
    Ok(())
}
