//! kanband on a real full filesystem: a 4 MiB tmpfs, filled to the last page while kanband is
//! stopped. It must start, serve reads, refuse writes with RESOURCE_EXHAUSTED, and write what
//! start-up could not (the `lease_rearmed` events) once space returns. Mounting needs root (or
//! CAP_SYS_ADMIN); where it is not allowed the test says so and passes without running, and
//! `api::disk_full_leases` covers the same with the storage cap.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use kanband_gateway::Client;
use kanband_proto::pb;
use kanband_tests::{
    calls::{acquire_now, all_events, create_assigned, open_session_with, session_request, task},
    daemon::Daemon,
};
use tokio_rusqlite::rusqlite;
use tonic::Code;

use crate::support::{eventually, shared, tail};

/// Claims held when kanband stops; restored, with their `lease_rearmed` events to write.
const CLAIMS: u32 = 16;

/// A tmpfs mounted for one test, unmounted when dropped (after the daemon is gone).
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `4m`), or says why it cannot.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let path = dir.path().to_owned();
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .output()
            .map_err(|err| format!("cannot run mount: {err}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        Ok(Tmpfs { _dir: dir, path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Writes `path` until the filesystem has no page left.
fn fill_filesystem(path: &Path) {
    let mut file = std::fs::File::create(path).expect("create the filler");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if let Err(err) = file.write_all(&chunk) {
            assert_eq!(err.raw_os_error(), Some(28), "ENOSPC, not {err}");
            break;
        }
    }
    let mut byte = 1;
    while byte > 0 {
        // Whatever a partial chunk left over, byte by byte.
        byte = file.write(&[0]).unwrap_or(0);
    }
}

async fn rearmed_events(client: &mut Client) -> usize {
    all_events(client)
        .await
        .iter()
        .filter(|event| event.kind == "lease_rearmed")
        .count()
}

#[tokio::test]
async fn kanband_starts_on_a_full_filesystem_serves_reads_and_catches_up_when_space_returns() {
    let _machine = shared().await;
    let tmpfs = match Tmpfs::mount("4m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here ({why}); api::disk_full_leases covers this with the storage cap"
            );
            return;
        }
    };
    let data = tmpfs.path.join("data");
    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    let mut ids = Vec::new();
    for i in 0..CLAIMS {
        ids.push(
            create_assigned(&mut client, "", &format!("t{i}"), "p")
                .await
                .id,
        );
    }
    let session = open_session_with(
        &mut client,
        pb::OpenSessionRequest {
            slots: CLAIMS,
            ..session_request("p", 2_000)
        },
    )
    .await;
    for _ in 0..CLAIMS {
        acquire_now(&mut client, &session.id).await;
    }
    drop(client);
    daemon.terminate().await;

    // Down until every recorded lease deadline has passed, then the disk fills up.
    let recorded: i64 = rusqlite::Connection::open(data.join(kanband::store::DB_FILE))
        .unwrap()
        .query_row("SELECT max(expires_at) FROM claims", [], |row| row.get(0))
        .unwrap();
    while kanband::clock::now_ms() <= recorded {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let filler = tmpfs.path.join("filler");
    fill_filesystem(&filler);

    let daemon = Daemon::start(&data).await;
    let mut client = daemon.client().await;
    for id in &ids {
        assert_eq!(
            task(&mut client, id).await.status(),
            pb::TaskStatus::Running
        );
    }
    let refused = client
        .tasks
        .create_task(pb::CreateTaskRequest {
            title: "no room".into(),
            ..Default::default()
        })
        .await
        .expect_err("the filesystem is full");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(
        rearmed_events(&mut client).await,
        0,
        "no room to write them"
    );
    let stats = client
        .admin
        .stats(pb::StatsRequest {})
        .await
        .expect("Stats")
        .into_inner();
    assert!(stats.deadlines_retrying > 0, "{stats:?}");

    std::fs::remove_file(&filler).expect("free the space");
    let diag = || tail(&daemon.stderr.lock().expect("stderr"), 20);
    eventually(
        "the lease_rearmed events are written",
        Duration::from_secs(15),
        diag,
        async || match rearmed_events(&mut client.clone()).await {
            n if n == CLAIMS as usize => Ok(()),
            n => Err(format!("{n} written")),
        },
    )
    .await;
    client
        .tasks
        .create_task(pb::CreateTaskRequest {
            title: "room again".into(),
            ..Default::default()
        })
        .await
        .expect("writes resume once space returns");
    drop(client);
    daemon.terminate().await;
}
