//! The service's two clocks, and the one conversion between them.
//!
//! Records (created, updated, event times, wake-up and cooldown times, the coarse copies of
//! lease deadlines) are Unix milliseconds, because people and other machines read them. Lease
//! deadlines are monotonic [`Instant`]s from `tokio::time`, because a wall clock can jump and a
//! deadline must not; it also lets tests pause and advance time.
//!
//! [`now_ms`] is the wall clock *as the service sees it*: the wall-clock time at which the
//! process started, advanced by the monotonic clock. So a stored time that must fire a timer (a
//! wake-up, a cooldown end, a persisted deadline) means the same moment to [`instant_at`] and to
//! every comparison with [`now_ms`], a step of the system clock while kanband runs moves no
//! deadline, and a test that pauses tokio's clock pauses the records' clock with it (a cooldown
//! then ends when the paused clock reaches its end). The process reads the system clock once,
//! at first use; a restart reads it again, so stored times stay comparable across restarts.

use std::{sync::OnceLock, time::Duration};

pub use tokio::time::Instant;

/// The wall-clock time, in Unix ms, at which the monotonic clock read `anchor().1`.
fn anchor() -> &'static (i64, std::time::Instant) {
    static ANCHOR: OnceLock<(i64, std::time::Instant)> = OnceLock::new();
    ANCHOR.get_or_init(|| {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        (wall, std::time::Instant::now())
    })
}

/// The service's wall clock in Unix milliseconds: the system clock at start-up advanced by the
/// monotonic clock (tokio's, so a paused test clock pauses it too).
pub fn now_ms() -> i64 {
    ms_at(Instant::now())
}

/// The service's wall-clock time (Unix ms) at a monotonic instant.
pub fn ms_at(at: Instant) -> i64 {
    let (wall, base) = *anchor();
    let at = at.into_std();
    // Signed, then floored, so instants on either side of the anchor round the same way.
    let nanos = if at >= base {
        at.duration_since(base).as_nanos() as i128
    } else {
        -(base.duration_since(at).as_nanos() as i128)
    };
    wall.saturating_add(nanos.div_euclid(1_000_000) as i64)
}

/// The monotonic instant at which [`now_ms`] will read `until_ms` (now if it already does).
pub fn instant_at(until_ms: i64) -> Instant {
    let now = Instant::now();
    let wait = until_ms.saturating_sub(ms_at(now)).max(0) as u64;
    now + Duration::from_millis(wait)
}

/// A Unix-ms time as people read it: RFC 3339 in UTC, as grpcurl and kanbanctl print times.
pub fn rfc3339(ms: i64) -> String {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_record_clock_follows_the_monotonic_clock() {
        let start = now_ms();
        tokio::time::advance(Duration::from_millis(1_500)).await;
        assert_eq!(
            now_ms(),
            start + 1_500,
            "a paused clock pauses the records' clock"
        );
        let at = instant_at(start + 2_000);
        assert_eq!(at, Instant::now() + Duration::from_millis(500));
        assert_eq!(ms_at(at), start + 2_000);
        assert_eq!(
            instant_at(start),
            Instant::now(),
            "a time already passed is now"
        );
    }

    #[test]
    fn times_print_as_rfc3339_in_utc() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
