//! Process-level tests of the real `kanband` binary: it serves on the addresses it prints, a
//! second instance on the same data directory is refused, SIGTERM is a clean exit that keeps
//! every acknowledged task, no other process can open the database while it runs, and `--help`
//! documents the configuration.
//!
//! The binary belongs to another package, so `CARGO_BIN_EXE_kanband` is not set here, and
//! `cargo test` does not build it for this package: it is found next to this test's own
//! executable (`target/<profile>/kanband`), where `scripts/test` builds it (with
//! `cargo build --workspace --bins`) before running the tests.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use kanband_gateway::Client;
use kanband_proto::pb;
use nix::{sys::signal, unistd::Pid};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader},
    process::{Child, Command},
    time::timeout,
};

/// How long start-up, exit and helper processes may take; generous for a loaded CI machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// The `kanband` binary built by this workspace.
fn kanband_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    // target/<profile>/deps/process-<hash> -> target/<profile>/kanband
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .join("kanband");
    assert!(
        bin.is_file(),
        "{} does not exist: run the tests with `scripts/test`, which builds it first, or run \
         `cargo build -p kanband` (with the same profile) before `cargo test`",
        bin.display()
    );
    bin
}

/// A `kanband` command with a clean environment for its configuration variables.
fn kanband_command() -> Command {
    let mut command = Command::new(kanband_bin());
    for var in ["KANBAND_DATA_DIR", "KANBAND_LISTEN", "KANBAND_SOCKET"] {
        command.env_remove(var);
    }
    command.env("KANBAND_LOG", "info").kill_on_drop(true);
    command
}

/// Collects everything a pipe says into a shared buffer, in the background, so the child never
/// blocks on a full pipe and a failing test can show what it said.
fn collect(pipe: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
    let buffer = Arc::new(Mutex::new(String::new()));
    let sink = buffer.clone();
    tokio::spawn(async move {
        let mut pipe = pipe;
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("buffer")
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    buffer
}

/// A running `kanband` child process. Dropping it kills the process (`kill_on_drop`), so a
/// failing test leaves nothing behind.
#[derive(Debug)]
struct Daemon {
    child: Child,
    /// `http://127.0.0.1:<port>`, from the ready line.
    tcp_addr: String,
    /// `unix:<path>`, from the ready line.
    unix_addr: String,
    /// Everything the process wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts kanband on `data_dir` with TCP port 0 and the default socket, and waits for its
    /// ready line.
    async fn start(data_dir: &Path) -> Daemon {
        let mut child = kanband_command()
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kanband");
        let stderr = collect(child.stderr.take().expect("stderr"));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let read = timeout(PATIENCE, stdout.read_line(&mut line)).await;
        assert!(
            matches!(read, Ok(Ok(n)) if n > 0),
            "kanband printed no ready line within {PATIENCE:?} ({read:?}); stderr:\n{}",
            stderr.lock().expect("buffer")
        );
        // Keep draining stdout: a closed pipe would make any later print fail.
        collect(stdout);

        let line = line.trim_end();
        let rest = line
            .strip_prefix("kanband ready: data dir ")
            .unwrap_or_else(|| panic!("unexpected ready line {line:?}"));
        let (dir, addresses) = rest
            .split_once(" listening on ")
            .unwrap_or_else(|| panic!("no addresses in ready line {line:?}"));
        assert_eq!(Path::new(dir), data_dir, "ready line names the data dir");
        let find = |prefix: &str| {
            addresses
                .split_whitespace()
                .find(|a| a.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} address in ready line {line:?}"))
                .to_owned()
        };
        Daemon {
            tcp_addr: find("http://"),
            unix_addr: find("unix:"),
            child,
            stderr,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("kanband has not been reaped yet")
    }

    /// Sends SIGTERM and waits for the exit.
    async fn terminate(mut self) -> ExitStatus {
        signal::kill(Pid::from_raw(self.pid() as i32), signal::Signal::SIGTERM)
            .expect("send SIGTERM");
        let status = timeout(PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("kanband did not exit within {PATIENCE:?} of SIGTERM"))
            .expect("wait for kanband");
        assert!(
            status.success(),
            "kanband exited with {status} after SIGTERM; stderr:\n{}",
            self.stderr.lock().expect("buffer")
        );
        status
    }
}

/// A fresh temporary directory and the (not yet existing) data directory inside it, so the
/// test also covers kanband creating it.
fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    (dir, data)
}

async fn create_task(addr: &str, title: &str) -> String {
    let mut client = Client::connect(addr)
        .await
        .unwrap_or_else(|err| panic!("connect to {addr}: {err}"));
    let created = client
        .tasks
        .create_task(pb::CreateTaskRequest {
            title: title.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|status| panic!("CreateTask over {addr}: {status}"))
        .into_inner();
    assert!(created.created);
    let task = created.task.expect("task in the response");
    assert_eq!(task.title, title);
    task.id
}

async fn get_task(addr: &str, id: &str) -> pb::Task {
    let mut client = Client::connect(addr)
        .await
        .unwrap_or_else(|err| panic!("connect to {addr}: {err}"));
    client
        .tasks
        .get_task(pb::GetTaskRequest {
            id: id.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|status| panic!("GetTask {id} over {addr}: {status}"))
        .into_inner()
        .task
        .expect("task in the detail")
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
    let (_dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    assert!(daemon.tcp_addr.starts_with("http://127.0.0.1:"));
    assert_eq!(
        daemon.unix_addr,
        format!("unix:{}", data.join(kanband::SOCKET_FILE).display())
    );
    for addr in [&daemon.tcp_addr, &daemon.unix_addr] {
        let id = create_task(addr, &format!("over {addr}")).await;
        assert_eq!(get_task(addr, &id).await.title, format!("over {addr}"));
    }
    daemon.terminate().await;
}

#[tokio::test]
async fn second_instance_on_the_same_data_dir_is_refused() {
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
    let (_dir, data) = data_dir();
    let daemon = Daemon::start(&data).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let addr = if n % 2 == 0 {
            &daemon.tcp_addr
        } else {
            &daemon.unix_addr
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
    let (_dir, data) = data_dir();
    let db = data.join("kanband.db");
    let daemon = Daemon::start(&data).await;
    create_task(&daemon.tcp_addr, "one").await;
    create_task(&daemon.tcp_addr, "two").await;

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
