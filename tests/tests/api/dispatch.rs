//! The dispatcher over real gRPC: dispatch order, profile / capability / machine matching,
//! parents, the review lane, caps (board and session slots), failure accounting of worker
//! exits, `Admin.DispatchPreview`, `Admin.Stats`, and malformed lease requests.

use std::time::Duration;

use kanband_gateway::Client;
use kanband_proto::pb::{self, RunOutcome, TaskStatus, report_exit_request::Exit};
use kanband_tests::calls;
use kanband_tests::calls::{
    CODER, MADE_UP_TOKEN, acquire, acquire_now, assert_lost, complete, create_assigned,
    create_child, create_with, granted_task, heartbeat, kinds, last_event_id, last_outcome,
    new_task, open_session, open_session_with, refused, release, report_exit, runs,
    session_request, stats, status_of, task, task_events, try_acquire,
};
use kanband_tests::{TestService, spawn_service};
use tonic::Code;

use crate::support::{
    clock::{spawn_acquire, until_waiting},
    refusal::assert_refused,
};

// ---------------------------------------------------------------------------------------------
// Helpers for the calls only this file makes.

/// A board with a default assignee, a failure limit and a running cap.
async fn create_board_with(
    client: &mut Client,
    slug: &str,
    default_assignee: &str,
    max_retries: u32,
    max_running: u32,
) -> pb::Board {
    client
        .boards
        .create_board(pb::CreateBoardRequest {
            slug: slug.into(),
            default_assignee: default_assignee.into(),
            max_retries,
            max_running,
            ..Default::default()
        })
        .await
        .expect("CreateBoard")
        .into_inner()
}

/// Creates a ready task from a request built on `new_task(board, title)`.
async fn create_task(client: &mut Client, request: pb::CreateTaskRequest) -> pb::Task {
    create_with(client, request).await.task.expect("task")
}

/// A task assigned to `coder` on `default` with a priority.
async fn create_prioritized(client: &mut Client, title: &str, priority: i32) -> pb::Task {
    create_task(
        client,
        pb::CreateTaskRequest {
            assignee: CODER.into(),
            priority,
            ..new_task("", title)
        },
    )
    .await
}

/// Tasks created within the same millisecond tie on age; this keeps creation times apart.
async fn next_millisecond() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

/// An exit code.
fn code(code: i32) -> Option<Exit> {
    Some(Exit::Code(code))
}

/// Reports an exit that must be accepted.
async fn exit(client: &mut Client, token: &str, how: Option<Exit>) -> pb::Task {
    report_exit(client, token, how).await.expect("ReportExit")
}

/// DispatchPreview.
async fn preview(client: &mut Client, request: pb::DispatchPreviewRequest) -> Vec<pb::Candidate> {
    client
        .admin
        .dispatch_preview(request)
        .await
        .expect("DispatchPreview")
        .into_inner()
        .candidates
}

/// The candidate for a task in a preview.
fn candidate<'a>(candidates: &'a [pb::Candidate], id: &str) -> &'a pb::Candidate {
    candidates
        .iter()
        .find(|c| c.task.as_ref().is_some_and(|t| t.id == id))
        .unwrap_or_else(|| panic!("task {id} is not among the candidates"))
}

/// The task ids of a preview, in order.
fn candidate_ids(candidates: &[pb::Candidate]) -> Vec<&str> {
    candidates
        .iter()
        .map(|c| c.task.as_ref().expect("task").id.as_str())
        .collect()
}

/// RequestReview that must be accepted.
async fn request_review(client: &mut Client, token: &str) -> pb::Task {
    client
        .leases
        .request_review(pb::RequestReviewRequest {
            claim_token: token.to_owned(),
            summary: "please look".into(),
        })
        .await
        .expect("RequestReview")
        .into_inner()
}

/// A service and a `coder` session with 8 slots and a long TTL.
async fn service_with_session() -> (TestService, Client, pb::Session) {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            slots: 8,
            ..session_request(CODER, 300_000)
        },
    )
    .await;
    (service, client, session)
}

// ---------------------------------------------------------------------------------------------
// Order and matching.

#[tokio::test]
async fn grants_follow_priority_then_age() {
    let (_service, mut client, session) = service_with_session().await;
    let low = create_prioritized(&mut client, "low", -1).await;
    next_millisecond().await;
    let old_high = create_prioritized(&mut client, "old high", 5).await;
    next_millisecond().await;
    let middle = create_prioritized(&mut client, "middle", 0).await;
    next_millisecond().await;
    let new_high = create_prioritized(&mut client, "new high", 5).await;

    let mut granted = Vec::new();
    for _ in 0..4 {
        let grant = acquire_now(&mut client, &session.id).await;
        granted.push(granted_task(&grant).to_owned());
    }
    assert_eq!(granted, [old_high.id, new_high.id, middle.id, low.id]);
    assert_eq!(acquire(&mut client, &session.id, 0).await, None);
}

