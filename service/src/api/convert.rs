//! Conversions between `pb` messages and the store's model, with request validation.
//!
//! Requests are validated here, field by field, before anything reaches the store, so a bad
//! request is refused with INVALID_ARGUMENT naming the field and changes nothing.

use std::collections::BTreeMap;

use kanband_proto::pb;

use crate::{
    domain::{BlockKind, RunOutcome, Status, WorkspaceKind, ids, limits, validate},
    error::{Error, Result},
    store::{
        DEFAULT_BOARD,
        model::{
            Board, BoardChanges, Comment, Event, NewBoard, NewTask, Run, Task, TaskChanges,
            TaskDetail, WorkerOptions, Workspace,
        },
    },
};

/// A timestamp from Unix milliseconds.
pub(crate) fn timestamp(ms: i64) -> kanband_proto::Timestamp {
    kanband_proto::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// The board slug of a request; empty means `default`.
pub(crate) fn board_or_default(field: &'static str, board: String) -> Result<String> {
    if board.is_empty() {
        return Ok(DEFAULT_BOARD.to_owned());
    }
    validate::slug(field, &board)?;
    Ok(board)
}

/// A task id from a request.
pub(crate) fn task_id(field: &'static str, id: String) -> Result<String> {
    ids::check(field, ids::TASK, &id)?;
    Ok(id)
}

/// An actor name from a request.
pub(crate) fn actor(field: &'static str, actor: String) -> Result<String> {
    validate::text(field, &actor, limits::NAME_MAX)?;
    Ok(actor)
}

/// A status from a request; unspecified and unknown values are refused.
pub(crate) fn status(field: &'static str, value: i32) -> Result<Status> {
    let status = match pb::TaskStatus::try_from(value) {
        Ok(pb::TaskStatus::Triage) => Status::Triage,
        Ok(pb::TaskStatus::Todo) => Status::Todo,
        Ok(pb::TaskStatus::Scheduled) => Status::Scheduled,
        Ok(pb::TaskStatus::Ready) => Status::Ready,
        Ok(pb::TaskStatus::Running) => Status::Running,
        Ok(pb::TaskStatus::Blocked) => Status::Blocked,
        Ok(pb::TaskStatus::Review) => Status::Review,
        Ok(pb::TaskStatus::Done) => Status::Done,
        Ok(pb::TaskStatus::Archived) => Status::Archived,
        Ok(pb::TaskStatus::Unspecified) => {
            return Err(Error::invalid(
                field,
                "TASK_STATUS_UNSPECIFIED is not a status",
            ));
        }
        Err(_) => {
            return Err(Error::invalid(
                field,
                format!("{value} is not a TaskStatus value"),
            ));
        }
    };
    Ok(status)
}

fn status_to_pb(status: Status) -> pb::TaskStatus {
    match status {
        Status::Triage => pb::TaskStatus::Triage,
        Status::Todo => pb::TaskStatus::Todo,
        Status::Scheduled => pb::TaskStatus::Scheduled,
        Status::Ready => pb::TaskStatus::Ready,
        Status::Running => pb::TaskStatus::Running,
        Status::Blocked => pb::TaskStatus::Blocked,
        Status::Review => pb::TaskStatus::Review,
        Status::Done => pb::TaskStatus::Done,
        Status::Archived => pb::TaskStatus::Archived,
    }
}

/// A block kind from a request; unspecified means `none`, unknown values are refused.
pub(crate) fn block_kind(field: &'static str, value: i32) -> Result<BlockKind> {
    match pb::BlockKind::try_from(value) {
        Ok(pb::BlockKind::Unspecified | pb::BlockKind::None) => Ok(BlockKind::None),
        Ok(pb::BlockKind::Dependency) => Ok(BlockKind::Dependency),
        Ok(pb::BlockKind::NeedsInput) => Ok(BlockKind::NeedsInput),
        Ok(pb::BlockKind::Capability) => Ok(BlockKind::Capability),
        Ok(pb::BlockKind::Transient) => Ok(BlockKind::Transient),
        Err(_) => Err(Error::invalid(
            field,
            format!("{value} is not a BlockKind value"),
        )),
    }
}

fn block_kind_to_pb(kind: Option<BlockKind>) -> pb::BlockKind {
    match kind {
        None => pb::BlockKind::Unspecified,
        Some(BlockKind::Dependency) => pb::BlockKind::Dependency,
        Some(BlockKind::NeedsInput) => pb::BlockKind::NeedsInput,
        Some(BlockKind::Capability) => pb::BlockKind::Capability,
        Some(BlockKind::Transient) => pb::BlockKind::Transient,
        Some(BlockKind::None) => pb::BlockKind::None,
    }
}

fn outcome_to_pb(outcome: Option<RunOutcome>) -> pb::RunOutcome {
    use pb::RunOutcome as P;
    match outcome {
        None => P::Unspecified,
        Some(RunOutcome::Completed) => P::Completed,
        Some(RunOutcome::Blocked) => P::Blocked,
        Some(RunOutcome::Crashed) => P::Crashed,
        Some(RunOutcome::TimedOut) => P::TimedOut,
        Some(RunOutcome::SpawnFailed) => P::SpawnFailed,
        Some(RunOutcome::GaveUp) => P::GaveUp,
        Some(RunOutcome::Reclaimed) => P::Reclaimed,
        Some(RunOutcome::Expired) => P::Expired,
        Some(RunOutcome::RateLimited) => P::RateLimited,
        Some(RunOutcome::ReviewRequested) => P::ReviewRequested,
        Some(RunOutcome::ChangesRequested) => P::ChangesRequested,
        Some(RunOutcome::Scheduled) => P::Scheduled,
        Some(RunOutcome::Released) => P::Released,
        Some(RunOutcome::Revoked) => P::Revoked,
    }
}

fn workspace(field: &'static str, ws: pb::Workspace) -> Result<Workspace> {
    let kind = match pb::WorkspaceKind::try_from(ws.kind) {
        Ok(pb::WorkspaceKind::Unspecified | pb::WorkspaceKind::Scratch) => WorkspaceKind::Scratch,
        Ok(pb::WorkspaceKind::Worktree) => WorkspaceKind::Worktree,
        Ok(pb::WorkspaceKind::Dir) => WorkspaceKind::Dir,
        Err(_) => {
            return Err(Error::invalid(
                field,
                format!("kind {} is not a WorkspaceKind value", ws.kind),
            ));
        }
    };
    validate::text(field, &ws.path, limits::PATH_MAX)?;
    validate::text(field, &ws.branch, limits::OPTION_MAX)?;
    if kind != WorkspaceKind::Scratch && ws.path.is_empty() {
        return Err(Error::invalid(
            field,
            format!("a {kind} workspace needs a path"),
        ));
    }
    Ok(Workspace {
        kind,
        path: ws.path,
        branch: ws.branch,
    })
}

fn workspace_to_pb(ws: Workspace) -> pb::Workspace {
    let kind = match ws.kind {
        WorkspaceKind::Scratch => pb::WorkspaceKind::Scratch,
        WorkspaceKind::Worktree => pb::WorkspaceKind::Worktree,
        WorkspaceKind::Dir => pb::WorkspaceKind::Dir,
    };
    pb::Workspace {
        kind: kind.into(),
        path: ws.path,
        branch: ws.branch,
    }
}

fn worker_options(field: &'static str, options: pb::WorkerOptions) -> Result<WorkerOptions> {
    validate::list_len(field, &options.skills)?;
    for text in
        options
            .skills
            .iter()
            .chain([&options.model, &options.provider, &options.reasoning_effort])
    {
        validate::text(field, text, limits::OPTION_MAX)?;
    }
    Ok(WorkerOptions {
        skills: options.skills,
        model: options.model,
        provider: options.provider,
        reasoning_effort: options.reasoning_effort,
    })
}

/// Sorted, de-duplicated, validated capabilities.
pub(crate) fn capabilities(field: &'static str, mut list: Vec<String>) -> Result<Vec<String>> {
    validate::list_len(field, &list)?;
    for capability in &list {
        validate::capability(field, capability)?;
    }
    list.sort();
    list.dedup();
    Ok(list)
}

pub(crate) fn metadata(
    field: &'static str,
    map: std::collections::HashMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    if map.len() > limits::LIST_MAX {
        return Err(Error::invalid(
            field,
            format!(
                "has {} entries; the limit is {}",
                map.len(),
                limits::LIST_MAX
            ),
        ));
    }
    for (key, value) in &map {
        validate::required_text(field, key, limits::METADATA_KEY_MAX)?;
        validate::text(field, value, limits::METADATA_VALUE_MAX)?;
    }
    Ok(map.into_iter().collect())
}

/// A page token this service issued: the position to continue after.
pub(crate) fn page_token(field: &'static str, token: &str) -> Result<Option<i64>> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .strip_prefix('p')
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .map(Some)
        .ok_or_else(|| Error::invalid(field, "is not a page token this service issued"))
}

/// Encodes the position to continue after as a page token.
pub(crate) fn next_page_token(next: Option<i64>) -> String {
    next.map(|n| format!("p{n}")).unwrap_or_default()
}

/// Validates a board creation.
pub(crate) fn new_board(req: pb::CreateBoardRequest) -> Result<NewBoard> {
    validate::slug("slug", &req.slug)?;
    validate::text("display_name", &req.display_name, limits::DISPLAY_NAME_MAX)?;
    validate::profile("default_assignee", &req.default_assignee)?;
    validate::at_most("max_retries", req.max_retries, limits::MAX_RETRIES_MAX)?;
    Ok(NewBoard {
        slug: req.slug,
        display_name: req.display_name,
        metadata: metadata("metadata", req.metadata)?,
        default_assignee: req.default_assignee,
        max_retries: req.max_retries,
        max_running: req.max_running,
    })
}

/// Validates a board update.
pub(crate) fn board_changes(req: pb::UpdateBoardRequest) -> Result<(String, BoardChanges)> {
    validate::slug("slug", &req.slug)?;
    if let Some(name) = &req.display_name {
        validate::text("display_name", name, limits::DISPLAY_NAME_MAX)?;
    }
    if let Some(assignee) = &req.default_assignee {
        validate::profile("default_assignee", assignee)?;
    }
    if let Some(max) = req.max_retries {
        validate::at_most("max_retries", max, limits::MAX_RETRIES_MAX)?;
    }
    if !req.replace_metadata && !req.metadata.is_empty() {
        return Err(Error::invalid(
            "metadata",
            "is given but replace_metadata is false; set replace_metadata to replace it",
        ));
    }
    let metadata = if req.replace_metadata {
        Some(metadata("metadata", req.metadata)?)
    } else {
        None
    };
    Ok((
        req.slug,
        BoardChanges {
            display_name: req.display_name,
            metadata,
            default_assignee: req.default_assignee,
            max_retries: req.max_retries,
            max_running: req.max_running,
        },
    ))
}

/// Validates a task creation.
pub(crate) fn new_task(req: pb::CreateTaskRequest) -> Result<NewTask> {
    let board = board_or_default("board", req.board)?;
    validate::required_text("title", &req.title, limits::TITLE_MAX)?;
    validate::text("body", &req.body, limits::BODY_MAX)?;
    validate::profile("assignee", &req.assignee)?;
    validate::priority("priority", req.priority)?;
    validate::text("created_by", &req.created_by, limits::NAME_MAX)?;
    validate::text("tenant", &req.tenant, limits::NAME_MAX)?;
    validate::text(
        "idempotency_key",
        &req.idempotency_key,
        limits::IDEMPOTENCY_KEY_MAX,
    )?;
    validate::list_len("parents", &req.parents)?;
    let mut parents = Vec::with_capacity(req.parents.len());
    for parent in req.parents {
        let parent = task_id("parents", parent)?;
        if !parents.contains(&parent) {
            parents.push(parent);
        }
    }
    let initial_status = match req.initial_status {
        0 => None,
        value => match status("initial_status", value)? {
            s @ (Status::Triage | Status::Blocked) => Some(s),
            other => {
                return Err(Error::invalid(
                    "initial_status",
                    format!("a task can start in triage or blocked, not {other}"),
                ));
            }
        },
    };
    validate::at_most(
        "max_runtime_seconds",
        req.max_runtime_seconds,
        limits::MAX_RUNTIME_MAX,
    )?;
    validate::at_most("max_retries", req.max_retries, limits::MAX_RETRIES_MAX)?;
    validate::text("target_machine", &req.target_machine, limits::NAME_MAX)?;
    Ok(NewTask {
        board,
        title: req.title,
        body: req.body,
        assignee: req.assignee,
        priority: req.priority,
        created_by: req.created_by,
        tenant: req.tenant,
        idempotency_key: Some(req.idempotency_key).filter(|k| !k.is_empty()),
        parents,
        initial_status,
        workspace: req
            .workspace
            .map(|ws| workspace("workspace", ws))
            .transpose()?
            .unwrap_or_default(),
        max_runtime_seconds: req.max_runtime_seconds,
        max_retries: req.max_retries,
        required_capabilities: capabilities("required_capabilities", req.required_capabilities)?,
        target_machine: req.target_machine,
        worker_options: req
            .worker_options
            .map(|o| worker_options("worker_options", o))
            .transpose()?
            .unwrap_or_default(),
    })
}

/// Validates a task update.
pub(crate) fn task_changes(req: pb::UpdateTaskRequest) -> Result<(String, String, TaskChanges)> {
    let id = task_id("id", req.id)?;
    let actor = actor("actor", req.actor)?;
    if let Some(title) = &req.title {
        validate::required_text("title", title, limits::TITLE_MAX)?;
    }
    if let Some(body) = &req.body {
        validate::text("body", body, limits::BODY_MAX)?;
    }
    if let Some(priority) = req.priority {
        validate::priority("priority", priority)?;
    }
    if let Some(tenant) = &req.tenant {
        validate::text("tenant", tenant, limits::NAME_MAX)?;
    }
    if let Some(max) = req.max_runtime_seconds {
        validate::at_most("max_runtime_seconds", max, limits::MAX_RUNTIME_MAX)?;
    }
    if let Some(max) = req.max_retries {
        validate::at_most("max_retries", max, limits::MAX_RETRIES_MAX)?;
    }
    if let Some(machine) = &req.target_machine {
        validate::text("target_machine", machine, limits::NAME_MAX)?;
    }
    let changes = TaskChanges {
        title: req.title,
        body: req.body,
        priority: req.priority,
        tenant: req.tenant,
        workspace: req
            .workspace
            .map(|ws| workspace("workspace", ws))
            .transpose()?,
        max_runtime_seconds: req.max_runtime_seconds,
        max_retries: req.max_retries,
        required_capabilities: req
            .required_capabilities
            .map(|c| capabilities("required_capabilities", c.values))
            .transpose()?,
        target_machine: req.target_machine,
        worker_options: req
            .worker_options
            .map(|o| worker_options("worker_options", o))
            .transpose()?,
    };
    Ok((id, actor, changes))
}

impl From<Board> for pb::Board {
    fn from(b: Board) -> Self {
        pb::Board {
            slug: b.slug,
            display_name: b.display_name,
            metadata: b.metadata.into_iter().collect(),
            default_assignee: b.default_assignee,
            max_retries: b.max_retries,
            max_running: b.max_running,
            archived: b.archived,
            created_at: Some(timestamp(b.created_at)),
            updated_at: Some(timestamp(b.updated_at)),
        }
    }
}

impl From<Task> for pb::Task {
    fn from(t: Task) -> Self {
        pb::Task {
            id: t.id,
            board: t.board,
            title: t.title,
            body: t.body,
            assignee: t.assignee,
            status: status_to_pb(t.status).into(),
            priority: t.priority,
            created_by: t.created_by,
            created_at: Some(timestamp(t.created_at)),
            started_at: t.started_at.map(timestamp),
            completed_at: t.completed_at.map(timestamp),
            updated_at: Some(timestamp(t.updated_at)),
            tenant: t.tenant,
            idempotency_key: t.idempotency_key.unwrap_or_default(),
            result: t.result,
            summary: t.summary,
            workspace: Some(workspace_to_pb(t.workspace)),
            max_runtime_seconds: t.max_runtime_seconds,
            max_retries: t.max_retries,
            required_capabilities: t.required_capabilities,
            target_machine: t.target_machine,
            worker_options: Some(pb::WorkerOptions {
                skills: t.worker_options.skills,
                model: t.worker_options.model,
                provider: t.worker_options.provider,
                reasoning_effort: t.worker_options.reasoning_effort,
            }),
            consecutive_failures: t.consecutive_failures,
            last_failure_error: t.last_failure_error,
            block_kind: block_kind_to_pb(t.block_kind).into(),
            block_reason: t.block_reason,
            block_recurrences: t.block_recurrences,
            current_run_id: t.current_run_id.unwrap_or_default(),
            epoch: t.epoch,
            scheduled_until: t.scheduled_until.map(timestamp),
            cooldown_until: t.cooldown_until.map(timestamp),
            protocol_violations: t.protocol_violations,
            outcomeless_attempts: t.outcomeless_attempts,
        }
    }
}

impl From<Comment> for pb::Comment {
    fn from(c: Comment) -> Self {
        pb::Comment {
            id: c.id as u64,
            task_id: c.task_id,
            author: c.author,
            body: c.body,
            created_at: Some(timestamp(c.created_at)),
        }
    }
}

impl From<Run> for pb::Run {
    fn from(r: Run) -> Self {
        pb::Run {
            id: r.id,
            task_id: r.task_id,
            epoch: r.epoch,
            session_id: r.session_id,
            profile: r.profile,
            machine_id: r.machine_id,
            review: r.review,
            started_at: Some(timestamp(r.started_at)),
            ended_at: r.ended_at.map(timestamp),
            outcome: outcome_to_pb(r.outcome).into(),
            summary: r.summary,
            error: r.error,
            exit_code: r.exit_code,
            last_heartbeat_at: r.last_heartbeat_at.map(timestamp),
            last_heartbeat_note: r.last_heartbeat_note,
        }
    }
}

impl From<Event> for pb::Event {
    fn from(e: Event) -> Self {
        pb::Event {
            id: e.id as u64,
            board: e.board,
            task_id: e.task_id,
            kind: e.kind,
            actor: e.actor,
            details: e.details.into_iter().collect(),
            created_at: Some(timestamp(e.created_at)),
        }
    }
}

impl From<TaskDetail> for pb::TaskDetail {
    fn from(d: TaskDetail) -> Self {
        pb::TaskDetail {
            task: Some(d.task.into()),
            parents: d.parents,
            children: d.children,
            comments: d.comments.into_iter().map(Into::into).collect(),
            runs: d.runs.into_iter().map(Into::into).collect(),
            recent_events: d.recent_events.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_milliseconds() {
        let ts = timestamp(1_700_000_000_123);
        assert_eq!((ts.seconds, ts.nanos), (1_700_000_000, 123_000_000));
    }

    #[test]
    fn page_tokens_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(
            page_token("page_token", &next_page_token(Some(42))).unwrap(),
            Some(42)
        );
        assert_eq!(page_token("page_token", "").unwrap(), None);
        for bad in ["42", "p", "p-1", "p0", "px"] {
            assert!(page_token("page_token", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_enum_values_are_refused_with_the_field() {
        let err = status("statuses", 99).unwrap_err().to_string();
        assert!(err.starts_with("statuses:"), "{err}");
        assert!(block_kind("kind", 42).is_err());
        let req = pb::CreateTaskRequest {
            title: "t".into(),
            initial_status: pb::TaskStatus::Done as i32,
            ..Default::default()
        };
        assert!(
            new_task(req)
                .unwrap_err()
                .to_string()
                .starts_with("initial_status:")
        );
    }
}
