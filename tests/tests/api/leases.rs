//! Leases over real gRPC with a paused clock: expiry exactly at the server-stamped deadline,
//! renewal (unary and keep-alive stream), two-phase revocation pushed on the keep-alive stream,
//! fencing of stale tokens with structured reasons, long-poll wake-ups, the session lease, and
//! claims surviving a restart.
//!
//! Time is moved only by `tokio::time::advance`: [`Clock::hold`] keeps the runtime busy so tokio
//! never auto-advances while the test awaits the SQLite thread or a socket, and [`eventually`]
//! waits for the server to act, bounded by real time.

use std::time::Duration;

use kanband_gateway::Client;
use kanband_proto::pb::{self, RevokeCause, RunOutcome, TaskStatus, report_exit_request::Exit};
use kanband_tests::calls;
use kanband_tests::calls::{
    CODER, MADE_UP_TOKEN, acquire, acquire_now, assert_lost, complete, create_assigned,
    create_board, create_with, granted_task, heartbeat, last_outcome, lost_epoch, new_task,
    open_session, refused, release, renew, report_exit, stats, status_of, task, task_events,
    try_acquire,
};
use kanband_tests::{TestService, spawn_service, spawn_service_in};
use tokio::{sync::mpsc, time::Instant};
use tonic::{Code, codegen::tokio_stream::wrappers::ReceiverStream};

use crate::support::clock::{
    Clock, eventually, join, settle, spawn_acquire, until_status, until_waiting,
};
use crate::support::keep_alive::KeepAlive;

// ---------------------------------------------------------------------------------------------
// Setup.

/// TTL of the sessions whose leases the tests let run out.
const TTL: u32 = 10_000;

/// A service with a task assigned to `coder` and a session (TTL 10 s) that holds it.
struct Held {
    service: TestService,
    client: Client,
    session: pb::Session,
    task_id: String,
    grant: pb::Grant,
}

async fn held() -> Held {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = open_session(&mut client, CODER, TTL).await;
    let created = create_assigned(&mut client, "", "hold me", CODER).await;
    let grant = acquire_now(&mut client, &session.id).await;
    assert_eq!(granted_task(&grant), created.id);
    assert_eq!(grant.epoch, 1);
    assert_eq!(grant.ttl_ms, TTL);
    Held {
        service,
        client,
        session,
        task_id: created.id,
        grant,
    }
}

// ---------------------------------------------------------------------------------------------
// Expiry and renewal.

#[tokio::test(start_paused = true)]
async fn a_claim_expires_exactly_at_its_deadline_and_not_before() {
    let clock = Clock::hold();
    let Held {
        service: _service,
        mut client,
        task_id,
        grant,
        ..
    } = held().await;
    let token = grant.claim_token.clone();

    clock.advance(9_999).await;
    settle().await;
    assert_eq!(status_of(&mut client, &task_id).await, TaskStatus::Running);
    heartbeat(&mut client, &token)
        .await
        .expect("a heartbeat 1 ms before the deadline is accepted");

    clock.advance(1).await;
    let expired = until_status(&client, &task_id, TaskStatus::Ready).await;
    assert_eq!(
        last_outcome(&mut client, &task_id).await,
        RunOutcome::Expired
    );
    assert_eq!(
        expired.consecutive_failures, 0,
        "an expired lease is not a failure"
    );
    assert_eq!(expired.current_run_id, "");
    assert_lost(complete(&mut client, &token).await, "expired");
    assert_eq!(
        status_of(&mut client, &task_id).await,
        TaskStatus::Ready,
        "the refused Complete changed nothing"
    );

    let lag = stats(&mut client)
        .await
        .expiry_lag
        .expect("Stats carries the expiry lag");
    assert!(lag.count >= 1, "the expiry was measured: {lag:?}");
}

