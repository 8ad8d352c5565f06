//! Every event records who caused it, over real gRPC: the identity the auth layer
//! authenticated (name and role) for each role's verbs, whatever name the request's `actor`
//! gives (that stays the note); `kanband`/`system` for what kanband does on its own (a grant, a
//! lease running out); and the record outlives a restart and the revocation of its token.

use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::calls::{
    self, acquire_now, complete, create_assigned, create_with, granted_task, new_task,
    open_session, task_events,
};
use kanband_tests::{spawn_service, spawn_service_in};

use crate::support::{
    clock::{Clock, until_status},
    tokens::token,
};

/// The newest event of `kind` on task `id`.
async fn last_of(client: &mut Client, id: &str, kind: &str) -> pb::Event {
    task_events(client, id)
        .await
        .into_iter()
        .rev()
        .find(|e| e.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} event on {id}"))
}

/// `(identity, role, note)` of an event, for one assertion per event.
fn by(event: &pb::Event) -> (&str, &str, &str) {
    (&event.identity, &event.identity_role, &event.actor)
}

#[tokio::test]
async fn each_role_records_its_authenticated_identity_and_a_forged_actor_is_only_the_note() {
    let svc = spawn_service().await;
    let mut owner = svc.unix.clone();
    // The socket's owner: admin, whatever `created_by` says.
    let created = create_with(
        &mut owner,
        pb::CreateTaskRequest {
            created_by: "alice".into(),
            ..new_task("", "by the owner")
        },
    )
    .await
    .task
    .expect("task");
    let event = last_of(&mut owner, &created.id, "created").await;
    assert_eq!(by(&event), ("admin", "admin", "alice"));

    // An operator token naming someone else as the actor.
    let mut ops = svc
        .tcp_client(Some(&token(&svc, "ops-1", "operator", "").await))
        .await;
    ops.tasks
        .block_task(pb::BlockTaskRequest {
            id: created.id.clone(),
            kind: pb::BlockKind::NeedsInput.into(),
            reason: "waiting".into(),
            actor: "admin".into(),
        })
        .await
        .expect("an operator blocks");
    let event = last_of(&mut owner, &created.id, "blocked").await;
    assert_eq!(by(&event), ("ops-1", "operator", "admin"));

    // A supervisor: the grant is kanband's (for the session), the outcome the supervisor's.
    let mut gateway = svc
        .tcp_client(Some(&token(&svc, "gw-laptop", "supervisor", "m1").await))
        .await;
    let held = create_assigned(&mut owner, "", "held by the gateway", "coder").await;
    let session = open_session(&mut gateway, "coder", 60_000).await;
    let grant = acquire_now(&mut gateway, &session.id).await;
    assert_eq!(granted_task(&grant), held.id);
    let claimed = last_of(&mut owner, &held.id, "claimed").await;
    assert_eq!(by(&claimed), ("kanband", "system", session.id.as_str()));
    complete(&mut gateway, &grant.claim_token)
        .await
        .expect("the supervisor completes");
    let event = last_of(&mut owner, &held.id, "completed").await;
    assert_eq!(by(&event), ("gw-laptop", "supervisor", session.id.as_str()));

    // A worker, with its claim token, signing its comment as the gateway.
    let worked = create_assigned(&mut owner, "", "run by a worker", "coder").await;
    let grant = acquire_now(&mut gateway, &session.id).await;
    assert_eq!(granted_task(&grant), worked.id);
    let mut worker = svc.tcp_client(Some(&grant.claim_token)).await;
    worker
        .tasks
        .add_comment(pb::AddCommentRequest {
            task_id: worked.id.clone(),
            author: "gw-laptop".into(),
            body: "half way".into(),
            ..Default::default()
        })
        .await
        .expect("the worker comments on its task");
    let worker_name = format!("worker:{}", worked.id);
    let event = last_of(&mut owner, &worked.id, "commented").await;
    assert_eq!(by(&event), (worker_name.as_str(), "worker", "gw-laptop"));
    complete(&mut worker, &grant.claim_token)
        .await
        .expect("the worker completes its own claim");
    let event = last_of(&mut owner, &worked.id, "completed").await;
    assert_eq!(
        by(&event),
        (worker_name.as_str(), "worker", session.id.as_str())
    );

    // The first admin token over TCP, and a board event.
    svc.tcp
        .clone()
        .boards
        .reset_board(pb::ResetBoardRequest {
            slug: "default".into(),
            actor: "ops-1".into(),
        })
        .await
        .expect("the admin token resets the board");
    let reset = calls::events_where(&mut owner, "default", "")
        .await
        .into_iter()
        .rfind(|e| e.kind == "board_reset")
        .expect("a board_reset event");
    assert_eq!(by(&reset), ("admin", "admin", "ops-1"));
}

#[tokio::test]
async fn get_task_and_watch_carry_the_identity() {
    let svc = spawn_service().await;
    let mut ops = svc
        .tcp_client(Some(&token(&svc, "ops-2", "operator", "").await))
        .await;
    let task = create_with(
        &mut ops,
        pb::CreateTaskRequest {
            created_by: "someone-else".into(),
            ..new_task("", "watched")
        },
    )
    .await
    .task
    .expect("task");
    let detail = calls::detail(&mut ops, &task.id).await;
    let created = detail
        .recent_events
        .iter()
        .find(|e| e.kind == "created")
        .expect("created in GetTask");
    assert_eq!(by(created), ("ops-2", "operator", "someone-else"));
    let mut watch = ops
        .events
        .watch(pb::WatchRequest {
            task_id: task.id.clone(),
            ..Default::default()
        })
        .await
        .expect("Watch")
        .into_inner();
    let first = watch
        .message()
        .await
        .expect("a watched event")
        .expect("the stream is open");
    assert_eq!(first.kind, "created");
    assert_eq!(by(&first), ("ops-2", "operator", "someone-else"));
}

#[tokio::test(start_paused = true)]
async fn a_lease_running_out_is_recorded_as_kanband() {
    let clock = Clock::hold();
    let svc = spawn_service().await;
    let mut gateway = svc
        .tcp_client(Some(&token(&svc, "gw-sleepy", "supervisor", "m1").await))
        .await;
    let mut owner = svc.unix.clone();
    let task = create_assigned(&mut owner, "", "abandoned", "coder").await;
    let session = open_session(&mut gateway, "coder", 10_000).await;
    acquire_now(&mut gateway, &session.id).await;
    clock.advance(10_000).await;
    until_status(&owner, &task.id, pb::TaskStatus::Ready).await;
    let expired = last_of(&mut owner, &task.id, "expired").await;
    assert_eq!(
        (expired.identity.as_str(), expired.identity_role.as_str()),
        ("kanband", "system"),
        "{expired:?}"
    );
}

#[tokio::test]
async fn the_identity_survives_a_restart_and_the_revocation_of_its_token() {
    let svc = spawn_service().await;
    let mut ops = svc
        .tcp_client(Some(&token(&svc, "ops-gone", "operator", "").await))
        .await;
    let task = calls::create(&mut ops, "made before the revocation").await;
    svc.unix
        .clone()
        .admin
        .revoke_token(pb::RevokeTokenRequest {
            id: "ops-gone".into(),
        })
        .await
        .expect("RevokeToken");
    let dir = svc.stop().await;
    let svc = spawn_service_in(dir).await;
    let mut owner = svc.unix.clone();
    let created = last_of(&mut owner, &task.id, "created").await;
    assert_eq!(
        (created.identity.as_str(), created.identity_role.as_str()),
        ("ops-gone", "operator")
    );
}
