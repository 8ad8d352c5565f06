//! The holder's side of the lease ("jeopardy"), as plain arithmetic.
//!
//! The server renews a session from the moment it *receives* a keep-alive, which is never
//! earlier than the moment the supervisor sent it. So once a renewal sent at `T` is
//! acknowledged, the session (and every claim the acknowledgement lists) is certain to live
//! until `T + ttl` on any clock running at the same rate. The supervisor keeps a margin for
//! clock-rate drift and for the time it takes to kill its children: when no renewal sent at or
//! after `now - (ttl - margin)` has been acknowledged, it is in jeopardy and kills every child
//! itself. Nothing here reads a clock; the caller passes the instants.
//!
//! **What a kanband restart may cost.** kanband gives every session one full TTL from its
//! start-up, so a restart only threatens workers through the supervisor's own jeopardy. The
//! worst case is an outage that begins just before a renewal is due: the last acknowledged
//! send is then one [`renew_interval`] old, the supervisor falls into jeopardy
//! `ttl - margin` after it, and it needs up to one reconnect delay (at most
//! [`HOLDING_RECONNECT_MAX`] while it holds claims, see [`reconnect_cap`]) to notice that
//! kanband is back, plus the time to connect, attach and have the first keep-alive (sent at
//! once on the new stream) acknowledged ([`REATTACH_ALLOWANCE`]). Hence
//! [`longest_tolerated_restart`]: `ttl - margin - renew_interval - reconnect granularity`,
//! the granularity being [`RECONNECT_GRANULARITY`]. With the default lease of 60 s:
//! 60 - 12 - 10 - 1.5 = 36.5 s.

use std::{collections::VecDeque, time::Duration};

use tokio::time::Instant;

/// Smallest margin kept before the lease could run out.
pub const MIN_MARGIN: Duration = Duration::from_millis(500);

/// The margin for a lease of `ttl`: a fifth of it, at least [`MIN_MARGIN`], at most half.
pub fn margin(ttl: Duration) -> Duration {
    (ttl / 5).max(MIN_MARGIN).min(ttl / 2)
}

/// How often to send a keep-alive: six per lease. Renewals cost kanband no disk write, and
/// each one sent makes the window a restart may take longer (see [`longest_tolerated_restart`]).
pub fn renew_interval(ttl: Duration) -> Duration {
    ttl / 6
}

/// Longest wait between two reconnect attempts while the session holds claims: how late, at
/// worst, a supervisor notices that kanband is back.
pub const HOLDING_RECONNECT_MAX: Duration = Duration::from_secs(1);

/// What connecting, attaching the keep-alive stream and having its first keep-alive
/// acknowledged may take (milliseconds on one machine; this leaves room for a loaded one).
pub const REATTACH_ALLOWANCE: Duration = Duration::from_millis(500);

/// How late, at worst, a supervisor holding claims is renewed again after kanband is back.
pub const RECONNECT_GRANULARITY: Duration =
    HOLDING_RECONNECT_MAX.saturating_add(REATTACH_ALLOWANCE);

/// Shortest wait between reconnect attempts, so a nearly spent window does not spin.
pub const RECONNECT_FLOOR: Duration = Duration::from_millis(50);

/// The most one reconnect delay may be when `remaining` is left before jeopardy: a tenth of
/// it (never below [`RECONNECT_FLOOR`]), and at most [`HOLDING_RECONNECT_MAX`] while the
/// session holds claims. A long backoff must never sleep through the moment kanband is back.
pub fn reconnect_cap(remaining: Duration, holding: bool) -> Duration {
    let cap = (remaining / 10).max(RECONNECT_FLOOR);
    if holding {
        cap.min(HOLDING_RECONNECT_MAX)
    } else {
        cap
    }
}

/// The longest kanband outage (stopped, restarted, serving again) that costs a supervisor with
/// a lease of `ttl` no worker, whatever the outage's phase against the renewals.
pub fn longest_tolerated_restart(ttl: Duration) -> Duration {
    ttl.saturating_sub(margin(ttl))
        .saturating_sub(renew_interval(ttl))
        .saturating_sub(RECONNECT_GRANULARITY)
}

/// When a holder whose newest acknowledged renewal was sent at `acked_send` falls into
/// jeopardy.
pub fn jeopardy_at(acked_send: Instant, ttl: Duration) -> Instant {
    acked_send + ttl - margin(ttl)
}

