//! kanband: the coordination service for a multi-agent kanban board.
//!
//! One process owns the board's SQLite database through one connection and answers gRPC.
//! The crate is laid out by concern:
//!
//! - [`domain`]: pure rules (statuses and transitions, validation, limits, ids); no I/O.
//! - [`store`]: the single owner of the database file; one method per operation, each one
//!   transaction on the connection thread.
//! - [`timers`]: the one timer facility for every deadline (scheduled wake-ups today).
//! - [`api`]: the `kanban.v1` gRPC services, converting between `pb` and the store.
//! - [`server`]: listeners, health, reflection, start-up and ordered shutdown.
//! - [`error`]: the error type and its one mapping to gRPC status codes.

pub mod api;
pub mod app;
pub mod dispatch;
pub mod domain;
pub mod error;
pub mod leases;
pub mod server;
pub mod settings;
pub mod store;
pub mod timers;

pub use server::{DEFAULT_LISTEN, Kanband, Listeners, Running, SOCKET_FILE};
pub use settings::Settings;
