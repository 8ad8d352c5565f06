//! The shared test harness: [`spawn_service`] starts the real kanband server on TCP port 0 and
//! a Unix socket in a temporary data directory, and hands back clients for both transports and
//! a shutdown handle. Logs are printed only when `KANBAND_TEST_LOG` is set (e.g. `debug`).
//!
//! [`calls`] builds every common request once (open a session, create a task, acquire,
//! complete, read the event log, ...); [`daemon`] runs the real binaries as child processes;
//! [`hermes`] builds real Hermes Agent boards for the import tests; [`metrics`] scrapes
//! `/metrics` and reads it with a Prometheus text-format parser; [`raw`] calls any method by its
//! path with raw bytes as the message.

pub mod browser;
pub mod calls;
pub mod daemon;
pub mod hermes;
pub mod metrics;
pub mod pki;
pub mod raw;
pub mod web;

use std::{net::SocketAddr, path::PathBuf, sync::Once};

use kanband::{Kanband, Listeners, Running, SOCKET_FILE, Settings, web::Board};
use kanband_gateway::{Bearer, Client, Target, TlsFiles};
use tempfile::TempDir;

/// A kanband serving in this process for one test.
#[derive(Debug)]
pub struct TestService {
    /// Client over TCP, with the admin token kanband wrote at first start.
    pub tcp: Client,
    /// That admin token (TCP needs a token; the Unix socket, as this process's uid, does not).
    pub admin_token: String,
    /// Client over the Unix socket.
    pub unix: Client,
    /// `http://127.0.0.1:<port>` (`https://localhost:<port>` with TLS).
    pub tcp_addr: String,
    /// What TCP clients need for TLS (none without).
    pub tcp_tls: TlsFiles,
    /// `unix:<data dir>/kanband.sock`.
    pub unix_addr: String,
    /// The data directory (kept until the harness is dropped).
    pub data_dir: PathBuf,
    /// The web board on its own loopback port: address and sign-in links.
    pub board: Board,
    running: Option<Running>,
    _dir: TempDir,
}

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("KANBAND_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

/// Starts kanband on a fresh temporary data directory.
pub async fn spawn_service() -> TestService {
    let dir = tempfile::tempdir().expect("temporary directory");
    spawn_service_in(dir).await
}

/// Starts kanband on an existing temporary directory (for restart tests).
pub async fn spawn_service_in(dir: TempDir) -> TestService {
    spawn_service_with(dir, Settings::default()).await
}

/// Opens kanband on `data_dir`. A restart in this process can find the data directory's lock
/// still held by this very process for a moment: a child that another test is forking holds a
/// copy of every descriptor (the lock's included) until it execs, which closes them. So a lock
/// held by our own pid is waited for (at most 5 s); any other failure fails the test at once.
async fn open_again(data_dir: &std::path::Path, settings: Settings) -> Kanband {
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Kanband::open(data_dir, settings.clone()).await {
            Ok(kanband) => return kanband,
            Err(kanband::store::OpenError::Lock(kanband::store::LockError::Held {
                pid: Some(pid),
                ..
            })) if pid == std::process::id() && std::time::Instant::now() < give_up => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(err) => panic!("kanband opens its data directory: {err}"),
        }
    }
}

/// Starts kanband on an existing temporary directory with non-default settings.
pub async fn spawn_service_with(dir: TempDir, settings: Settings) -> TestService {
    spawn_service_tls(dir, settings, None).await
}

