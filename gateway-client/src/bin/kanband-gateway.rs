//! `kanband-gateway`: the supervisor binary. Parses arguments, sets up logging, and runs
//! [`kanband_gateway::Supervisor`] until SIGTERM or SIGINT, then drains and exits 0.

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser};
use kanband_cli::{docs::Docs, logging::LogFormat};
use kanband_gateway::{
    Supervisor, SupervisorConfig,
    supervisor::{
        DEFAULT_TTL, WORKER_ENVIRONMENT, jeopardy,
        preset::{self, HermesPreset},
        template::{self, PLACEHOLDERS},
    },
};
use tokio::signal::unix::{SignalKind, signal};

/// Runs kanband work on this machine: holds a session for the given profiles, takes claims as
/// slots free up, and runs one worker command per claim in its own process group.
#[derive(Debug, Parser)]
#[command(version, after_long_help = after_help(), subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
struct Args {
    /// Generate completions or the man page instead of running.
    #[command(subcommand)]
    docs: Option<Docs>,

    /// Log filter (tracing EnvFilter syntax, e.g. info or kanband_gateway=debug); logs go to
    /// stderr. The HTTP/2 crates stay at warn unless named.
    #[arg(
        long = "log",
        env = "KANBAND_GATEWAY_LOG",
        value_name = "FILTER",
        default_value = "info"
    )]
    log: String,

    /// Log line format.
    #[arg(long, env = "KANBAND_GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Where kanband is and the supervisor token to send (never passed on to workers).
    #[command(flatten)]
    connection: kanband_cli::connection::ConnectionArgs,

    /// A profile this supervisor runs (repeat for several).
    #[arg(
        long = "profile",
        env = "KANBAN_GATEWAY_PROFILES",
        value_delimiter = ',',
        required = true
    )]
    profiles: Vec<String>,

    /// A capability this machine offers (repeat for several).
    #[arg(
        long = "capability",
        env = "KANBAN_GATEWAY_CAPABILITIES",
        value_delimiter = ','
    )]
    capabilities: Vec<String>,

    /// How many workers may run at once.
    #[arg(long, env = "KANBAN_GATEWAY_SLOTS", default_value_t = 1)]
    slots: u32,

    /// Stable machine id [default: kept in <workspaces>/.kanband-gateway/machine-id]
    #[arg(long, env = "KANBAN_GATEWAY_MACHINE_ID")]
    machine_id: Option<String>,

    /// Host name shown to people [default: the system's]
    #[arg(long, env = "KANBAN_GATEWAY_HOSTNAME")]
    hostname: Option<String>,

    /// Root of scratch workspaces (<root>/<task id>) and of the machine-id file
    /// [default: $XDG_DATA_HOME or ~/.local/share, then kanband-gateway/workspaces]
    #[arg(long, env = "KANBAN_GATEWAY_WORKSPACES")]
    workspaces: Option<PathBuf>,

    /// The worker command, run with `sh -c` in the task's workspace after its placeholders are
    /// replaced (see below). A relative program path (`./worker.sh`) is taken from the
    /// directory kanband-gateway starts in. Required unless --preset is given.
    #[arg(
        long,
        env = "KANBAN_GATEWAY_COMMAND",
        required_unless_present = "preset",
        conflicts_with = "preset"
    )]
    command: Option<String>,

    /// Start workers as a platform's own dispatcher does. `hermes`: Hermes Agent 0.19's worker
    /// command line (`hermes -p <profile> --cli --accept-hooks [--skills S].. [-m MODEL]
    /// [--provider P] chat -q "work kanban task <id>"`) and the variables its workers read.
    #[arg(long, env = "KANBAN_GATEWAY_PRESET", value_parser = ["hermes"])]
    preset: Option<String>,

    /// With --preset hermes: the hermes program (a name on PATH, or a path).
    #[arg(long, env = "HERMES_BIN", default_value = "hermes")]
    hermes_bin: String,

    /// With --preset hermes: the Hermes root; a profile's HERMES_HOME is <root>/profiles/<name>
    /// (the root itself for `default`) [default: left to `hermes -p` to resolve]
    #[arg(long, env = "KANBAN_GATEWAY_HERMES_HOME")]
    hermes_home: Option<PathBuf>,

    /// Lease time of the session and its claims, in milliseconds (1000 to 300000). Workers are
    /// killed if no renewal is acknowledged within it, less a margin; see "Restarts" below for
    /// how long a kanband restart it tolerates.
    #[arg(long, env = "KANBAN_GATEWAY_TTL_MS", default_value_t = DEFAULT_TTL.as_millis() as u64)]
    ttl_ms: u64,

    /// Time a worker gets between SIGTERM and SIGKILL, in milliseconds.
    #[arg(long, env = "KANBAN_GATEWAY_KILL_GRACE_MS", default_value_t = 10_000)]
    kill_grace_ms: u64,

    /// On SIGTERM/SIGINT, how long workers may keep running before they are stopped and their
    /// claims released, in milliseconds.
    #[arg(long, env = "KANBAN_GATEWAY_DRAIN_LIMIT_MS", default_value_t = 60_000)]
    drain_limit_ms: u64,

    /// Also take tasks waiting for review (the review lane). In the environment: 1, true, yes
    /// or 0, false, no.
    #[arg(long, env = "KANBAN_GATEWAY_REVIEW_LANE", action = clap::ArgAction::SetTrue,
          value_parser = kanband_cli::input::boolean)]
    review_lane: bool,
}

