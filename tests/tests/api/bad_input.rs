//! Malformed requests to every Boards and Tasks RPC, as one table: each is refused with the
//! right gRPC code and a message that names the field without Rust Debug noise, and the whole
//! table changes nothing in the database (boards, tasks and the event log are compared).

use std::collections::HashMap;

use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::calls;
use kanband_tests::{
    calls::{
        ALL_STATUSES, MISSING_TASK, all_events, create_board, create_child, create_on, detail,
    },
    spawn_service,
};
use tonic::{Code, Status};

use crate::support::refusal::{self, Case, invalid, not_found, refused};

/// One request to any Boards or Tasks RPC.
#[derive(Debug, Clone)]
enum Call {
    CreateBoard(pb::CreateBoardRequest),
    GetBoard(pb::GetBoardRequest),
    UpdateBoard(pb::UpdateBoardRequest),
    ArchiveBoard(pb::ArchiveBoardRequest),
    ResetBoard(pb::ResetBoardRequest),
    CreateTask(pb::CreateTaskRequest),
    GetTask(pb::GetTaskRequest),
    ListTasks(pb::ListTasksRequest),
    UpdateTask(pb::UpdateTaskRequest),
    AssignTask(pb::AssignTaskRequest),
    LinkTasks(pb::LinkTasksRequest),
    UnlinkTasks(pb::UnlinkTasksRequest),
    AddComment(pb::AddCommentRequest),
    ListComments(pb::ListCommentsRequest),
    BlockTask(pb::BlockTaskRequest),
    UnblockTask(pb::UnblockTaskRequest),
    ScheduleTask(pb::ScheduleTaskRequest),
    PromoteTask(pb::PromoteTaskRequest),
    ArchiveTask(pb::ArchiveTaskRequest),
    ReopenReview(pb::ReopenReviewRequest),
    ListEvents(pb::ListEventsRequest),
}

/// Sends a call and keeps only whether it failed.
async fn send(mut client: Client, call: Call) -> Result<(), Status> {
    let (b, t) = (&mut client.boards, &mut client.tasks);
    match call {
        Call::CreateBoard(r) => b.create_board(r).await.map(drop),
        Call::GetBoard(r) => b.get_board(r).await.map(drop),
        Call::UpdateBoard(r) => b.update_board(r).await.map(drop),
        Call::ArchiveBoard(r) => b.archive_board(r).await.map(drop),
        Call::ResetBoard(r) => b.reset_board(r).await.map(drop),
        Call::CreateTask(r) => t.create_task(r).await.map(drop),
        Call::GetTask(r) => t.get_task(r).await.map(drop),
        Call::ListTasks(r) => t.list_tasks(r).await.map(drop),
        Call::UpdateTask(r) => t.update_task(r).await.map(drop),
        Call::AssignTask(r) => t.assign_task(r).await.map(drop),
        Call::LinkTasks(r) => t.link_tasks(r).await.map(drop),
        Call::UnlinkTasks(r) => t.unlink_tasks(r).await.map(drop),
        Call::AddComment(r) => t.add_comment(r).await.map(drop),
        Call::ListComments(r) => t.list_comments(r).await.map(drop),
        Call::BlockTask(r) => t.block_task(r).await.map(drop),
        Call::UnblockTask(r) => t.unblock_task(r).await.map(drop),
        Call::ScheduleTask(r) => t.schedule_task(r).await.map(drop),
        Call::PromoteTask(r) => t.promote_task(r).await.map(drop),
        Call::ArchiveTask(r) => t.archive_task(r).await.map(drop),
        Call::ReopenReview(r) => t.reopen_review(r).await.map(drop),
        Call::ListEvents(r) => t.list_events(r).await.map(drop),
    }
}

/// What a test fixture offers the table: ids that exist.
struct Fixture {
    /// A ready task on `fixture` with one comment.
    task: String,
    /// A task on `fixture` whose parent is `task`.
    child: String,
    /// A task on board `other`.
    foreign: String,
}

/// Everything the table could change: boards, every task of every board, the event log.
#[derive(Debug, PartialEq)]
struct Snapshot {
    boards: Vec<pb::Board>,
    tasks: Vec<pb::Task>,
    comments: Vec<pb::Comment>,
    events: Vec<pb::Event>,
}