#[tokio::test]
async fn a_grant_starts_a_run_for_the_session() {
    let (_service, mut client, session) = service_with_session().await;
    let created = create_prioritized(&mut client, "run me", 0).await;
    let grant = acquire_now(&mut client, &session.id).await;
    let running = grant.task.clone().expect("task");
    assert_eq!(running.id, created.id);
    assert_eq!(running.status(), TaskStatus::Running);
    assert_eq!(running.epoch, 1);
    assert_eq!(running.current_run_id, grant.run_id);
    assert!(running.started_at.is_some());
    assert!(grant.claim_token.starts_with("c_"), "{}", grant.claim_token);
    assert_eq!(
        (
            grant.epoch,
            grant.ttl_ms,
            grant.review,
            grant.profile.as_str()
        ),
        (1, 300_000, false, CODER)
    );

    let run = runs(&mut client, &created.id).await.pop().expect("a run");
    assert_eq!(run.id, grant.run_id);
    assert_eq!(
        (run.epoch, run.session_id.as_str(), run.profile.as_str()),
        (1, session.id.as_str(), CODER)
    );
    assert_eq!(run.machine_id, "m1");
    assert_eq!(run.outcome(), RunOutcome::Unspecified);
    let events = task_events(&mut client, &created.id).await;
    let claimed = events.last().expect("an event");
    assert_eq!(claimed.kind, "claimed");
    assert_eq!(claimed.actor, session.id);
    assert_eq!(claimed.details["epoch"], "1");
    assert_eq!(claimed.details["run"], grant.run_id);
}

#[tokio::test]
async fn only_tasks_of_the_sessions_profiles_are_granted() {
    let (_service, mut client, coder) = service_with_session().await;
    create_board_with(&mut client, "team", CODER, 0, 0).await;
    let writers = create_assigned(&mut client, "", "for writers", "writer").await;
    let nobody = create_task(&mut client, new_task("", "unassigned, no default")).await;
    let by_default = create_task(&mut client, new_task("team", "unassigned on team")).await;
    let mine = create_assigned(&mut client, "", "for coders", CODER).await;

    let mut granted = vec![
        granted_task(&acquire_now(&mut client, &coder.id).await).to_owned(),
        granted_task(&acquire_now(&mut client, &coder.id).await).to_owned(),
    ];
    granted.sort();
    let mut want = vec![by_default.id.clone(), mine.id.clone()];
    want.sort();
    assert_eq!(granted, want, "its own tasks and the board default's");
    assert_eq!(acquire(&mut client, &coder.id, 0).await, None);

    let writer = open_session(&mut client, "writer", 300_000).await;
    let grant = acquire_now(&mut client, &writer.id).await;
    assert_eq!(granted_task(&grant), writers.id);
    assert_eq!(grant.profile, "writer");
    assert_eq!(acquire(&mut client, &writer.id, 0).await, None);
    assert_eq!(
        status_of(&mut client, &nobody.id).await,
        TaskStatus::Ready,
        "an unassigned task on a board without a default assignee is never dispatched"
    );

    let both = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            profiles: vec!["writer".into(), CODER.into()],
            ..session_request(CODER, 300_000)
        },
    )
    .await;
    assert_eq!(acquire(&mut client, &both.id, 0).await, None);
}

#[tokio::test]
async fn required_capabilities_must_be_a_subset_of_the_sessions() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let needs = create_task(
        &mut client,
        pb::CreateTaskRequest {
            assignee: CODER.into(),
            required_capabilities: vec!["gpu".into(), "net".into()],
            ..new_task("", "needs gpu and net")
        },
    )
    .await;
    let with_caps = |caps: &[&str]| pb::OpenSessionRequest {
        capabilities: caps.iter().map(|c| (*c).to_owned()).collect(),
        ..session_request(CODER, 300_000)
    };
    for caps in [&[][..], &["gpu"], &["net", "disk"]] {
        let session = open_session_with(&mut client, with_caps(caps)).await;
        assert_eq!(
            acquire(&mut client, &session.id, 0).await,
            None,
            "a session with {caps:?}"
        );
    }
    let able = open_session_with(&mut client, with_caps(&["disk", "net", "gpu"])).await;
    assert_eq!(
        granted_task(&acquire_now(&mut client, &able.id).await),
        needs.id
    );
}

#[tokio::test]
async fn a_target_machine_is_only_granted_to_sessions_on_it() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let pinned = create_task(
        &mut client,
        pb::CreateTaskRequest {
            assignee: CODER.into(),
            target_machine: "m2".into(),
            ..new_task("", "runs on m2")
        },
    )
    .await;
    let on_m1 = open_session(&mut client, CODER, 300_000).await;
    assert_eq!(acquire(&mut client, &on_m1.id, 0).await, None);
    let on_m2 = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            machine_id: "m2".into(),
            ..session_request(CODER, 300_000)
        },
    )
    .await;
    assert_eq!(
        granted_task(&acquire_now(&mut client, &on_m2.id).await),
        pinned.id
    );
}

