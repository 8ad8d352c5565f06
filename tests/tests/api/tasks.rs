//! `kanban.v1.Tasks` over real gRPC: creation, idempotency, reads and listings, edits, links,
//! comments, the operator transitions (block, unblock, schedule, promote, archive, reopen) and
//! the event log.

use std::time::Duration;

use kanband_gateway::Client;
use kanband_proto::pb::{self, BlockKind, TaskStatus};
use kanband_tests::calls::{
    ALL_STATUSES, MISSING_TASK, all_events, archive, block, code_of, create, create_board,
    create_child, create_on, create_with, detail, events_page, events_where, ids, kinds, new_task,
    refused, status_of, task, task_events, unblock, wait_for_status,
};
use kanband_tests::{spawn_service, spawn_service_in};
use tonic::{Code, Status};

use crate::support::refusal::assert_refused;

// ---------------------------------------------------------------------------------------------
// Helpers for the calls only this file makes.

async fn link(
    client: &mut Client,
    parent: &str,
    child: &str,
) -> Result<pb::LinkTasksResponse, Status> {
    client
        .tasks
        .link_tasks(pb::LinkTasksRequest {
            parent_id: parent.into(),
            child_id: child.into(),
            actor: "tester".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn unlink(
    client: &mut Client,
    parent: &str,
    child: &str,
) -> Result<pb::LinkTasksResponse, Status> {
    client
        .tasks
        .unlink_tasks(pb::UnlinkTasksRequest {
            parent_id: parent.into(),
            child_id: child.into(),
            actor: "tester".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn promote(client: &mut Client, id: &str) -> Result<pb::Task, Status> {
    client
        .tasks
        .promote_task(pb::PromoteTaskRequest {
            id: id.into(),
            actor: "tester".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn schedule(client: &mut Client, id: &str, delay_seconds: u64) -> pb::Task {
    client
        .tasks
        .schedule_task(pb::ScheduleTaskRequest {
            id: id.into(),
            delay_seconds,
            actor: "tester".into(),
        })
        .await
        .expect("ScheduleTask")
        .into_inner()
}

async fn assign(client: &mut Client, id: &str, assignee: &str) -> Result<pb::Task, Status> {
    client
        .tasks
        .assign_task(pb::AssignTaskRequest {
            id: id.into(),
            assignee: assignee.into(),
            actor: "tester".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn update(client: &mut Client, request: pb::UpdateTaskRequest) -> Result<pb::Task, Status> {
    client
        .tasks
        .update_task(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn comment(client: &mut Client, id: &str, body: &str) -> Result<pb::Comment, Status> {
    client
        .tasks
        .add_comment(pb::AddCommentRequest {
            claim_token: String::new(),
            task_id: id.into(),
            author: "reviewer".into(),
            body: body.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn list(client: &mut Client, request: pb::ListTasksRequest) -> pb::ListTasksResponse {
    client
        .tasks
        .list_tasks(request)
        .await
        .expect("ListTasks")
        .into_inner()
}

/// A refusal is FAILED_PRECONDITION and its message names the task's current status.
fn assert_refused_in(result: Result<pb::Task, Status>, status: &str) {
    assert_refused(
        &format!("refused in {status}"),
        result,
        Code::FailedPrecondition,
        status,
    );
}

/// The last event of a task.
async fn last_event(client: &mut Client, id: &str) -> pb::Event {
    task_events(client, id).await.pop().expect("an event")
}

// ---------------------------------------------------------------------------------------------
// Create, get and list.

#[tokio::test]
async fn tasks_are_created_read_and_listed_over_both_transports() {
    let service = spawn_service().await;
    for (name, mut client) in service.transports() {
        let board = format!("over-{name}");
        create_board(&mut client, &board).await;
        let created = create_on(&mut client, &board, &format!("task over {name}")).await;
        assert_eq!(created.board, board);
        assert_eq!(created.status(), TaskStatus::Ready);

        let got = detail(&mut client, &created.id).await;
        assert_eq!(got.task.as_ref(), Some(&created));
        assert_eq!(kinds(&got.recent_events), ["created"]);

        let listed = kanband_tests::calls::all_tasks(&mut client, &board, &[]).await;
        assert_eq!(listed, [created]);
    }
}

#[tokio::test]
async fn a_task_without_parents_starts_ready_with_a_created_event() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "write docs").await;

    assert!(
        created.id.starts_with("t_") && created.id.len() == 18,
        "{}",
        created.id
    );
    assert_eq!(created.board, "default", "an empty board means default");
    assert_eq!(created.status(), TaskStatus::Ready);
    assert_eq!(created.title, "write docs");
    assert!(created.created_at.is_some() && created.updated_at.is_some());
    assert!(created.started_at.is_none() && created.completed_at.is_none());
    assert_eq!(created.epoch, 0);
    assert_eq!(created.current_run_id, "");

    let events = task_events(&mut client, &created.id).await;
    assert_eq!(kinds(&events), ["created"]);
    assert_eq!(events[0].board, "default");
    assert_eq!(events[0].details["status"], "ready");
}

#[tokio::test]
async fn a_task_keeps_every_field_it_was_created_with() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let request = pb::CreateTaskRequest {
        body: "the long story".into(),
        assignee: "coder.v2".into(),
        priority: -17,
        created_by: "alice".into(),
        tenant: "acme".into(),
        workspace: Some(pb::Workspace {
            kind: pb::WorkspaceKind::Worktree.into(),
            path: "/src/repo".into(),
            branch: "feature/x".into(),
        }),
        max_runtime_seconds: 3600,
        max_retries: 9,
        required_capabilities: vec!["gpu:a100".into(), "docker".into(), "gpu:a100".into()],
        target_machine: "box-1".into(),
        worker_options: Some(pb::WorkerOptions {
            skills: vec!["rust".into(), "sql".into()],
            model: "m".into(),
            provider: "p".into(),
            reasoning_effort: "high".into(),
        }),
        ..new_task("", "full")
    };
    let created = create_with(&mut client, request.clone())
        .await
        .task
        .unwrap();
    assert_eq!(created.body, request.body);
    assert_eq!(created.assignee, "coder.v2");
    assert_eq!(created.priority, -17);
    assert_eq!(created.created_by, "alice");
    assert_eq!(created.tenant, "acme");
    assert_eq!(created.workspace, request.workspace);
    assert_eq!(created.max_runtime_seconds, 3600);
    assert_eq!(created.max_retries, 9);
    assert_eq!(
        created.required_capabilities,
        ["docker", "gpu:a100"],
        "sorted and unique"
    );
    assert_eq!(created.target_machine, "box-1");
    assert_eq!(created.worker_options, request.worker_options);
    assert_eq!(task(&mut client, &created.id).await, created);
}

#[tokio::test]
async fn a_task_with_an_unfinished_parent_starts_in_todo_and_is_linked_both_ways() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let parent = create(&mut client, "parent").await;
    let child = create_child(&mut client, "", "child", &[&parent.id]).await;
    assert_eq!(child.status(), TaskStatus::Todo);

    let child_detail = detail(&mut client, &child.id).await;
    assert_eq!(child_detail.parents, [parent.id.as_str()]);
    assert!(child_detail.children.is_empty());
    let parent_detail = detail(&mut client, &parent.id).await;
    assert_eq!(parent_detail.children, [child.id.as_str()]);
    assert!(parent_detail.parents.is_empty());
}

#[tokio::test]
async fn a_task_whose_parents_are_all_finished_starts_ready() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let parent = create(&mut client, "parent").await;
    archive(&mut client, &parent.id).await;
    let child = create_child(&mut client, "", "child", &[&parent.id]).await;
    assert_eq!(child.status(), TaskStatus::Ready);
    assert_eq!(detail(&mut client, &child.id).await.parents, [parent.id]);
}

#[tokio::test]
async fn a_task_starts_in_triage_or_blocked_when_asked() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    for want in [TaskStatus::Triage, TaskStatus::Blocked] {
        let request = pb::CreateTaskRequest {
            initial_status: want.into(),
            ..new_task("", "asked")
        };
        let created = create_with(&mut client, request).await.task.unwrap();
        assert_eq!(created.status(), want);
        assert_eq!(status_of(&mut client, &created.id).await, want);
    }
}

#[tokio::test]
async fn a_parent_on_another_board_is_refused_at_creation_and_nothing_is_created() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    create_board(&mut client, "other").await;
    let foreign = create_on(&mut client, "other", "foreign").await;
    let before = all_events(&mut client).await;
    let request = pb::CreateTaskRequest {
        parents: vec![foreign.id.clone()],
        ..new_task("", "child")
    };
    let status = refused(
        client.tasks.create_task(request).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("board"), "{}", status.message());
    assert!(
        kanband_tests::calls::all_tasks(&mut client, "default", ALL_STATUSES)
            .await
            .is_empty()
    );
    assert_eq!(all_events(&mut client).await, before);
}

#[tokio::test]
async fn get_task_returns_links_comments_no_runs_and_recent_events() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let parent = create(&mut client, "parent").await;
    let middle = create_child(&mut client, "", "middle", &[&parent.id]).await;
    let child = create_child(&mut client, "", "child", &[&middle.id]).await;
    let first = comment(&mut client, &middle.id, "first").await.unwrap();
    let second = comment(&mut client, &middle.id, "second").await.unwrap();

    let got = detail(&mut client, &middle.id).await;
    assert_eq!(got.task.unwrap().id, middle.id);
    assert_eq!(got.parents, [parent.id]);
    assert_eq!(got.children, [child.id]);
    assert_eq!(got.comments, [first, second]);
    assert!(got.runs.is_empty());
    assert_eq!(
        kinds(&got.recent_events),
        ["created", "linked", "commented", "commented"]
    );
    assert!(got.recent_events.iter().all(|e| e.task_id == middle.id));
}

#[tokio::test]
async fn get_task_returns_the_latest_events_oldest_first() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "chatty").await;
    for i in 0..25 {
        comment(&mut client, &created.id, &format!("comment {i}"))
            .await
            .unwrap();
    }
    let all = task_events(&mut client, &created.id).await;
    assert_eq!(all.len(), 26);

    let default = detail(&mut client, &created.id).await.recent_events;
    assert_eq!(default, all[6..], "0 means the latest 20");

    let three = client
        .tasks
        .get_task(pb::GetTaskRequest {
            id: created.id.clone(),
            recent_events: 3,
        })
        .await
        .unwrap()
        .into_inner()
        .recent_events;
    assert_eq!(three, all[23..]);
}

#[tokio::test]
async fn a_missing_task_is_not_found_and_named() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let result = client
        .tasks
        .get_task(pb::GetTaskRequest {
            id: MISSING_TASK.into(),
            recent_events: 0,
        })
        .await;
    let status = refused(result, Code::NotFound);
    assert!(
        status.message().contains(MISSING_TASK),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn list_tasks_filters_by_status_assignee_and_tenant() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let with =
        |title: &str, assignee: &str, tenant: &str, status: TaskStatus| pb::CreateTaskRequest {
            assignee: assignee.into(),
            tenant: tenant.into(),
            initial_status: status.into(),
            ..new_task("", title)
        };
    let a = create_with(&mut client, with("a", "ann", "t1", TaskStatus::Unspecified))
        .await
        .task
        .unwrap();
    let b = create_with(&mut client, with("b", "bob", "t1", TaskStatus::Triage))
        .await
        .task
        .unwrap();
    let c = create_with(&mut client, with("c", "ann", "t2", TaskStatus::Blocked))
        .await
        .task
        .unwrap();
    let d = create_with(&mut client, with("d", "", "", TaskStatus::Unspecified))
        .await
        .task
        .unwrap();

    let filtered = |statuses: &[TaskStatus], assignee: &str, tenant: &str| pb::ListTasksRequest {
        statuses: statuses.iter().map(|s| *s as i32).collect(),
        assignee: assignee.into(),
        tenant: tenant.into(),
        ..Default::default()
    };
    let listed = list(&mut client, filtered(&[TaskStatus::Ready], "", "")).await;
    assert_eq!(ids(&listed.tasks), [a.id.as_str(), d.id.as_str()]);
    let listed = list(
        &mut client,
        filtered(&[TaskStatus::Triage, TaskStatus::Blocked], "", ""),
    )
    .await;
    assert_eq!(ids(&listed.tasks), [b.id.as_str(), c.id.as_str()]);
    let listed = list(&mut client, filtered(&[], "ann", "")).await;
    assert_eq!(ids(&listed.tasks), [a.id.as_str(), c.id.as_str()]);
    let listed = list(&mut client, filtered(&[], "", "t1")).await;
    assert_eq!(ids(&listed.tasks), [a.id.as_str(), b.id.as_str()]);
    let listed = list(&mut client, filtered(&[TaskStatus::Blocked], "ann", "t2")).await;
    assert_eq!(ids(&listed.tasks), [c.id.as_str()]);
    let listed = list(&mut client, filtered(&[TaskStatus::Ready], "bob", "")).await;
    assert!(listed.tasks.is_empty());
    assert!(listed.next_page_token.is_empty());
}

#[tokio::test]
async fn list_tasks_leaves_out_archived_tasks_unless_asked() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let kept = create(&mut client, "kept").await;
    let gone = create(&mut client, "gone").await;
    archive(&mut client, &gone.id).await;

    assert_eq!(
        ids(&kanband_tests::calls::all_tasks(&mut client, "", &[]).await),
        [kept.id.as_str()]
    );
    assert_eq!(
        ids(&kanband_tests::calls::all_tasks(&mut client, "", &[TaskStatus::Archived]).await),
        [gone.id.as_str()]
    );
    assert_eq!(
        ids(&kanband_tests::calls::all_tasks(&mut client, "", ALL_STATUSES).await),
        [kept.id.as_str(), gone.id.as_str()]
    );
}

#[tokio::test]
async fn list_tasks_pages_walk_every_task_once_in_creation_order() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let mut created = Vec::new();
    for i in 0..23 {
        created.push(create(&mut client, &format!("task {i:02}")).await.id);
    }
    for page_size in [1, 5, 23, 0] {
        let mut seen = Vec::new();
        let mut page_token = String::new();
        let mut pages = 0;
        loop {
            let page = list(
                &mut client,
                pb::ListTasksRequest {
                    page_size,
                    page_token,
                    ..Default::default()
                },
            )
            .await;
            pages += 1;
            let limit = if page_size == 0 { 100 } else { page_size };
            assert!(page.tasks.len() <= limit as usize);
            seen.extend(page.tasks.into_iter().map(|t| t.id));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
            assert!(pages <= 23, "paging does not end");
        }
        assert_eq!(seen, created, "page_size {page_size}");
        let expected_pages = if page_size == 0 {
            1
        } else {
            23usize.div_ceil(page_size as usize)
        };
        assert_eq!(
            pages, expected_pages,
            "no empty trailing page at page_size {page_size}"
        );
    }
}

#[tokio::test]
async fn list_tasks_pages_skip_filtered_out_tasks() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let mut triage = Vec::new();
    for i in 0..10 {
        let request = pb::CreateTaskRequest {
            initial_status: if i % 2 == 0 {
                TaskStatus::Triage
            } else {
                TaskStatus::Unspecified
            }
            .into(),
            ..new_task("", &format!("task {i}"))
        };
        let created = create_with(&mut client, request).await.task.unwrap();
        if i % 2 == 0 {
            triage.push(created.id);
        }
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = list(
            &mut client,
            pb::ListTasksRequest {
                statuses: vec![TaskStatus::Triage.into()],
                page_size: 2,
                page_token,
                ..Default::default()
            },
        )
        .await;
        assert!(page.tasks.iter().all(|t| t.status() == TaskStatus::Triage));
        seen.extend(page.tasks.into_iter().map(|t| t.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, triage);
}

#[tokio::test]
async fn list_tasks_of_a_missing_board_is_not_found() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let result = client
        .tasks
        .list_tasks(pb::ListTasksRequest {
            board: "nope".into(),
            ..Default::default()
        })
        .await;
    let status = refused(result, Code::NotFound);
    assert!(status.message().contains("nope"));
}

// ---------------------------------------------------------------------------------------------
// Idempotency keys.

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_task_and_changes_nothing() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let request = pb::CreateTaskRequest {
        idempotency_key: "job-42".into(),
        ..new_task("", "first")
    };
    let first = create_with(&mut client, request.clone()).await;
    assert!(first.created);
    let first = first.task.unwrap();
    assert_eq!(first.idempotency_key, "job-42");
    let events_before = all_events(&mut client).await;

    let repeat = create_with(
        &mut client,
        pb::CreateTaskRequest {
            title: "second".into(),
            priority: 5,
            ..request
        },
    )
    .await;
    assert!(!repeat.created);
    assert_eq!(repeat.task.unwrap(), first, "the first task, unchanged");
    assert_eq!(all_events(&mut client).await, events_before, "no event");
    assert_eq!(
        kanband_tests::calls::all_tasks(&mut client, "", ALL_STATUSES).await,
        [first]
    );
}

#[tokio::test]
async fn another_board_may_reuse_an_idempotency_key() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    create_board(&mut client, "other").await;
    let keyed = |board: &str| pb::CreateTaskRequest {
        idempotency_key: "shared".into(),
        ..new_task(board, "keyed")
    };
    let here = create_with(&mut client, keyed("")).await;
    let there = create_with(&mut client, keyed("other")).await;
    assert!(here.created && there.created);
    assert_ne!(here.task.unwrap().id, there.task.unwrap().id);
}

#[tokio::test]
async fn archiving_the_first_task_frees_its_idempotency_key() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let request = pb::CreateTaskRequest {
        idempotency_key: "once".into(),
        ..new_task("", "keyed")
    };
    let first = create_with(&mut client, request.clone())
        .await
        .task
        .unwrap();
    archive(&mut client, &first.id).await;

    let second = create_with(&mut client, request.clone()).await;
    assert!(second.created);
    let second = second.task.unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(second.status(), TaskStatus::Ready);

    let third = create_with(&mut client, request).await;
    assert!(!third.created);
    assert_eq!(
        third.task.unwrap().id,
        second.id,
        "the key now belongs to the second"
    );
}

#[tokio::test]
async fn concurrent_creates_with_one_key_make_exactly_one_task() {
    let service = spawn_service().await;
    let mut handles = Vec::new();
    for i in 0..16 {
        let mut client = if i % 2 == 0 {
            service.tcp.clone()
        } else {
            service.unix.clone()
        };
        handles.push(tokio::spawn(async move {
            let request = pb::CreateTaskRequest {
                idempotency_key: "race".into(),
                ..new_task("", &format!("racer {i}"))
            };
            create_with(&mut client, request).await
        }));
    }
    let mut responses = Vec::new();
    for handle in handles {
        responses.push(handle.await.unwrap());
    }
    assert_eq!(responses.iter().filter(|r| r.created).count(), 1);
    let id = &responses[0].task.as_ref().unwrap().id;
    assert!(responses.iter().all(|r| &r.task.as_ref().unwrap().id == id));
    let mut client = service.tcp.clone();
    assert_eq!(
        kanband_tests::calls::all_tasks(&mut client, "", ALL_STATUSES)
            .await
            .len(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Update and assign.

#[tokio::test]
async fn update_task_changes_the_given_fields_and_records_an_updated_event() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let before = create_with(
        &mut client,
        pb::CreateTaskRequest {
            body: "old body".into(),
            tenant: "old".into(),
            required_capabilities: vec!["x".into()],
            ..new_task("", "old title")
        },
    )
    .await
    .task
    .unwrap();

    let after = update(
        &mut client,
        pb::UpdateTaskRequest {
            id: before.id.clone(),
            actor: "editor".into(),
            title: Some("new title".into()),
            priority: Some(300),
            required_capabilities: Some(pb::Capabilities {
                values: vec!["b".into(), "a".into()],
            }),
            max_runtime_seconds: Some(60),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(after.title, "new title");
    assert_eq!(after.priority, 300);
    assert_eq!(after.required_capabilities, ["a", "b"]);
    assert_eq!(after.max_runtime_seconds, 60);
    assert_eq!(after.body, "old body", "unset fields keep their value");
    assert_eq!(after.tenant, "old");
    assert_eq!(after.status(), before.status());
    assert_eq!(task(&mut client, &before.id).await, after);

    let event = last_event(&mut client, &before.id).await;
    assert_eq!(event.kind, "updated");
    assert_eq!(event.actor, "editor");
    assert_eq!(
        event.details["fields"],
        "title,priority,max_runtime_seconds,required_capabilities"
    );

    let cleared = update(
        &mut client,
        pb::UpdateTaskRequest {
            id: before.id.clone(),
            body: Some(String::new()),
            required_capabilities: Some(pb::Capabilities { values: vec![] }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(cleared.body, "");
    assert!(cleared.required_capabilities.is_empty());
}

#[tokio::test]
async fn updating_an_archived_task_is_refused_naming_its_status() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "done with").await;
    archive(&mut client, &created.id).await;
    let events_before = all_events(&mut client).await;

    let result = update(
        &mut client,
        pb::UpdateTaskRequest {
            id: created.id.clone(),
            title: Some("too late".into()),
            ..Default::default()
        },
    )
    .await;
    assert_refused_in(result, "archived");
    assert_eq!(task(&mut client, &created.id).await.title, "done with");
    assert_eq!(all_events(&mut client).await, events_before);
}

#[tokio::test]
async fn assign_task_changes_only_the_assignee_and_records_an_assigned_event() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    for initial in [
        TaskStatus::Unspecified,
        TaskStatus::Triage,
        TaskStatus::Blocked,
    ] {
        let before = create_with(
            &mut client,
            pb::CreateTaskRequest {
                assignee: "first".into(),
                initial_status: initial.into(),
                ..new_task("", "assign me")
            },
        )
        .await
        .task
        .unwrap();

        let after = assign(&mut client, &before.id, "second").await.unwrap();
        assert_eq!(after.assignee, "second");
        let expected = pb::Task {
            assignee: "second".into(),
            updated_at: after.updated_at,
            ..before.clone()
        };
        assert_eq!(after, expected, "nothing else changes");

        let event = last_event(&mut client, &before.id).await;
        assert_eq!(event.kind, "assigned");
        assert_eq!(event.details["from"], "first");
        assert_eq!(event.details["to"], "second");

        let unassigned = assign(&mut client, &before.id, "").await.unwrap();
        assert_eq!(unassigned.assignee, "");
        assert_eq!(unassigned.status(), before.status());
    }
}

#[tokio::test]
async fn assigning_an_archived_task_is_refused_naming_its_status() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "gone").await;
    archive(&mut client, &created.id).await;
    assert_refused_in(
        assign(&mut client, &created.id, "someone").await,
        "archived",
    );
}

// ---------------------------------------------------------------------------------------------
// Links.

#[tokio::test]
async fn linking_an_unfinished_parent_sends_a_ready_child_back_to_todo() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let parent = create(&mut client, "parent").await;
    let child = create(&mut client, "child").await;
    assert_eq!(child.status(), TaskStatus::Ready);

    let linked = link(&mut client, &parent.id, &child.id).await.unwrap();
    assert_eq!(linked.child.unwrap().status(), TaskStatus::Todo);
    assert_eq!(linked.parent.unwrap().status(), TaskStatus::Ready);
    assert_eq!(status_of(&mut client, &child.id).await, TaskStatus::Todo);
    let events = task_events(&mut client, &child.id).await;
    assert_eq!(kinds(&events), ["created", "linked", "demoted"]);
    assert_eq!(events[1].details["parent"], parent.id);
    assert_eq!(events[2].details["from"], "ready");
    assert_eq!(events[2].details["to"], "todo");
}

#[tokio::test]
async fn linking_a_finished_parent_leaves_a_ready_child_ready() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let parent = create(&mut client, "parent").await;
    archive(&mut client, &parent.id).await;
    let child = create(&mut client, "child").await;
    let linked = link(&mut client, &parent.id, &child.id).await.unwrap();
    assert_eq!(linked.child.unwrap().status(), TaskStatus::Ready);
}

#[tokio::test]
async fn a_task_cannot_be_its_own_parent() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let lonely = create(&mut client, "lonely").await;
    assert_refused(
        "parent_id",
        link(&mut client, &lonely.id, &lonely.id).await,
        Code::InvalidArgument,
        "parent_id",
    );
    assert!(detail(&mut client, &lonely.id).await.parents.is_empty());
}

#[tokio::test]
async fn a_link_that_would_form_a_cycle_is_failed_precondition() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let a = create(&mut client, "a").await;
    let b = create_child(&mut client, "", "b", &[&a.id]).await;
    let c = create_child(&mut client, "", "c", &[&b.id]).await;
    let events_before = all_events(&mut client).await;

    for (parent, child) in [(&c, &a), (&b, &a), (&c, &b)] {
        let status = refused(
            link(&mut client, &parent.id, &child.id).await,
            Code::FailedPrecondition,
        );
        assert!(status.message().contains("cycle"), "{}", status.message());
    }
    assert_eq!(all_events(&mut client).await, events_before);
    assert!(detail(&mut client, &a.id).await.parents.is_empty());
}

