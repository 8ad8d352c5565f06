//! Waiting for the server without sleeping: a held paused clock that moves only with
//! [`Clock::advance`], and waits by condition bounded by real time, usable with a paused clock
//! or a running one.

use std::{future::Future, time::Duration};

use kanband_gateway::Client;
use kanband_proto::pb::{self, TaskStatus};
use kanband_tests::calls::{stats, task, try_acquire};
use tokio::task::JoinHandle;

/// Longest real time to wait for the server to act after a change.
pub(crate) const REAL_LIMIT: Duration = Duration::from_secs(10);

/// Keeps the paused runtime from auto-advancing: a task that never idles. Time then moves only
/// with `tokio::time::advance`. Dropping it lets the runtime idle again.
pub(crate) struct Clock {
    spinner: JoinHandle<()>,
}

impl Clock {
    /// Starts holding the clock; call before anything awaits I/O.
    pub(crate) fn hold() -> Clock {
        Clock {
            spinner: tokio::spawn(async {
                loop {
                    tokio::task::yield_now().await;
                }
            }),
        }
    }

    /// Moves the paused clock by `ms` milliseconds.
    pub(crate) async fn advance(&self, ms: u64) {
        tokio::time::advance(Duration::from_millis(ms)).await;
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        self.spinner.abort();
    }
}

/// Polls `probe` until it returns `Some`, yielding between polls, for up to [`REAL_LIMIT`] of
/// real time (the paused clock does not move meanwhile).
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = std::time::Instant::now() + REAL_LIMIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < end,
            "{what}: not reached within {REAL_LIMIT:?} of real time"
        );
        tokio::task::yield_now().await;
    }
}

/// Lets the server run for a short real time without moving the paused clock, so a deadline
/// that must not fire has had every chance to.
pub(crate) async fn settle() {
    let end = std::time::Instant::now() + Duration::from_millis(100);
    while std::time::Instant::now() < end {
        tokio::task::yield_now().await;
    }
}

/// Waits until a task has a status (real-time bound).
pub(crate) async fn until_status(client: &Client, id: &str, want: TaskStatus) -> pb::Task {
    eventually(&format!("task {id} becomes {want:?}"), || {
        let mut client = client.clone();
        async move {
            let task = task(&mut client, id).await;
            (task.status() == want).then_some(task)
        }
    })
    .await
}

/// Waits until `count` pollers wait in Acquire (real-time bound).
pub(crate) async fn until_waiting(client: &Client, count: u64) {
    eventually(&format!("{count} pollers wait"), || {
        let mut client = client.clone();
        async move { (stats(&mut client).await.waiting_pollers == count).then_some(()) }
    })
    .await;
}

/// An Acquire running in the background.
pub(crate) fn spawn_acquire(
    client: &Client,
    session_id: &str,
    wait_ms: i64,
) -> JoinHandle<Result<Option<pb::Grant>, tonic::Status>> {
    let mut client = client.clone();
    let session_id = session_id.to_owned();
    tokio::spawn(async move { try_acquire(&mut client, &session_id, wait_ms).await })
}

/// Waits for a background task to finish (real-time bound).
pub(crate) async fn join<T>(handle: JoinHandle<T>) -> T {
    eventually("the background call finishes", || {
        let done = handle.is_finished();
        async move { done.then_some(()) }
    })
    .await;
    handle.await.expect("the background call does not panic")
}
