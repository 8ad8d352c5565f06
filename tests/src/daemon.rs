//! The real `kanband` binary as a child process, for process-level tests.
//!
//! The binary belongs to another package, so `CARGO_BIN_EXE_kanband` is not set in this one,
//! and `cargo test` does not build it for this package: it is found next to the running test
//! executable (`target/<profile>/kanband`), where `scripts/test` builds it (with
//! `cargo build --workspace --bins`) before running the tests.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use kanband_gateway::Client;
use nix::{sys::signal, unistd::Pid};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader},
    process::{Child, Command},
    time::timeout,
};

/// How long start-up, exit and helper processes may take; generous for a loaded CI machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The directory of this workspace's binaries: `target/<profile>`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_owned()
}

/// A binary of this workspace (`kanband`, `kanband-gateway`, `kanbanctl`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let bin = bin_dir().join(name);
    assert!(
        bin.is_file(),
        "{} does not exist: run the tests with `scripts/test`, which builds every binary first, \
         or run `cargo build --workspace --bins` (with the same profile) before `cargo test`",
        bin.display()
    );
    bin
}

/// The `kanband` binary built by this workspace.
pub fn kanband_bin() -> PathBuf {
    workspace_bin("kanband")
}

/// A `kanband` command with a clean environment for its configuration variables.
pub fn kanband_command() -> Command {
    let mut command = Command::new(kanband_bin());
    clean_env(&mut command);
    command
}

fn clean_env(command: &mut Command) {
    for var in ["KANBAND_DATA_DIR", "KANBAND_LISTEN", "KANBAND_SOCKET"] {
        command.env_remove(var);
    }
    // The web board on a free port: the default one would clash between concurrent tests.
    command
        .env("KANBAND_LOG", "info")
        .env("KANBAND_HTTP", "127.0.0.1:0")
        .kill_on_drop(true);
}

/// Waits for the first line `child` (the program `name`) prints on stdout, its ready line; then
/// keeps draining stdout (a closed pipe would make any later print fail) and collects stderr.
/// Returns the line and the stderr buffer.
async fn ready_line(child: &mut Child, name: &str) -> (String, Arc<Mutex<String>>) {
    let stderr = collect(child.stderr.take().expect("stderr"));
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let read = timeout(PATIENCE, stdout.read_line(&mut line)).await;
    assert!(
        matches!(read, Ok(Ok(n)) if n > 0),
        "{name} printed no ready line within {PATIENCE:?} ({read:?}); stderr:\n{}",
        stderr.lock().expect("buffer")
    );
    collect(stdout);
    (line, stderr)
}