#[tokio::test]
async fn a_duplicate_link_is_already_exists() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let parent = create(&mut client, "parent").await;
    let child = create_child(&mut client, "", "child", &[&parent.id]).await;
    refused(
        link(&mut client, &parent.id, &child.id).await,
        Code::AlreadyExists,
    );
    assert_eq!(detail(&mut client, &child.id).await.parents, [parent.id]);
}

#[tokio::test]
async fn a_link_across_boards_is_invalid_argument() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    create_board(&mut client, "other").await;
    let here = create(&mut client, "here").await;
    let there = create_on(&mut client, "other", "there").await;
    for (parent, child) in [(&here, &there), (&there, &here)] {
        let status = refused(
            link(&mut client, &parent.id, &child.id).await,
            Code::InvalidArgument,
        );
        assert!(status.message().contains("board"), "{}", status.message());
    }
    assert_eq!(status_of(&mut client, &there.id).await, TaskStatus::Ready);
}

#[tokio::test]
async fn a_finished_task_cannot_get_a_new_parent() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let parent = create(&mut client, "parent").await;
    let child = create(&mut client, "child").await;
    archive(&mut client, &child.id).await;
    let events_before = all_events(&mut client).await;
    let result = link(&mut client, &parent.id, &child.id).await;
    let status = refused(result, Code::FailedPrecondition);
    assert!(
        status.message().contains("archived"),
        "{}",
        status.message()
    );
    assert!(detail(&mut client, &child.id).await.parents.is_empty());
    assert_eq!(all_events(&mut client).await, events_before);
}

