//! [`ObserveLayer`]: one measurement and one debug log line per gRPC call.
//!
//! The call's outcome is known only when its answer ends: a unary call's `grpc-status` rides in
//! the trailers after the message (or in the headers of a trailers-only refusal), a stream's when
//! it finishes. So the response body is wrapped, and the call is recorded once, when that body
//! is dropped: with the status it carried, or `CANCELLED` when it was dropped before any (the
//! client went away).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;
use tonic::codegen::{Bytes, StdError, http};
use tower::{Layer, Service};

use crate::metrics;

/// Who made a call, as the authentication layer (inside this one) found: it puts this into
/// the *response's* extensions, since the request passed through here before it was
/// authenticated, and the call's log line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The identity's name (a token's name, `admin` for the socket's owner, `worker:<task>`).
    pub name: String,
    /// Its role.
    pub role: &'static str,
}

/// Records every call's method, status code and duration (`kanband_rpc_*`) and logs one debug
/// line for it (target `kanband::rpc`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = ObserveService<S>;

    fn layer(&self, inner: S) -> ObserveService<S> {
        ObserveService { inner }
    }
}

/// The service [`ObserveLayer`] wraps.
#[derive(Debug, Clone)]
pub struct ObserveService<S> {
    inner: S,
}

impl<S, B, RB> Service<http::Request<B>> for ObserveService<S>
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let mut call = Call {
            method: request.uri().path().to_owned(),
            caller: None,
            started: Instant::now(),
            code: None,
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            call.code = grpc_status(response.headers());
            call.caller = response.extensions().get::<Caller>().cloned();
            Ok(response.map(|inner| tonic::body::Body::new(Observed { inner, call })))
        })
    }
}

/// What is known of a call until it is recorded.
#[derive(Debug)]
struct Call {
    method: String,
    /// Who made it, once authenticated (refused calls have none).
    caller: Option<Caller>,
    started: Instant,
    /// The `grpc-status` seen so far (headers, then trailers).
    code: Option<i32>,
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = self.code.map_or("CANCELLED", code_name);
        let elapsed = self.started.elapsed();
        let labels = [("method", self.method.clone()), ("code", code.to_owned())];
        ::metrics::counter!(metrics::RPC_REQUESTS, &labels).increment(1);
        ::metrics::histogram!(metrics::RPC_DURATION, &labels).record(elapsed.as_secs_f64());
        tracing::debug!(
            target: "kanband::rpc",
            method = %self.method,
            code,
            duration_ms = elapsed.as_secs_f64() * 1_000.0,
            caller = self.caller.as_ref().map(|c| c.name.as_str()),
            role = self.caller.as_ref().map(|c| c.role),
            "rpc"
        );
    }
}

/// A response body that notes the status its trailers carry.
#[derive(Debug)]
struct Observed<B> {
    inner: B,
    call: Call,
}

impl<B: Body + Unpin> Body for Observed<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(code) = frame.trailers_ref().and_then(grpc_status)
        {
            self.call.code = Some(code);
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

fn grpc_status(headers: &http::HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// The canonical name of a gRPC status code, as the gRPC spec and grpcurl write it.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_follow_the_spec() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(10), "ABORTED");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "UNKNOWN");
    }
}
