//! The service's error type and its one mapping to gRPC status codes (DESIGN.md section 8).
//!
//! Messages are written for a person: they name the bad field or the current state, and never
//! carry a Debug dump of internals. Storage failures are logged in full and answered briefly.

use tokio_rusqlite::rusqlite::{self, ErrorCode};

/// Everything an operation can refuse or fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Bad input; names the field.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The request field, as named in the .proto file.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A named thing does not exist.
    #[error("{what} {id:?} not found")]
    NotFound {
        /// Kind of thing: "board", "task", "comment".
        what: &'static str,
        /// The id or slug asked for.
        id: String,
    },
    /// Creating something that already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The operation is not allowed in the current state; the message names the state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A limit was reached, or the disk is full.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A holder's token is not the task's current live claim.
    #[error("{message}")]
    LeaseLost {
        /// Why, for the `kanban-lease-lost` trailer.
        reason: crate::leases::rules::LeaseLost,
        /// The task's current epoch, for the `kanban-current-epoch` trailer (0 if gone).
        current_epoch: u64,
        /// For people.
        message: String,
    },
    /// The service is starting or draining.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed in a way the caller cannot fix; details are in the service log.
    #[error("internal storage error; the service log has the details")]
    Internal,
}

pub use kanband_proto::{EPOCH_TRAILER, LEASE_LOST_TRAILER};

/// Result with the service's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A bad field.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// A missing thing.
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            what,
            id: id.into(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Error::ResourceExhausted(
                "the database disk is full: writes are refused until space is freed; reads still work"
                    .into(),
            ),
            _ => {
                tracing::error!(error = %err, "storage error");
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
                tracing::error!(error = %other, "storage connection error");
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
            Error::Unavailable(_) => Code::Unavailable,
            Error::Internal => Code::Internal,
            Error::LeaseLost {
                reason,
                current_epoch,
                ..
            } => {
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
            reason: crate::leases::rules::LeaseLost::Superseded,
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
