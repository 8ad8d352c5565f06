//! The data directory as the real binary finds it: a directory others may write into is
//! refused; every file kanband creates is 0600 (backups too, in their 0700 directory); a board whose database is gone (its WAL still
//! holding committed work) or empty is refused, never started empty; and a damaged index page
//! turns health NOT_SERVING with a log naming the damage and the recovery. Each damage is
//! planted while kanband is stopped.

use std::{
    io::{Seek as _, SeekFrom, Write as _},
    os::unix::fs::{FileTypeExt as _, PermissionsExt as _},
    path::Path,
};

use kanband::store::{BACKUP_DIR, DB_FILE, MARKER_FILE};
use kanband_tests::{
    calls::create,
    daemon::{Daemon, PATIENCE, data_dir},
};
use tokio_rusqlite::rusqlite;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::support::{eventually, refused_start, shared, tail};

/// Where the refused starts would listen (they never get that far).
const LOOPBACK: &[&str] = &["--listen", "127.0.0.1:0"];

/// Starts kanband on a fresh directory, creates `tasks` tasks and stops it (SIGTERM, or
/// SIGKILL when `crash`, which leaves the committed work in the WAL).
async fn board_with(tasks: usize, crash: bool) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    for i in 0..tasks {
        create(&mut client, &format!("t{i}")).await;
    }
    drop(client);
    if crash {
        daemon.kill9().await;
    } else {
        daemon.terminate().await;
    }
    (dir, data)
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test]
async fn a_data_directory_others_may_write_into_is_refused() {
    let _machine = shared().await;
    let (_dir, data) = data_dir();
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    let stderr = refused_start(&data, LOOPBACK).await;
    assert!(
        stderr.contains("writable by group or others (mode 777)")
            && stderr.contains(&format!("chmod 700 {}", data.display())),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "nothing created"
    );
}

#[tokio::test]
async fn every_file_kanband_creates_is_private() {
    let _machine = shared().await;
    let (_dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    create(&mut client, "a task").await;
    client
        .admin
        .backup(kanband_proto::pb::BackupRequest {
            path: "b.db".into(),
        })
        .await
        .expect("Backup");
    assert_eq!(mode(&data), 0o700, "the data directory");
    let mut seen = Vec::new();
    let backups = data.join(BACKUP_DIR);
    let entries = std::fs::read_dir(&data)
        .unwrap()
        .chain(std::fs::read_dir(&backups).unwrap());
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().unwrap();
        let want = if kind.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&entry.path()), want, "{name} ({kind:?})");
        assert!(
            kind.is_dir() || kind.is_file() || kind.is_socket(),
            "{name}"
        );
        seen.push(name);
    }
    seen.sort();
    for name in [
        DB_FILE,
        "kanband.db-wal",
        "kanband.lock",
        "kanband.sock",
        MARKER_FILE,
    ] {
        assert!(seen.iter().any(|s| s == name), "{name} in {seen:?}");
    }
    drop(client);
    daemon.terminate().await;
}

#[tokio::test]
async fn an_empty_database_where_a_board_was_is_refused() {
    let _machine = shared().await;
    let (_dir, data) = board_with(3, false).await;
    std::fs::File::create(data.join(DB_FILE)).unwrap();
    let stderr = refused_start(&data, LOOPBACK).await;
    assert!(
        stderr.contains("kanband.db is empty (0 bytes)")
            && stderr.contains("will not start an empty board")
            && stderr.contains("Admin.Backup"),
        "{stderr}"
    );
    assert_eq!(std::fs::metadata(data.join(DB_FILE)).unwrap().len(), 0);
}

#[tokio::test]
async fn a_deleted_database_whose_wal_holds_work_is_refused_and_the_wal_kept() {
    let _machine = shared().await;
    let (_dir, data) = board_with(3, true).await;
    let wal = data.join("kanband.db-wal");
    let held = std::fs::read(&wal).unwrap();
    assert!(!held.is_empty(), "the crash left committed work in the WAL");
    std::fs::remove_file(data.join(DB_FILE)).unwrap();
    let stderr = refused_start(&data, LOOPBACK).await;
    assert!(
        stderr.contains("kanband.db is missing")
            && stderr.contains("kanband.db-wal still holds committed work")
            && stderr.contains(".recover"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&wal).unwrap(), held, "the WAL is untouched");
    assert!(!data.join(DB_FILE).exists(), "no empty database was made");
}

/// The first leaf page of index `name`, found from its interior root page (page numbers from
/// 1): the leaf with the lowest keys, which start-up never reads.
fn first_leaf(db: &Path, name: &str) -> (u64, u64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let bytes = std::fs::read(db).unwrap();
    let page = &bytes[((root - 1) * page_size) as usize..(root * page_size) as usize];
    assert_eq!(page[0], 0x02, "{name}'s root is an interior index page");
    let cell = u16::from_be_bytes([page[12], page[13]]) as usize;
    let child = u32::from_be_bytes(page[cell..cell + 4].try_into().unwrap());
    (u64::from(child), page_size as u64)
}

#[tokio::test]
async fn a_damaged_index_page_turns_health_not_serving_with_the_recovery_in_the_log() {
    let _machine = shared().await;
    let (_dir, data) = board_with(400, false).await;
    let db = data.join(DB_FILE);
    let (leaf, page_size) = first_leaf(&db, "tasks_dispatch");
    // Garbage over the leaf, past its type byte, so only a check that reads it notices.
    let mut file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.seek(SeekFrom::Start((leaf - 1) * page_size + 1))
        .unwrap();
    file.write_all(&vec![0xA5; page_size as usize - 1]).unwrap();
    drop(file);

    let daemon = Daemon::start(&data).await;
    let channel = kanband_gateway::connect(&daemon.tcp_addr).await.unwrap();
    let diag = || tail(&daemon.stderr.lock().unwrap(), 20);
    eventually("health goes NOT_SERVING", PATIENCE, diag, async || {
        let status = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|s| s.to_string())?
            .into_inner()
            .status();
        (status == ServingStatus::NotServing)
            .then_some(())
            .ok_or(format!("{status:?}"))
    })
    .await;
    let log = daemon.stderr.lock().unwrap().clone();
    assert!(
        log.contains("the database is damaged")
            && log.contains("tasks_dispatch")
            && log.contains(".recover"),
        "{}",
        tail(&log, 20)
    );
    drop(channel);
    daemon.kill9().await;
}
