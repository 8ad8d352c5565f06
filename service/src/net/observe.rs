//! [`ObserveLayer`]: one measurement and one debug log line per gRPC call.
//!
//! The call's outcome is known only when its answer ends: a unary call's `grpc-status` rides in
//! the trailers after the message (or in the headers of a trailers-only refusal), a stream's when
//! it finishes. So the response body is wrapped, and the call is recorded once, when that body
//! is dropped: with the status it carried, or `CANCELLED` when it was dropped before any (the
//! client went away).

use tokio::time::Instant;
use tonic::codegen::http;

use super::per_call::{PerCall, PerCallLayer};
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
pub(crate) type ObserveLayer = PerCallLayer<Observe>;

/// What [`ObserveLayer`] does per call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Observe;

impl PerCall for Observe {
    type Held = Call;

    fn request<B>(&self, request: &mut http::Request<B>) -> Call {
        Call {
            method: request.uri().path().to_owned(),
            caller: None,
            started: Instant::now(),
            code: None,
        }
    }

    fn response<RB>(call: &mut Call, response: &http::Response<RB>) {
        call.code = grpc_status(response.headers());
        call.caller = response.extensions().get::<Caller>().cloned();
    }

    /// A unary call's status rides in the trailers after the message, a stream's at its end.
    fn trailers(call: &mut Call, trailers: &http::HeaderMap) {
        if let Some(code) = grpc_status(trailers) {
            call.code = Some(code);
        }
    }
}

/// What is known of a call until it is recorded.
#[derive(Debug)]
pub(crate) struct Call {
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
