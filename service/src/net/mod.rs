//! What kanband does per connection, below the gRPC services: every accepted socket is wrapped
//! in a [`Conn`] that carries the connection's own state ([`Peer`]) into each request's
//! extensions, so stream caps can be charged to the connection a call came over.

mod conn;
mod layer;

use std::sync::Arc;

pub use conn::{Conn, Peer, Transport};
pub use layer::PeerLayer;

use crate::streams::ConnStreams;

/// The stream places of the connection `request` came over; `None` for calls made in process.
pub fn conn_streams<T>(request: &tonic::Request<T>) -> Option<Arc<ConnStreams>> {
    request
        .extensions()
        .get::<Peer>()
        .map(|peer| peer.streams().clone())
}