#[tokio::test]
async fn a_child_is_granted_only_after_its_parents_finish() {
    let (_service, mut client, session) = service_with_session().await;
    let parent = create_assigned(&mut client, "", "parent", CODER).await;
    let child = create_task(
        &mut client,
        pb::CreateTaskRequest {
            assignee: CODER.into(),
            parents: vec![parent.id.clone()],
            priority: 100,
            ..new_task("", "child")
        },
    )
    .await;
    assert_eq!(child.status(), TaskStatus::Todo);

    let first = acquire_now(&mut client, &session.id).await;
    assert_eq!(
        granted_task(&first),
        parent.id,
        "the child's priority does not matter yet"
    );
    assert_eq!(acquire(&mut client, &session.id, 0).await, None);
    complete(&mut client, &first.claim_token)
        .await
        .expect("Complete");
    assert_eq!(status_of(&mut client, &child.id).await, TaskStatus::Ready);
    let second = acquire_now(&mut client, &session.id).await;
    assert_eq!(granted_task(&second), child.id);

    // A ready task whose parent went back to review is not granted either.
    complete(&mut client, &second.claim_token)
        .await
        .expect("Complete");
    let grandchild = create_child(&mut client, "", "grandchild", &[&child.id]).await;
    client
        .tasks
        .assign_task(pb::AssignTaskRequest {
            id: grandchild.id.clone(),
            assignee: CODER.into(),
            actor: "tester".into(),
        })
        .await
        .expect("AssignTask");
    client
        .tasks
        .reopen_review(pb::ReopenReviewRequest {
            id: child.id.clone(),
            actor: "tester".into(),
        })
        .await
        .expect("ReopenReview");
    // The reopened parent sends its ready child back to `todo`, as a new unfinished parent
    // would, and a child with an unfinished parent is not dispatched.
    assert_eq!(
        status_of(&mut client, &grandchild.id).await,
        TaskStatus::Todo
    );
    let demoted = task_events(&mut client, &grandchild.id).await;
    assert_eq!(demoted.last().map(|e| e.kind.as_str()), Some("demoted"));
    assert_eq!(
        acquire(&mut client, &session.id, 0).await,
        None,
        "a task with an unfinished parent is not claimable"
    );
}

#[tokio::test]
async fn the_review_lane_takes_review_tasks_and_sends_them_back_or_finishes_them() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let worker = open_session(&mut client, CODER, 300_000).await;
    let reviewer = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            review_lane: true,
            ..session_request(CODER, 300_000)
        },
    )
    .await;
    let created = create_assigned(&mut client, "", "reviewed work", CODER).await;

    let work = acquire_now(&mut client, &worker.id).await;
    assert!(!work.review);
    let in_review = request_review(&mut client, &work.claim_token).await;
    assert_eq!(in_review.status(), TaskStatus::Review);
    assert_eq!(in_review.summary, "please look");
    assert_eq!(
        last_outcome(&mut client, &created.id).await,
        RunOutcome::ReviewRequested
    );
    assert_eq!(
        acquire(&mut client, &worker.id, 0).await,
        None,
        "review tasks are only for the review lane"
    );

    let review = acquire_now(&mut client, &reviewer.id).await;
    assert_eq!(granted_task(&review), created.id);
    assert!(review.review, "the grant says it came from the review lane");
    assert_eq!(review.epoch, 2);
    let sent_back = client
        .leases
        .request_changes(pb::RequestChangesRequest {
            claim_token: review.claim_token.clone(),
            reason: "needs tests".into(),
        })
        .await
        .expect("RequestChanges")
        .into_inner();
    assert_eq!(sent_back.status(), TaskStatus::Ready);
    assert_eq!(
        last_outcome(&mut client, &created.id).await,
        RunOutcome::ChangesRequested
    );

    let rework = acquire_now(&mut client, &worker.id).await;
    assert_eq!(
        (granted_task(&rework), rework.epoch),
        (created.id.as_str(), 3)
    );
    request_review(&mut client, &rework.claim_token).await;
    let second_look = acquire_now(&mut client, &reviewer.id).await;
    assert!(second_look.review);
    let done = complete(&mut client, &second_look.claim_token)
        .await
        .expect("Complete");
    assert_eq!(done.status(), TaskStatus::Done);
    let run_lanes: Vec<bool> = runs(&mut client, &created.id)
        .await
        .iter()
        .map(|r| r.review)
        .collect();
    assert_eq!(run_lanes, [false, true, false, true]);
}

#[tokio::test]
async fn waiting_pollers_are_served_in_arrival_order() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let first = open_session(&mut client, CODER, 300_000).await;
    let second = open_session(&mut client, CODER, 300_000).await;
    let early = spawn_acquire(&client, &first.id, 30_000);
    until_waiting(&client, 1).await;
    let late = spawn_acquire(&client, &second.id, 30_000);
    until_waiting(&client, 2).await;

    let one = create_assigned(&mut client, "", "one", CODER).await;
    let grant = early.await.expect("join").expect("Acquire").expect("grant");
    assert_eq!(
        granted_task(&grant),
        one.id,
        "the first to wait is served first"
    );
    assert!(!late.is_finished());
    let two = create_assigned(&mut client, "", "two", CODER).await;
    let grant = late.await.expect("join").expect("Acquire").expect("grant");
    assert_eq!(granted_task(&grant), two.id);
}

// ---------------------------------------------------------------------------------------------
// Caps.

#[tokio::test]
async fn a_board_running_cap_limits_grants() {
    let (_service, mut client, session) = service_with_session().await;
    create_board_with(&mut client, "capped", CODER, 0, 2).await;
    for n in 0..3 {
        create_task(&mut client, new_task("capped", &format!("capped {n}"))).await;
    }
    let first = acquire_now(&mut client, &session.id).await;
    acquire_now(&mut client, &session.id).await;
    assert_eq!(
        acquire(&mut client, &session.id, 0).await,
        None,
        "the board runs its cap"
    );
    let other = create_assigned(&mut client, "", "uncapped board", CODER).await;
    assert_eq!(
        granted_task(&acquire_now(&mut client, &session.id).await),
        other.id,
        "other boards are not capped"
    );

    let waiting = spawn_acquire(&client, &session.id, 30_000);
    until_waiting(&client, 1).await;
    assert!(!waiting.is_finished());
    complete(&mut client, &first.claim_token)
        .await
        .expect("Complete");
    let third = waiting
        .await
        .expect("join")
        .expect("Acquire")
        .expect("a freed board slot is granted to the waiting poller");
    assert_eq!(third.task.expect("task").board, "capped");
}

