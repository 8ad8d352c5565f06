//! The service's error type: everything an operation can refuse or fail with, in the words a
//! caller needs (the field, the current state, why a lease was lost). Plain data; its mapping
//! to gRPC status codes and from SQLite errors is in [`crate::error`].

use super::lease::LeaseLost;

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
        reason: LeaseLost,
        /// The task's current epoch, for the `kanban-current-epoch` trailer (0 if gone).
        current_epoch: u64,
        /// For people.
        message: String,
    },
    /// The caller's role or binding does not allow this; the message names what would.
    #[error("{0}")]
    PermissionDenied(String),
    /// The service is starting or draining.
    #[error("{0}")]
    Unavailable(String),
    /// The store failed in a way the caller cannot fix; details are in the service log.
    #[error("internal storage error; the service log has the details")]
    Internal,
}

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

    /// A holder's token refused by fencing, with the task's current epoch (`None` if the task
    /// is gone). Every "lease lost" answer for a claim is built here.
    pub fn lease_lost(lost: LeaseLost, epoch: Option<u64>) -> Self {
        let message = match lost {
            LeaseLost::Expired => "the claim's lease expired before it was renewed",
            LeaseLost::Revoked => "the claim was revoked",
            LeaseLost::Superseded => "the task has been claimed again since",
            LeaseLost::BoardReset => "the task's board was reset",
            LeaseLost::Unknown => {
                "the claim token is not a live claim (never issued, or already ended)"
            }
        };
        Error::LeaseLost {
            reason: lost,
            current_epoch: epoch.unwrap_or(0),
            message: message.into(),
        }
    }

    /// A session that is not open (expired, closed or never opened): the holder must open a
    /// new one. Every "lease lost" answer for a session is built here.
    pub fn session_lost(id: &str) -> Self {
        Error::LeaseLost {
            reason: LeaseLost::Expired,
            current_epoch: 0,
            message: format!(
                "session {id} is not open (expired, closed or never opened); open a new one"
            ),
        }
    }
}