/// Whether a holder is in jeopardy at `now`, given the send times of its renewals and, for
/// each, whether (`Some(ack time)`) it was acknowledged. `opened` is when the session was
/// asked for: opening counts as the first acknowledged renewal. An acknowledgement counts only
/// if it arrived before the jeopardy point it would have moved.
pub fn in_jeopardy(
    opened: Instant,
    renewals: &[(Instant, Option<Instant>)],
    now: Instant,
    ttl: Duration,
) -> bool {
    let mut safe_until = jeopardy_at(opened, ttl);
    let mut sorted: Vec<_> = renewals
        .iter()
        .filter_map(|(s, a)| a.map(|a| (*s, a)))
        .collect();
    sorted.sort_by_key(|(_, ack)| *ack);
    for (sent, ack) in sorted {
        if ack >= safe_until {
            // Too late: the holder had already given its children up.
            break;
        }
        safe_until = safe_until.max(jeopardy_at(sent, ttl));
    }
    now >= safe_until
}

/// The renewals of one session as the supervisor tracks them on its own monotonic clock:
/// sends waiting for their acknowledgement (acknowledgements come back in order on the one
/// stream) and the newest acknowledged send.
#[derive(Debug, Clone)]
pub struct Renewals {
    ttl: Duration,
    acked_send: Instant,
    outstanding: VecDeque<Instant>,
}

impl Renewals {
    /// A session asked for at `opened` with a lease of `ttl`.
    pub fn new(opened: Instant, ttl: Duration) -> Renewals {
        Renewals {
            ttl,
            acked_send: opened,
            outstanding: VecDeque::new(),
        }
    }

    /// A keep-alive was put on the stream at `at`.
    pub fn sent(&mut self, at: Instant) {
        self.outstanding.push_back(at);
    }

    /// A `renewed` arrived: it answers the oldest outstanding send, whose time is returned.
    pub fn acked(&mut self) -> Option<Instant> {
        let sent = self.outstanding.pop_front()?;
        self.acked_send = self.acked_send.max(sent);
        Some(sent)
    }

    /// The stream broke: what was outstanding on it will never be answered.
    pub fn stream_lost(&mut self) {
        self.outstanding.clear();
    }

    /// The server granted a different lease time.
    pub fn set_ttl(&mut self, ttl: Duration) {
        self.ttl = ttl;
    }

    /// The lease time in force.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// When the holder falls into jeopardy unless another renewal is acknowledged.
    pub fn deadline(&self) -> Instant {
        jeopardy_at(self.acked_send, self.ttl)
    }

