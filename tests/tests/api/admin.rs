//! Admin.CheckInvariants on a live service after a mixed workload, and Admin.Backup producing
//! a consistent copy while the service runs.

use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::{
    calls::{
        acquire_now, archive, assert_invariants, complete, create, create_assigned,
        open_session_with, release, session_request,
    },
    spawn_service,
};
use tokio_rusqlite::rusqlite;
use tonic::{Code, Status};

use crate::support::refusal::assert_refused;

#[tokio::test]
async fn invariants_hold_after_claims_outcomes_and_revocations() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            machine_id: "m".into(),
            ..session_request("p", 30_000)
        },
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            create_assigned(&mut client, "", &format!("t{i}"), "p")
                .await
                .id,
        );
    }
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(acquire_now(&mut client, &session.id).await.claim_token);
    }
    complete(&mut client, &tokens[0]).await.expect("Complete");
    release(&mut client, &tokens[1]).await.expect("Release");
    archive(&mut client, &ids[2]).await;
    // tokens[2] is being revoked and tokens[3] is live: both are legitimate states.

    let report = assert_invariants(&mut client).await;
    assert_eq!((report.tasks, report.claims), (4, 4));
    assert!(report.events > 0);
}

/// Admin.Backup to a path.
async fn backup(client: &mut Client, path: &str) -> Result<pb::BackupResponse, Status> {
    client
        .admin
        .backup(pb::BackupRequest {
            path: path.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn a_backup_is_a_consistent_database() {
    let service = spawn_service().await;
    let mut client = service.unix.clone();
    for i in 0..20 {
        create(&mut client, &format!("t{i}")).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.db").display().to_string();
    let written = backup(&mut client, &path).await.expect("Backup");
    assert!(written.bytes > 0);

    let copy = rusqlite::Connection::open(&path).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let tasks: i64 = copy
        .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tasks, 20);

    let again = backup(&mut client, &path).await;
    assert_eq!(again.expect_err("refused").code(), Code::AlreadyExists);
    assert_refused(
        "a relative backup path",
        backup(&mut client, "backup.db").await,
        Code::InvalidArgument,
        "path",
    );
}