fn after_help() -> String {
    let mut text = String::from(
        "Placeholders in --command (replaced by the value, quoted for where it stands: bare or \
         single-quoted outside quotes, escaped inside double quotes):\n",
    );
    for (name, what) in PLACEHOLDERS {
        let _ = writeln!(text, "  {:<25}{what}", format!("{{{name}}}"));
    }
    text.push_str(
        "\nThe supervisor's token (--token, KANBAN_TOKEN, --token-file, KANBAN_TOKEN_FILE) is \
         never passed on to workers.\n",
    );
    text.push_str("\nEnvironment of every worker (added to the supervisor's own):\n");
    for (name, what) in WORKER_ENVIRONMENT {
        let _ = writeln!(text, "  {name:<25}{what}");
    }
    let ttl = DEFAULT_TTL;
    let _ = write!(
        text,
        "\nRestarts: workers keep running while kanband restarts, and the same session is \
         re-attached, if kanband is serving again within TTL - margin - renewal interval - \
         reconnect granularity. The margin is TTL/5 (at least 0.5 s), a keep-alive goes out every \
         TTL/6, and while claims are held kanband is tried again at least every {:?} (and \
         renewed at once on reconnect), allowing {:?} to re-attach. With the default TTL of \
         {:?}: {:?} - {:?} - {:?} - {:?} = {:?}. A longer outage kills the workers (jeopardy) \
         and their claims are given back.\n",
        jeopardy::HOLDING_RECONNECT_MAX,
        jeopardy::REATTACH_ALLOWANCE,
        ttl,
        ttl,
        jeopardy::margin(ttl),
        jeopardy::renew_interval(ttl),
        jeopardy::RECONNECT_GRANULARITY,
        jeopardy::longest_tolerated_restart(ttl),
    );
    text.push_str(
        "\nA worker's exit is reported to kanband: exit 0 without an outcome is a protocol \
         violation, 75 rate limited, 78 a provider error, anything else a crash. A worker \
         stopped on an operator's cancel request (or by the supervisor itself) is released \
         instead, whatever its exit: it is not counted as a failure.\n\
         Logs go to stderr (--log / KANBAND_GATEWAY_LOG, e.g. debug or kanband_gateway=debug).\n\
         Once its session is open it prints one line to stdout: \
         kanband-gateway ready: session s_... profiles ...\n",
    );
    text
}

fn default_workspaces() -> anyhow::Result<PathBuf> {
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set; pass --workspaces")?)
                .join(".local/share")
        }
    };
    Ok(data.join("kanband-gateway").join("workspaces"))
}

/// `command` with a relative program path (`./worker.sh`) made absolute against the current
/// directory, since the worker runs in its task's workspace.
fn absolute_program(command: &str) -> anyhow::Result<String> {
    match preset::template_program(command) {
        Some(program) if program.contains('/') && !program.starts_with('/') => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            let absolute = template::quote(&cwd.join(program).display().to_string());
            Ok(command.replacen(program, &absolute, 1))
        }
        _ => Ok(command.to_owned()),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // One line a person can act on: no backtrace, each cause once.
            eprintln!("kanband-gateway: {}", kanband_cli::report::one_line(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(docs) = &args.docs {
        return kanband_cli::docs::generate(docs, Args::command(), &mut std::io::stdout());
    }
    kanband_cli::logging::init(&args.log, "--log / KANBAND_GATEWAY_LOG", args.log_format)?;

    let workspaces = match args.workspaces {
        Some(dir) => dir,
        None => default_workspaces()?,
    };
    let command = match &args.command {
        Some(command) => absolute_program(command)?,
        None => String::new(),
    };
    let token = args.connection.token().map_err(anyhow::Error::msg)?;
    // One spelling (`unix:/path` or `http://host:port`) for the supervisor and its workers'
    // KANBAN_ADDR, whichever form was typed.
    let addr = args.connection.address().map_err(anyhow::Error::msg)?;
    let mut config = SupervisorConfig::new(addr, args.profiles, workspaces, command);
    config.token = token.map(kanband_gateway::Secret);
    config.tls = (&args.connection).into();
    if args.preset.is_some() {
        config.preset = Some(HermesPreset {
            program: args.hermes_bin,
            home: args.hermes_home,
        });
    }
    config.capabilities = args.capabilities;
    config.slots = args.slots;
    config.machine_id = args.machine_id;
    config.hostname = args.hostname;
    config.ttl = Duration::from_millis(args.ttl_ms);
    config.kill_grace = Duration::from_millis(args.kill_grace_ms);
    config.drain_limit = Duration::from_millis(args.drain_limit_ms);
    config.review_lane = args.review_lane;
    let profiles = config.profiles.join(",");
    let supervisor = Supervisor::new(config)?;

    let mut status = supervisor.status();
    tokio::spawn(async move {
        let mut announced: Option<String> = None;
        while status.changed().await.is_ok() {
            let session = status.borrow_and_update().session_id.clone();
            if let Some(id) = session.filter(|id| announced.as_ref() != Some(id)) {
                println!("kanband-gateway ready: session {id} profiles {profiles}");
                announced = Some(id);
            }
        }
    });

    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let shutdown = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: draining"),
            _ = interrupt.recv() => tracing::info!("SIGINT: draining"),
        }
    };
    supervisor.run(shutdown).await?;
    Ok(())
}
