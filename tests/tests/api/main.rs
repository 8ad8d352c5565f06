//! kanband served in this process (`kanband_tests::spawn_service`) and driven over real gRPC,
//! on TCP and on the Unix socket: one module per API area. Tests with a paused clock move time
//! only with `tokio::time::advance` (see `support::clock`).

mod admin;
mod attachments;
mod audit;
mod auth;
mod backlog;
mod bad_input;
mod bad_input_more;
mod boards;
mod cancel;
mod checker;
mod comments;
mod complete_and_acquire;
mod deadlines;
mod disk_full;
mod disk_full_leases;
mod dispatch;
mod events;
mod exits;
mod leases;
mod protocol;
mod reasons;
mod restart;
mod retries;
mod shutdown;
mod smoke;
mod stream_caps;
mod stress;
mod support;
mod tasks;
mod tls;
