//! `kanbanctl`, the command line of kanband, as a library with a thin binary.
//!
//! Workers and verifiers run it inside the environment their supervisor sets (`KANBAN_TASK`,
//! `KANBAN_CLAIM_TOKEN`, ...) to report on their own claim; operators and scripts run it to
//! manage boards and tasks and to follow the event stream.
//!
//! Layout:
//! - [`cli`]: the clap-derive command line (every global option has an environment fallback).
//! - [`commands`]: one function per command; [`run`] dispatches a parsed command line.
//! - [`names`]: the one mapping between the proto enums and lowercase names (`ready`, `done`).
//! - [`render`]: the JSON and the human shape of every message.
//! - [`output`]: stdout as text or `--json`; notes on stderr.
//! - [`error`]: the typed error and how it reads (`lease lost (superseded, current epoch 4)`).
//! - [`exit`]: the exit codes and the one function mapping an error to one.
//! - [`retry`]: how worker verbs ride out a kanband restart (`--retry-for`).
//!
//! Exit codes (see [`exit`]): 0 ok, 1 failed, 2 usage, 3 lease lost or fenced, 4 not found,
//! 5 service unavailable.

pub mod cli;
pub mod commands;
mod confirm;
pub mod error;
pub mod exit;
pub mod names;
pub mod output;
pub mod render;
pub mod retry;

pub use commands::run;
pub use error::{Error, Result};
