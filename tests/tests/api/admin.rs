//! Admin.CheckInvariants on a live service after a mixed workload, and Admin.Backup producing
//! a consistent copy while the service runs.

use kanband_proto::pb;
use kanband_tests::spawn_service;
use tokio_rusqlite::rusqlite;

#[tokio::test]
async fn invariants_hold_after_claims_outcomes_and_revocations() {
    let service = spawn_service().await;
    let mut client = service.tcp.clone();
    let session = client
        .leases
        .open_session(pb::OpenSessionRequest {
            machine_id: "m".into(),
            profiles: vec!["p".into()],
            slots: 4,
            ttl_ms: 30_000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids = Vec::new();
    for i in 0..4 {
        let task = client
            .tasks
            .create_task(pb::CreateTaskRequest {
                title: format!("t{i}"),
                assignee: "p".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .task
            .unwrap();
        ids.push(task.id);
    }
    let mut tokens = Vec::new();
    for _ in 0..4 {
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
        tokens.push(grant.claim_token);
    }
    client
        .leases
        .complete(pb::CompleteRequest {
            claim_token: tokens[0].clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .leases
        .release(pb::ReleaseRequest {
            claim_token: tokens[1].clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .tasks
        .archive_task(pb::ArchiveTaskRequest {
            id: ids[2].clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    // tokens[2] is being revoked and tokens[3] is live: both are legitimate states.

    let report = client
        .admin
        .check_invariants(pb::CheckInvariantsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(report.ok, "{:?}", report.violations);
    assert_eq!((report.tasks, report.claims), (4, 4));
    assert!(report.events > 0);
}

#[tokio::test]
async fn a_backup_is_a_consistent_database() {
    let service = spawn_service().await;
    let mut client = service.unix.clone();
    for i in 0..20 {
        client
            .tasks
            .create_task(pb::CreateTaskRequest {
                title: format!("t{i}"),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.db");
    let written = client
        .admin
        .backup(pb::BackupRequest {
            path: path.display().to_string(),
        })
        .await
        .unwrap()
        .into_inner();
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

    let again = client
        .admin
        .backup(pb::BackupRequest {
            path: path.display().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::AlreadyExists);
    let relative = client
        .admin
        .backup(pb::BackupRequest {
            path: "backup.db".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(relative.code(), tonic::Code::InvalidArgument);
    assert!(
        relative.message().starts_with("path:"),
        "{}",
        relative.message()
    );
}
