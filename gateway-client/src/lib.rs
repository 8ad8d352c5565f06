//! What a gateway embeds to talk to kanband.
//!
//! - [`connect`]: a channel to `unix:/path` or `http://host:port`, with connect and request
//!   deadlines, and [`Client`], the typed clients of every `kanban.v1` service on it, each call
//!   carrying the [`Target`]'s bearer token (if any) as `authorization` metadata.
//! - [`reconnect`]: backoff for (re)connecting, per-call deadlines, reading refusals.
//! - [`notifier`]: a reconnecting stream of notifications, each acknowledged after delivery.
//! - [`supervisor`]: the runtime that holds a session, takes claims and runs a worker process
//!   for each ([`Supervisor`]); the `kanband-gateway` binary is a thin shell around it.

use std::{path::PathBuf, time::Duration};

use hyper_util::rt::TokioIo;
use kanband_proto::pb::{
    admin_client::AdminClient, attachments_client::AttachmentsClient, boards_client::BoardsClient,
    events_client::EventsClient, leases_client::LeasesClient,
    notifications_client::NotificationsClient, tasks_client::TasksClient,
};
use tonic::{
    metadata::{AsciiMetadataValue, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint, Uri},
};

pub mod notifier;
pub mod reconnect;
pub mod supervisor;

pub use supervisor::{Supervisor, SupervisorConfig, SupervisorError, SupervisorStatus};

/// How long establishing a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an address could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The address is not `unix:/path` or `http://host:port`.
    #[error(
        "{0:?} is not an address: use host:port (localhost:50051), http://host:port, \
         unix:/path/to/kanband.sock or a path to the socket"
    )]
    BadAddress(String),
    /// The token has characters no token has.
    #[error("the token is not printable ASCII, so it is no kanband token")]
    BadToken,
    /// The service could not be reached. The message says what happened (no socket file,
    /// connection refused, permission denied, no answer) and what to do, from the I/O error
    /// under the transport's (see [`unreachable_reason`]).
    #[error("cannot reach kanband at {addr}: {}", unreachable_reason(.addr, .source))]
    Unreachable {
        /// The address.
        addr: String,
        /// The failure.
        source: tonic::transport::Error,
    },
}

/// Where kanband listens, parsed from `unix:/path`, `unix:///path` or `http://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A Unix domain socket.
    Unix(PathBuf),
    /// An HTTP/2 endpoint.
    Http(String),
}

impl Address {
    /// Parses an address in any form [`kanband_cli::input::address`] accepts (`host:port`,
    /// `http://host:port`, `unix:/path`, a bare socket path).
    pub fn parse(addr: &str) -> Result<Address, ConnectError> {
        let addr = &kanband_cli::input::address(addr)
            .map_err(|_| ConnectError::BadAddress(addr.to_owned()))?;
        if let Some(path) = addr.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(ConnectError::BadAddress(addr.to_owned()));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        if addr.starts_with("http://") || addr.starts_with("https://") {
            addr.parse::<Uri>()
                .map_err(|_| ConnectError::BadAddress(addr.to_owned()))?;
            return Ok(Address::Http(addr.to_owned()));
        }
        Err(ConnectError::BadAddress(addr.to_owned()))
    }
}

/// Where kanband is and how to prove who we are: an address (see [`Address`]) and a bearer
/// token. Over TCP kanband needs a token for every call; over its Unix socket, kanband's own
/// user needs none. Made from a plain address (`"unix:/path".into()`) it carries no token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// `unix:/path` or `http://host:port`.
    pub addr: String,
    /// Sent as `authorization: Bearer <token>` on every call.
    pub token: Option<String>,
}

impl Target {
    /// `addr` with `token`.
    pub fn new(addr: impl Into<String>, token: Option<String>) -> Target {
        Target {
            addr: addr.into(),
            token: token.filter(|t| !t.is_empty()),
        }
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never in logs.
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .finish()
    }
}

