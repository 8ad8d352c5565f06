//! Riding out a kanband restart: worker verbs retry a call that could not reach kanband, with
//! backoff, for a bounded time (`--retry-for`, `KANBAN_RETRY_FOR`; by default the claim's
//! lease time from `KANBAN_LEASE_TTL_MS`, else [`DEFAULT_RETRY_FOR`]), then give up with exit 5.
//!
//! Only what is safe to send again is retried after it may have reached kanband:
//! - [`Safety::Repeatable`]: reads, heartbeats, and the holder outcomes (complete, block,
//!   request-review, request-changes), which carry the claim token. A repeated outcome whose
//!   first attempt did commit (its answer lost to the restart) is refused today as ABORTED
//!   (`unknown`, exit 3); kanband is to answer such a repeat as the success it was.
//! - [`Safety::NotRepeatable`]: a comment, which is not fenced and has no idempotency key, so a
//!   repeat would be a second comment. It is retried only when it certainly did not arrive:
//!   nothing answered at the address, or kanband answered UNAVAILABLE (it refuses calls while
//!   starting or draining, before doing anything).
//!
//! Operator commands do not retry: a person or script sees exit 5 at once and decides.

use std::{future::Future, time::Duration};

use kanband_gateway::{
    Client, ConnectError, Target,
    reconnect::{self, Backoff, CALL_TIMEOUT},
};
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::{Error, Result, output};

/// How long a worker verb retries when neither `--retry-for` nor the lease time is known.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(60);

/// Whether a call may be sent again after it may have reached kanband.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Sending it twice does no more than sending it once.
    Repeatable,
    /// A second delivery would be a second effect.
    NotRepeatable,
}

/// How long to retry: the explicit bound, else the claim's lease time in milliseconds (the
/// supervisor kills the worker itself when it cannot renew for about that long), else
/// [`DEFAULT_RETRY_FOR`].
pub fn budget(explicit: Option<Duration>, lease_ttl_ms: Option<u64>) -> Duration {
    explicit
        .or_else(|| lease_ttl_ms.filter(|ms| *ms > 0).map(Duration::from_millis))
        .unwrap_or(DEFAULT_RETRY_FOR)
}

/// Whether a failed attempt is worth another one: kanband could not be reached, is starting
/// or draining, or (for a repeatable call) the connection broke or went silent mid-call.
pub fn worth_retrying(err: &Error, safety: Safety) -> bool {
    match err {
        Error::Connect(ConnectError::Unreachable { .. }) => true,
        Error::Rpc(status) => match safety {
            Safety::Repeatable => reconnect::is_transient(status),
            Safety::NotRepeatable => status.code() == Code::Unavailable,
        },
        _ => false,
    }
}

/// Connects to `target` and runs `call`, again and again while it fails in a way
/// [`worth_retrying`] for up to `bound`; each attempt has [`CALL_TIMEOUT`]. The first retry
/// is noted on stderr. Returns the last failure when the bound is spent.
pub async fn call<T, F, Fut>(
    target: &Target,
    bound: Duration,
    safety: Safety,
    mut call: F,
) -> Result<T>
where
    F: FnMut(Client) -> Fut,
    Fut: Future<Output = std::result::Result<T, Status>>,
{
    let deadline = Instant::now() + bound;
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    let mut noted = false;
    loop {
        let err = match Client::connect(target).await {
            Ok(client) => match tokio::time::timeout(CALL_TIMEOUT, call(client)).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(status)) => Error::from(status),
                Err(_) => Error::from(Status::deadline_exceeded(format!(
                    "no answer from kanband within {CALL_TIMEOUT:?}"
                ))),
            },
            Err(err) => Error::from(err),
        };
        let now = Instant::now();
        if !worth_retrying(&err, safety) || now >= deadline {
            return Err(err);
        }
        if !noted {
            output::note(&format!(
                "{err}; retrying for up to {:?}",
                round(deadline - now)
            ));
            noted = true;
        }
        tokio::time::sleep(backoff.next_delay().min(deadline - now)).await;
    }
}

/// A duration to the millisecond, for messages.
fn round(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_follows_the_lease() {
        let s = Duration::from_secs;
        assert_eq!(budget(Some(s(5)), Some(60_000)), s(5));
        assert_eq!(budget(None, Some(90_000)), s(90));
        assert_eq!(budget(None, Some(0)), DEFAULT_RETRY_FOR);
        assert_eq!(budget(None, None), DEFAULT_RETRY_FOR);
    }

    #[test]
    fn what_is_retried() {
        use Safety::*;
        let unreachable = || {
            // A refused connection, as `connect` reports it.
            let err = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(Client::connect("unix:/nonexistent/kanband.sock"))
                .unwrap_err();
            Error::from(err)
        };
        for safety in [Repeatable, NotRepeatable] {
            assert!(worth_retrying(&unreachable(), safety));
            assert!(worth_retrying(
                &Status::unavailable("starting").into(),
                safety
            ));
            assert!(!worth_retrying(&Status::aborted("fenced").into(), safety));
            assert!(!worth_retrying(&Status::not_found("t").into(), safety));
            assert!(!worth_retrying(
                &Status::invalid_argument("x").into(),
                safety
            ));
            assert!(!worth_retrying(&Error::usage("x"), safety));
            assert!(!worth_retrying(
                &Error::Connect(ConnectError::BadAddress("x".into())),
                safety
            ));
        }
        // A broken or silent connection may have delivered the call: only a repeatable one
        // goes again.
        let broken = || Error::from(Status::unknown("transport error"));
        let silent = || Error::from(Status::deadline_exceeded("no answer"));
        assert!(worth_retrying(&broken(), Repeatable));
        assert!(worth_retrying(&silent(), Repeatable));
        assert!(!worth_retrying(&broken(), NotRepeatable));
        assert!(!worth_retrying(&silent(), NotRepeatable));
    }
}