#[tokio::test]
async fn archiving_the_last_parent_promotes_the_todo_child_at_once() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let first = create(&mut client, "first").await;
    let second = create(&mut client, "second").await;
    let child = create_child(&mut client, "", "child", &[&first.id, &second.id]).await;
    assert_eq!(child.status(), TaskStatus::Todo);

    archive(&mut client, &first.id).await;
    assert_eq!(
        status_of(&mut client, &child.id).await,
        TaskStatus::Todo,
        "one parent is still unfinished"
    );

    archive(&mut client, &second.id).await;
    assert_eq!(status_of(&mut client, &child.id).await, TaskStatus::Ready);
    let event = last_event(&mut client, &child.id).await;
    assert_eq!(event.kind, "promoted");
    assert_eq!(event.details["from"], "todo");
    assert_eq!(event.details["to"], "ready");
}

#[tokio::test]
async fn unlinking_the_last_unfinished_parent_promotes_the_child_at_once() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let first = create(&mut client, "first").await;
    let second = create(&mut client, "second").await;
    let child = create_child(&mut client, "", "child", &[&first.id, &second.id]).await;

    let response = unlink(&mut client, &first.id, &child.id).await.unwrap();
    assert_eq!(response.child.unwrap().status(), TaskStatus::Todo);
    assert_eq!(
        detail(&mut client, &child.id).await.parents,
        [second.id.as_str()]
    );
    assert!(detail(&mut client, &first.id).await.children.is_empty());

    let response = unlink(&mut client, &second.id, &child.id).await.unwrap();
    assert_eq!(response.child.unwrap().status(), TaskStatus::Ready);
    assert_eq!(status_of(&mut client, &child.id).await, TaskStatus::Ready);
    let events = task_events(&mut client, &child.id).await;
    let tail = &kinds(&events)[events.len() - 3..];
    assert_eq!(tail, ["unlinked", "unlinked", "promoted"]);
}

