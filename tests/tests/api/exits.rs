//! What ReportExit records on the run: the output tail a supervisor sends is the run's error
//! when the worker failed, and nowhere when it exited 0 (after its own outcome, or without
//! one), whatever the supervisor sent.

use kanband_gateway::Client;
use kanband_proto::pb::{self, RunOutcome, report_exit_request::Exit};
use kanband_tests::calls::{
    CODER, acquire_now, archive, complete, create_assigned, granted_task, open_session, runs,
};
use kanband_tests::spawn_service;

/// What a worker printed before it ended.
const OUTPUT: &str = "step 1 ok\nstep 2 ok\n";

/// Claims a new task, completes it if asked, then reports the exit `how` with [`OUTPUT`] as
/// its tail; returns the run, and archives the task so no later claim gets it back.
async fn exited(
    client: &mut Client,
    session: &pb::Session,
    how: Exit,
    complete_first: bool,
) -> pb::Run {
    let created = create_assigned(client, "", &format!("{how:?}"), CODER).await;
    let grant = acquire_now(client, &session.id).await;
    assert_eq!(granted_task(&grant), created.id);
    if complete_first {
        complete(client, &grant.claim_token)
            .await
            .expect("Complete");
    }
    client
        .leases
        .report_exit(pb::ReportExitRequest {
            claim_token: grant.claim_token.clone(),
            exit: Some(how),
            output_tail: OUTPUT.into(),
        })
        .await
        .expect("ReportExit");
    let mut runs = runs(client, &created.id).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    archive(client, &created.id).await;
    runs.pop().unwrap()
}

#[tokio::test]
async fn an_exit_0_leaves_its_output_out_of_the_error_and_a_failure_keeps_it() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = open_session(&mut client, CODER, 60_000).await;

    let run = exited(&mut client, &session, Exit::Code(0), true).await;
    assert_eq!(run.outcome(), RunOutcome::Completed, "{run:?}");
    assert_eq!(run.exit_code, Some(0));
    assert_eq!(run.error, "", "{run:?}");

    let run = exited(&mut client, &session, Exit::Code(0), false).await;
    assert_eq!(run.outcome(), RunOutcome::Crashed, "{run:?}");
    assert_eq!(
        run.error, "the worker exited 0 without reporting an outcome",
        "{run:?}"
    );

    let run = exited(&mut client, &session, Exit::Code(2), false).await;
    assert_eq!(run.outcome(), RunOutcome::Crashed, "{run:?}");
    assert_eq!(run.error, OUTPUT, "{run:?}");
}