/// Collects everything a pipe says into a shared buffer, in the background, so the child never
/// blocks on a full pipe and a failing test can show what it said.
pub fn collect(pipe: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
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
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>` (`https://` with TLS), from the ready line.
    pub tcp_addr: String,
    /// `unix:<path>`, from the ready line.
    pub unix_addr: String,
    /// The admin token, read from the file the ready line names (TCP needs a token).
    pub admin_token: String,
    /// Everything the process wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts kanband on `data_dir` with TCP port 0 and the default socket, and waits for its
    /// ready line.
    pub async fn start(data_dir: &Path) -> Daemon {
        Daemon::start_with(data_dir, &[]).await
    }

    /// [`Daemon::start`] with extra command-line arguments (such as `--profile-cap P=N`).
    pub async fn start_with(data_dir: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_from(kanband_command(), data_dir, extra).await
    }

    /// [`Daemon::start_with`] under a descriptor limit (soft, hard), set by `prlimit` (which
    /// then executes kanband in its place, so the pid is kanband's).
    pub async fn start_limited(data_dir: &Path, nofile: (u64, u64), extra: &[&str]) -> Daemon {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={}:{}", nofile.0, nofile.1))
            .arg("--")
            .arg(kanband_bin());
        clean_env(&mut command);
        Daemon::start_from(command, data_dir, extra).await
    }

    async fn start_from(mut command: Command, data_dir: &Path, extra: &[&str]) -> Daemon {
        command.arg("--data-dir").arg(data_dir);
        // Loopback port 0 unless the test names its own address.
        if !extra.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = command
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kanband");
        let (line, stderr) = ready_line(&mut child, "kanband").await;

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
        let token_file = rest
            .split_once(" admin token ")
            .and_then(|(_, after)| after.split_whitespace().next())
            .unwrap_or_else(|| panic!("no admin token file in ready line {line:?}"));
        let admin_token = std::fs::read_to_string(token_file)
            .unwrap_or_else(|err| panic!("read the admin token {token_file}: {err}"))
            .trim()
            .to_owned();
        Daemon {
            tcp_addr: find("http"),
            unix_addr: find("unix:"),
            admin_token,
            child,
            stderr,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("kanband has not been reaped yet")
    }

    /// Sends SIGTERM and waits for the exit.
    pub async fn terminate(mut self) -> ExitStatus {
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

    /// Kills the process with SIGKILL (no chance to clean up) and waits for it.
    pub async fn kill9(mut self) {
        signal::kill(Pid::from_raw(self.pid() as i32), signal::Signal::SIGKILL)
            .expect("send SIGKILL");
        timeout(PATIENCE, self.child.wait())
            .await
            .expect("kanband dies at once on SIGKILL")
            .expect("wait for kanband");
    }

    /// The TCP address with the admin token.
    pub fn tcp_target(&self) -> kanband_gateway::Target {
        kanband_gateway::Target::new(&self.tcp_addr, Some(self.admin_token.clone()))
    }

    /// A client over TCP with the admin token.
    pub async fn tcp_client(&self) -> Client {
        Client::connect(self.tcp_target())
            .await
            .unwrap_or_else(|err| panic!("connect to {}: {err}", self.tcp_addr))
    }

    /// A client over the Unix socket (its path survives restarts on the same data dir).
    pub async fn client(&self) -> Client {
        Client::connect(&self.unix_addr)
            .await
            .unwrap_or_else(|err| panic!("connect to {}: {err}", self.unix_addr))
    }
}

/// A fresh temporary directory and the (not yet existing) data directory inside it, so the
/// test also covers kanband creating it.
pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    (dir, data)
}

/// A running `kanband-gateway` supervisor. Dropping it kills the process.
#[derive(Debug)]
pub struct Gateway {
    /// The process.
    pub child: Child,
    /// The session id from its ready line.
    pub session: String,
    /// Everything it wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Gateway {
    /// Starts a supervisor for `profile` against `addr` with a worker `command`, slots and
    /// extra arguments; the workspace binaries are on the workers' PATH. Waits for its ready
    /// line.
    pub async fn start(
        addr: &str,
        profile: &str,
        command: &str,
        workspaces: &Path,
        extra: &[&str],
    ) -> Gateway {
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new(workspace_bin("kanband-gateway"))
            .args(["--addr", addr, "--profile", profile, "--command", command])
            .arg("--workspaces")
            .arg(workspaces)
            .args(extra)
            .env("PATH", path)
            .env("KANBAND_GATEWAY_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn kanband-gateway");
        let (line, stderr) = ready_line(&mut child, "kanband-gateway").await;
        let session = line
            .split_whitespace()
            .find(|word| word.starts_with("s_"))
            .unwrap_or_else(|| panic!("no session in ready line {line:?}"))
            .to_owned();
        Gateway {
            child,
            session,
            stderr,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child
            .id()
            .expect("kanband-gateway has not been reaped yet")
    }

    /// Sends `signal` to the supervisor process only (its workers lead their own process
    /// groups, so they do not get it): SIGSTOP and SIGCONT to simulate a partition, SIGTERM to
    /// drain.
    pub fn signal(&self, signal: signal::Signal) {
        signal::kill(Pid::from_raw(self.pid() as i32), signal)
            .unwrap_or_else(|err| panic!("send {signal} to kanband-gateway: {err}"));
    }

    /// Sends SIGTERM and waits up to `limit` for the drain to end (workers get the gateway's
    /// drain limit, then are stopped and their claims released). Returns the exit status.
    pub async fn terminate(&mut self, limit: Duration) -> ExitStatus {
        self.signal(signal::Signal::SIGTERM);
        timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "kanband-gateway did not exit within {limit:?} of SIGTERM; stderr:\n{}",
                    self.stderr.lock().expect("buffer")
                )
            })
            .expect("wait for kanband-gateway")
    }

    /// Every worker the supervisor started so far, as `(task id, pid)`, read from its log line
    /// `worker started task=... pid=...` (the pid is also the worker's process group id).
    pub fn started_workers(&self) -> Vec<(String, u32)> {
        let log = self.stderr.lock().expect("buffer");
        log.lines()
            .filter(|line| line.contains("worker started"))
            .filter_map(|line| {
                let field = |name: &str| {
                    line.split_whitespace()
                        .find_map(|word| word.strip_prefix(name))
                        .map(str::to_owned)
                };
                let task = field("task=")?;
                let pid = field("pid=")?.parse().ok()?;
                Some((task, pid))
            })
            .collect()
    }
}
