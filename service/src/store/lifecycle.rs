//! Status changes an operator asks for: block, unblock, schedule, promote, archive, reclaim,
//! reopen review. Each asks the transition rules first (see [`super::tx::status`]).

use std::time::Duration;

use tokio_rusqlite::rusqlite::{Connection, params};

use super::{
    Store,
    effect::Effect,
    model::Task,
    tx::{
        read, revoke,
        status::{self, block_in, set_status},
    },
};
use crate::domain::Author;
use crate::{
    domain::{BlockKind, EventKind, Status, lease::RevokeCause, transitions::Op},
    error::Result,
};

impl Store {
    /// Runs `change` on a loaded task inside one transaction and returns the task afterwards.
    async fn change_task<F>(&self, id: String, change: F) -> Result<Task>
    where
        F: FnOnce(&Connection, &Task, &mut Vec<Effect>) -> Result<()> + Send + 'static,
    {
        self.write(move |tx, fx| {
            let task = read::task(tx, &id)?;
            change(tx, &task, fx)?;
            read::task(tx, &id)
        })
        .await
    }

    /// Operator block of a task that is not running.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn block(
        &self,
        id: String,
        kind: BlockKind,
        reason: String,
        by: Author,
    ) -> Result<Task> {
        self.change_task(id, move |conn, task, _| {
            block_in(conn, task, Op::Block(kind), kind, &reason, &by)
        })
        .await
    }

    /// Unblocks a blocked task and resets its failure count.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn unblock(&self, id: String, by: Author) -> Result<Task> {
        self.change_task(id, move |conn, task, _| {
            let to = status::next(conn, task, Op::Unblock, "unblock")?;
            conn.execute(
                "UPDATE tasks SET consecutive_failures = 0, protocol_violations = 0,
                        outcomeless_attempts = 0
                 WHERE id = ?1",
                [&task.id],
            )?;
            set_status(conn, task, to, EventKind::Unblocked, &by, &[])
        })
        .await
    }

    /// Parks a task in `scheduled`, until `until_ms` (Unix ms) if given. A running task's claim
    /// is revoked; the task is scheduled when its holder confirms or its lease runs out.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn schedule(&self, id: String, until_ms: Option<i64>, by: Author) -> Result<Task> {
        self.change_task(id, move |conn, task, fx| {
            let to = status::next(conn, task, Op::Schedule, "schedule")?;
            if task.status == Status::Running {
                return revoke::revoke_in(
                    conn,
                    task,
                    RevokeCause::Scheduled,
                    until_ms,
                    "",
                    &by,
                    fx,
                );
            }
            let details = [(
                "until_ms",
                until_ms.map(|t| t.to_string()).unwrap_or_default(),
            )];
            set_status(conn, task, to, EventKind::Scheduled, &by, &details)?;
            conn.execute(
                "UPDATE tasks SET scheduled_until = ?2 WHERE id = ?1",
                params![task.id, until_ms],
            )?;
            if let Some(until) = until_ms {
                fx.push(Effect::Wake(task.id.clone(), until));
            }
            Ok(())
        })
        .await
    }

    /// Operator promotion.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn promote(&self, id: String, by: Author) -> Result<Task> {
        self.change_task(id, move |conn, task, _| {
            let to = status::next(conn, task, Op::Promote, "promote")?;
            set_status(conn, task, to, EventKind::Promoted, &by, &[])
        })
        .await
    }

    /// Archives a task.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn archive(&self, id: String, reason: String, by: Author) -> Result<Task> {
        self.change_task(id, move |conn, task, fx| {
            revoke::archive_in(conn, &task.id, &reason, &by, fx).map(drop)
        })
        .await
    }

    /// Operator reclaim of a running task: its claim is revoked and the task returns to ready
    /// (with its failure count reset) when the holder confirms or its lease runs out.
    ///
    /// With a `grace`, the holder is first asked to stop (`cancel_requested`) and the claim is
    /// revoked when the grace ends, unless the holder has finished by then.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn reclaim(
        &self,
        id: String,
        grace: Duration,
        reason: String,
        by: Author,
    ) -> Result<Task> {
        self.change_task(id, move |conn, task, fx| {
            status::next(conn, task, Op::Requeue, "reclaim")?;
            if grace.is_zero() {
                let cause = RevokeCause::Reclaimed;
                return revoke::revoke_in(conn, task, cause, None, &reason, &by, fx);
            }
            revoke::request_cancel_in(conn, task, grace, &reason, &by, fx)
        })
        .await
    }

    /// Sends a done task back to review.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn reopen_review(&self, id: String, by: Author) -> Result<Task> {
        self.change_task(id, move |conn, task, _| {
            let to = status::next(conn, task, Op::ReopenReview, "reopen")?;
            set_status(conn, task, to, EventKind::ReviewReopened, &by, &[])
        })
        .await
    }
}
