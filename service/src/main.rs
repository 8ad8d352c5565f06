//! The `kanband` binary: parses arguments, sets up logging, and runs the library's server.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser, Subcommand};
use kanband::{
    DEFAULT_LISTEN, Kanband, Listeners, SOCKET_FILE, Settings, auth::Identity, web::DEFAULT_HTTP,
};
use kanband_cli::{docs::Docs, logging::LogFormat};
use tokio::signal::unix::{SignalKind, signal};

/// kanband: the coordination service for a multi-agent kanban board.
///
/// One process owns the board's SQLite database and answers gRPC (package kanban.v1) on a
/// loopback TCP address and a Unix socket in the data directory.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve until SIGTERM or SIGINT (the default when no command is given).
    Serve(ServeArgs),
    #[command(flatten)]
    Docs(Docs),
    /// Bring another kanban's boards into a stopped kanband's data directory.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Import the boards of a Hermes Agent 0.19 install, read through SQLite's backup API (a
    /// live Hermes is never written or blocked). Runs on a data directory no kanband is
    /// running on, in one transaction: every board is imported whole, or nothing changes.
    Hermes(HermesArgs),
}

#[derive(Debug, Clone, clap::Args)]
struct HermesArgs {
    /// The Hermes root: `kanban.db` and `kanban/boards/<slug>/`. Default: $HERMES_KANBAN_HOME,
    /// else the root of $HERMES_HOME, else ~/.hermes.
    #[arg(value_name = "ROOT")]
    root: Option<PathBuf>,

    /// Import only this board (repeat for several); default: every board under the root.
    #[arg(long = "board", value_name = "SLUG")]
    boards: Vec<String>,

    /// Read, map and check everything and print the report, but write nothing.
    #[arg(long)]
    dry_run: bool,

    /// The kanband data directory (as for serve).
    #[arg(long, env = "KANBAND_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// Log filter (tracing EnvFilter syntax: a level, or target=level pairs such as
    /// info,kanband=debug); logs go to stderr. With debug, one line per RPC (target
    /// kanband::rpc: method, code, duration); the HTTP/2 crates stay at warn unless named.
    #[arg(
        long = "log",
        env = "KANBAND_LOG",
        value_name = "FILTER",
        default_value = "info"
    )]
    log: String,

    /// Log line format.
    #[arg(long, env = "KANBAND_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Directory that holds the database, its lock file and the socket (created with mode
    /// 0700). Default: $XDG_DATA_HOME/kanband, else ~/.local/share/kanband.
    #[arg(long, env = "KANBAND_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// TCP address to listen on; an empty value turns TCP off.
    #[arg(long, env = "KANBAND_LISTEN", value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: String,

    /// Allow --listen without --tls-cert, or --http, on an address other than loopback:
    /// every token then crosses the network in clear. Logged as a warning at every start. In
    /// the environment: 1, true, yes or 0, false, no.
    #[arg(long, env = "KANBAND_INSECURE_LISTEN_WITHOUT_TLS", action = clap::ArgAction::SetTrue,
          value_parser = kanband_cli::input::boolean)]
    insecure_listen_without_tls: bool,

    /// Serve TCP over TLS with this PEM certificate chain (leaf first); needs --tls-key. With
    /// TLS, --listen may be any address. The Unix socket stays plain.
    #[arg(
        long,
        env = "KANBAND_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "KANBAND_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,

    /// Mutual TLS: every TCP client must present a certificate issued by a CA in this PEM
    /// file (tokens are still required). Needs --tls-cert.
    #[arg(
        long,
        env = "KANBAND_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_client_ca: Option<PathBuf>,

    /// HTTP address of the web board (the page, its JSON API and event stream); an empty value
    /// turns it off. The ready line ends with a one-time sign-in link for the local admin.
    #[arg(long, env = "KANBAND_HTTP", value_name = "ADDR", default_value = DEFAULT_HTTP)]
    http: String,

    /// Revoke a claim whose holder renews but sends no progress heartbeat for this long
    /// (seconds, or 90s, 5m, 1h); 0 turns the backstop off.
    #[arg(
        long,
        env = "KANBAND_STALE_PROGRESS_SECONDS",
        value_name = "SECONDS",
        default_value_t = 0,
        value_parser = kanband_cli::input::seconds
    )]
    stale_progress_seconds: u64,

    /// Most claims one profile may run at once, as PROFILE=N; repeat for several profiles
    /// (in the environment, separate them with commas). Profiles not named have no cap.
    #[arg(long = "profile-cap", env = "KANBAND_PROFILE_CAPS", value_name = "PROFILE=N",
          value_delimiter = ',', value_parser = parse_cap)]
    profile_caps: Vec<(String, u32)>,

    /// Close a connection that sends nothing for this many milliseconds after it is accepted.
    #[arg(
        long,
        env = "KANBAND_HANDSHAKE_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = kanband::net::Timeouts::default().handshake.as_millis() as u64
    )]
    handshake_timeout_ms: u64,

    /// Close a connection with no request or stream open for this long (seconds, or 90s, 5m,
    /// 1h); 0 never.
    #[arg(
        long,
        env = "KANBAND_IDLE_TIMEOUT_SECONDS",
        value_name = "SECONDS",
        value_parser = kanband_cli::input::seconds,
        default_value_t = kanband::net::Timeouts::default().idle.map_or(0, |idle| idle.as_secs())
    )]
    idle_timeout_seconds: u64,
    /// Directory Admin.Backup writes into (created with mode 0700; refused if group or others
    /// may write into it). Default: backups in the data directory.
    #[arg(long, env = "KANBAND_BACKUP_DIR", value_name = "DIR")]
    backup_dir: Option<PathBuf>,

    /// Largest attachment accepted, in bytes (an upload over it is refused with
    /// RESOURCE_EXHAUSTED and nothing is stored).
    #[arg(
        long,
        env = "KANBAND_ATTACHMENT_MAX_BYTES",
        value_name = "BYTES",
        default_value_t = kanband::domain::limits::ATTACHMENT_MAX_DEFAULT
    )]
    attachment_max_bytes: u64,

    /// Unix socket to listen on (mode 0600); an empty value turns it off.
    /// Default: kanband.sock in the data directory.
    #[arg(long, env = "KANBAND_SOCKET", value_name = "PATH",
          value_parser = socket_path())]
    socket: Option<PathBuf>,
}