    /// Whether the holder is in jeopardy at `now`.
    pub fn in_jeopardy(&self, now: Instant) -> bool {
        now >= self.deadline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(15);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn margins() {
        assert_eq!(margin(TTL), ms(3000));
        assert_eq!(margin(ms(1000)), ms(500));
        assert_eq!(margin(ms(2000)), ms(500));
        assert_eq!(margin(ms(300_000)), ms(60_000));
        assert_eq!(renew_interval(TTL), ms(2500));
    }

    #[test]
    fn reconnect_delays_stay_a_small_part_of_the_window() {
        // Holding claims: a tenth of what is left, at most a second.
        assert_eq!(reconnect_cap(ms(48_000), true), ms(1000));
        assert_eq!(reconnect_cap(ms(5000), true), ms(500));
        assert_eq!(reconnect_cap(ms(2000), true), ms(200));
        // Nearly spent: never a busy loop.
        assert_eq!(reconnect_cap(ms(100), true), RECONNECT_FLOOR);
        assert_eq!(reconnect_cap(Duration::ZERO, true), RECONNECT_FLOOR);
        // Without claims only the tenth applies (the backoff's own maximum still does).
        assert_eq!(reconnect_cap(ms(48_000), false), ms(4800));
    }

    #[test]
    fn the_longest_tolerated_restart() {
        // The default lease: 60 - 12 (margin) - 10 (renewal interval) - 1.5 (reconnect
        // granularity) = 36.5 s.
        let ttl = crate::supervisor::DEFAULT_TTL;
        assert_eq!(ttl, ms(60_000));
        assert_eq!(margin(ttl), ms(12_000));
        assert_eq!(renew_interval(ttl), ms(10_000));
        assert_eq!(RECONNECT_GRANULARITY, ms(1500));
        assert_eq!(longest_tolerated_restart(ttl), ms(36_500));
        // 15 s: 15 - 3 - 2.5 - 1.5.
        assert_eq!(longest_tolerated_restart(TTL), ms(8000));
        assert_eq!(longest_tolerated_restart(ms(6000)), ms(2300));
        // The shortest lease tolerates nothing, and says so rather than underflowing.
        assert_eq!(longest_tolerated_restart(ms(1000)), Duration::ZERO);
    }

    #[test]
    fn an_outage_within_the_limit_is_survived_in_the_worst_phase() {
        // The arithmetic above, replayed: the last acknowledged renewal was sent at 0, kanband
        // goes down just before the next one (one interval later) and comes back after the
        // tolerated outage; the supervisor tries again within one reconnect delay and its first
        // keep-alive on the new stream is acknowledged within the allowance, just in time.
        for ttl in [ms(6000), ms(15_000), ms(60_000), ms(90_000)] {
            let t0 = Instant::now();
            let down = t0 + renew_interval(ttl);
            let back = down + longest_tolerated_restart(ttl);
            let resent = back + HOLDING_RECONNECT_MAX;
            let acked = resent + REATTACH_ALLOWANCE - ms(1);
            let renewals = [(down, None), (resent, Some(acked))];
            assert!(!in_jeopardy(t0, &renewals, acked, ttl), "{ttl:?}");
            assert!(!in_jeopardy(t0, &renewals, acked + ttl / 2, ttl), "{ttl:?}");
            // A millisecond later and the same reconnect is too late.
            let late = [(down, None), (resent, Some(acked + ms(1)))];
            assert!(in_jeopardy(t0, &late, acked + ms(1), ttl), "{ttl:?}");
        }
    }

    #[test]
    fn a_fresh_session_is_safe_until_ttl_minus_margin() {
        let t0 = Instant::now();
        assert!(!in_jeopardy(t0, &[], t0 + ms(11_999), TTL));
        assert!(in_jeopardy(t0, &[], t0 + ms(12_000), TTL));
    }

    #[test]
    fn an_acknowledged_renewal_counts_from_when_it_was_sent() {
        let t0 = Instant::now();
        // Sent at 5 s, acknowledged at 9 s: safe until 5 + 12 = 17 s, not 9 + 12.
        let renewals = [(t0 + ms(5000), Some(t0 + ms(9000)))];
        assert!(!in_jeopardy(t0, &renewals, t0 + ms(16_999), TTL));
        assert!(in_jeopardy(t0, &renewals, t0 + ms(17_000), TTL));
    }

    #[test]
    fn unanswered_renewals_do_not_count() {
        let t0 = Instant::now();
        let renewals = [(t0 + ms(5000), None), (t0 + ms(10_000), None)];
        assert!(in_jeopardy(t0, &renewals, t0 + ms(12_000), TTL));
    }

    #[test]
    fn an_acknowledgement_after_the_jeopardy_point_is_too_late() {
        let t0 = Instant::now();
        let renewals = [(t0 + ms(5000), Some(t0 + ms(12_500)))];
        assert!(in_jeopardy(t0, &renewals, t0 + ms(13_000), TTL));
        // In time, the same renewal keeps it safe.
        let renewals = [(t0 + ms(5000), Some(t0 + ms(11_900)))];
        assert!(!in_jeopardy(t0, &renewals, t0 + ms(13_000), TTL));
    }

    #[test]
    fn a_chain_of_renewals_keeps_it_alive() {
        let t0 = Instant::now();
        let renewals: Vec<_> = (1..=10)
            .map(|n| (t0 + ms(5000 * n), Some(t0 + ms(5000 * n + 100))))
            .collect();
        assert!(!in_jeopardy(t0, &renewals, t0 + ms(61_000), TTL));
        assert!(in_jeopardy(t0, &renewals, t0 + ms(62_000), TTL));
    }

    #[test]
    fn the_tracker_matches_the_arithmetic() {
        let t0 = Instant::now();
        let mut r = Renewals::new(t0, TTL);
        assert_eq!(r.deadline(), t0 + ms(12_000));
        r.sent(t0 + ms(5000));
        r.sent(t0 + ms(10_000));
        assert_eq!(r.deadline(), t0 + ms(12_000), "sends alone change nothing");
        assert_eq!(r.acked(), Some(t0 + ms(5000)));
        assert_eq!(r.deadline(), t0 + ms(17_000));
        r.stream_lost();
        assert_eq!(r.acked(), None, "the lost send is never answered");
        assert!(!r.in_jeopardy(t0 + ms(16_999)));
        assert!(r.in_jeopardy(t0 + ms(17_000)));
        r.set_ttl(ms(5000));
        assert_eq!(r.deadline(), t0 + ms(5000 + 4000));
    }
}
