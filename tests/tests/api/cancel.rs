//! Graceful cancel (`ReclaimTask` with `grace_seconds > 0`), with a paused clock: the holder is
//! pushed `cancel_requested`; however its worker then ends (Release with the reason, as
//! `kanband-gateway` sends it, or ReportExit with any code or signal, as older supervisors do)
//! or the grace runs out, the end is an operator reclaim: no failure counted, the breaker reset,
//! the task back to ready, and handed to another session that can run it before the one it
//! was taken from.

use kanband_gateway::Client;
use kanband_proto::pb::{
    self, RevokeCause, RunOutcome, TaskStatus, keep_alive_response::Event as Push,
    report_exit_request::Exit,
};
use kanband_tests::calls::{
    CODER, acquire, acquire_now, create_with, granted_task, last_outcome, new_task, open_session,
    report_exit, runs, task_events,
};
use kanband_tests::{TestService, spawn_service};

use crate::support::{
    clock::{Clock, settle, until_status},
    keep_alive::KeepAlive,
};

/// Long enough that no lease runs out while a test moves the clock.
const TTL: u32 = 60_000;

/// The grace the operator gives, in seconds.
const GRACE_S: u32 = 30;

/// The reason `kanband-gateway` gives when it releases a cancelled worker's claim.
const CANCELLED: &str = "the worker stopped on the operator's request (cancel requested)";

/// A `coder` session with its keep-alive stream, and a task (`max_retries` 2) for `coder`.
async fn setup(service: &TestService) -> (Client, pb::Session, KeepAlive, String) {
    let mut client = service.tcp.clone();
    let session = open_session(&mut client, CODER, TTL).await;
    let request = pb::CreateTaskRequest {
        assignee: CODER.into(),
        max_retries: 2,
        ..new_task("", "cancel me")
    };
    let id = create_with(&mut client, request)
        .await
        .task
        .expect("task")
        .id;
    let (stream, _) = KeepAlive::open(&mut client, &session.id).await;
    (client, session, stream, id)
}

/// Reclaims a task with a grace and checks the holder is pushed `cancel_requested` for `token`.
async fn cancel(client: &mut Client, stream: &mut KeepAlive, id: &str, token: &str) {
    client
        .tasks
        .reclaim_task(pb::ReclaimTaskRequest {
            id: id.to_owned(),
            actor: "operator".into(),
            grace_seconds: GRACE_S,
            reason: String::new(),
        })
        .await
        .expect("ReclaimTask");
    match stream.next().await {
        Push::CancelRequested(cancel) => assert_eq!(cancel.claim_token, token),
        other => panic!("expected cancel_requested, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_worker_released_with_its_reason_is_a_reclaim_and_goes_to_another_session() {
    let _clock = Clock::hold();
    let service = spawn_service().await;
    let (mut client, session, mut stream, id) = setup(&service).await;
    let grant = acquire_now(&mut client, &session.id).await;
    // One crash first, so there is a failure count for the reclaim to reset.
    report_exit(&mut client, &grant.claim_token, Some(Exit::Code(1)))
        .await
        .expect("ReportExit");
    let grant = acquire_now(&mut client, &session.id).await;
    let other = open_session(&mut client, CODER, TTL).await;
    cancel(&mut client, &mut stream, &id, &grant.claim_token).await;

    let released = client
        .leases
        .release(pb::ReleaseRequest {
            claim_token: grant.claim_token.clone(),
            reason: CANCELLED.into(),
        })
        .await
        .expect("Release")
        .into_inner();
    assert_eq!(released.status(), TaskStatus::Ready);
    assert_eq!(released.consecutive_failures, 0, "the breaker is reset");
    let run = runs(&mut client, &id).await.pop().expect("a run");
    assert_eq!(run.outcome(), RunOutcome::Reclaimed);
    assert_eq!(run.summary, CANCELLED, "the release's reason is on the run");
    let events = task_events(&mut client, &id).await;
    let requeued = events.last().expect("an event");
    assert_eq!(requeued.kind, "requeued");
    assert_eq!(
        requeued.details.get("reason").map(String::as_str),
        Some(CANCELLED)
    );

    assert_eq!(
        acquire(&mut client, &session.id, 0).await,
        None,
        "not handed straight back to the session it was taken from"
    );
    let next = acquire_now(&mut client, &other.id).await;
    assert_eq!((granted_task(&next), next.epoch), (id.as_str(), 3));
}

#[tokio::test(start_paused = true)]
async fn two_cancels_reported_as_signals_in_a_row_do_not_trip_the_breaker() {
    let _clock = Clock::hold();
    let service = spawn_service().await;
    let (mut client, session, mut stream, id) = setup(&service).await;
    for round in 1..=2u64 {
        let grant = acquire(&mut client, &session.id, 0)
            .await
            .expect("no other session can run it, so its own session gets it back");
        assert_eq!(grant.epoch, round);
        cancel(&mut client, &mut stream, &id, &grant.claim_token).await;
        let after = report_exit(&mut client, &grant.claim_token, Some(Exit::Signal(15)))
            .await
            .expect("ReportExit");
        assert_eq!(after.status(), TaskStatus::Ready, "round {round}");
        assert_eq!(after.consecutive_failures, 0, "round {round}");
        assert_eq!(last_outcome(&mut client, &id).await, RunOutcome::Reclaimed);
    }
    let kinds: Vec<String> = task_events(&mut client, &id)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        !kinds.iter().any(|k| k == "gave_up" || k == "crashed"),
        "{kinds:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancel_whose_grace_runs_out_is_revoked_without_a_failure() {
    let clock = Clock::hold();
    let service = spawn_service().await;
    let (mut client, session, mut stream, id) = setup(&service).await;
    let grant = acquire_now(&mut client, &session.id).await;
    cancel(&mut client, &mut stream, &id, &grant.claim_token).await;

    clock.advance(u64::from(GRACE_S) * 1_000 - 1).await;
    stream.renew().await;
    settle().await;
    assert_eq!(
        until_status(&client, &id, TaskStatus::Running).await.epoch,
        1
    );
    clock.advance(1).await;
    let revoked = stream.revoked().await;
    assert_eq!(revoked.cause(), RevokeCause::Reclaimed);
    let confirmed = report_exit(&mut client, &grant.claim_token, Some(Exit::Signal(9)))
        .await
        .expect("ReportExit confirms the revocation");
    assert_eq!(confirmed.status(), TaskStatus::Ready);
    assert_eq!(confirmed.consecutive_failures, 0);
    assert_eq!(last_outcome(&mut client, &id).await, RunOutcome::Revoked);
}
