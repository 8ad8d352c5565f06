//! What a committed write hands to the in-memory lease state, and what it reads of it.
//!
//! The store sits below the lease machinery: it never names the registry, only this interface,
//! which [`crate::leases::registry::Registry`] implements. A write pushes [`Effect`]s while it
//! runs; the group commit applies them through [`LiveLeases::apply`] on the connection thread,
//! right after the commit and before the next transaction, so the in-memory state changes in
//! exactly the database's commit order. The reads below are made inside transactions, on that
//! same thread, so each is ordered against the commits around it.

use std::time::Duration;

use super::model::{ClaimRecord, SessionRecord};
use crate::domain::{dispatch::Load, lease::RevokeCause};

/// A change to the in-memory lease state, produced by a committed transaction.
#[derive(Debug, Clone)]
pub enum Effect {
    /// A session was opened (or restored at start-up).
    SessionOpened(SessionRecord),
    /// A session was closed or expired.
    SessionClosed(String),
    /// A claim was granted (or restored at start-up), with its other deadlines.
    Granted(ClaimRecord, ClaimDeadlines),
    /// A claim was fenced; its holder is told at once.
    Revoked(String, RevokeCause),
    /// A claim ended.
    Ended(String),
    /// An operator asked the holder to stop within a grace period; the claim is revoked when
    /// the grace ends.
    CancelRequested(String, Duration),
    /// A heartbeat arrived: push the stale-progress backstop back.
    Progress(String),
    /// A task was scheduled with a wake-up time.
    Wake(String, i64),
    /// A task cools down until a time (Unix ms).
    Cooldown(String, i64),
    /// Something changed that may make work claimable: wake the dispatcher, which runs a pass
    /// if a waiting session could use the change. Every write says so (as
    /// [`Claimable::Anything`]) except those that can make nothing claimable: a dispatcher
    /// pass, which only takes work (else it would wake itself forever), a heartbeat, a comment,
    /// a subscription; and a create says which profile its task is for, if it is claimable.
    Poke(Claimable),
}

/// What a committed write may have made claimable, so that the dispatcher can leave out a pass
/// no waiting session could use (a create for a profile nobody waiting runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimable {
    /// Anything: a claim ended (freeing a slot and the caps), a task moved or changed, a board
    /// or a session changed, a waiter arrived, a cooldown ended.
    Anything,
    /// Only a task this profile runs.
    Profile(String),
}

/// The deadlines of a claim besides its lease, in Unix ms of the service's clock, so that a
/// claim restored at start-up keeps them as they were: counted from its grant, its last
/// heartbeat and its cancel request, not from the restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimDeadlines {
    /// When it passes its task's maximum runtime, if the task has one.
    pub max_runtime_until: Option<i64>,
    /// Its last progress (the grant, or the latest heartbeat), which the stale-progress
    /// backstop counts from.
    pub progress_at: i64,
    /// When the grace of a pending cancel request ends.
    pub grace_until: Option<i64>,
}

impl ClaimDeadlines {
    /// The deadlines of a claim granted at `granted_at` for a task with this maximum runtime.
    pub fn at_grant(granted_at: i64, max_runtime_seconds: u32) -> Self {
        ClaimDeadlines {
            max_runtime_until: (max_runtime_seconds > 0)
                .then(|| granted_at + i64::from(max_runtime_seconds) * 1_000),
            progress_at: granted_at,
            grace_until: None,
        }
    }
}

/// The in-memory lease state the store keeps in step with its commits.
pub trait LiveLeases: Send + Sync + std::fmt::Debug {
    /// Applies the effects of a committed transaction, in order.
    fn apply(&self, effects: Vec<Effect>);
    /// Publishes the id of the newest committed event (watchers wait on it).
    fn publish_event_id(&self, id: i64);
    /// Whether a claim's deadline has passed (it may be released as expired).
    fn claim_overdue(&self, token: &str) -> bool;
    /// Whether a session's deadline has passed.
    fn session_overdue(&self, session_id: &str) -> bool;
    /// Free slots of a session (0 if it is not open).
    fn free_slots(&self, session_id: &str) -> u32;
    /// The running counts and caps the dispatch rules need.
    fn load(&self) -> Load;
    /// Tokens of every claim held in memory (for the invariant check).
    fn claim_tokens(&self) -> Vec<String>;
}