#[tokio::test(start_paused = true)]
async fn a_unary_renewal_moves_the_deadline() {
    let clock = Clock::hold();
    let Held {
        service: _service,
        mut client,
        task_id,
        grant,
        ..
    } = held().await;
    let token = grant.claim_token.clone();

    clock.advance(8_000).await;
    assert_eq!(renew(&mut client, &token).await.expect("Renew"), TTL);
    clock.advance(8_000).await;
    settle().await;
    assert_eq!(
        status_of(&mut client, &task_id).await,
        TaskStatus::Running,
        "16 s after the grant, 8 s after the renewal"
    );
    clock.advance(1_999).await;
    settle().await;
    assert_eq!(status_of(&mut client, &task_id).await, TaskStatus::Running);
    heartbeat(&mut client, &token).await.expect("still held");

    clock.advance(1).await;
    until_status(&client, &task_id, TaskStatus::Ready).await;
    assert_eq!(
        last_outcome(&mut client, &task_id).await,
        RunOutcome::Expired
    );
    assert_lost(renew(&mut client, &token).await, "expired");
}

/// A claim has a deadline of its own: renewing one claim of a session keeps that claim and the
/// session alive, not the session's other claims.
#[tokio::test(start_paused = true)]
async fn a_claim_that_is_not_renewed_expires_at_its_own_deadline_while_its_session_lives() {
    let clock = Clock::hold();
    let Held {
        service: _service,
        mut client,
        session,
        task_id: renewed_task,
        grant: renewed,
    } = held().await;
    let other_task = create_assigned(&mut client, "", "left alone", CODER)
        .await
        .id;
    clock.advance(1_000).await;
    let left_alone = acquire_now(&mut client, &session.id).await;
    assert_eq!(granted_task(&left_alone), other_task);

    // Renew only the first claim, at 8 s and 10.9 s: the second claim's deadline is 11 s.
    clock.advance(7_000).await;
    renew(&mut client, &renewed.claim_token)
        .await
        .expect("Renew");
    clock.advance(2_900).await;
    renew(&mut client, &renewed.claim_token)
        .await
        .expect("Renew");
    clock.advance(99).await;
    settle().await;
    assert_eq!(
        status_of(&mut client, &other_task).await,
        TaskStatus::Running
    );

    clock.advance(1).await;
    until_status(&client, &other_task, TaskStatus::Ready).await;
    assert_eq!(
        last_outcome(&mut client, &other_task).await,
        RunOutcome::Expired
    );
    assert_lost(
        heartbeat(&mut client, &left_alone.claim_token).await,
        "expired",
    );
    assert_eq!(
        status_of(&mut client, &renewed_task).await,
        TaskStatus::Running,
        "the renewed claim lives on"
    );
    heartbeat(&mut client, &renewed.claim_token)
        .await
        .expect("the renewed claim is still held, and so is its session");
}

#[tokio::test(start_paused = true)]
async fn a_keep_alive_message_moves_the_deadline_of_every_claim_of_the_session() {
    let clock = Clock::hold();
    let Held {
        service: _service,
        mut client,
        session,
        task_id,
        grant,
    } = held().await;
    // Three claims of one session, so a renewal that reaches only some of them shows.
    let mut held = vec![(task_id, grant.claim_token)];
    for n in 1..3 {
        let created = create_assigned(&mut client, "", &format!("hold me too {n}"), CODER).await;
        let grant = acquire_now(&mut client, &session.id).await;
        assert_eq!(granted_task(&grant), created.id);
        held.push((created.id, grant.claim_token));
    }
    held.sort_by(|a, b| a.1.cmp(&b.1));
    let tokens: Vec<String> = held.iter().map(|(_, token)| token.clone()).collect();
    let sorted = |mut tokens: Vec<String>| {
        tokens.sort();
        tokens
    };
    let (mut stream, first) = KeepAlive::open(&mut client, &session.id).await;
    assert_eq!(first.ttl_ms, TTL);
    assert_eq!(sorted(first.claim_tokens), tokens);

    clock.advance(8_000).await;
    let renewed = stream.renew().await;
    assert_eq!(
        (renewed.ttl_ms, sorted(renewed.claim_tokens)),
        (TTL, tokens.clone())
    );
    clock.advance(8_000).await;
    settle().await;
    for (id, _) in &held {
        assert_eq!(
            status_of(&mut client, id).await,
            TaskStatus::Running,
            "{id}: 16 s after its grant, 8 s after the renewal"
        );
    }
    clock.advance(1_999).await;
    settle().await;
    for (id, _) in &held {
        assert_eq!(
            status_of(&mut client, id).await,
            TaskStatus::Running,
            "{id}"
        );
    }

    clock.advance(1).await;
    for (id, token) in &held {
        until_status(&client, id, TaskStatus::Ready).await;
        assert_eq!(last_outcome(&mut client, id).await, RunOutcome::Expired);
        assert_lost(heartbeat(&mut client, token).await, "expired");
    }
}

