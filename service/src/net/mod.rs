//! What kanband does per connection, below the gRPC services: the accept loop ([`Incoming`],
//! which backs off when descriptors run out), the descriptor limit, and [`Conn`], each accepted
//! socket with its connection's own state ([`Peer`], carried into each request's extensions so
//! stream caps can be charged to the connection a call came over) and the timeouts that close
//! connections doing nothing; [`TlsIncoming`], TCP connections after a TLS handshake held to the
//! handshake timeout; `ObserveLayer`, each call's metrics and debug log line; and [`status`], protocol errors
//! answered as the caller's.

mod conn;
mod incoming;
mod layer;
mod nofile;
mod observe;
mod per_call;
pub mod status;
mod tls;

use std::sync::Arc;

pub use conn::{Conn, Peer, PeerInfo, Timeouts, Transport};
pub use incoming::{Incoming, Listener};
pub(crate) use layer::PeerLayer;
pub use nofile::raise_descriptor_limit;
pub(crate) use observe::ObserveLayer;
pub use observe::{Caller, code_name};
pub use tls::{ServerTls, TlsConn, TlsError, TlsIncoming};

use crate::streams::ConnStreams;

/// The stream places of the connection `request` came over; `None` for calls made in process.
pub fn conn_streams<T>(request: &tonic::Request<T>) -> Option<Arc<ConnStreams>> {
    request
        .extensions()
        .get::<Peer>()
        .map(|peer| peer.streams().clone())
}
