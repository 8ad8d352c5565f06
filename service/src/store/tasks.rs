//! Task operations: create, read (with its detail), list, edit, assign, and comments.

use tokio_rusqlite::rusqlite::{Connection, params, params_from_iter, types::Value};

use super::{
    Store,
    effect::{Claimable, Effect},
    model::{Comment, NewTask, Task, TaskChanges, TaskDetail, TaskFilter},
    rows,
    tx::{
        claims,
        events::{self, NewEvent},
        graph, links, read, status,
    },
};
use crate::domain::Author;
use crate::{
    clock::now_ms,
    domain::{EventKind, Status, ids, transitions::Op},
    error::{Error, Result},
};

fn create_in(conn: &Connection, new: &NewTask, by: &Author) -> Result<(Task, bool)> {
    read::open_board(conn, &new.board)?;
    let mut parents = Vec::with_capacity(new.parents.len());
    for parent_id in &new.parents {
        let parent = read::task(conn, parent_id).map_err(|err| match err {
            Error::NotFound { .. } => {
                Error::invalid("parents", format!("task {parent_id} does not exist"))
            }
            other => other,
        })?;
        parents.push(parent);
    }
    if let Some(other) = parents.iter().find(|p| p.board != new.board) {
        return Err(Error::invalid(
            "parents",
            format!(
                "task {} is on board {:?}, not {:?}; links stay within a board",
                other.id, other.board, new.board
            ),
        ));
    }
    let parents_finished = parents.iter().all(|p| p.status.is_finished());
    let status = new.initial_status.unwrap_or(if parents_finished {
        Status::Ready
    } else {
        Status::Todo
    });

    let id = ids::ordered(ids::TASK);
    let now = now_ms();
    let inserted = conn
        .prepare_cached(
            "INSERT INTO tasks (id, board, title, body, assignee, status, priority, created_by,
             created_at, updated_at, tenant, idempotency_key, workspace_kind, workspace_path,
             workspace_branch, max_runtime_seconds, max_retries, required_capabilities,
             target_machine, worker_options)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19)
         ON CONFLICT (board, idempotency_key)
             WHERE idempotency_key IS NOT NULL AND status <> 'archived' DO NOTHING",
        )?
        .execute(params![
            id,
            new.board,
            new.title,
            new.body,
            new.assignee,
            status.as_str(),
            new.priority,
            new.created_by,
            now,
            new.tenant,
            new.idempotency_key,
            new.workspace.kind.as_str(),
            new.workspace.path,
            new.workspace.branch,
            new.max_runtime_seconds,
            new.max_retries,
            rows::list_json(&new.required_capabilities),
            new.target_machine,
            rows::options_json(&new.worker_options),
        ])?;
    if inserted == 0 {
        // The unique index on (board, idempotency key) among non-archived tasks refused the row:
        // the key's task exists, and a repeat of the create answers with it. The index is the
        // one check of the key; nothing looks it up before the insert.
        let key = new.idempotency_key.as_deref().unwrap_or_default();
        let existing: String = conn
            .prepare_cached(
                "SELECT id FROM tasks
                 WHERE board = ?1 AND idempotency_key = ?2 AND status <> 'archived'",
            )?
            .query_row(params![new.board, key], |row| row.get(0))?;
        return Ok((read::task(conn, &existing)?, false));
    }
    events::append(
        conn,
        NewEvent {
            board: &new.board,
            task_id: &id,
            kind: EventKind::Created,
            by,
            details: &[("status", status.to_string()), ("title", new.title.clone())],
        },
    )?;
    let child = read::task(conn, &id)?;
    for parent in &parents {
        links::link_in(conn, parent, &child, by)?;
    }
    Ok((read::task(conn, &id)?, true))
}

/// The profile that runs `task`, if it sits in a lane a session claims from (ready or review):
/// its assignee, else its board's default assignee.
fn claimable_profile(conn: &Connection, task: &Task) -> Result<Option<String>> {
    if !matches!(task.status, Status::Ready | Status::Review) {
        return Ok(None);
    }
    if !task.assignee.is_empty() {
        return Ok(Some(task.assignee.clone()));
    }
    let board = read::board(conn, &task.board)?;
    Ok(Some(board.default_assignee).filter(|p| !p.is_empty()))
}

