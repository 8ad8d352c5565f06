//! Small helpers shared by the integration test files: short calls for the common requests and
//! readers that walk every page of a listing.
//!
//! Each test file uses a subset, so unused helpers are allowed here.
#![allow(dead_code)]

use std::{fmt::Debug, time::Duration};

use kanband_gateway::Client;
use kanband_proto::pb;
use tonic::{Code, Status};

/// A task id that is well formed but never issued.
pub(crate) const MISSING_TASK: &str = "t_0000000000000000";

/// The gRPC code of a call's result, `Code::Ok` on success.
pub(crate) fn code_of<T>(result: &Result<T, Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// The refusal of a call that must fail with `code`; panics with the result otherwise.
pub(crate) fn refused<T: Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Err(status) if status.code() == code => status,
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// A `CreateTaskRequest` with a title on a board (empty board means `default`).
pub(crate) fn new_task(board: &str, title: &str) -> pb::CreateTaskRequest {
    pb::CreateTaskRequest {
        board: board.to_owned(),
        title: title.to_owned(),
        ..Default::default()
    }
}

/// Creates a task from a full request and returns the response.
pub(crate) async fn create_with(
    client: &mut Client,
    request: pb::CreateTaskRequest,
) -> pb::CreateTaskResponse {
    client
        .tasks
        .create_task(request)
        .await
        .expect("CreateTask")
        .into_inner()
}

/// Creates a task with a title on `default`.
pub(crate) async fn create(client: &mut Client, title: &str) -> pb::Task {
    create_on(client, "", title).await
}

/// Creates a task with a title on a board.
pub(crate) async fn create_on(client: &mut Client, board: &str, title: &str) -> pb::Task {
    let response = create_with(client, new_task(board, title)).await;
    assert!(response.created, "a task without a key is always created");
    response.task.expect("CreateTask returns the task")
}

/// Creates a task on a board with the given parents.
pub(crate) async fn create_child(
    client: &mut Client,
    board: &str,
    title: &str,
    parents: &[&str],
) -> pb::Task {
    let request = pb::CreateTaskRequest {
        parents: parents.iter().map(|p| (*p).to_owned()).collect(),
        ..new_task(board, title)
    };
    create_with(client, request).await.task.expect("task")
}

/// Reads a task with its details (default number of recent events).
pub(crate) async fn detail(client: &mut Client, id: &str) -> pb::TaskDetail {
    client
        .tasks
        .get_task(pb::GetTaskRequest {
            id: id.to_owned(),
            recent_events: 0,
        })
        .await
        .expect("GetTask")
        .into_inner()
}

/// Reads a task.
pub(crate) async fn task(client: &mut Client, id: &str) -> pb::Task {
    detail(client, id)
        .await
        .task
        .expect("GetTask returns the task")
}

/// The status of a task as stored now.
pub(crate) async fn status_of(client: &mut Client, id: &str) -> pb::TaskStatus {
    task(client, id).await.status()
}

/// Creates a board with default settings.
pub(crate) async fn create_board(client: &mut Client, slug: &str) -> pb::Board {
    client
        .boards
        .create_board(pb::CreateBoardRequest {
            slug: slug.to_owned(),
            ..Default::default()
        })
        .await
        .expect("CreateBoard")
        .into_inner()
}

/// Archives a task.
pub(crate) async fn archive(client: &mut Client, id: &str) -> pb::Task {
    client
        .tasks
        .archive_task(pb::ArchiveTaskRequest {
            id: id.to_owned(),
            actor: "tester".into(),
        })
        .await
        .expect("ArchiveTask")
        .into_inner()
}

/// Blocks a task with a kind.
pub(crate) async fn block(client: &mut Client, id: &str, kind: pb::BlockKind) -> pb::Task {
    client
        .tasks
        .block_task(pb::BlockTaskRequest {
            id: id.to_owned(),
            reason: format!("blocked as {kind:?}"),
            kind: kind.into(),
            actor: "tester".into(),
        })
        .await
        .expect("BlockTask")
        .into_inner()
}

/// Unblocks a task.
pub(crate) async fn unblock(client: &mut Client, id: &str) -> pb::Task {
    client
        .tasks
        .unblock_task(pb::UnblockTaskRequest {
            id: id.to_owned(),
            actor: "tester".into(),
        })
        .await
        .expect("UnblockTask")
        .into_inner()
}

/// Lists events with a request as given (one page).
pub(crate) async fn events_page(
    client: &mut Client,
    request: pb::ListEventsRequest,
) -> pb::ListEventsResponse {
    client
        .tasks
        .list_events(request)
        .await
        .expect("ListEvents")
        .into_inner()
}

/// Every event matching the board and task filters (empty means any), walking all pages.
pub(crate) async fn events_where(
    client: &mut Client,
    board: &str,
    task_id: &str,
) -> Vec<pb::Event> {
    let mut all = Vec::new();
    let mut after_id = 0;
    loop {
        let page = events_page(
            client,
            pb::ListEventsRequest {
                board: board.to_owned(),
                task_id: task_id.to_owned(),
                after_id,
                page_size: 1000,
            },
        )
        .await;
        if page.events.is_empty() {
            assert_eq!(
                page.next_after_id, after_id,
                "an empty page keeps the cursor"
            );
            return all;
        }
        after_id = page.next_after_id;
        all.extend(page.events);
    }
}

/// The whole event log.
pub(crate) async fn all_events(client: &mut Client) -> Vec<pb::Event> {
    events_where(client, "", "").await
}

/// Every event of one task.
pub(crate) async fn task_events(client: &mut Client, id: &str) -> Vec<pb::Event> {
    events_where(client, "", id).await
}

/// The kinds of events, in order.
pub(crate) fn kinds(events: &[pb::Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// Every status, archived included.
pub(crate) const ALL_STATUSES: &[pb::TaskStatus] = &[
    pb::TaskStatus::Triage,
    pb::TaskStatus::Todo,
    pb::TaskStatus::Scheduled,
    pb::TaskStatus::Ready,
    pb::TaskStatus::Running,
    pb::TaskStatus::Blocked,
    pb::TaskStatus::Review,
    pb::TaskStatus::Done,
    pb::TaskStatus::Archived,
];

/// Ids of tasks, in order.
pub(crate) fn ids(tasks: &[pb::Task]) -> Vec<&str> {
    tasks.iter().map(|t| t.id.as_str()).collect()
}

/// Polls a task every 50 ms, for up to `limit`, until it has `want`; returns it then.
pub(crate) async fn wait_for_status(
    client: &mut Client,
    id: &str,
    want: pb::TaskStatus,
    limit: Duration,
) -> pb::Task {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let task = task(client, id).await;
        if task.status() == want {
            return task;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} is still {:?} after {limit:?}, expected {want:?}",
            task.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Leases and dispatch (used by leases.rs, dispatch.rs and stress.rs).

/// The profile most lease tests run as.
pub(crate) const CODER: &str = "coder";

/// A claim token that is well formed but was never issued.
pub(crate) const MADE_UP_TOKEN: &str = "c_0123456789abcdef";

/// An `OpenSessionRequest` for one profile with a TTL, 4 slots and machine `m1`.
pub(crate) fn session_request(profile: &str, ttl_ms: u32) -> pb::OpenSessionRequest {
    pb::OpenSessionRequest {
        machine_id: "m1".into(),
        hostname: "host-1".into(),
        profiles: vec![profile.to_owned()],
        capabilities: vec![],
        slots: 4,
        ttl_ms,
        review_lane: false,
    }
}

/// Opens a session from a full request.
pub(crate) async fn open_session_with(
    client: &mut Client,
    request: pb::OpenSessionRequest,
) -> pb::Session {
    client
        .leases
        .open_session(request)
        .await
        .expect("OpenSession")
        .into_inner()
}

/// Opens a session for one profile with a TTL (4 slots, machine `m1`).
pub(crate) async fn open_session(client: &mut Client, profile: &str, ttl_ms: u32) -> pb::Session {
    open_session_with(client, session_request(profile, ttl_ms)).await
}

/// Creates a ready task on a board, assigned to a profile.
pub(crate) async fn create_assigned(
    client: &mut Client,
    board: &str,
    title: &str,
    assignee: &str,
) -> pb::Task {
    let request = pb::CreateTaskRequest {
        assignee: assignee.to_owned(),
        ..new_task(board, title)
    };
    create_with(client, request).await.task.expect("task")
}

/// Acquire as sent: the whole result.
pub(crate) async fn try_acquire(
    client: &mut Client,
    session_id: &str,
    wait_ms: i64,
) -> Result<Option<pb::Grant>, Status> {
    client
        .leases
        .acquire(pb::AcquireRequest {
            session_id: session_id.to_owned(),
            wait_ms,
        })
        .await
        .map(|response| response.into_inner().grant)
}

/// Acquire that must succeed; returns the grant, if any.
pub(crate) async fn acquire(
    client: &mut Client,
    session_id: &str,
    wait_ms: i64,
) -> Option<pb::Grant> {
    try_acquire(client, session_id, wait_ms)
        .await
        .expect("Acquire")
}

/// Acquire (no wait) that must grant; returns the grant.
pub(crate) async fn acquire_now(client: &mut Client, session_id: &str) -> pb::Grant {
    acquire(client, session_id, 0)
        .await
        .expect("Acquire grants a claimable task")
}

/// The task id of a grant.
pub(crate) fn granted_task(grant: &pb::Grant) -> &str {
    &grant.task.as_ref().expect("a grant carries its task").id
}

/// The `kanban-lease-lost` trailer of a refusal, if any.
pub(crate) fn lost_reason(status: &Status) -> Option<&str> {
    status
        .metadata()
        .get("kanban-lease-lost")
        .and_then(|v| v.to_str().ok())
}

/// The `kanban-current-epoch` trailer of a refusal, if any.
pub(crate) fn lost_epoch(status: &Status) -> Option<u64> {
    status
        .metadata()
        .get("kanban-current-epoch")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Asserts a holder call was refused with ABORTED and the given `kanban-lease-lost` reason.
pub(crate) fn assert_lost<T: Debug>(result: Result<T, Status>, reason: &str) -> Status {
    let status = refused(result, Code::Aborted);
    assert_eq!(
        lost_reason(&status),
        Some(reason),
        "lease-lost trailer of {status:?}"
    );
    status
}

/// Complete with a token.
pub(crate) async fn complete(client: &mut Client, token: &str) -> Result<pb::Task, Status> {
    client
        .leases
        .complete(pb::CompleteRequest {
            claim_token: token.to_owned(),
            result: "done".into(),
            summary: "all done".into(),
            metadata: Default::default(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Release with a token.
pub(crate) async fn release(client: &mut Client, token: &str) -> Result<pb::Task, Status> {
    client
        .leases
        .release(pb::ReleaseRequest {
            claim_token: token.to_owned(),
            reason: "giving it back".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Renew (unary) with a token; returns the granted TTL.
pub(crate) async fn renew(client: &mut Client, token: &str) -> Result<u32, Status> {
    client
        .leases
        .renew(pb::RenewRequest {
            claim_token: token.to_owned(),
        })
        .await
        .map(|r| r.into_inner().ttl_ms)
}

/// Heartbeat with a token.
pub(crate) async fn heartbeat(client: &mut Client, token: &str) -> Result<(), Status> {
    client
        .leases
        .heartbeat(pb::HeartbeatRequest {
            claim_token: token.to_owned(),
            note: "working".into(),
        })
        .await
        .map(drop)
}

/// ReportExit with a token and an exit.
pub(crate) async fn report_exit(
    client: &mut Client,
    token: &str,
    exit: Option<pb::report_exit_request::Exit>,
) -> Result<pb::Task, Status> {
    client
        .leases
        .report_exit(pb::ReportExitRequest {
            claim_token: token.to_owned(),
            exit,
            output_tail: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Admin.Stats.
pub(crate) async fn stats(client: &mut Client) -> pb::StatsResponse {
    client
        .admin
        .stats(pb::StatsRequest {})
        .await
        .expect("Stats")
        .into_inner()
}

/// The id of the latest event in the log (0 if none).
pub(crate) async fn last_event_id(client: &mut Client) -> u64 {
    all_events(client).await.last().map_or(0, |e| e.id)
}

/// The runs of a task, oldest first.
pub(crate) async fn runs(client: &mut Client, id: &str) -> Vec<pb::Run> {
    detail(client, id).await.runs
}

/// The outcome of a task's latest run.
pub(crate) async fn last_outcome(client: &mut Client, id: &str) -> pb::RunOutcome {
    runs(client, id)
        .await
        .last()
        .expect("the task has a run")
        .outcome()
}

/// What is wrong with a refusal: the code must be `code`; the message must name `names` (an
/// INVALID_ARGUMENT message starts with `names:`) and carry no Rust Debug noise.
pub(crate) fn refusal_problems(
    status: &tonic::Status,
    code: tonic::Code,
    names: &str,
) -> Vec<String> {
    let message = status.message();
    let mut problems = Vec::new();
    if status.code() != code {
        problems.push(format!("code {:?}, expected {code:?}", status.code()));
    }
    if code == tonic::Code::InvalidArgument {
        if !message.starts_with(&format!("{names}:")) {
            problems.push(format!("message does not start with \"{names}:\""));
        }
    } else if !message.contains(names) {
        problems.push(format!("message does not name {names:?}"));
    }
    for noise in ["Error(", "{ ", "Some(", "None"] {
        if message.contains(noise) {
            problems.push(format!("message has Debug noise {noise:?}"));
        }
    }
    problems
}
