//! Every mapping from rows to [`model`](super::model) types (and to the dispatch rules' view
//! of a candidate), with the column lists they read, and the JSON columns.

use std::collections::BTreeMap;

use tokio_rusqlite::rusqlite::{self, Row, types::Type};

use super::model::{
    Attachment, Board, ClaimRecord, Comment, Event, Mode, Run, SessionRecord, Subscription, Task,
    WorkerOptions, Workspace,
};
use crate::domain::{
    BlockKind, RunOutcome, Status, WorkspaceKind,
    dispatch::TaskView,
    lease::{ClaimState, EndReason, HolderCall, RevokeCause},
};

/// The columns [`task`] reads, in order.
pub(super) const TASK_COLUMNS: &str = "id, board, title, body, assignee, status, priority, \
    created_by, created_at, updated_at, started_at, completed_at, tenant, idempotency_key, \
    result, summary, workspace_kind, workspace_path, workspace_branch, max_runtime_seconds, \
    max_retries, required_capabilities, target_machine, worker_options, consecutive_failures, \
    last_failure_error, block_kind, block_reason, block_recurrences, current_run_id, epoch, \
    scheduled_until, cooldown_until, protocol_violations, outcomeless_attempts";

/// How many columns [`TASK_COLUMNS`] names.
pub(super) const TASK_COLUMN_COUNT: usize = 35;

/// The columns [`board`] reads, in order.
pub(super) const BOARD_COLUMNS: &str = "slug, display_name, metadata, default_assignee, \
    max_retries, max_running, archived, created_at, updated_at";

/// The columns [`run`] reads, in order.
pub(super) const RUN_COLUMNS: &str = "id, task_id, epoch, session_id, profile, machine_id, \
    review, started_at, ended_at, outcome, summary, error, exit_code, last_heartbeat_at, \
    last_heartbeat_note";

/// The columns [`event`] reads, in order.
pub(super) const EVENT_COLUMNS: &str =
    "id, board, task_id, kind, actor, details, created_at, identity, identity_role";

/// The columns [`comment`] reads, in order.
pub(super) const COMMENT_COLUMNS: &str = "id, task_id, author, body, created_at";

/// The columns [`attachment`] reads, in order.
pub(super) const ATTACHMENT_COLUMNS: &str =
    "id, task_id, name, media_type, size, sha256, uploaded_by, created_at";

/// The columns [`claim`] reads, in order.
pub(super) const CLAIM_COLUMNS: &str = "token, task_id, board, epoch, run_id, session_id, \
    profile, review, state, revoke_cause, end_reason, revoke_until, cancel_until, ended_by";

/// How many columns [`CLAIM_COLUMNS`] names.
pub(super) const CLAIM_COLUMN_COUNT: usize = 14;

/// The columns [`session`] reads, in order.
pub(super) const SESSION_COLUMNS: &str =
    "id, machine_id, hostname, profiles, capabilities, slots, ttl_ms, review_lane, owner";

/// The columns [`subscription`] reads, in order.
pub(super) const SUBSCRIPTION_COLUMNS: &str =
    "id, task_id, platform, chat_id, thread_id, owner_profile, mode, cursor, created_at";

/// How many columns [`SUBSCRIPTION_COLUMNS`] names.
pub(super) const SUBSCRIPTION_COLUMN_COUNT: usize = 9;

/// Prefixes every column of a list with a table alias: `a, b` -> `t.a, t.b`.
pub(super) fn qualified(alias: &str, columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bad(col: usize, what: &str, text: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        Type::Text,
        format!("unknown {what} {text:?} in the database").into(),
    )
}

fn named<T>(
    row: &Row<'_>,
    col: usize,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(col)?;
    parse(&text).ok_or_else(|| bad(col, what, &text))
}

/// Reads a JSON column.
pub(super) fn json<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    col: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(col)?;
    serde_json::from_str(&text).map_err(|err| bad(col, "JSON", &err.to_string()))
}

/// Encodes a string map as a JSON object.
pub(super) fn map_json(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).expect("a string map always encodes")
}

/// Encodes a string list as a JSON array.
pub(super) fn list_json(list: &[String]) -> String {
    serde_json::to_string(list).expect("a string list always encodes")
}

/// Encodes worker options as a JSON object.
pub(super) fn options_json(options: &WorkerOptions) -> String {
    serde_json::to_string(options).expect("worker options always encode")
}

