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

/// Every task of a board with the given status filter, walking all pages.
pub(crate) async fn list_all(
    client: &mut Client,
    board: &str,
    statuses: &[pb::TaskStatus],
) -> Vec<pb::Task> {
    let mut all = Vec::new();
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
        all.extend(page.tasks);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
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
