//! Worker processes: where they run, how they start (`sh -c`, in their own process group, with
//! the claim in the environment), what is kept of their output, and how they are stopped.
//!
//! Each worker leads its own process group, so stopping it signals the whole group (the shell
//! and everything it started) and a Ctrl-C at the supervisor's terminal never reaches it. When
//! the leader exits, whatever it left behind in the group is killed too: a worker's helpers
//! must not keep working on a task after its exit has been reported.

use std::{
    collections::VecDeque,
    io,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use kanband_proto::pb;
use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::{io::AsyncReadExt, process::Command, sync::mpsc, time::Instant};

/// How much of a worker's combined output is kept for its exit report (the service's limit).
pub(crate) const TAIL_BYTES: usize = 4096;

/// How long to wait, after the worker exits, for the rest of its output.
const OUTPUT_LINGER: Duration = Duration::from_millis(250);

/// Where a task runs: its `dir`/`worktree` path when it names one, else a fresh scratch
/// directory `<root>/<task id>` (emptied if an earlier attempt left one).
pub(crate) fn workspace_for(root: &Path, task: &pb::Task) -> io::Result<PathBuf> {
    let kind = task.workspace.as_ref().map(|w| w.kind());
    let path = task.workspace.as_ref().map_or("", |w| w.path.as_str());
    if matches!(
        kind,
        Some(pb::WorkspaceKind::Dir | pb::WorkspaceKind::Worktree)
    ) && !path.is_empty()
    {
        let path = PathBuf::from(path);
        if !path.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("workspace {} is not a directory", path.display()),
            ));
        }
        return Ok(path);
    }
    let dir = root.join(&task.id);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// One worker to start.
#[derive(Debug)]
pub(crate) struct Job {
    /// The claim token, the key under which its exit is sent back.
    pub(crate) token: String,
    /// The rendered command, run with `sh -c`.
    pub(crate) script: String,
    /// Its working directory.
    pub(crate) cwd: PathBuf,
    /// Variables added to the supervisor's environment.
    pub(crate) env: Vec<(&'static str, String)>,
    /// Variables of the supervisor's environment the worker must not inherit.
    pub(crate) unset: &'static [&'static str],
}

/// What the supervisor asks of a running worker.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Control {
    /// SIGTERM to the group, nothing more (an operator asked it to stop soon).
    Interrupt,
    /// SIGTERM to the group, then SIGKILL after the grace.
    Terminate(Duration),
}

/// How a worker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It exited with a code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl Ending {
    fn of(status: ExitStatus) -> Ending {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Ending::Code(code),
            (None, Some(signal)) => Ending::Signal(signal),
            // Neither can happen for a reaped child on Unix; report it as a crash.
            (None, None) => Ending::Code(-1),
        }
    }

    /// As a ReportExit field.
    pub(crate) fn to_pb(self) -> pb::report_exit_request::Exit {
        match self {
            Ending::Code(code) => pb::report_exit_request::Exit::Code(code),
            Ending::Signal(signal) => pb::report_exit_request::Exit::Signal(signal),
        }
    }
}

/// A worker ended.
#[derive(Debug)]
pub(crate) struct Exited {
    /// Its claim token.
    pub(crate) token: String,
    /// How.
    pub(crate) ending: Ending,
    /// The end of its combined output, ready for ReportExit.
    pub(crate) tail: String,
}

/// A started worker.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// Its process id, which is also its process group id.
    pub(crate) pid: u32,
    /// Where to send [`Control`]s.
    pub(crate) control: mpsc::UnboundedSender<Control>,
}

/// Starts `job` and watches it; its [`Exited`] is sent on `exits`. An error means nothing was
/// started (the message is for the spawn_failed report).
pub(crate) fn spawn(job: Job, exits: mpsc::UnboundedSender<Exited>) -> Result<Spawned, String> {
    let (writer, reader) = output_pipe().map_err(|err| format!("cannot make a pipe: {err}"))?;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&job.script)
        .current_dir(&job.cwd)
        .envs(job.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PWD", &job.cwd);
    for name in job.unset {
        command.env_remove(name);
    }
    // The supervisor's own credential stays with it: a worker's credential is its claim
    // token (KANBAN_CLAIM_TOKEN), which allows only what its own claim allows.
    for name in crate::TOKEN_VARS {
        command.env_remove(name);
    }
    command
        .stdin(Stdio::null())
        .stdout(writer.0)
        .stderr(writer.1)
        .process_group(0)
        .kill_on_drop(false);
    let child = command.spawn().map_err(|err| {
        format!(
            "cannot start sh -c {:?} in {}: {err}",
            job.script,
            job.cwd.display()
        )
    })?;
    // Our copies of the pipe's write end go with the command, so the reader sees EOF when the
    // worker's group is done with it.
    drop(command);
    let pid = child
        .id()
        .ok_or("the worker exited before it could be watched")?;
    let (control, controls) = mpsc::unbounded_channel();
    let tail = Arc::new(Mutex::new(Tail::new(TAIL_BYTES)));
    let reading = tokio::spawn(read_output(reader, tail.clone()));
    tokio::spawn(watch(child, pid, controls, reading, tail, job.token, exits));
    Ok(Spawned { pid, control })
}

type Writers = (std::os::fd::OwnedFd, std::os::fd::OwnedFd);

