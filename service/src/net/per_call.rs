//! [`PerCallLayer`]: the one shape of kanband's per-call layers. Something is taken from each
//! request before the services see it and held, told the response's headers and trailers, until
//! the response body is dropped: that is when a call really ends (a stream's body lives as long
//! as the stream).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http_body::{Body, Frame, SizeHint};
use tonic::codegen::{Bytes, StdError, http};
use tower::{Layer, Service};

/// What a [`PerCallLayer`] does for each call.
pub(crate) trait PerCall: Clone + Send + 'static {
    /// Held from the request until the response body is dropped.
    type Held: Send + Unpin + 'static;

    /// Takes what is held from the request, before the inner service sees it.
    fn request<B>(&self, request: &mut http::Request<B>) -> Self::Held;

    /// The response's head (headers, extensions), when it arrives.
    fn response<RB>(_held: &mut Self::Held, _response: &http::Response<RB>) {}

    /// Each trailers frame of the response body.
    fn trailers(_held: &mut Self::Held, _trailers: &http::HeaderMap) {}
}

/// Runs a [`PerCall`] around every call of the service it wraps.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PerCallLayer<P>(P);

impl<P: PerCall> PerCallLayer<P> {
    /// Runs `per_call` around every call.
    pub(crate) fn around(per_call: P) -> PerCallLayer<P> {
        PerCallLayer(per_call)
    }
}

impl<S, P: PerCall> Layer<S> for PerCallLayer<P> {
    type Service = PerCallService<S, P>;

    fn layer(&self, inner: S) -> PerCallService<S, P> {
        PerCallService {
            inner,
            per_call: self.0.clone(),
        }
    }
}

/// The service a [`PerCallLayer`] wraps.
#[derive(Debug, Clone)]
pub(crate) struct PerCallService<S, P> {
    inner: S,
    per_call: P,
}

impl<S, P, B, RB> Service<http::Request<B>> for PerCallService<S, P>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    P: PerCall,
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
        let mut held = self.per_call.request(&mut request);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            P::response(&mut held, &response);
            Ok(response.map(|inner| tonic::body::Body::new(Held::<RB, P> { inner, held })))
        })
    }
}

/// A response body that keeps what its call holds until it is dropped.
struct Held<B, P: PerCall> {
    inner: B,
    held: P::Held,
}

impl<B: Body + Unpin, P: PerCall> Body for Held<B, P> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(trailers) = frame.trailers_ref()
        {
            P::trailers(&mut self.held, trailers);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