async fn snapshot(client: &mut Client, fixture: &Fixture) -> Snapshot {
    let boards = client
        .boards
        .list_boards(pb::ListBoardsRequest {
            include_archived: true,
        })
        .await
        .unwrap()
        .into_inner()
        .boards;
    let mut tasks = Vec::new();
    for board in &boards {
        tasks.extend(kanband_tests::calls::all_tasks(client, &board.slug, ALL_STATUSES).await);
    }
    let mut comments = Vec::new();
    for id in [&fixture.task, &fixture.child, &fixture.foreign] {
        comments.extend(detail(client, id).await.comments);
    }
    let events = client
        .tasks
        .list_events(pb::ListEventsRequest {
            after_id: 0,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(events, all_events(client).await, "the log fits one page");
    Snapshot {
        boards,
        tasks,
        comments,
        events,
    }
}

fn many(count: usize, item: impl Fn(usize) -> String) -> Vec<String> {
    (0..count).map(item).collect()
}

fn metadata(count: usize) -> HashMap<String, String> {
    (0..count)
        .map(|i| (format!("k{i}"), "v".to_owned()))
        .collect()
}

/// The table: every RPC of Boards and Tasks with its malformed requests.
fn cases(fx: &Fixture) -> Vec<Case<Call>> {
    use Call::*;
    let title = |title: &str| pb::CreateTaskRequest {
        title: title.to_owned(),
        ..Default::default()
    };
    let ok_task = || title("fine");
    let update = || pb::UpdateTaskRequest {
        id: fx.task.clone(),
        ..Default::default()
    };
    let board = |slug: &str| pb::CreateBoardRequest {
        slug: slug.to_owned(),
        ..Default::default()
    };
    let update_board = || pb::UpdateBoardRequest {
        slug: "fixture".into(),
        ..Default::default()
    };
    let list = pb::ListTasksRequest::default;
    let long = |n: usize| "x".repeat(n);
    let id = |s: &str| s.to_owned();
    vec![
        // Boards.CreateBoard
        invalid("empty slug", "slug", CreateBoard(board(""))),
        invalid("slug with a space", "slug", CreateBoard(board("Bad Slug"))),
        invalid("slug with capitals", "slug", CreateBoard(board("Upper"))),
        invalid(
            "slug of 65 bytes",
            "slug",
            CreateBoard(board(&"a".repeat(65))),
        ),
        invalid("slug starting with -", "slug", CreateBoard(board("-a"))),
        invalid(
            "display name of 201 bytes",
            "display_name",
            CreateBoard(pb::CreateBoardRequest {
                display_name: long(201),
                ..board("new-board")
            }),
        ),
        invalid(
            "default assignee with a space",
            "default_assignee",
            CreateBoard(pb::CreateBoardRequest {
                default_assignee: "a b".into(),
                ..board("new-board")
            }),
        ),
        invalid(
            "max_retries 101",
            "max_retries",
            CreateBoard(pb::CreateBoardRequest {
                max_retries: 101,
                ..board("new-board")
            }),
        ),
        invalid(
            "65 metadata entries",
            "metadata",
            CreateBoard(pb::CreateBoardRequest {
                metadata: metadata(65),
                ..board("new-board")
            }),
        ),
        invalid(
            "blank metadata key",
            "metadata",
            CreateBoard(pb::CreateBoardRequest {
                metadata: [(" ".to_owned(), "v".to_owned())].into(),
                ..board("new-board")
            }),
        ),
        invalid(
            "metadata value of 4097 bytes",
            "metadata",
            CreateBoard(pb::CreateBoardRequest {
                metadata: [("k".to_owned(), long(4097))].into(),
                ..board("new-board")
            }),
        ),
        // Boards.GetBoard
        invalid(
            "empty slug",
            "slug",
            GetBoard(pb::GetBoardRequest { slug: id("") }),
        ),
        invalid(
            "slug with a space",
            "slug",
            GetBoard(pb::GetBoardRequest {
                slug: id("Bad Slug"),
            }),
        ),
        not_found(
            "missing board",
            "nope",
            GetBoard(pb::GetBoardRequest { slug: id("nope") }),
        ),
        // Boards.UpdateBoard
        invalid(
            "slug with a space",
            "slug",
            UpdateBoard(pb::UpdateBoardRequest {
                slug: id("Bad Slug"),
                display_name: Some("x".into()),
                ..Default::default()
            }),
        ),
        invalid(
            "display name of 201 bytes",
            "display_name",
            UpdateBoard(pb::UpdateBoardRequest {
                display_name: Some(long(201)),
                ..update_board()
            }),
        ),
        invalid(
            "default assignee starting with a dot",
            "default_assignee",
            UpdateBoard(pb::UpdateBoardRequest {
                default_assignee: Some(".x".into()),
                ..update_board()
            }),
        ),
        invalid(
            "max_retries 101",
            "max_retries",
            UpdateBoard(pb::UpdateBoardRequest {
                max_retries: Some(101),
                ..update_board()
            }),
        ),
        invalid(
            "metadata without replace_metadata",
            "metadata",
            UpdateBoard(pb::UpdateBoardRequest {
                metadata: metadata(1),
                ..update_board()
            }),
        ),
        invalid(
            "65 metadata entries",
            "metadata",
            UpdateBoard(pb::UpdateBoardRequest {
                metadata: metadata(65),
                replace_metadata: true,
                ..update_board()
            }),
        ),
        not_found(
            "missing board",
            "nope",
            UpdateBoard(pb::UpdateBoardRequest {
                slug: id("nope"),
                display_name: Some("x".into()),
                ..Default::default()
            }),
        ),
        // Boards.ArchiveBoard
        invalid(
            "empty slug",
            "slug",
            ArchiveBoard(pb::ArchiveBoardRequest::default()),
        ),
        invalid(
            "actor of 129 bytes",
            "actor",
            ArchiveBoard(pb::ArchiveBoardRequest {
                slug: id("fixture"),
                actor: long(129),
            }),
        ),
        refused(
            "archive default",
            Code::FailedPrecondition,
            "default",
            ArchiveBoard(pb::ArchiveBoardRequest {
                slug: id("default"),
                actor: String::new(),
            }),
        ),
        // Boards.ResetBoard
        invalid(
            "slug with a space",
            "slug",
            ResetBoard(pb::ResetBoardRequest {
                slug: id("Bad Slug"),
                actor: String::new(),
            }),
        ),
        invalid(
            "actor of 129 bytes",
            "actor",
            ResetBoard(pb::ResetBoardRequest {
                slug: id("fixture"),
                actor: long(129),
            }),
        ),
        not_found(
            "missing board",
            "nope",
            ResetBoard(pb::ResetBoardRequest {
                slug: id("nope"),
                actor: String::new(),
            }),
        ),
        // Tasks.CreateTask
        invalid(
            "board with a space",
            "board",
            CreateTask(pb::CreateTaskRequest {
                board: id("Bad Slug"),
                ..ok_task()
            }),
        ),
        not_found(
            "missing board",
            "nope",
            CreateTask(pb::CreateTaskRequest {
                board: id("nope"),
                ..ok_task()
            }),
        ),
        invalid("empty title", "title", CreateTask(title(""))),
        invalid("blank title", "title", CreateTask(title(" \t\n "))),
        invalid("title of 501 bytes", "title", CreateTask(title(&long(501)))),
        invalid("title with a NUL", "title", CreateTask(title("a\0b"))),
        invalid(
            "body of 65537 bytes",
            "body",
            CreateTask(pb::CreateTaskRequest {
                body: long(65537),
                ..ok_task()
            }),
        ),
        invalid(
            "assignee with a space",
            "assignee",
            CreateTask(pb::CreateTaskRequest {
                assignee: id("a b"),
                ..ok_task()
            }),
        ),
        invalid(
            "priority 5000",
            "priority",
            CreateTask(pb::CreateTaskRequest {
                priority: 5000,
                ..ok_task()
            }),
        ),
        invalid(
            "priority -1001",
            "priority",
            CreateTask(pb::CreateTaskRequest {
                priority: -1001,
                ..ok_task()
            }),
        ),
        invalid(
            "priority i32::MIN",
            "priority",
            CreateTask(pb::CreateTaskRequest {
                priority: i32::MIN,
                ..ok_task()
            }),
        ),
        invalid(
            "created_by of 129 bytes",
            "created_by",
            CreateTask(pb::CreateTaskRequest {
                created_by: long(129),
                ..ok_task()
            }),
        ),
        invalid(
            "tenant of 129 bytes",
            "tenant",
            CreateTask(pb::CreateTaskRequest {
                tenant: long(129),
                ..ok_task()
            }),
        ),
        invalid(
            "idempotency key of 257 bytes",
            "idempotency_key",
            CreateTask(pb::CreateTaskRequest {
                idempotency_key: long(257),
                ..ok_task()
            }),
        ),
        invalid(
            "parent id t_123",
            "parents",
            CreateTask(pb::CreateTaskRequest {
                parents: vec![id("t_123")],
                ..ok_task()
            }),
        ),
        invalid(
            "missing parent",
            "parents",
            CreateTask(pb::CreateTaskRequest {
                parents: vec![id(MISSING_TASK)],
                ..ok_task()
            }),
        ),
        invalid(
            "parent on another board",
            "parents",
            CreateTask(pb::CreateTaskRequest {
                board: id("fixture"),
                parents: vec![fx.foreign.clone()],
                ..ok_task()
            }),
        ),
        invalid(
            "65 parents",
            "parents",
            CreateTask(pb::CreateTaskRequest {
                parents: many(65, |i| format!("t_{i:016x}")),
                ..ok_task()
            }),
        ),
        invalid(
            "initial status 99",
            "initial_status",
            CreateTask(pb::CreateTaskRequest {
                initial_status: 99,
                ..ok_task()
            }),
        ),
        invalid(
            "initial status done",
            "initial_status",
            CreateTask(pb::CreateTaskRequest {
                initial_status: pb::TaskStatus::Done.into(),
                ..ok_task()
            }),
        ),
        invalid(
            "initial status ready",
            "initial_status",
            CreateTask(pb::CreateTaskRequest {
                initial_status: pb::TaskStatus::Ready.into(),
                ..ok_task()
            }),
        ),
        invalid(
            "max_runtime_seconds over a week",
            "max_runtime_seconds",
            CreateTask(pb::CreateTaskRequest {
                max_runtime_seconds: 604_801,
                ..ok_task()
            }),
        ),
        invalid(
            "max_retries 101",
            "max_retries",
            CreateTask(pb::CreateTaskRequest {
                max_retries: 101,
                ..ok_task()
            }),
        ),
        invalid(
            "65 capabilities",
            "required_capabilities",
            CreateTask(pb::CreateTaskRequest {
                required_capabilities: many(65, |i| format!("cap{i}")),
                ..ok_task()
            }),
        ),
        invalid(
            "capability with a space",
            "required_capabilities",
            CreateTask(pb::CreateTaskRequest {
                required_capabilities: vec![id("gpu"), id("a b")],
                ..ok_task()
            }),
        ),
        invalid(
            "target machine of 129 bytes",
            "target_machine",
            CreateTask(pb::CreateTaskRequest {
                target_machine: long(129),
                ..ok_task()
            }),
        ),
        invalid(
            "workspace kind 7",
            "workspace",
            CreateTask(pb::CreateTaskRequest {
                workspace: Some(pb::Workspace {
                    kind: 7,
                    ..Default::default()
                }),
                ..ok_task()
            }),
        ),
        invalid(
            "dir workspace without a path",
            "workspace",
            CreateTask(pb::CreateTaskRequest {
                workspace: Some(pb::Workspace {
                    kind: pb::WorkspaceKind::Dir.into(),
                    ..Default::default()
                }),
                ..ok_task()
            }),
        ),
        invalid(
            "65 skills",
            "worker_options",
            CreateTask(pb::CreateTaskRequest {
                worker_options: Some(pb::WorkerOptions {
                    skills: many(65, |i| format!("s{i}")),
                    ..Default::default()
                }),
                ..ok_task()
            }),
        ),
        // Tasks.GetTask
        invalid("empty id", "id", GetTask(pb::GetTaskRequest::default())),
        invalid(
            "id t_123",
            "id",
            GetTask(pb::GetTaskRequest {
                id: id("t_123"),
                recent_events: 0,
            }),
        ),
        invalid(
            "id with capitals",
            "id",
            GetTask(pb::GetTaskRequest {
                id: fx.task.to_uppercase(),
                recent_events: 0,
            }),
        ),
        invalid(
            "recent_events 1001",
            "recent_events",
            GetTask(pb::GetTaskRequest {
                id: fx.task.clone(),
                recent_events: 1001,
            }),
        ),
        not_found(
            "missing task",
            MISSING_TASK,
            GetTask(pb::GetTaskRequest {
                id: id(MISSING_TASK),
                recent_events: 0,
            }),
        ),
        // Tasks.ListTasks
        invalid(
            "board with a space",
            "board",
            ListTasks(pb::ListTasksRequest {
                board: id("Bad Slug"),
                ..list()
            }),
        ),
        not_found(
            "missing board",
            "nope",
            ListTasks(pb::ListTasksRequest {
                board: id("nope"),
                ..list()
            }),
        ),
        invalid(
            "status 99",
            "statuses",
            ListTasks(pb::ListTasksRequest {
                statuses: vec![pb::TaskStatus::Ready.into(), 99],
                ..list()
            }),
        ),
        invalid(
            "status unspecified",
            "statuses",
            ListTasks(pb::ListTasksRequest {
                statuses: vec![0],
                ..list()
            }),
        ),
        // Every one valid, but so many that a query over them would fail in SQLite (too many
        // variables) and log its whole text.
        invalid(
            "300,000 statuses",
            "statuses",
            ListTasks(pb::ListTasksRequest {
                statuses: vec![pb::TaskStatus::Ready.into(); 300_000],
                ..list()
            }),
        ),
        invalid(
            "assignee with a space",
            "assignee",
            ListTasks(pb::ListTasksRequest {
                assignee: id("a b"),
                ..list()
            }),
        ),
        invalid(
            "tenant of 129 bytes",
            "tenant",
            ListTasks(pb::ListTasksRequest {
                tenant: long(129),
                ..list()
            }),
        ),
        invalid(
            "page_size 1001",
            "page_size",
            ListTasks(pb::ListTasksRequest {
                page_size: 1001,
                ..list()
            }),
        ),
        invalid(
            "foreign page token",
            "page_token",
            ListTasks(pb::ListTasksRequest {
                page_token: id("xyz"),
                ..list()
            }),
        ),
        invalid(
            "page token p0",
            "page_token",
            ListTasks(pb::ListTasksRequest {
                page_token: id("p0"),
                ..list()
            }),
        ),
        // Tasks.UpdateTask
        invalid(
            "empty id",
            "id",
            UpdateTask(pb::UpdateTaskRequest::default()),
        ),
        invalid(
            "id t_123",
            "id",
            UpdateTask(pb::UpdateTaskRequest {
                id: id("t_123"),
                title: Some("x".into()),
                ..Default::default()
            }),
        ),
        invalid(
            "empty title",
            "title",
            UpdateTask(pb::UpdateTaskRequest {
                title: Some(String::new()),
                ..update()
            }),
        ),
        invalid(
            "blank title",
            "title",
            UpdateTask(pb::UpdateTaskRequest {
                title: Some("   ".into()),
                ..update()
            }),
        ),
        invalid(
            "title of 501 bytes",
            "title",
            UpdateTask(pb::UpdateTaskRequest {
                title: Some(long(501)),
                ..update()
            }),
        ),
        invalid(
            "body of 65537 bytes",
            "body",
            UpdateTask(pb::UpdateTaskRequest {
                body: Some(long(65537)),
                ..update()
            }),
        ),
        invalid(
            "priority 5000",
            "priority",
            UpdateTask(pb::UpdateTaskRequest {
                priority: Some(5000),
                ..update()
            }),
        ),
        invalid(
            "priority i32::MIN",
            "priority",
            UpdateTask(pb::UpdateTaskRequest {
                priority: Some(i32::MIN),
                ..update()
            }),
        ),
        invalid(
            "tenant of 129 bytes",
            "tenant",
            UpdateTask(pb::UpdateTaskRequest {
                tenant: Some(long(129)),
                ..update()
            }),
        ),
        invalid(
            "max_retries 101",
            "max_retries",
            UpdateTask(pb::UpdateTaskRequest {
                max_retries: Some(101),
                ..update()
            }),
        ),
        invalid(
            "65 capabilities",
            "required_capabilities",
            UpdateTask(pb::UpdateTaskRequest {
                required_capabilities: Some(pb::Capabilities {
                    values: many(65, |i| format!("cap{i}")),
                }),
                ..update()
            }),
        ),
        invalid(
            "capability with a space",
            "required_capabilities",
            UpdateTask(pb::UpdateTaskRequest {
                required_capabilities: Some(pb::Capabilities {
                    values: vec![id("a b")],
                }),
                ..update()
            }),
        ),
        invalid(
            "workspace kind 7",
            "workspace",
            UpdateTask(pb::UpdateTaskRequest {
                workspace: Some(pb::Workspace {
                    kind: 7,
                    ..Default::default()
                }),
                ..update()
            }),
        ),
        invalid(
            "actor of 129 bytes",
            "actor",
            UpdateTask(pb::UpdateTaskRequest {
                actor: long(129),
                title: Some("x".into()),
                ..update()
            }),
        ),
        not_found(
            "missing task",
            MISSING_TASK,
            UpdateTask(pb::UpdateTaskRequest {
                id: id(MISSING_TASK),
                title: Some("x".into()),
                ..Default::default()
            }),
        ),
        // Tasks.AssignTask
        invalid(
            "empty id",
            "id",
            AssignTask(pb::AssignTaskRequest::default()),
        ),
        invalid(
            "assignee with a space",
            "assignee",
            AssignTask(pb::AssignTaskRequest {
                id: fx.task.clone(),
                assignee: id("a b"),
                actor: String::new(),
            }),
        ),
        invalid(
            "assignee of 65 bytes",
            "assignee",
            AssignTask(pb::AssignTaskRequest {
                id: fx.task.clone(),
                assignee: long(65),
                actor: String::new(),
            }),
        ),
        not_found(
            "missing task",
            MISSING_TASK,
            AssignTask(pb::AssignTaskRequest {
                id: id(MISSING_TASK),
                assignee: id("x"),
                actor: String::new(),
            }),
        ),
        // Tasks.LinkTasks
        invalid(
            "parent id t_123",
            "parent_id",
            LinkTasks(pb::LinkTasksRequest {
                parent_id: id("t_123"),
                child_id: fx.task.clone(),
                actor: String::new(),
            }),
        ),
        invalid(
            "empty child id",
            "child_id",
            LinkTasks(pb::LinkTasksRequest {
                parent_id: fx.task.clone(),
                child_id: String::new(),
                actor: String::new(),
            }),
        ),
        invalid(
            "self-link",
            "parent_id",
            LinkTasks(pb::LinkTasksRequest {
                parent_id: fx.task.clone(),
                child_id: fx.task.clone(),
                actor: String::new(),
            }),
        ),
        invalid(
            "cross-board link",
            "parent_id",
            LinkTasks(pb::LinkTasksRequest {
                parent_id: fx.foreign.clone(),
                child_id: fx.task.clone(),
                actor: String::new(),
            }),
        ),
        not_found(
            "missing parent",
            MISSING_TASK,
            LinkTasks(pb::LinkTasksRequest {
                parent_id: id(MISSING_TASK),
                child_id: fx.task.clone(),
                actor: String::new(),
            }),
        ),
        // Tasks.UnlinkTasks
        invalid(
            "parent id t_123",
            "parent_id",
            UnlinkTasks(pb::UnlinkTasksRequest {
                parent_id: id("t_123"),
                child_id: fx.child.clone(),
                actor: String::new(),
            }),
        ),
        invalid(
            "empty child id",
            "child_id",
            UnlinkTasks(pb::UnlinkTasksRequest {
                parent_id: fx.task.clone(),
                child_id: String::new(),
                actor: String::new(),
            }),
        ),
        invalid(
            "actor of 129 bytes",
            "actor",
            UnlinkTasks(pb::UnlinkTasksRequest {
                parent_id: fx.task.clone(),
                child_id: fx.child.clone(),
                actor: long(129),
            }),
        ),
        not_found(
            "link that does not exist",
            &fx.child,
            UnlinkTasks(pb::UnlinkTasksRequest {
                parent_id: fx.child.clone(),
                child_id: fx.task.clone(),
                actor: String::new(),
            }),
        ),
        // Tasks.AddComment
        invalid(
            "empty task id",
            "task_id",
            AddComment(pb::AddCommentRequest {
                body: id("hi"),
                ..Default::default()
            }),
        ),
        invalid(
            "empty body",
            "body",
            AddComment(pb::AddCommentRequest {
                task_id: fx.task.clone(),
                ..Default::default()
            }),
        ),
        invalid(
            "blank body",
            "body",
            AddComment(pb::AddCommentRequest {
                task_id: fx.task.clone(),
                body: id(" \n "),
                ..Default::default()
            }),
        ),
        invalid(
            "body of 65537 bytes",
            "body",
            AddComment(pb::AddCommentRequest {
                task_id: fx.task.clone(),
                body: long(65537),
                ..Default::default()
            }),
        ),
        invalid(
            "author of 129 bytes",
            "author",
            AddComment(pb::AddCommentRequest {
                claim_token: String::new(),
                task_id: fx.task.clone(),
                author: long(129),
                body: id("hi"),
            }),
        ),
        not_found(
            "missing task",
            MISSING_TASK,
            AddComment(pb::AddCommentRequest {
                task_id: id(MISSING_TASK),
                body: id("hi"),
                ..Default::default()
            }),
        ),
        // Tasks.ListComments
        invalid(
            "id t_123",
            "task_id",
            ListComments(pb::ListCommentsRequest {
                task_id: id("t_123"),
                ..Default::default()
            }),
        ),
        invalid(
            "page_size 1001",
            "page_size",
            ListComments(pb::ListCommentsRequest {
                task_id: fx.task.clone(),
                page_size: 1001,
                ..Default::default()
            }),
        ),
        invalid(
            "foreign page token",
            "page_token",
            ListComments(pb::ListCommentsRequest {
                task_id: fx.task.clone(),
                page_token: id("xyz"),
                ..Default::default()
            }),
        ),
        not_found(
            "missing task",
            MISSING_TASK,
            ListComments(pb::ListCommentsRequest {
                task_id: id(MISSING_TASK),
                ..Default::default()
            }),
        ),
        // Tasks.BlockTask
        invalid("empty id", "id", BlockTask(pb::BlockTaskRequest::default())),
        invalid(
            "block kind 42",
            "kind",
            BlockTask(pb::BlockTaskRequest {
                id: fx.task.clone(),
                kind: 42,
                ..Default::default()
            }),
        ),
        invalid(
            "reason of 4097 bytes",
            "reason",
            BlockTask(pb::BlockTaskRequest {
                id: fx.task.clone(),
                reason: long(4097),
                ..Default::default()
            }),
        ),
        invalid(
            "reason with an escape character",
            "reason",
            BlockTask(pb::BlockTaskRequest {
                id: fx.task.clone(),
                reason: "red \u{1b}[31m".into(),
                ..Default::default()
            }),
        ),
        not_found(
            "missing task",
            MISSING_TASK,
            BlockTask(pb::BlockTaskRequest {
                id: id(MISSING_TASK),
                ..Default::default()
            }),
        ),
        // Tasks.UnblockTask
        invalid(
            "id t_123",
            "id",
            UnblockTask(pb::UnblockTaskRequest {
                id: id("t_123"),
                actor: String::new(),
            }),
        ),
        refused(
            "unblock a ready task",
            Code::FailedPrecondition,
            "ready",
            UnblockTask(pb::UnblockTaskRequest {
                id: fx.task.clone(),
                actor: String::new(),
            }),
        ),
        // Tasks.ScheduleTask
        invalid(
            "empty id",
            "id",
            ScheduleTask(pb::ScheduleTaskRequest::default()),
        ),
        invalid(
            "delay over a year",
            "delay_seconds",
            ScheduleTask(pb::ScheduleTaskRequest {
                id: fx.task.clone(),
                delay_seconds: 31_536_001,
                actor: String::new(),
            }),
        ),
        invalid(
            "delay u64::MAX",
            "delay_seconds",
            ScheduleTask(pb::ScheduleTaskRequest {
                id: fx.task.clone(),
                delay_seconds: u64::MAX,
                actor: String::new(),
            }),
        ),
        // Tasks.PromoteTask
        invalid(
            "id t_123",
            "id",
            PromoteTask(pb::PromoteTaskRequest {
                id: id("t_123"),
                actor: String::new(),
            }),
        ),
        refused(
            "promote a todo task with an unfinished parent",
            Code::FailedPrecondition,
            "todo",
            PromoteTask(pb::PromoteTaskRequest {
                id: fx.child.clone(),
                actor: String::new(),
            }),
        ),
        // Tasks.ArchiveTask
        invalid(
            "empty id",
            "id",
            ArchiveTask(pb::ArchiveTaskRequest::default()),
        ),
        invalid(
            "actor of 129 bytes",
            "actor",
            ArchiveTask(pb::ArchiveTaskRequest {
                id: fx.task.clone(),
                actor: long(129),
                reason: String::new(),
            }),
        ),
        invalid(
            "reason of 4097 bytes",
            "reason",
            ArchiveTask(pb::ArchiveTaskRequest {
                id: fx.task.clone(),
                reason: long(4097),
                ..Default::default()
            }),
        ),
        invalid(
            "reason with a carriage return",
            "reason",
            ArchiveTask(pb::ArchiveTaskRequest {
                id: fx.task.clone(),
                reason: "line\r".into(),
                ..Default::default()
            }),
        ),
        not_found(
            "missing task",
            MISSING_TASK,
            ArchiveTask(pb::ArchiveTaskRequest {
                id: id(MISSING_TASK),
                actor: String::new(),
                reason: String::new(),
            }),
        ),
        // Tasks.ReopenReview
        invalid(
            "id t_123",
            "id",
            ReopenReview(pb::ReopenReviewRequest {
                id: id("t_123"),
                actor: String::new(),
            }),
        ),
        refused(
            "reopen a ready task",
            Code::FailedPrecondition,
            "ready",
            ReopenReview(pb::ReopenReviewRequest {
                id: fx.task.clone(),
                actor: String::new(),
            }),
        ),
        // Tasks.ListEvents
        invalid(
            "board with a space",
            "board",
            ListEvents(pb::ListEventsRequest {
                board: id("Bad Slug"),
                ..Default::default()
            }),
        ),
        invalid(
            "task id t_123",
            "task_id",
            ListEvents(pb::ListEventsRequest {
                task_id: id("t_123"),
                ..Default::default()
            }),
        ),
        invalid(
            "page_size 1001",
            "page_size",
            ListEvents(pb::ListEventsRequest {
                page_size: 1001,
                ..Default::default()
            }),
        ),
        invalid(
            "after_id beyond i64",
            "after_id",
            ListEvents(pb::ListEventsRequest {
                after_id: u64::MAX,
                ..Default::default()
            }),
        ),
    ]
}

#[tokio::test]
async fn malformed_requests_are_refused_naming_the_field_and_change_nothing() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    create_board(&mut client, "fixture").await;
    create_board(&mut client, "other").await;
    let task = create_on(&mut client, "fixture", "target").await;
    let child = create_child(&mut client, "fixture", "child", &[&task.id]).await;
    let foreign = create_on(&mut client, "other", "foreign").await;
    client
        .tasks
        .add_comment(pb::AddCommentRequest {
            claim_token: String::new(),
            task_id: task.id.clone(),
            author: "me".into(),
            body: "existing".into(),
        })
        .await
        .unwrap();
    let fixture = Fixture {
        task: task.id,
        child: child.id,
        foreign: foreign.id,
    };

    let before = snapshot(&mut client, &fixture).await;
    let table = cases(&fixture);
    let mut failures = refusal::run(&table, |call| send(client.clone(), call)).await;
    let after = snapshot(&mut client, &fixture).await;
    if after != before {
        failures.push(describe_change(&before, &after));
    }
    refusal::assert_none(&failures, &format!("{} malformed requests", table.len()));
}

/// A short account of what changed between two snapshots.
fn describe_change(before: &Snapshot, after: &Snapshot) -> String {
    let new_events: Vec<String> = after.events[before.events.len().min(after.events.len())..]
        .iter()
        .map(|e| format!("{} {} {}", e.id, e.kind, e.task_id))
        .collect();
    format!(
        "the database changed: boards equal {}, tasks {} -> {} (equal {}), comments {} -> {}, \
         new events {new_events:?}",
        before.boards == after.boards,
        before.tasks.len(),
        after.tasks.len(),
        before.tasks == after.tasks,
        before.comments.len(),
        after.comments.len(),
    )
}

#[tokio::test]
async fn malformed_requests_are_refused_the_same_way_over_the_unix_socket() {
    let service = spawn_service().await;
    let mut client = service.unix.clone();
    let events_before = all_events(&mut client).await;
    let cases = [
        invalid(
            "empty title",
            "title",
            Call::CreateTask(pb::CreateTaskRequest::default()),
        ),
        invalid(
            "slug with a space",
            "slug",
            Call::CreateBoard(pb::CreateBoardRequest {
                slug: "Bad Slug".into(),
                ..Default::default()
            }),
        ),
        invalid(
            "foreign page token",
            "page_token",
            Call::ListTasks(pb::ListTasksRequest {
                page_token: "xyz".into(),
                ..Default::default()
            }),
        ),
    ];
    let failures = refusal::run(&cases, |call| send(client.clone(), call)).await;
    refusal::assert_none(&failures, "over the Unix socket");
    assert_eq!(all_events(&mut client).await, events_before);
}

#[tokio::test]
async fn values_exactly_at_the_limits_are_accepted() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let slug = "a".repeat(64);
    let board = client
        .boards
        .create_board(pb::CreateBoardRequest {
            slug: slug.clone(),
            display_name: "d".repeat(200),
            metadata: metadata(64),
            default_assignee: "p".repeat(64),
            max_retries: 100,
            max_running: 0,
        })
        .await
        .expect("a board at every limit")
        .into_inner();
    assert_eq!(board.metadata.len(), 64);

    for (title, priority) in [("t".repeat(500), 1000), ("é".repeat(250), -1000)] {
        let request = pb::CreateTaskRequest {
            board: slug.clone(),
            title: title.clone(),
            body: "b".repeat(65536),
            priority,
            created_by: "c".repeat(128),
            tenant: "n".repeat(128),
            idempotency_key: format!("{priority:k<256}"),
            max_runtime_seconds: 604_800,
            max_retries: 100,
            required_capabilities: many(64, |i| format!("{i:0>64}")),
            target_machine: "m".repeat(128),
            ..Default::default()
        };
        let created = calls::create_with(&mut client, request).await;
        let task = created.task.unwrap();
        assert_eq!((task.title, task.priority), (title, priority));
        assert_eq!(task.required_capabilities.len(), 64);

        let comment = client
            .tasks
            .add_comment(pb::AddCommentRequest {
                claim_token: String::new(),
                task_id: task.id.clone(),
                author: "a".repeat(128),
                body: "c".repeat(65536),
            })
            .await
            .expect("a comment at the limit")
            .into_inner();
        assert_eq!(comment.body.len(), 65536);
        client
            .tasks
            .schedule_task(pb::ScheduleTaskRequest {
                id: task.id.clone(),
                delay_seconds: 31_536_000,
                actor: "a".repeat(128),
            })
            .await
            .expect("a delay of a year");
        client
            .tasks
            .get_task(pb::GetTaskRequest {
                id: task.id,
                recent_events: 1000,
            })
            .await
            .expect("1000 recent events");
    }
    let page = client
        .tasks
        .list_tasks(pb::ListTasksRequest {
            board: slug.clone(),
            statuses: vec![pb::TaskStatus::Scheduled.into()],
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("a page of 1000")
        .into_inner();
    assert_eq!(page.tasks.len(), 2);
    client
        .tasks
        .list_events(pb::ListEventsRequest {
            board: slug,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("a page of 1000 events");
}

#[tokio::test]
async fn a_request_over_the_message_size_limit_is_resource_exhausted() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let events_before = all_events(&mut client).await;
    // README's error codes: RESOURCE_EXHAUSTED for limits, message size included (4 MiB).
    let result = client
        .tasks
        .create_task(pb::CreateTaskRequest {
            title: "huge".into(),
            body: "x".repeat(4 * 1024 * 1024 + 1),
            ..Default::default()
        })
        .await;
    let status = result.expect_err("a message over 4 MiB is refused");
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "message: {:?}",
        status.message()
    );
    assert!(
        kanband_tests::calls::all_tasks(&mut client, "", ALL_STATUSES)
            .await
            .is_empty()
    );
    assert_eq!(all_events(&mut client).await, events_before);
}
