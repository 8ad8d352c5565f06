//! Process-level tests of the real `kanband` binary: it serves on the addresses it prints, a
//! second instance on the same data directory is refused, SIGTERM is a clean exit that keeps
//! every acknowledged task, no other process can open the database while it runs, and `--help`
//! documents the configuration.
//!
//! The binary is found and run by [`kanband_tests::daemon`].

use std::{
    path::Path,
    process::{ExitStatus, Stdio},
};

use kanband_gateway::Target;
use kanband_proto::pb;
use kanband_tests::{
    calls::{create, task},
    daemon::{Daemon, PATIENCE, data_dir, kanband_command},
};
use tokio::{process::Command, time::timeout};

use crate::support::{connect, shared};

/// Creates a task with a title over `addr`; returns its id.
async fn create_task(addr: impl Into<Target>, title: &str) -> String {
    let created = create(&mut connect(addr).await, title).await;
    assert_eq!(created.title, title);
    created.id
}

/// Reads a task over `addr`.
async fn get_task(addr: impl Into<Target>, id: &str) -> pb::Task {
    task(&mut connect(addr).await, id).await
}

/// Runs a Python snippet with the standard library's sqlite3 against `db`; returns the exit
/// status, stdout and stderr.
async fn python_sqlite(db: &Path, sql: &str) -> (ExitStatus, String, String) {
    // timeout=0: fail at once instead of waiting in SQLite's busy handler.
    const SCRIPT: &str = "import sqlite3, sys\n\
        con = sqlite3.connect(sys.argv[1], timeout=0)\n\
        rows = con.execute(sys.argv[2]).fetchall()\n\
        con.commit()\n\
        print(rows[0][0] if rows else 'ok')\n";
    let output = timeout(
        PATIENCE,
        Command::new("python3")
            .args(["-c", SCRIPT])
            .arg(db)
            .arg(sql)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("python3 finishes in time")
    .expect("run python3 (the machine's CPython)");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn serves_on_both_printed_addresses() {
    let _machine = shared().await;
    let (_dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    assert!(daemon.tcp_addr.starts_with("http://127.0.0.1:"));
    assert_eq!(
        daemon.unix_addr,
        format!("unix:{}", data.join(kanband::SOCKET_FILE).display())
    );
    for addr in [daemon.tcp_target(), Target::from(&daemon.unix_addr)] {
        let id = create_task(&addr, &format!("over {}", addr.addr)).await;
        assert_eq!(
            get_task(&addr, &id).await.title,
            format!("over {}", addr.addr)
        );
    }
    daemon.terminate().await;
}

#[tokio::test]
async fn second_instance_on_the_same_data_dir_is_refused() {
    let _machine = shared().await;
    let (_dir, data) = data_dir();
    let first = Daemon::start(&data).await;
    let second = timeout(
        PATIENCE,
        kanband_command()
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("the second instance exits in time")
    .expect("run the second kanband");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "second instance: {second:?}");
    assert_eq!(second.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&data.display().to_string()),
        "stderr names the data directory:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", first.pid())),
        "stderr names the first instance's pid {}:\n{stderr}",
        first.pid()
    );
    assert!(
        String::from_utf8_lossy(&second.stdout).is_empty(),
        "no ready line from the refused instance"
    );

    // The first instance is unharmed.
    create_task(&first.unix_addr, "still serving").await;
    first.terminate().await;
}