impl From<&str> for Target {
    fn from(addr: &str) -> Target {
        Target::new(addr, None)
    }
}

impl From<&String> for Target {
    fn from(addr: &String) -> Target {
        Target::new(addr.clone(), None)
    }
}

impl From<String> for Target {
    fn from(addr: String) -> Target {
        Target::new(addr, None)
    }
}

impl From<&Target> for Target {
    fn from(target: &Target) -> Target {
        target.clone()
    }
}

/// The environment variables a token is read from (`KANBAN_TOKEN`, then the file named by
/// `KANBAN_TOKEN_FILE`); a supervisor never passes them on to its workers.
pub const TOKEN_VARS: [&str; 2] = ["KANBAN_TOKEN", "KANBAN_TOKEN_FILE"];

/// The token to send: `token` (a flag or `KANBAN_TOKEN`), else the first line of `file` (a
/// flag or `KANBAN_TOKEN_FILE`), else none. Both given is refused: one of them would be
/// silently ignored.
pub fn resolve_token(
    token: Option<String>,
    file: Option<&std::path::Path>,
) -> Result<Option<String>, String> {
    let token = token.filter(|t| !t.trim().is_empty());
    match (token, file) {
        (Some(_), Some(_)) => Err("give a token or a token file, not both".to_owned()),
        (Some(token), None) => Ok(Some(token.trim().to_owned())),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .map_err(|err| format!("cannot read the token file {}: {err}", file.display()))?;
            let token = text.lines().next().unwrap_or("").trim().to_owned();
            if token.is_empty() {
                return Err(format!("the token file {} is empty", file.display()));
            }
            Ok(Some(token))
        }
        (None, None) => Ok(None),
    }
}

/// A secret (a token) that never shows in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// The metadata every call carries: `authorization: Bearer <token>`, unless the request
/// already has its own.
#[derive(Clone, Default)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Bearer {
    /// Sends `token`; `None` sends nothing. A token that is not printable ASCII cannot be a
    /// kanband token and is refused.
    pub fn new(token: Option<&str>) -> Result<Bearer, ConnectError> {
        match token {
            None => Ok(Bearer(None)),
            Some(token) => MetadataValue::try_from(format!("Bearer {}", token.trim()))
                .map(|value| Bearer(Some(value)))
                .map_err(|_| ConnectError::BadToken),
        }
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Bearer(<secret>)"
        } else {
            "Bearer(none)"
        })
    }
}

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0
            && !request.metadata().contains_key("authorization")
        {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry a [`Bearer`].
pub type AuthChannel = InterceptedService<Channel, Bearer>;

/// What to tell a person whose connection to `addr` failed with `err`: what happened, and
/// what to do about it ("is kanband running? start it with `kanband`" where that fits).
pub fn unreachable_reason(addr: &str, err: &tonic::transport::Error) -> String {
    use std::io::ErrorKind;
    const START: &str = "is kanband running? start it with `kanband`";
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut io = None;
    while let Some(current) = cause {
        if let Some(found) = current.downcast_ref::<std::io::Error>() {
            io = Some(found);
            break;
        }
        cause = current.source();
    }
    let socket = addr.strip_prefix("unix:");
    let Some(io) = io else {
        // No I/O error below: a connect that timed out, or the address could not be used.
        return if std::error::Error::source(err).is_none() {
            format!(
                "no connection within {} s; {START}",
                CONNECT_TIMEOUT.as_secs()
            )
        } else {
            format!("{err}; {START}")
        };
    };
    match (io.kind(), socket) {
        (ErrorKind::NotFound, Some(path)) => format!(
            "no socket file at {path}; {START} (it makes kanband.sock in its data directory)"
        ),
        (ErrorKind::ConnectionRefused, Some(path)) => format!(
            "nothing accepts connections on {path} (a socket file left by a kanband that \
             stopped?); {START}"
        ),
        (ErrorKind::PermissionDenied, Some(path)) => format!(
            "permission denied on the socket {path}: only kanband's own user may use it; run \
             as that user, or connect over TCP (--addr localhost:50051) with a token"
        ),
        (ErrorKind::ConnectionRefused, None) => {
            format!(
                "connection refused; {START} (it listens on 127.0.0.1:50051 unless --listen says otherwise)"
            )
        }
        (ErrorKind::TimedOut, _) => format!("no answer in time; {START}"),
        _ => format!("{io}; {START}"),
    }
}

/// Connects to kanband at `addr` (see [`Address`]).
pub async fn connect(addr: &str) -> Result<Channel, ConnectError> {
    let unreachable = |source| ConnectError::Unreachable {
        addr: addr.to_owned(),
        source,
    };
    match Address::parse(addr)? {
        Address::Http(uri) => Endpoint::from_shared(uri)
            .map_err(unreachable)?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(unreachable),
        Address::Unix(path) => {
            // The URI is required by the API but unused: the connector dials the socket.
            Endpoint::from_static("http://kanband.invalid")
                .connect_timeout(CONNECT_TIMEOUT)
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                }))
                .await
                .map_err(unreachable)
        }
    }
}

