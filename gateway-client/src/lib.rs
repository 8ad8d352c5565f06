//! What a gateway embeds to talk to kanband.
//!
//! - [`connect`]: a channel to `unix:/path`, `http://host:port` or `https://host:port` (TLS,
//!   with a private CA and a client certificate from [`TlsFiles`]), with connect and request
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
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Uri},
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
    /// The TLS handshake failed: the server's certificate is not trusted, or the server did
    /// not accept ours.
    #[error("TLS with kanband at {addr} failed: {detail}; {hint}")]
    Tls {
        /// The address.
        addr: String,
        /// What rustls said.
        detail: String,
        /// Which flag to check.
        hint: &'static str,
    },
    /// A CA, certificate or key file could not be used.
    #[error("cannot use the TLS {what} {}: {problem}", path.display())]
    TlsFile {
        /// `CA (--ca)`, ...
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// TLS options were given for an address that is not `https://`.
    #[error("--ca, --cert and --key are for https:// addresses; {0} is not one")]
    TlsNeedsHttps(String),
}

/// An error and its causes on one line (tonic's own message is only "transport error").
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
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

/// What a client needs for TLS beyond an `https://` address: a private CA to trust instead of
/// the system's roots, and for mutual TLS a certificate and its key (PEM files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// Trust only the CAs in this file (`--ca`, `KANBAN_CA`); none trusts the system's roots.
    pub ca: Option<PathBuf>,
    /// The client certificate for mutual TLS (`--cert`, `KANBAN_CERT`).
    pub cert: Option<PathBuf>,
    /// Its private key (`--key`, `KANBAN_KEY`).
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// Whether any file is named.
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }

    /// The client TLS configuration for `host`.
    fn config(&self) -> Result<ClientTlsConfig, ConnectError> {
        let mut config = ClientTlsConfig::new().assume_http2(true);
        config = match &self.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read_pem(ca, "CA (--ca)")?)),
            None => config.with_native_roots(),
        };
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Ok(config.identity(Identity::from_pem(
                read_pem(cert, "client certificate (--cert)")?,
                read_pem(key, "client key (--key)")?,
            ))),
            (None, None) => Ok(config),
            (Some(cert), None) => Err(ConnectError::TlsFile {
                what: "client certificate (--cert)",
                path: cert.clone(),
                problem: "has no key: give --key too".to_owned(),
            }),
            (None, Some(key)) => Err(ConnectError::TlsFile {
                what: "client key (--key)",
                path: key.clone(),
                problem: "has no certificate: give --cert too".to_owned(),
            }),
        }
    }
}

impl From<&kanband_cli::connection::ConnectionArgs> for TlsFiles {
    /// The files `--ca`, `--cert` and `--key` name.
    fn from(args: &kanband_cli::connection::ConnectionArgs) -> TlsFiles {
        let [ca, cert, key] = args.tls_paths();
        TlsFiles { ca, cert, key }
    }
}

/// A PEM file's bytes, refused early when it holds no PEM block (rustls would only say so at
/// the handshake, without naming the file).
fn read_pem(path: &std::path::Path, what: &'static str) -> Result<Vec<u8>, ConnectError> {
    let bytes = std::fs::read(path).map_err(|err| ConnectError::TlsFile {
        what,
        path: path.to_owned(),
        problem: err.to_string(),
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(ConnectError::TlsFile {
            what,
            path: path.to_owned(),
            problem: "is not a PEM file (no -----BEGIN line)".to_owned(),
        });
    }
    Ok(bytes)
}

/// Which flag to check for a failed TLS handshake, from what rustls said.
fn tls_hint(detail: &str) -> Option<&'static str> {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("certificaterequired")
        || lower.contains("certificate required")
        || lower.contains("badcertificate")
        || lower.contains("unknownca")
        || lower.contains("decrypterror")
    {
        Some(
            "kanband refused our client certificate or got none: check --cert and --key \
             (KANBAN_CERT, KANBAN_KEY) against its --tls-client-ca",
        )
    } else if lower.contains("invalid peer certificate")
        || lower.contains("unknownissuer")
        || lower.contains("notvalidforname")
        || lower.contains("certificate")
    {
        Some(
            "kanband's certificate is not one we trust for this address: check --ca \
             (KANBAN_CA), and that the certificate names the host in the address",
        )
    } else if lower.contains("tls") || lower.contains("handshake") || lower.contains("alert") {
        Some("check --ca, --cert and --key, and that kanband serves TLS on this port")
    } else {
        None
    }
}

/// What went wrong, when a call failed because the TLS handshake did: with TLS 1.3 a client
/// sends its certificate after it has accepted the server's, so a server that refuses the
/// client's certificate (or got none) is only heard of on the first call, as a transport error
/// carrying the server's alert. The text names the flag to check.
pub fn tls_failure(status: &tonic::Status) -> Option<String> {
    use std::error::Error as _;
    let detail = chain(status.source()?);
    tls_hint(&detail).map(|hint| format!("TLS with kanband failed: {detail}; {hint}"))
}

/// A transport failure, told apart as a TLS problem when it is one.
fn connect_failure(addr: &str, source: tonic::transport::Error) -> ConnectError {
    let detail = chain(&source);
    match tls_hint(&detail) {
        Some(hint) if addr.starts_with("https://") => ConnectError::Tls {
            addr: addr.to_owned(),
            detail,
            hint,
        },
        _ => ConnectError::Unreachable {
            addr: addr.to_owned(),
            source,
        },
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
    /// CA and client certificate for an `https://` address.
    pub tls: TlsFiles,
}

impl Target {
    /// `addr` with `token`.
    pub fn new(addr: impl Into<String>, token: Option<String>) -> Target {
        Target {
            addr: addr.into(),
            token: token.filter(|t| !t.is_empty()),
            tls: TlsFiles::default(),
        }
    }

    /// The same target, over TLS with `tls`.
    pub fn with_tls(mut self, tls: TlsFiles) -> Target {
        self.tls = tls;
        self
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never in logs.
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("token", &self.token.as_ref().map(|_| "<secret>"))
            .field("tls", &self.tls)
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
            format!("{}; {START}", chain(err))
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

/// Connects to kanband at `addr` (see [`Address`]); an `https://` address trusts the system's
/// roots.
pub async fn connect(addr: &str) -> Result<Channel, ConnectError> {
    connect_with(addr, &TlsFiles::default()).await
}

/// Connects to kanband at `addr` (see [`Address`]), an `https://` one with `tls`.
pub async fn connect_with(addr: &str, tls: &TlsFiles) -> Result<Channel, ConnectError> {
    let unreachable = |source| ConnectError::Unreachable {
        addr: addr.to_owned(),
        source,
    };
    let https = addr.starts_with("https://");
    if !https && !tls.is_empty() {
        return Err(ConnectError::TlsNeedsHttps(addr.to_owned()));
    }
    match Address::parse(addr)? {
        Address::Http(uri) => {
            let mut endpoint = Endpoint::from_shared(uri)
                .map_err(unreachable)?
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true);
            if https {
                endpoint = endpoint.tls_config(tls.config()?).map_err(unreachable)?;
            }
            endpoint
                .connect()
                .await
                .map_err(|source| connect_failure(addr, source))
        }
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
        Ok(Client::with_bearer(
            connect_with(&target.addr, &target.tls).await?,
            bearer,
        ))
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