/// Reads a task from a row selected with [`TASK_COLUMNS`].
pub(super) fn task(row: &Row<'_>) -> rusqlite::Result<Task> {
    let block_kind: Option<String> = row.get(26)?;
    Ok(Task {
        id: row.get(0)?,
        board: row.get(1)?,
        title: row.get(2)?,
        body: row.get(3)?,
        assignee: row.get(4)?,
        status: named(row, 5, "status", Status::parse)?,
        priority: row.get(6)?,
        created_by: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
        started_at: row.get(10)?,
        completed_at: row.get(11)?,
        tenant: row.get(12)?,
        idempotency_key: row.get(13)?,
        result: row.get(14)?,
        summary: row.get(15)?,
        workspace: Workspace {
            kind: named(row, 16, "workspace kind", WorkspaceKind::parse)?,
            path: row.get(17)?,
            branch: row.get(18)?,
        },
        max_runtime_seconds: row.get(19)?,
        max_retries: row.get(20)?,
        required_capabilities: json(row, 21)?,
        target_machine: row.get(22)?,
        worker_options: json(row, 23)?,
        consecutive_failures: row.get(24)?,
        last_failure_error: row.get(25)?,
        block_kind: match block_kind {
            None => None,
            Some(text) => {
                Some(BlockKind::parse(&text).ok_or_else(|| bad(26, "block kind", &text))?)
            }
        },
        block_reason: row.get(27)?,
        block_recurrences: row.get(28)?,
        current_run_id: row.get(29)?,
        epoch: row.get::<_, i64>(30)? as u64,
        scheduled_until: row.get(31)?,
        cooldown_until: row.get(32)?,
        protocol_violations: row.get(33)?,
        outcomeless_attempts: row.get(34)?,
    })
}

/// Reads a board from a row selected with [`BOARD_COLUMNS`].
pub(super) fn board(row: &Row<'_>) -> rusqlite::Result<Board> {
    Ok(Board {
        slug: row.get(0)?,
        display_name: row.get(1)?,
        metadata: json(row, 2)?,
        default_assignee: row.get(3)?,
        max_retries: row.get(4)?,
        max_running: row.get(5)?,
        archived: row.get(6)?,
        created_at: row.get(7)?,
        updated_at: row.get(8)?,
    })
}

/// Reads a run from a row selected with [`RUN_COLUMNS`].
pub(super) fn run(row: &Row<'_>) -> rusqlite::Result<Run> {
    let outcome: Option<String> = row.get(9)?;
    Ok(Run {
        id: row.get(0)?,
        task_id: row.get(1)?,
        epoch: row.get::<_, i64>(2)? as u64,
        session_id: row.get(3)?,
        profile: row.get(4)?,
        machine_id: row.get(5)?,
        review: row.get(6)?,
        started_at: row.get(7)?,
        ended_at: row.get(8)?,
        outcome: match outcome {
            None => None,
            Some(text) => Some(RunOutcome::parse(&text).ok_or_else(|| bad(9, "outcome", &text))?),
        },
        summary: row.get(10)?,
        error: row.get(11)?,
        exit_code: row.get(12)?,
        last_heartbeat_at: row.get(13)?,
        last_heartbeat_note: row.get(14)?,
    })
}

/// Reads an event from a row selected with [`EVENT_COLUMNS`].
pub(super) fn event(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        id: row.get(0)?,
        board: row.get(1)?,
        task_id: row.get(2)?,
        kind: row.get(3)?,
        actor: row.get(4)?,
        details: json(row, 5)?,
        created_at: row.get(6)?,
        identity: row.get(7)?,
        identity_role: row.get(8)?,
    })
}

/// Reads a comment from a row selected with [`COMMENT_COLUMNS`].
pub(super) fn comment(row: &Row<'_>) -> rusqlite::Result<Comment> {
    Ok(Comment {
        id: row.get(0)?,
        task_id: row.get(1)?,
        author: row.get(2)?,
        body: row.get(3)?,
        created_at: row.get(4)?,
    })
}

/// Reads an attachment from a row selected with [`ATTACHMENT_COLUMNS`].
pub(super) fn attachment(row: &Row<'_>) -> rusqlite::Result<Attachment> {
    Ok(Attachment {
        id: row.get(0)?,
        task_id: row.get(1)?,
        name: row.get(2)?,
        media_type: row.get(3)?,
        size: row.get::<_, i64>(4)? as u64,
        sha256: row.get(5)?,
        uploaded_by: row.get(6)?,
        created_at: row.get(7)?,
    })
}

