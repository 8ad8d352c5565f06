//! Leases: sessions and claims held by supervisors (DESIGN.md section 5).
//!
//! - [`rules`]: fencing, exit classification and failure accounting as plain functions.
//! - [`registry`]: the in-memory side (exact deadlines, counts, push channels, timers), kept in
//!   the database's commit order by the store.
//!
//! The store's `claims` and `sessions` modules hold the transactions; [`crate::app`] runs the
//! timers and the dispatcher that act on them.

pub mod registry;
pub mod rules;
