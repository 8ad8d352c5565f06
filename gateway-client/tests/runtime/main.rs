//! The gateway's runtime against a real kanband in this process
//! (`kanband_tests::spawn_service`): the notification watcher and the supervisor.

mod notifier;
mod supervisor;