// ---------------------------------------------------------------------------------------------
// Two-phase revocation.

/// A held task whose holder keeps a stream open, and a second session that wants the task.
struct Contested {
    held: Held,
    stream: KeepAlive,
    other: pb::Session,
}

/// The holder first crashes once (so the task has a failure to reset), claims the task again
/// (epoch 2) and opens its keep-alive stream; a second session with a long TTL waits.
async fn contested() -> Contested {
    let mut held = held().await;
    let client = &mut held.client;
    let crashed = report_exit(client, &held.grant.claim_token, Some(Exit::Code(1)))
        .await
        .expect("ReportExit");
    assert_eq!(crashed.status(), TaskStatus::Ready);
    assert_eq!(crashed.consecutive_failures, 1);
    held.grant = acquire_now(client, &held.session.id).await;
    assert_eq!(held.grant.epoch, 2);
    let (stream, renewed) = KeepAlive::open(client, &held.session.id).await;
    assert_eq!(renewed.claim_tokens, [held.grant.claim_token.clone()]);
    let other = open_session(client, CODER, 60_000).await;
    Contested {
        held,
        stream,
        other,
    }
}

#[tokio::test(start_paused = true)]
async fn a_reclaimed_holder_is_told_at_once_and_the_task_waits_for_its_confirmation() {
    let _clock = Clock::hold();
    let Contested {
        held,
        mut stream,
        other,
    } = contested().await;
    let mut client = held.client.clone();
    let token = held.grant.claim_token.clone();
    let at = Instant::now();

    client
        .tasks
        .reclaim_task(pb::ReclaimTaskRequest {
            id: held.task_id.clone(),
            actor: "operator".into(),
            grace_seconds: 0,
            reason: String::new(),
        })
        .await
        .expect("ReclaimTask");
    let revoked = stream.revoked().await;
    assert_eq!(
        revoked,
        pb::Revoked {
            claim_token: token.clone(),
            task_id: held.task_id.clone(),
            cause: RevokeCause::Reclaimed.into(),
        }
    );
    assert_eq!(Instant::now(), at, "pushed without any time passing");

    assert_lost(complete(&mut client, &token).await, "revoked");
    assert_lost(heartbeat(&mut client, &token).await, "revoked");
    assert_eq!(
        acquire(&mut client, &other.id, 0).await,
        None,
        "not handed out before the holder confirms"
    );
    assert_eq!(
        status_of(&mut client, &held.task_id).await,
        TaskStatus::Running
    );

    let confirmed = release(&mut client, &token)
        .await
        .expect("Release confirms");
    assert_eq!(confirmed.status(), TaskStatus::Ready);
    assert_eq!(
        confirmed.consecutive_failures, 0,
        "a reclaim resets failures"
    );
    assert_eq!(
        last_outcome(&mut client, &held.task_id).await,
        RunOutcome::Reclaimed
    );
    let next = acquire_now(&mut client, &other.id).await;
    assert_eq!(granted_task(&next), held.task_id);
    assert_eq!(next.epoch, held.grant.epoch + 1);
}

