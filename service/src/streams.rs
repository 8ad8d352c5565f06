//! Places for long-lived server streams (`Events.Watch`, `Notifications.Deliver`).
//!
//! Each open stream holds a task, a buffer and a database cursor, so their number is capped.
//! The caps are shaped so that no one client can starve the others: watchers and supervisors'
//! notifiers draw from separate pools (a crowd of anonymous watchers never refuses a gateway's
//! `Deliver`), and each connection may hold only a share of each pool. A connection is the unit
//! because every local client shares one peer address (loopback) and usually one uid, while a
//! connection is one client.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use crate::{domain::limits, error::Error};

/// Which pool a stream draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// `Events.Watch`: anyone watching the history.
    Watch,
    /// `Notifications.Deliver`: a supervisor's notifier.
    Deliver,
}

/// The stream caps (documented in README's limits table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCaps {
    /// `Watch` streams open at once, over all connections.
    pub watch: usize,
    /// `Watch` streams one connection may hold.
    pub watch_per_connection: usize,
    /// `Deliver` streams open at once, over all connections.
    pub deliver: usize,
    /// `Deliver` streams one connection may hold.
    pub deliver_per_connection: usize,
}

impl Default for StreamCaps {
    fn default() -> Self {
        StreamCaps {
            watch: limits::WATCHERS_MAX,
            watch_per_connection: limits::WATCHERS_PER_CONNECTION,
            deliver: limits::DELIVERERS_MAX,
            deliver_per_connection: limits::DELIVERERS_PER_CONNECTION,
        }
    }
}

/// The streams one connection holds, per pool (kept with the connection).
#[derive(Debug, Default)]
pub struct ConnStreams {
    watch: Arc<AtomicUsize>,
    deliver: Arc<AtomicUsize>,
}

/// The service-wide pools.
#[derive(Debug)]
pub struct StreamSlots {
    caps: StreamCaps,
    watch: Arc<AtomicUsize>,
    deliver: Arc<AtomicUsize>,
}

impl StreamSlots {
    /// Empty pools with `caps`.
    pub fn new(caps: StreamCaps) -> Self {
        StreamSlots {
            caps,
            watch: Arc::default(),
            deliver: Arc::default(),
        }
    }

    /// Streams open now in `pool`.
    pub fn open(&self, pool: Pool) -> usize {
        match pool {
            Pool::Watch => self.watch.load(Ordering::SeqCst),
            Pool::Deliver => self.deliver.load(Ordering::SeqCst),
        }
    }

    /// Takes a place in `pool`, charged to `conn` when the call came over a connection (calls
    /// made in process have none and count only against the pool).
    pub fn take(&self, pool: Pool, conn: Option<&ConnStreams>) -> Result<Slot, Error> {
        let (total, cap, per_conn, per_conn_cap, what) = match pool {
            Pool::Watch => (
                &self.watch,
                self.caps.watch,
                conn.map(|c| &c.watch),
                self.caps.watch_per_connection,
                "Watch",
            ),
            Pool::Deliver => (
                &self.deliver,
                self.caps.deliver,
                conn.map(|c| &c.deliver),
                self.caps.deliver_per_connection,
                "Deliver",
            ),
        };
        let mut slot = Slot(Vec::with_capacity(2));
        if let Some(per_conn) = per_conn
            && !slot.charge(per_conn, per_conn_cap)
        {
            return Err(Error::ResourceExhausted(format!(
                "this connection already has {per_conn_cap} {what} streams open; close one or \
                 open another connection"
            )));
        }
        if !slot.charge(total, cap) {
            return Err(Error::ResourceExhausted(format!(
                "{cap} {what} streams are already open; close one or try again later"
            )));
        }
        Ok(slot)
    }
}

/// One place in a pool (and in its connection's share), given back when dropped.
#[derive(Debug)]
pub struct Slot(Vec<Arc<AtomicUsize>>);

impl Slot {
    /// Counts one more on `counter` unless it is at `cap`.
    fn charge(&mut self, counter: &Arc<AtomicUsize>, cap: usize) -> bool {
        let taken = counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok();
        if taken {
            self.0.push(counter.clone());
        }
        taken
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        for counter in &self.0 {
            counter.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> StreamCaps {
        StreamCaps {
            watch: 3,
            watch_per_connection: 2,
            deliver: 1,
            deliver_per_connection: 1,
        }
    }

    #[test]
    fn one_connection_takes_only_its_share_and_pools_are_apart() {
        let slots = StreamSlots::new(caps());
        let (a, b) = (ConnStreams::default(), ConnStreams::default());
        let a1 = slots.take(Pool::Watch, Some(&a)).unwrap();
        let _a2 = slots.take(Pool::Watch, Some(&a)).unwrap();
        let err = slots.take(Pool::Watch, Some(&a)).unwrap_err().to_string();
        assert!(err.contains("this connection already has 2 Watch"), "{err}");
        let _b1 = slots.take(Pool::Watch, Some(&b)).unwrap();
        let err = slots.take(Pool::Watch, Some(&b)).unwrap_err().to_string();
        assert!(err.contains("3 Watch streams are already open"), "{err}");
        // A full Watch pool refuses no notifier.
        let d = slots.take(Pool::Deliver, Some(&b)).unwrap();
        assert!(slots.take(Pool::Deliver, None).is_err());
        // A refused take leaves no count behind; a dropped slot gives its place back.
        drop((a1, d));
        let _b2 = slots.take(Pool::Watch, Some(&b)).unwrap();
        let _d = slots.take(Pool::Deliver, None).unwrap();
    }
}