/// Starts kanband whose TCP listener serves TLS with `tls`; the harness's TCP clients connect
/// to `https://localhost:<port>` with `client` (their CA, and a certificate for mutual TLS).
pub async fn spawn_service_tls(
    dir: TempDir,
    settings: Settings,
    tls: Option<(kanband::net::ServerTls, TlsFiles)>,
) -> TestService {
    init_logging();
    let data_dir = dir.path().join("data");
    let kanband = open_again(&data_dir, settings).await;
    let mut listeners = Listeners::default();
    let tcp: SocketAddr = listeners
        .bind_tcp("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind TCP port 0");
    let socket = data_dir.join(SOCKET_FILE);
    listeners.bind_unix(&socket).expect("bind the Unix socket");
    listeners
        .bind_http("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind the board's HTTP port 0");
    let (tcp_addr, tcp_tls) = match tls {
        Some((server, client)) => {
            listeners.tls = Some(server);
            (format!("https://localhost:{}", tcp.port()), client)
        }
        None => (format!("http://{tcp}"), TlsFiles::default()),
    };
    let running = kanband.start(listeners).await;
    let board = running.board().expect("the board serves").clone();
    let unix_addr = format!("unix:{}", socket.display());
    let unix = Client::connect(&unix_addr)
        .await
        .expect("connect over the Unix socket");
    let admin_token = admin_token(&data_dir, &unix).await;
    TestService {
        tcp: Client::connect(
            Target::new(&tcp_addr, Some(admin_token.clone())).with_tls(tcp_tls.clone()),
        )
        .await
        .expect("connect over TCP"),
        admin_token,
        unix,
        tcp_addr,
        tcp_tls,
        unix_addr,
        data_dir,
        board,
        running: Some(running),
        _dir: dir,
    }
}

/// The admin token for the test's TCP client: the one kanband wrote at its first start, else
/// (a data directory restored from a backup has its tokens but not the file) a new one made
/// over the Unix socket, where this process's uid is the admin.
async fn admin_token(data_dir: &std::path::Path, unix: &Client) -> String {
    if data_dir.join(kanband::auth::ADMIN_TOKEN_FILE).exists() {
        return read_admin_token(data_dir);
    }
    unix.clone()
        .admin
        .create_token(kanband_proto::pb::CreateTokenRequest {
            name: format!(
                "test-admin-{}",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ),
            role: "admin".into(),
            ..Default::default()
        })
        .await
        .expect("the socket's owner makes an admin token")
        .into_inner()
        .secret
}

/// The admin token kanband wrote into `data_dir` at its first start.
pub fn read_admin_token(data_dir: &std::path::Path) -> String {
    let file = data_dir.join(kanband::auth::ADMIN_TOKEN_FILE);
    std::fs::read_to_string(&file)
        .unwrap_or_else(|err| panic!("read {}: {err}", file.display()))
        .trim()
        .to_owned()
}

impl TestService {
    /// The TCP address with the admin token, for clients the test connects itself.
    pub fn tcp_target(&self) -> Target {
        Target::new(&self.tcp_addr, Some(self.admin_token.clone())).with_tls(self.tcp_tls.clone())
    }

    /// A client over TCP sending `token` (or none).
    pub async fn tcp_client(&self, token: Option<&str>) -> Client {
        Client::connect(
            Target::new(&self.tcp_addr, token.map(str::to_owned)).with_tls(self.tcp_tls.clone()),
        )
        .await
        .expect("connect over TCP")
    }

    /// The admin token as the metadata every call carries, for clients built on a raw channel.
    pub fn bearer(&self) -> Bearer {
        Bearer::new(Some(&self.admin_token)).expect("the admin token is ASCII")
    }

    /// Both clients, labelled, for tests that run the same checks over each transport.
    pub fn transports(&self) -> [(&'static str, Client); 2] {
        [("tcp", self.tcp.clone()), ("unix", self.unix.clone())]
    }

    /// Holds the server's store (its one connection thread) for `hold`, as a stalled disk
    /// would: writes queued meanwhile wait for their commit.
    pub async fn stall_store(&self, hold: std::time::Duration) {
        self.running
            .as_ref()
            .expect("running")
            .stall_store_for_test(hold)
            .await
            .expect("the stall ends");
    }

    /// Shuts the server down in order and returns the directory, so a test can restart on it.
    pub async fn stop(mut self) -> TempDir {
        let running = self.running.take().expect("running");
        drop((self.tcp, self.unix));
        running.shutdown().await.expect("clean shutdown");
        self._dir
    }
}
