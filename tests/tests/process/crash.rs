//! kill -9 while claims are held: after a restart the claims are still there and renewable,
//! and the holders' completions land.

use kanband_proto::pb;
use kanband_tests::{
    calls::{
        acquire_now, assert_invariants, complete, create_assigned, open_session_with, renew,
        session_request, task,
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