/// Reads a claim from a row selected with [`CLAIM_COLUMNS`].
pub(super) fn claim(row: &Row<'_>) -> rusqlite::Result<ClaimRecord> {
    let state: String = row.get(8)?;
    let cause: Option<String> = row.get(9)?;
    let end: Option<String> = row.get(10)?;
    let state = match state.as_str() {
        "live" => ClaimState::Live,
        "revoking" => ClaimState::Revoking(
            cause
                .as_deref()
                .and_then(RevokeCause::parse)
                .unwrap_or(RevokeCause::Reclaimed),
        ),
        _ => ClaimState::Ended(
            end.as_deref()
                .and_then(EndReason::parse)
                .unwrap_or(EndReason::Outcome),
        ),
    };
    Ok(ClaimRecord {
        token: row.get(0)?,
        task_id: row.get(1)?,
        board: row.get(2)?,
        epoch: row.get::<_, i64>(3)? as u64,
        run_id: row.get(4)?,
        session_id: row.get(5)?,
        profile: row.get(6)?,
        review: row.get(7)?,
        state,
        revoke_until: row.get(11)?,
        cancel_until: row.get(12)?,
        ended_by: row
            .get::<_, Option<String>>(13)?
            .as_deref()
            .and_then(HolderCall::parse),
    })
}

/// Reads a session from a row selected with [`SESSION_COLUMNS`].
pub(super) fn session(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.get(0)?,
        machine_id: row.get(1)?,
        hostname: row.get(2)?,
        profiles: json(row, 3)?,
        capabilities: json(row, 4)?,
        slots: row.get(5)?,
        ttl_ms: row.get(6)?,
        review_lane: row.get(7)?,
        owner: row.get(8)?,
    })
}

/// Reads a subscription from a row selected with [`SUBSCRIPTION_COLUMNS`].
pub(super) fn subscription(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    let mode: String = row.get(6)?;
    Ok(Subscription {
        id: row.get(0)?,
        task_id: row.get(1)?,
        platform: row.get(2)?,
        chat_id: row.get(3)?,
        thread_id: row.get(4)?,
        owner_profile: row.get(5)?,
        mode: if mode == "final" {
            Mode::Final
        } else {
            Mode::Every
        },
        cursor: row.get(7)?,
        created_at: row.get(8)?,
    })
}

/// Reads an event from [`EVENT_COLUMNS`] selected after `offset` other columns, keeping a
/// row whose details do not parse (with no details) rather than failing the whole page.
pub(super) fn event_at(row: &Row<'_>, offset: usize) -> rusqlite::Result<Event> {
    Ok(Event {
        id: row.get(offset)?,
        board: row.get(offset + 1)?,
        task_id: row.get(offset + 2)?,
        kind: row.get(offset + 3)?,
        actor: row.get(offset + 4)?,
        details: serde_json::from_str(&row.get::<_, String>(offset + 5)?).unwrap_or_default(),
        created_at: row.get(offset + 6)?,
        identity: row.get(offset + 7)?,
        identity_role: row.get(offset + 8)?,
    })
}

/// The columns [`candidate`] reads, from `tasks t JOIN boards b`, in order.
pub(super) const CANDIDATE_COLUMNS: &str = "t.id, t.board, t.status, t.priority, t.created_at, \
    t.assignee, b.default_assignee, b.max_running, \
    NOT EXISTS (SELECT 1 FROM task_links l JOIN tasks p ON p.id = l.parent_id \
                WHERE l.child_id = t.id AND p.status NOT IN ('done', 'archived')), \
    t.cooldown_until, t.required_capabilities, t.target_machine, t.reclaimed_from";

/// Reads a dispatch candidate from a row selected with [`CANDIDATE_COLUMNS`]; `lane` is the
/// status it was selected for.
pub(super) fn candidate(row: &Row<'_>, lane: Status) -> rusqlite::Result<TaskView> {
    let status: String = row.get(2)?;
    let caps: String = row.get(10)?;
    Ok(TaskView {
        id: row.get(0)?,
        board: row.get(1)?,
        status: Status::parse(&status).unwrap_or(lane),
        priority: row.get(3)?,
        created_at: row.get(4)?,
        assignee: row.get(5)?,
        board_default_assignee: row.get(6)?,
        board_max_running: row.get(7)?,
        parents_finished: row.get(8)?,
        cooldown_until: row.get(9)?,
        required_capabilities: serde_json::from_str(&caps).unwrap_or_default(),
        target_machine: row.get(11)?,
        reclaimed_from: row.get(12)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_options_read_back_as_written_and_a_missing_key_reads_as_empty() {
        let options = WorkerOptions {
            skills: vec!["sql-review".into(), "translation".into()],
            model: "m/x".into(),
            provider: "openrouter".into(),
            reasoning_effort: "high".into(),
        };
        let stored = options_json(&options);
        assert_eq!(
            serde_json::from_str::<WorkerOptions>(&stored).unwrap(),
            options
        );
        // The column's default, and an object from before a key existed.
        assert_eq!(
            serde_json::from_str::<WorkerOptions>("{}").unwrap(),
            WorkerOptions::default()
        );
        let older: WorkerOptions = serde_json::from_str(r#"{"model": "m"}"#).unwrap();
        assert_eq!(
            older,
            WorkerOptions {
                model: "m".into(),
                ..WorkerOptions::default()
            }
        );
    }
}
