//! The real binaries as child processes (`kanband_tests::daemon`): the `kanband` daemon itself,
//! kanband with a `kanband-gateway` supervisor and `kanbanctl` end to end, kill -9, and the
//! field scenarios under load.

mod caps;
mod crash;
mod daemon;
mod e2e;
mod scenario;
mod support;
