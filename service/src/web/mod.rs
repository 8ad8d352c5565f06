//! The board in a browser: an HTTP listener beside gRPC serving the page, a small JSON API the
//! page uses, and a Server-Sent Events stream of the event log.
//!
//! This room sits above [`crate::api`]: every read and action is a call of the same gRPC
//! service implementation the `kanban.v1` API runs (in process, no network hop), so the board
//! obeys exactly the rules, validation and refusal messages of the API, and its JSON is the
//! proto3 JSON of the same messages (what grpcurl prints). Only what the API has no call for
//! (the live sessions of the machines view, the newest event id) is asked of the
//! [`Coordinator`] directly.
//!
//! - [`assets`]: the page's files, built into the binary, and the security headers.
//! - [`sessions`]: one-time sign-in tokens, session cookies and their CSRF secrets.
//! - [`guard`]: the extractors that admit a reader ([`guard::Viewer`]) or an actor.
//! - [`reads`]: boards, columns, a task, "why is it not running", machines.
//! - [`files`]: a task's attachments and their downloads.
//! - [`actions`]: sign-in and every mutation, including a card's move between columns.
//! - [`moves`]: which operation a move from one column to another performs (pure).
//! - [`stream`]: the event stream, resumable with `Last-Event-ID`.
//! - [`reply`]: JSON answers and refusals.
//! - [`metrics`]: `/metrics` for Prometheus, and who may scrape it.

pub mod actions;
pub mod assets;
pub mod files;
pub mod guard;
pub mod metrics;
pub mod moves;
pub mod reads;
pub mod reply;
pub mod sessions;
pub mod stream;

use std::{future::Future, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post},
};
use tokio::net::TcpListener;

use crate::{
    api::{AdminService, AttachmentsService, BoardsService, EventsService, TasksService},
    auth::Identity,
    coordinator::Coordinator,
    domain::limits,
};
use sessions::Sessions;

/// Default address of the HTTP listener: loopback only.
pub const DEFAULT_HTTP: &str = "127.0.0.1:50052";

/// What every handler shares.
#[derive(Debug)]
pub struct Ctx {
    app: Arc<Coordinator>,
    tasks: TasksService,
    boards: BoardsService,
    admin: AdminService,
    events: EventsService,
    attachments: AttachmentsService,
    sessions: Arc<Sessions>,
    /// `Host` values this listener answers to; empty means any (a non-loopback listener).
    hosts: Vec<String>,
    /// Whether the listener is on a loopback address (anyone there may scrape `/metrics`).
    loopback: bool,
}

/// The board's handle on a running kanband: its address, and sign-in links.
#[derive(Debug, Clone)]
pub struct Board {
    addr: SocketAddr,
    sessions: Arc<Sessions>,
}

impl Board {
    /// Where the board listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new one-time link that signs in as `identity` (the local admin's is printed at
    /// start-up).
    pub fn signin_url(&self, identity: Identity) -> String {
        format!(
            "{}/signin?token={}",
            self.url(),
            self.sessions.mint(identity)
        )
    }

    /// A new one-time sign-in token for `identity` (to paste into the sign-in form or POST to
    /// `/api/signin`).
    pub fn signin_token(&self, identity: Identity) -> String {
        self.sessions.mint(identity)
    }
}

/// The `Host` values a listener on `addr` answers to.
fn hosts(addr: SocketAddr) -> Vec<String> {
    if addr.ip().is_unspecified() {
        return Vec::new();
    }
    let port = addr.port();
    let mut hosts = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        hosts.extend([
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ]);
    } else {
        return Vec::new();
    }
    hosts
}

fn router(ctx: Arc<Ctx>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{name}", get(assets::file))
        .route("/signin", get(actions::signin_link))
        .route("/api/signin", post(actions::signin))
        .route("/api/signout", post(actions::signout))
        .route("/api/me", get(reads::me))
        .route("/api/boards", get(reads::boards))
        .route("/api/boards/{slug}/tasks", get(reads::tasks))
        .route("/api/tasks", post(actions::create))
        .route("/api/tasks/{id}", get(reads::task))
        .route("/api/tasks/{id}/why", get(reads::why))
        .route("/api/tasks/{id}/attachments", get(files::list))
        .route("/api/attachments/{id}", get(files::download))
        .route("/api/tasks/{id}/{action}", post(actions::act))
        .route("/api/machines", get(reads::machines))
        .route("/api/events/head", get(stream::head))
        .route("/api/events", get(stream::events))
        .route("/metrics", get(metrics::scrape))
        .layer(axum::middleware::map_response(assets::secure))
        .layer(DefaultBodyLimit::max(limits::MESSAGE_MAX))
        .with_state(ctx)
}

/// The board's server, bound and ready to serve.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    ctx: Arc<Ctx>,
}

impl Server {
    /// Prepares the board on a bound listener.
    pub fn new(listener: TcpListener, app: Arc<Coordinator>) -> std::io::Result<(Server, Board)> {
        let addr = listener.local_addr()?;
        let sessions = Arc::new(Sessions::default());
        let ctx = Arc::new(Ctx {
            tasks: TasksService::new(app.clone()),
            boards: BoardsService::new(app.clone()),
            admin: AdminService::new(app.clone()),
            events: EventsService::new(app.clone()),
            attachments: AttachmentsService::new(app.clone()),
            app,
            sessions: sessions.clone(),
            hosts: hosts(addr),
            loopback: addr.ip().is_loopback(),
        });
        Ok((Server { listener, ctx }, Board { addr, sessions }))
    }

    /// Serves until `stop` resolves, then finishes open requests (event streams end when the
    /// service drains).
    pub async fn serve(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, router(self.ctx))
            .with_graceful_shutdown(stop)
            .await
    }
}
