//! [`PeerLayer`]: per-request bookkeeping of the connection a request came over.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http_body::{Body, Frame, SizeHint};
use tonic::codegen::{Bytes, StdError, http};
use tower::{Layer, Service};

use super::conn::{OpenRequest, Peer, PeerInfo};

/// For each request that came over a [`Conn`](super::Conn): counts it open on its connection
/// until its response body is dropped (so a connection with a live stream is never idle), and
/// puts the transport's own peer information (`TcpConnectInfo`, `UdsConnectInfo`) back into the
/// request's extensions beside the [`Peer`], so `Request::remote_addr` and readers of the
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

impl<S, B, RB> Service<http::Request<B>> for PeerService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    RB: Body<Data = Bytes> + Unpin + Send + 'static,
    RB::Error: Into<StdError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let mut open = None;
        if let Some(peer) = request.extensions().get::<Peer>().cloned() {
            open = Some(peer.state.opened());
            let extensions = request.extensions_mut();
            match peer.info {
                PeerInfo::Tcp(info) => extensions.insert(info).map(drop),
                PeerInfo::Unix(info) => extensions.insert(info).map(drop),
            };
        }
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| tonic::body::Body::new(Counted { inner, _open: open })))
        })
    }
}

/// A response body that keeps its request counted open until it is dropped.
#[derive(Debug)]
struct Counted<B> {
    inner: B,
    _open: Option<OpenRequest>,
}

impl<B: Body + Unpin> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
