//! Pure domain rules: nothing here does I/O, so each rule is tested as a plain function.
//!
//! - [`status`]: task statuses, block kinds, workspace kinds and run outcomes, with their
//!   stored names.
//! - [`transitions`]: the one function deciding every status change, and the block rule.
//! - [`lease`]: fencing, exit classification and failure accounting of claims.
//! - [`dispatch`]: which task a waiting session may claim, in which order, and why not.
//! - [`events`]: the kinds of event recorded, and which of them notifications deliver.
//! - [`author`]: who caused an event (the authenticated identity, and the caller's note).
//! - [`validate`]: input validation, naming the field.
//! - [`limits`]: every documented limit.
//! - [`ids`]: every id prefix, and how ids are made and checked.
//! - [`error`]: the service's error type.

pub mod author;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod ids;
pub mod lease;
pub mod limits;
pub mod status;
pub mod transitions;
pub mod validate;

pub use author::Author;
pub use events::EventKind;
pub use status::{BlockKind, RunOutcome, Status, WorkspaceKind};