#[tokio::test]
async fn a_session_holds_at_most_its_slots() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            slots: 2,
            ..session_request(CODER, 300_000)
        },
    )
    .await;
    for n in 0..3 {
        create_assigned(&mut client, "", &format!("slot {n}"), CODER).await;
    }
    let first = acquire_now(&mut client, &session.id).await;
    acquire_now(&mut client, &session.id).await;
    assert_eq!(acquire(&mut client, &session.id, 0).await, None);
    assert_eq!(
        acquire(&mut client, &session.id, 200).await,
        None,
        "waits its whole wait and gets nothing"
    );

    let waiting = spawn_acquire(&client, &session.id, 30_000);
    until_waiting(&client, 1).await;
    assert!(!waiting.is_finished());
    release(&mut client, &first.claim_token)
        .await
        .expect("Release");
    let next = waiting
        .await
        .expect("join")
        .expect("Acquire")
        .expect("a freed slot is filled");
    assert_eq!(next.task.expect("task").status(), TaskStatus::Running);
    assert_eq!(stats(&mut client).await.live_claims, 2);
}

// ---------------------------------------------------------------------------------------------
// Failure accounting.

/// A service, a session and one task assigned to `coder`, claimed once.
async fn claimed() -> (TestService, Client, pb::Session, pb::Grant) {
    let (service, mut client, session) = service_with_session().await;
    create_assigned(&mut client, "", "fragile", CODER).await;
    let grant = acquire_now(&mut client, &session.id).await;
    (service, client, session, grant)
}

#[tokio::test]
async fn two_crashes_in_a_row_give_up() {
    let (_service, mut client, session, grant) = claimed().await;
    let id = granted_task(&grant).to_owned();

    let after = exit(&mut client, &grant.claim_token, code(1)).await;
    assert_eq!(after.status(), TaskStatus::Ready);
    assert_eq!(after.consecutive_failures, 1);
    assert!(
        after.last_failure_error.contains("code 1"),
        "{}",
        after.last_failure_error
    );
    let run = runs(&mut client, &id).await.pop().expect("run");
    assert_eq!(
        (run.outcome(), run.exit_code),
        (RunOutcome::Crashed, Some(1))
    );
    assert!(!kinds(&task_events(&mut client, &id).await).contains(&"gave_up"));

    let again = acquire_now(&mut client, &session.id).await;
    let after = exit(&mut client, &again.claim_token, code(1)).await;
    assert_eq!(after.status(), TaskStatus::Blocked);
    assert_eq!(after.consecutive_failures, 2);
    let events = task_events(&mut client, &id).await;
    assert_eq!(
        kinds(&events).iter().filter(|k| **k == "gave_up").count(),
        1
    );
    assert_eq!(acquire(&mut client, &session.id, 0).await, None);
    assert_lost(complete(&mut client, &again.claim_token).await, "unknown");
}

#[tokio::test]
async fn signals_and_spawn_failures_count_as_crashes_up_to_the_boards_limit() {
    let (_service, mut client, session) = service_with_session().await;
    create_board_with(&mut client, "patient", CODER, 3, 0).await;
    let created = create_task(&mut client, new_task("patient", "three tries")).await;

    let grant = acquire_now(&mut client, &session.id).await;
    let after = exit(&mut client, &grant.claim_token, Some(Exit::Signal(9))).await;
    assert_eq!(
        (after.status(), after.consecutive_failures),
        (TaskStatus::Ready, 1)
    );
    assert!(
        after.last_failure_error.contains("signal 9"),
        "{}",
        after.last_failure_error
    );
    assert_eq!(
        last_outcome(&mut client, &created.id).await,
        RunOutcome::Crashed
    );

    let grant = acquire_now(&mut client, &session.id).await;
    let after = exit(
        &mut client,
        &grant.claim_token,
        Some(Exit::SpawnFailed(true)),
    )
    .await;
    assert_eq!(
        (after.status(), after.consecutive_failures),
        (TaskStatus::Ready, 2),
        "the board allows 3"
    );
    assert_eq!(
        last_outcome(&mut client, &created.id).await,
        RunOutcome::SpawnFailed
    );

    let grant = acquire_now(&mut client, &session.id).await;
    let after = exit(&mut client, &grant.claim_token, code(137)).await;
    assert_eq!(
        (after.status(), after.consecutive_failures),
        (TaskStatus::Blocked, 3)
    );
    assert!(kinds(&task_events(&mut client, &created.id).await).contains(&"gave_up"));
}

