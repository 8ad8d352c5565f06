//! kanband: the coordination service for a multi-agent kanban board.
//!
//! One process owns the board's SQLite database through one connection and answers gRPC.
//! The crate is laid out in rooms, each importing only from the rooms below it:
//!
//! - [`import`]: `kanband import`, offline: another kanban's boards into a stopped kanband's
//!   data directory, through the store.
//! - [`server`]: listeners, reflection, start-up and ordered shutdown; beside it [`health`],
//!   what the health service reports and the check that ties it to lease correctness.
//! - [`web`]: the board in a browser: the page, its JSON API and event stream over HTTP, above
//!   [`api`].
//! - [`auth`]: who may do what: tokens (kept as hashes), roles, the policy table of which role
//!   may call each RPC, and the layer that authenticates every call; its identity and role
//!   types are plain data the rooms below use too.
//! - [`api`]: the `kanban.v1` gRPC services: request validation, one call, response building.
//! - [`coordinator`]: the one door below the gRPC layer; owns the store, the lease machinery
//!   and the dispatcher, and is the only way to reach leases.
//! - [`leases`]: the in-memory lease registry, the timers, what each deadline does, and the
//!   dispatcher's queue of waiting `Acquire` calls.
//! - [`store`]: the single owner of the database file; one method per operation, each one
//!   transaction on the connection thread, built from in-transaction helpers.
//! - [`error`]: the one mapping of errors to gRPC status codes.
//! - [`net`]: what kanband does per connection: accepting (with back-off when descriptors run
//!   out), handshake and idle timeouts, protocol-error statuses.
//! - [`settings`]: the service's tunable settings.
//! - [`streams`]: the places long-lived server streams take, in pools and per connection.
//! - [`domain`]: pure rules (statuses and transitions, lease and dispatch rules, event kinds,
//!   validation, limits, ids, the error type); no I/O.
//! - [`metrics`]: the Prometheus metrics' names and the process's recorder; each cause
//!   records where it happens.
//! - [`clock`]: the wall clock for records and the monotonic clock for deadlines.

pub mod api;
pub mod auth;
pub mod clock;
pub mod coordinator;
pub mod domain;
pub mod error;
pub mod health;
pub mod import;
pub mod leases;
mod loggable;
pub mod metrics;
pub mod net;
pub mod server;
pub mod settings;
pub mod store;
pub mod streams;
pub mod web;

pub use server::{DEFAULT_LISTEN, Kanband, Listeners, Running, SOCKET_FILE};
pub use settings::Settings;