/// Typed clients of every `kanban.v1` service over one channel.
#[derive(Debug, Clone)]
pub struct Client {
    /// `kanban.v1.Boards`.
    pub boards: BoardsClient<AuthChannel>,
    /// `kanban.v1.Tasks`.
    pub tasks: TasksClient<AuthChannel>,
    /// `kanban.v1.Leases`.
    pub leases: LeasesClient<AuthChannel>,
    /// `kanban.v1.Admin`.
    pub admin: AdminClient<AuthChannel>,
    /// `kanban.v1.Events`.
    pub events: EventsClient<AuthChannel>,
    /// `kanban.v1.Notifications`.
    pub notifications: NotificationsClient<AuthChannel>,
    /// `kanban.v1.Attachments`.
    pub attachments: AttachmentsClient<AuthChannel>,
}

impl Client {
    /// Connects to `target`: an address (no token) or a [`Target`].
    pub async fn connect(target: impl Into<Target>) -> Result<Client, ConnectError> {
        let target = target.into();
        let bearer = Bearer::new(target.token.as_deref())?;
        Ok(Client::with_bearer(connect(&target.addr).await?, bearer))
    }

    /// Wraps an existing channel, sending no token.
    pub fn new(channel: Channel) -> Client {
        Client::with_bearer(channel, Bearer::default())
    }

    /// Wraps an existing channel; every call carries `bearer`.
    pub fn with_bearer(channel: Channel, bearer: Bearer) -> Client {
        let intercepted = InterceptedService::new(channel, bearer);
        Client {
            boards: BoardsClient::new(intercepted.clone()),
            tasks: TasksClient::new(intercepted.clone()),
            leases: LeasesClient::new(intercepted.clone()),
            admin: AdminClient::new(intercepted.clone()),
            events: EventsClient::new(intercepted.clone()),
            notifications: NotificationsClient::new(intercepted.clone()),
            attachments: AttachmentsClient::new(intercepted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            Address::parse("unix:/tmp/k.sock").unwrap(),
            Address::Unix("/tmp/k.sock".into())
        );
        assert_eq!(
            Address::parse("unix:///tmp/k.sock").unwrap(),
            Address::Unix("/tmp/k.sock".into())
        );
        assert!(matches!(
            Address::parse("http://127.0.0.1:1").unwrap(),
            Address::Http(_)
        ));
        assert_eq!(
            Address::parse("localhost:50051").unwrap(),
            Address::Http("http://localhost:50051".into())
        );
        assert_eq!(
            Address::parse("/tmp/k.sock").unwrap(),
            Address::Unix("/tmp/k.sock".into())
        );
        for bad in ["", "unix:", "localhost", "ftp://x"] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }
}
