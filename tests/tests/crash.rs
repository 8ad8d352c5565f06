//! kill -9 while claims are held: after a restart the claims are still there and renewable,
//! and the holders' completions land.

use kanband_proto::pb;
use kanband_tests::daemon::{Daemon, data_dir};

#[tokio::test]
async fn claims_survive_kill_9_and_their_completions_land() {
    let (_dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    let session = client
        .leases
        .open_session(pb::OpenSessionRequest {
            machine_id: "crash-test".into(),
            profiles: vec!["p".into()],
            slots: 3,
            ttl_ms: 60_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids = Vec::new();
    for i in 0..3 {
        let created = client
            .tasks
            .create_task(pb::CreateTaskRequest {
                title: format!("held {i}"),
                assignee: "p".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        ids.push(created.task.unwrap().id);
    }
    let mut grants = Vec::new();
    for _ in 0..3 {
        let grant = client
            .leases
            .acquire(pb::AcquireRequest {
                session_id: session.id.clone(),
                wait_ms: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .grant
            .expect("a grant");
        grants.push(grant);
    }
    drop(client);
    daemon.kill9().await;

    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    for grant in &grants {
        let task = grant.task.as_ref().unwrap();
        let now = client
            .tasks
            .get_task(pb::GetTaskRequest {
                id: task.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .task
            .unwrap();
        assert_eq!(
            now.status(),
            pb::TaskStatus::Running,
            "{} is still held",
            task.id
        );
        assert_eq!(now.epoch, grant.epoch, "no new claim was made");
        client
            .leases
            .renew(pb::RenewRequest {
                claim_token: grant.claim_token.clone(),
            })
            .await
            .unwrap_or_else(|status| panic!("the old token renews after the restart: {status}"));
    }
    for grant in &grants {
        let done = client
            .leases
            .complete(pb::CompleteRequest {
                claim_token: grant.claim_token.clone(),
                summary: "finished across a crash".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(done.status(), pb::TaskStatus::Done);
    }
    let report = client
        .admin
        .check_invariants(pb::CheckInvariantsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(report.ok, "{:?}", report.violations);
    drop(client);
    daemon.terminate().await;
}
