//! Writing boards brought in from another kanban (`kanband import`) in one transaction.
//!
//! The importer above decides every value (the [`Plan`]: rows already mapped to kanband's
//! model, referring to each other by position); this writes them, issuing kanband's ids in
//! order (tasks and runs in the plan's order, events appended so their ids stay gap-free), and
//! records each source board in `imports` so a second import of it is a no-op. Everything is
//! one transaction: an import is either all in or, on any error or a dry run, not at all.

use std::collections::BTreeMap;

use tokio_rusqlite::rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};

use super::{
    Store,
    model::{WorkerOptions, Workspace},
    rows,
    tx::{events::latest_id, read},
};
use crate::{
    clock::now_ms,
    domain::{Author, BlockKind, EventKind, RunOutcome, Status, ids},
    error::{Error, Result},
};

/// Who the events the import writes itself name as their actor, and the identity every
/// imported event records (with [`Author::SYSTEM_ROLE`]); the source's own actor stays the
/// note.
pub const IMPORT_ACTOR: &str = "kanband-import";

/// Everything one import writes: one entry per source board.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The boards, in import order.
    pub boards: Vec<BoardPlan>,
}

/// Where a board came from, which makes a second import of it recognisable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceBoard {
    /// The kind of source (`hermes`).
    pub system: String,
    /// The database file read, as a canonical path.
    pub path: String,
    /// A fingerprint of its contents that survives a move (none for an empty board).
    pub fingerprint: Option<String>,
}

/// One source board, mapped.
#[derive(Debug, Clone)]
pub struct BoardPlan {
    /// Where it came from.
    pub source: SourceBoard,
    /// The kanband board it goes into (created if missing).
    pub slug: String,
    /// Display name.
    pub display_name: String,
    /// Labels kept from the source's board metadata.
    pub metadata: BTreeMap<String, String>,
    /// Whether the source board was archived (the kanband board is archived after the import).
    pub archived: bool,
    /// Tasks, in the order their ids are issued.
    pub tasks: Vec<TaskPlan>,
    /// Parent links, as (parent, child) positions in `tasks`.
    pub links: Vec<(usize, usize)>,
    /// Comments, oldest first.
    pub comments: Vec<CommentPlan>,
    /// Runs, in the order their ids are issued.
    pub runs: Vec<RunPlan>,
    /// The history, in order, then the import's own events.
    pub events: Vec<EventPlan>,
    /// Notification subscriptions.
    pub subscriptions: Vec<SubscriptionPlan>,
    /// Attachments, whose blobs are copied into kanband's attachment directory by content.
    pub attachments: Vec<AttachmentPlan>,
    /// What the importer read and skipped, kept in `imports.report` (JSON).
    pub report: serde_json::Value,
}

/// A task, mapped.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // the fields are the columns of `tasks`
pub struct TaskPlan {
    pub title: String,
    pub body: String,
    pub assignee: String,
    pub status: Status,
    pub priority: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub tenant: String,
    pub idempotency_key: Option<String>,
    pub result: String,
    pub summary: String,
    pub workspace: Workspace,
    pub max_runtime_seconds: i64,
    pub max_retries: i64,
    pub worker_options: WorkerOptions,
    pub consecutive_failures: i64,
    pub last_failure_error: String,
    pub block_kind: Option<BlockKind>,
    pub block_reason: String,
    pub block_recurrences: i64,
    /// Runs the task had: the next claim's epoch is one more.
    pub epoch: i64,
    /// The source's record of the row (JSON object).
    pub imported: String,
}

/// A comment, mapped.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct CommentPlan {
    pub task: usize,
    pub author: String,
    pub body: String,
    pub created_at: i64,
    pub imported: String,
}

/// A run, mapped; always ended (a run the source shows in flight is ended by the import).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct RunPlan {
    pub task: usize,
    pub epoch: i64,
    pub profile: String,
    pub started_at: i64,
    pub ended_at: i64,
    pub outcome: RunOutcome,
    pub summary: String,
    pub error: String,
    pub last_heartbeat_at: Option<i64>,
    pub imported: String,
}