#[tokio::test]
async fn sigterm_exits_zero_and_a_restart_keeps_every_task() {
    let _machine = shared().await;
    let (_dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let addr = if n % 2 == 0 {
            daemon.tcp_target()
        } else {
            Target::from(&daemon.unix_addr)
        };
        ids.push(create_task(addr, &format!("task {n}")).await);
    }
    daemon.terminate().await;

    // The shutdown checkpointed: nothing is left in a write-ahead log.
    let wal = data.join("kanband.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "{} still holds {wal_len} bytes", wal.display());

    let daemon = Daemon::start(&data).await;
    for (n, id) in ids.iter().enumerate() {
        let task = get_task(&daemon.unix_addr, id).await;
        assert_eq!(task.title, format!("task {n}"));
        assert_eq!(task.status(), pb::TaskStatus::Ready);
    }
    daemon.terminate().await;
}

#[tokio::test]
async fn no_other_process_can_open_the_database_while_it_runs() {
    let _machine = shared().await;
    let (_dir, data) = data_dir();
    let db = data.join("kanband.db");
    let daemon = Daemon::start(&data).await;
    create_task(daemon.tcp_target(), "one").await;
    create_task(daemon.tcp_target(), "two").await;

    for sql in [
        "SELECT count(*) FROM tasks",
        "INSERT INTO tasks (id, title) VALUES ('t_foreign', 'written behind kanband''s back')",
    ] {
        let (status, stdout, stderr) = python_sqlite(&db, sql).await;
        assert_eq!(
            status.code(),
            Some(1),
            "{sql:?} must fail while kanband runs; stdout {stdout:?}, stderr:\n{stderr}"
        );
        assert!(
            stderr.contains("sqlite3.OperationalError: database is locked"),
            "{sql:?} fails because the database is locked; stderr:\n{stderr}"
        );
    }

    daemon.terminate().await;

    // The same read works once kanband is gone, so the refusal above was the lock.
    let (status, stdout, stderr) = python_sqlite(&db, "SELECT count(*) FROM tasks").await;
    assert!(status.success(), "read after stop failed:\n{stderr}");
    assert_eq!(stdout, "2", "both tasks were committed");
}

#[tokio::test]
async fn help_documents_flags_and_environment() {
    let _machine = shared().await;
    let output = timeout(PATIENCE, kanband_command().arg("--help").output())
        .await
        .expect("--help finishes in time")
        .expect("run kanband --help");
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "--data-dir",
        "--listen",
        "--socket",
        "KANBAND_DATA_DIR",
        "KANBAND_LISTEN",
        "KANBAND_SOCKET",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[tokio::test]
async fn an_empty_socket_turns_the_socket_off() {
    use nix::{sys::signal, unistd::Pid};
    use tokio::io::{AsyncBufReadExt as _, BufReader};

    let _machine = shared().await;
    for (how, flag, env) in [
        ("--socket ''", Some(""), None),
        ("KANBAND_SOCKET=", None, Some("")),
    ] {
        let (_dir, data) = data_dir();
        let mut command = kanband_command();
        command
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(value) = flag {
            command.args(["--socket", value]);
        }
        if let Some(value) = env {
            command.env("KANBAND_SOCKET", value);
        }
        let mut child = command.spawn().expect("spawn kanband");
        let stderr = kanband_tests::daemon::collect(child.stderr.take().expect("stderr"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let read = timeout(PATIENCE, stdout.read_line(&mut line)).await;
        assert!(
            matches!(read, Ok(Ok(n)) if n > 0),
            "{how}: no ready line; stderr:\n{}",
            stderr.lock().expect("buffer")
        );
        assert!(line.contains("http://127.0.0.1:"), "{how}: {line:?}");
        assert!(!line.contains("unix:"), "{how}: no socket: {line:?}");
        assert!(
            !data.join(kanband::SOCKET_FILE).exists(),
            "{how}: no socket file"
        );
        let addr = line
            .split_whitespace()
            .find(|a| a.starts_with("http://"))
            .expect("a TCP address");
        let token = kanband_tests::read_admin_token(&data);
        create_task(Target::new(addr, Some(token)), "over TCP only").await;
        let pid = Pid::from_raw(child.id().expect("running") as i32);
        signal::kill(pid, signal::Signal::SIGTERM).expect("SIGTERM");
        let status = timeout(PATIENCE, child.wait())
            .await
            .expect("exits in time")
            .expect("wait");
        assert!(status.success(), "{how}: {status}");
    }
}