#[tokio::test]
async fn unlinking_a_link_that_does_not_exist_is_not_found() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let a = create(&mut client, "a").await;
    let b = create(&mut client, "b").await;
    refused(unlink(&mut client, &a.id, &b.id).await, Code::NotFound);
    refused(
        unlink(&mut client, MISSING_TASK, &b.id).await,
        Code::NotFound,
    );
}

// ---------------------------------------------------------------------------------------------
// Comments.

#[tokio::test]
async fn comments_are_added_and_listed_oldest_first_in_pages() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let target = create(&mut client, "discussed").await;
    let other = create(&mut client, "elsewhere").await;
    let mut added = Vec::new();
    for i in 0..5 {
        let c = comment(&mut client, &target.id, &format!("comment {i}"))
            .await
            .unwrap();
        assert_eq!(c.task_id, target.id);
        assert_eq!(c.author, "reviewer");
        assert_eq!(c.body, format!("comment {i}"));
        assert!(c.created_at.is_some());
        added.push(c);
        comment(&mut client, &other.id, "noise").await.unwrap();
    }
    assert!(added.windows(2).all(|w| w[0].id < w[1].id), "ids increase");

    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .tasks
            .list_comments(pb::ListCommentsRequest {
                task_id: target.id.clone(),
                page_size: 2,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.comments.len() <= 2);
        seen.extend(page.comments);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, added);
    assert_eq!(pages, 3);

    let event = last_event(&mut client, &target.id).await;
    assert_eq!(event.kind, "commented");
    assert_eq!(event.actor, "reviewer");
}