/// An event, mapped. `run`, when set, adds the run's new id to the details as `run`.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct EventPlan {
    pub task: Option<usize>,
    pub run: Option<usize>,
    pub kind: String,
    pub actor: String,
    pub details: BTreeMap<String, String>,
    pub created_at: i64,
}

/// A subscription, mapped. Its cursor is the new id of event `after` of the plan (everything
/// up to it was delivered), or, with none, the id just before the board's history.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct SubscriptionPlan {
    pub task: usize,
    pub platform: String,
    pub chat_id: String,
    pub thread_id: String,
    pub owner_profile: String,
    pub after: Option<usize>,
    pub created_at: i64,
    pub imported: String,
}

/// An attachment, mapped: its bytes are read from `blob` (a file of the source).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct AttachmentPlan {
    pub task: usize,
    pub blob: std::path::PathBuf,
    pub name: String,
    pub media_type: String,
    pub uploaded_by: String,
    pub created_at: i64,
}

/// What happened to one board of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardOutcome {
    /// Written (or, in a dry run, would have been).
    Imported(Written),
    /// Already imported earlier: nothing written.
    AlreadyImported {
        /// The kanband board it went into then.
        board: String,
        /// When (Unix ms).
        at: i64,
    },
}

/// The ids a board's rows got, in plan order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Whether the kanband board was created by this import.
    pub board_created: bool,
    /// Task ids.
    pub tasks: Vec<String>,
    /// Run ids.
    pub runs: Vec<String>,
    /// Event ids (the history and the import's own events; not `board_created`).
    pub events: Vec<i64>,
    /// Subscription ids.
    pub subscriptions: Vec<String>,
    /// Attachment ids, with the size copied.
    pub attachments: Vec<(String, u64)>,
    /// Tasks whose idempotency key a live task of the board already had: written without it
    /// (it stays in the source record), as (position, key).
    pub displaced_keys: Vec<(usize, String)>,
}

impl Store {
    /// Writes `plan` in one transaction, which a dry run rolls back. A board already imported
    /// (same source path or fingerprint) is left alone.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn import(&self, plan: Plan, dry_run: bool) -> Result<Vec<BoardOutcome>> {
        // The blobs first, each in place (synced, renamed, directory synced) before the row
        // naming it commits, as for an upload; held from removal until then.
        let mut stored = Vec::with_capacity(plan.boards.len());
        for board in &plan.boards {
            let mut blobs = Vec::with_capacity(board.attachments.len());
            for attachment in &board.attachments {
                blobs.push(self.copy_blob(&attachment.blob).await?);
            }
            stored.push(blobs);
        }
        let shas: Vec<String> = stored.iter().flatten().map(|s| s.sha256.clone()).collect();
        let blobs: Vec<Vec<(String, u64)>> = stored
            .iter()
            .map(|b| b.iter().map(|s| (s.sha256.clone(), s.size)).collect())
            .collect();
        let outcomes = self
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut outcomes = Vec::with_capacity(plan.boards.len());
                for (board, blobs) in plan.boards.iter().zip(&blobs) {
                    outcomes.push(match earlier(&tx, &board.source)? {
                        Some((board, at)) => BoardOutcome::AlreadyImported { board, at },
                        None => BoardOutcome::Imported(write_board(&tx, board, blobs)?),
                    });
                }
                if dry_run {
                    tx.rollback()?;
                } else {
                    tx.commit()?;
                }
                Ok(outcomes)
            })
            .await;
        drop(stored);
        // Blobs no committed row names (a dry run, a board imported before, a failure).
        self.release_blobs(shas).await;
        outcomes
    }

    /// Copies a source file into the blob directory by content.
    async fn copy_blob(&self, path: &std::path::Path) -> Result<super::blobs::Stored> {
        use tokio::io::AsyncReadExt as _;
        let unreadable = |err: std::io::Error| {
            Error::FailedPrecondition(format!(
                "cannot read attachment {}: {err}; nothing was imported",
                path.display()
            ))
        };
        let mut file = tokio::fs::File::open(path).await.map_err(unreadable)?;
        let mut upload = self.blobs.upload().await?;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut chunk).await.map_err(unreadable)?;
            if n == 0 {
                break;
            }
            upload.write(&chunk[..n]).await?;
        }
        upload.finish(&self.blobs).await
    }
}

