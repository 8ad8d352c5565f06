//! kill -9 while claims are held: after a restart the claims are still there and renewable,
//! and the holders' completions land; a claim renewed well past its first deadline and
//! restarted within its TTL is not re-armed (renewals persist a coarse deadline as they go,
//! not only at a clean shutdown); an upload cut off by kill -9 leaves no file behind after
//! the restart.

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

/// The files in a data directory's attachment directory, sorted.
fn attachment_files(data: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data.join(kanband::store::ATTACHMENTS_DIR))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn kill_9_in_the_middle_of_an_upload_leaves_no_file_after_the_restart() {
    let _machine = shared().await;
    let (_dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    let task = kanband_tests::calls::create(&mut client, "files").await;
    let kept = kanband_tests::calls::upload(&mut client, &task.id, "kept", b"kept bytes")
        .await
        .expect("Upload");

    // An upload that sends its header and a first chunk, then waits: its bytes are in a
    // temporary file when kanband dies.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::UploadRequest {
        part: Some(pb::upload_request::Part::Header(pb::UploadHeader {
            task_id: task.id.clone(),
            name: "interrupted".into(),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    tx.send(pb::UploadRequest {
        part: Some(pb::upload_request::Part::Chunk(vec![7; 100_000])),
    })
    .await
    .unwrap();
    let mut uploader = client.clone();
    let pending = tokio::spawn(async move {
        uploader
            .attachments
            .upload(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    crate::support::eventually(
        "the upload's temporary file exists",
        Duration::from_secs(20),
        String::new,
        async || {
            let files = attachment_files(&data);
            if files.iter().any(|name| name.starts_with(".partial-")) {
                Ok(())
            } else {
                Err(format!("{files:?}"))
            }
        },
    )
    .await;
    drop(client);
    daemon.kill9().await;
    assert!(
        pending.await.unwrap().is_err(),
        "the upload died with kanband"
    );
    drop(tx);
    // What the one window no crash test can time leaves (a blob renamed into place whose row
    // never committed) is the same kind of file: one no row names.
    let orphan = "f".repeat(64);
    std::fs::write(
        data.join(kanband::store::ATTACHMENTS_DIR).join(&orphan),
        b"orphan",
    )
    .unwrap();

    let daemon = Daemon::start(&data).await;
    assert_eq!(attachment_files(&data), vec![kept.sha256.clone()]);
    let mut client = daemon.client().await;
    let (_, bytes, _) = kanband_tests::calls::download(&mut client, &kept.id)
        .await
        .expect("Download after the restart");
    assert_eq!(bytes, b"kept bytes");
    assert_eq!(
        kanband_tests::calls::attachments(&mut client, &task.id)
            .await
            .len(),
        1
    );
    drop(client);
    daemon.terminate().await;
}