#[tokio::test(start_paused = true)]
async fn an_archived_task_is_archived_at_once_and_its_holder_is_told() {
    let _clock = Clock::hold();
    let Contested {
        held,
        mut stream,
        other,
    } = contested().await;
    let mut client = held.client.clone();
    let token = held.grant.claim_token.clone();

    let archived = calls::archive(&mut client, &held.task_id).await;
    assert_eq!(archived.status(), TaskStatus::Archived);
    let revoked = stream.revoked().await;
    assert_eq!(
        (
            revoked.claim_token.as_str(),
            revoked.task_id.as_str(),
            revoked.cause()
        ),
        (token.as_str(), held.task_id.as_str(), RevokeCause::Archived)
    );
    assert_lost(complete(&mut client, &token).await, "revoked");
    assert_eq!(acquire(&mut client, &other.id, 0).await, None);

    let confirmed = release(&mut client, &token)
        .await
        .expect("Release confirms");
    assert_eq!(confirmed.status(), TaskStatus::Archived);
    assert_eq!(
        last_outcome(&mut client, &held.task_id).await,
        RunOutcome::Revoked
    );
    assert_eq!(acquire(&mut client, &other.id, 0).await, None);
    assert_eq!(stats(&mut client).await.live_claims, 0);
}

#[tokio::test(start_paused = true)]
async fn a_scheduled_task_is_parked_once_its_holder_confirms() {
    let _clock = Clock::hold();
    let Contested {
        held,
        mut stream,
        other,
    } = contested().await;
    let mut client = held.client.clone();
    let token = held.grant.claim_token.clone();

    client
        .tasks
        .schedule_task(pb::ScheduleTaskRequest {
            id: held.task_id.clone(),
            delay_seconds: 3_600,
            actor: "operator".into(),
        })
        .await
        .expect("ScheduleTask");
    let revoked = stream.revoked().await;
    assert_eq!(
        (revoked.claim_token.as_str(), revoked.cause()),
        (token.as_str(), RevokeCause::Scheduled)
    );
    assert_lost(complete(&mut client, &token).await, "revoked");
    assert_eq!(acquire(&mut client, &other.id, 0).await, None);
    assert_eq!(
        status_of(&mut client, &held.task_id).await,
        TaskStatus::Running,
        "parked only when the holder confirms"
    );

    let confirmed = report_exit(&mut client, &token, Some(Exit::Signal(15)))
        .await
        .expect("ReportExit confirms");
    assert_eq!(confirmed.status(), TaskStatus::Scheduled);
    assert!(confirmed.scheduled_until.is_some(), "{confirmed:?}");
    assert_eq!(
        last_outcome(&mut client, &held.task_id).await,
        RunOutcome::Scheduled
    );
    assert_eq!(acquire(&mut client, &other.id, 0).await, None);
}

#[tokio::test(start_paused = true)]
async fn an_unconfirmed_revocation_ends_when_the_lease_runs_out() {
    let clock = Clock::hold();
    let Contested {
        held,
        mut stream,
        other,
    } = contested().await;
    let mut client = held.client.clone();
    let token = held.grant.claim_token.clone();

    client
        .tasks
        .reclaim_task(pb::ReclaimTaskRequest {
            id: held.task_id.clone(),
            actor: "operator".into(),
            grace_seconds: 0,
            reason: String::new(),
        })
        .await
        .expect("ReclaimTask");
    stream.revoked().await;

    clock.advance(u64::from(TTL) - 1).await;
    settle().await;
    assert_eq!(
        status_of(&mut client, &held.task_id).await,
        TaskStatus::Running
    );
    assert_eq!(
        acquire(&mut client, &other.id, 0).await,
        None,
        "a slow kill never causes a second holder"
    );

    clock.advance(1).await;
    let ready = until_status(&client, &held.task_id, TaskStatus::Ready).await;
    assert_eq!(ready.consecutive_failures, 0);
    assert_eq!(
        last_outcome(&mut client, &held.task_id).await,
        RunOutcome::Reclaimed
    );
    assert_lost(release(&mut client, &token).await, "revoked");
    let next = acquire_now(&mut client, &other.id).await;
    assert_eq!(next.epoch, held.grant.epoch + 1);
}

