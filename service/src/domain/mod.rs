//! Pure domain rules: statuses, transitions, validation, limits and ids. Nothing here does I/O.

pub mod ids;
pub mod limits;
pub mod status;
pub mod transitions;
pub mod validate;

pub use status::{BlockKind, RunOutcome, Status, WorkspaceKind};
