//! Deadlines across a restart of kanband, with a paused clock that keeps running while kanband
//! is down (the records' clock follows it, so "down for 5 s" is `advance(5_000)` between the
//! stop and the start on the same data directory).
//!
//! - Leases: a claim renewed for a while and restarted within its TTL is restored without
//!   `lease_rearmed` (its coarse deadline was persisted); one whose deadline really passed while
//!   kanband was down gets `lease_rearmed`.
//! - Every other deadline keeps its meaning: max runtime counts from the grant, stale progress
//!   from the last heartbeat, a cancel's grace from the request (and still revokes), a
//!   cooldown and a scheduled wake-up end when they were due.

use std::time::Duration;

use kanband::Settings;
use kanband_gateway::Client;
use kanband_proto::pb::{self, RevokeCause, TaskStatus, report_exit_request::Exit};
use kanband_tests::calls::{
    CODER, acquire, acquire_now, create_with, granted_task, heartbeat, new_task, open_session,
    report_exit, status_of, task_events,
};
use kanband_tests::{TestService, spawn_service_with};

use crate::support::{
    clock::{Clock, settle, until_status},
    keep_alive::KeepAlive,
};

/// A kanband on a fresh directory with `settings`.
async fn start(settings: &Settings) -> TestService {
    let dir = tempfile::tempdir().expect("temporary directory");
    spawn_service_with(dir, settings.clone()).await
}

/// Stops kanband, lets `down_ms` pass on the paused clock, and starts it again on the same
/// directory with the same settings.
async fn restart(
    service: TestService,
    clock: &Clock,
    down_ms: u64,
    settings: &Settings,
) -> TestService {
    let dir = service.stop().await;
    clock.advance(down_ms).await;
    spawn_service_with(dir, settings.clone()).await
}

/// A `coder` session with `ttl_ms` holding a task made from `request`.
async fn holding(
    client: &mut Client,
    ttl_ms: u32,
    request: pb::CreateTaskRequest,
) -> (pb::Session, pb::Grant) {
    let session = open_session(client, CODER, ttl_ms).await;
    let request = pb::CreateTaskRequest {
        assignee: CODER.into(),
        ..request
    };
    let id = create_with(client, request).await.task.expect("task").id;
    let grant = acquire_now(client, &session.id).await;
    assert_eq!(granted_task(&grant), id);
    (session, grant)
}

/// How many `lease_rearmed` events a task has.
async fn rearmed(client: &mut Client, id: &str) -> usize {
    let events = task_events(client, id).await;
    events.iter().filter(|e| e.kind == "lease_rearmed").count()
}

/// Renews a session every second for `seconds`, over a keep-alive stream closed afterwards.
async fn keep_renewing(client: &mut Client, clock: &Clock, session_id: &str, seconds: u32) {
    let (mut stream, _) = KeepAlive::open(client, session_id).await;
    for _ in 0..seconds {
        clock.advance(1_000).await;
        stream.renew().await;
    }
}

/// A claim on a 10 s TTL renewed for 30 s (three TTLs past the deadline recorded at its grant),
/// then kanband down for `down_ms`: how many `lease_rearmed` events its task has, after checking
/// that the claim is still held (a re-armed claim is kept, with a TTL from start-up).
async fn rearmed_after_renewals_and_a_restart(down_ms: u64) -> usize {
    let clock = Clock::hold();
    let settings = Settings::default();
    let service = start(&settings).await;
    let mut client = service.tcp.clone();
    let (session, grant) = holding(&mut client, 10_000, new_task("", "renewed")).await;
    let id = granted_task(&grant).to_owned();
    keep_renewing(&mut client, &clock, &session.id, 30).await;
    drop(client);

    let service = restart(service, &clock, down_ms, &settings).await;
    let mut client = service.tcp.clone();
    let count = rearmed(&mut client, &id).await;
    let (_stream, renewed) = KeepAlive::open(&mut client, &session.id).await;
    assert_eq!(
        renewed.claim_tokens,
        std::slice::from_ref(&grant.claim_token),
        "the claim is kept across the restart"
    );
    count
}

