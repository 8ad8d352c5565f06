//! `PeerLayer`: per-request bookkeeping of the connection a request came over.

use tonic::codegen::http;

use super::{
    conn::{OpenRequest, Peer, PeerInfo},
    per_call::{PerCall, PerCallLayer},
};

/// For each request that came over a [`Conn`](super::Conn): counts it open on its connection
/// until its response body is dropped (so a connection with a live stream is never idle), and
/// puts the transport's own peer information (`TcpConnectInfo`, `UdsConnectInfo`) back into the
/// request's extensions beside the [`Peer`], so `Request::remote_addr` and readers of the
/// peer's credentials work as with tonic's own listeners.
pub(crate) type PeerLayer = PerCallLayer<CountOpen>;

/// What [`PeerLayer`] does per call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CountOpen;

impl PerCall for CountOpen {
    /// The request counted open, for a request that came over a [`Conn`](super::Conn).
    type Held = Option<OpenRequest>;

    fn request<B>(&self, request: &mut http::Request<B>) -> Option<OpenRequest> {
        let peer = request.extensions().get::<Peer>().cloned()?;
        let open = peer.state.opened();
        let extensions = request.extensions_mut();
        match peer.info {
            PeerInfo::Tcp(info) => extensions.insert(info).map(drop),
            PeerInfo::Unix(info) => extensions.insert(info).map(drop),
        };
        Some(open)
    }
}