#[tokio::test]
async fn a_complete_resets_the_failure_count() {
    let (_service, mut client, session, grant) = claimed().await;
    exit(&mut client, &grant.claim_token, code(1)).await;
    let grant = acquire_now(&mut client, &session.id).await;
    let done = complete(&mut client, &grant.claim_token)
        .await
        .expect("Complete");
    assert_eq!(done.status(), TaskStatus::Done);
    assert_eq!(
        (done.consecutive_failures, done.outcomeless_attempts),
        (0, 0)
    );
    assert_eq!(done.current_run_id, "", "no run is current once done");
    assert_eq!(done.result, "done");
}

#[tokio::test]
async fn a_rate_limited_exit_cools_the_task_down_without_a_failure() {
    let (_service, mut client, session, grant) = claimed().await;
    let id = granted_task(&grant).to_owned();
    let before = std::time::SystemTime::now();
    let after = exit(&mut client, &grant.claim_token, code(75)).await;
    assert_eq!(after.status(), TaskStatus::Ready);
    assert_eq!(
        after.consecutive_failures, 0,
        "a rate limit is not a failure"
    );
    let until = after.cooldown_until.expect("cooldown_until is set");
    let until = std::time::UNIX_EPOCH + Duration::new(until.seconds as u64, until.nanos as u32);
    let wait = until.duration_since(before).expect("in the future");
    assert!(
        (Duration::from_secs(295)..=Duration::from_secs(305)).contains(&wait),
        "the default cooldown is 300 s: {wait:?}"
    );
    assert_eq!(
        last_outcome(&mut client, &id).await,
        RunOutcome::RateLimited
    );
    assert_eq!(runs(&mut client, &id).await[0].exit_code, Some(75));

    assert_eq!(
        acquire(&mut client, &session.id, 0).await,
        None,
        "not claimable while cooling down"
    );
    let candidates = preview(
        &mut client,
        pb::DispatchPreviewRequest {
            session_id: session.id.clone(),
            ..Default::default()
        },
    )
    .await;
    let cooling = candidate(&candidates, &id);
    assert!(!cooling.would_grant);
    assert!(
        cooling.why_not.contains("cooling down"),
        "{}",
        cooling.why_not
    );
}

#[tokio::test]
async fn a_terminal_provider_error_blocks_at_once() {
    let (_service, mut client, session, grant) = claimed().await;
    let id = granted_task(&grant).to_owned();
    let after = exit(&mut client, &grant.claim_token, code(78)).await;
    assert_eq!(after.status(), TaskStatus::Blocked);
    assert_eq!(after.consecutive_failures, 0);
    assert!(
        after.last_failure_error.contains("78"),
        "{}",
        after.last_failure_error
    );
    assert_eq!(last_outcome(&mut client, &id).await, RunOutcome::Crashed);
    assert_eq!(acquire(&mut client, &session.id, 0).await, None);
}

#[tokio::test]
async fn three_exits_without_an_outcome_block_the_task() {
    let (_service, mut client, session, mut grant) = claimed().await;
    let id = granted_task(&grant).to_owned();
    for round in 1..=3 {
        let after = exit(&mut client, &grant.claim_token, code(0)).await;
        assert_eq!(after.protocol_violations, round);
        assert_eq!(after.consecutive_failures, 0, "exit 0 has its own budget");
        if round < 3 {
            assert_eq!(after.status(), TaskStatus::Ready);
            grant = acquire_now(&mut client, &session.id).await;
        } else {
            assert_eq!(after.status(), TaskStatus::Blocked);
        }
    }
    assert!(kinds(&task_events(&mut client, &id).await).contains(&"gave_up"));

    let unblocked = calls::unblock(&mut client, &id).await;
    assert_eq!(
        (
            unblocked.status(),
            unblocked.protocol_violations,
            unblocked.outcomeless_attempts
        ),
        (TaskStatus::Ready, 0, 0),
        "an unblock resets the counters"
    );
}

#[tokio::test]
async fn an_exit_after_complete_only_records_the_exit_code() {
    let (_service, mut client, _session, grant) = claimed().await;
    let id = granted_task(&grant).to_owned();
    complete(&mut client, &grant.claim_token)
        .await
        .expect("Complete");
    let events = last_event_id(&mut client).await;
    let after = exit(&mut client, &grant.claim_token, code(0)).await;
    assert_eq!(after.status(), TaskStatus::Done);
    assert_eq!(after.protocol_violations, 0);
    let run = runs(&mut client, &id).await.pop().expect("run");
    assert_eq!(
        (run.outcome(), run.exit_code),
        (RunOutcome::Completed, Some(0))
    );
    assert_eq!(last_event_id(&mut client).await, events, "no event");
}

#[tokio::test]
async fn a_release_by_the_holder_requeues_without_a_failure() {
    let (_service, mut client, session, grant) = claimed().await;
    let id = granted_task(&grant).to_owned();
    let after = release(&mut client, &grant.claim_token)
        .await
        .expect("Release");
    assert_eq!(after.status(), TaskStatus::Ready);
    assert_eq!(after.consecutive_failures, 0);
    assert_eq!(after.outcomeless_attempts, 1);
    assert_eq!(after.current_run_id, "");
    assert_eq!(last_outcome(&mut client, &id).await, RunOutcome::Released);
    assert_lost(complete(&mut client, &grant.claim_token).await, "unknown");
    let again = acquire_now(&mut client, &session.id).await;
    assert_eq!((granted_task(&again), again.epoch), (id.as_str(), 2));
}

