//! The lease machinery: sessions and claims held by supervisors, above the store.
//!
//! - [`registry`]: the in-memory side (exact deadlines, running counts, keep-alive push
//!   channels), kept in the database's commit order by the store through
//!   [`LiveLeases`](crate::store::effect::LiveLeases). Renewals touch only this.
//! - [`timers`]: the one timer facility, and every kind of [`Deadline`](timers::Deadline).
//! - [`expiry`]: what each deadline does when it passes, and the loop that runs them.
//! - [`persist`]: the loop that writes the coarse copies of deadlines renewals moved.
//! - [`dispatcher`]: the queue of waiting `Acquire` calls and the pass that serves them.
//! - [`changes`]: what commits may have made claimable, so a pass runs only when a waiter
//!   could use it.
//!
//! The rules (fencing, settling a claim that ended without an outcome) are plain functions in
//! [`crate::domain::lease`]; the transactions are the store's. Callers above reach all of this
//! through [`crate::coordinator::Coordinator`].

pub mod changes;
pub mod dispatcher;
pub mod expiry;
pub mod persist;
pub mod registry;
pub mod timers;
