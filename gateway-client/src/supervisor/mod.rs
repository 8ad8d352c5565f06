//! The supervisor runtime: the executing half of "the coordinator decides, supervisors
//! execute".
//!
//! A [`Supervisor`] opens a session for its profiles, keeps it alive over one KeepAlive stream,
//! takes claims with the Acquire long poll while it has free slots, runs the configured command
//! for each claim in its own process group, and reports every exit. It kills its workers itself
//! when it cannot prove its lease is alive (jeopardy), and never because kanband is merely
//! restarting. The event loop and its rules are in `runner` (private).
//!
//! - [`template`]: the command template and its shell quoting.
//! - [`preset`]: built-in launchers (Hermes Agent's worker command line and environment), and
//!   the start-up check that the worker program exists.
//! - [`jeopardy`]: the holder-side lease arithmetic.
//! - `runner`: the event loop; `calls`: the session calls it polls (open, attach, acquire,
//!   close).
//! - `grant`: what a grant becomes (workspace, command, environment); `child`: workspaces,
//!   spawning, output tails, process-group signals.
//! - `stop`: why a worker is stopped, how hard, and whether its exit is reported or released.
//! - `report`: ReportExit and Release, retried across kanband restarts.
//! - `machine`: the stable machine id and the host name.

mod calls;
mod child;
mod grant;
pub mod jeopardy;
mod machine;
pub mod preset;
mod report;
mod runner;
mod stop;
pub mod template;

use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};

use tokio::sync::watch;

use crate::Address;

/// Default lease time of a session and its claims: long enough that a kanband restart of up
/// to [`jeopardy::longest_tolerated_restart`] of it (36.5 s) costs no worker, short enough
/// that the claims of a supervisor that died are free again within a minute.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// Default time a worker gets between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);
/// Default time workers may keep running after shutdown is asked for.
pub const DEFAULT_DRAIN_LIMIT: Duration = Duration::from_secs(60);
/// Default wait of one Acquire long poll.
pub const DEFAULT_ACQUIRE_WAIT: Duration = Duration::from_secs(20);

/// Variables every worker finds in its environment (on top of the supervisor's own), with what
/// they hold.
pub const WORKER_ENVIRONMENT: [(&str, &str); 21] = [
    (
        "KANBAN_ADDR",
        "where kanband listens (the supervisor's --addr), for kanbanctl",
    ),
    (
        "KANBAN_CA",
        "the supervisor's --ca for an https:// address, else empty",
    ),
    (
        "KANBAN_CERT",
        "the supervisor's --cert (mutual TLS), else empty",
    ),
    (
        "KANBAN_KEY",
        "the supervisor's --key (mutual TLS), else empty",
    ),
    ("KANBAN_BOARD", "the task's board slug"),
    ("KANBAN_TASK", "the task id"),
    ("KANBAN_RUN_ID", "the run id of this attempt"),
    (
        "KANBAN_CLAIM_TOKEN",
        "the claim token every holder call (complete, block, heartbeat...) must carry",
    ),
    (
        "KANBAN_EPOCH",
        "the fencing epoch of the claim, for downstream systems to check",
    ),
    (
        "KANBAN_LEASE_TTL_MS",
        "the claim's lease time in ms; kanbanctl retries this long while kanband is unavailable",
    ),
    ("KANBAN_WORKSPACE", "the working directory (also the cwd)"),
    ("KANBAN_PROFILE", "the profile the claim runs as"),
    ("KANBAN_REVIEW", "1 for a review-lane claim, else 0"),
    ("KANBAN_SKILLS", "the task's worker skills, comma-separated"),
    ("KANBAN_MODEL", "the task's worker model, if set"),
    ("KANBAN_PROVIDER", "the task's worker provider, if set"),
    (
        "KANBAN_REASONING_EFFORT",
        "the task's worker reasoning effort, if set",
    ),
    ("HERMES_KANBAN_TASK", "same as KANBAN_TASK"),
    ("HERMES_KANBAN_RUN_ID", "same as KANBAN_RUN_ID"),
    ("HERMES_KANBAN_BOARD", "same as KANBAN_BOARD"),
    ("HERMES_KANBAN_WORKSPACE", "same as KANBAN_WORKSPACE"),
];

