//! The one timer facility for every deadline, and the kinds of deadline the service has.
//!
//! Deadlines live in memory, ordered by time; one task sleeps until the earliest and is woken
//! by a [`Notify`] when a sooner one is armed. There is no periodic scan of any table: each
//! deadline fires exactly once, at its time, unless it was re-armed or cancelled first.
//! Built on `tokio::time`, so tests drive it with `tokio::time::pause()` and `advance()`.

use std::{
    collections::{BTreeSet, HashMap},
    hash::Hash,
    sync::Mutex,
};

use tokio::{sync::Notify, time::Instant};

/// A deadline the service acts on when it passes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Deadline {
    /// A scheduled task's wake-up (Unix ms as stored; a rescheduled task carries another).
    Wake {
        /// The task.
        task_id: String,
        /// Its `scheduled_until` when armed.
        until_ms: i64,
    },
    /// The end of a task's cooldown: it becomes claimable again.
    Cooldown {
        /// The task.
        task_id: String,
    },
    /// A claim's lease.
    Claim(String),
    /// A session's lease.
    Session(String),
    /// A claim's maximum runtime.
    MaxRuntime(String),
    /// A claim's stale-progress backstop.
    StaleProgress(String),
    /// The end of the grace an operator gave a holder to stop before its claim is revoked.
    Grace(String),
    /// A claim restored at start-up whose `lease_rearmed` event could not be written then (a
    /// full disk): due at once, and retried until it is written.
    Rearmed(String),
}

/// A set of deadlines keyed by `K`; arming a key again moves its deadline.
#[derive(Debug)]
pub struct Timers<K> {
    state: Mutex<State<K>>,
    notify: Notify,
}

#[derive(Debug)]
struct State<K> {
    /// (deadline, arming sequence, key): the sequence keeps equal deadlines in arming order.
    queue: BTreeSet<(Instant, u64, K)>,
    armed: HashMap<K, (Instant, u64)>,
    sequence: u64,
}

impl<K: Ord + Hash + Clone> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            state: Mutex::new(State {
                queue: BTreeSet::new(),
                armed: HashMap::new(),
                sequence: 0,
            }),
            notify: Notify::new(),
        }
    }
}

impl<K: Ord + Hash + Clone> Timers<K> {
    /// Arms (or re-arms) `key` to fire at `at`.
    pub fn arm(&self, key: K, at: Instant) {
        let mut state = self.state.lock().expect("timer state lock");
        state.sequence += 1;
        let sequence = state.sequence;
        if let Some((old_at, old_seq)) = state.armed.insert(key.clone(), (at, sequence)) {
            state.queue.remove(&(old_at, old_seq, key.clone()));
        }
        let earliest = state.queue.first().is_none_or(|(first, _, _)| at < *first);
        state.queue.insert((at, sequence, key));
        drop(state);
        if earliest {
            self.notify.notify_one();
        }
    }

    /// Disarms `key`; returns whether it was armed.
    pub fn cancel(&self, key: &K) -> bool {
        let mut state = self.state.lock().expect("timer state lock");
        match state.armed.remove(key) {
            Some((at, seq)) => state.queue.remove(&(at, seq, key.clone())),
            None => false,
        }
    }

    /// The earliest armed deadline, with its key.
    pub fn earliest(&self) -> Option<(K, Instant)> {
        let state = self.state.lock().expect("timer state lock");
        state.queue.first().map(|(at, _, key)| (key.clone(), *at))
    }

    /// How many deadlines are armed.
    pub fn len(&self) -> usize {
        self.state.lock().expect("timer state lock").armed.len()
    }

    /// Whether no deadline is armed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits for the earliest deadline to pass, disarms it and returns its key with the
    /// deadline it had (so the caller can measure its lag).
    pub async fn next_expired(&self) -> (K, Instant) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let earliest = {
                let mut state = self.state.lock().expect("timer state lock");
                match state.queue.first().cloned() {
                    Some((at, seq, key)) if at <= Instant::now() => {
                        state.queue.remove(&(at, seq, key.clone()));
                        state.armed.remove(&key);
                        return (key, at);
                    }
                    other => other.map(|(at, _, _)| at),
                }
            };
            match earliest {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_deadline_and_not_before() {
        let timers = Arc::new(Timers::default());
        let start = Instant::now();
        timers.arm("a", start + Duration::from_secs(10));
        let waiter = tokio::spawn({
            let timers = timers.clone();
            async move { timers.next_expired().await }
        });
        tokio::time::sleep(Duration::from_millis(9_999)).await;
        assert!(!waiter.is_finished(), "fired early");
        let (key, at) = waiter.await.unwrap();
        assert_eq!((key, at), ("a", start + Duration::from_secs(10)));
        assert_eq!(Instant::now(), start + Duration::from_secs(10));
        assert!(timers.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn rearming_moves_a_deadline_and_a_sooner_one_wakes_the_sleeper() {
        let timers = Arc::new(Timers::default());
        let start = Instant::now();
        timers.arm("late", start + Duration::from_secs(60));
        let waiter = tokio::spawn({
            let timers = timers.clone();
            async move { timers.next_expired().await }
        });
        tokio::task::yield_now().await;
        timers.arm("soon", start + Duration::from_secs(5));
        let (key, _) = waiter.await.unwrap();
        assert_eq!(key, "soon");
        assert_eq!(Instant::now(), start + Duration::from_secs(5));

        timers.arm("late", start + Duration::from_secs(100));
        let (key, at) = timers.next_expired().await;
        assert_eq!((key, at), ("late", start + Duration::from_secs(100)));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_deadlines_never_fire() {
        let timers = Timers::default();
        let start = Instant::now();
        timers.arm(1, start + Duration::from_secs(1));
        timers.arm(2, start + Duration::from_secs(2));
        assert!(timers.cancel(&1));
        assert!(!timers.cancel(&1));
        assert_eq!(timers.next_expired().await.0, 2);
    }
}
