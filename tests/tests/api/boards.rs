//! `kanban.v1.Boards` over real gRPC: create, get, list, update, archive and reset.

use std::collections::HashMap;

use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::calls;
use kanband_tests::calls::{
    ALL_STATUSES, all_events, code_of, create_board, create_on, create_with, events_where, ids,
    kinds, new_task, refused,
};
use kanband_tests::spawn_service;
use tonic::Code;

async fn get_board(client: &mut Client, slug: &str) -> pb::Board {
    client
        .boards
        .get_board(pb::GetBoardRequest { slug: slug.into() })
        .await
        .expect("GetBoard")
        .into_inner()
}

async fn list_boards(client: &mut Client, include_archived: bool) -> Vec<String> {
    client
        .boards
        .list_boards(pb::ListBoardsRequest { include_archived })
        .await
        .expect("ListBoards")
        .into_inner()
        .boards
        .into_iter()
        .map(|b| b.slug)
        .collect()
}

async fn archive_board(client: &mut Client, slug: &str) -> Result<pb::Board, tonic::Status> {
    client
        .boards
        .archive_board(pb::ArchiveBoardRequest {
            slug: slug.into(),
            actor: "tester".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn reset_board(client: &mut Client, slug: &str) -> pb::ResetBoardResponse {
    client
        .boards
        .reset_board(pb::ResetBoardRequest {
            slug: slug.into(),
            actor: "tester".into(),
        })
        .await
        .expect("ResetBoard")
        .into_inner()
}

async fn update_board(client: &mut Client, request: pb::UpdateBoardRequest) -> pb::Board {
    client
        .boards
        .update_board(request)
        .await
        .expect("UpdateBoard")
        .into_inner()
}

fn metadata(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn the_default_board_exists_and_cannot_be_archived() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();

    let board = get_board(&mut client, "default").await;
    assert_eq!(board.slug, "default");
    assert!(!board.archived);
    assert_eq!(list_boards(&mut client, false).await, ["default"]);

    let status = refused(
        archive_board(&mut client, "default").await,
        Code::FailedPrecondition,
    );
    assert!(status.message().contains("default"), "{}", status.message());
    assert!(!get_board(&mut client, "default").await.archived);
}

#[tokio::test]
async fn boards_are_created_read_and_listed_over_both_transports() {
    let service = spawn_service().await;
    for (name, mut client) in service.transports() {
        let slug = format!("over-{name}");
        let created = create_board(&mut client, &slug).await;
        assert_eq!(created.slug, slug);
        assert_eq!(
            created.display_name, slug,
            "display name defaults to the slug"
        );
        assert!(!created.archived);
        assert!(created.created_at.is_some() && created.updated_at.is_some());

        assert_eq!(get_board(&mut client, &slug).await, created);
        assert!(list_boards(&mut client, false).await.contains(&slug));
    }
    let mut client = service.unix.clone();
    assert_eq!(
        list_boards(&mut client, false).await,
        ["default", "over-tcp", "over-unix"]
    );
}

#[tokio::test]
async fn create_board_keeps_every_setting() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let created = client
        .boards
        .create_board(pb::CreateBoardRequest {
            slug: "team-a_1".into(),
            display_name: "Team A".into(),
            metadata: metadata(&[("owner", "ops"), ("tier", "1")]),
            default_assignee: "coder.v2".into(),
            max_retries: 5,
            max_running: 3,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.display_name, "Team A");
    assert_eq!(
        created.metadata,
        metadata(&[("owner", "ops"), ("tier", "1")])
    );
    assert_eq!(created.default_assignee, "coder.v2");
    assert_eq!((created.max_retries, created.max_running), (5, 3));
    assert_eq!(get_board(&mut client, "team-a_1").await, created);

    let events = events_where(&mut client, "team-a_1", "").await;
    assert_eq!(kinds(&events), ["board_created"]);
}

#[tokio::test]
async fn a_duplicate_slug_is_already_exists_even_when_archived() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    create_board(&mut client, "dup").await;
    let request = pb::CreateBoardRequest {
        slug: "dup".into(),
        ..Default::default()
    };
    let status = refused(
        client.boards.create_board(request.clone()).await,
        Code::AlreadyExists,
    );
    assert!(status.message().contains("dup"), "{}", status.message());

    archive_board(&mut client, "dup").await.unwrap();
    refused(
        client.boards.create_board(request).await,
        Code::AlreadyExists,
    );

    let status = refused(
        client
            .boards
            .create_board(pb::CreateBoardRequest {
                slug: "default".into(),
                ..Default::default()
            })
            .await,
        Code::AlreadyExists,
    );
    assert!(status.message().contains("default"));
}

#[tokio::test]
async fn a_missing_board_is_not_found() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let result = client
        .boards
        .get_board(pb::GetBoardRequest {
            slug: "nope".into(),
        })
        .await;
    let status = refused(result, Code::NotFound);
    assert!(status.message().contains("nope"), "{}", status.message());
    assert_eq!(
        code_of(&archive_board(&mut client, "nope").await),
        Code::NotFound
    );
    let reset = client
        .boards
        .reset_board(pb::ResetBoardRequest {
            slug: "nope".into(),
            actor: String::new(),
        })
        .await;
    assert_eq!(code_of(&reset), Code::NotFound);
    let update = client
        .boards
        .update_board(pb::UpdateBoardRequest {
            slug: "nope".into(),
            display_name: Some("x".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(code_of(&update), Code::NotFound);
}

#[tokio::test]
async fn list_boards_hides_archived_boards_unless_asked_and_sorts_by_slug() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    for slug in ["zeta", "alpha", "mid"] {
        create_board(&mut client, slug).await;
    }
    archive_board(&mut client, "mid").await.unwrap();

    assert_eq!(
        list_boards(&mut client, false).await,
        ["alpha", "default", "zeta"]
    );
    assert_eq!(
        list_boards(&mut client, true).await,
        ["alpha", "default", "mid", "zeta"]
    );
    assert!(
        get_board(&mut client, "mid").await.archived,
        "get returns archived boards"
    );
}

#[tokio::test]
async fn update_board_changes_only_the_fields_that_are_set() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let before = client
        .boards
        .create_board(pb::CreateBoardRequest {
            slug: "upd".into(),
            display_name: "Before".into(),
            metadata: metadata(&[("a", "1"), ("b", "2")]),
            default_assignee: "first".into(),
            max_retries: 4,
            max_running: 2,
        })
        .await
        .unwrap()
        .into_inner();

    let renamed = update_board(
        &mut client,
        pb::UpdateBoardRequest {
            slug: "upd".into(),
            display_name: Some("After".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(renamed.display_name, "After");
    assert_eq!(renamed.metadata, before.metadata, "metadata kept");
    assert_eq!(renamed.default_assignee, "first");
    assert_eq!((renamed.max_retries, renamed.max_running), (4, 2));

    let changed = update_board(
        &mut client,
        pb::UpdateBoardRequest {
            slug: "upd".into(),
            metadata: metadata(&[("c", "3")]),
            replace_metadata: true,
            default_assignee: Some("second".into()),
            max_retries: Some(7),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(changed.display_name, "After");
    assert_eq!(
        changed.metadata,
        metadata(&[("c", "3")]),
        "metadata replaced"
    );
    assert_eq!(changed.default_assignee, "second");
    assert_eq!((changed.max_retries, changed.max_running), (7, 2));
    assert_eq!(get_board(&mut client, "upd").await, changed);

    let cleared = update_board(
        &mut client,
        pb::UpdateBoardRequest {
            slug: "upd".into(),
            replace_metadata: true,
            default_assignee: Some(String::new()),
            max_retries: Some(0),
            ..Default::default()
        },
    )
    .await;
    assert!(cleared.metadata.is_empty(), "an empty replacement clears");
    assert_eq!(cleared.default_assignee, "");
    assert_eq!(cleared.max_retries, 0);

    let events = events_where(&mut client, "upd", "").await;
    assert_eq!(
        kinds(&events),
        [
            "board_created",
            "board_updated",
            "board_updated",
            "board_updated"
        ]
    );
    assert_eq!(events[1].details["fields"], "display_name");
}

#[tokio::test]
async fn archive_board_archives_its_tasks_and_refuses_new_ones() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    create_board(&mut client, "old").await;
    let a = create_on(&mut client, "old", "a").await;
    let b = create_on(&mut client, "old", "b").await;
    let elsewhere = create_on(&mut client, "", "stays").await;

    let board = archive_board(&mut client, "old").await.unwrap();
    assert!(board.archived);

    assert!(
        kanband_tests::calls::all_tasks(&mut client, "old", &[])
            .await
            .is_empty()
    );
    let archived =
        kanband_tests::calls::all_tasks(&mut client, "old", &[pb::TaskStatus::Archived]).await;
    assert_eq!(ids(&archived), [a.id.as_str(), b.id.as_str()]);
    assert_eq!(
        ids(&kanband_tests::calls::all_tasks(&mut client, "", &[]).await),
        [elsewhere.id.as_str()]
    );

    let status = refused(
        client.tasks.create_task(new_task("old", "late")).await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("archived"),
        "{}",
        status.message()
    );

    let status = refused(
        archive_board(&mut client, "old").await,
        Code::FailedPrecondition,
    );
    assert!(
        status.message().contains("archived"),
        "{}",
        status.message()
    );

    let events = events_where(&mut client, "old", "").await;
    assert_eq!(
        kinds(&events),
        [
            "board_created",
            "created",
            "created",
            "archived",
            "archived",
            "board_archived"
        ]
    );
}

#[tokio::test]
async fn reset_board_deletes_its_tasks_and_records_a_board_reset_event() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    create_board(&mut client, "wipe").await;
    let parent = create_on(&mut client, "wipe", "parent").await;
    let child = calls::create_child(&mut client, "wipe", "child", &[&parent.id]).await;
    let archived = create_on(&mut client, "wipe", "archived").await;
    calls::archive(&mut client, &archived.id).await;
    client
        .tasks
        .add_comment(pb::AddCommentRequest {
            claim_token: String::new(),
            task_id: child.id.clone(),
            author: "me".into(),
            body: "note".into(),
        })
        .await
        .unwrap();
    let history_before = events_where(&mut client, "wipe", "").await;

    let reset = reset_board(&mut client, "wipe").await;
    assert_eq!(reset.tasks_removed, 3, "archived tasks are removed too");

    for id in [&parent.id, &child.id, &archived.id] {
        let result = client
            .tasks
            .get_task(pb::GetTaskRequest {
                id: id.clone(),
                recent_events: 0,
            })
            .await;
        assert_eq!(code_of(&result), Code::NotFound, "{id} is gone");
    }
    assert!(
        kanband_tests::calls::all_tasks(&mut client, "wipe", ALL_STATUSES)
            .await
            .is_empty()
    );
    let board = get_board(&mut client, "wipe").await;
    assert!(!board.archived, "the board itself remains");

    let history = events_where(&mut client, "wipe", "").await;
    assert_eq!(
        history[..history_before.len()],
        history_before[..],
        "history remains"
    );
    let last = history.last().unwrap();
    assert_eq!(last.kind, "board_reset");
    assert_eq!(last.id, reset.event_id);
    assert_eq!(last.board, "wipe");
    assert_eq!(last.actor, "tester");
    assert_eq!(last.details["tasks_removed"], "3");

    // The board works as new afterwards.
    let fresh = create_on(&mut client, "wipe", "fresh").await;
    assert_eq!(fresh.status(), pb::TaskStatus::Ready);
    assert_eq!(reset_board(&mut client, "wipe").await.tasks_removed, 1);
    assert_eq!(reset_board(&mut client, "wipe").await.tasks_removed, 0);
}

#[tokio::test]
async fn reset_board_leaves_other_boards_untouched() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    create_board(&mut client, "wipe").await;
    create_board(&mut client, "keep").await;
    create_on(&mut client, "wipe", "goes").await;
    let keep_a = create_on(&mut client, "keep", "stays a").await;
    let keep_b = create_on(&mut client, "", "stays b").await;
    let keep_before = kanband_tests::calls::all_tasks(&mut client, "keep", ALL_STATUSES).await;
    let default_before =
        kanband_tests::calls::all_tasks(&mut client, "default", ALL_STATUSES).await;
    let events_before = all_events(&mut client).await;

    let reset = reset_board(&mut client, "wipe").await;
    assert_eq!(reset.tasks_removed, 1);

    assert_eq!(
        kanband_tests::calls::all_tasks(&mut client, "keep", ALL_STATUSES).await,
        keep_before
    );
    assert_eq!(
        kanband_tests::calls::all_tasks(&mut client, "default", ALL_STATUSES).await,
        default_before
    );
    assert_eq!(calls::task(&mut client, &keep_a.id).await, keep_before[0]);
    assert_eq!(
        calls::task(&mut client, &keep_b.id).await,
        default_before[0]
    );
    let events = all_events(&mut client).await;
    assert_eq!(
        events.len(),
        events_before.len() + 1,
        "only the reset event"
    );
    assert_eq!(events[..events_before.len()], events_before[..]);
}

#[tokio::test]
async fn reset_board_frees_idempotency_keys() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    create_board(&mut client, "keys").await;
    let request = pb::CreateTaskRequest {
        idempotency_key: "job-1".into(),
        ..new_task("keys", "keyed")
    };
    let first = create_with(&mut client, request.clone()).await;
    assert!(first.created);
    let repeat = create_with(&mut client, request.clone()).await;
    assert!(!repeat.created);

    reset_board(&mut client, "keys").await;

    let again = create_with(&mut client, request).await;
    assert!(again.created, "the key is free after a reset");
    assert_ne!(again.task.unwrap().id, first.task.unwrap().id);
}
