//! What kanband's three binaries (`kanband`, `kanband-gateway`, `kanbanctl`) share on the
//! command line, so each convention is written once:
//!
//! - [`logging`]: the log filter (with quiet defaults for the HTTP/2 stack) and format, set up
//!   once; an invalid filter is an error at start.
//! - [`report`]: an error as one line a person can act on: each cause once, no backtrace.
//! - [`connection`]: the flags that say where kanband is and how to authenticate to it.
//! - [`docs`]: the `completions SHELL` and `man` subcommands.
//! - [`input`]: one parser per kind of value people type: addresses, yes/no, durations.

pub mod connection;
pub mod docs;
pub mod input;
pub mod logging;
pub mod report;
