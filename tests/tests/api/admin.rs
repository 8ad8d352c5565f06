//! Admin.CheckInvariants on a live service after a mixed workload, and Admin.Backup producing
//! a consistent copy while the service runs.

use std::{os::unix::fs::PermissionsExt as _, path::Path};

use kanband::Settings;
use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::{
    calls::{
        acquire_now, archive, assert_invariants, complete, create, create_assigned,
        open_session_with, release, session_request,
    },
    spawn_service, spawn_service_with,
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

/// Admin.Backup to a file name.
async fn backup(client: &mut Client, name: &str) -> Result<pb::BackupResponse, Status> {
    client
        .admin
        .backup(pb::BackupRequest {
            path: name.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// The names in a directory with their contents (empty for what cannot be read).
fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap_or_default())
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_backup_is_a_consistent_private_database_in_the_backup_directory() {
    let service = spawn_service().await;
    let mut client = service.unix.clone();
    for i in 0..20 {
        create(&mut client, &format!("t{i}")).await;
    }
    let written = backup(&mut client, "backup.db").await.expect("Backup");
    assert!(written.bytes > 0);
    let dir = service.data_dir.join(kanband::store::BACKUP_DIR);
    let path = dir.join("backup.db");
    assert_eq!(Path::new(&written.path), path);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!((mode(&dir), mode(&path)), (0o700, 0o600));

    let copy = rusqlite::Connection::open(&path).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let tasks: i64 = copy
        .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tasks, 20);
    drop(copy);
}

#[tokio::test]
async fn a_backup_never_goes_outside_its_directory_nor_over_or_through_anything() {
    let service = spawn_service().await;
    let mut client = service.unix.clone();
    create(&mut client, "t").await;
    backup(&mut client, "taken.db").await.expect("Backup");
    let dir = service.data_dir.join(kanband::store::BACKUP_DIR);
    let outside = tempfile::tempdir().unwrap();
    let lure = outside.path().join("lure.db");
    std::os::unix::fs::symlink(&lure, dir.join("dangling.db")).unwrap();
    let before = listing(&dir);

    let path = outside.path().join("x.db").display().to_string();
    for (what, name, code) in [
        ("a path", path.as_str(), Code::InvalidArgument),
        ("a relative path", "sub/x.db", Code::InvalidArgument),
        ("the parent", "..", Code::InvalidArgument),
        ("up and out", "../x.db", Code::InvalidArgument),
        ("a hidden name", ".x.db", Code::InvalidArgument),
        ("an existing name", "taken.db", Code::AlreadyExists),
        ("a dangling symlink", "dangling.db", Code::AlreadyExists),
    ] {
        let names = if code == Code::InvalidArgument {
            "path"
        } else {
            name
        };
        assert_refused(what, backup(&mut client, name).await, code, names);
    }
    assert_eq!(
        listing(&dir),
        before,
        "nothing written in the backup directory"
    );
    assert_eq!(
        listing(outside.path()),
        vec![],
        "nothing written outside it"
    );
    assert!(!lure.exists(), "the symlink was not followed");
}

#[tokio::test]
async fn backups_go_into_the_configured_directory_and_a_shared_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("elsewhere");
    let settings = Settings {
        backup_dir: Some(backups.clone()),
        ..Settings::default()
    };
    let service = spawn_service_with(dir, settings).await;
    let mut client = service.unix.clone();
    let written = backup(&mut client, "b.db").await.expect("Backup");
    assert_eq!(Path::new(&written.path), backups.join("b.db"));
    assert!(!service.data_dir.join(kanband::store::BACKUP_DIR).exists());

    std::fs::set_permissions(&backups, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_refused(
        "a backup directory others may write into",
        backup(&mut client, "c.db").await,
        Code::FailedPrecondition,
        "writable by group or others",
    );
    assert!(!backups.join("c.db").exists());
}