/// What a supervisor runs and how.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// Where kanband listens: `unix:/path` or `http://host:port`.
    pub addr: String,
    /// The supervisor token sent on every call (needed over TCP); `None` sends none.
    pub token: Option<crate::Secret>,
    /// CA and client certificate for an `https://` address (passed on to workers).
    pub tls: crate::TlsFiles,
    /// Profiles this supervisor runs (at least one).
    pub profiles: Vec<String>,
    /// Capabilities it offers; a task requiring others is not handed to it.
    pub capabilities: Vec<String>,
    /// How many workers may run at once (1 to 256).
    pub slots: u32,
    /// Stable machine id; `None` reads (or creates) the state file under `workspaces_root`.
    pub machine_id: Option<String>,
    /// Host name shown to people; `None` asks the system.
    pub hostname: Option<String>,
    /// Root of scratch workspaces (`<root>/<task id>`) and of the supervisor's state.
    pub workspaces_root: PathBuf,
    /// The command template run with `sh -c` (see [`template`]); unused with a `preset`.
    pub command: String,
    /// Start workers as Hermes Agent's own dispatcher does, instead of with `command`.
    pub preset: Option<preset::HermesPreset>,
    /// Lease time of the session and its claims (1 s to 300 s).
    pub ttl: Duration,
    /// Time between SIGTERM and SIGKILL when a worker is stopped.
    pub kill_grace: Duration,
    /// Time workers may keep running after shutdown is asked for.
    pub drain_limit: Duration,
    /// Wait of each Acquire long poll.
    pub acquire_wait: Duration,
    /// Also take tasks waiting in `review` (the review lane).
    pub review_lane: bool,
}

impl SupervisorConfig {
    /// Where kanband is, with the token.
    pub fn target(&self) -> crate::Target {
        crate::Target::new(self.addr.clone(), self.token.as_ref().map(|t| t.0.clone()))
            .with_tls(self.tls.clone())
    }

    /// A configuration with one slot and the default timings.
    pub fn new(
        addr: impl Into<String>,
        profiles: Vec<String>,
        workspaces_root: impl Into<PathBuf>,
        command: impl Into<String>,
    ) -> SupervisorConfig {
        SupervisorConfig {
            addr: addr.into(),
            token: None,
            tls: crate::TlsFiles::default(),
            profiles,
            capabilities: Vec::new(),
            slots: 1,
            machine_id: None,
            hostname: None,
            workspaces_root: workspaces_root.into(),
            command: command.into(),
            preset: None,
            ttl: DEFAULT_TTL,
            kill_grace: DEFAULT_KILL_GRACE,
            drain_limit: DEFAULT_DRAIN_LIMIT,
            acquire_wait: DEFAULT_ACQUIRE_WAIT,
            review_lane: false,
        }
    }
}

/// Why a supervisor cannot start or cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A file or directory it needs cannot be used.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// kanband refused to open a session with this configuration.
    #[error("kanband refused the session: {0}")]
    Refused(String),
}

/// A worker as seen from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// Its task.
    pub task_id: String,
    /// Its run.
    pub run_id: String,
    /// Its claim's fencing epoch.
    pub epoch: u64,
    /// Its process id, also its process group id.
    pub pid: u32,
    /// The supervisor is stopping it.
    pub stopping: bool,
}

/// What a supervisor is doing, published on every change (see [`Supervisor::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupervisorStatus {
    /// The open session, `None` while opening one or after shutdown.
    pub session_id: Option<String>,
    /// How many sessions were opened so far (more than one after a lost session).
    pub sessions_opened: u64,
    /// The keep-alive stream is up and kanband has acknowledged a renewal on it.
    pub attached: bool,
    /// Running workers, by task id.
    pub workers: Vec<Worker>,
    /// Shutdown was asked for.
    pub draining: bool,
}