// ---------------------------------------------------------------------------------------------
// Fencing.

#[tokio::test(start_paused = true)]
async fn stale_tokens_are_refused_with_the_reason_and_the_current_epoch() {
    let clock = Clock::hold();
    let Held {
        service: _service,
        mut client,
        task_id,
        grant,
        ..
    } = held().await;
    let other = open_session(&mut client, CODER, 60_000).await;

    clock.advance(u64::from(TTL)).await;
    until_status(&client, &task_id, TaskStatus::Ready).await;
    let second = acquire_now(&mut client, &other.id).await;
    assert_eq!((granted_task(&second), second.epoch), (task_id.as_str(), 2));

    let stale = assert_lost(
        complete(&mut client, &grant.claim_token).await,
        "superseded",
    );
    assert_eq!(lost_epoch(&stale), Some(2));
    assert_lost(release(&mut client, &grant.claim_token).await, "superseded");
    assert_lost(renew(&mut client, &grant.claim_token).await, "superseded");

    assert_lost(complete(&mut client, MADE_UP_TOKEN).await, "unknown");
    assert_lost(heartbeat(&mut client, MADE_UP_TOKEN).await, "unknown");
    for malformed in ["bogus", "c_XYZ", "t_0123456789abcdef", ""] {
        let status = refused(
            complete(&mut client, malformed).await,
            Code::InvalidArgument,
        );
        assert!(
            status.message().contains("claim_token"),
            "{malformed:?}: {}",
            status.message()
        );
    }
    assert_eq!(
        status_of(&mut client, &task_id).await,
        TaskStatus::Running,
        "the refused calls left the new holder alone"
    );
    heartbeat(&mut client, &second.claim_token)
        .await
        .expect("the new holder's token works");

    // A board reset fences the claims of its tasks and tells their holders.
    create_board(&mut client, "resettable").await;
    let doomed = create_assigned(&mut client, "resettable", "doomed", CODER).await;
    let claim = acquire_now(&mut client, &other.id).await;
    assert_eq!(granted_task(&claim), doomed.id);
    let (mut stream, _) = KeepAlive::open(&mut client, &other.id).await;
    client
        .boards
        .reset_board(pb::ResetBoardRequest {
            slug: "resettable".into(),
            actor: "operator".into(),
        })
        .await
        .expect("ResetBoard");
    let revoked = stream.revoked().await;
    assert_eq!(
        (
            revoked.claim_token.as_str(),
            revoked.task_id.as_str(),
            revoked.cause()
        ),
        (
            claim.claim_token.as_str(),
            doomed.id.as_str(),
            RevokeCause::BoardReset
        )
    );
    assert_lost(
        heartbeat(&mut client, &claim.claim_token).await,
        "board_reset",
    );
    assert_lost(
        complete(&mut client, &claim.claim_token).await,
        "board_reset",
    );
    heartbeat(&mut client, &second.claim_token)
        .await
        .expect("a claim on another board is untouched");
}

// ---------------------------------------------------------------------------------------------
// Long polls.

/// A service with two sessions of `coder` (longest TTL, so that no session expiry pokes the
/// dispatcher during a test) and nothing claimable.
async fn two_sessions() -> (TestService, Client, pb::Session, pb::Session) {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let a = open_session(&mut client, CODER, 300_000).await;
    let b = open_session(&mut client, CODER, 300_000).await;
    (service, client, a, b)
}