#[tokio::test]
async fn a_holder_block_ends_the_claim_with_the_block_rule() {
    let (_service, mut client, session, grant) = claimed().await;
    let id = granted_task(&grant).to_owned();
    let blocked = client
        .leases
        .block(pb::HolderBlockRequest {
            claim_token: grant.claim_token.clone(),
            reason: "need an API key".into(),
            kind: pb::BlockKind::NeedsInput.into(),
        })
        .await
        .expect("Block")
        .into_inner();
    assert_eq!(blocked.status(), TaskStatus::Blocked);
    assert_eq!(blocked.block_reason, "need an API key");
    assert_eq!(last_outcome(&mut client, &id).await, RunOutcome::Blocked);
    assert_eq!(acquire(&mut client, &session.id, 0).await, None);
    assert_lost(heartbeat(&mut client, &grant.claim_token).await, "unknown");
}

// ---------------------------------------------------------------------------------------------
// DispatchPreview.

#[tokio::test]
async fn dispatch_preview_says_what_would_be_granted_and_why_not_and_writes_nothing() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let board = "preview";
    create_board_with(&mut client, board, "", 0, 0).await;
    let on = |title: &str, priority: i32| pb::CreateTaskRequest {
        assignee: CODER.into(),
        priority,
        ..new_task(board, title)
    };
    let writer = create_task(
        &mut client,
        pb::CreateTaskRequest {
            assignee: "writer".into(),
            ..on("for writers", 10)
        },
    )
    .await;
    let gpu = create_task(
        &mut client,
        pb::CreateTaskRequest {
            required_capabilities: vec!["gpu".into()],
            ..on("needs a gpu", 9)
        },
    )
    .await;
    let pinned = create_task(
        &mut client,
        pb::CreateTaskRequest {
            target_machine: "m9".into(),
            ..on("runs on m9", 8)
        },
    )
    .await;
    let cooling = create_task(&mut client, on("rate limited", 7)).await;
    let unassigned = create_task(
        &mut client,
        pb::CreateTaskRequest {
            assignee: String::new(),
            ..on("nobody's", 6)
        },
    )
    .await;
    let best = create_task(&mut client, on("the one", 5)).await;
    let later = create_task(&mut client, on("after it", 4)).await;
    let waiting_child = create_task(
        &mut client,
        pb::CreateTaskRequest {
            parents: vec![later.id.clone()],
            ..on("child", 100)
        },
    )
    .await;

    // Rate-limit `cooling` through a real claim by a session that runs only it.
    let pinned_session = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            capabilities: vec!["gpu".into()],
            machine_id: "m9".into(),
            ..session_request(CODER, 300_000)
        },
    )
    .await;
    let mut cooled = false;
    let mut held = Vec::new();
    while !cooled {
        let grant = acquire_now(&mut client, &pinned_session.id).await;
        if granted_task(&grant) == cooling.id {
            exit(&mut client, &grant.claim_token, code(75)).await;
            cooled = true;
        } else {
            held.push(grant.claim_token);
        }
    }
    for token in held {
        release(&mut client, &token).await.expect("Release");
    }

    let described = pb::DispatchPreviewRequest {
        profiles: vec![CODER.into()],
        capabilities: vec!["net".into()],
        machine_id: "m1".into(),
        board: board.into(),
        ..Default::default()
    };
    let events_before = last_event_id(&mut client).await;
    let candidates = preview(&mut client, described.clone()).await;
    assert_eq!(
        candidate_ids(&candidates),
        [
            writer.id.as_str(),
            gpu.id.as_str(),
            pinned.id.as_str(),
            cooling.id.as_str(),
            unassigned.id.as_str(),
            best.id.as_str(),
            later.id.as_str(),
        ],
        "ready tasks in dispatch order; the todo child is not a candidate"
    );
    let granted: Vec<&str> = candidates
        .iter()
        .filter(|c| c.would_grant)
        .map(|c| c.task.as_ref().expect("task").id.as_str())
        .collect();
    assert_eq!(granted, [best.id.as_str()]);
    let why = |id: &str| candidate(&candidates, id).why_not.clone();
    let expect_why = |id: &str, words: &[&str]| {
        let text = why(id);
        for word in words {
            assert!(text.contains(word), "why not {id}: {text:?} lacks {word:?}");
        }
    };
    expect_why(&writer.id, &["profile", "writer"]);
    expect_why(&gpu.id, &["capabilit", "gpu"]);
    expect_why(&pinned.id, &["machine", "m9"]);
    expect_why(&cooling.id, &["cooling down"]);
    expect_why(&unassigned.id, &["assignee"]);
    assert_eq!(why(&best.id), "");
    assert_eq!(why(&later.id), "", "it could be granted after the first");
    assert!(!candidate_ids(&candidates).contains(&waiting_child.id.as_str()));

    // The same question for an open session, and the dispatcher agrees with the preview.
    let session = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            capabilities: vec!["gpu".into()],
            slots: 1,
            ..session_request(CODER, 300_000)
        },
    )
    .await;
    let events_before_session_preview = last_event_id(&mut client).await;
    let for_session = preview(
        &mut client,
        pb::DispatchPreviewRequest {
            session_id: session.id.clone(),
            board: board.into(),
            ..Default::default()
        },
    )
    .await;
    assert!(candidate(&for_session, &gpu.id).would_grant);
    assert_eq!(
        last_event_id(&mut client).await,
        events_before_session_preview,
        "a preview writes nothing"
    );
    let grant = acquire_now(&mut client, &session.id).await;
    assert_eq!(
        granted_task(&grant),
        gpu.id,
        "Acquire grants what was previewed"
    );
    let full = preview(
        &mut client,
        pb::DispatchPreviewRequest {
            session_id: session.id.clone(),
            board: board.into(),
            ..Default::default()
        },
    )
    .await;
    assert!(full.iter().all(|c| !c.would_grant));
    assert!(
        candidate(&full, &best.id).why_not.contains("slot"),
        "{}",
        candidate(&full, &best.id).why_not
    );

    // A parent that went back to review makes its ready child wait.
    complete(&mut client, &grant.claim_token)
        .await
        .expect("Complete");
    let child_of_gpu = create_task(
        &mut client,
        pb::CreateTaskRequest {
            parents: vec![gpu.id.clone()],
            ..on("child of a finished parent", 0)
        },
    )
    .await;
    assert_eq!(child_of_gpu.status(), TaskStatus::Ready);
    client
        .tasks
        .reopen_review(pb::ReopenReviewRequest {
            id: gpu.id.clone(),
            actor: "tester".into(),
        })
        .await
        .expect("ReopenReview");
    // Sent back to `todo`, the child is no candidate.
    let after = preview(&mut client, described.clone()).await;
    assert_eq!(
        status_of(&mut client, &child_of_gpu.id).await,
        TaskStatus::Todo,
        "the ready child of a reopened parent goes back to todo"
    );
    assert!(
        !candidate_ids(&after).contains(&child_of_gpu.id.as_str()),
        "a todo task is no candidate"
    );

    // Nothing the previews did reached the event log.
    let events_after = last_event_id(&mut client).await;
    preview(&mut client, described).await;
    assert_eq!(last_event_id(&mut client).await, events_after);
    assert!(events_after > events_before, "the test itself did write");

    let unknown = refused(
        client
            .admin
            .dispatch_preview(pb::DispatchPreviewRequest {
                session_id: "s_0000000000000000".into(),
                ..Default::default()
            })
            .await,
        Code::Aborted,
    );
    assert!(unknown.message().contains("s_0000000000000000"));
}

