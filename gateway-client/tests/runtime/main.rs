//! The gateway's runtime against a real kanband: in this process (`kanband_tests::spawn_service`)
//! for the notification watcher and the supervisor, and as the real binary for restarts.

mod notifier;
mod restart;
mod supervisor;