#[tokio::test]
async fn a_blank_comment_is_refused() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let target = create(&mut client, "quiet").await;
    for body in ["", "  \n\t "] {
        assert_refused(
            "body",
            comment(&mut client, &target.id, body).await,
            Code::InvalidArgument,
            "body",
        );
    }
    assert!(detail(&mut client, &target.id).await.comments.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Block and unblock.

#[tokio::test]
async fn a_dependency_block_sends_the_task_to_todo() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "waits").await;
    let blocked = block(&mut client, &created.id, BlockKind::Dependency).await;
    assert_eq!(blocked.status(), TaskStatus::Todo);
    assert_eq!(blocked.block_kind(), BlockKind::Dependency);
    assert_eq!(blocked.block_reason, "blocked as Dependency");
    let event = last_event(&mut client, &created.id).await;
    assert_eq!(event.kind, "blocked");
    assert_eq!(event.details["to"], "todo");
}

#[tokio::test]
async fn a_needs_input_block_sends_the_task_to_blocked() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "asks").await;
    let blocked = block(&mut client, &created.id, BlockKind::NeedsInput).await;
    assert_eq!(blocked.status(), TaskStatus::Blocked);
    assert_eq!(blocked.block_kind(), BlockKind::NeedsInput);
    assert_eq!(blocked.block_recurrences, 0);
    assert_eq!(
        status_of(&mut client, &created.id).await,
        TaskStatus::Blocked
    );
}

