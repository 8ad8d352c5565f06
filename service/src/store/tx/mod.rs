//! In-transaction helpers: the steps the store's operations are made of.
//!
//! Each is a function over the caller's `&Connection`, inside the caller's transaction (or
//! savepoint), pushing [`Effect`](super::effect::Effect)s where the lease state must follow.
//! They never call a [`Store`](super::Store) operation and import only downward, in this
//! order (each file uses only those listed before it):
//!
//! - [`events`]: appending to the event log.
//! - [`read`]: loading one task, board, claim or session, or a set of claims.
//! - [`graph`]: parent/child queries.
//! - [`status`]: every status change (the rules' context, the write with its event, the
//!   promotion of children it may cause) and the block rule.
//! - [`links`]: adding a checked parent link.
//! - [`candidates`]: the dispatch candidates, by what a session runs or by lane, in dispatch
//!   order.
//! - [`claims`]: fencing a token, and ending a claim (its run, counters and the task's next
//!   status).
//! - [`revoke`]: phase one of a revocation, a grace request, and archiving (which revokes).
//! - [`sessions`]: closing a session and ending its claims.

pub(super) mod candidates;
pub(super) mod claims;
pub(super) mod events;
pub(super) mod graph;
pub(super) mod links;
pub(super) mod read;
pub(super) mod revoke;
pub(super) mod sessions;
pub(super) mod status;
