//! A holder whose reply was lost retries: the same call that ended its claim, with the same
//! token, succeeds again with the task as it is now and the header `kanban-already-recorded:
//! true`, and records nothing twice; a different call on the ended claim is still refused.

use kanband_gateway::Client;
use kanband_proto::{
    ALREADY_RECORDED_HEADER,
    pb::{self, TaskStatus, report_exit_request::Exit},
};
use kanband_tests::calls::{
    CODER, acquire_now, assert_lost, create_assigned, granted_task, open_session, runs, task_events,
};
use kanband_tests::spawn_service;
use tonic::{Response, Status};

/// One holder call that ends a claim, sent as a raw request so its response headers are seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Complete,
    Block,
    RequestReview,
    Release,
    ReportExit,
}

const CALLS: [Call; 5] = [
    Call::Complete,
    Call::Block,
    Call::RequestReview,
    Call::Release,
    Call::ReportExit,
];

async fn send(client: &mut Client, call: Call, token: &str) -> Result<Response<pb::Task>, Status> {
    let token = token.to_owned();
    let leases = &mut client.leases;
    match call {
        Call::Complete => {
            leases
                .complete(pb::CompleteRequest {
                    claim_token: token,
                    result: "done".into(),
                    ..Default::default()
                })
                .await
        }
        Call::Block => {
            leases
                .block(pb::HolderBlockRequest {
                    claim_token: token,
                    kind: pb::BlockKind::NeedsInput.into(),
                    reason: "a question".into(),
                })
                .await
        }
        Call::RequestReview => {
            leases
                .request_review(pb::RequestReviewRequest {
                    claim_token: token,
                    summary: "look".into(),
                })
                .await
        }
        Call::Release => {
            leases
                .release(pb::ReleaseRequest {
                    claim_token: token,
                    reason: "giving it back".into(),
                })
                .await
        }
        Call::ReportExit => {
            leases
                .report_exit(pb::ReportExitRequest {
                    claim_token: token,
                    exit: Some(Exit::Code(1)),
                    output_tail: String::new(),
                })
                .await
        }
    }
}

fn already_recorded(response: &Response<pb::Task>) -> bool {
    response
        .metadata()
        .get(ALREADY_RECORDED_HEADER)
        .is_some_and(|v| v == "true")
}

#[tokio::test]
async fn the_same_call_retried_is_answered_as_already_recorded_and_another_is_refused() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = open_session(&mut client, CODER, 60_000).await;
    for call in CALLS {
        let created = create_assigned(&mut client, "", &format!("{call:?}"), CODER).await;
        let grant = acquire_now(&mut client, &session.id).await;
        assert_eq!(granted_task(&grant), created.id);
        let first = send(&mut client, call, &grant.claim_token)
            .await
            .unwrap_or_else(|status| panic!("{call:?}: {status}"));
        assert!(
            !already_recorded(&first),
            "{call:?}: the first call records"
        );
        let events = task_events(&mut client, &created.id).await.len();

        let retry = send(&mut client, call, &grant.claim_token)
            .await
            .unwrap_or_else(|status| panic!("{call:?} retried: {status}"));
        assert!(already_recorded(&retry), "{call:?} retried: flagged");
        assert_eq!(
            retry.get_ref(),
            first.get_ref(),
            "{call:?} retried: the task as it is now"
        );
        assert_eq!(
            task_events(&mut client, &created.id).await.len(),
            events,
            "{call:?} retried: nothing recorded twice"
        );
        assert_eq!(runs(&mut client, &created.id).await.len(), 1);

        let other = CALLS
            .into_iter()
            .find(|c| *c != call && *c != Call::ReportExit)
            .expect("another call");
        assert_lost(
            send(&mut client, other, &grant.claim_token).await,
            "unknown",
        );
        // Take the task out of the way of the next round.
        if first.get_ref().status() == TaskStatus::Ready {
            client
                .tasks
                .archive_task(pb::ArchiveTaskRequest {
                    id: created.id.clone(),
                    actor: "tester".into(),
                    reason: String::new(),
                })
                .await
                .expect("ArchiveTask");
        }
    }
}

#[tokio::test]
async fn a_retried_exit_report_counts_its_failure_once() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = open_session(&mut client, CODER, 60_000).await;
    create_assigned(&mut client, "", "crashes once", CODER).await;
    let grant = acquire_now(&mut client, &session.id).await;
    let first = send(&mut client, Call::ReportExit, &grant.claim_token)
        .await
        .expect("ReportExit");
    let retry = send(&mut client, Call::ReportExit, &grant.claim_token)
        .await
        .expect("ReportExit retried");
    assert!(already_recorded(&retry));
    assert_eq!(first.get_ref().consecutive_failures, 1);
    assert_eq!(retry.get_ref().consecutive_failures, 1, "counted once");
}