#[tokio::test(start_paused = true)]
async fn a_claim_renewed_for_a_while_survives_a_restart_within_its_ttl_without_being_rearmed() {
    assert_eq!(
        rearmed_after_renewals_and_a_restart(8_000).await,
        0,
        "the deadline had not passed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_claim_whose_deadline_passed_while_kanband_was_down_is_rearmed() {
    assert_eq!(
        rearmed_after_renewals_and_a_restart(10_001).await,
        1,
        "10 s TTL, down 10.001 s"
    );
}

/// Long enough that no lease runs out in the tests below.
const TTL: u32 = 300_000;

#[tokio::test(start_paused = true)]
async fn max_runtime_counts_from_the_grant_across_a_restart() {
    let clock = Clock::hold();
    let settings = Settings::default();
    let service = start(&settings).await;
    let mut client = service.tcp.clone();
    let request = pb::CreateTaskRequest {
        max_runtime_seconds: 10,
        ..new_task("", "bounded")
    };
    let (session, grant) = holding(&mut client, TTL, request).await;
    let id = granted_task(&grant).to_owned();
    clock.advance(4_000).await;
    drop(client);

    let service = restart(service, &clock, 3_000, &settings).await;
    let mut client = service.tcp.clone();
    let (mut stream, _) = KeepAlive::open(&mut client, &session.id).await;
    clock.advance(2_999).await;
    settle().await;
    assert_eq!(status_of(&mut client, &id).await, TaskStatus::Running);
    clock.advance(1).await;
    let revoked = stream.revoked().await;
    assert_eq!(
        revoked.cause(),
        RevokeCause::MaxRuntime,
        "10 s after the grant"
    );
}

#[tokio::test(start_paused = true)]
async fn stale_progress_counts_from_the_last_heartbeat_across_a_restart() {
    let clock = Clock::hold();
    let settings = Settings {
        stale_progress: Some(Duration::from_secs(3)),
        ..Settings::default()
    };
    let service = start(&settings).await;
    let mut client = service.tcp.clone();
    let (session, grant) = holding(&mut client, TTL, new_task("", "quiet")).await;
    let id = granted_task(&grant).to_owned();
    clock.advance(1_000).await;
    heartbeat(&mut client, &grant.claim_token)
        .await
        .expect("Heartbeat");
    clock.advance(1_000).await;
    drop(client);

    let service = restart(service, &clock, 500, &settings).await;
    let mut client = service.tcp.clone();
    let (mut stream, _) = KeepAlive::open(&mut client, &session.id).await;
    clock.advance(1_499).await;
    settle().await;
    assert_eq!(status_of(&mut client, &id).await, TaskStatus::Running);
    clock.advance(1).await;
    let revoked = stream.revoked().await;
    assert_eq!(
        revoked.cause(),
        RevokeCause::StaleProgress,
        "3 s after the heartbeat"
    );
}

#[tokio::test(start_paused = true)]
async fn a_pending_cancel_is_still_revoked_when_its_grace_ends_after_a_restart() {
    let clock = Clock::hold();
    let settings = Settings::default();
    let service = start(&settings).await;
    let mut client = service.tcp.clone();
    let (session, grant) = holding(&mut client, TTL, new_task("", "cancelled")).await;
    let id = granted_task(&grant).to_owned();
    client
        .tasks
        .reclaim_task(pb::ReclaimTaskRequest {
            id: id.clone(),
            actor: "operator".into(),
            grace_seconds: 10,
            reason: String::new(),
        })
        .await
        .expect("ReclaimTask");
    clock.advance(2_000).await;
    drop(client);

    let service = restart(service, &clock, 3_000, &settings).await;
    let mut client = service.tcp.clone();
    let (mut stream, _) = KeepAlive::open(&mut client, &session.id).await;
    clock.advance(4_999).await;
    settle().await;
    assert_eq!(status_of(&mut client, &id).await, TaskStatus::Running);
    clock.advance(1).await;
    let revoked = stream.revoked().await;
    assert_eq!(
        (revoked.claim_token.as_str(), revoked.cause()),
        (grant.claim_token.as_str(), RevokeCause::Reclaimed),
        "revoked 10 s after the request"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cooldown_and_a_wakeup_end_when_they_were_due_across_a_restart() {
    let clock = Clock::hold();
    let settings = Settings::default();
    let service = start(&settings).await;
    let mut client = service.tcp.clone();
    let (session, grant) = holding(&mut client, TTL, new_task("", "rate limited")).await;
    let cooled = granted_task(&grant).to_owned();
    report_exit(&mut client, &grant.claim_token, Some(Exit::Code(75)))
        .await
        .expect("ReportExit");
    let parked = create_with(&mut client, new_task("", "parked"))
        .await
        .task
        .expect("task")
        .id;
    client
        .tasks
        .schedule_task(pb::ScheduleTaskRequest {
            id: parked.clone(),
            delay_seconds: 200,
            actor: "tester".into(),
        })
        .await
        .expect("ScheduleTask");
    clock.advance(10_000).await;
    drop(client);

    // The default cooldown is 300 s: due at 300 s, the wake-up at 200 s.
    let service = restart(service, &clock, 100_000, &settings).await;
    let mut client = service.tcp.clone();
    let (mut stream, _) = KeepAlive::open(&mut client, &session.id).await;
    clock.advance(89_999).await;
    stream.renew().await;
    settle().await;
    assert_eq!(status_of(&mut client, &parked).await, TaskStatus::Scheduled);
    clock.advance(1).await;
    until_status(&client, &parked, TaskStatus::Ready).await;

    clock.advance(99_999).await;
    stream.renew().await;
    settle().await;
    assert_eq!(
        acquire(&mut client, &session.id, 0).await,
        None,
        "cooling down"
    );
    clock.advance(1).await;
    settle().await;
    let grant = acquire(&mut client, &session.id, 0)
        .await
        .expect("claimable once the cooldown is over");
    assert_eq!(granted_task(&grant), cooled);
}
