//! Staying connected: exponential backoff with jitter for (re)connecting, per-call deadlines,
//! and how to read a refusal (transient, or a lost lease with its structured reason).
//!
//! kanband may restart at any time; sessions and claims survive that, so a client's job is to
//! come back quickly without stampeding: [`Backoff`] starts at 100 ms and doubles to 5 s, each
//! delay jittered into its upper half so a fleet of supervisors does not reconnect in lockstep.

use std::{
    future::Future,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use tonic::{Code, Request, Response, Status};

use crate::{Client, ConnectError, Target};

/// Deadline of an ordinary unary call (everything but the long poll).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub use kanband_proto::{EPOCH_TRAILER, LEASE_LOST_TRAILER};

/// Exponential backoff: `initial`, doubling up to `max`, each delay jittered within its upper
/// half (`[d/2, d]`).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Default for Backoff {
    /// 100 ms doubling to 5 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl Backoff {
    /// A backoff from `initial` doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The un-jittered delay before retry number `attempt` (0-based).
    pub fn nominal(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The next delay to wait, jittered; each call moves one step further.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.nominal(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        jitter(nominal, random_u64())
    }

    /// The next delay, its nominal value first held to `cap` and then jittered, so a delay cut
    /// short by a deadline is still spread out; moves one step further like
    /// [`next_delay`](Backoff::next_delay).
    pub fn next_delay_capped(&mut self, cap: Duration) -> Duration {
        let nominal = self.nominal(self.attempt).min(cap);
        self.attempt = self.attempt.saturating_add(1);
        jitter(nominal, random_u64())
    }

    /// Starts again from `initial` (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Spreads `nominal` into `[nominal/2, nominal]` using the random number `r`.
pub fn jitter(nominal: Duration, r: u64) -> Duration {
    let half = nominal / 2;
    let spread = (nominal - half).as_micros() as u64;
    half + Duration::from_micros(r % (spread + 1))
}

fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        // No entropy source: the clock's low bits are enough for jitter.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos().into())
    })
}

/// Whether kanband is known to be unreachable: set by the first failed connect of an outage,
/// cleared by the next success. Process-wide, so the supervisor, its reporter and its notifier
/// reconnecting at once still log the outage once.
static OUTAGE: AtomicBool = AtomicBool::new(false);

/// Connects to `target`, retrying unreachable addresses with `backoff` until it works. Only an
/// address that cannot be parsed is returned as an error. An outage is logged once at warn
/// (`kanband unreachable, retrying`, with what the connection error says to do), each further
/// attempt at debug, and its end at info.
pub async fn connect_with_backoff(
    target: impl Into<Target>,
    backoff: &mut Backoff,
) -> Result<Client, ConnectError> {
    let target = target.into();
    loop {
        match Client::connect(&target).await {
            Ok(client) => {
                backoff.reset();
                if OUTAGE.swap(false, Ordering::Relaxed) {
                    tracing::info!(addr = %target.addr, "kanband reachable again");
                }
                return Ok(client);
            }
            Err(err @ ConnectError::BadAddress(_)) => return Err(err),
            Err(err) => {
                let delay = backoff.next_delay();
                if OUTAGE.swap(true, Ordering::Relaxed) {
                    tracing::debug!(error = %err, ?delay, "kanband still unreachable, retrying");
                } else {
                    tracing::warn!(error = %err, "kanband unreachable, retrying");
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// A request carrying a gRPC deadline (`grpc-timeout`), for a unary call.
pub fn request<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Runs a unary call with `message` under `timeout`: the deadline travels with the request
/// (see [`request`]) and is also enforced here, so a hung connection cannot stall the caller.
pub async fn call<M, T, F, Fut>(timeout: Duration, message: M, f: F) -> Result<T, Status>
where
    F: FnOnce(Request<M>) -> Fut,
    Fut: Future<Output = Result<Response<T>, Status>>,
{
    match tokio::time::timeout(timeout, f(request(message, timeout))).await {
        Ok(result) => result.map(Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "no answer from kanband within {timeout:?}"
        ))),
    }
}

/// Whether a failed call is worth repeating later as it is: the service is restarting or
/// unreachable, or the call timed out.
pub fn is_transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown
    )
}

/// A holder call refused because its claim (or session) is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseLost {
    /// `expired`, `revoked`, `superseded`, `board_reset` or `unknown` (empty if absent).
    pub reason: String,
    /// The task's current fencing epoch, when the service said.
    pub current_epoch: Option<u64>,
}

/// Reads an ABORTED refusal's trailers; `None` for any other status.
pub fn lease_lost(status: &Status) -> Option<LeaseLost> {
    if status.code() != Code::Aborted {
        return None;
    }
    let get = |key| {
        status
            .metadata()
            .get(key)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Some(LeaseLost {
        reason: get(LEASE_LOST_TRAILER).unwrap_or_default(),
        current_epoch: get(EPOCH_TRAILER).and_then(|e| e.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_delays_double_up_to_the_cap() {
        let b = Backoff::default();
        let ms: Vec<u128> = (0..9).map(|n| b.nominal(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(b.nominal(1000), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        let d = Duration::from_millis(400);
        assert_eq!(jitter(d, 0), Duration::from_millis(200));
        assert_eq!(jitter(d, 200_000), d);
        for r in [1, 7, 12345, u64::MAX] {
            let j = jitter(d, r);
            assert!(j >= d / 2 && j <= d, "{j:?}");
        }
        assert_eq!(jitter(Duration::ZERO, 99), Duration::ZERO);
    }

    #[test]
    fn the_sequence_grows_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        for (n, d) in delays.iter().enumerate() {
            let nominal = b.nominal(n as u32);
            assert!(*d >= nominal / 2 && *d <= nominal, "{n}: {d:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn a_capped_delay_never_passes_its_cap() {
        let mut b = Backoff::default();
        for n in 0..10 {
            let d = b.next_delay_capped(Duration::from_millis(300));
            let nominal = b.nominal(n).min(Duration::from_millis(300));
            assert!(d >= nominal / 2 && d <= nominal, "{n}: {d:?}");
        }
        // The cap does not stop the sequence from growing underneath it.
        assert_eq!(b.nominal(9), Duration::from_secs(5));
        assert!(b.next_delay() >= Duration::from_millis(2500));
    }

    #[test]
    fn refusals_are_read_from_trailers() {
        let mut status = Status::aborted("gone");
        status
            .metadata_mut()
            .insert(LEASE_LOST_TRAILER, "revoked".parse().unwrap());
        status
            .metadata_mut()
            .insert(EPOCH_TRAILER, "7".parse().unwrap());
        assert_eq!(
            lease_lost(&status),
            Some(LeaseLost {
                reason: "revoked".into(),
                current_epoch: Some(7)
            })
        );
        assert_eq!(lease_lost(&Status::unavailable("down")), None);
        assert!(is_transient(&Status::unavailable("down")));
        assert!(!is_transient(&status));
    }
}
