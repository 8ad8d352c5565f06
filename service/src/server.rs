//! Start-up, serving and ordered shutdown.
//!
//! [`Kanband::open`] takes the data directory (lock, store, migrations, timers armed from the
//! database); once serving, the database's pages are checked in the background. [`Kanband::start`] serves on already-bound listeners, so tests bind port 0 or a
//! socket in a temporary directory and never wait for start-up. [`Running::shutdown`] stops in
//! order: health NOT_SERVING, stop accepting and finish in-flight calls, stop the timers,
//! checkpoint and close the store.

use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use kanband_proto::pb::{
    admin_server::AdminServer, attachments_server::AttachmentsServer, boards_server::BoardsServer,
    events_server::EventsServer, leases_server::LeasesServer,
    notifications_server::NotificationsServer, tasks_server::TasksServer,
};
use tokio::{
    net::{TcpListener, UnixListener},
    sync::watch,
    task::JoinHandle,
};
use tonic::{codegen::http, server::NamedService};

use crate::{
    api::{
        AdminService, AttachmentsService, BoardsService, EventsService, LeasesService,
        NotificationsService, TasksService,
    },
    auth::{AuthLayer, policy},
    coordinator::Coordinator,
    domain::limits,
    health::Health,
    net,
    settings::Settings,
    store::OpenError,
    web::Board,
};

/// Name of the Unix socket inside the data directory.
pub const SOCKET_FILE: &str = "kanband.sock";

/// Default TCP listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// The fully-qualified names of the services health reports on, besides the whole server ("").
const SERVICES: &[&str] = &[
    <BoardsServer<BoardsService> as NamedService>::NAME,
    <TasksServer<TasksService> as NamedService>::NAME,
    <LeasesServer<LeasesService> as NamedService>::NAME,
    <AdminServer<AdminService> as NamedService>::NAME,
    <EventsServer<EventsService> as NamedService>::NAME,
    <NotificationsServer<NotificationsService> as NamedService>::NAME,
    <AttachmentsServer<AttachmentsService> as NamedService>::NAME,
];

/// The listeners to serve on; at least one must be set.
#[derive(Debug, Default)]
pub struct Listeners {
    /// TCP (loopback by default).
    pub tcp: Option<TcpListener>,
    /// The Unix socket.
    pub unix: Option<UnixListener>,
    /// The web board's HTTP listener (loopback by default); none turns the board off.
    pub http: Option<TcpListener>,
    /// TLS for the TCP listener (the Unix socket stays plain: only local processes reach it,
    /// and its owner is told apart by its credentials); none serves TCP in clear.
    pub tls: Option<net::ServerTls>,
    /// Where the Unix socket is, to remove it at shutdown.
    unix_path: Option<PathBuf>,
}

impl Listeners {
    /// Binds a TCP address.
    pub async fn bind_tcp(&mut self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        self.tcp = Some(listener);
        Ok(local)
    }

    /// Binds the web board's HTTP address.
    pub async fn bind_http(&mut self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        self.http = Some(listener);
        Ok(local)
    }

    /// Binds a Unix socket with mode 0600, replacing a stale socket file left by a previous
    /// run (safe: the caller holds the data directory's lock).
    pub fn bind_unix(&mut self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        self.unix = Some(listener);
        self.unix_path = Some(path.to_owned());
        Ok(())
    }
}

/// An opened service, not yet serving.
#[derive(Debug)]
pub struct Kanband {
    app: Arc<Coordinator>,
    connections: net::Timeouts,
}

impl Kanband {
    /// Takes ownership of `data_dir`: lock, open and migrate the database, restore leases and
    /// arm every recorded deadline.
    pub async fn open(data_dir: &Path, settings: Settings) -> Result<Kanband, OpenError> {
        let connections = settings.connections;
        crate::metrics::handle();
        let app = Arc::new(Coordinator::open(data_dir, settings).await?);
        Ok(Kanband { app, connections })
    }

    /// The file holding the admin token written at first start, if it is still there (the
    /// ready line names it).
    pub fn admin_token_file(&self) -> Option<&Path> {
        self.app.admin_token_file()
    }

