//! [`ObserveLayer`]: one measurement and one debug log line per gRPC call.
//!
//! The call's outcome is known only when its answer ends: a unary call's `grpc-status` rides in
//! the trailers after the message (or in the headers of a trailers-only refusal), a stream's when
//! it finishes. So the response body is wrapped, and the call is recorded once, when that body
//! is dropped: with the status it carried, or `CANCELLED` when it was dropped before any (the
//! client went away).
//!
//! A call is recorded under its method only when that method is one kanband serves; any other
//! path (a typo, a scanner, anyone before authentication) counts as `other`, so no caller can
//! grow the number of series kanband keeps. Each method's series are made on its first call
//! with each code and kept, so recording a call looks nothing up in the recorder.

use std::{
    borrow::Cow,
    sync::{Arc, OnceLock},
};

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

impl ObserveLayer {
    /// Records the calls of `methods` (full paths: `/kanban.v1.Tasks/CreateTask`) under their
    /// own names, and every other path as `other`.
    pub(crate) fn new(methods: impl IntoIterator<Item = &'static str>) -> ObserveLayer {
        PerCallLayer::around(Observe {
            series: Arc::new(Series::new(methods)),
        })
    }
}

/// What [`ObserveLayer`] does per call.
#[derive(Debug, Clone)]
pub(crate) struct Observe {
    series: Arc<Series>,
}

impl PerCall for Observe {
    type Held = Call;

    fn request<B>(&self, request: &mut http::Request<B>) -> Call {
        let path = request.uri().path();
        let (method, path) = match self.series.method(path) {
            Some((method, known)) => (method, Cow::Borrowed(known)),
            None => (self.series.other(), Cow::Owned(path.to_owned())),
        };
        Call {
            series: self.series.clone(),
            method,
            path,
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

/// The label a call to a method kanband does not serve is recorded under.
const OTHER: &str = "other";

/// Status codes 0 to 16, each with its own series.
const CODES: usize = 17;

/// The series of every (method, code) pair, made on first use: the served methods, sorted,
/// then `other`.
#[derive(Debug)]
struct Series {
    methods: Vec<&'static str>,
    handles: Vec<[OnceLock<Handles>; CODES]>,
}

/// One (method, code) pair's counter and histogram.
#[derive(Debug)]
struct Handles {
    requests: ::metrics::Counter,
    duration: ::metrics::Histogram,
}

impl Series {
    fn new(methods: impl IntoIterator<Item = &'static str>) -> Series {
        let mut methods: Vec<&'static str> = methods.into_iter().collect();
        methods.sort_unstable();
        methods.dedup();
        let handles = (0..=methods.len())
            .map(|_| std::array::from_fn(|_| OnceLock::new()))
            .collect();
        Series { methods, handles }
    }

    /// The index of `path` and its name, if kanband serves it.
    fn method(&self, path: &str) -> Option<(usize, &'static str)> {
        let index = self.methods.binary_search(&path).ok()?;
        Some((index, self.methods[index]))
    }

    /// The index of every path kanband does not serve.
    fn other(&self) -> usize {
        self.methods.len()
    }

    /// The handles of `method` answered with `code`, made on their first use. A code past the
    /// spec's shares `UNKNOWN`'s, as [`code_name`] names it.
    fn handles(&self, method: usize, code: i32) -> &Handles {
        let slot = usize::try_from(code)
            .ok()
            .filter(|&slot| slot < CODES)
            .unwrap_or(tonic::Code::Unknown as usize);
        self.handles[method][slot].get_or_init(|| {
            let name = self.methods.get(method).copied().unwrap_or(OTHER);
            let labels = [("method", name), ("code", code_name(code))];
            Handles {
                requests: ::metrics::counter!(metrics::RPC_REQUESTS, &labels),
                duration: ::metrics::histogram!(metrics::RPC_DURATION, &labels),
            }
        })
    }
}

/// What is known of a call until it is recorded.
#[derive(Debug)]
pub(crate) struct Call {
    series: Arc<Series>,
    /// Its index in `series`.
    method: usize,
    /// The path it was made to, for the log line.
    path: Cow<'static, str>,
    /// Who made it, once authenticated (refused calls have none).
    caller: Option<Caller>,
    started: Instant,
    /// The `grpc-status` seen so far (headers, then trailers).
    code: Option<i32>,
}

impl Drop for Call {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(tonic::Code::Cancelled as i32);
        let elapsed = self.started.elapsed();
        let handles = self.series.handles(self.method, code);
        handles.requests.increment(1);
        handles.duration.record(elapsed.as_secs_f64());
        tracing::debug!(
            target: "kanband::rpc",
            method = %self.path,
            code = code_name(code),
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
    fn only_the_methods_served_have_series_of_their_own() {
        let series = Series::new(["/b.S/M", "/a.S/M", "/a.S/M"]);
        assert_eq!(series.method("/a.S/M"), Some((0, "/a.S/M")));
        assert_eq!(series.method("/b.S/M"), Some((1, "/b.S/M")));
        assert_eq!(series.method("/a.S/N"), None);
        assert_eq!(series.other(), 2);
        assert_eq!(series.handles.len(), 3, "one row per method, and other");
    }

    #[test]
    fn code_names_follow_the_spec() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(10), "ABORTED");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "UNKNOWN");
    }
}