/// The configuration with what was resolved from it at start.
#[derive(Debug)]
struct Settings {
    config: SupervisorConfig,
    machine_id: String,
    hostname: String,
}

/// A supervisor, ready to [`run`](Supervisor::run).
#[derive(Debug)]
pub struct Supervisor {
    settings: Arc<Settings>,
    status: watch::Sender<SupervisorStatus>,
}

impl Supervisor {
    /// Checks `config`, creates the workspaces root, and settles the machine id (reading or
    /// creating `<workspaces_root>/.kanband-gateway/machine-id` when none is given).
    pub fn new(config: SupervisorConfig) -> Result<Supervisor, SupervisorError> {
        let invalid = |what: String| Err(SupervisorError::Config(what));
        Address::parse(&config.addr).map_err(|err| SupervisorError::Config(err.to_string()))?;
        if config.profiles.is_empty() {
            return invalid("at least one profile is required".into());
        }
        if !(1..=256).contains(&config.slots) {
            return invalid(format!("slots must be 1 to 256, not {}", config.slots));
        }
        let ttl_ms = config.ttl.as_millis();
        if !(1_000..=300_000).contains(&ttl_ms) {
            return invalid(format!("ttl must be 1000 to 300000 ms, not {ttl_ms}"));
        }
        let path = std::env::var_os("PATH");
        match &config.preset {
            Some(hermes) => {
                if preset::find_program(&hermes.program, path.as_deref()).is_none() {
                    return invalid(format!(
                        "the Hermes preset runs `{}`, which is not an executable on PATH: \
                         install Hermes Agent (pip install hermes-agent) or name the program",
                        hermes.program
                    ));
                }
            }
            None if config.command.trim().is_empty() => {
                return invalid("the command template is empty".into());
            }
            None => {
                if let Some(program) = preset::template_program(&config.command)
                    && preset::find_program(program, path.as_deref()).is_none()
                {
                    return invalid(format!(
                        "the worker command starts `{program}`, which is not an executable{}",
                        if program.contains('/') {
                            ""
                        } else {
                            " on PATH"
                        }
                    ));
                }
            }
        }
        if config.acquire_wait > Duration::from_secs(300) {
            return invalid("the acquire wait is at most 300 s".into());
        }
        let io = |path: &std::path::Path| {
            let path = path.to_owned();
            move |source| SupervisorError::Io { path, source }
        };
        let root = &config.workspaces_root;
        std::fs::create_dir_all(root).map_err(io(root))?;
        let machine_id = match &config.machine_id {
            Some(id) if !id.trim().is_empty() => id.trim().to_owned(),
            _ => {
                let file = machine::state_file(root);
                machine::load_or_create(&file).map_err(io(&file))?
            }
        };
        let hostname = config.hostname.clone().unwrap_or_else(machine::hostname);
        let (status, _) = watch::channel(SupervisorStatus::default());
        Ok(Supervisor {
            settings: Arc::new(Settings {
                config,
                machine_id,
                hostname,
            }),
            status,
        })
    }

    /// The machine id the sessions declare.
    pub fn machine_id(&self) -> &str {
        &self.settings.machine_id
    }

    /// The configuration in force.
    pub fn config(&self) -> &SupervisorConfig {
        &self.settings.config
    }

    /// Follows what the supervisor is doing (session, workers, draining).
    pub fn status(&self) -> watch::Receiver<SupervisorStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` resolves and the drain is over: workers get up to the drain
    /// limit to finish, the rest are stopped and their claims released, every exit is reported
    /// and the session closed. Returns an error only for what retrying cannot fix (a bad
    /// address, a session kanband refuses as invalid).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), SupervisorError> {
        tracing::info!(
            addr = %self.settings.config.addr,
            machine_id = %self.settings.machine_id,
            profiles = ?self.settings.config.profiles,
            slots = self.settings.config.slots,
            placeholders = ?template::used(&self.settings.config.command),
            "supervisor starting"
        );
        runner::Runner::new(self.settings, self.status)
            .run(shutdown)
            .await
    }
}