#[tokio::test]
async fn the_same_block_kind_three_times_in_a_row_goes_to_triage_with_a_loop_event() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "loops").await;

    let first = block(&mut client, &created.id, BlockKind::NeedsInput).await;
    assert_eq!(
        (first.status(), first.block_recurrences),
        (TaskStatus::Blocked, 0)
    );
    assert_eq!(
        unblock(&mut client, &created.id).await.status(),
        TaskStatus::Ready
    );

    let second = block(&mut client, &created.id, BlockKind::NeedsInput).await;
    assert_eq!(
        (second.status(), second.block_recurrences),
        (TaskStatus::Blocked, 1)
    );
    unblock(&mut client, &created.id).await;

    let third = block(&mut client, &created.id, BlockKind::NeedsInput).await;
    assert_eq!(
        (third.status(), third.block_recurrences),
        (TaskStatus::Triage, 2)
    );

    let events = task_events(&mut client, &created.id).await;
    assert_eq!(
        kinds(&events),
        [
            "created",
            "blocked",
            "unblocked",
            "blocked",
            "unblocked",
            "blocked",
            "block_loop_detected"
        ]
    );
    let detected = events.last().unwrap();
    assert_eq!(detected.details["kind"], "needs_input");
    assert_eq!(detected.details["recurrences"], "2");
}

