//! The real binaries as child processes (`kanband_tests::daemon`): the `kanband` daemon itself,
//! kanband with a `kanband-gateway` supervisor and `kanbanctl` end to end, kill -9, and the
//! field scenarios under load.

mod caps;
mod crash;
mod daemon;
mod data_dir;
mod deploy;
mod descriptors;
mod docs;
mod e2e;
mod full_disk;
mod scenario;
mod support;
