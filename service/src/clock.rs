//! The service's two clocks, and the one conversion between them.
//!
//! Records (created, updated, event times, wake-up and cooldown times) are wall-clock Unix
//! milliseconds, because people and other machines read them. Lease deadlines are monotonic
//! [`Instant`]s from `tokio::time`, because a wall clock can jump and a deadline must not; it
//! also lets tests pause and advance time. A stored wall-clock time that must fire a timer (a
//! wake-up, a cooldown end) is converted with [`instant_at`].

use std::time::Duration;

pub use tokio::time::Instant;

/// The current wall-clock time in Unix milliseconds, for records (never for lease deadlines).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The monotonic instant at which the wall clock will read `until_ms` (now if it already does).
pub fn instant_at(until_ms: i64) -> Instant {
    let wait = until_ms.saturating_sub(now_ms()).max(0) as u64;
    Instant::now() + Duration::from_millis(wait)
}