impl Store {
    /// Creates a task, or returns the first task with the same idempotency key (`false`). A
    /// new task changes nothing else a session could claim, so the dispatcher is woken only
    /// for its profile, and only if it is claimable now.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn create_task(&self, new: NewTask, by: Author) -> Result<(Task, bool)> {
        self.write_quietly(move |tx, fx| {
            let created = create_in(tx, &new, &by)?;
            if created.1
                && let Some(profile) = claimable_profile(tx, &created.0)?
            {
                fx.push(Effect::Poke(Claimable::Profile(profile)));
            }
            Ok(created)
        })
        .await
    }

    /// Reads a task with its links, comments, runs and `recent_events` latest events: a plain
    /// read on the connection thread, never inside a group commit, so a write that fails (a
    /// full disk) cannot take it down too, and it wakes no dispatcher.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn task_detail(
        &self,
        id: String,
        recent_events: u32,
        rows_max: u32,
    ) -> Result<TaskDetail> {
        self.call(move |conn| {
            let task = read::task(conn, &id)?;
            let parents = graph::neighbours(conn, &id, true)?;
            let children = graph::neighbours(conn, &id, false)?;
            let comments = conn
                .prepare_cached(&format!(
                    "SELECT * FROM (SELECT {} FROM comments WHERE task_id = ?1
                                    ORDER BY id DESC LIMIT ?2) ORDER BY id",
                    rows::COMMENT_COLUMNS
                ))?
                .query_map(params![id, rows_max], rows::comment)?
                .collect::<Result<_, _>>()?;
            let runs = conn
                .prepare_cached(&format!(
                    "SELECT * FROM (SELECT {} FROM runs WHERE task_id = ?1
                                    ORDER BY epoch DESC LIMIT ?2) ORDER BY epoch",
                    rows::RUN_COLUMNS
                ))?
                .query_map(params![id, rows_max], rows::run)?
                .collect::<Result<_, _>>()?;
            let mut recent = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM events WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2",
                    rows::EVENT_COLUMNS
                ))?
                .query_map(params![id, recent_events], rows::event)?
                .collect::<Result<Vec<_>, _>>()?;
            recent.reverse();
            let imported = conn
                .prepare_cached("SELECT imported FROM tasks WHERE id = ?1")?
                .query_row([&id], |row| row.get(0))?;
            Ok(TaskDetail {
                task,
                parents,
                children,
                comments,
                runs,
                recent_events: recent,
                imported,
            })
        })
        .await
    }

    /// One page of tasks; the second value is the row to continue after, if there is more.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_tasks(&self, filter: TaskFilter) -> Result<(Vec<Task>, Option<i64>)> {
        self.call(move |conn| {
            read::board(conn, &filter.board)?;
            let mut sql = format!(
                "SELECT {}, rowid FROM tasks WHERE board = ? AND rowid > ?",
                rows::TASK_COLUMNS
            );
            let mut args: Vec<Value> = vec![
                filter.board.clone().into(),
                filter.after.unwrap_or(0).into(),
            ];
            if filter.statuses.is_empty() {
                sql.push_str(" AND status <> 'archived'");
            } else {
                let marks = vec!["?"; filter.statuses.len()].join(", ");
                sql.push_str(&format!(" AND status IN ({marks})"));
                args.extend(
                    filter
                        .statuses
                        .iter()
                        .map(|s| Value::from(s.as_str().to_owned())),
                );
            }
            if let Some(assignee) = filter.assignee {
                sql.push_str(" AND assignee = ?");
                args.push(assignee.into());
            }
            if let Some(tenant) = filter.tenant {
                sql.push_str(" AND tenant = ?");
                args.push(tenant.into());
            }
            sql.push_str(" ORDER BY rowid LIMIT ?");
            args.push(i64::from(filter.limit + 1).into());
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut page = stmt
                .query_map(params_from_iter(args), |row| {
                    Ok((
                        row.get::<_, i64>(rows::TASK_COLUMN_COUNT)?,
                        rows::task(row)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let more = page.len() > filter.limit as usize;
            page.truncate(filter.limit as usize);
            let next = if more {
                page.last().map(|(rowid, _)| *rowid)
            } else {
                None
            };
            Ok((page.into_iter().map(|(_, task)| task).collect(), next))
        })
        .await
    }

    /// Changes the descriptive fields that are set.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn update_task(&self, id: String, changes: TaskChanges, by: Author) -> Result<Task> {
        self.write(move |tx, _| {
            let mut task = read::task(tx, &id)?;
            status::next(tx, &task, Op::Edit, "update")?;
            let fields = changes.field_names();
            if fields.is_empty() {
                return Ok(task);
            }
            let TaskChanges {
                title,
                body,
                priority,
                tenant,
                workspace,
                max_runtime_seconds,
                max_retries,
                required_capabilities,
                target_machine,
                worker_options,
            } = changes;
            task.title = title.unwrap_or(task.title);
            task.body = body.unwrap_or(task.body);
            task.priority = priority.unwrap_or(task.priority);
            task.tenant = tenant.unwrap_or(task.tenant);
            task.workspace = workspace.unwrap_or(task.workspace);
            task.max_runtime_seconds = max_runtime_seconds.unwrap_or(task.max_runtime_seconds);
            task.max_retries = max_retries.unwrap_or(task.max_retries);
            task.required_capabilities =
                required_capabilities.unwrap_or(task.required_capabilities);
            task.target_machine = target_machine.unwrap_or(task.target_machine);
            task.worker_options = worker_options.unwrap_or(task.worker_options);
            tx.prepare_cached(
                "UPDATE tasks SET title = ?2, body = ?3, priority = ?4, tenant = ?5,
                        workspace_kind = ?6, workspace_path = ?7, workspace_branch = ?8,
                        max_runtime_seconds = ?9, max_retries = ?10, required_capabilities = ?11,
                        target_machine = ?12, worker_options = ?13, updated_at = ?14
                 WHERE id = ?1",
            )?
            .execute(params![
                id,
                task.title,
                task.body,
                task.priority,
                task.tenant,
                task.workspace.kind.as_str(),
                task.workspace.path,
                task.workspace.branch,
                task.max_runtime_seconds,
                task.max_retries,
                rows::list_json(&task.required_capabilities),
                task.target_machine,
                rows::options_json(&task.worker_options),
                now_ms(),
            ])?;
            events::append(
                tx,
                NewEvent {
                    board: &task.board,
                    task_id: &id,
                    kind: EventKind::Updated,
                    by: &by,
                    details: &[("fields", fields.join(","))],
                },
            )?;
            let task = read::task(tx, &id)?;
            Ok(task)
        })
        .await
    }

    /// Sets or clears the assignee and resets the failure count.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn assign(&self, id: String, assignee: String, by: Author) -> Result<Task> {
        self.write(move |tx, _| {
            let task = read::task(tx, &id)?;
            status::next(tx, &task, Op::Assign, "assign")?;
            tx.execute(
                "UPDATE tasks SET assignee = ?2, consecutive_failures = 0, updated_at = ?3
                 WHERE id = ?1",
                params![id, assignee, now_ms()],
            )?;
            events::append(
                tx,
                NewEvent {
                    board: &task.board,
                    task_id: &id,
                    kind: EventKind::Assigned,
                    by: &by,
                    details: &[("from", task.assignee.clone()), ("to", assignee)],
                },
            )?;
            let task = read::task(tx, &id)?;
            Ok(task)
        })
        .await
    }

    /// Adds a comment. A worker's comment carries its claim `token`, which must be the task's
    /// live claim (fenced like a holder call); an operator's carries none. The comment's
    /// author is `by`'s note. It makes nothing claimable: no dispatcher pass.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn add_comment(
        &self,
        task_id: String,
        body: String,
        token: Option<String>,
        by: Author,
    ) -> Result<Comment> {
        let leases = self.leases.clone();
        self.write_quietly(move |tx, _| {
            let task = read::task(tx, &task_id)?;
            if let Some(token) = token {
                claims::fenced_on(tx, &*leases, &token, &task)?;
            }
            tx.execute(
                "INSERT INTO comments (task_id, author, body, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![task_id, by.note, body, now_ms()],
            )?;
            let id = tx.last_insert_rowid();
            events::append(
                tx,
                NewEvent {
                    board: &task.board,
                    task_id: &task_id,
                    kind: EventKind::Commented,
                    by: &by,
                    details: &[("comment_id", id.to_string())],
                },
            )?;
            let comment = tx
                .prepare_cached(&format!(
                    "SELECT {} FROM comments WHERE id = ?1",
                    rows::COMMENT_COLUMNS
                ))?
                .query_row([id], rows::comment)?;
            Ok(comment)
        })
        .await
    }

    /// One page of a task's comments after comment id `after`; the second value is the id to
    /// continue after, if there is more.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn list_comments(
        &self,
        task_id: String,
        after: i64,
        limit: u32,
    ) -> Result<(Vec<Comment>, Option<i64>)> {
        self.call(move |conn| {
            read::task(conn, &task_id)?;
            let mut page = conn
                .prepare_cached(&format!(
                    "SELECT {} FROM comments WHERE task_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                    rows::COMMENT_COLUMNS
                ))?
                .query_map(params![task_id, after, limit + 1], rows::comment)?
                .collect::<Result<Vec<_>, _>>()?;
            let more = page.len() > limit as usize;
            page.truncate(limit as usize);
            let next = if more {
                page.last().map(|c| c.id)
            } else {
                None
            };
            Ok((page, next))
        })
        .await
    }
}
