//! The one mapping of the service's [`Error`] to gRPC status codes, and from SQLite's errors.
//!
//! Messages are written for a person: they name the bad field or the current state, and never
//! carry a Debug dump of internals. Storage failures are logged in full and answered briefly.

use tokio_rusqlite::rusqlite::{self, ErrorCode};

pub use crate::domain::error::{Error, Result};
pub use kanband_proto::{ALREADY_RECORDED_HEADER, EPOCH_TRAILER, LEASE_LOST_TRAILER};

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Error::ResourceExhausted(
                "the database disk is full: writes are refused until space is freed; reads still work"
                    .into(),
            ),
            _ => {
                tracing::error!(error = %crate::loggable::loggable(&err), "storage error");
                Error::Internal
            }
        }
    }
}

impl From<tokio_rusqlite::Error<Error>> for Error {
    fn from(err: tokio_rusqlite::Error<Error>) -> Self {
        match err {
            tokio_rusqlite::Error::Error(err) => err,
            tokio_rusqlite::Error::ConnectionClosed => {
                Error::Unavailable("the store is closed: kanband is shutting down".into())
            }
            other => {
                tracing::error!(error = %crate::loggable::loggable(&other), "storage connection error");
                Error::Internal
            }
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        use tonic::Code;
        let code = match &err {
            Error::InvalidArgument { .. } => Code::InvalidArgument,
            Error::NotFound { .. } => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::ResourceExhausted(_) => Code::ResourceExhausted,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Internal => Code::Internal,
            Error::LeaseLost {
                reason,
                current_epoch,
                ..
            } => {
                metrics::counter!(crate::metrics::FENCING_REFUSALS, "reason" => reason.as_str())
                    .increment(1);
                let mut status = tonic::Status::aborted(err.to_string());
                let trailers = status.metadata_mut();
                trailers.insert(LEASE_LOST_TRAILER, reason.as_str().parse().expect("ASCII"));
                trailers.insert(
                    EPOCH_TRAILER,
                    current_epoch.to_string().parse().expect("ASCII"),
                );
                return status;
            }
        };
        tonic::Status::new(code, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let status = tonic::Status::from(Error::invalid("title", "must not be empty"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.message(), "title: must not be empty");

        let status = tonic::Status::from(Error::not_found("task", "t_0"));
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(status.message(), "task \"t_0\" not found");
    }

    #[test]
    fn lost_leases_carry_their_reason_and_epoch_in_trailers() {
        let err = Error::LeaseLost {
            reason: crate::domain::lease::LeaseLost::Superseded,
            current_epoch: 7,
            message: "the task has been claimed again since".into(),
        };
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), tonic::Code::Aborted);
        assert_eq!(
            status.metadata().get(LEASE_LOST_TRAILER).unwrap(),
            "superseded"
        );
        assert_eq!(status.metadata().get(EPOCH_TRAILER).unwrap(), "7");
    }

    #[test]
    fn disk_full_is_resource_exhausted() {
        let err = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let status = tonic::Status::from(Error::from(err));
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("disk is full"));
    }
}
