//! Protocol errors are the caller's: tonic answers a request it cannot decode (a malformed
//! protobuf, a truncated frame, a bad compression flag, a unary call without its message) with
//! INTERNAL, which kanband keeps for its own storage failures. These are rewritten to
//! INVALID_ARGUMENT, keeping tonic's message.

use tonic::{Code, Status, codegen::http};

/// How tonic's messages for undecodable requests begin.
const DECODE_FAILURES: &[&str] = &[
    "failed to decode Protobuf message",
    "protocol error: received message with",
    "Unexpected EOF decoding stream",
    "Error decompressing",
    "Missing request message",
];

/// Whether `message` is tonic's for a request it could not decode.
fn is_decode_failure(message: &str) -> bool {
    DECODE_FAILURES
        .iter()
        .any(|prefix| message.starts_with(prefix))
}

/// An inbound stream's error as kanband answers it: a decode failure is INVALID_ARGUMENT.
pub fn inbound(status: Status) -> Status {
    if status.code() == Code::Internal && is_decode_failure(status.message()) {
        Status::invalid_argument(status.message())
    } else {
        status
    }
}

/// Rewrites a trailers-only refusal of an undecodable request (how tonic answers one for a
/// unary or server-streaming call) from INTERNAL to INVALID_ARGUMENT.
pub fn decode_failure_is_invalid_argument<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    let failure = headers.get("grpc-status").is_some_and(|s| s == "13")
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| is_decode_failure(&percent_decoded(m)));
    if failure {
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
    }
    response
}

/// `grpc-message` is percent-encoded.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_decode_failures_become_invalid_argument() {
        let decode = Status::internal("failed to decode Protobuf message: invalid wire type");
        let response = decode_failure_is_invalid_argument(decode.clone().into_http::<()>());
        assert_eq!(response.headers()["grpc-status"], "3");
        assert_eq!(inbound(decode).code(), Code::InvalidArgument);

        let storage = Status::internal("internal storage error; the service log has the details");
        let response = decode_failure_is_invalid_argument(storage.clone().into_http::<()>());
        assert_eq!(response.headers()["grpc-status"], "13");
        assert_eq!(inbound(storage).code(), Code::Internal);
    }
}
