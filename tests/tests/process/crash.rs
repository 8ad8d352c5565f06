//! kill -9 while claims are held: after a restart the claims are still there and renewable,
//! and the holders' completions land; a claim renewed well past its first deadline and
//! restarted within its TTL is not re-armed (renewals persist a coarse deadline as they go,
//! not only at a clean shutdown).

use std::time::Duration;

use kanband_proto::pb;
use kanband_tests::{
    calls::{
        acquire_now, assert_invariants, complete, create_assigned, open_session_with, renew,
        session_request, task, task_events,
    },
    daemon::{Daemon, data_dir},
};

use crate::support::shared;

#[tokio::test]
async fn claims_survive_kill_9_and_their_completions_land() {
    let _machine = shared().await;
    let (_dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    let session = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            machine_id: "crash-test".into(),
            slots: 3,
            ..session_request("p", 60_000)
        },
    )
    .await;
    for i in 0..3 {
        create_assigned(&mut client, "", &format!("held {i}"), "p").await;
    }
    let mut grants = Vec::new();
    for _ in 0..3 {
        grants.push(acquire_now(&mut client, &session.id).await);
    }
    drop(client);
    daemon.kill9().await;

    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    for grant in &grants {
        let id = &grant.task.as_ref().expect("a grant carries its task").id;
        let now = task(&mut client, id).await;
        assert_eq!(now.status(), pb::TaskStatus::Running, "{id} is still held");
        assert_eq!(now.epoch, grant.epoch, "no new claim was made");
        renew(&mut client, &grant.claim_token)
            .await
            .unwrap_or_else(|status| panic!("the old token renews after the restart: {status}"));
    }
    for grant in &grants {
        let done = complete(&mut client, &grant.claim_token)
            .await
            .expect("Complete after the crash");
        assert_eq!(done.status(), pb::TaskStatus::Done);
    }
    assert_invariants(&mut client).await;
    drop(client);
    daemon.terminate().await;
}

#[tokio::test]
async fn a_claim_renewed_past_its_first_deadline_survives_kill_9_without_being_rearmed() {
    const TTL_MS: u32 = 4_000;
    let _machine = shared().await;
    let (_dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    let session = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            machine_id: "crash-test".into(),
            ..session_request("p", TTL_MS)
        },
    )
    .await;
    let created = create_assigned(&mut client, "", "renewed", "p").await;
    let grant = acquire_now(&mut client, &session.id).await;
    // Renewing is the workload here: 1.5 TTLs of renewals every 250 ms, so the deadline moves
    // well past the one recorded at the grant.
    let mut every = tokio::time::interval(Duration::from_millis(250));
    for _ in 0..(TTL_MS * 3 / 2 / 250) {
        every.tick().await;
        renew(&mut client, &grant.claim_token).await.expect("Renew");
    }
    drop(client);
    daemon.kill9().await;

    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    let rearmed = task_events(&mut client, &created.id)
        .await
        .into_iter()
        .filter(|e| e.kind == "lease_rearmed")
        .count();
    assert_eq!(rearmed, 0, "restarted well within the TTL");
    renew(&mut client, &grant.claim_token)
        .await
        .expect("the claim is still held");
    drop(client);
    daemon.terminate().await;
}
