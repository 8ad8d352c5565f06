//! Exit codes, and the one function that picks one for an error.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | failed: any error not listed below (invalid argument, illegal transition, ...) |
//! | 2 | usage: bad arguments (clap), a malformed `--addr`, a worker verb outside a worker: `KANBAN_TASK` unset for any of them, `KANBAN_CLAIM_TOKEN` unset for a holder verb (complete, block, heartbeat, request-review, request-changes); `show` and `comment` need no token (a comment without one is an operator's) |
//! | 3 | lease lost or fenced: the service refused the claim token (ABORTED); stderr names the reason and the current epoch |
//! | 4 | not found: the task or board does not exist (NOT_FOUND) |
//! | 5 | service unavailable: nothing answers at `--addr`, kanband is starting or draining (UNAVAILABLE), or it did not answer in time; worker verbs first retry for `--retry-for` |
//! | 6 | not allowed: no credential, or an unknown or revoked one (UNAUTHENTICATED), or its role may not do this (PERMISSION_DENIED); stderr names the credential needed |
//!
//! Why these: a worker or a supervisor script must tell "stop, someone else owns this task now"
//! (3) from "retry later" (5) from "my mistake" (2, 4) without reading the message.

use kanband_gateway::ConnectError;
use tonic::Code;

use crate::Error;

/// Success.
pub const OK: u8 = 0;
/// Any failure without a more specific code.
pub const FAILED: u8 = 1;
/// Bad usage; also what clap exits with on a parse error.
pub const USAGE: u8 = 2;
/// The claim token was refused (ABORTED): lease expired, revoked, superseded, reset.
pub const LEASE_LOST: u8 = 3;
/// The named task or board does not exist (NOT_FOUND).
pub const NOT_FOUND: u8 = 4;
/// kanband cannot be reached, is starting or draining (UNAVAILABLE), or did not answer in time.
pub const UNAVAILABLE: u8 = 5;
/// The credential is missing, unknown or revoked, or its role may not do this.
pub const NOT_ALLOWED: u8 = 6;

/// The exit-code table as shown at the end of `kanbanctl --help`.
pub const HELP: &str = "\
Exit codes:
  0  ok
  1  failed (any other error)
  2  usage (bad arguments; a worker verb without KANBAN_TASK; complete, block, heartbeat,
     request-review or request-changes without KANBAN_CLAIM_TOKEN)
  3  lease lost or fenced (the claim token was refused; stderr names the reason and epoch)
  4  not found (no such task or board)
  5  service unavailable (cannot connect, the connection broke mid-call, no answer in time, or
     kanband is starting or draining; worker verbs first retry for --retry-for)
  6  not allowed (no token, an unknown or revoked one, a role that may not do this, or a TLS
     certificate refused either way)";

/// The exit code for an error: the only place errors are mapped to codes.
pub fn exit_code(err: &Error) -> u8 {
    match err {
        Error::Usage(_)
        | Error::Connect(ConnectError::BadAddress(_))
        | Error::Connect(ConnectError::BadToken)
        | Error::Connect(ConnectError::TlsFile { .. })
        | Error::Connect(ConnectError::TlsNeedsHttps(_)) => USAGE,
        Error::Connect(ConnectError::Unreachable { .. }) => UNAVAILABLE,
        // The certificates do not match: trying again would not help.
        Error::Connect(ConnectError::Tls { .. }) => NOT_ALLOWED,
        Error::Rpc(status) if kanband_gateway::tls_failure(status).is_some() => NOT_ALLOWED,
        Error::Rpc(status) => match status.code() {
            Code::Aborted => LEASE_LOST,
            Code::NotFound => NOT_FOUND,
            Code::Unauthenticated | Code::PermissionDenied => NOT_ALLOWED,
            // kanband is starting or draining, or (a deadline kanbanctl set) did not answer.
            Code::Unavailable | Code::DeadlineExceeded => UNAVAILABLE,
            // The connection broke mid-call (kanband died or restarted): tonic reports the
            // transport failure as UNKNOWN.
            Code::Unknown if status.message().starts_with("transport error") => UNAVAILABLE,
            _ => FAILED,
        },
        Error::Output(_) | Error::Violations(_) => FAILED,
    }
}

#[cfg(test)]
mod tests {
    use tonic::Status;

    use super::*;

    #[test]
    fn codes() {
        assert_eq!(exit_code(&Error::usage("x")), USAGE);
        assert_eq!(
            exit_code(&Error::Connect(ConnectError::BadAddress("x".into()))),
            USAGE
        );
        assert_eq!(exit_code(&Status::aborted("x").into()), LEASE_LOST);
        assert_eq!(exit_code(&Status::not_found("x").into()), NOT_FOUND);
        assert_eq!(exit_code(&Status::unauthenticated("x").into()), NOT_ALLOWED);
        assert_eq!(
            exit_code(&Status::permission_denied("x").into()),
            NOT_ALLOWED
        );
        assert_eq!(exit_code(&Status::unavailable("x").into()), UNAVAILABLE);
        assert_eq!(
            exit_code(&Status::deadline_exceeded("x").into()),
            UNAVAILABLE
        );
        assert_eq!(
            exit_code(&Status::unknown("transport error").into()),
            UNAVAILABLE
        );
        assert_eq!(exit_code(&Status::unknown("something else").into()), FAILED);
        assert_eq!(exit_code(&Status::invalid_argument("x").into()), FAILED);
        assert_eq!(exit_code(&Status::failed_precondition("x").into()), FAILED);
    }
}