    /// Serves on `listeners` until [`Running::shutdown`]. Health reports NOT_SERVING until every
    /// listener is up, then SERVING.
    pub async fn start(self, listeners: Listeners) -> Running {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let health = Arc::new(Health::new(reporter, SERVICES).await);

        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kanband_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .expect("the embedded descriptor sets are valid");
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kanband_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .expect("the embedded descriptor sets are valid");

        let app = &self.app;
        let timeouts = self.connections;
        let router = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(timeouts.keepalive_interval))
            .http2_keepalive_timeout(Some(timeouts.keepalive_timeout))
            .layer(net::ObserveLayer::new(policy::served()))
            .layer(tower::util::MapResponseLayer::new(
                oversize_is_resource_exhausted,
            ))
            .layer(tower::util::MapResponseLayer::new(
                net::status::decode_failure_is_invalid_argument,
            ))
            .layer(net::PeerLayer::default())
            .layer(AuthLayer::new(app.clone()))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(
                BoardsServer::new(BoardsService::new(app.clone()))
                    .max_decoding_message_size(limits::MESSAGE_MAX),
            )
            .add_service(
                TasksServer::new(TasksService::new(app.clone()))
                    .max_decoding_message_size(limits::MESSAGE_MAX),
            )
            .add_service(
                LeasesServer::new(LeasesService::new(app.clone()))
                    .max_decoding_message_size(limits::MESSAGE_MAX),
            )
            .add_service(
                AdminServer::new(AdminService::new(app.clone()))
                    .max_decoding_message_size(limits::MESSAGE_MAX),
            )
            .add_service(
                EventsServer::new(EventsService::new(app.clone()))
                    .max_decoding_message_size(limits::MESSAGE_MAX),
            )
            .add_service(
                NotificationsServer::new(NotificationsService::new(app.clone()))
                    .max_decoding_message_size(limits::MESSAGE_MAX),
            )
            .add_service(
                AttachmentsServer::new(AttachmentsService::new(app.clone()))
                    .max_decoding_message_size(limits::MESSAGE_MAX),
            );

        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let mut servers = Vec::new();
        if let Some(tcp) = listeners.tcp {
            let incoming = net::Incoming::new(tcp, timeouts);
            let router = router.clone();
            let stop = stopped();
            servers.push(match &listeners.tls {
                Some(tls) => {
                    let incoming = net::TlsIncoming::new(incoming, tls, timeouts.handshake);
                    tokio::spawn(async move {
                        router
                            .serve_with_incoming_shutdown(incoming, stop)
                            .await
                            .map_err(Into::into)
                    })
                }
                None => tokio::spawn(async move {
                    router
                        .serve_with_incoming_shutdown(incoming, stop)
                        .await
                        .map_err(Into::into)
                }),
            });
        }
        if let Some(unix) = listeners.unix {
            let incoming = net::Incoming::new(unix, timeouts);
            let stop = stopped();
            servers.push(tokio::spawn(async move {
                router
                    .serve_with_incoming_shutdown(incoming, stop)
                    .await
                    .map_err(Into::into)
            }));
        }
        let mut board = None;
        if let Some(http) = listeners.http {
            match crate::web::Server::new(http, self.app.clone()) {
                Ok((server, handle)) => {
                    let stop = stopped();
                    board = Some(handle);
                    servers.push(tokio::spawn(async move {
                        server.serve(stop).await.map_err(Into::into)
                    }));
                }
                Err(err) => tracing::error!(%err, "the web board cannot serve"),
            }
        }
        let timers = tokio::spawn({
            let app = self.app.clone();
            let stop = stopped();
            async move { app.run_timers(stop).await }
        });
        let dispatcher = tokio::spawn({
            let app = self.app.clone();
            let stop = stopped();
            async move {
                tokio::select! {
                    () = app.run_dispatcher() => {}
                    () = stop => {}
                }
            }
        });
        health.started(SERVICES).await;
        let monitor = tokio::spawn({
            let app = self.app.clone();
            let health = health.clone();
            let stop = stopped();
            async move { crate::health::monitor(&app, &health, SERVICES, stop).await }
        });
        let integrity = tokio::spawn({
            let app = self.app.clone();
            let health = health.clone();
            let stop = stopped();
            async move {
                tokio::select! {
                    () = check_integrity(&app, &health) => {}
                    () = stop => {}
                }
            }
        });
        Running {
            app: self.app,
            health,
            stop: stop_tx,
            servers,
            background: [timers, dispatcher, integrity, monitor],
            socket: listeners.unix_path,
            board,
        }
    }
}