#[tokio::test(start_paused = true)]
async fn a_waiting_poller_is_woken_by_a_release_without_time_passing() {
    let _clock = Clock::hold();
    let (_service, mut client, a, b) = two_sessions().await;
    let created = create_assigned(&mut client, "", "shared", CODER).await;
    let first = acquire_now(&mut client, &a.id).await;

    let waiting = spawn_acquire(&client, &b.id, 60_000);
    until_waiting(&client, 1).await;
    let at = Instant::now();
    release(&mut client, &first.claim_token)
        .await
        .expect("Release");
    let grant = join(waiting)
        .await
        .expect("Acquire")
        .expect("the release is handed to the waiting poller");
    assert_eq!(
        (granted_task(&grant), grant.epoch),
        (created.id.as_str(), 2)
    );
    assert_eq!(Instant::now(), at, "the paused clock did not move");
}

#[tokio::test(start_paused = true)]
async fn a_waiting_poller_is_woken_by_a_new_task() {
    let _clock = Clock::hold();
    let (_service, mut client, _a, b) = two_sessions().await;
    let waiting = spawn_acquire(&client, &b.id, 60_000);
    until_waiting(&client, 1).await;
    let at = Instant::now();
    let created = create_assigned(&mut client, "", "fresh", CODER).await;
    let grant = join(waiting).await.expect("Acquire").expect("a grant");
    assert_eq!(granted_task(&grant), created.id);
    assert_eq!(Instant::now(), at);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_poller_is_woken_by_an_unblock() {
    let _clock = Clock::hold();
    let (_service, mut client, _a, b) = two_sessions().await;
    let blocked = create_with(
        &mut client,
        pb::CreateTaskRequest {
            assignee: CODER.into(),
            initial_status: TaskStatus::Blocked.into(),
            ..new_task("", "stuck")
        },
    )
    .await
    .task
    .expect("task");
    let waiting = spawn_acquire(&client, &b.id, 60_000);
    until_waiting(&client, 1).await;
    settle().await;
    assert!(!waiting.is_finished(), "a blocked task is not claimable");
    let at = Instant::now();
    calls::unblock(&mut client, &blocked.id).await;
    let grant = join(waiting).await.expect("Acquire").expect("a grant");
    assert_eq!(granted_task(&grant), blocked.id);
    assert_eq!(Instant::now(), at);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_poller_gets_nothing_exactly_when_its_wait_passes() {
    let clock = Clock::hold();
    let (_service, client, _a, b) = two_sessions().await;
    let waiting = spawn_acquire(&client, &b.id, 60_000);
    until_waiting(&client, 1).await;
    clock.advance(59_999).await;
    settle().await;
    assert!(!waiting.is_finished(), "answered before its wait passed");
    clock.advance(1).await;
    assert_eq!(join(waiting).await.expect("Acquire"), None);
    until_waiting(&client, 0).await;
}

// ---------------------------------------------------------------------------------------------
// The session lease.

#[tokio::test(start_paused = true)]
async fn a_session_without_keep_alives_expires_with_its_claims() {
    let clock = Clock::hold();
    let Held {
        service: _service,
        mut client,
        session,
        task_id,
        grant,
    } = held().await;
    assert_eq!(stats(&mut client).await.live_sessions, 1);

    clock.advance(u64::from(TTL)).await;
    let ready = until_status(&client, &task_id, TaskStatus::Ready).await;
    assert_eq!(
        last_outcome(&mut client, &task_id).await,
        RunOutcome::Expired
    );
    assert_eq!(ready.consecutive_failures, 0);
    assert_lost(heartbeat(&mut client, &grant.claim_token).await, "expired");
    eventually("the session is gone", || {
        let mut client = client.clone();
        async move { (stats(&mut client).await.live_sessions == 0).then_some(()) }
    })
    .await;
    refused(
        try_acquire(&mut client, &session.id, 0).await,
        Code::Aborted,
    );
    let (tx, outbound) = mpsc::channel(1);
    tx.send(pb::KeepAliveRequest {
        session_id: session.id.clone(),
    })
    .await
    .expect("queued");
    let refusal = match client
        .leases
        .keep_alive(ReceiverStream::new(outbound))
        .await
    {
        Err(status) => status,
        Ok(response) => response
            .into_inner()
            .message()
            .await
            .expect_err("an expired session cannot be kept alive"),
    };
    assert_eq!(refusal.code(), Code::Aborted, "{refusal:?}");
}

#[tokio::test(start_paused = true)]
async fn closing_a_session_releases_its_claims_without_counting_anything() {
    let _clock = Clock::hold();
    let Held {
        service: _service,
        mut client,
        session,
        task_id,
        grant,
    } = held().await;
    let closed = client
        .leases
        .close_session(pb::CloseSessionRequest {
            session_id: session.id.clone(),
        })
        .await
        .expect("CloseSession")
        .into_inner();
    assert_eq!(closed.released, 1);
    let after = task(&mut client, &task_id).await;
    assert_eq!(after.status(), TaskStatus::Ready);
    assert_eq!(
        (after.consecutive_failures, after.outcomeless_attempts),
        (0, 0)
    );
    assert_eq!(
        last_outcome(&mut client, &task_id).await,
        RunOutcome::Released
    );
    assert_lost(complete(&mut client, &grant.claim_token).await, "unknown");
    refused(
        try_acquire(&mut client, &session.id, 0).await,
        Code::Aborted,
    );
    let counts = stats(&mut client).await;
    assert_eq!((counts.live_sessions, counts.live_claims), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// Restart (real time).

#[tokio::test]
async fn claims_and_sessions_survive_a_restart_and_overdue_ones_are_rearmed() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let short = open_session(&mut client, "short", 1_000).await;
    let long = open_session(&mut client, "long", 60_000).await;
    let quick = create_assigned(&mut client, "", "short lease", "short").await;
    let slow = create_assigned(&mut client, "", "long lease", "long").await;
    let quick_grant = acquire_now(&mut client, &short.id).await;
    let slow_grant = acquire_now(&mut client, &long.id).await;
    assert_eq!(granted_task(&quick_grant), quick.id);
    assert_eq!(granted_task(&slow_grant), slow.id);
    renew(&mut client, &quick_grant.claim_token)
        .await
        .expect("renewed just before the stop");
    drop(client);

    let dir = service.stop().await;
    // A real sleep is the point here: the short lease's recorded deadline (1 s) must pass while
    // kanband is down, so that the restart re-arms it instead of releasing it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let service = spawn_service_in(dir).await;
    let mut client = service.tcp.clone();

    assert_eq!(
        renew(&mut client, &quick_grant.claim_token)
            .await
            .expect("an overdue claim gets a full TTL from start-up"),
        1_000
    );
    assert_eq!(
        renew(&mut client, &slow_grant.claim_token)
            .await
            .expect("Renew"),
        60_000
    );
    let done = complete(&mut client, &quick_grant.claim_token)
        .await
        .expect("Complete after the restart");
    assert_eq!(done.status(), TaskStatus::Done);
    let done = complete(&mut client, &slow_grant.claim_token)
        .await
        .expect("Complete after the restart");
    assert_eq!(done.status(), TaskStatus::Done);

    let rearmed =
        |events: &[pb::Event]| events.iter().filter(|e| e.kind == "lease_rearmed").count();
    assert_eq!(rearmed(&task_events(&mut client, &quick.id).await), 1);
    assert_eq!(
        rearmed(&task_events(&mut client, &slow.id).await),
        0,
        "a claim whose deadline had not passed is not re-armed"
    );
    let counts = stats(&mut client).await;
    assert_eq!(counts.live_sessions, 2, "both sessions were restored");
    assert_eq!(counts.live_claims, 0);
}
