//! Request validation: each `pb` request is checked field by field and turned into the
//! store's model (or the lease machinery's values) before anything runs, so a bad request is
//! refused with INVALID_ARGUMENT naming the field and changes nothing.

use std::collections::BTreeMap;

use kanband_proto::pb;

use crate::{
    auth::Identity,
    domain::{
        Author, BlockKind, Status, WorkspaceKind,
        ids::{self, DEFAULT_BOARD},
        lease::Exit,
        limits, validate,
    },
    error::{Error, Result},
    store::model::{
        BoardChanges, Mode, NewAttachment, NewBoard, NewTask, SessionRecord, TaskChanges,
        WorkerOptions, Workspace,
    },
};

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

/// An attachment id from a request.
pub(crate) fn attachment_id(field: &'static str, id: String) -> Result<String> {
    ids::check(field, ids::ATTACHMENT, &id)?;
    Ok(id)
}

/// Media type of an upload that names none.
pub(crate) const OCTET_STREAM: &str = "application/octet-stream";

/// An upload's header.
pub(crate) fn new_attachment(header: pb::UploadHeader) -> Result<NewAttachment> {
    let task_id = task_id("header.task_id", header.task_id)?;
    validate::file_name("header.name", &header.name)?;
    let media_type = if header.media_type.is_empty() {
        OCTET_STREAM.to_owned()
    } else {
        validate::media_type("header.media_type", &header.media_type)?;
        header.media_type.to_ascii_lowercase()
    };
    let claim_token = if header.claim_token.is_empty() {
        None
    } else {
        ids::check_claim_token("header.claim_token", &header.claim_token)?;
        Some(header.claim_token)
    };
    Ok(NewAttachment {
        task_id,
        name: header.name,
        media_type,
        claim_token,
        uploaded_by: actor("header.uploaded_by", header.uploaded_by)?,
    })
}

/// An actor name from a request.
pub(crate) fn actor(field: &'static str, actor: String) -> Result<String> {
    validate::text(field, &actor, limits::NAME_MAX)?;
    Ok(actor)
}

/// Who a write is recorded as: the authenticated `caller`, with the request's free-form actor
/// name (`field`, validated like [`actor`]) as the note beside it.
pub(crate) fn author(caller: &Identity, field: &'static str, note: String) -> Result<Author> {
    Ok(caller.author(actor(field, note)?))
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

/// A validated metadata map.
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

/// A claim token from a request.
pub(crate) fn token(value: String) -> Result<String> {
    ids::check_claim_token("claim_token", &value)?;
    Ok(value)
}

/// A session id from a request.
pub(crate) fn session_id(value: String) -> Result<String> {
    ids::check("session_id", ids::SESSION, &value)?;
    Ok(value)
}

/// Validates an OpenSession request into a session record with a fresh id.
pub(crate) fn new_session(req: pb::OpenSessionRequest) -> Result<SessionRecord> {
    validate::required_text("machine_id", &req.machine_id, limits::NAME_MAX)?;
    validate::text("hostname", &req.hostname, limits::OPTION_MAX)?;
    validate::profiles("profiles", &req.profiles)?;
    if !(1..=limits::SLOTS_MAX).contains(&req.slots) {
        return Err(Error::invalid(
            "slots",
            format!("{} is outside 1..={}", req.slots, limits::SLOTS_MAX),
        ));
    }
    if !(limits::TTL_MIN_MS..=limits::TTL_MAX_MS).contains(&req.ttl_ms) {
        return Err(Error::invalid(
            "ttl_ms",
            format!(
                "{} is outside {}..={} milliseconds",
                req.ttl_ms,
                limits::TTL_MIN_MS,
                limits::TTL_MAX_MS
            ),
        ));
    }
    let mut profiles = req.profiles;
    profiles.sort();
    profiles.dedup();
    Ok(SessionRecord {
        id: ids::fresh(ids::SESSION),
        machine_id: req.machine_id,
        hostname: req.hostname,
        profiles,
        capabilities: capabilities("capabilities", req.capabilities)?,
        slots: req.slots,
        ttl_ms: req.ttl_ms,
        review_lane: req.review_lane,
        owner: String::new(),
    })
}

/// A worker's exit from a `ReportExit` request.
pub(crate) fn exit(exit: Option<pb::report_exit_request::Exit>) -> Result<Exit> {
    use pb::report_exit_request::Exit as E;
    match exit {
        Some(E::Code(code)) => Ok(Exit::Code(code)),
        Some(E::Signal(signal)) if signal > 0 => Ok(Exit::Signal(signal)),
        Some(E::Signal(signal)) => Err(Error::invalid(
            "signal",
            format!("{signal} is not a signal number"),
        )),
        Some(E::SpawnFailed(true)) => Ok(Exit::SpawnFailed),
        Some(E::SpawnFailed(false)) | None => Err(Error::invalid(
            "exit",
            "one of code, signal or spawn_failed (true) is required",
        )),
    }
}

/// A subscription id from a request.
pub(crate) fn subscription_id(field: &'static str, id: String) -> Result<String> {
    ids::check(field, ids::SUBSCRIPTION, &id)?;
    Ok(id)
}

/// A delivery mode from a request; unspecified means `every`, unknown values are refused.
pub(crate) fn mode(field: &'static str, value: i32) -> Result<Mode> {
    match pb::DeliveryMode::try_from(value) {
        Ok(pb::DeliveryMode::Unspecified | pb::DeliveryMode::Every) => Ok(Mode::Every),
        Ok(pb::DeliveryMode::Final) => Ok(Mode::Final),
        Err(_) => Err(Error::invalid(
            field,
            format!("{value} is not a DeliveryMode value"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::responses::next_page_token;

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