// ---------------------------------------------------------------------------------------------
// Stats.

#[tokio::test]
async fn stats_count_tasks_sessions_claims_and_waiting_pollers() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let empty = stats(&mut client).await;
    assert_eq!(
        (
            empty.live_sessions,
            empty.live_claims,
            empty.waiting_pollers
        ),
        (0, 0, 0)
    );
    assert_eq!(empty.oldest_ready_age_ms, 0);

    let session = open_session(&mut client, CODER, 300_000).await;
    for n in 0..4 {
        create_assigned(&mut client, "", &format!("ready {n}"), CODER).await;
    }
    for status in [TaskStatus::Blocked, TaskStatus::Triage] {
        create_task(
            &mut client,
            pb::CreateTaskRequest {
                initial_status: status.into(),
                ..new_task("", "parked")
            },
        )
        .await;
    }
    let doomed = create_assigned(&mut client, "", "to archive", "nobody").await;
    calls::archive(&mut client, &doomed.id).await;
    let done = acquire_now(&mut client, &session.id).await;
    complete(&mut client, &done.claim_token)
        .await
        .expect("Complete");
    acquire_now(&mut client, &session.id).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let now = stats(&mut client).await;
    let mut counts: Vec<(&str, u64)> = now
        .tasks_by_status
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .filter(|(_, v)| *v > 0)
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("archived", 1),
            ("blocked", 1),
            ("done", 1),
            ("ready", 2),
            ("running", 1),
            ("triage", 1),
        ]
    );
    assert_eq!((now.live_sessions, now.live_claims), (1, 1));
    assert!(
        now.oldest_ready_age_ms >= 20,
        "oldest ready age {}",
        now.oldest_ready_age_ms
    );
    assert_eq!(now.waiting_pollers, 0);

    // A poller for a profile with no work waits, and is counted while it waits.
    let idle = open_session(&mut client, "idle", 300_000).await;
    let waiting = spawn_acquire(&client, &idle.id, 30_000);
    until_waiting(&client, 1).await;
    assert_eq!(stats(&mut client).await.live_sessions, 2);
    create_assigned(&mut client, "", "for the idle one", "idle").await;
    waiting
        .await
        .expect("join")
        .expect("Acquire")
        .expect("granted");
    until_waiting(&client, 0).await;
    assert_eq!(stats(&mut client).await.live_claims, 2);

    // A poller whose wait has passed is no longer counted.
    assert_eq!(acquire(&mut client, &idle.id, 300).await, None);
    until_waiting(&client, 0).await;
}

// ---------------------------------------------------------------------------------------------
// Malformed and refused requests.

/// What must not change when a request is refused.
#[derive(Debug, PartialEq)]
struct Snapshot {
    last_event: u64,
    live_sessions: u64,
    live_claims: u64,
    held: pb::Task,
}

async fn snapshot(client: &mut Client, held_task: &str) -> Snapshot {
    let now = stats(client).await;
    Snapshot {
        last_event: last_event_id(client).await,
        live_sessions: now.live_sessions,
        live_claims: now.live_claims,
        held: task(client, held_task).await,
    }
}