#[tokio::test]
async fn a_different_block_kind_starts_counting_again() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "varied").await;
    block(&mut client, &created.id, BlockKind::NeedsInput).await;
    unblock(&mut client, &created.id).await;
    block(&mut client, &created.id, BlockKind::NeedsInput).await;
    unblock(&mut client, &created.id).await;
    let other = block(&mut client, &created.id, BlockKind::Transient).await;
    assert_eq!(
        (other.status(), other.block_recurrences),
        (TaskStatus::Blocked, 0)
    );
    let kinds_seen = kinds(&task_events(&mut client, &created.id).await)
        .into_iter()
        .filter(|k| *k == "block_loop_detected")
        .count();
    assert_eq!(kinds_seen, 0);
}

#[tokio::test]
async fn unblock_is_refused_unless_blocked_and_goes_to_todo_under_an_unfinished_parent() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let ready = create(&mut client, "ready").await;
    let result = client
        .tasks
        .unblock_task(pb::UnblockTaskRequest {
            id: ready.id.clone(),
            actor: String::new(),
        })
        .await
        .map(tonic::Response::into_inner);
    assert_refused_in(result, "ready");

    let child = create_child(&mut client, "", "child", &[&ready.id]).await;
    let blocked = block(&mut client, &child.id, BlockKind::Capability).await;
    assert_eq!(blocked.status(), TaskStatus::Blocked);
    let unblocked = unblock(&mut client, &child.id).await;
    assert_eq!(
        unblocked.status(),
        TaskStatus::Todo,
        "its parent is unfinished"
    );
    assert_eq!(unblocked.consecutive_failures, 0);
}

#[tokio::test]
async fn blocking_an_archived_task_is_refused_naming_its_status() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "gone").await;
    archive(&mut client, &created.id).await;
    let result = client
        .tasks
        .block_task(pb::BlockTaskRequest {
            id: created.id.clone(),
            kind: BlockKind::NeedsInput.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner);
    assert_refused_in(result, "archived");
}

// ---------------------------------------------------------------------------------------------
// Schedule and promote.

#[tokio::test]
async fn schedule_without_a_delay_parks_the_task_until_promoted() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "later").await;
    let parked = schedule(&mut client, &created.id, 0).await;
    assert_eq!(parked.status(), TaskStatus::Scheduled);
    assert!(parked.scheduled_until.is_none());
    assert_eq!(task(&mut client, &created.id).await, parked);

    let promoted = promote(&mut client, &created.id).await.unwrap();
    assert_eq!(promoted.status(), TaskStatus::Ready);
    let events = task_events(&mut client, &created.id).await;
    assert_eq!(kinds(&events), ["created", "scheduled", "promoted"]);
}

#[tokio::test]
async fn schedule_with_a_delay_makes_the_task_ready_by_itself() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "soon").await;
    let parked = schedule(&mut client, &created.id, 1).await;
    assert_eq!(parked.status(), TaskStatus::Scheduled);
    let until = parked.scheduled_until.expect("a wake-up time");
    let created_at = created.created_at.unwrap();
    assert!(
        until.seconds >= created_at.seconds,
        "{until:?} after {created_at:?}"
    );

    let woke = wait_for_status(
        &mut client,
        &created.id,
        TaskStatus::Ready,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        woke.scheduled_until.is_none(),
        "the wake-up time is cleared"
    );
    let event = last_event(&mut client, &created.id).await;
    assert_eq!(event.kind, "woke");
    assert_eq!(event.actor, "kanband");
}

#[tokio::test]
async fn a_scheduled_child_of_an_unfinished_parent_wakes_to_todo() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let parent = create(&mut client, "parent").await;
    let child = create_child(&mut client, "", "child", &[&parent.id]).await;
    schedule(&mut client, &child.id, 1).await;
    wait_for_status(
        &mut client,
        &child.id,
        TaskStatus::Todo,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(last_event(&mut client, &child.id).await.kind, "woke");
}

#[tokio::test]
async fn a_scheduled_wakeup_survives_a_restart() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "after restart").await;
    schedule(&mut client, &created.id, 1).await;
    drop(client);
    let dir = service.stop().await;

    let service = spawn_service_in(dir).await;
    let mut client = service.unix.clone();
    wait_for_status(
        &mut client,
        &created.id,
        TaskStatus::Ready,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(last_event(&mut client, &created.id).await.kind, "woke");
}

#[tokio::test]
async fn promote_moves_a_triage_task_to_ready() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create_with(
        &mut client,
        pb::CreateTaskRequest {
            initial_status: TaskStatus::Triage.into(),
            ..new_task("", "look at me")
        },
    )
    .await
    .task
    .unwrap();
    let promoted = promote(&mut client, &created.id).await.unwrap();
    assert_eq!(promoted.status(), TaskStatus::Ready);
    let event = last_event(&mut client, &created.id).await;
    assert_eq!(event.kind, "promoted");
    assert_eq!(event.actor, "tester");
    assert_eq!(event.details["from"], "triage");
}

#[tokio::test]
async fn promote_refuses_a_todo_task_whose_parent_is_unfinished() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let parent = create(&mut client, "parent").await;
    let child = create_child(&mut client, "", "child", &[&parent.id]).await;
    assert_refused_in(promote(&mut client, &child.id).await, "todo");
    assert_eq!(status_of(&mut client, &child.id).await, TaskStatus::Todo);
}

