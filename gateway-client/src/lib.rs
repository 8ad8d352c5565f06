//! What a gateway embeds to talk to kanband.
//!
//! - [`connect`]: a channel to `unix:/path` or `http://host:port`, with connect and request
//!   deadlines, and [`Client`], the typed clients of every `kanban.v1` service on it.
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
use tonic::transport::{Channel, Endpoint, Uri};

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
    #[error("{0:?} is not an address like unix:/path/to/kanband.sock or http://127.0.0.1:50051")]
    BadAddress(String),
    /// The service could not be reached.
    #[error("cannot reach kanband at {addr}: {source}")]
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
    /// Parses an address.
    pub fn parse(addr: &str) -> Result<Address, ConnectError> {
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
    pub boards: BoardsClient<Channel>,
    /// `kanban.v1.Tasks`.
    pub tasks: TasksClient<Channel>,
    /// `kanban.v1.Leases`.
    pub leases: LeasesClient<Channel>,
    /// `kanban.v1.Admin`.
    pub admin: AdminClient<Channel>,
    /// `kanban.v1.Events`.
    pub events: EventsClient<Channel>,
    /// `kanban.v1.Notifications`.
    pub notifications: NotificationsClient<Channel>,
    /// `kanban.v1.Attachments`.
    pub attachments: AttachmentsClient<Channel>,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: &str) -> Result<Client, ConnectError> {
        Ok(Client::new(connect(addr).await?))
    }

    /// Wraps an existing channel.
    pub fn new(channel: Channel) -> Client {
        Client {
            boards: BoardsClient::new(channel.clone()),
            tasks: TasksClient::new(channel.clone()),
            leases: LeasesClient::new(channel.clone()),
            admin: AdminClient::new(channel.clone()),
            events: EventsClient::new(channel.clone()),
            notifications: NotificationsClient::new(channel.clone()),
            attachments: AttachmentsClient::new(channel),
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
        for bad in ["", "unix:", "127.0.0.1:50051", "ftp://x"] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }
}