/// Checks every page of the database in the background, right after start (the check of a
/// large board takes longer than start-up may). Damage turns the overall health NOT_SERVING
/// and is logged with the way back; kanband keeps answering what it can.
async fn check_integrity(app: &Coordinator, health: &Health) {
    match app.store().quick_check().await {
        Ok(damage) if damage.is_empty() => tracing::debug!("the database passed quick_check"),
        Ok(damage) => {
            health.damaged(SERVICES).await;
            tracing::error!(
                database = %app.store().path().display(),
                damage = %damage.join(" | "),
                "the database is damaged; health is NOT_SERVING. To recover: copy what can be \
                 read with Admin.Backup, or stop kanband and rebuild the file with `sqlite3 \
                 kanband.db .recover | sqlite3 recovered.db`, then put the copy in place of \
                 kanband.db while kanband is stopped"
            );
        }
        Err(err) => tracing::warn!(error = %err, "could not run the integrity check"),
    }
}

/// A serving kanband.
#[derive(Debug)]
pub struct Running {
    app: Arc<Coordinator>,
    health: Arc<Health>,
    stop: watch::Sender<bool>,
    /// gRPC servers and the web board's, stopped together.
    servers: Vec<JoinHandle<anyhow::Result<()>>>,
    background: [JoinHandle<()>; 4],
    socket: Option<PathBuf>,
    board: Option<Board>,
}

impl Running {
    /// The web board (its address and sign-in links), if an HTTP listener was given.
    pub fn board(&self) -> Option<&Board> {
        self.board.as_ref()
    }

    /// Test hook: holds the store's connection thread for `hold` (see
    /// [`crate::store::Store::stall_for_test`]).
    #[doc(hidden)]
    pub async fn stall_store_for_test(&self, hold: std::time::Duration) -> anyhow::Result<()> {
        Ok(self.app.store().stall_for_test(hold).await?)
    }

    /// Waits for `signal`, then shuts down in order.
    pub async fn serve_until(self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        signal.await;
        self.shutdown().await
    }

    /// Shuts down in order: health NOT_SERVING; stop granting (sessions are told to drain,
    /// waiting pollers and keep-alive streams end with UNAVAILABLE); stop accepting and finish
    /// in-flight calls; stop the timers and the dispatcher; checkpoint and close the store.
    /// Leases are not released: they survive the restart.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.health.stopping(SERVICES).await;
        self.app.drain();
        let _ = self.stop.send(true);
        for server in self.servers {
            server.await??;
        }
        for task in self.background {
            task.await?;
        }
        // Streams end on the drain signal; their tasks drop their handles a moment after the
        // servers have finished.
        let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut app = self.app;
        let app = loop {
            match Arc::try_unwrap(app) {
                Ok(app) => break app,
                Err(_) if tokio::time::Instant::now() > give_up => {
                    anyhow::bail!("a stream still holds the service state after 5 s");
                }
                Err(shared) => {
                    app = shared;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        };
        // Removed while the data directory's lock is still held, so it can only be ours.
        if let Some(socket) = self.socket {
            let _ = std::fs::remove_file(socket);
        }
        app.close().await
    }
}

/// tonic refuses a request over the decoding limit with OUT_OF_RANGE; the gRPC spec calls it
/// RESOURCE_EXHAUSTED (and so do kanband's documented error codes). The refusal is a trailers-only response,
/// so rewriting its header is enough.
fn oversize_is_resource_exhausted<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let oversize = headers.get("grpc-status").is_some_and(|s| s == "11")
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| {
                m.contains("message%20length%20too%20large")
                    || m.contains("message length too large")
            });
    if oversize {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    response
}