/// Parses `--socket` as any path, the empty one included (clap's path parser refuses it).
fn socket_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser as _;
    clap::builder::OsStringValueParser::new().map(PathBuf::from)
}

fn parse_cap(text: &str) -> Result<(String, u32), String> {
    let (profile, cap) = text.split_once('=').ok_or("expected PROFILE=N")?;
    let cap = cap
        .parse()
        .map_err(|_| format!("{cap:?} is not a number"))?;
    Ok((profile.to_owned(), cap))
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("kanband"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither --data-dir, KANBAND_DATA_DIR, XDG_DATA_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".local/share/kanband"))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Read before the data directory is touched: bad TLS files change nothing.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(kanband::net::ServerTls::load(
            cert,
            key,
            args.tls_client_ca.as_deref(),
        )?),
        _ => None,
    };
    let (listen, http) = checked_addresses(&args, tls.is_some())?;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let settings = Settings {
        stale_progress: (args.stale_progress_seconds > 0)
            .then(|| Duration::from_secs(args.stale_progress_seconds)),
        profile_caps: args.profile_caps.into_iter().collect(),
        connections: kanband::net::Timeouts {
            handshake: Duration::from_millis(args.handshake_timeout_ms),
            idle: (args.idle_timeout_seconds > 0)
                .then(|| Duration::from_secs(args.idle_timeout_seconds)),
            ..kanband::net::Timeouts::default()
        },
        backup_dir: args.backup_dir,
        attachment_max_bytes: args.attachment_max_bytes,
        ..Settings::default()
    };
    kanband::net::raise_descriptor_limit();
    let kanband = Kanband::open(&data_dir, settings).await?;

    let mut listeners = Listeners::default();
    let mut addresses = Vec::new();
    if let Some(addr) = listen {
        let bound = listeners
            .bind_tcp(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        addresses.push(format!("{scheme}://{bound}"));
    }
    listeners.tls = tls;
    let socket = args.socket.unwrap_or_else(|| data_dir.join(SOCKET_FILE));
    if !socket.as_os_str().is_empty() {
        listeners
            .bind_unix(&socket)
            .with_context(|| format!("cannot listen on {}", socket.display()))?;
        addresses.push(format!("unix:{}", socket.display()));
    }
    if let Some(addr) = http {
        listeners
            .bind_http(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the web board"))?;
    }
    anyhow::ensure!(
        !addresses.is_empty(),
        "both --listen and --socket are off; nothing to serve on"
    );

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    // Named in the ready line, after the addresses and before the board's link.
    let admin_token = kanband
        .admin_token_file()
        .map(|file| format!(" admin token {}", file.display()))
        .unwrap_or_default();
    let running = kanband.start(listeners).await;
    // The board's sign-in link goes last, after the gRPC addresses that scripts read.
    let board = running
        .board()
        .map(|board| format!(" board {}", board.signin_url(Identity::local_admin())))
        .unwrap_or_default();
    println!(
        "kanband ready: data dir {} listening on {}{admin_token}{board}",
        data_dir.display(),
        addresses.join(" ")
    );
    tracing::info!(data_dir = %data_dir.display(), addresses = %addresses.join(" "), "serving");
    running
        .serve_until(async {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
            }
        })
        .await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The `--listen` and `--http` addresses (`None`: turned off), checked before anything is
/// touched: beyond loopback, gRPC needs TLS and the web board (which has none) is refused,
/// unless `--insecure-listen-without-tls`, which is logged as a warning.
fn checked_addresses(
    args: &ServeArgs,
    tls: bool,
) -> anyhow::Result<(Option<SocketAddr>, Option<SocketAddr>)> {
    let mut listen = None;
    if !args.listen.is_empty() {
        let addr: SocketAddr = args.listen.parse().with_context(|| {
            format!(
                "--listen {:?} is not an address like {DEFAULT_LISTEN}",
                args.listen
            )
        })?;
        if !addr.ip().is_loopback() && !tls {
            anyhow::ensure!(
                args.insecure_listen_without_tls,
                "--listen {addr} is not a loopback address and TLS is off: tokens would cross \
                 the network in clear. Give --tls-cert and --tls-key, or listen on 127.0.0.1, \
                 or pass --insecure-listen-without-tls to accept that"
            );
            tracing::warn!(
                %addr,
                "listening beyond loopback without TLS (--insecure-listen-without-tls): every \
                 token and claim token crosses the network in clear"
            );
        }
        listen = Some(addr);
    }
    let mut http = None;
    if !args.http.is_empty() {
        let addr: SocketAddr = args.http.parse().with_context(|| {
            format!(
                "--http {:?} is not an address like {DEFAULT_HTTP}",
                args.http
            )
        })?;
        if !addr.ip().is_loopback() {
            // The board has no TLS of its own: its sign-in links and cookies are secrets.
            anyhow::ensure!(
                args.insecure_listen_without_tls,
                "--http {addr} is not a loopback address and the web board is served without \
                 TLS: sign-in links and session cookies would cross the network in clear. \
                 Keep it on 127.0.0.1 (reach it through an SSH tunnel), or pass \
                 --insecure-listen-without-tls to accept that"
            );
            tracing::warn!(
                %addr,
                "the web board listens beyond loopback without TLS \
                 (--insecure-listen-without-tls): sign-in links and cookies cross in clear"
            );
        }
        http = Some(addr);
    }
    Ok((listen, http))
}

async fn import_hermes(args: HermesArgs) -> anyhow::Result<()> {
    let root = match args.root {
        Some(root) => root,
        None => kanband::import::hermes::layout::default_root()
            .context("no ROOT given and neither HERMES_KANBAN_HOME, HERMES_HOME nor HOME is set")?,
    };
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let options = kanband::import::hermes::Options {
        root,
        boards: args.boards,
        dry_run: args.dry_run,
        data_dir,
    };
    let report = kanband::import::hermes::import(&options).await?;
    print!("{report}");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let done = match cli.command {
        Some(Command::Docs(docs)) => {
            kanband_cli::docs::generate(&docs, Cli::command(), &mut std::io::stdout())
        }
        Some(Command::Import(ImportCommand::Hermes(args))) => {
            match kanband_cli::logging::init("info", "--log / KANBAND_LOG", LogFormat::Text) {
                Ok(()) => import_hermes(args).await,
                Err(err) => Err(err),
            }
        }
        Some(Command::Serve(args)) => logged_serve(args).await,
        None => logged_serve(cli.serve).await,
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line a person can act on: each cause once, no backtrace.
            eprintln!("kanband: {}", kanband_cli::report::one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// Sets up logging as `args` say (a bad filter stops start-up), then serves.
async fn logged_serve(args: ServeArgs) -> anyhow::Result<()> {
    kanband_cli::logging::init(&args.log, "--log / KANBAND_LOG", args.log_format)?;
    serve(args).await
}
