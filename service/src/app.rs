//! The state every gRPC service shares: the store and the timers that act on it.

use std::time::Duration;

use tokio::time::Instant;

use crate::{
    domain::Status,
    error::Result,
    store::{Store, model::Task, now_ms},
    timers::Timers,
};

/// A deadline the service acts on when it passes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Deadline {
    /// A scheduled task's wake-up time (Unix ms, as stored). A task rescheduled since carries a
    /// different time, so its old deadline finds nothing to do.
    Wake {
        /// The task.
        task_id: String,
        /// Its `scheduled_until` when armed.
        until_ms: i64,
    },
}

/// Shared service state.
#[derive(Debug)]
pub struct App {
    /// The single owner of the database.
    pub store: Store,
    /// Every deadline.
    pub timers: Timers<Deadline>,
}

impl App {
    /// Wraps an open store; call [`App::arm_from_store`] before serving.
    pub fn new(store: Store) -> Self {
        App {
            store,
            timers: Timers::default(),
        }
    }

    /// Arms the deadlines recorded in the database (start-up).
    pub async fn arm_from_store(&self) -> Result<()> {
        for (task_id, until_ms) in self.store.pending_wakeups().await? {
            self.arm_wake(task_id, until_ms);
        }
        Ok(())
    }

    /// Arms the wake-up of a task that was just scheduled with a time.
    pub fn after_change(&self, task: &Task) {
        if let (Status::Scheduled, Some(until_ms)) = (task.status, task.scheduled_until) {
            self.arm_wake(task.id.clone(), until_ms);
        }
    }

    fn arm_wake(&self, task_id: String, until_ms: i64) {
        let wait = Duration::from_millis(until_ms.saturating_sub(now_ms()).max(0) as u64);
        self.timers
            .arm(Deadline::Wake { task_id, until_ms }, Instant::now() + wait);
    }

    /// Acts on deadlines as they pass, until the future is dropped.
    pub async fn run_timers(&self) {
        loop {
            let (deadline, _) = self.timers.next_expired().await;
            match deadline {
                Deadline::Wake { task_id, until_ms } => {
                    match self.store.wake(task_id.clone(), until_ms).await {
                        Ok(Some(task)) => {
                            tracing::debug!(task = %task.id, status = %task.status, "woke");
                        }
                        Ok(None) => {}
                        Err(err) => tracing::warn!(task = %task_id, error = %err, "wake-up failed"),
                    }
                }
            }
        }
    }
}
