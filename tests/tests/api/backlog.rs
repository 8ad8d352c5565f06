//! The dispatcher beside a backlog no waiting session runs: the grants and their order are
//! those of the dispatch rules, whatever lies in the backlog, and a waiter still hears of
//! every task it can run (by assignee or by its board's default) the moment it is created.

use std::time::Duration;

use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::calls::{
    CODER, acquire, acquire_now, create_with, granted_task, new_task, open_session_with,
    session_request,
};
use kanband_tests::spawn_service;

use crate::support::clock::{join, spawn_acquire, until_waiting};

/// The profile the backlog is assigned to; no session runs it.
const NOBODY: &str = "nobody";

/// Creates a ready task.
async fn create(client: &mut Client, board: &str, assignee: &str, priority: i32) -> pb::Task {
    let request = pb::CreateTaskRequest {
        assignee: assignee.into(),
        priority,
        ..new_task(board, &format!("{assignee} {priority}"))
    };
    create_with(client, request).await.task.expect("task")
}

/// `count` ready tasks for [`NOBODY`] on `board`, at priorities from -2 to 7 (so they sit
/// before, between and after the others in dispatch order), created by ten concurrent callers.
async fn backlog(client: &Client, board: &str, count: i32) {
    let callers: Vec<_> = (0..10)
        .map(|caller| {
            let mut client = client.clone();
            let board = board.to_owned();
            tokio::spawn(async move {
                for i in (caller..count).step_by(10) {
                    create(&mut client, &board, NOBODY, i % 10 - 2).await;
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("backlog caller");
    }
}

/// A board whose unassigned tasks go to `default_assignee`.
async fn board_defaulting_to(client: &mut Client, slug: &str, default_assignee: &str) {
    client
        .boards
        .create_board(pb::CreateBoardRequest {
            slug: slug.into(),
            default_assignee: default_assignee.into(),
            ..Default::default()
        })
        .await
        .expect("CreateBoard");
}

/// Tasks created within the same millisecond tie on age; this keeps creation times apart.
async fn next_millisecond() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

#[tokio::test]
async fn grants_keep_dispatch_order_beside_a_backlog_of_500_tasks_nobody_runs() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    board_defaulting_to(&mut client, "ops", CODER).await;
    board_defaulting_to(&mut client, "docs", "writer").await;
    backlog(&client, "", 250).await;
    backlog(&client, "ops", 250).await;

    // What coder may run, on two boards, by assignee and by the board's default, in an order
    // that interleaves them; and what it may not: another profile, another board's default, a
    // capability it lacks.
    let mut expected = Vec::new();
    for (board, assignee, priority) in [
        ("", CODER, 0),
        ("ops", "", 5),
        ("", CODER, 5),
        ("ops", CODER, -1),
        ("", CODER, -1),
        ("ops", "", 0),
        ("", CODER, 5),
    ] {
        let task = create(&mut client, board, assignee, priority).await;
        expected.push((priority, task.id));
        next_millisecond().await;
    }
    create(&mut client, "", "writer", 9).await;
    create(&mut client, "docs", "", 9).await;
    let needs_gpu = pb::CreateTaskRequest {
        assignee: CODER.into(),
        priority: 9,
        required_capabilities: vec!["gpu".into()],
        ..new_task("", "needs a gpu")
    };
    create_with(&mut client, needs_gpu).await;
    // Priority first, then age (the list is in creation order, and the sort is stable).
    expected.sort_by_key(|(priority, _)| -priority);
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let session = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            slots: 8,
            ..session_request(CODER, 300_000)
        },
    )
    .await;
    let mut granted = Vec::new();
    for _ in 0..expected.len() {
        let grant = acquire_now(&mut client, &session.id).await;
        granted.push(granted_task(&grant).to_owned());
    }
    assert_eq!(granted, expected);
    assert_eq!(acquire(&mut client, &session.id, 0).await, None);
}

#[tokio::test]
async fn a_waiter_is_granted_each_new_task_it_runs_and_not_those_it_does_not() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    board_defaulting_to(&mut client, "ops", CODER).await;
    backlog(&client, "ops", 20).await;
    let session = open_session_with(&mut client, session_request(CODER, 300_000)).await;

    // By its board's default assignee, then by its own assignee.
    for assignee in ["", CODER] {
        let waiter = spawn_acquire(&client, &session.id, 30_000);
        until_waiting(&client, 1).await;
        create(&mut client, "ops", NOBODY, 9).await;
        create(&mut client, "", NOBODY, 9).await;
        assert!(!waiter.is_finished(), "no task for {NOBODY} is granted");
        let task = create(&mut client, "ops", assignee, 0).await;
        let grant = join(waiter).await.expect("Acquire").expect("a grant");
        assert_eq!(granted_task(&grant), task.id);
    }
}