/// One pipe for stdout and stderr, so the tail keeps their interleaving.
fn output_pipe() -> io::Result<(Writers, tokio::net::unix::pipe::Receiver)> {
    let (sender, receiver) = tokio::net::unix::pipe::pipe()?;
    let fd = sender.into_blocking_fd()?;
    Ok(((fd.try_clone()?, fd), receiver))
}

async fn read_output(mut reader: tokio::net::unix::pipe::Receiver, tail: Arc<Mutex<Tail>>) {
    let mut buf = vec![0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => tail.lock().expect("tail lock").push(&buf[..n]),
        }
    }
}

fn signal_group(pid: u32, signal: Signal) {
    let Ok(pgid) = i32::try_from(pid) else { return };
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(err) => tracing::warn!(pid, %signal, error = %err, "cannot signal a worker's group"),
    }
}

async fn watch(
    mut child: tokio::process::Child,
    pid: u32,
    mut controls: mpsc::UnboundedReceiver<Control>,
    mut reading: tokio::task::JoinHandle<()>,
    tail: Arc<Mutex<Tail>>,
    token: String,
    exits: mpsc::UnboundedSender<Exited>,
) {
    let mut kill_at: Option<Instant> = None;
    let mut controls_open = true;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            control = controls.recv(), if controls_open => match control {
                Some(Control::Interrupt) => signal_group(pid, Signal::SIGTERM),
                Some(Control::Terminate(grace)) => {
                    signal_group(pid, Signal::SIGTERM);
                    let at = Instant::now() + grace;
                    kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
                }
                None => controls_open = false,
            },
            () = async { tokio::time::sleep_until(kill_at.expect("armed")).await }, if kill_at.is_some() => {
                tracing::info!(pid, "worker outlived its grace; killing its process group");
                signal_group(pid, Signal::SIGKILL);
                kill_at = None;
            }
        }
    };
    // Nothing of the worker outlives its leader.
    signal_group(pid, Signal::SIGKILL);
    if tokio::time::timeout(OUTPUT_LINGER, &mut reading)
        .await
        .is_err()
    {
        reading.abort();
    }
    let ending = match status {
        Ok(status) => Ending::of(status),
        Err(err) => {
            tracing::warn!(pid, error = %err, "cannot wait for a worker");
            Ending::Code(-1)
        }
    };
    let tail = tail.lock().expect("tail lock").text();
    let _ = exits.send(Exited {
        token,
        ending,
        tail,
    });
}

/// The last `cap` bytes of a stream.
#[derive(Debug, Clone)]
pub(crate) struct Tail {
    cap: usize,
    bytes: VecDeque<u8>,
}

impl Tail {
    /// Keeps at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Tail {
        Tail {
            cap,
            bytes: VecDeque::with_capacity(cap),
        }
    }

    /// Appends output, dropping the oldest bytes beyond the cap.
    pub(crate) fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(self.cap)..];
        let overflow = (self.bytes.len() + data.len()).saturating_sub(self.cap);
        self.bytes.drain(..overflow);
        self.bytes.extend(data);
    }

    /// The kept output as text the service accepts: invalid UTF-8 replaced, NULs dropped, at
    /// most `cap` bytes, cut at a character boundary from the front.
    pub(crate) fn text(&self) -> String {
        let (a, b) = self.bytes.as_slices();
        let raw = [a, b].concat();
        let text = String::from_utf8_lossy(&raw).replace('\0', "");
        let mut start = text.len().saturating_sub(self.cap);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_end() {
        let mut t = Tail::new(8);
        t.push(b"hello ");
        assert_eq!(t.text(), "hello ");
        t.push(b"world");
        assert_eq!(t.text(), "lo world");
        t.push(b"0123456789abc");
        assert_eq!(t.text(), "56789abc");
    }

    #[test]
    fn the_tail_is_text_the_service_accepts() {
        let mut t = Tail::new(6);
        t.push("aé\0€".as_bytes()); // a(1) é(2) NUL(1) €(3) = 7 bytes; the 'a' falls off
        assert_eq!(t.text(), "é€");
        let mut t = Tail::new(4);
        t.push(&[0xff, 0xfe, b'o', b'k']);
        // Two replacement characters (3 bytes each) and "ok" do not fit in 4 bytes.
        assert_eq!(t.text(), "ok");
    }

    #[test]
    fn workspaces() {
        let root = tempfile::tempdir().unwrap();
        let mut task = pb::Task {
            id: "t_0000000000000001".into(),
            ..Default::default()
        };
        let scratch = workspace_for(root.path(), &task).unwrap();
        assert_eq!(scratch, root.path().join("t_0000000000000001"));
        std::fs::write(scratch.join("old"), "x").unwrap();
        let again = workspace_for(root.path(), &task).unwrap();
        assert!(!again.join("old").exists(), "scratch is fresh each time");

        let dir = tempfile::tempdir().unwrap();
        task.workspace = Some(pb::Workspace {
            kind: pb::WorkspaceKind::Dir.into(),
            path: dir.path().display().to_string(),
            branch: String::new(),
        });
        assert_eq!(workspace_for(root.path(), &task).unwrap(), dir.path());
        task.workspace.as_mut().unwrap().path = "/nonexistent/kanband".into();
        assert!(workspace_for(root.path(), &task).is_err());
    }
}