/// The earlier import of `source`, if any: its board and time.
fn earlier(conn: &Connection, source: &SourceBoard) -> Result<Option<(String, i64)>> {
    Ok(conn
        .prepare_cached(
            "SELECT board, imported_at FROM imports
             WHERE system = ?1 AND (source_path = ?2 OR fingerprint = ?3)
             ORDER BY id LIMIT 1",
        )?
        .query_row(
            params![source.system, source.path, source.fingerprint],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

fn write_board(conn: &Connection, plan: &BoardPlan, blobs: &[(String, u64)]) -> Result<Written> {
    let now = now_ms();
    let mut written = Written::default();
    match read::board(conn, &plan.slug) {
        Ok(existing) if existing.archived => {
            return Err(Error::FailedPrecondition(format!(
                "kanband board {:?} is archived: it takes no imported tasks",
                plan.slug
            )));
        }
        Ok(existing) => {
            let mut metadata = existing.metadata;
            metadata.extend(plan.metadata.clone());
            conn.execute(
                "UPDATE boards SET display_name = ?2, metadata = ?3, updated_at = ?4 WHERE slug = ?1",
                params![plan.slug, plan.display_name, rows::map_json(&metadata), now],
            )?;
        }
        Err(Error::NotFound { .. }) => {
            conn.execute(
                "INSERT INTO boards (slug, display_name, metadata, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![
                    plan.slug,
                    plan.display_name,
                    rows::map_json(&plan.metadata),
                    now
                ],
            )?;
            append(
                conn,
                &plan.slug,
                "",
                EventKind::BoardCreated.as_str(),
                IMPORT_ACTOR,
                &BTreeMap::new(),
                now,
            )?;
            written.board_created = true;
        }
        Err(err) => return Err(err),
    }
    let history_start = latest_id(conn)?;

    for (at, task) in plan.tasks.iter().enumerate() {
        let id = ids::ordered(ids::TASK);
        let mut key = task.idempotency_key.clone();
        if let Some(k) = &key
            && task.status != Status::Archived
            && key_taken(conn, &plan.slug, k)?
        {
            written.displaced_keys.push((at, k.clone()));
            key = None;
        }
        conn.prepare_cached(
            "INSERT INTO tasks (id, board, title, body, assignee, status, priority, created_by,
                 created_at, updated_at, started_at, completed_at, tenant, idempotency_key,
                 result, summary, workspace_kind, workspace_path, workspace_branch,
                 max_runtime_seconds, max_retries, worker_options, consecutive_failures,
                 last_failure_error, block_kind, block_reason, block_recurrences, epoch, imported)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                 ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)",
        )?
        .execute(params![
            id,
            plan.slug,
            task.title,
            task.body,
            task.assignee,
            task.status.as_str(),
            task.priority,
            task.created_by,
            task.created_at,
            task.updated_at,
            task.started_at,
            task.completed_at,
            task.tenant,
            key,
            task.result,
            task.summary,
            task.workspace.kind.as_str(),
            task.workspace.path,
            task.workspace.branch,
            task.max_runtime_seconds,
            task.max_retries,
            rows::options_json(&task.worker_options),
            task.consecutive_failures,
            task.last_failure_error,
            task.block_kind.map(BlockKind::as_str),
            task.block_reason,
            task.block_recurrences,
            task.epoch,
            task.imported,
        ])?;
        written.tasks.push(id);
    }
    let task_id = |at: usize| written.tasks[at].clone();

    for &(parent, child) in &plan.links {
        conn.prepare_cached("INSERT INTO task_links (parent_id, child_id) VALUES (?1, ?2)")?
            .execute(params![task_id(parent), task_id(child)])?;
    }
    for comment in &plan.comments {
        conn.prepare_cached(
            "INSERT INTO comments (task_id, author, body, created_at, imported)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            task_id(comment.task),
            comment.author,
            comment.body,
            comment.created_at,
            comment.imported
        ])?;
    }
    for run in &plan.runs {
        let id = ids::ordered(ids::RUN);
        conn.prepare_cached(
            "INSERT INTO runs (id, task_id, epoch, profile, started_at, ended_at, outcome,
                 summary, error, last_heartbeat_at, imported)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            id,
            task_id(run.task),
            run.epoch,
            run.profile,
            run.started_at,
            run.ended_at,
            run.outcome.as_str(),
            run.summary,
            run.error,
            run.last_heartbeat_at,
            run.imported
        ])?;
        written.runs.push(id);
    }
    for event in &plan.events {
        let mut details = event.details.clone();
        if let Some(run) = event.run {
            details.insert("run".into(), written.runs[run].clone());
        }
        let task = event.task.map(task_id).unwrap_or_default();
        let id = append(
            conn,
            &plan.slug,
            &task,
            &event.kind,
            &event.actor,
            &details,
            event.created_at,
        )?;
        written.events.push(id);
    }
    for sub in &plan.subscriptions {
        let id = ids::fresh(ids::SUBSCRIPTION);
        let cursor = sub.after.map_or(history_start, |at| written.events[at]);
        conn.prepare_cached(
            "INSERT INTO subscriptions (id, task_id, platform, chat_id, thread_id, owner_profile,
                 mode, cursor, created_at, imported)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'every', ?7, ?8, ?9)",
        )?
        .execute(params![
            id,
            task_id(sub.task),
            sub.platform,
            sub.chat_id,
            sub.thread_id,
            sub.owner_profile,
            cursor,
            sub.created_at,
            sub.imported
        ])?;
        written.subscriptions.push(id);
    }
    for (attachment, (sha256, size)) in plan.attachments.iter().zip(blobs) {
        let id = ids::ordered(ids::ATTACHMENT);
        conn.prepare_cached(
            "INSERT INTO attachments
                 (id, task_id, name, media_type, size, sha256, uploaded_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            id,
            task_id(attachment.task),
            attachment.name,
            attachment.media_type,
            *size as i64,
            sha256,
            attachment.uploaded_by,
            attachment.created_at
        ])?;
        written.attachments.push((id, *size));
    }
    if plan.archived {
        conn.execute(
            "UPDATE boards SET archived = 1 WHERE slug = ?1",
            params![plan.slug],
        )?;
    }
    conn.prepare_cached(
        "INSERT INTO imports (system, source_path, fingerprint, board, imported_at, report)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        plan.source.system,
        plan.source.path,
        plan.source.fingerprint,
        plan.slug,
        now,
        plan.report.to_string()
    ])?;
    Ok(written)
}

/// Whether a live task of `board` already has idempotency key `key`.
fn key_taken(conn: &Connection, board: &str, key: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE board = ?1 AND idempotency_key = ?2
                            AND status <> 'archived')",
        )?
        .query_row(params![board, key], |row| row.get(0))?)
}

/// Appends one event with its own time and kind (the import keeps the source's), returning its
/// id; ids stay gap-free because the transaction appends them one after another.
fn append(
    conn: &Connection,
    board: &str,
    task_id: &str,
    kind: &str,
    actor: &str,
    details: &BTreeMap<String, String>,
    created_at: i64,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO events (board, task_id, kind, actor, details, created_at, identity,
                             identity_role)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        board,
        task_id,
        kind,
        actor,
        rows::map_json(details),
        created_at,
        IMPORT_ACTOR,
        Author::SYSTEM_ROLE
    ])?;
    Ok(conn.last_insert_rowid())
}
