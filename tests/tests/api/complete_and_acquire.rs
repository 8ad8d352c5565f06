//! `Leases.CompleteAndAcquire`: a supervisor's complete and its next acquire in one call. The
//! complete is the same as `Complete` (fenced, retried as already recorded), the wait the same
//! as `Acquire`, and anything that would refuse either half refuses the call before it changes
//! anything.

use kanband_gateway::Client;
use kanband_proto::{
    ALREADY_RECORDED_HEADER,
    pb::{self, TaskStatus},
};
use kanband_tests::calls::{
    CODER, MADE_UP_TOKEN, acquire_now, assert_lost, create_assigned, granted_task, kinds,
    open_session, refused, status_of, task_events,
};
use kanband_tests::spawn_service;
use tonic::{Code, Response, Status};

fn request(token: &str, session_id: &str, wait_ms: i64) -> pb::CompleteAndAcquireRequest {
    pb::CompleteAndAcquireRequest {
        complete: Some(pb::CompleteRequest {
            claim_token: token.to_owned(),
            result: "done".into(),
            summary: "all done".into(),
            metadata: Default::default(),
        }),
        acquire: Some(pb::AcquireRequest {
            session_id: session_id.to_owned(),
            wait_ms,
        }),
    }
}

async fn send(
    client: &mut Client,
    request: pb::CompleteAndAcquireRequest,
) -> Result<Response<pb::CompleteAndAcquireResponse>, Status> {
    client.leases.complete_and_acquire(request).await
}

fn already_recorded<T>(response: &Response<T>) -> bool {
    response
        .metadata()
        .get(ALREADY_RECORDED_HEADER)
        .is_some_and(|v| v == "true")
}

fn completed(response: &pb::CompleteAndAcquireResponse) -> &pb::Task {
    response.completed.as_ref().expect("the completed task")
}

#[tokio::test]
async fn it_completes_the_held_task_and_grants_the_next_then_answers_no_grant_when_none_is_left() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = open_session(&mut client, CODER, 60_000).await;
    let first = create_assigned(&mut client, "", "first", CODER).await;
    let second = create_assigned(&mut client, "", "second", CODER).await;
    let held = acquire_now(&mut client, &session.id).await;
    assert_eq!(granted_task(&held), first.id);

    let answer = send(&mut client, request(&held.claim_token, &session.id, 1_000))
        .await
        .expect("CompleteAndAcquire")
        .into_inner();
    let done = completed(&answer);
    assert_eq!(
        (done.id.as_str(), done.status()),
        (first.id.as_str(), TaskStatus::Done)
    );
    assert_eq!(done.result, "done");
    let next = answer.grant.expect("the second task is granted");
    assert_eq!(granted_task(&next), second.id);
    assert_eq!(
        status_of(&mut client, &second.id).await,
        TaskStatus::Running
    );

    // Nothing is left: the complete is answered, and no grant once the wait is over.
    let answer = send(&mut client, request(&next.claim_token, &session.id, 0))
        .await
        .expect("CompleteAndAcquire")
        .into_inner();
    assert_eq!(completed(&answer).status(), TaskStatus::Done);
    assert_eq!(answer.grant, None);
}

#[tokio::test]
async fn a_call_either_half_refuses_changes_nothing() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = open_session(&mut client, CODER, 60_000).await;
    let held_task = create_assigned(&mut client, "", "held", CODER).await;
    let held = acquire_now(&mut client, &session.id).await;
    let waiting = create_assigned(&mut client, "", "waiting", CODER).await;

    // A token that was never issued: refused as by Complete, and nothing is acquired.
    assert_lost(
        send(&mut client, request(MADE_UP_TOKEN, &session.id, 1_000)).await,
        "unknown",
    );
    // The acquire's half refused (a wait out of range, a session that is not open, none at
    // all): the held task is not completed.
    let bad_wait = send(
        &mut client,
        request(&held.claim_token, &session.id, 300_001),
    )
    .await;
    assert!(
        refused(bad_wait, Code::InvalidArgument)
            .message()
            .contains("wait_ms")
    );
    let unknown_session = request(&held.claim_token, "s_0123456789abcdef", 1_000);
    let status = send(&mut client, unknown_session).await.unwrap_err();
    assert_ne!(status.code(), Code::Ok);
    let without_acquire = pb::CompleteAndAcquireRequest {
        acquire: None,
        ..request(&held.claim_token, &session.id, 0)
    };
    let status = refused(
        send(&mut client, without_acquire).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("acquire"), "{status:?}");
    let without_complete = pb::CompleteAndAcquireRequest {
        complete: None,
        ..request(&held.claim_token, &session.id, 0)
    };
    let status = refused(
        send(&mut client, without_complete).await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("complete"), "{status:?}");

    assert_eq!(
        status_of(&mut client, &held_task.id).await,
        TaskStatus::Running
    );
    assert_eq!(status_of(&mut client, &waiting.id).await, TaskStatus::Ready);
    assert!(!kinds(&task_events(&mut client, &held_task.id).await).contains(&"completed"));
}

#[tokio::test]
async fn a_retry_after_its_complete_committed_is_answered_as_already_recorded_and_waits_again() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = open_session(&mut client, CODER, 60_000).await;
    let first = create_assigned(&mut client, "", "first", CODER).await;
    let held = acquire_now(&mut client, &session.id).await;
    let second = create_assigned(&mut client, "", "second", CODER).await;
    let third = create_assigned(&mut client, "", "third", CODER).await;

    let sent = request(&held.claim_token, &session.id, 1_000);
    let answer = send(&mut client, sent.clone())
        .await
        .expect("CompleteAndAcquire");
    assert!(!already_recorded(&answer));
    let granted = answer.into_inner().grant.expect("the second task");
    assert_eq!(granted_task(&granted), second.id);

    // The reply was lost: the same call again records nothing new and waits for more work.
    let again = send(&mut client, sent).await.expect("the retry succeeds");
    assert!(already_recorded(&again), "{:?}", again.metadata());
    let again = again.into_inner();
    assert_eq!(completed(&again).id, first.id);
    assert_eq!(
        granted_task(again.grant.as_ref().expect("the third task")),
        third.id
    );
    let events = task_events(&mut client, &first.id).await;
    let completes = kinds(&events).iter().filter(|k| **k == "completed").count();
    assert_eq!(completes, 1, "{:?}", kinds(&events));
}
