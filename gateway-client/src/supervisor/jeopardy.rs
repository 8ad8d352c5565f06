//! The holder's side of the lease ("jeopardy"), as plain arithmetic.
//!
//! The server renews a session from the moment it *receives* a keep-alive, which is never
//! earlier than the moment the supervisor sent it. So once a renewal sent at `T` is
//! acknowledged, the session (and every claim the acknowledgement lists) is certain to live
//! until `T + ttl` on any clock running at the same rate. The supervisor keeps a margin for
//! clock-rate drift and for the time it takes to kill its children: when no renewal sent at or
//! after `now - (ttl - margin)` has been acknowledged, it is in jeopardy and kills every child
//! itself. Nothing here reads a clock; the caller passes the instants.

use std::{collections::VecDeque, time::Duration};

use tokio::time::Instant;

/// Smallest margin kept before the lease could run out.
pub const MIN_MARGIN: Duration = Duration::from_millis(500);

/// The margin for a lease of `ttl`: a fifth of it, at least [`MIN_MARGIN`], at most half.
pub fn margin(ttl: Duration) -> Duration {
    (ttl / 5).max(MIN_MARGIN).min(ttl / 2)
}

/// How often to send a keep-alive: three chances per lease.
pub fn renew_interval(ttl: Duration) -> Duration {
    ttl / 3
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
        assert_eq!(renew_interval(TTL), ms(5000));
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
