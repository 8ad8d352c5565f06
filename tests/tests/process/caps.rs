//! `--profile-cap PROFILE=N` end to end: the daemon's flag caps how many claims of a profile
//! run at once, across sessions, and the preview says why a task waits.

use kanband_proto::pb;
use kanband_tests::{
    calls::{acquire, acquire_now, complete, create_assigned, granted_task, open_session},
    daemon::{Daemon, data_dir},
};

use crate::support::shared;

#[tokio::test]
async fn a_profile_cap_from_the_command_line_limits_running_claims() {
    let _machine = shared().await;
    let (_dir, data) = data_dir();
    let daemon = Daemon::start_with(&data, &["--profile-cap", "capped=2"]).await;
    let mut client = daemon.client().await;
    // Two sessions with slots to spare: only the cap can hold a task back.
    let first = open_session(&mut client, "capped", 60_000).await;
    let second = open_session(&mut client, "capped", 60_000).await;
    for n in 0..3 {
        create_assigned(&mut client, "", &format!("capped {n}"), "capped").await;
    }
    let free = create_assigned(&mut client, "", "uncapped", "free").await;

    let one = acquire_now(&mut client, &first.id).await;
    acquire_now(&mut client, &second.id).await;
    for session in [&first, &second] {
        assert_eq!(
            acquire(&mut client, &session.id, 0).await,
            None,
            "the profile runs its cap of 2"
        );
    }
    let preview = client
        .admin
        .dispatch_preview(pb::DispatchPreviewRequest {
            session_id: first.id.clone(),
            ..Default::default()
        })
        .await
        .expect("DispatchPreview")
        .into_inner();
    let waiting = preview
        .candidates
        .iter()
        .find(|c| !c.would_grant)
        .expect("the third task is a candidate that waits");
    assert!(
        waiting.why_not.contains("its cap"),
        "the preview names the cap: {}",
        waiting.why_not
    );

    // Another profile is not capped.
    let other = open_session(&mut client, "free", 60_000).await;
    assert_eq!(
        granted_task(&acquire_now(&mut client, &other.id).await),
        free.id
    );

    // A finished claim frees a place under the cap.
    complete(&mut client, &one.claim_token)
        .await
        .expect("Complete");
    acquire_now(&mut client, &second.id).await;
    drop(client);
    daemon.terminate().await;
}
