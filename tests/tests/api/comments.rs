//! Who may comment: a comment that carries a claim token (a worker's) is fenced like any
//! holder call, an operator's (no token) is not.

use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::calls::{assert_lost, complete, two_claims};
use kanband_tests::spawn_service;
use tonic::Status;

async fn comment(client: &mut Client, task_id: &str, token: &str) -> Result<pb::Comment, Status> {
    client
        .tasks
        .add_comment(pb::AddCommentRequest {
            task_id: task_id.to_owned(),
            author: "someone".into(),
            body: "a note".into(),
            claim_token: token.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_comment_with_a_claim_token_is_fenced_and_an_operators_is_not() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let [(first, held), (second, other)] = two_claims(&mut client).await;

    comment(&mut client, &first.id, &held.claim_token)
        .await
        .expect("the holder comments on its own task");
    comment(&mut client, &first.id, "")
        .await
        .expect("an operator comments without a token");
    let status = assert_lost(
        comment(&mut client, &first.id, &other.claim_token).await,
        "unknown",
    );
    assert!(status.message().contains(&first.id), "{status:?}");

    complete(&mut client, &held.claim_token)
        .await
        .expect("Complete");
    assert_lost(
        comment(&mut client, &first.id, &held.claim_token).await,
        "unknown",
    );
    client
        .tasks
        .reclaim_task(pb::ReclaimTaskRequest {
            id: second.id.clone(),
            actor: "operator".into(),
            grace_seconds: 0,
            reason: String::new(),
        })
        .await
        .expect("ReclaimTask");
    assert_lost(
        comment(&mut client, &second.id, &other.claim_token).await,
        "revoked",
    );
    comment(&mut client, &second.id, "")
        .await
        .expect("an operator still comments on it");
    let detail = kanband_tests::calls::detail(&mut client, &first.id).await;
    assert_eq!(detail.comments.len(), 2, "only the accepted comments");
}
