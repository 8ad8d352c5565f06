//! The deadlines of a claim besides its lease, with a paused clock: a task's max runtime and
//! the stale-progress backstop revoke the claim (two-phase: the holder is told, its
//! confirmation ends the run `timed_out`, counted as a failure), and a rate-limit cooldown's
//! end makes the task claimable again.

use std::time::Duration;

use kanband::Settings;
use kanband_gateway::Client;
use kanband_proto::pb::{self, RevokeCause, RunOutcome, TaskStatus, report_exit_request::Exit};
use kanband_tests::{
    TestService,
    calls::{
        CODER, acquire, acquire_now, assert_lost, create_with, granted_task, heartbeat,
        last_outcome, new_task, open_session, release, renew, report_exit, status_of,
    },
    spawn_service, spawn_service_with,
};

use crate::support::{
    clock::{Clock, settle},
    keep_alive::KeepAlive,
};

/// Long enough that no lease runs out while a test moves the clock.
const TTL: u32 = 60_000;

/// A `coder` session holding a task created from `request` (assigned to `coder`), with its
/// keep-alive stream open.
async fn holding(
    service: &TestService,
    request: pb::CreateTaskRequest,
) -> (Client, pb::Session, pb::Grant, KeepAlive) {
    let mut client = service.tcp.clone();
    let session = open_session(&mut client, CODER, TTL).await;
    let created = create_with(
        &mut client,
        pb::CreateTaskRequest {
            assignee: CODER.into(),
            ..request
        },
    )
    .await
    .task
    .expect("task");
    let grant = acquire_now(&mut client, &session.id).await;
    assert_eq!(granted_task(&grant), created.id);
    let (stream, _) = KeepAlive::open(&mut client, &session.id).await;
    (client, session, grant, stream)
}

/// Asserts the holder was told of a revocation by `cause`, its token is fenced, and its
/// confirmation ends the run `timed_out` with one failure counted.
async fn assert_timed_out(
    client: &mut Client,
    stream: &mut KeepAlive,
    grant: &pb::Grant,
    cause: RevokeCause,
) {
    let id = granted_task(grant).to_owned();
    let revoked = stream.revoked().await;
    assert_eq!(
        (revoked.claim_token.as_str(), revoked.task_id.as_str()),
        (grant.claim_token.as_str(), id.as_str())
    );
    assert_eq!(revoked.cause(), cause);
    assert_lost(heartbeat(client, &grant.claim_token).await, "revoked");
    let confirmed = release(client, &grant.claim_token)
        .await
        .expect("Release confirms the revocation");
    assert_eq!(confirmed.status(), TaskStatus::Ready);
    assert_eq!(
        confirmed.consecutive_failures, 1,
        "a run that timed out is a failure"
    );
    assert_eq!(last_outcome(client, &id).await, RunOutcome::TimedOut);
}

#[tokio::test(start_paused = true)]
async fn a_claim_past_its_max_runtime_is_revoked_and_counted_as_timed_out() {
    let clock = Clock::hold();
    let service = spawn_service().await;
    let request = pb::CreateTaskRequest {
        max_runtime_seconds: 5,
        ..new_task("", "bounded")
    };
    let (mut client, _session, grant, mut stream) = holding(&service, request).await;
    let id = granted_task(&grant).to_owned();

    clock.advance(4_000).await;
    stream.renew().await;
    heartbeat(&mut client, &grant.claim_token)
        .await
        .expect("progress does not extend a max runtime");
    clock.advance(999).await;
    settle().await;
    assert_eq!(status_of(&mut client, &id).await, TaskStatus::Running);
    heartbeat(&mut client, &grant.claim_token)
        .await
        .expect("1 ms before the max runtime the claim is live");

    clock.advance(1).await;
    assert_timed_out(&mut client, &mut stream, &grant, RevokeCause::MaxRuntime).await;
}

#[tokio::test(start_paused = true)]
async fn a_claim_renewed_without_progress_is_revoked_as_stale() {
    let clock = Clock::hold();
    let dir = tempfile::tempdir().expect("temporary directory");
    let settings = Settings {
        stale_progress: Some(Duration::from_secs(3)),
        ..Settings::default()
    };
    let service = spawn_service_with(dir, settings).await;
    let (mut client, _session, grant, mut stream) = holding(&service, new_task("", "quiet")).await;
    let id = granted_task(&grant).to_owned();

    // A heartbeat at 2 s moves the backstop to 5 s; renewals alone do not.
    clock.advance(2_000).await;
    heartbeat(&mut client, &grant.claim_token)
        .await
        .expect("Heartbeat");
    clock.advance(2_000).await;
    stream.renew().await;
    clock.advance(999).await;
    settle().await;
    assert_eq!(
        status_of(&mut client, &id).await,
        TaskStatus::Running,
        "3 s after the heartbeat less 1 ms"
    );
    renew(&mut client, &grant.claim_token)
        .await
        .expect("not revoked 1 ms before the backstop (a renewal is no progress)");

    clock.advance(1).await;
    assert_timed_out(&mut client, &mut stream, &grant, RevokeCause::StaleProgress).await;
}

#[tokio::test(start_paused = true)]
#[ignore = "the cooldown end is compared with the wall clock (store::now_ms), not the service's \
            clock: its timer fires at 300 s of service time, but the task stays cooling down \
            until 300 s of wall-clock time have passed"]
async fn a_rate_limited_task_is_claimable_again_when_its_cooldown_ends() {
    let clock = Clock::hold();
    let service = spawn_service().await;
    let (mut client, session, grant, mut stream) =
        holding(&service, new_task("", "rate limited")).await;
    let id = granted_task(&grant).to_owned();
    let cooled = report_exit(&mut client, &grant.claim_token, Some(Exit::Code(75)))
        .await
        .expect("ReportExit");
    assert_eq!(cooled.status(), TaskStatus::Ready);
    assert_eq!(acquire(&mut client, &session.id, 0).await, None);

    // 299 s in steps the session outlives, renewing it each time.
    for _ in 0..13 {
        clock.advance(23_000).await;
        stream.renew().await;
    }
    settle().await;
    assert_eq!(
        acquire(&mut client, &session.id, 0).await,
        None,
        "still cooling down 1 s before the end"
    );
    clock.advance(1_000).await;
    settle().await;
    let grant = acquire(&mut client, &session.id, 0)
        .await
        .expect("the cooled-down task is claimable again");
    assert_eq!(granted_task(&grant), id);
    assert_eq!(grant.epoch, 2);
}