#[tokio::test]
async fn malformed_lease_requests_are_refused_and_change_nothing() {
    let (_service, mut client, session) = service_with_session().await;
    let finished = create_assigned(&mut client, "", "finished", CODER).await;
    let grant = acquire_now(&mut client, &session.id).await;
    assert_eq!(granted_task(&grant), finished.id);
    complete(&mut client, &grant.claim_token)
        .await
        .expect("Complete");
    let spent = grant.claim_token;
    create_assigned(&mut client, "", "held", CODER).await;
    let live = acquire_now(&mut client, &session.id).await;
    let held_task = granted_task(&live).to_owned();
    let live = live.claim_token;

    let before = snapshot(&mut client, &held_task).await;
    let base = || session_request(CODER, 10_000);
    let bad_sessions = [
        (
            "no profiles",
            pb::OpenSessionRequest {
                profiles: vec![],
                ..base()
            },
            "profiles",
        ),
        (
            "an empty profile",
            pb::OpenSessionRequest {
                profiles: vec![String::new()],
                ..base()
            },
            "profiles",
        ),
        (
            "a malformed profile",
            pb::OpenSessionRequest {
                profiles: vec!["no spaces please".into()],
                ..base()
            },
            "profiles",
        ),
        (
            "ttl 0",
            pb::OpenSessionRequest {
                ttl_ms: 0,
                ..base()
            },
            "ttl_ms",
        ),
        (
            "ttl 999",
            pb::OpenSessionRequest {
                ttl_ms: 999,
                ..base()
            },
            "ttl_ms",
        ),
        (
            "ttl 300001",
            pb::OpenSessionRequest {
                ttl_ms: 300_001,
                ..base()
            },
            "ttl_ms",
        ),
        (
            "slots 0",
            pb::OpenSessionRequest { slots: 0, ..base() },
            "slots",
        ),
        (
            "slots 257",
            pb::OpenSessionRequest {
                slots: 257,
                ..base()
            },
            "slots",
        ),
        (
            "no machine id",
            pb::OpenSessionRequest {
                machine_id: String::new(),
                ..base()
            },
            "machine_id",
        ),
    ];
    for (what, request, field) in bad_sessions {
        assert_refused(
            what,
            client.leases.open_session(request).await,
            Code::InvalidArgument,
            field,
        );
    }
    for (what, wait_ms) in [("wait -1", -1), ("wait 300001", 300_001)] {
        assert_refused(
            what,
            try_acquire(&mut client, &session.id, wait_ms).await,
            Code::InvalidArgument,
            "wait_ms",
        );
    }
    assert_refused(
        "a malformed session id",
        try_acquire(&mut client, "session-1", 0).await,
        Code::InvalidArgument,
        "session_id",
    );
    assert_refused(
        "an unknown session",
        try_acquire(&mut client, "s_0000000000000000", 0).await,
        Code::Aborted,
        "s_0000000000000000",
    );
    // A completed claim's token: a retried Complete is answered as already recorded (see
    // retries.rs); any other outcome is refused.
    assert_lost(release(&mut client, &spent).await, "unknown");
    assert_lost(heartbeat(&mut client, &spent).await, "unknown");
    assert_lost(complete(&mut client, MADE_UP_TOKEN).await, "unknown");
    assert_refused(
        "ReportExit without an exit",
        report_exit(&mut client, &live, None).await,
        Code::InvalidArgument,
        "exit",
    );
    assert_refused(
        "ReportExit with spawn_failed false",
        report_exit(&mut client, &live, Some(Exit::SpawnFailed(false))).await,
        Code::InvalidArgument,
        "exit",
    );
    assert_refused(
        "ReportExit with signal 0",
        report_exit(&mut client, &live, Some(Exit::Signal(0))).await,
        Code::InvalidArgument,
        "signal",
    );
    assert_refused(
        "RequestChanges without a reason",
        client
            .leases
            .request_changes(pb::RequestChangesRequest {
                claim_token: live.clone(),
                reason: String::new(),
            })
            .await,
        Code::InvalidArgument,
        "reason",
    );
    assert_refused(
        "a note over 4096 bytes",
        client
            .leases
            .heartbeat(pb::HeartbeatRequest {
                claim_token: live.clone(),
                note: "x".repeat(4097),
            })
            .await,
        Code::InvalidArgument,
        "note",
    );
    assert_refused(
        "a malformed claim token",
        complete(&mut client, "not-a-token").await,
        Code::InvalidArgument,
        "claim_token",
    );
    assert_refused(
        "a malformed session id to close",
        client
            .leases
            .close_session(pb::CloseSessionRequest {
                session_id: "nope".into(),
            })
            .await,
        Code::InvalidArgument,
        "session_id",
    );
    assert_eq!(
        snapshot(&mut client, &held_task).await,
        before,
        "refused requests change nothing"
    );
    complete(&mut client, &live)
        .await
        .expect("the live claim is intact");

    for (ttl_ms, slots) in [(1_000, 1), (300_000, 256)] {
        let request = pb::OpenSessionRequest {
            ttl_ms,
            slots,
            ..base()
        };
        client
            .leases
            .open_session(request)
            .await
            .unwrap_or_else(|s| panic!("ttl {ttl_ms} and {slots} slots are allowed: {s}"));
    }
}