#[tokio::test]
async fn promote_refuses_ready_and_blocked_tasks() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let ready = create(&mut client, "ready").await;
    assert_refused_in(promote(&mut client, &ready.id).await, "ready");
    block(&mut client, &ready.id, BlockKind::NeedsInput).await;
    assert_refused_in(promote(&mut client, &ready.id).await, "blocked");
}

#[tokio::test]
async fn promote_sends_a_scheduled_task_with_an_unfinished_parent_to_todo() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let parent = create(&mut client, "parent").await;
    let child = create_child(&mut client, "", "child", &[&parent.id]).await;
    schedule(&mut client, &child.id, 0).await;
    let promoted = promote(&mut client, &child.id).await.unwrap();
    assert_eq!(promoted.status(), TaskStatus::Todo);
}

// ---------------------------------------------------------------------------------------------
// Archive and reopen.

#[tokio::test]
async fn archive_task_archives_once_and_then_refuses() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "bye").await;
    let archived = archive(&mut client, &created.id).await;
    assert_eq!(archived.status(), TaskStatus::Archived);
    let event = last_event(&mut client, &created.id).await;
    assert_eq!(event.kind, "archived");
    assert_eq!(event.details["from"], "ready");

    let again = client
        .tasks
        .archive_task(pb::ArchiveTaskRequest {
            id: created.id.clone(),
            actor: String::new(),
            reason: String::new(),
        })
        .await
        .map(tonic::Response::into_inner);
    assert_refused_in(again, "archived");
}

#[tokio::test]
async fn reopen_review_is_refused_from_ready() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = create(&mut client, "not done").await;
    let result = client
        .tasks
        .reopen_review(pb::ReopenReviewRequest {
            id: created.id.clone(),
            actor: "tester".into(),
        })
        .await
        .map(tonic::Response::into_inner);
    assert_refused_in(result, "ready");
    assert_eq!(status_of(&mut client, &created.id).await, TaskStatus::Ready);
}

// ---------------------------------------------------------------------------------------------
// The event log.

#[tokio::test]
async fn list_events_pages_with_after_id() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    for i in 0..7 {
        create(&mut client, &format!("task {i}")).await;
    }
    let everything = all_events(&mut client).await;
    assert_eq!(everything.len(), 7);

    let mut seen = Vec::new();
    let mut after_id = 0;
    loop {
        let page = events_page(
            &mut client,
            pb::ListEventsRequest {
                after_id,
                page_size: 3,
                ..Default::default()
            },
        )
        .await;
        assert!(page.events.len() <= 3);
        if let Some(last) = page.events.last() {
            assert_eq!(page.next_after_id, last.id);
        } else {
            assert_eq!(
                page.next_after_id, after_id,
                "nothing matched keeps after_id"
            );
            break;
        }
        after_id = page.next_after_id;
        seen.extend(page.events);
    }
    assert_eq!(seen, everything);

    let tail = events_page(
        &mut client,
        pb::ListEventsRequest {
            after_id: everything[4].id,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(tail.events, everything[5..]);
}

#[tokio::test]
async fn list_events_filters_by_board_and_task() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    create_board(&mut client, "other").await;
    let here = create(&mut client, "here").await;
    let there = create_on(&mut client, "other", "there").await;
    comment(&mut client, &here.id, "hi").await.unwrap();
    comment(&mut client, &there.id, "ho").await.unwrap();

    let on_default = events_where(&mut client, "default", "").await;
    assert_eq!(kinds(&on_default), ["created", "commented"]);
    assert!(
        on_default
            .iter()
            .all(|e| e.board == "default" && e.task_id == here.id)
    );

    let on_other = events_where(&mut client, "other", "").await;
    assert_eq!(kinds(&on_other), ["board_created", "created", "commented"]);
    assert!(on_other.iter().all(|e| e.board == "other"));

    let of_there = events_where(&mut client, "", &there.id).await;
    assert_eq!(kinds(&of_there), ["created", "commented"]);
    assert!(
        events_where(&mut client, "default", &there.id)
            .await
            .is_empty()
    );
    // A task kanband never had is NOT_FOUND (see events.rs).
}

#[tokio::test]
async fn event_ids_increase_by_one_across_the_whole_log_even_after_refusals() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    create_board(&mut client, "other").await;
    let a = create(&mut client, "a").await;
    let b = create_child(&mut client, "", "b", &[&a.id]).await;
    // Refused requests in between must not burn ids.
    assert_eq!(
        code_of(&link(&mut client, &b.id, &a.id).await),
        Code::FailedPrecondition
    );
    assert_eq!(
        code_of(&promote(&mut client, &b.id).await),
        Code::FailedPrecondition
    );
    let c = create_on(&mut client, "other", "c").await;
    archive(&mut client, &c.id).await;
    assert_eq!(
        code_of(&link(&mut client, &a.id, &c.id).await),
        Code::InvalidArgument
    );
    block(&mut client, &a.id, BlockKind::NeedsInput).await;
    unblock(&mut client, &a.id).await;
    schedule(&mut client, &b.id, 0).await;
    archive(&mut client, &a.id).await;
    client
        .boards
        .reset_board(pb::ResetBoardRequest {
            slug: "other".into(),
            actor: String::new(),
        })
        .await
        .unwrap();
    create(&mut client, "d").await;

    let events = all_events(&mut client).await;
    let event_ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(event_ids, expected, "{:?}", kinds(&events));
    assert!(events.iter().all(|e| e.created_at.is_some()));
}
