//! An operator's reason on BlockTask, ArchiveTask and ReclaimTask: it is recorded in the event
//! the verb writes (`blocked`, `archived`, `revoked`, or `cancel_requested` for a reclaim with
//! a grace), no reason records none, and a reason over 4096 bytes or with a control character
//! other than newline and tab is INVALID_ARGUMENT naming `reason`, with the task and its events
//! left as they were.

use kanband_gateway::Client;
use kanband_proto::pb::{self, TaskStatus};
use kanband_tests::calls::{
    CODER, acquire_now, create, create_assigned, open_session, refused, task, task_events,
};
use kanband_tests::spawn_service;
use tonic::{Code, Status};

/// What an operator may well type: more than one line, a tab, and non-ASCII text.
const REASON: &str = "wrong repository\n\tsee ticket #12 — François";

/// Long enough that no lease runs out during a test.
const TTL: u32 = 60_000;

/// The newest event of a task, which must be of `kind`.
async fn last_event(client: &mut Client, id: &str, kind: &str) -> pb::Event {
    let event = task_events(client, id).await.pop().expect("an event");
    assert_eq!(event.kind, kind, "{event:?}");
    event
}

/// A running task of `coder` (its claim held by a session that stays open).
async fn running(client: &mut Client) -> String {
    let session = open_session(client, CODER, TTL).await;
    let id = create_assigned(client, "", "held", CODER).await.id;
    let grant = acquire_now(client, &session.id).await;
    assert_eq!(
        grant.task.as_ref().map(|t| t.id.as_str()),
        Some(id.as_str())
    );
    id
}

async fn archive(client: &mut Client, id: &str, reason: &str) -> Result<pb::Task, Status> {
    let request = pb::ArchiveTaskRequest {
        id: id.to_owned(),
        actor: "operator".into(),
        reason: reason.to_owned(),
    };
    client
        .tasks
        .archive_task(request)
        .await
        .map(|r| r.into_inner())
}

async fn block(client: &mut Client, id: &str, reason: &str) -> Result<pb::Task, Status> {
    let request = pb::BlockTaskRequest {
        id: id.to_owned(),
        reason: reason.to_owned(),
        kind: pb::BlockKind::NeedsInput.into(),
        actor: "operator".into(),
    };
    client
        .tasks
        .block_task(request)
        .await
        .map(|r| r.into_inner())
}

async fn reclaim(
    client: &mut Client,
    id: &str,
    grace_seconds: u32,
    reason: &str,
) -> Result<pb::Task, Status> {
    let request = pb::ReclaimTaskRequest {
        id: id.to_owned(),
        actor: "operator".into(),
        grace_seconds,
        reason: reason.to_owned(),
    };
    client
        .tasks
        .reclaim_task(request)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn each_operator_verb_records_its_reason_in_the_event_it_writes() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();

    let id = create(&mut client, "to archive").await.id;
    archive(&mut client, &id, REASON)
        .await
        .expect("ArchiveTask");
    let event = last_event(&mut client, &id, "archived").await;
    assert_eq!(event.details["reason"], REASON);
    assert_eq!(event.actor, "operator");

    let id = create(&mut client, "to block").await.id;
    block(&mut client, &id, REASON).await.expect("BlockTask");
    let event = last_event(&mut client, &id, "blocked").await;
    assert_eq!(event.details["reason"], REASON);

    let id = running(&mut client).await;
    reclaim(&mut client, &id, 0, REASON)
        .await
        .expect("ReclaimTask");
    let event = last_event(&mut client, &id, "revoked").await;
    assert_eq!(event.details["reason"], REASON);
    assert_eq!(event.details["cause"], "reclaimed");

    let id = running(&mut client).await;
    reclaim(&mut client, &id, 30, REASON)
        .await
        .expect("ReclaimTask with a grace");
    let event = last_event(&mut client, &id, "cancel_requested").await;
    assert_eq!(event.details["reason"], REASON);
    assert_eq!(event.details["grace_seconds"], "30");
}

#[tokio::test]
async fn no_reason_records_none() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();

    let id = create(&mut client, "to archive").await.id;
    archive(&mut client, &id, "").await.expect("ArchiveTask");
    let event = last_event(&mut client, &id, "archived").await;
    assert!(!event.details.contains_key("reason"), "{event:?}");

    let id = running(&mut client).await;
    reclaim(&mut client, &id, 0, "").await.expect("ReclaimTask");
    let event = last_event(&mut client, &id, "revoked").await;
    assert!(!event.details.contains_key("reason"), "{event:?}");
}

#[tokio::test]
async fn a_bad_reason_is_refused_naming_the_field_and_changes_nothing() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let held = running(&mut client).await;
    let ready = create(&mut client, "not running").await.id;
    let ready_status = task(&mut client, &ready).await.status();
    let too_long = "x".repeat(4097);
    let bad = [
        too_long.as_str(),
        "carriage\rreturn",
        "escape \u{1b}[2J",
        "nul\0",
        "delete\u{7f}",
        "next line\u{85}",
    ];

    for reason in bad {
        for (verb, id) in [("archive", &ready), ("block", &ready), ("reclaim", &held)] {
            let before = (
                task(&mut client, id).await,
                task_events(&mut client, id).await,
            );
            let result = match verb {
                "archive" => archive(&mut client, id, reason).await,
                "block" => block(&mut client, id, reason).await,
                _ => reclaim(&mut client, id, 0, reason).await,
            };
            let what = format!("{verb} with {:?}", reason.get(..20).unwrap_or(reason));
            let status = refused(result, Code::InvalidArgument);
            assert!(
                status.message().starts_with("reason:"),
                "{what}: {:?}",
                status.message()
            );
            let after = (
                task(&mut client, id).await,
                task_events(&mut client, id).await,
            );
            assert_eq!(after.0, before.0, "{what}: the task changed");
            assert_eq!(
                after.1.len(),
                before.1.len(),
                "{what}: the task's events changed"
            );
        }
    }
    assert_eq!(task(&mut client, &ready).await.status(), ready_status);
    assert_eq!(task(&mut client, &held).await.status(), TaskStatus::Running);
}
