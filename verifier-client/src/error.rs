//! The library's error type and how each error reads on stderr.
//!
//! The binary prints an error as `kanbanctl: <Display>` and exits with
//! [`exit_code`](crate::exit::exit_code) of it; messages therefore name what happened without
//! repeating the program name. A refused claim token reads like
//! `lease lost (superseded, current epoch 4): <service message>`, taken from the
//! `kanban-lease-lost` and `kanban-current-epoch` trailers so a worker's log says why without
//! anyone parsing the service's message.

use kanband_gateway::ConnectError;
use tonic::{Code, Status};

pub use kanband_proto::{EPOCH_TRAILER, LEASE_LOST_TRAILER};

/// Result with kanbanctl's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage that clap cannot see: a worker verb run outside a worker (no `KANBAN_TASK`),
    /// an empty required value, an unreadable `--result -`.
    #[error("{0}")]
    Usage(String),
    /// The address is malformed, or nothing answers there.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The service refused or failed a call (boxed: a `Status` is large).
    #[error("{}", describe(.0))]
    Rpc(Box<Status>),
    /// `check` found broken invariants (they were printed).
    #[error("{0} invariant violation(s) found")]
    Violations(usize),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::Rpc(Box::new(status))
    }
}

impl Error {
    /// A usage error with a message.
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }
}

/// Why a holder call was refused, from the ABORTED status's trailers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseLost {
    /// `expired`, `revoked`, `superseded`, `board_reset` or `unknown`; `None` without trailer.
    pub reason: Option<String>,
    /// The task's current epoch, when the service said.
    pub current_epoch: Option<u64>,
}

impl LeaseLost {
    /// Reads the trailers of an ABORTED status; `None` for any other code.
    pub fn from_status(status: &Status) -> Option<LeaseLost> {
        if status.code() != Code::Aborted {
            return None;
        }
        let trailer = |name: &str| {
            status
                .metadata()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Some(LeaseLost {
            reason: trailer(LEASE_LOST_TRAILER),
            current_epoch: trailer(EPOCH_TRAILER).and_then(|epoch| epoch.parse().ok()),
        })
    }
}

/// A short lowercase name for a status code, for messages.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown error",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "not allowed (PERMISSION_DENIED)",
        Code::ResourceExhausted => "resource exhausted",
        Code::FailedPrecondition => "not allowed now",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "not implemented by this kanband",
        Code::Internal => "internal error",
        Code::Unavailable => "kanband is unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "token refused (UNAUTHENTICATED)",
    }
}

/// How a refused or failed call reads on stderr.
fn describe(status: &Status) -> String {
    let message = status.message();
    if let Some(lost) = LeaseLost::from_status(status) {
        let reason = lost.reason.as_deref().unwrap_or("no reason given");
        return match lost.current_epoch {
            Some(epoch) => format!("lease lost ({reason}, current epoch {epoch}): {message}"),
            None => format!("lease lost ({reason}): {message}"),
        };
    }
    if let Some(tls) = kanband_gateway::tls_failure(status) {
        return tls;
    }
    match status.code() {
        // The service's NOT_FOUND messages already say what is missing (`task "t_..." not found`).
        Code::NotFound if !message.is_empty() => message.to_owned(),
        code if message.is_empty() => code_name(code).to_owned(),
        code => format!("{}: {message}", code_name(code)),
    }
}

#[cfg(test)]
mod tests {
    use tonic::metadata::MetadataValue;

    use super::*;

    #[test]
    fn lease_lost_names_reason_and_epoch() {
        let mut status = Status::aborted("claim token is not current");
        status
            .metadata_mut()
            .insert(LEASE_LOST_TRAILER, MetadataValue::from_static("superseded"));
        status
            .metadata_mut()
            .insert(EPOCH_TRAILER, MetadataValue::from_static("4"));
        assert_eq!(
            Error::from(status).to_string(),
            "lease lost (superseded, current epoch 4): claim token is not current"
        );
    }

    #[test]
    fn other_codes_read_briefly() {
        assert_eq!(
            Error::from(Status::not_found("task \"t_1\" not found")).to_string(),
            "task \"t_1\" not found"
        );
        assert_eq!(
            Error::from(Status::failed_precondition("task is done")).to_string(),
            "not allowed now: task is done"
        );
        assert_eq!(
            Error::from(Status::aborted("gone")).to_string(),
            "lease lost (no reason given): gone"
        );
    }
}
