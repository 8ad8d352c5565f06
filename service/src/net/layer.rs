//! [`PeerLayer`]: per-request bookkeeping of the connection a request came over.

use std::task::{Context, Poll};

use tonic::codegen::http;
use tower::{Layer, Service};

use super::conn::{Peer, PeerInfo};

/// Puts the transport's own peer information (`TcpConnectInfo`, `UdsConnectInfo`) back into
/// each request's extensions beside the [`Peer`], so `Request::remote_addr` and readers of the
/// peer's credentials work as with tonic's own listeners.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerLayer;

impl<S> Layer<S> for PeerLayer {
    type Service = PeerService<S>;

    fn layer(&self, inner: S) -> PeerService<S> {
        PeerService { inner }
    }
}

/// The service [`PeerLayer`] wraps.
#[derive(Debug, Clone)]
pub struct PeerService<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for PeerService<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(peer) = request.extensions().get::<Peer>().cloned() {
            let extensions = request.extensions_mut();
            match peer.info {
                PeerInfo::Tcp(info) => extensions.insert(info).map(drop),
                PeerInfo::Unix(info) => extensions.insert(info).map(drop),
            };
        }
        self.inner.call(request)
    }
}
