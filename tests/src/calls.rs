//! Short calls for the common requests (create a task, open a session, acquire, complete, ...)
//! and readers that walk every page of a listing, so every test builds a request one way.

use std::{fmt::Debug, time::Duration};

use kanband_gateway::Client;
use kanband_proto::pb;
use tonic::{Code, Status};

/// A task id that is well formed but never issued.
pub const MISSING_TASK: &str = "t_0000000000000000";

/// The gRPC code of a call's result, `Code::Ok` on success.
pub fn code_of<T>(result: &Result<T, Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// The refusal of a call that must fail with `code`; panics with the result otherwise.
pub fn refused<T: Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Err(status) if status.code() == code => status,
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// A `CreateTaskRequest` with a title on a board (empty board means `default`).
pub fn new_task(board: &str, title: &str) -> pb::CreateTaskRequest {
    pb::CreateTaskRequest {
        board: board.to_owned(),
        title: title.to_owned(),
        ..Default::default()
    }
}

/// Creates a task from a full request and returns the response.
pub async fn create_with(
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
pub async fn create(client: &mut Client, title: &str) -> pb::Task {
    create_on(client, "", title).await
}

/// Creates a task with a title on a board.
pub async fn create_on(client: &mut Client, board: &str, title: &str) -> pb::Task {
    let response = create_with(client, new_task(board, title)).await;
    assert!(response.created, "a task without a key is always created");
    response.task.expect("CreateTask returns the task")
}

/// Creates a task on a board with the given parents.
pub async fn create_child(
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
pub async fn detail(client: &mut Client, id: &str) -> pb::TaskDetail {
    detail_with_events(client, id, 0).await
}

/// Reads a task with its details and up to `recent_events` of its latest events.
pub async fn detail_with_events(
    client: &mut Client,
    id: &str,
    recent_events: u32,
) -> pb::TaskDetail {
    client
        .tasks
        .get_task(pb::GetTaskRequest {
            id: id.to_owned(),
            recent_events,
        })
        .await
        .unwrap_or_else(|status| panic!("GetTask {id}: {status}"))
        .into_inner()
}

/// The status of the task in a detail (`Unspecified` if the detail carries none).
pub fn status_in(detail: &pb::TaskDetail) -> pb::TaskStatus {
    detail
        .task
        .as_ref()
        .map_or(pb::TaskStatus::Unspecified, pb::Task::status)
}

/// Reads a task.
pub async fn task(client: &mut Client, id: &str) -> pb::Task {
    detail(client, id)
        .await
        .task
        .expect("GetTask returns the task")
}

/// The status of a task as stored now.
pub async fn status_of(client: &mut Client, id: &str) -> pb::TaskStatus {
    task(client, id).await.status()
}

/// Creates a board with default settings.
pub async fn create_board(client: &mut Client, slug: &str) -> pb::Board {
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
pub async fn archive(client: &mut Client, id: &str) -> pb::Task {
    client
        .tasks
        .archive_task(pb::ArchiveTaskRequest {
            id: id.to_owned(),
            actor: "tester".into(),
            reason: String::new(),
        })
        .await
        .expect("ArchiveTask")
        .into_inner()
}

/// Blocks a task with a kind.
pub async fn block(client: &mut Client, id: &str, kind: pb::BlockKind) -> pb::Task {
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
pub async fn unblock(client: &mut Client, id: &str) -> pb::Task {
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

/// Subscribes to a task's notifications with a request as given; returns the subscription.
pub async fn subscribe(client: &mut Client, request: pb::SubscribeRequest) -> pb::Subscription {
    client
        .notifications
        .subscribe(request)
        .await
        .expect("Subscribe")
        .into_inner()
}

/// Lists events with a request as given (one page).
pub async fn events_page(
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
pub async fn events_where(client: &mut Client, board: &str, task_id: &str) -> Vec<pb::Event> {
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
pub async fn all_events(client: &mut Client) -> Vec<pb::Event> {
    events_where(client, "", "").await
}

/// Every event of one task.
pub async fn task_events(client: &mut Client, id: &str) -> Vec<pb::Event> {
    events_where(client, "", id).await
}

/// The kinds of events, in order.
pub fn kinds(events: &[pb::Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// Every status, archived included.
pub const ALL_STATUSES: &[pb::TaskStatus] = &[
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
pub fn ids(tasks: &[pb::Task]) -> Vec<&str> {
    tasks.iter().map(|t| t.id.as_str()).collect()
}

/// Polls a task every 50 ms, for up to `limit`, until it has `want`; returns it then.
pub async fn wait_for_status(
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
pub const CODER: &str = "coder";

/// A claim token that is well formed but was never issued.
pub const MADE_UP_TOKEN: &str = "c_0123456789abcdef";

/// An `OpenSessionRequest` for one profile with a TTL, 4 slots and machine `m1`.
pub fn session_request(profile: &str, ttl_ms: u32) -> pb::OpenSessionRequest {
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
pub async fn open_session_with(
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
pub async fn open_session(client: &mut Client, profile: &str, ttl_ms: u32) -> pb::Session {
    open_session_with(client, session_request(profile, ttl_ms)).await
}

/// Creates a ready task on a board, assigned to a profile.
pub async fn create_assigned(
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
pub async fn try_acquire(
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
pub async fn acquire(client: &mut Client, session_id: &str, wait_ms: i64) -> Option<pb::Grant> {
    try_acquire(client, session_id, wait_ms)
        .await
        .expect("Acquire")
}

/// Acquire (no wait) that must grant; returns the grant.
pub async fn acquire_now(client: &mut Client, session_id: &str) -> pb::Grant {
    acquire(client, session_id, 0)
        .await
        .expect("Acquire grants a claimable task")
}

/// The task id of a grant.
pub fn granted_task(grant: &pb::Grant) -> &str {
    &grant.task.as_ref().expect("a grant carries its task").id
}

/// Two tasks for [`CODER`] (titled `first` and `second`), each granted to the same session: the
/// first task with its claim, and the second with its claim, a live claim that must still not
/// pass for the first task.
pub async fn two_claims(client: &mut Client) -> [(pb::Task, pb::Grant); 2] {
    let session = open_session(client, CODER, 60_000).await;
    let first = create_assigned(client, "", "first", CODER).await;
    let held = acquire_now(client, &session.id).await;
    assert_eq!(granted_task(&held), first.id);
    let second = create_assigned(client, "", "second", CODER).await;
    let other = acquire_now(client, &session.id).await;
    assert_eq!(granted_task(&other), second.id);
    [(first, held), (second, other)]
}

/// The `kanban-lease-lost` trailer of a refusal, if any.
pub fn lost_reason(status: &Status) -> Option<&str> {
    status
        .metadata()
        .get("kanban-lease-lost")
        .and_then(|v| v.to_str().ok())
}

/// The `kanban-current-epoch` trailer of a refusal, if any.
pub fn lost_epoch(status: &Status) -> Option<u64> {
    status
        .metadata()
        .get("kanban-current-epoch")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Asserts a holder call was refused with ABORTED and the given `kanban-lease-lost` reason.
pub fn assert_lost<T: Debug>(result: Result<T, Status>, reason: &str) -> Status {
    let status = refused(result, Code::Aborted);
    assert_eq!(
        lost_reason(&status),
        Some(reason),
        "lease-lost trailer of {status:?}"
    );
    status
}

/// Complete with a token.
pub async fn complete(client: &mut Client, token: &str) -> Result<pb::Task, Status> {
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
pub async fn release(client: &mut Client, token: &str) -> Result<pb::Task, Status> {
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
pub async fn renew(client: &mut Client, token: &str) -> Result<u32, Status> {
    client
        .leases
        .renew(pb::RenewRequest {
            claim_token: token.to_owned(),
        })
        .await
        .map(|r| r.into_inner().ttl_ms)
}

/// Heartbeat with a token.
pub async fn heartbeat(client: &mut Client, token: &str) -> Result<(), Status> {
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
pub async fn report_exit(
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

/// Runs Admin.CheckInvariants and asserts it finds nothing; returns the report.
pub async fn assert_invariants(client: &mut Client) -> pb::CheckInvariantsResponse {
    let report = client
        .admin
        .check_invariants(pb::CheckInvariantsRequest {})
        .await
        .expect("CheckInvariants")
        .into_inner();
    assert!(
        report.ok,
        "invariants broken: {:#?} ({} tasks, {} claims, {} events examined)",
        report.violations, report.tasks, report.claims, report.events
    );
    report
}

/// Admin.Stats.
pub async fn stats(client: &mut Client) -> pb::StatsResponse {
    client
        .admin
        .stats(pb::StatsRequest {})
        .await
        .expect("Stats")
        .into_inner()
}

/// The id of the latest event in the log (0 if none).
pub async fn last_event_id(client: &mut Client) -> u64 {
    all_events(client).await.last().map_or(0, |e| e.id)
}

/// The runs of a task, oldest first.
pub async fn runs(client: &mut Client, id: &str) -> Vec<pb::Run> {
    detail(client, id).await.runs
}

/// The outcome of a task's latest run.
pub async fn last_outcome(client: &mut Client, id: &str) -> pb::RunOutcome {
    runs(client, id)
        .await
        .last()
        .expect("the task has a run")
        .outcome()
}

/// Every task of `board` (every board when empty) with the given statuses (all but archived
/// when empty), walking every page of `ListTasks`.
pub async fn all_tasks(
    client: &mut Client,
    board: &str,
    statuses: &[pb::TaskStatus],
) -> Vec<pb::Task> {
    let mut tasks = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .tasks
            .list_tasks(pb::ListTasksRequest {
                board: board.to_owned(),
                statuses: statuses.iter().map(|s| *s as i32).collect(),
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .expect("ListTasks")
            .into_inner();
        tasks.extend(page.tasks);
        if page.next_page_token.is_empty() {
            return tasks;
        }
        page_token = page.next_page_token;
    }
}

/// Uploads `bytes` as `name` to a task in chunks of `chunk` bytes (the header first), with
/// `token` as the claim token (empty for an operator).
pub async fn upload_chunked(
    client: &mut Client,
    task_id: &str,
    name: &str,
    bytes: &[u8],
    chunk: usize,
    token: &str,
) -> Result<pb::Attachment, Status> {
    let mut messages = vec![pb::UploadRequest {
        part: Some(pb::upload_request::Part::Header(pb::UploadHeader {
            task_id: task_id.to_owned(),
            name: name.to_owned(),
            media_type: "text/plain".into(),
            claim_token: token.to_owned(),
            uploaded_by: "tester".into(),
        })),
    }];
    messages.extend(bytes.chunks(chunk.max(1)).map(|piece| pb::UploadRequest {
        part: Some(pb::upload_request::Part::Chunk(piece.to_vec())),
    }));
    upload_messages(client, messages).await
}

/// Uploads `bytes` as `name` in one chunk, as an operator.
pub async fn upload(
    client: &mut Client,
    task_id: &str,
    name: &str,
    bytes: &[u8],
) -> Result<pb::Attachment, Status> {
    upload_chunked(client, task_id, name, bytes, bytes.len(), "").await
}

/// Sends an upload made of exactly these messages.
pub async fn upload_messages(
    client: &mut Client,
    messages: Vec<pb::UploadRequest>,
) -> Result<pb::Attachment, Status> {
    client
        .attachments
        .upload(tonic::codegen::tokio_stream::iter(messages))
        .await
        .map(tonic::Response::into_inner)
}

/// Downloads an attachment: the first message's attachment, the bytes, and how many messages
/// carried them.
pub async fn download(
    client: &mut Client,
    id: &str,
) -> Result<(pb::Attachment, Vec<u8>, usize), Status> {
    let mut stream = client
        .attachments
        .download(pb::DownloadRequest { id: id.to_owned() })
        .await?
        .into_inner();
    let mut first = None;
    let mut bytes = Vec::new();
    let mut messages = 0;
    while let Some(message) = stream.message().await? {
        if messages == 0 {
            first = message.attachment;
        } else {
            assert!(
                message.attachment.is_none(),
                "only the first message names it"
            );
        }
        messages += 1;
        bytes.extend_from_slice(&message.chunk);
    }
    Ok((
        first.expect("the first message names the attachment"),
        bytes,
        messages,
    ))
}

/// A task's attachments.
pub async fn attachments(client: &mut Client, task_id: &str) -> Vec<pb::Attachment> {
    client
        .attachments
        .list(pb::ListAttachmentsRequest {
            task_id: task_id.to_owned(),
        })
        .await
        .expect("List attachments")
        .into_inner()
        .attachments
}
